// Private to routing_live: the Lua prelude every script starts with, argument and reply helpers.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scrm/common/error.hpp"
#include "scrm/routing/live.hpp"
#include "scrm/storage/redis.hpp"

namespace scrm::routing::live_detail {

// Every script gets the clinic's key prefix as ARGV[1] and builds its keys from it, so a script
// touches only keys of one clinic — one cluster slot. KEYS names the script's main key (it routes
// the call); keys found at run time (the locks of an agent's fans) cannot be declared up front.
// Redis Cluster accepts such same-slot keys from plain EVAL scripts; a proxy that insists on
// declared keys would not. Key kinds:
//   pres            zset  agent -> live-until (ms): the latest live connection of each agent
//   conns:<agent>   hash  connection -> live-until (ms)
//   paused          hash  agent -> "1" while not accepting chats
//   lock:<fan>      hash  holder, token; PX = lock TTL
//   alocks:<agent>  set   fans whose lock the agent took (pruned lazily: check the lock's holder)
//   lockseq         string, the clinic's fencing-token counter (INCR)
//   lockdue         zset  fan -> when its lock runs out (ms, Redis's clock): the expiry index the
//                   timer worker scans (claim_expired_locks), kept with every TTL change
//   lockx           hash  fan -> "<holder> <token>": the holding lockdue stands for
//   fan:<fan>       hash  exclusive (agent), owner (the agent it waits on while unanswered)
//   owned:<agent>   set   fans the agent owns and has not answered
//   lastpick        hash  agent -> seconds of its last pick
//   tdue            zset  fan -> due (ms): armed timers
//   tclaimed        zset  fan -> lease end (ms): claimed timers
//   timer:<fan>     hash  due, payload, claim (the current claim id)
//   timerseq        string, the clinic's claim-id counter
//   fl:<fan>        hash  auto, agent (reply marks, ms); m_open, m_used, e_open, e_used (the
//                   message and event windows); PX = the longest window, for clean-up only
//
// is_online(a, now): a live connection and accepting. redis_ms(): Redis's clock, as lock PX
// counts it. set_lock_ttl(f, ttl): the lock's PX restarts and its expiry index follows;
// lock_gone(f): the lock was released, nothing is left to expire. release_all(a): drops every lock the agent
// still holds and returns those fans. load_of(a): |owned ∪ fans whose lock it holds|. The fan
// operations, shared by the single-purpose scripts and the combined ones the routing stage runs
// per message: own(f, a) — the fan now waits on `a` (moving from any previous owner), 1 when a's
// set grew; release(f, a, token) — 1 when `a` held the lock with `token` and it is gone;
// open_window(f, w, at, ttl) — window 'm' or 'e' opened afresh at `at` unless it already was at
// `at` or later (so routing a message twice opens nothing twice); claim_auto(f, now, window, ttl)
// — 1 and the auto mark set when no auto-reply or agent reply is marked within `window`;
// arm(f, due, payload) — 1 when armed, 0 when the fan already has a timer; push(a, payload[,
// kept]) — a console push: appended to the agent's event stream (the last ~1000 events, kept a
// day: its expiry set once per agent named in the table `kept`, when one is given) and
// PUBLISHed on the agent's channel, both carrying the stream id as "event_id" (with_event_id).
inline constexpr std::string_view lua_prelude = R"lua(
local P = ARGV[1]
local function k(kind, id)
  if id then return P .. kind .. ':' .. id end
  return P .. kind
end
local function is_online(a, now)
  local s = redis.call('ZSCORE', k('pres'), a)
  if not s or tonumber(s) <= now then return false end
  return redis.call('HEXISTS', k('paused'), a) == 0
end
local function redis_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function set_lock_ttl(f, ttl)
  local lk = k('lock', f)
  redis.call('PEXPIRE', lk, ttl)
  local cur = redis.call('HMGET', lk, 'holder', 'token')
  redis.call('ZADD', k('lockdue'), redis_ms() + tonumber(ttl), f)
  redis.call('HSET', k('lockx'), f, cur[1] .. ' ' .. cur[2])
end
local function lock_gone(f)
  redis.call('ZREM', k('lockdue'), f)
  redis.call('HDEL', k('lockx'), f)
end
local function release_all(a)
  local out = {}
  for _, f in ipairs(redis.call('SMEMBERS', k('alocks', a))) do
    if redis.call('HGET', k('lock', f), 'holder') == a then
      redis.call('DEL', k('lock', f))
      lock_gone(f)
      out[#out + 1] = f
    end
  end
  redis.call('DEL', k('alocks', a))
  return out
end
local function own(f, a)
  local fk = k('fan', f)
  local prev = redis.call('HGET', fk, 'owner')
  if prev and prev ~= a then redis.call('SREM', k('owned', prev), f) end
  redis.call('HSET', fk, 'owner', a)
  return redis.call('SADD', k('owned', a), f)
end
local function release(f, a, token)
  local lk = k('lock', f)
  local cur = redis.call('HMGET', lk, 'holder', 'token')
  if cur[1] ~= a or cur[2] ~= token then return 0 end
  redis.call('DEL', lk)
  lock_gone(f)
  redis.call('SREM', k('alocks', a), f)
  return 1
end
local function open_window(f, w, at, ttl)
  local fk = k('fl', f)
  local cur = tonumber(redis.call('HGET', fk, w .. '_open') or '')
  if not cur or tonumber(at) > cur then
    redis.call('HSET', fk, w .. '_open', at, w .. '_used', 0)
  end
  redis.call('PEXPIRE', fk, ttl)
end
local function claim_auto(f, now, window, ttl)
  local fk = k('fl', f)
  for _, field in ipairs({'auto', 'agent'}) do
    local t = tonumber(redis.call('HGET', fk, field) or '')
    if t and tonumber(now) - t < tonumber(window) then return 0 end
  end
  redis.call('HSET', fk, 'auto', now)
  redis.call('PEXPIRE', fk, ttl)
  return 1
end
local function arm(f, due, payload)
  local tk = k('timer', f)
  if redis.call('EXISTS', tk) == 1 then return 0 end
  redis.call('HSET', tk, 'due', due, 'payload', payload)
  redis.call('ZADD', k('tdue'), due, f)
  return 1
end
local function with_event_id(id, payload)
  local rest = string.sub(payload, 2)
  if rest ~= '}' then rest = ',' .. rest end
  return '{"event_id":"' .. id .. '"' .. rest
end
local function push(a, payload, kept)
  local ek = k('events', a)
  local id = redis.call('XADD', ek, 'MAXLEN', '~', 1000, '*', 'p', payload)
  if not kept or not kept[a] then
    redis.call('PEXPIRE', ek, 86400000)
    if kept then kept[a] = true end
  end
  redis.call('PUBLISH', k('agent', a), with_event_id(id, payload))
end
local function load_of(a)
  local seen, n = {}, 0
  for _, f in ipairs(redis.call('SMEMBERS', k('owned', a))) do
    seen[f] = true
    n = n + 1
  end
  for _, f in ipairs(redis.call('SMEMBERS', k('alocks', a))) do
    if not seen[f] and redis.call('HGET', k('lock', f), 'holder') == a then
      seen[f] = true
      n = n + 1
    end
  end
  return n
end
)lua";

// A script made of the prelude and `body`.
inline storage::redis_script make_script(std::string_view body) {
    std::string code(lua_prelude);
    code += body;
    return storage::redis_script(std::move(code));
}

template <class T>
result<T> fail(errc e) {
    return result<T>(boost::system::in_place_error, make_error_code(e));
}

inline std::string ms_text(instant t) {
    return std::to_string(t.time_since_epoch().count());
}
inline std::string ms_text(std::chrono::milliseconds d) {
    return std::to_string(d.count());
}

// Reply accessors: nullopt when the reply does not have the expected shape.
inline const storage::redis_reply* element(const storage::redis_reply& r, std::size_t i) {
    if (r.type != storage::redis_reply::kind::array || i >= r.elements.size()) return nullptr;
    return &r.elements[i];
}

inline std::optional<std::string> text_of(const storage::redis_reply* r) {
    if (r == nullptr) return std::nullopt;
    using kind = storage::redis_reply::kind;
    if (r->type == kind::string || r->type == kind::status) return r->str;
    if (r->type == kind::integer) return std::to_string(r->integer);
    return std::nullopt;
}

inline std::optional<long long> int_of(const storage::redis_reply* r) {
    if (r == nullptr) return std::nullopt;
    using kind = storage::redis_reply::kind;
    if (r->type == kind::integer) return r->integer;
    if (r->type == kind::string) {
        long long v = 0;
        const char* end = r->str.data() + r->str.size();
        auto [p, ec] = std::from_chars(r->str.data(), end, v);
        if (ec == std::errc() && p == end) return v;
    }
    return std::nullopt;
}

// An array of strings (e.g. fans); nullopt when any element is not one.
inline std::optional<std::vector<std::string>> strings_of(const storage::redis_reply* r) {
    if (r == nullptr || r->type != storage::redis_reply::kind::array) return std::nullopt;
    std::vector<std::string> out;
    out.reserve(r->elements.size());
    for (const auto& e : r->elements) {
        auto s = text_of(&e);
        if (!s) return std::nullopt;
        out.push_back(std::move(*s));
    }
    return out;
}

}  // namespace scrm::routing::live_detail

// Session locks with fencing tokens: acquire (or take over from an offline holder), renew by fan
// or agent message, release, transfer, release-all for an agent gone offline, fence checks.
#include <algorithm>

#include "live_detail.hpp"
#include "scrm/routing/live.hpp"

namespace scrm::routing {

namespace asio = boost::asio;
using namespace live_detail;
using storage::redis_reply;

namespace {

// ARGV: prefix, fan, agent, now, ttl. Returns {status, holder, token, previous holder}.
// The acquiring agent's index of locks is pruned of fans whose lock it no longer holds (expired or
// taken), so the index stays about as large as its live locks.
const storage::redis_script& acquire_script() {
    static const storage::redis_script s = make_script(R"lua(
local f, a, now, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local lk = k('lock', f)
local cur = redis.call('HMGET', lk, 'holder', 'token')
if cur[1] == a then
  set_lock_ttl(f, ttl)
  return {'renewed', a, tonumber(cur[2]), ''}
end
local prev = ''
if cur[1] then
  if is_online(cur[1], now) then return {'refused', cur[1], 0, ''} end
  prev = cur[1]
  redis.call('SREM', k('alocks', prev), f)
end
local t = redis.call('INCR', k('lockseq'))
redis.call('DEL', lk)
redis.call('HSET', lk, 'holder', a, 'token', t)
set_lock_ttl(f, ttl)
local ak = k('alocks', a)
for _, g in ipairs(redis.call('SMEMBERS', ak)) do
  if redis.call('HGET', k('lock', g), 'holder') ~= a then redis.call('SREM', ak, g) end
end
redis.call('SADD', ak, f)
if prev == '' then return {'acquired', a, t, ''} end
return {'taken_over', a, t, prev}
)lua");
    return s;
}

// ARGV: prefix, fan, ttl. Returns {holder, token, remaining ms} or {} when there is no lock.
const storage::redis_script& renew_script() {
    static const storage::redis_script s = make_script(R"lua(
local lk = k('lock', ARGV[2])
local cur = redis.call('HMGET', lk, 'holder', 'token')
if not cur[1] then return {} end
set_lock_ttl(ARGV[2], ARGV[3])
return {cur[1], tonumber(cur[2]), tonumber(ARGV[3])}
)lua");
    return s;
}

// ARGV: prefix, fan, agent, token, ttl. Returns 1 when renewed.
const storage::redis_script& renew_as_script() {
    static const storage::redis_script s = make_script(R"lua(
local lk = k('lock', ARGV[2])
local cur = redis.call('HMGET', lk, 'holder', 'token')
if cur[1] ~= ARGV[3] or cur[2] ~= ARGV[4] then return 0 end
set_lock_ttl(ARGV[2], ARGV[5])
return 1
)lua");
    return s;
}

// ARGV: prefix, fan, agent, token. Returns 1 when released.
const storage::redis_script& release_script() {
    static const storage::redis_script s =
        make_script("return release(ARGV[2], ARGV[3], ARGV[4])\n");
    return s;
}

// ARGV: prefix, fan, agent, token, to, ttl. Returns {status, holder, token}.
const storage::redis_script& transfer_script() {
    static const storage::redis_script s = make_script(R"lua(
local f, a, to = ARGV[2], ARGV[3], ARGV[5]
local lk = k('lock', f)
local cur = redis.call('HMGET', lk, 'holder', 'token')
if cur[1] ~= a or cur[2] ~= ARGV[4] then return {'refused', cur[1] or '', 0} end
local t = redis.call('INCR', k('lockseq'))
redis.call('HSET', lk, 'holder', to, 'token', t)
set_lock_ttl(f, ARGV[6])
redis.call('SREM', k('alocks', a), f)
redis.call('SADD', k('alocks', to), f)
return {'acquired', to, t}
)lua");
    return s;
}

// ARGV: prefix, agent. Returns the released fans.
const storage::redis_script& release_all_script() {
    static const storage::redis_script s = make_script("return release_all(ARGV[2])\n");
    return s;
}

// ARGV: prefix, fan, token. Returns 1 when the token is current.
const storage::redis_script& fence_script() {
    static const storage::redis_script s = make_script(R"lua(
if redis.call('HGET', k('lock', ARGV[2]), 'token') == ARGV[3] then return 1 end
return 0
)lua");
    return s;
}

// ARGV: prefix, fan. Returns {holder, token, remaining ms} or {}.
const storage::redis_script& lock_of_script() {
    static const storage::redis_script s = make_script(R"lua(
local lk = k('lock', ARGV[2])
local cur = redis.call('HMGET', lk, 'holder', 'token')
if not cur[1] then return {} end
return {cur[1], tonumber(cur[2]), redis.call('PTTL', lk)}
)lua");
    return s;
}

// ARGV: prefix, limit. Returns {{fan, holder, token, due}, ...}. A lock still held when its
// entry falls due (Redis expires it by its own count, a little apart from ours) is rescheduled
// by its remaining TTL.
const storage::redis_script& expired_script() {
    static const storage::redis_script s = make_script(R"lua(
local now = redis_ms()
local out = {}
local due = redis.call('ZRANGEBYSCORE', k('lockdue'), '-inf', now, 'WITHSCORES', 'LIMIT', 0,
                       tonumber(ARGV[2]))
for i = 1, #due, 2 do
  local f = due[i]
  local lk = k('lock', f)
  if redis.call('EXISTS', lk) == 1 then
    redis.call('ZADD', k('lockdue'), now + math.max(redis.call('PTTL', lk), 1), f)
  else
    local was = redis.call('HGET', k('lockx'), f) or ''
    lock_gone(f)
    local a, t = string.match(was, '^(%S+) (%d+)$')
    if a then
      redis.call('SREM', k('alocks', a), f)
      out[#out + 1] = {f, a, t, math.floor(tonumber(due[i + 1]))}
    end
  end
end
return out
)lua");
    return s;
}

std::optional<lock_status> status_of(const std::string& s) {
    if (s == "acquired") return lock_status::acquired;
    if (s == "renewed") return lock_status::renewed;
    if (s == "taken_over") return lock_status::taken_over;
    if (s == "refused") return lock_status::refused;
    return std::nullopt;
}

result<lock_result> to_lock_result(const result<redis_reply>& r) {
    if (!r) return result<lock_result>(boost::system::in_place_error, r.error());
    auto status = text_of(element(*r, 0));
    auto holder = text_of(element(*r, 1));
    auto token = int_of(element(*r, 2));
    std::optional<lock_status> st = status ? status_of(*status) : std::nullopt;
    if (!st || !holder || !token) return fail<lock_result>(errc::protocol_error);
    lock_result out;
    out.status = *st;
    out.holder = std::move(*holder);
    out.token = *token;
    if (auto prev = text_of(element(*r, 3)); prev && !prev->empty()) out.previous_holder = *prev;
    return out;
}

result<std::optional<lock_info>> to_lock_info(const result<redis_reply>& r) {
    using out_t = std::optional<lock_info>;
    if (!r) return result<out_t>(boost::system::in_place_error, r.error());
    if (r->type != redis_reply::kind::array) return fail<out_t>(errc::protocol_error);
    if (r->elements.empty()) return out_t{};
    auto holder = text_of(element(*r, 0));
    auto token = int_of(element(*r, 1));
    auto ttl = int_of(element(*r, 2));
    if (!holder || !token || !ttl) return fail<out_t>(errc::protocol_error);
    return out_t(lock_info{std::move(*holder), *token, std::chrono::milliseconds(*ttl)});
}

result<bool> to_bool(const result<redis_reply>& r) {
    if (!r) return result<bool>(boost::system::in_place_error, r.error());
    auto v = int_of(&*r);
    if (!v) return fail<bool>(errc::protocol_error);
    return *v != 0;
}

}  // namespace

asio::awaitable<result<lock_result>> live_state::acquire_lock(
    std::uint64_t clinic, std::string fan, std::string agent, instant now,
    std::optional<std::chrono::milliseconds> ttl) {
    if (fan.empty() || agent.empty()) co_return fail<lock_result>(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "lock:" + fan};
    std::vector<std::string> args{p, std::move(fan), std::move(agent), ms_text(now),
                                  ms_text(ttl.value_or(opts_.lock_ttl))};
    auto r = co_await redis_->eval(acquire_script(), std::move(keys), std::move(args));
    co_return to_lock_result(r);
}

asio::awaitable<result<std::optional<lock_info>>> live_state::renew_lock(
    std::uint64_t clinic, std::string fan, std::optional<std::chrono::milliseconds> ttl) {
    if (fan.empty()) co_return fail<std::optional<lock_info>>(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "lock:" + fan};
    std::vector<std::string> args{p, std::move(fan), ms_text(ttl.value_or(opts_.lock_ttl))};
    auto r = co_await redis_->eval(renew_script(), std::move(keys), std::move(args));
    co_return to_lock_info(r);
}

asio::awaitable<result<bool>> live_state::renew_lock_as(
    std::uint64_t clinic, std::string fan, std::string agent, std::int64_t token,
    std::optional<std::chrono::milliseconds> ttl) {
    if (fan.empty() || agent.empty()) co_return fail<bool>(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "lock:" + fan};
    std::vector<std::string> args{p, std::move(fan), std::move(agent), std::to_string(token),
                                  ms_text(ttl.value_or(opts_.lock_ttl))};
    auto r = co_await redis_->eval(renew_as_script(), std::move(keys), std::move(args));
    co_return to_bool(r);
}

asio::awaitable<result<bool>> live_state::release_lock(std::uint64_t clinic, std::string fan,
                                                       std::string agent, std::int64_t token) {
    if (fan.empty() || agent.empty()) co_return fail<bool>(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "lock:" + fan};
    std::vector<std::string> args{p, std::move(fan), std::move(agent), std::to_string(token)};
    auto r = co_await redis_->eval(release_script(), std::move(keys), std::move(args));
    co_return to_bool(r);
}

asio::awaitable<result<lock_result>> live_state::transfer_lock(
    std::uint64_t clinic, std::string fan, std::string agent, std::int64_t token, std::string to,
    std::optional<std::chrono::milliseconds> ttl) {
    if (fan.empty() || agent.empty() || to.empty()) co_return fail<lock_result>(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "lock:" + fan};
    std::vector<std::string> args{p,
                                  std::move(fan),
                                  std::move(agent),
                                  std::to_string(token),
                                  std::move(to),
                                  ms_text(ttl.value_or(opts_.lock_ttl))};
    auto r = co_await redis_->eval(transfer_script(), std::move(keys), std::move(args));
    co_return to_lock_result(r);
}

asio::awaitable<result<std::vector<std::string>>> live_state::release_agent_locks(
    std::uint64_t clinic, std::string agent) {
    if (agent.empty()) co_return fail<std::vector<std::string>>(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "alocks:" + agent};
    std::vector<std::string> args{p, std::move(agent)};
    auto r = co_await redis_->eval(release_all_script(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    auto fans = strings_of(&*r);
    if (!fans) co_return fail<std::vector<std::string>>(errc::protocol_error);
    std::sort(fans->begin(), fans->end());
    co_return std::move(*fans);
}

asio::awaitable<result<bool>> live_state::check_fence(std::uint64_t clinic, std::string fan,
                                                      std::int64_t token) {
    if (fan.empty()) co_return fail<bool>(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "lock:" + fan};
    std::vector<std::string> args{p, std::move(fan), std::to_string(token)};
    auto r = co_await redis_->eval(fence_script(), std::move(keys), std::move(args));
    co_return to_bool(r);
}

asio::awaitable<result<std::optional<lock_info>>> live_state::lock_of(std::uint64_t clinic,
                                                                      std::string fan) {
    if (fan.empty()) co_return fail<std::optional<lock_info>>(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "lock:" + fan};
    std::vector<std::string> args{p, std::move(fan)};
    auto r = co_await redis_->eval(lock_of_script(), std::move(keys), std::move(args));
    co_return to_lock_info(r);
}

asio::awaitable<result<std::vector<expired_lock>>> live_state::claim_expired_locks(
    std::uint64_t clinic, std::size_t limit) {
    using out_t = std::vector<expired_lock>;
    if (limit == 0) co_return fail<out_t>(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "lockdue"};
    std::vector<std::string> args{p, std::to_string(limit)};
    auto r = co_await redis_->eval(expired_script(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    if (r->type != redis_reply::kind::array) co_return fail<out_t>(errc::protocol_error);
    out_t out;
    for (const auto& e : r->elements) {
        auto fan = text_of(element(e, 0));
        auto holder = text_of(element(e, 1));
        auto token = int_of(element(e, 2));
        auto due = int_of(element(e, 3));
        if (!fan || !holder || !token || !due) co_return fail<out_t>(errc::protocol_error);
        out.push_back(expired_lock{std::move(*fan), std::move(*holder), *token,
                                   instant(std::chrono::milliseconds(*due))});
    }
    co_return out;
}

}  // namespace scrm::routing

// Presence: connections that heartbeat with a TTL, a reconnect grace for closed ones, the
// "accepting chats" switch, and the sweep that finds agents whose presence ran out.
#include <algorithm>

#include "live_detail.hpp"
#include "scrm/routing/live.hpp"

namespace scrm::routing {

namespace asio = boost::asio;
using namespace live_detail;
using storage::redis_reply;

namespace {

// live_until(ck, now): drops the agent's expired connections and returns the latest live-until
// of the others (nil when none is left).
constexpr std::string_view presence_helpers = R"lua(
local function live_until(ck, now)
  local kv = redis.call('HGETALL', ck)
  local best = nil
  for i = 1, #kv, 2 do
    local e = tonumber(kv[i + 1])
    if not e or e <= now then
      redis.call('HDEL', ck, kv[i])
    elseif not best or e > best then
      best = e
    end
  end
  return best
end
)lua";

storage::redis_script presence_script(std::string_view body) {
    std::string code(presence_helpers);
    code += body;
    return make_script(code);
}

// ARGV: prefix, agent, connection, now, ttl. Returns {came_online, {}}.
const storage::redis_script& heartbeat_script() {
    static const storage::redis_script s = presence_script(R"lua(
local a, c, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local was = is_online(a, now)
local ck = k('conns', a)
redis.call('HSET', ck, c, now + tonumber(ARGV[5]))
redis.call('ZADD', k('pres'), live_until(ck, now), a)
local came = (not was) and is_online(a, now)
return {came and 1 or 0, {}}
)lua");
    return s;
}

// ARGV: prefix, agent, connection, now, grace. Returns 1 when the connection was known.
const storage::redis_script& disconnect_script() {
    static const storage::redis_script s = presence_script(R"lua(
local a, c, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local ck = k('conns', a)
if redis.call('HEXISTS', ck, c) == 0 then return 0 end
redis.call('HSET', ck, c, now + tonumber(ARGV[5]))
redis.call('ZADD', k('pres'), live_until(ck, now) or now, a)
return 1
)lua");
    return s;
}

// ARGV: prefix, agent, now ('' unknown). Returns {0, released fans, went offline}.
const storage::redis_script& sign_out_script() {
    static const storage::redis_script s = make_script(R"lua(
local a = ARGV[2]
local was = ARGV[3] ~= '' and is_online(a, tonumber(ARGV[3]))
redis.call('DEL', k('conns', a))
redis.call('ZREM', k('pres'), a)
return {0, release_all(a), was and 1 or 0}
)lua");
    return s;
}

// ARGV: prefix, agent, "1"/"0", now. Returns {came_online, released fans, went_offline}.
const storage::redis_script& accepting_script() {
    static const storage::redis_script s = make_script(R"lua(
local a, now = ARGV[2], tonumber(ARGV[4])
local was = is_online(a, now)
local released = {}
if ARGV[3] == '1' then
  redis.call('HDEL', k('paused'), a)
else
  redis.call('HSET', k('paused'), a, '1')
  released = release_all(a)
end
local is = is_online(a, now)
return {((not was) and is) and 1 or 0, released, (was and not is) and 1 or 0}
)lua");
    return s;
}

// ARGV: prefix, now. Returns the online agents.
const storage::redis_script& online_script() {
    static const storage::redis_script s = make_script(R"lua(
local out = {}
for _, a in ipairs(redis.call('ZRANGEBYSCORE', k('pres'), '(' .. ARGV[2], '+inf')) do
  if redis.call('HEXISTS', k('paused'), a) == 0 then out[#out + 1] = a end
end
return out
)lua");
    return s;
}

// ARGV: prefix, now. Returns {{agent, released fans, accepting}, ...}.
const storage::redis_script& reap_script() {
    static const storage::redis_script s = make_script(R"lua(
local out = {}
for _, a in ipairs(redis.call('ZRANGEBYSCORE', k('pres'), '-inf', ARGV[2])) do
  redis.call('ZREM', k('pres'), a)
  redis.call('DEL', k('conns', a))
  local accepting = redis.call('HEXISTS', k('paused'), a) == 0 and 1 or 0
  out[#out + 1] = {a, release_all(a), accepting}
end
return out
)lua");
    return s;
}

result<presence_change> to_change(const result<redis_reply>& r) {
    if (!r) return result<presence_change>(boost::system::in_place_error, r.error());
    auto came = int_of(element(*r, 0));
    auto released = strings_of(element(*r, 1));
    if (!came || !released) return fail<presence_change>(errc::protocol_error);
    presence_change c;
    c.came_online = *came != 0;
    const auto went = int_of(element(*r, 2));
    c.went_offline = went && *went != 0;
    c.released_fans = std::move(*released);
    std::sort(c.released_fans.begin(), c.released_fans.end());
    return c;
}

}  // namespace

asio::awaitable<result<presence_change>> live_state::heartbeat(std::uint64_t clinic,
                                                               std::string agent,
                                                               std::string connection,
                                                               instant now) {
    if (agent.empty() || connection.empty()) co_return fail<presence_change>(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "pres"};
    std::vector<std::string> args{p, std::move(agent), std::move(connection), ms_text(now),
                                  ms_text(opts_.presence_ttl)};
    auto r = co_await redis_->eval(heartbeat_script(), std::move(keys), std::move(args));
    co_return to_change(r);
}

asio::awaitable<result<void>> live_state::disconnect(std::uint64_t clinic, std::string agent,
                                                     std::string connection, instant now) {
    if (agent.empty() || connection.empty()) co_return make_error_code(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "pres"};
    std::vector<std::string> args{p, std::move(agent), std::move(connection), ms_text(now),
                                  ms_text(opts_.reconnect_grace)};
    auto r = co_await redis_->eval(disconnect_script(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    co_return result<void>{};
}

asio::awaitable<result<presence_change>> live_state::sign_out(std::uint64_t clinic,
                                                              std::string agent,
                                                              std::optional<instant> now) {
    if (agent.empty()) co_return fail<presence_change>(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "pres"};
    std::vector<std::string> args{p, std::move(agent), now ? ms_text(*now) : std::string()};
    auto r = co_await redis_->eval(sign_out_script(), std::move(keys), std::move(args));
    co_return to_change(r);
}

asio::awaitable<result<presence_change>> live_state::set_accepting(std::uint64_t clinic,
                                                                   std::string agent,
                                                                   bool accepting, instant now) {
    if (agent.empty()) co_return fail<presence_change>(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "paused"};
    std::vector<std::string> args{p, std::move(agent), accepting ? "1" : "0", ms_text(now)};
    auto r = co_await redis_->eval(accepting_script(), std::move(keys), std::move(args));
    co_return to_change(r);
}

asio::awaitable<result<std::vector<std::string>>> live_state::online_agents(std::uint64_t clinic,
                                                                            instant now) {
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "pres"};
    std::vector<std::string> args{p, ms_text(now)};
    auto r = co_await redis_->eval(online_script(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    auto agents = strings_of(&*r);
    if (!agents) co_return fail<std::vector<std::string>>(errc::protocol_error);
    std::sort(agents->begin(), agents->end());
    co_return std::move(*agents);
}

asio::awaitable<result<std::vector<offline_agent>>> live_state::reap_offline(std::uint64_t clinic,
                                                                             instant now) {
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "pres"};
    std::vector<std::string> args{p, ms_text(now)};
    auto r = co_await redis_->eval(reap_script(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    if (r->type != redis_reply::kind::array) {
        co_return fail<std::vector<offline_agent>>(errc::protocol_error);
    }
    std::vector<offline_agent> out;
    for (const auto& e : r->elements) {
        auto agent = text_of(element(e, 0));
        auto released = strings_of(element(e, 1));
        auto accepting = int_of(element(e, 2));
        if (!agent || !released || !accepting) {
            co_return fail<std::vector<offline_agent>>(errc::protocol_error);
        }
        std::sort(released->begin(), released->end());
        out.push_back(offline_agent{std::move(*agent), std::move(*released), *accepting != 0});
    }
    std::sort(out.begin(), out.end(),
              [](const offline_agent& a, const offline_agent& b) { return a.agent < b.agent; });
    co_return out;
}

}  // namespace scrm::routing

// Console pushes kept per agent in a Redis stream, for consoles that reconnect (resume).
#include <algorithm>

#include "live_detail.hpp"
#include "scrm/routing/live.hpp"

namespace scrm::routing {

namespace asio = boost::asio;
using namespace live_detail;
using storage::redis_reply;

namespace {

// ARGV: prefix, agent, payload. Returns the event id.
const storage::redis_script& push_script() {
    static const storage::redis_script s = make_script(R"lua(
push(ARGV[2], ARGV[3])
local last = redis.call('XREVRANGE', k('events', ARGV[2]), '+', '-', 'COUNT', 1)
return last[1][1]
)lua");
    return s;
}

// ARGV: prefix, payload, now, except. Returns how many agents it was pushed to.
const storage::redis_script& push_online_script() {
    static const storage::redis_script s = make_script(R"lua(
local n = 0
for _, a in ipairs(redis.call('ZRANGEBYSCORE', k('pres'), '(' .. ARGV[3], '+inf')) do
  if a ~= ARGV[4] and redis.call('HEXISTS', k('paused'), a) == 0 then
    push(a, ARGV[2])
    n = n + 1
  end
end
return n
)lua");
    return s;
}

// ARGV: prefix, agent, last id, limit. Returns {gap, more, id, payload, id, payload, …}: the
// events after `last id`, decorated as pushed. A gap: the stream's first event is after `last id`
// (so `last id` itself was trimmed, and maybe others after it), or the stream is gone.
const storage::redis_script& events_script() {
    static const storage::redis_script s = make_script(R"lua(
local ek = k('events', ARGV[2])
local last, limit = ARGV[3], tonumber(ARGV[4])
local first = redis.call('XRANGE', ek, '-', '+', 'COUNT', 1)
local gap = 0
if #first == 0 then
  gap = 1
else
  local a1, a2 = string.match(first[1][1], '^(%d+)-(%d+)$')
  local b1, b2 = string.match(last, '^(%d+)-(%d+)$')
  a1, a2, b1, b2 = tonumber(a1), tonumber(a2), tonumber(b1), tonumber(b2)
  if a1 > b1 or (a1 == b1 and a2 > b2) then gap = 1 end
end
local entries = redis.call('XRANGE', ek, '(' .. last, '+', 'COUNT', limit + 1)
local out = {gap, 0}
for i, e in ipairs(entries) do
  if i > limit then
    out[2] = 1
    break
  end
  local payload = ''
  for j = 1, #e[2], 2 do
    if e[2][j] == 'p' then payload = e[2][j + 1] end
  end
  out[#out + 1] = e[1]
  out[#out + 1] = with_event_id(e[1], payload)
end
return out
)lua");
    return s;
}

bool is_stream_id(const std::string& id) {
    const auto dash = id.find('-');
    if (dash == std::string::npos || dash == 0 || dash + 1 == id.size() || id.size() > 41) {
        return false;
    }
    const auto digits = [](char c) { return c >= '0' && c <= '9'; };
    return std::all_of(id.begin(), id.begin() + static_cast<std::ptrdiff_t>(dash), digits) &&
           std::all_of(id.begin() + static_cast<std::ptrdiff_t>(dash) + 1, id.end(), digits);
}

}  // namespace

asio::awaitable<result<std::string>> live_state::push(std::uint64_t clinic, std::string agent,
                                                      std::string payload) {
    if (agent.empty() || payload.size() < 2 || payload.front() != '{' || payload.back() != '}') {
        co_return fail<std::string>(errc::bad_input);
    }
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "events:" + agent, p + "agent:" + agent};
    std::vector<std::string> args{p, std::move(agent), std::move(payload)};
    auto r = co_await redis_->eval(push_script(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    auto id = text_of(&*r);
    if (!id) co_return fail<std::string>(errc::protocol_error);
    co_return std::move(*id);
}

asio::awaitable<result<std::size_t>> live_state::push_online(std::uint64_t clinic,
                                                             std::string payload, instant now,
                                                             std::string except) {
    if (payload.size() < 2 || payload.front() != '{' || payload.back() != '}') {
        co_return fail<std::size_t>(errc::bad_input);
    }
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "pres"};
    std::vector<std::string> args{p, std::move(payload), ms_text(now), std::move(except)};
    auto r = co_await redis_->eval(push_online_script(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    auto n = int_of(&*r);
    if (!n || *n < 0) co_return fail<std::size_t>(errc::protocol_error);
    co_return static_cast<std::size_t>(*n);
}

asio::awaitable<result<agent_events>> live_state::events_after(std::uint64_t clinic,
                                                               std::string agent,
                                                               std::string last_id,
                                                               std::size_t limit) {
    if (agent.empty() || !is_stream_id(last_id) || limit == 0) {
        co_return fail<agent_events>(errc::bad_input);
    }
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "events:" + agent};
    std::vector<std::string> args{p, std::move(agent), std::move(last_id), std::to_string(limit)};
    auto r = co_await redis_->eval(events_script(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    if (r->type != redis_reply::kind::array || r->elements.size() < 2 ||
        r->elements.size() % 2 != 0) {
        co_return fail<agent_events>(errc::protocol_error);
    }
    auto gap = int_of(element(*r, 0));
    auto more = int_of(element(*r, 1));
    if (!gap || !more) co_return fail<agent_events>(errc::protocol_error);
    agent_events out;
    out.gap = *gap != 0;
    out.more = *more != 0;
    for (std::size_t i = 2; i + 1 < r->elements.size(); i += 2) {
        auto id = text_of(element(*r, i));
        auto payload = text_of(element(*r, i + 1));
        if (!id || !payload) co_return fail<agent_events>(errc::protocol_error);
        out.events.push_back(agent_event{std::move(*id), std::move(*payload)});
    }
    co_return out;
}

}  // namespace scrm::routing

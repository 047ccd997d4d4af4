// Snapshot assembly: one read-only script gathers presence, locks, loads, last_assigned, the
// fan's exclusive agent and its reply marks for decide().
#include <algorithm>

#include "live_detail.hpp"
#include "scrm/routing/live.hpp"

namespace scrm::routing {

namespace asio = boost::asio;
using namespace live_detail;
using storage::redis_reply;

namespace {

// ARGV: prefix, now, marks ttl, agent count, agents..., then per message four: fan, window to
// open ('m', 'e' or ''), at, lock ttl to renew ('' none). Returns per message {lock holder or '',
// lock token, lock ttl, exclusive or '', auto mark or '', agent mark or ''}, then per agent
// {online, load, last_assigned}.
constexpr std::size_t snapshot_head = 6;  // values per message
const storage::redis_script& snapshot_script() {
    static const storage::redis_script s = make_script(R"lua(
local now, nagents = tonumber(ARGV[2]), tonumber(ARGV[4])
local out = {}
for i = 5 + nagents, #ARGV, 4 do
  local f, w, ttl = ARGV[i], ARGV[i + 1], ARGV[i + 3]
  local lk = k('lock', f)
  if w ~= '' then open_window(f, w, ARGV[i + 2], ARGV[3]) end
  if ttl ~= '' and redis.call('EXISTS', lk) == 1 then set_lock_ttl(f, ttl) end
  local lock = redis.call('HMGET', lk, 'holder', 'token')
  local lttl = 0
  if lock[1] then lttl = redis.call('PTTL', lk) end
  local marks = redis.call('HMGET', k('fl', f), 'auto', 'agent')
  out[#out + 1] = lock[1] or ''
  out[#out + 1] = tonumber(lock[2] or '0')
  out[#out + 1] = lttl
  out[#out + 1] = redis.call('HGET', k('fan', f), 'exclusive') or ''
  out[#out + 1] = marks[1] or ''
  out[#out + 1] = marks[2] or ''
end
for i = 5, 4 + nagents do
  local a = ARGV[i]
  out[#out + 1] = is_online(a, now) and 1 or 0
  out[#out + 1] = load_of(a)
  out[#out + 1] = tonumber(redis.call('HGET', k('lastpick'), a) or '0')
end
return out
)lua");
    return s;
}

// ARGV: prefix, marks ttl, then per message: fan, owner ('' none), stale holder ('' none), stale
// token, timer due ('' none), timer payload, claim at ('' none), claim window, push payload,
// target count, targets... Returns per message {claimed, armed}.
const storage::redis_script& route_script() {
    static const storage::redis_script s = make_script(R"lua(
local out, kept = {}, {}
local i = 3
while i <= #ARGV do
  local f = ARGV[i]
  if ARGV[i + 1] ~= '' then own(f, ARGV[i + 1]) end
  if ARGV[i + 2] ~= '' then release(f, ARGV[i + 2], ARGV[i + 3]) end
  local armed, claimed = 0, 0
  if ARGV[i + 4] ~= '' then armed = arm(f, ARGV[i + 4], ARGV[i + 5]) end
  if ARGV[i + 6] ~= '' then claimed = claim_auto(f, ARGV[i + 6], ARGV[i + 7], ARGV[2]) end
  local n = tonumber(ARGV[i + 9])
  for j = i + 10, i + 9 + n do push(ARGV[j], ARGV[i + 8], kept) end
  out[#out + 1] = claimed
  out[#out + 1] = armed
  i = i + 10 + n
end
return out
)lua");
    return s;
}

// An optional instant from a reply that is '' (none) or milliseconds.
bool read_mark(const redis_reply* r, std::optional<instant>& out) {
    auto text = text_of(r);
    if (!text) return false;
    if (text->empty()) return true;
    auto ms = int_of(r);
    if (!ms) return false;
    out = instant(std::chrono::milliseconds(*ms));
    return true;
}

}  // namespace

asio::awaitable<result<live_snapshot>> live_state::load_snapshot(
    std::uint64_t clinic, snapshot base, instant now, std::optional<fan_activity> activity) {
    std::vector<snapshot_request> one;
    one.push_back(snapshot_request{std::move(base), activity});
    auto r = co_await load_snapshots(clinic, std::move(one), now);
    if (!r) co_return r.error();
    co_return std::move(r->front());
}

asio::awaitable<result<std::vector<live_snapshot>>> live_state::load_snapshots(
    std::uint64_t clinic, std::vector<snapshot_request> requests, instant now) {
    using answer = std::vector<live_snapshot>;
    if (requests.empty()) co_return answer{};
    const std::vector<agent_state>& agents = requests.front().base.agents;
    for (const auto& rq : requests) {
        if (rq.base.fan.openid.empty() || rq.base.agents.size() != agents.size()) {
            co_return fail<answer>(errc::bad_input);
        }
        for (std::size_t i = 0; i < agents.size(); ++i) {
            if (rq.base.agents[i].id.empty() || rq.base.agents[i].id != agents[i].id) {
                co_return fail<answer>(errc::bad_input);
            }
        }
    }
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys;
    std::vector<std::string> args;
    args.reserve(4 + agents.size() + 4 * requests.size());
    args.push_back(p);
    args.push_back(ms_text(now));
    args.push_back(ms_text(fan_marks_ttl()));
    args.push_back(std::to_string(agents.size()));
    for (const auto& a : agents) args.push_back(a.id);
    for (const auto& rq : requests) {
        const auto& activity = rq.activity;
        keys.push_back(p + "lock:" + rq.base.fan.openid);
        args.push_back(rq.base.fan.openid);
        const bool opens = activity && activity->opens;
        args.push_back(!opens ? "" : *activity->opens == window_kind::message ? "m" : "e");
        args.push_back(opens ? ms_text(activity->at) : "");
        args.push_back(activity && activity->renews_lock
                           ? ms_text(activity->lock_ttl.value_or(opts_.lock_ttl))
                           : "");
    }
    auto r = co_await redis_->eval(snapshot_script(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    const std::size_t agents_at = snapshot_head * requests.size();
    if (r->type != redis_reply::kind::array ||
        r->elements.size() != agents_at + 3 * agents.size()) {
        co_return fail<answer>(errc::protocol_error);
    }
    // The agents' live state, shared by every message of the call.
    std::vector<agent_state> live_agents = agents;
    for (std::size_t i = 0; i < live_agents.size(); ++i) {
        auto online = int_of(element(*r, agents_at + 3 * i));
        auto load = int_of(element(*r, agents_at + 3 * i + 1));
        auto last = int_of(element(*r, agents_at + 3 * i + 2));
        if (!online || !load || !last) co_return fail<answer>(errc::protocol_error);
        auto& a = live_agents[i];
        a.online = *online != 0;
        a.load = *load;
        a.last_assigned = *last;
    }
    auto known = [&](const std::string& id) {
        return std::any_of(live_agents.begin(), live_agents.end(),
                           [&](const agent_state& a) { return a.id == id; });
    };
    answer out;
    out.reserve(requests.size());
    for (std::size_t m = 0; m < requests.size(); ++m) {
        const std::size_t at = snapshot_head * m;
        auto holder = text_of(element(*r, at));
        auto token = int_of(element(*r, at + 1));
        auto ttl = int_of(element(*r, at + 2));
        auto exclusive = text_of(element(*r, at + 3));
        live_snapshot one;
        if (!holder || !token || !ttl || !exclusive ||
            !read_mark(element(*r, at + 4), one.marks.auto_reply) ||
            !read_mark(element(*r, at + 5), one.marks.agent_reply)) {
            co_return fail<answer>(errc::protocol_error);
        }
        snapshot base = std::move(requests[m].base);
        for (std::size_t i = 0; i < live_agents.size(); ++i) {
            base.agents[i].online = live_agents[i].online;
            base.agents[i].load = live_agents[i].load;
            base.agents[i].last_assigned = live_agents[i].last_assigned;
        }
        base.now = std::chrono::floor<std::chrono::seconds>(now);
        base.session_holder.reset();
        if (!holder->empty()) {
            if (known(*holder)) base.session_holder = *holder;
            one.lock = lock_info{std::move(*holder), *token, std::chrono::milliseconds(*ttl)};
        }
        if (!exclusive->empty() && known(*exclusive)) {
            base.fan.exclusive_agent = std::move(*exclusive);
        }
        base.auto_reply_suppressed = suppressed(one.marks, now, opts_.suppression_window);
        one.input = std::move(base);
        out.push_back(std::move(one));
    }
    co_return out;
}

asio::awaitable<result<route_outcome>> live_state::apply_route(std::uint64_t clinic,
                                                               std::string fan,
                                                               route_effects effects) {
    std::vector<fan_effects> one;
    one.push_back(fan_effects{std::move(fan), std::move(effects)});
    auto r = co_await apply_routes(clinic, std::move(one));
    if (!r) co_return r.error();
    co_return r->front();
}

asio::awaitable<result<std::vector<route_outcome>>> live_state::apply_routes(
    std::uint64_t clinic, std::vector<fan_effects> routes) {
    using answer = std::vector<route_outcome>;
    if (routes.empty()) co_return answer{};
    for (const auto& [fan, effects] : routes) {
        const bool empty_id =
            fan.empty() || (effects.owner && effects.owner->empty()) ||
            (effects.release_stale && effects.release_stale->holder.empty()) ||
            std::any_of(effects.push_to.begin(), effects.push_to.end(),
                        [](const std::string& id) { return id.empty(); });
        if (empty_id) co_return fail<answer>(errc::bad_input);
    }
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys;
    std::vector<std::string> args;
    args.reserve(2 + 13 * routes.size());
    args.push_back(p);
    args.push_back(ms_text(fan_marks_ttl()));
    for (auto& [fan, effects] : routes) {
        keys.push_back(p + "fan:" + fan);
        args.push_back(std::move(fan));
        args.push_back(effects.owner.value_or(""));
        args.push_back(effects.release_stale ? effects.release_stale->holder : "");
        args.push_back(effects.release_stale ? std::to_string(effects.release_stale->token)
                                             : "");
        args.push_back(effects.timer_due ? ms_text(*effects.timer_due) : "");
        args.push_back(std::move(effects.timer_payload));
        args.push_back(effects.claim_at ? ms_text(*effects.claim_at) : "");
        args.push_back(ms_text(effects.claim_window));
        args.push_back(std::move(effects.push_payload));
        args.push_back(std::to_string(effects.push_to.size()));
        for (auto& id : effects.push_to) args.push_back(std::move(id));
    }
    auto r = co_await redis_->eval(route_script(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    if (r->type != redis_reply::kind::array || r->elements.size() != 2 * routes.size()) {
        co_return fail<answer>(errc::protocol_error);
    }
    answer out;
    out.reserve(routes.size());
    for (std::size_t i = 0; i < routes.size(); ++i) {
        auto claimed = int_of(element(*r, 2 * i));
        auto armed = int_of(element(*r, 2 * i + 1));
        if (!claimed || !armed) co_return fail<answer>(errc::protocol_error);
        out.push_back(route_outcome{*claimed == 1, *armed == 1});
    }
    co_return out;
}

}  // namespace scrm::routing

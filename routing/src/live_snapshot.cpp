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

// ARGV: prefix, fan, now, window to open ('m', 'e' or ''), at, lock ttl to renew ('' none), marks
// ttl, agents... Returns {lock holder or '', lock token, lock ttl, exclusive or '', auto mark or
// '', agent mark or '', then per agent: online, load, last_assigned}.
constexpr int first_agent_arg = 8;
const storage::redis_script& snapshot_script() {
    static const storage::redis_script s = make_script(R"lua(
local f, now = ARGV[2], tonumber(ARGV[3])
local lk = k('lock', f)
if ARGV[4] ~= '' then open_window(f, ARGV[4], ARGV[5], ARGV[7]) end
if ARGV[6] ~= '' and redis.call('EXISTS', lk) == 1 then set_lock_ttl(f, ARGV[6]) end
local lock = redis.call('HMGET', lk, 'holder', 'token')
local ttl = 0
if lock[1] then ttl = redis.call('PTTL', lk) end
local marks = redis.call('HMGET', k('fl', f), 'auto', 'agent')
local out = {lock[1] or '', tonumber(lock[2] or '0'), ttl,
             redis.call('HGET', k('fan', f), 'exclusive') or '', marks[1] or '', marks[2] or ''}
for i = 8, #ARGV do
  local a = ARGV[i]
  out[#out + 1] = is_online(a, now) and 1 or 0
  out[#out + 1] = load_of(a)
  out[#out + 1] = tonumber(redis.call('HGET', k('lastpick'), a) or '0')
end
return out
)lua");
    return s;
}

// ARGV: prefix, fan, owner ('' none), stale holder ('' none), stale token, timer due ('' none),
// timer payload, claim at ('' none), claim window, marks ttl, push payload, push targets...
// Returns {claimed, armed}.
const storage::redis_script& route_script() {
    static const storage::redis_script s = make_script(R"lua(
local f = ARGV[2]
if ARGV[3] ~= '' then own(f, ARGV[3]) end
if ARGV[4] ~= '' then release(f, ARGV[4], ARGV[5]) end
local armed, claimed = 0, 0
if ARGV[6] ~= '' then armed = arm(f, ARGV[6], ARGV[7]) end
if ARGV[8] ~= '' then claimed = claim_auto(f, ARGV[8], ARGV[9], ARGV[10]) end
for i = 12, #ARGV do push(ARGV[i], ARGV[11]) end
return {claimed, armed}
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
    if (base.fan.openid.empty()) co_return fail<live_snapshot>(errc::bad_input);
    for (const auto& a : base.agents) {
        if (a.id.empty()) co_return fail<live_snapshot>(errc::bad_input);
    }
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "lock:" + base.fan.openid};
    std::vector<std::string> args;
    args.reserve(first_agent_arg - 1 + base.agents.size());
    args.push_back(p);
    args.push_back(base.fan.openid);
    args.push_back(ms_text(now));
    const bool opens = activity && activity->opens;
    args.push_back(!opens ? "" : *activity->opens == window_kind::message ? "m" : "e");
    args.push_back(opens ? ms_text(activity->at) : "");
    args.push_back(activity && activity->renews_lock
                       ? ms_text(activity->lock_ttl.value_or(opts_.lock_ttl))
                       : "");
    args.push_back(ms_text(fan_marks_ttl()));
    for (const auto& a : base.agents) args.push_back(a.id);
    auto r = co_await redis_->eval(snapshot_script(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    constexpr std::size_t head = 6;
    if (r->type != redis_reply::kind::array ||
        r->elements.size() != head + 3 * base.agents.size()) {
        co_return fail<live_snapshot>(errc::protocol_error);
    }
    auto holder = text_of(element(*r, 0));
    auto token = int_of(element(*r, 1));
    auto ttl = int_of(element(*r, 2));
    auto exclusive = text_of(element(*r, 3));
    live_snapshot out;
    if (!holder || !token || !ttl || !exclusive ||
        !read_mark(element(*r, 4), out.marks.auto_reply) ||
        !read_mark(element(*r, 5), out.marks.agent_reply)) {
        co_return fail<live_snapshot>(errc::protocol_error);
    }
    for (std::size_t i = 0; i < base.agents.size(); ++i) {
        auto online = int_of(element(*r, head + 3 * i));
        auto load = int_of(element(*r, head + 3 * i + 1));
        auto last = int_of(element(*r, head + 3 * i + 2));
        if (!online || !load || !last) co_return fail<live_snapshot>(errc::protocol_error);
        auto& a = base.agents[i];
        a.online = *online != 0;
        a.load = *load;
        a.last_assigned = *last;
    }
    auto known = [&](const std::string& id) {
        return std::any_of(base.agents.begin(), base.agents.end(),
                           [&](const agent_state& a) { return a.id == id; });
    };
    base.now = std::chrono::floor<std::chrono::seconds>(now);
    base.session_holder.reset();
    if (!holder->empty()) {
        if (known(*holder)) base.session_holder = *holder;
        out.lock = lock_info{std::move(*holder), *token, std::chrono::milliseconds(*ttl)};
    }
    if (!exclusive->empty() && known(*exclusive)) base.fan.exclusive_agent = std::move(*exclusive);
    base.auto_reply_suppressed = suppressed(out.marks, now, opts_.suppression_window);
    out.input = std::move(base);
    co_return out;
}

asio::awaitable<result<route_outcome>> live_state::apply_route(std::uint64_t clinic,
                                                               std::string fan,
                                                               route_effects effects) {
    const bool empty_id =
        fan.empty() || (effects.owner && effects.owner->empty()) ||
        (effects.release_stale && effects.release_stale->holder.empty()) ||
        std::any_of(effects.push_to.begin(), effects.push_to.end(),
                    [](const std::string& id) { return id.empty(); });
    if (empty_id) co_return fail<route_outcome>(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "fan:" + fan};
    std::vector<std::string> args;
    args.reserve(11 + effects.push_to.size());
    args.push_back(p);
    args.push_back(std::move(fan));
    args.push_back(effects.owner.value_or(""));
    args.push_back(effects.release_stale ? effects.release_stale->holder : "");
    args.push_back(effects.release_stale ? std::to_string(effects.release_stale->token) : "");
    args.push_back(effects.timer_due ? ms_text(*effects.timer_due) : "");
    args.push_back(std::move(effects.timer_payload));
    args.push_back(effects.claim_at ? ms_text(*effects.claim_at) : "");
    args.push_back(ms_text(effects.claim_window));
    args.push_back(ms_text(fan_marks_ttl()));
    args.push_back(std::move(effects.push_payload));
    for (auto& id : effects.push_to) args.push_back(std::move(id));
    auto r = co_await redis_->eval(route_script(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    auto claimed = int_of(element(*r, 0));
    auto armed = int_of(element(*r, 1));
    if (!claimed || !armed) co_return fail<route_outcome>(errc::protocol_error);
    co_return route_outcome{*claimed == 1, *armed == 1};
}

}  // namespace scrm::routing

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

// ARGV: prefix, fan, now, agents... Returns {lock holder or '', lock token, lock ttl, exclusive or
// '', auto mark or '', agent mark or '', then per agent: online, load, last_assigned}.
const storage::redis_script& snapshot_script() {
    static const storage::redis_script s = make_script(R"lua(
local f, now = ARGV[2], tonumber(ARGV[3])
local lk = k('lock', f)
local lock = redis.call('HMGET', lk, 'holder', 'token')
local ttl = 0
if lock[1] then ttl = redis.call('PTTL', lk) end
local marks = redis.call('HMGET', k('fl', f), 'auto', 'agent')
local out = {lock[1] or '', tonumber(lock[2] or '0'), ttl,
             redis.call('HGET', k('fan', f), 'exclusive') or '', marks[1] or '', marks[2] or ''}
for i = 4, #ARGV do
  local a = ARGV[i]
  out[#out + 1] = is_online(a, now) and 1 or 0
  out[#out + 1] = load_of(a)
  out[#out + 1] = tonumber(redis.call('HGET', k('lastpick'), a) or '0')
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

asio::awaitable<result<live_snapshot>> live_state::load_snapshot(std::uint64_t clinic,
                                                                 snapshot base, instant now) {
    if (base.fan.openid.empty()) co_return fail<live_snapshot>(errc::bad_input);
    for (const auto& a : base.agents) {
        if (a.id.empty()) co_return fail<live_snapshot>(errc::bad_input);
    }
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "lock:" + base.fan.openid};
    std::vector<std::string> args;
    args.reserve(3 + base.agents.size());
    args.push_back(p);
    args.push_back(base.fan.openid);
    args.push_back(ms_text(now));
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

}  // namespace scrm::routing

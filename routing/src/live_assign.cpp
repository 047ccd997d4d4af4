// Exclusive assignment (compare-and-set with the load update in the same script) and the load
// bookkeeping the even-distribution pick reads.
#include <iterator>

#include "live_detail.hpp"
#include "scrm/routing/live.hpp"

namespace scrm::routing {

namespace asio = boost::asio;
using namespace live_detail;
using storage::redis_reply;

namespace {

// ARGV: prefix, fan, agent, expected ('' = none), now (seconds), mode ('check' | 'repick'),
// candidates... Returns {status, exclusive}; a repick also returns each candidate's load and
// last_assigned before the commit, in order.
const storage::redis_script& commit_script() {
    static const storage::redis_script s = make_script(R"lua(
local f, a, expected, mode = ARGV[2], ARGV[3], ARGV[4], ARGV[6]
local fk = k('fan', f)
local cur = redis.call('HGET', fk, 'exclusive') or ''
if cur == a then return {'already_assigned', a} end
if cur ~= expected then return {'lost', cur} end
local status, seen = 'assigned', {}
if #ARGV > 6 then
  local mine = load_of(a)
  if mode == 'repick' then
    -- The even-distribution order of DESIGN.md §5: lowest load, least recently assigned,
    -- smallest id (string order).
    local best, bl, bp
    for i = 7, #ARGV do
      local c = ARGV[i]
      local l = load_of(c)
      local p = tonumber(redis.call('HGET', k('lastpick'), c) or '0')
      seen[#seen + 1] = l
      seen[#seen + 1] = p
      if best == nil or l < bl or (l == bl and (p < bp or (p == bp and c < best))) then
        best, bl, bp = c, l, p
      end
    end
    if best ~= a then a, status = best, 'repicked' end
  else
    for i = 7, #ARGV do
      if ARGV[i] ~= a and load_of(ARGV[i]) < mine then return {'stale_pick', cur} end
    end
  end
end
redis.call('HSET', fk, 'exclusive', a)
own(f, a)
redis.call('HSET', k('lastpick'), a, ARGV[5])
local out = {status, a}
for i = 1, #seen do out[#out + 1] = seen[i] end
return out
)lua");
    return s;
}

// ARGV: prefix, fan, agent. Returns 1 when the agent's unanswered set grew.
const storage::redis_script& unanswered_script() {
    static const storage::redis_script s = make_script("return own(ARGV[2], ARGV[3])\n");
    return s;
}

// ARGV: prefix, fan. Returns the owner whose set shrank, or ''.
const storage::redis_script& answered_script() {
    static const storage::redis_script s = make_script(R"lua(
local f = ARGV[2]
local fk = k('fan', f)
local prev = redis.call('HGET', fk, 'owner')
if not prev then return '' end
redis.call('HDEL', fk, 'owner')
redis.call('SREM', k('owned', prev), f)
return prev
)lua");
    return s;
}

// ARGV: prefix, agents... Returns {load, last_assigned, ...} in order.
const storage::redis_script& loads_script() {
    static const storage::redis_script s = make_script(R"lua(
local out = {}
for i = 2, #ARGV do
  out[#out + 1] = load_of(ARGV[i])
  out[#out + 1] = tonumber(redis.call('HGET', k('lastpick'), ARGV[i]) or '0')
end
return out
)lua");
    return s;
}

std::optional<assign_status> assign_status_of(const std::string& s) {
    if (s == "assigned") return assign_status::assigned;
    if (s == "already_assigned") return assign_status::already_assigned;
    if (s == "lost") return assign_status::lost;
    if (s == "stale_pick") return assign_status::stale_pick;
    if (s == "repicked") return assign_status::repicked;
    return std::nullopt;
}

}  // namespace

asio::awaitable<result<assign_result>> live_state::commit_exclusive(
    std::uint64_t clinic, std::string fan, std::optional<std::string> expected, std::string agent,
    instant now, std::vector<std::string> candidates, bool repick) {
    if (fan.empty() || agent.empty() || (expected && expected->empty())) {
        co_return fail<assign_result>(errc::bad_input);
    }
    for (const auto& c : candidates) {
        if (c.empty()) co_return fail<assign_result>(errc::bad_input);
    }
    const std::string p = key_prefix(clinic);
    const auto seconds = std::chrono::floor<std::chrono::seconds>(now).time_since_epoch().count();
    std::vector<std::string> keys{p + "fan:" + fan};
    std::vector<std::string> args{p,
                                  std::move(fan),
                                  std::move(agent),
                                  expected.value_or(""),
                                  std::to_string(seconds),
                                  repick ? "repick" : "check"};
    args.insert(args.end(), candidates.begin(), candidates.end());
    auto r = co_await redis_->eval(commit_script(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    auto status = text_of(element(*r, 0));
    auto current = text_of(element(*r, 1));
    std::optional<assign_status> st = status ? assign_status_of(*status) : std::nullopt;
    if (!st || !current) co_return fail<assign_result>(errc::protocol_error);
    assign_result out;
    out.status = *st;
    if (!current->empty()) out.exclusive_agent = std::move(*current);
    if (repick && (*st == assign_status::assigned || *st == assign_status::repicked)) {
        if (r->elements.size() != 2 + 2 * candidates.size()) {
            co_return fail<assign_result>(errc::protocol_error);
        }
        for (std::size_t i = 0; i < candidates.size(); ++i) {
            auto load = int_of(element(*r, 2 + 2 * i));
            auto last = int_of(element(*r, 3 + 2 * i));
            if (!load || !last) co_return fail<assign_result>(errc::protocol_error);
            out.loads.push_back(agent_load{std::move(candidates[i]), *load, *last});
        }
    }
    co_return out;
}

asio::awaitable<result<void>> live_state::set_exclusive(std::uint64_t clinic, std::string fan,
                                                        std::optional<std::string> agent) {
    if (fan.empty() || (agent && agent->empty())) co_return make_error_code(errc::bad_input);
    std::string key = key_prefix(clinic) + "fan:" + fan;
    if (agent) {
        std::string field = "exclusive";
        auto r = co_await redis_->hset(std::move(key), std::move(field), std::move(*agent));
        if (!r) co_return r.error();
    } else {
        std::vector<std::string> fields{"exclusive"};
        auto r = co_await redis_->hdel(std::move(key), std::move(fields));
        if (!r) co_return r.error();
    }
    co_return result<void>{};
}

asio::awaitable<result<std::optional<std::string>>> live_state::exclusive_agent(
    std::uint64_t clinic, std::string fan) {
    if (fan.empty()) co_return fail<std::optional<std::string>>(errc::bad_input);
    std::string key = key_prefix(clinic) + "fan:" + fan;
    std::string field = "exclusive";
    co_return co_await redis_->hget(std::move(key), std::move(field));
}

asio::awaitable<result<bool>> live_state::note_unanswered(std::uint64_t clinic, std::string fan,
                                                          std::string agent) {
    if (fan.empty() || agent.empty()) co_return fail<bool>(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "fan:" + fan};
    std::vector<std::string> args{p, std::move(fan), std::move(agent)};
    auto r = co_await redis_->eval(unanswered_script(), std::move(keys), std::move(args));
    if (!r) co_return result<bool>(boost::system::in_place_error, r.error());
    auto grew = int_of(&*r);
    if (!grew) co_return fail<bool>(errc::protocol_error);
    co_return *grew != 0;
}

asio::awaitable<result<std::optional<std::string>>> live_state::note_answered(std::uint64_t clinic,
                                                                              std::string fan) {
    using out_t = std::optional<std::string>;
    if (fan.empty()) co_return fail<out_t>(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "fan:" + fan};
    std::vector<std::string> args{p, std::move(fan)};
    auto r = co_await redis_->eval(answered_script(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    auto prev = text_of(&*r);
    if (!prev) co_return fail<out_t>(errc::protocol_error);
    if (prev->empty()) co_return out_t{};
    co_return out_t(std::move(*prev));
}

asio::awaitable<result<std::vector<agent_load>>> live_state::read_loads(
    std::uint64_t clinic, std::vector<std::string> agents) {
    using out_t = std::vector<agent_load>;
    for (const auto& a : agents) {
        if (a.empty()) co_return fail<out_t>(errc::bad_input);
    }
    if (agents.empty()) co_return out_t{};
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "lastpick"};
    std::vector<std::string> args;
    args.reserve(agents.size() + 1);
    args.push_back(p);
    args.insert(args.end(), agents.begin(), agents.end());
    auto r = co_await redis_->eval(loads_script(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    if (r->type != redis_reply::kind::array || r->elements.size() != 2 * agents.size()) {
        co_return fail<out_t>(errc::protocol_error);
    }
    out_t out;
    out.reserve(agents.size());
    for (std::size_t i = 0; i < agents.size(); ++i) {
        auto load = int_of(element(*r, 2 * i));
        auto last = int_of(element(*r, 2 * i + 1));
        if (!load || !last) co_return fail<out_t>(errc::protocol_error);
        out.push_back(agent_load{std::move(agents[i]), *load, *last});
    }
    co_return out;
}

}  // namespace scrm::routing

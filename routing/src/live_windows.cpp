// Auto-reply suppression marks and the customer-service window counters, one hash per fan.
#include "live_detail.hpp"
#include "scrm/routing/live.hpp"

namespace scrm::routing {

namespace asio = boost::asio;
using namespace live_detail;
using storage::redis_reply;

namespace {

// ARGV: prefix, fan, field, now, ttl. Sets the mark unless it already is later.
const storage::redis_script& mark_script() {
    static const storage::redis_script s = make_script(R"lua(
local fk = k('fl', ARGV[2])
local cur = tonumber(redis.call('HGET', fk, ARGV[3]) or '')
if not cur or tonumber(ARGV[4]) > cur then redis.call('HSET', fk, ARGV[3], ARGV[4]) end
redis.call('PEXPIRE', fk, ARGV[5])
return 1
)lua");
    return s;
}

// ARGV: prefix, fan, now, window (ms), ttl. 1: claimed (auto mark set to now); 0: suppressed.
const storage::redis_script& claim_script() {
    static const storage::redis_script s =
        make_script("return claim_auto(ARGV[2], ARGV[3], ARGV[4], ARGV[5])\n");
    return s;
}

// ARGV: prefix, fan, window ('m' or 'e'), now, ttl.
const storage::redis_script& open_script() {
    static const storage::redis_script s = make_script(R"lua(
open_window(ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return 1
)lua");
    return s;
}

// ARGV: prefix, fan, sender ('agent'|'auto'), now, message length, message quota, event length,
// event quota. Returns {status, window ('m'|'e'|''), remaining}.
const storage::redis_script& spend_script() {
    static const storage::redis_script s = make_script(R"lua(
local fk = k('fl', ARGV[2])
local now = tonumber(ARGV[4])
local need = 1
if ARGV[3] == 'auto' then need = 2 end
local rules = {{'m', tonumber(ARGV[5]), tonumber(ARGV[6])}, {'e', tonumber(ARGV[7]), tonumber(ARGV[8])}}
local best, best_end, best_left = nil, 0, 0
local any_open, last_only = false, false
for _, w in ipairs(rules) do
  local opened = tonumber(redis.call('HGET', fk, w[1] .. '_open') or '')
  if opened and now < opened + w[2] then
    any_open = true
    local left = w[3] - tonumber(redis.call('HGET', fk, w[1] .. '_used') or '0')
    if left >= need then
      if not best or opened + w[2] < best_end then
        best, best_end, best_left = w[1], opened + w[2], left
      end
    elseif left == 1 then
      last_only = true
    end
  end
end
if best then
  redis.call('HINCRBY', fk, best .. '_used', 1)
  return {'spent', best, best_left - 1}
end
if not any_open then return {'closed', '', 0} end
if last_only then return {'last_slot_reserved', '', 0} end
return {'exhausted', '', 0}
)lua");
    return s;
}

std::optional<instant> instant_of(const redis_reply* r) {
    auto v = int_of(r);
    if (!v) return std::nullopt;
    return instant(std::chrono::milliseconds(*v));
}

std::optional<spend_status> spend_status_of(const std::string& s) {
    if (s == "spent") return spend_status::spent;
    if (s == "closed") return spend_status::closed;
    if (s == "exhausted") return spend_status::exhausted;
    if (s == "last_slot_reserved") return spend_status::last_slot_reserved;
    return std::nullopt;
}

}  // namespace

asio::awaitable<result<void>> live_state::record_auto_reply(std::uint64_t clinic, std::string fan,
                                                            instant now) {
    if (fan.empty()) co_return make_error_code(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "fl:" + fan};
    std::vector<std::string> args{p, std::move(fan), "auto", ms_text(now),
                                  ms_text(fan_marks_ttl())};
    auto r = co_await redis_->eval(mark_script(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    co_return result<void>{};
}

asio::awaitable<result<bool>> live_state::claim_auto_reply(std::uint64_t clinic, std::string fan,
                                                           instant now,
                                                           std::chrono::milliseconds window) {
    if (fan.empty()) {
        co_return result<bool>(boost::system::in_place_error, make_error_code(errc::bad_input));
    }
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "fl:" + fan};
    std::vector<std::string> args{p, std::move(fan), ms_text(now), std::to_string(window.count()),
                                  ms_text(fan_marks_ttl())};
    auto r = co_await redis_->eval(claim_script(), std::move(keys), std::move(args));
    if (!r) co_return result<bool>(boost::system::in_place_error, r.error());
    co_return r->type == storage::redis_reply::kind::integer && r->integer == 1;
}

asio::awaitable<result<void>> live_state::record_agent_reply(std::uint64_t clinic, std::string fan,
                                                             instant now) {
    if (fan.empty()) co_return make_error_code(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "fl:" + fan};
    std::vector<std::string> args{p, std::move(fan), "agent", ms_text(now),
                                  ms_text(fan_marks_ttl())};
    auto r = co_await redis_->eval(mark_script(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    co_return result<void>{};
}

asio::awaitable<result<reply_marks>> live_state::reply_marks_of(std::uint64_t clinic,
                                                                std::string fan) {
    if (fan.empty()) co_return fail<reply_marks>(errc::bad_input);
    std::vector<std::string> cmd{"HMGET", key_prefix(clinic) + "fl:" + fan, "auto", "agent"};
    auto r = co_await redis_->command(std::move(cmd));
    if (!r) co_return r.error();
    const redis_reply* a = element(*r, 0);
    const redis_reply* g = element(*r, 1);
    if (a == nullptr || g == nullptr) co_return fail<reply_marks>(errc::protocol_error);
    reply_marks m;
    if (a->type != redis_reply::kind::nil) {
        m.auto_reply = instant_of(a);
        if (!m.auto_reply) co_return fail<reply_marks>(errc::protocol_error);
    }
    if (g->type != redis_reply::kind::nil) {
        m.agent_reply = instant_of(g);
        if (!m.agent_reply) co_return fail<reply_marks>(errc::protocol_error);
    }
    co_return m;
}

asio::awaitable<result<bool>> live_state::is_suppressed(std::uint64_t clinic, std::string fan,
                                                        instant now) {
    auto m = co_await reply_marks_of(clinic, std::move(fan));
    if (!m) co_return result<bool>(boost::system::in_place_error, m.error());
    co_return suppressed(*m, now, opts_.suppression_window);
}

asio::awaitable<result<void>> live_state::open_window(std::uint64_t clinic, std::string fan,
                                                      window_kind kind, instant now) {
    if (fan.empty()) co_return make_error_code(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "fl:" + fan};
    std::vector<std::string> args{p, std::move(fan), kind == window_kind::message ? "m" : "e",
                                  ms_text(now), ms_text(fan_marks_ttl())};
    auto r = co_await redis_->eval(open_script(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    co_return result<void>{};
}

asio::awaitable<result<spend_result>> live_state::spend_window(std::uint64_t clinic,
                                                               std::string fan, sender_kind who,
                                                               instant now) {
    if (fan.empty()) co_return fail<spend_result>(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "fl:" + fan};
    std::vector<std::string> args{p,
                                  std::move(fan),
                                  who == sender_kind::auto_reply ? "auto" : "agent",
                                  ms_text(now),
                                  ms_text(opts_.message_window.length),
                                  std::to_string(opts_.message_window.messages),
                                  ms_text(opts_.event_window.length),
                                  std::to_string(opts_.event_window.messages)};
    auto r = co_await redis_->eval(spend_script(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    auto status = text_of(element(*r, 0));
    auto window = text_of(element(*r, 1));
    auto left = int_of(element(*r, 2));
    std::optional<spend_status> st = status ? spend_status_of(*status) : std::nullopt;
    if (!st || !window || !left) co_return fail<spend_result>(errc::protocol_error);
    spend_result out;
    out.status = *st;
    if (*window == "m") out.window = window_kind::message;
    if (*window == "e") out.window = window_kind::event;
    out.remaining = static_cast<int>(*left);
    co_return out;
}

asio::awaitable<result<std::vector<window_state>>> live_state::windows_of(std::uint64_t clinic,
                                                                          std::string fan,
                                                                          instant now) {
    using out_t = std::vector<window_state>;
    if (fan.empty()) co_return fail<out_t>(errc::bad_input);
    std::vector<std::string> cmd{
        "HMGET", key_prefix(clinic) + "fl:" + fan, "m_open", "m_used", "e_open", "e_used"};
    auto r = co_await redis_->command(std::move(cmd));
    if (!r) co_return r.error();
    out_t out;
    const window_kind kinds[] = {window_kind::message, window_kind::event};
    const quota_rule* rules[] = {&opts_.message_window, &opts_.event_window};
    for (std::size_t i = 0; i < 2; ++i) {
        const redis_reply* opened = element(*r, 2 * i);
        const redis_reply* used = element(*r, 2 * i + 1);
        if (opened == nullptr || used == nullptr) co_return fail<out_t>(errc::protocol_error);
        std::optional<instant> at;
        long long n = 0;
        if (opened->type != redis_reply::kind::nil) {
            at = instant_of(opened);
            auto u = int_of(used);
            if (!at || !u) co_return fail<out_t>(errc::protocol_error);
            n = *u;
        }
        out.push_back(evaluate_window(kinds[i], at, static_cast<int>(n), now, *rules[i]));
    }
    co_return out;
}

}  // namespace scrm::routing

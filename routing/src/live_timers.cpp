// Durable no-answer timers: a sorted set by due time, claimed atomically with a lease, confirmed
// by the claimant, back to due when the lease runs out.
#include "live_detail.hpp"
#include "scrm/routing/live.hpp"

namespace scrm::routing {

namespace asio = boost::asio;
using namespace live_detail;
using storage::redis_reply;

namespace {

// ARGV: prefix, fan, due, payload. Returns 1 when armed.
const storage::redis_script& arm_script() {
    static const storage::redis_script s = make_script("return arm(ARGV[2], ARGV[3], ARGV[4])\n");
    return s;
}

// ARGV: prefix, fan. Returns 1 when a timer was removed.
const storage::redis_script& cancel_script() {
    static const storage::redis_script s = make_script(R"lua(
local f = ARGV[2]
redis.call('ZREM', k('tdue'), f)
redis.call('ZREM', k('tclaimed'), f)
return redis.call('DEL', k('timer', f))
)lua");
    return s;
}

// ARGV: prefix, now, limit, lease. Returns {{fan, due, payload, claim}, ...} in due order.
// Expired leases go back to due first (keeping their due time), so they are claimed again in order.
const storage::redis_script& claim_script() {
    static const storage::redis_script s = make_script(R"lua(
local now, limit, lease = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local due, claimed = k('tdue'), k('tclaimed')
for _, f in ipairs(redis.call('ZRANGEBYSCORE', claimed, '-inf', ARGV[2])) do
  redis.call('ZREM', claimed, f)
  local d = redis.call('HGET', k('timer', f), 'due')
  if d then
    redis.call('HDEL', k('timer', f), 'claim')
    redis.call('ZADD', due, d, f)
  end
end
local out = {}
for _, f in ipairs(redis.call('ZRANGEBYSCORE', due, '-inf', ARGV[2], 'LIMIT', 0, limit)) do
  redis.call('ZREM', due, f)
  local tk = k('timer', f)
  local t = redis.call('HMGET', tk, 'due', 'payload')
  if t[1] then
    local id = redis.call('INCR', k('timerseq'))
    redis.call('HSET', tk, 'claim', id)
    redis.call('ZADD', claimed, now + lease, f)
    out[#out + 1] = {f, t[1], t[2] or '', id}
  end
end
return out
)lua");
    return s;
}

// ARGV: prefix, fan, claim. Returns 1 when the claim was current and the timer is deleted.
const storage::redis_script& confirm_script() {
    static const storage::redis_script s = make_script(R"lua(
local f = ARGV[2]
local tk = k('timer', f)
if redis.call('HGET', tk, 'claim') ~= ARGV[3] then return 0 end
redis.call('DEL', tk)
redis.call('ZREM', k('tclaimed'), f)
return 1
)lua");
    return s;
}

// ARGV: prefix, fan. Returns {due, payload, lease end or 0} or {}.
const storage::redis_script& timer_of_script() {
    static const storage::redis_script s = make_script(R"lua(
local f = ARGV[2]
local t = redis.call('HMGET', k('timer', f), 'due', 'payload', 'claim')
if not t[1] then return {} end
local lease = 0
if t[3] then lease = tonumber(redis.call('ZSCORE', k('tclaimed'), f) or '0') end
return {t[1], t[2] or '', lease}
)lua");
    return s;
}

instant ms_instant(long long ms) {
    return instant(std::chrono::milliseconds(ms));
}

result<bool> to_bool(const result<redis_reply>& r) {
    if (!r) return result<bool>(boost::system::in_place_error, r.error());
    auto v = int_of(&*r);
    if (!v) return fail<bool>(errc::protocol_error);
    return *v != 0;
}

}  // namespace

asio::awaitable<result<bool>> live_state::arm_timer(std::uint64_t clinic, std::string fan,
                                                    instant due, std::string payload) {
    if (fan.empty()) co_return fail<bool>(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "tdue"};
    std::vector<std::string> args{p, std::move(fan), ms_text(due), std::move(payload)};
    auto r = co_await redis_->eval(arm_script(), std::move(keys), std::move(args));
    co_return to_bool(r);
}

asio::awaitable<result<bool>> live_state::cancel_timer(std::uint64_t clinic, std::string fan) {
    if (fan.empty()) co_return fail<bool>(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "tdue"};
    std::vector<std::string> args{p, std::move(fan)};
    auto r = co_await redis_->eval(cancel_script(), std::move(keys), std::move(args));
    co_return to_bool(r);
}

asio::awaitable<result<std::vector<claimed_timer>>> live_state::claim_due_timers(
    std::uint64_t clinic, instant now, std::size_t limit) {
    using out_t = std::vector<claimed_timer>;
    if (limit == 0) co_return fail<out_t>(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "tdue", p + "tclaimed"};
    std::vector<std::string> args{p, ms_text(now), std::to_string(limit),
                                  ms_text(opts_.timer_lease)};
    auto r = co_await redis_->eval(claim_script(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    if (r->type != redis_reply::kind::array) co_return fail<out_t>(errc::protocol_error);
    out_t out;
    out.reserve(r->elements.size());
    for (const auto& e : r->elements) {
        auto fan = text_of(element(e, 0));
        auto due = int_of(element(e, 1));
        auto payload = text_of(element(e, 2));
        auto claim = int_of(element(e, 3));
        if (!fan || !due || !payload || !claim) co_return fail<out_t>(errc::protocol_error);
        out.push_back(
            claimed_timer{std::move(*fan), ms_instant(*due), std::move(*payload), *claim});
    }
    co_return out;
}

asio::awaitable<result<bool>> live_state::confirm_timer(std::uint64_t clinic, std::string fan,
                                                        std::int64_t claim) {
    if (fan.empty()) co_return fail<bool>(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "tclaimed"};
    std::vector<std::string> args{p, std::move(fan), std::to_string(claim)};
    auto r = co_await redis_->eval(confirm_script(), std::move(keys), std::move(args));
    co_return to_bool(r);
}

asio::awaitable<result<std::optional<timer_info>>> live_state::timer_of(std::uint64_t clinic,
                                                                        std::string fan) {
    using out_t = std::optional<timer_info>;
    if (fan.empty()) co_return fail<out_t>(errc::bad_input);
    const std::string p = key_prefix(clinic);
    std::vector<std::string> keys{p + "tdue"};
    std::vector<std::string> args{p, std::move(fan)};
    auto r = co_await redis_->eval(timer_of_script(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    if (r->type != redis_reply::kind::array) co_return fail<out_t>(errc::protocol_error);
    if (r->elements.empty()) co_return out_t{};
    auto due = int_of(element(*r, 0));
    auto payload = text_of(element(*r, 1));
    auto lease = int_of(element(*r, 2));
    if (!due || !payload || !lease) co_return fail<out_t>(errc::protocol_error);
    timer_info info;
    info.due = ms_instant(*due);
    info.payload = std::move(*payload);
    if (*lease != 0) info.lease_until = ms_instant(*lease);
    co_return out_t(std::move(info));
}

}  // namespace scrm::routing

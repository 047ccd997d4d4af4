// The routing stage (DESIGN.md §4 steps 5–6, §5): the sink the webhook hands each stored message
// to. It loads the clinic's settings and agents and the fan's owners from MySQL, the live state
// from Redis, runs decide(), commits the effects (exclusive pick, load, receipt, push to the
// agents' consoles, customer-service window, store binding, no-answer timer) and answers with the
// passive reply (welcome or auto-reply). Also the two background jobs around it: the timer worker
// (the no-answer auto-reply) and the sweeper (stored but unrouted messages).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scrm/common/error.hpp"
#include "scrm/gateway/webhook.hpp"
#include "scrm/routing/live.hpp"
#include "scrm/routing/snapshot.hpp"

namespace scrm::storage {
class mysql_pool;
class redis_client;
}  // namespace scrm::storage

namespace scrm::wechat {
class outbox;
}

namespace scrm::gateway {

// A clinic's routing settings (table clinic_routing; a clinic without a row has the column
// defaults). Pure data.
struct clinic_settings {
    routing::clinic_config config;  // modes, switches for after_hours/no_agent, hours, time zone
    bool welcome_enabled = true;
    bool timeout_enabled = true;
    std::string welcome_text, consultant_offline_text, after_hours_text, no_agent_text,
        timeout_text;
    std::chrono::seconds suppression_window{600};
    std::chrono::seconds timeout{300};
    std::chrono::seconds lock_ttl{600};
};

// The text of a per-message auto-reply kind.
const std::string& auto_reply_text(const clinic_settings& s, routing::auto_reply_kind k);

// Parses clinic_routing.work_hours (§8 "work_hours" array) and closed_dates (array of
// "YYYY-MM-DD") into `out`. False (and `out` untouched) when either is malformed.
bool parse_hours(std::string_view work_hours_json, std::string_view closed_dates_json,
                 routing::clinic_config& out);

// The store id a QR scene names: "store_<id>" (SCAN; a subscribe's scene arrives without its
// "qrscene_" prefix) or "qrscene_store_<id>"; nullopt for anything else.
std::optional<std::uint64_t> store_from_scene(std::string_view scene) noexcept;

struct routing_stage_options {
    // How long a request waiting for WeChat's answer waits for routing (WeChat gives up after
    // 5 s, and storing came first). Past it the request is answered without a passive reply and
    // routing finishes in the background — an auto-reply it then decides goes through the
    // outbox. 0: wait for routing however long it takes.
    std::chrono::milliseconds reply_budget{std::chrono::seconds(2)};
    // A fan message's routing is decided inside the transaction that stores it (before_store:
    // the live state is read before the store — one Redis command timeout at most when Redis
    // stalls — and the receipt is written with the row); the reply budget then covers only the
    // effects. false: every message is routed after its commit (route()), as events are.
    bool decide_in_store = true;
    // Settings and agents of a clinic are reloaded after this long, in the background: messages
    // meanwhile use the previous copy — but never one older than twice this (then the message
    // waits for the reload), so a change reaches every message routed 2 × this after it. 0: read
    // for every message (tests).
    std::chrono::milliseconds cache_max_age{std::chrono::seconds(5)};
    // An exclusive pick refused as stale_pick is decided again from a fresh snapshot at most this
    // many times; the last attempt commits without the load re-check.
    int max_redecide = 3;
    // Sweeper: messages stored at least `sweep_min_age` ago (the request that stored them had
    // its chance) and at most `sweep_max_age` ago (older ones are history, not conversations).
    std::chrono::milliseconds sweep_min_age{std::chrono::seconds(5)};
    std::chrono::milliseconds sweep_max_age{std::chrono::hours(72)};
    std::size_t sweep_batch = 100;
    std::chrono::milliseconds sweep_interval{std::chrono::seconds(2)};
    std::size_t timer_batch = 50;
    std::chrono::milliseconds timer_interval{std::chrono::seconds(1)};
    // Only these clinics' messages and timers in the sweeper and the timer worker; empty: every
    // clinic. Lets tests (or an operator) keep workers to their own clinics on a shared database.
    std::vector<std::uint64_t> clinics;
    // The clock (injected in tests).
    std::function<routing::instant()> now;
    // Called for each TEMPLATESENDJOBFINISH event before its receipt is written, with the
    // account id, the fan's openid, MsgID and Status (the send log's delivery report). An error
    // leaves the event unrouted: the sweeper hands it on again. Empty: nothing is called.
    std::function<boost::asio::awaitable<result<void>>(std::uint64_t, std::string, std::uint64_t,
                                                       std::string)>
        on_template_finished;
};

// "Who would get this now?" (DESIGN.md §5): what routing would decide for a fan's message at this
// moment, computed without side effects.
struct route_preview {
    bool fan_known = false;     // the fan has a row (wrote, followed or was set up)
    routing::snapshot input;    // what decide() was given (static part and live state)
    std::string decision_json;  // the decision as scrm-route writes it (§8), receipt included
    std::optional<std::string> auto_reply_text;  // the text its auto-reply would send, if any
    std::optional<routing::lock_info> lock;      // the fan's session lock as stored
};

struct routing_stage_stats {
    std::uint64_t stored = 0;        // messages handed on by the webhook
    std::uint64_t routed = 0;        // receipts written (webhook, sweeper)
    std::uint64_t swept = 0;         // of those, by the sweeper
    std::uint64_t with_row = 0;      // of those, by the commit that stored the message
    std::uint64_t auto_replies = 0;  // welcome and auto-replies sent (passive or outbox)
    std::uint64_t timeouts = 0;      // timeout auto-replies handed to the outbox
    std::uint64_t failures = 0;      // messages left for the sweeper by an error
    // Handed on by the webhook and still being routed (a request past its reply budget is
    // answered while routing goes on).
    std::uint64_t in_flight = 0;
    // How long webhook requests waited in on_stored, summed: the routing stage's share of the
    // webhook's latency (against the HTTP histogram's sum for the webhook route).
    std::chrono::nanoseconds waited{0};
};

// Thread-safe. Every dependency must outlive it; stop() before the outbox, the pool and Redis
// stop. Errors while routing a message are logged (ids only, never text) and leave the message
// unrouted for the sweeper: a message is routed exactly once — the receipt's primary key decides
// who did it, and only that caller pushes, replies and arms the timer.
class routing_stage final : public stored_message_sink {
public:
    routing_stage(boost::asio::any_io_executor ex, storage::mysql_pool& mysql,
                  std::shared_ptr<storage::redis_client> redis, routing::live_state& live,
                  wechat::outbox& outbox, routing_stage_options opts = {});
    ~routing_stage() override;

    // A fan message's routing decided in the store's transaction: the live state read now (the
    // message's activity applied, as routing it would), decide() given the fan's owners there.
    boost::asio::awaitable<std::shared_ptr<routed_in_store>> before_store(
        const std::shared_ptr<const account>& a, const wechat::inbound_message& m) override;
    boost::asio::awaitable<std::optional<passive_reply>> on_stored(stored_message m) override;

    // One sweep: routes unrouted messages in the age window (can_reply false). How many it
    // routed.
    boost::asio::awaitable<result<std::size_t>> sweep_once();
    // One timer round, per clinic (every clinic, or opts.clinics): takes agents whose presence
    // ran out offline, releasing their session locks (routing_live reap_offline); claims due
    // no-answer timers, sends the timeout auto-reply through the outbox where allowed, confirms
    // them. How many timers claimed.
    boost::asio::awaitable<result<std::size_t>> run_timers_once();

    // Starts the sweeper and the timer worker loops on the executor.
    void start_workers();
    // Stops them; completes when both loops have ended (or after `limit`).
    boost::asio::awaitable<void> stop(std::chrono::milliseconds limit = std::chrono::seconds(10));

    // The decision and receipt a text message from `openid` to `account` (of `clinic`) would get
    // now: the clinic's settings and agents read afresh (which refreshes the cache), the fan's
    // owners from MySQL, the live state read by load_snapshot without a fan activity — nothing
    // is written anywhere. An `assigned` pick is reported, not committed. errc::not_found for a
    // clinic that does not exist.
    boost::asio::awaitable<result<route_preview>> preview(std::uint64_t clinic,
                                                          std::uint64_t account,
                                                          std::string openid);

    // Settings as the stage sees them (cached); for tests and the admin dry run.
    boost::asio::awaitable<result<std::shared_ptr<const clinic_settings>>> settings(
        std::uint64_t clinic);

    routing_stage_stats stats() const;

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace scrm::gateway

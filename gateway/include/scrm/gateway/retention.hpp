// Retention (issue 6): a clinic may keep message content only so long — clinics.
// message_retention_days, NULL = for ever. A fan's data (messages, their media files and routing
// receipts, outbound messages, chat sessions, patient bindings, the fan row) is removed that long
// after they unfollow, by a background worker, in bounded batches: each batch is its own short
// transaction that first re-checks, with the fan's row locked, that the fan is still unfollowed
// and due — a fan who follows again keeps what is left. The same worker removes integration events
// (idempotency records) older than integration_event_days (at least 7).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "scrm/common/error.hpp"

namespace scrm::storage {
class mysql_pool;
}

namespace scrm::gateway {

struct retention_options {
    std::vector<std::uint64_t> clinics;  // only these clinics (SCRM_WORKER_CLINICS); empty: all
    std::filesystem::path media_dir;     // where inbound media files live (media_fetcher's dir)
    std::chrono::milliseconds first_pass{2000};  // after start
    std::chrono::milliseconds interval{std::chrono::hours(1)};
    std::size_t fans_per_pass = 200;       // due fans looked at per query
    std::size_t messages_per_batch = 500;  // messages removed per transaction
    // Integration events (their idempotency records, docs/integration.md) older than this are
    // removed; the integration API promises at least 7 days, so less is raised to 7.
    std::uint32_t integration_event_days = 30;
    std::size_t events_per_batch = 1000;  // integration events removed per statement
};

// Thread-safe. The pool must outlive it; stop() before the pool stops.
class retention_worker {
public:
    retention_worker(boost::asio::any_io_executor ex, storage::mysql_pool& mysql,
                     retention_options opts);
    ~retention_worker();
    retention_worker(const retention_worker&) = delete;
    retention_worker& operator=(const retention_worker&) = delete;

    void start();
    boost::asio::awaitable<void> stop();

    // One pass over every due fan in scope, then the old integration events in scope: how many
    // fans were removed.
    boost::asio::awaitable<result<std::size_t>> run_once();

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace scrm::gateway

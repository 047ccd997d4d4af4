// Group commit: a batcher (batcher.hpp) whose batch is one MySQL transaction on a pool worker —
// one transaction, a few multi-row statements, one COMMIT — answering each caller with its own
// outcome. The next batch starts the moment the previous one lands, so batches grow with the load
// and a lone job waits for nothing. Used by the message store (inbound rows) and the routing
// stage (receipts).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "scrm/common/error.hpp"
#include "scrm/storage/batcher.hpp"
#include "scrm/storage/mysql.hpp"

namespace scrm::storage {

// Batches carry their values inline: keep a statement well under max_allowed_packet (16 MiB by
// default) — the default max_bytes (2 MiB) does.
using group_commit_limits = batch_limits;
using group_commit_stats = batch_stats;

// Thread-safe. stop() (or destroy it) before the pool stops. `Outcome` must be default
// constructible.
template <class Job, class Outcome>
class group_commit {
public:
    // Commits a whole batch in one transaction (begin … commit on `db`) and returns one outcome
    // per job, in batch order; an error fails every job of the batch (nothing of it committed, or
    // — after a lost COMMIT answer — unknown: callers must be able to tell, as both users do).
    using commit_fn =
        std::function<result<std::vector<Outcome>>(mysql_session&, const std::vector<Job>&)>;
    // A job's size in bytes in the batch's statements (for group_commit_limits::max_bytes).
    using size_fn = std::function<std::size_t(const Job&)>;

    group_commit(boost::asio::any_io_executor ex, mysql_pool& mysql, std::string name,
                 commit_fn commit, size_fn size, group_commit_limits limits = {})
        : batches_(std::move(ex), std::move(name), on_pool(mysql, std::move(commit)),
                   std::move(size), limits) {}

    // Refuses new jobs; waiting ones complete with errc::shutting_down (a batch already on a
    // worker finishes and answers its jobs).
    void stop() { batches_.stop(); }
    // Completes when the job's batch committed (its outcome) or failed (the batch's error).
    boost::asio::awaitable<result<Outcome>> submit(Job job) {
        co_return co_await batches_.submit(std::move(job));
    }
    group_commit_stats stats() const { return batches_.stats(); }

private:
    static typename batcher<Job, Outcome>::batch_fn on_pool(mysql_pool& mysql, commit_fn commit) {
        return [&mysql, commit = std::move(commit)](
                   std::vector<Job>& batch) -> boost::asio::awaitable<result<std::vector<Outcome>>> {
            auto fn = [&commit, &batch](mysql_session& db) { return commit(db, batch); };
            co_return co_await mysql.run(fn);
        };
    }

    batcher<Job, Outcome> batches_;
};

}  // namespace scrm::storage

// A batcher: many coroutines each hand in one job and wait; one loop (a coroutine on a strand)
// takes everything queued, runs it as one batch through an asynchronous function and answers each
// caller with its own outcome. The next batch starts the moment the previous one lands, so
// batches grow with the load and a lone job waits for nothing. The loop starts with the first job
// and then waits on a timer while idle; a job wakes it by cancelling the timer, and the loop
// resumes after the handlers queued meanwhile have run — so the requests of a burst that arrive
// together go together. (A loop that ended when idle and was spawned again by the next job
// took that job alone, and batches fell to a third of their size at 50 connections: bench/README.)
// An idle loop counts as work for its io_context: stop() ends it. group_commit (MySQL transactions)
// is one; the routing stage's Redis scripts (one script call for all fans routed meanwhile) are
// others.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "scrm/common/error.hpp"
#include "scrm/common/log.hpp"

namespace scrm::storage {

struct batch_limits {
    std::size_t max_jobs = 500;
    // The sum of the jobs' sizes (size_fn) a batch stops growing at. A single job larger than
    // this still goes, alone.
    std::size_t max_bytes = 2 * 1024 * 1024;
};

struct batch_stats {
    std::uint64_t batches = 0;  // batches attempted
    std::uint64_t jobs = 0;     // jobs in batches that succeeded
    std::size_t pending = 0;    // waiting for the next batch
};

// Thread-safe. stop() (or destroy it) before whatever the batch function uses stops, and before
// its io_context is expected to run out of work.
// `Outcome` must be default constructible.
template <class Job, class Outcome>
class batcher {
public:
    // Runs a whole batch and returns one outcome per job, in batch order; an error fails every
    // job of the batch. Called on the batcher's strand, one batch at a time.
    using batch_fn =
        std::function<boost::asio::awaitable<result<std::vector<Outcome>>>(std::vector<Job>&)>;
    // A job's size (for batch_limits::max_bytes); empty: every job counts 1.
    using size_fn = std::function<std::size_t(const Job&)>;

    batcher(boost::asio::any_io_executor ex, std::string name, batch_fn run, size_fn size = {},
            batch_limits limits = {})
        : impl_(std::make_shared<impl>(std::move(ex), std::move(name), std::move(run),
                                       std::move(size), limits)) {}
    ~batcher() { stop(); }
    batcher(const batcher&) = delete;
    batcher& operator=(const batcher&) = delete;

    // Refuses new jobs; waiting ones complete with errc::shutting_down (a batch already running
    // finishes and answers its jobs).
    void stop() {
        std::deque<entry> left;
        {
            std::lock_guard lock(impl_->mutex);
            impl_->stopping = true;
            left.swap(impl_->pending);
        }
        for (auto& e : left) e.done->try_send(make_error_code(errc::shutting_down), Outcome{});
        impl_->notify();
    }

    // Completes when the job's batch ran (its outcome) or failed (the batch's error).
    boost::asio::awaitable<result<Outcome>> submit(Job job) {
        auto done = std::make_shared<done_channel>(co_await boost::asio::this_coro::executor, 1);
        bool start = false;
        {
            std::lock_guard lock(impl_->mutex);
            if (impl_->stopping) {
                co_return result<Outcome>(boost::system::in_place_error,
                                          make_error_code(errc::shutting_down));
            }
            impl_->pending.push_back(entry{std::move(job), done});
            start = !impl_->started;
            impl_->started = true;
        }
        if (start) {
            boost::asio::co_spawn(impl_->strand, loop(impl_), boost::asio::detached);
        } else {
            impl_->notify();
        }
        auto [ec, out] =
            co_await done->async_receive(boost::asio::as_tuple(boost::asio::use_awaitable));
        // In place: a result<bool> cannot tell an error_code from a value.
        if (ec) co_return result<Outcome>(boost::system::in_place_error, ec);
        co_return result<Outcome>(boost::system::in_place_value, std::move(out));
    }

    batch_stats stats() const {
        std::lock_guard lock(impl_->mutex);
        return {impl_->batches, impl_->jobs, impl_->pending.size()};
    }

private:
    using done_channel = boost::asio::experimental::concurrent_channel<void(
        boost::system::error_code, Outcome)>;
    struct entry {
        Job job;
        std::shared_ptr<done_channel> done;
    };

    struct impl : std::enable_shared_from_this<impl> {
        impl(boost::asio::any_io_executor e, std::string n, batch_fn r, size_fn s, batch_limits l)
            : strand(boost::asio::make_strand(e)),
              wake(strand),
              name(std::move(n)),
              run(std::move(r)),
              size(std::move(s)),
              limits(l) {}

        void notify() {
            boost::asio::post(strand, [self = this->shared_from_this()] { self->wake.cancel(); });
        }

        boost::asio::strand<boost::asio::any_io_executor> strand;
        boost::asio::steady_timer wake;  // the idle loop waits on it; cancel() wakes it
        std::string name;
        batch_fn run;
        size_fn size;
        batch_limits limits;
        mutable std::mutex mutex;
        std::deque<entry> pending;
        bool started = false;  // the loop was spawned (by the first job)
        bool stopping = false;
        std::uint64_t batches = 0, jobs = 0;
    };

    static boost::asio::awaitable<void> loop(std::shared_ptr<impl> self) {
        for (;;) {
            std::vector<Job> batch;
            std::vector<std::shared_ptr<done_channel>> done;
            {
                std::lock_guard lock(self->mutex);
                std::size_t bytes = 0;
                while (!self->pending.empty() && batch.size() < self->limits.max_jobs &&
                       (batch.empty() || bytes < self->limits.max_bytes)) {
                    bytes += self->size ? self->size(self->pending.front().job) : 1;
                    batch.push_back(std::move(self->pending.front().job));
                    done.push_back(std::move(self->pending.front().done));
                    self->pending.pop_front();
                }
                if (batch.empty() && self->stopping) co_return;
            }
            if (batch.empty()) {
                self->wake.expires_at(boost::asio::steady_timer::time_point::max());
                co_await self->wake.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
                continue;
            }
            // The batch function may move the jobs out: count them first.
            const std::size_t count = batch.size();
            auto outcome = co_await self->run(batch);
            if (outcome && outcome->size() != count) {
                outcome = make_error_code(errc::protocol_error);
            }
            if (!outcome) {
                log::warn(self->name + ".batch_failed",
                          {{"jobs", static_cast<std::uint64_t>(count)},
                           {"reason", outcome.error().message()}});
            }
            {
                std::lock_guard lock(self->mutex);
                ++self->batches;
                if (outcome) self->jobs += count;
            }
            for (std::size_t i = 0; i < count; ++i) {
                if (outcome) {
                    done[i]->try_send(boost::system::error_code{}, std::move((*outcome)[i]));
                } else {
                    done[i]->try_send(outcome.error(), Outcome{});
                }
            }
        }
    }

    std::shared_ptr<impl> impl_;
};

}  // namespace scrm::storage

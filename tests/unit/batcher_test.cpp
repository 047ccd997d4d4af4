// storage::batcher: jobs handed in while a batch runs go into the next batch, each caller gets its
// own outcome, a failed batch fails each of its jobs, stop() refuses and ends the idle loop.
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <chrono>
#include <future>
#include <vector>

#include "scrm/storage/batcher.hpp"

namespace asio = boost::asio;
using namespace std::chrono_literals;
using scrm::errc;
using scrm::result;
using scrm::storage::batcher;

namespace {

// Doubles every job; a job of -1 fails its batch. Records each batch's jobs. The first batch
// waits a little, so that the jobs handed in meanwhile pile up.
struct doubler {
    std::vector<std::vector<int>> batches;
    batcher<int, int>::batch_fn fn() {
        return [this](std::vector<int>& jobs) -> asio::awaitable<result<std::vector<int>>> {
            batches.push_back(jobs);
            if (batches.size() == 1) {
                asio::steady_timer t(co_await asio::this_coro::executor, 20ms);
                co_await t.async_wait(asio::use_awaitable);
            }
            std::vector<int> out;
            for (int j : jobs) {
                if (j == -1) co_return make_error_code(errc::unavailable);
                out.push_back(2 * j);
            }
            co_return out;
        };
    }
};

// Some job has no answer yet (each starts as errc::timeout).
bool unanswered(const std::vector<result<int>>& got) {
    return std::any_of(got.begin(), got.end(), [](const result<int>& g) {
        return !g.has_value() && g.error() == make_error_code(errc::timeout);
    });
}

asio::awaitable<void> hand_in(batcher<int, int>& b, int job, result<int>* out) {
    *out = co_await b.submit(job);
}

}  // namespace

TEST_CASE("batcher: jobs handed in while a batch runs go together into the next, in order") {
    asio::io_context io;
    doubler d;
    batcher<int, int> b(io.get_executor(), "test.batches", d.fn());
    std::vector<result<int>> got(6, make_error_code(errc::timeout));
    asio::co_spawn(io, hand_in(b, 0, &got[0]), asio::detached);
    while (d.batches.empty()) io.run_one();  // the first batch is under way
    for (int i = 1; i < 6; ++i) asio::co_spawn(io, hand_in(b, i, &got[i]), asio::detached);
    // Every job answered, the loop waits for more; stop() ends it, and with it the io_context's
    // work.
    while (unanswered(got)) io.run_one();
    b.stop();
    auto done = std::async(std::launch::async, [&] { io.run(); });
    if (done.wait_for(10s) != std::future_status::ready) {
        io.stop();  // so that `done` can end
        FAIL("the idle loop outlived stop()");
    }
    for (int i = 0; i < 6; ++i) {
        REQUIRE(got[i].has_value());
        CHECK(*got[i] == 2 * i);
    }
    REQUIRE(d.batches.size() == 2);
    CHECK(d.batches[0] == std::vector<int>{0});  // a lone job waits for nothing
    CHECK(d.batches[1] == std::vector<int>{1, 2, 3, 4, 5});
    CHECK(b.stats().batches == 2);
    CHECK(b.stats().jobs == 6);
    CHECK(b.stats().pending == 0);
}

TEST_CASE("batcher: a failed batch fails each of its jobs, the next batch goes on") {
    asio::io_context io;
    doubler d;
    batcher<int, int> b(io.get_executor(), "test.batches", d.fn());
    std::vector<result<int>> got(4, make_error_code(errc::timeout));
    const std::vector<int> jobs{7, 1, -1, 2};  // 7 alone; then 1, -1 and 2 together
    asio::co_spawn(io, hand_in(b, jobs[0], &got[0]), asio::detached);
    while (d.batches.empty()) io.run_one();
    for (std::size_t i = 1; i < jobs.size(); ++i) {
        asio::co_spawn(io, hand_in(b, jobs[i], &got[i]), asio::detached);
    }
    while (unanswered(got)) io.run_one();
    CHECK(*got[0] == 14);
    for (std::size_t i = 1; i < 4; ++i) {
        REQUIRE_FALSE(got[i].has_value());
        CHECK(got[i].error() == make_error_code(errc::unavailable));
    }
    CHECK(b.stats().batches == 2);
    CHECK(b.stats().jobs == 1);

    // Later jobs make a batch of their own.
    result<int> later = make_error_code(errc::timeout);
    asio::co_spawn(io, hand_in(b, 5, &later), asio::detached);
    while (!later.has_value()) io.run_one();
    CHECK(*later == 10);
    b.stop();
    io.run();
}

TEST_CASE("batcher: after stop() jobs are refused and waiting ones end with shutting_down") {
    asio::io_context io;
    doubler d;
    batcher<int, int> b(io.get_executor(), "test.batches", d.fn());
    std::vector<result<int>> got(3, make_error_code(errc::timeout));
    asio::co_spawn(io, hand_in(b, 1, &got[0]), asio::detached);
    while (d.batches.empty()) io.run_one();  // the first batch is under way
    for (int i = 1; i < 3; ++i) asio::co_spawn(io, hand_in(b, i + 1, &got[i]), asio::detached);
    while (b.stats().pending < 2) io.run_one();  // the others wait for the next batch
    b.stop();
    io.run();
    CHECK(*got[0] == 2);  // the batch already running answers its job
    CHECK(got[1].error() == make_error_code(errc::shutting_down));
    CHECK(got[2].error() == make_error_code(errc::shutting_down));
    result<int> refused = 0;
    io.restart();
    asio::co_spawn(io, hand_in(b, 4, &refused), asio::detached);
    io.run();
    CHECK(refused.error() == make_error_code(errc::shutting_down));
    CHECK(d.batches.size() == 1);
}

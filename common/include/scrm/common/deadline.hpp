// Bounding an awaitable that cannot be cancelled (a MySQL call on a worker thread, a Redis command
// stuck behind a stalled server): the caller gets an empty optional at the deadline, while the
// operation finishes in the background and its result is dropped.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <memory>
#include <optional>

namespace scrm {

namespace detail {

template <class T>
struct deadline_state {
    explicit deadline_state(boost::asio::any_io_executor ex) : timer(std::move(ex)) {}
    boost::asio::steady_timer timer;
    std::optional<T> value;
};

template <class T>
boost::asio::awaitable<void> deadline_run(std::shared_ptr<deadline_state<T>> st,
                                          boost::asio::awaitable<T> op) {
    T v = co_await std::move(op);
    st->value.emplace(std::move(v));
    st->timer.cancel();
}

}  // namespace detail

// Runs `op` and waits at most `limit` for it. Must be awaited from a strand (or a single-threaded
// context): the operation and the waiter share a timer. Exceptions thrown by `op` are swallowed
// (the caller sees a timeout-like empty result) — pass operations that report errors as values.
template <class T>
boost::asio::awaitable<std::optional<T>> with_deadline(boost::asio::awaitable<T> op,
                                                       std::chrono::steady_clock::duration limit) {
    auto ex = co_await boost::asio::this_coro::executor;
    auto st = std::make_shared<detail::deadline_state<T>>(ex);
    st->timer.expires_after(limit);
    boost::asio::co_spawn(ex, detail::deadline_run<T>(st, std::move(op)), boost::asio::detached);
    co_await st->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    co_return std::move(st->value);
}

}  // namespace scrm

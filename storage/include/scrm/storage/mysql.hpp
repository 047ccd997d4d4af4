// The MySQL layer: a blocking MySQL connection (mysql_session) and a bounded pool of worker
// threads, one connection each (mysql_pool), that runs SQL for coroutines and answers on their
// executor. Connector/C++ stays behind this header: only mysql.cpp includes it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <iosfwd>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "scrm/common/error.hpp"

namespace scrm::storage {

struct mysql_options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 3306;
    std::string user;
    std::string password;  // secret: never logged
    std::string database;
    unsigned workers = 4;  // pool threads, one connection each
    // Accepted requests waiting for a worker; beyond that, errc::overloaded.
    std::size_t queue_limit = 1024;
    // Driver-level (libmariadb) timeouts. The driver counts whole seconds: each is rounded UP to a
    // whole second (minimum 1 s). The read timeout bounds how long a stalled server pins a worker.
    std::chrono::milliseconds connect_timeout{2000};
    std::chrono::milliseconds read_timeout{5000};
    std::chrono::milliseconds write_timeout{5000};
    // A connection idle for longer than this is pinged before use, so one the server dropped
    // (restart, KILL, wait_timeout) is replaced before a statement is sent. 0 = always ping.
    std::chrono::milliseconds validate_after_idle{1000};
    // After a failed connect, requests within this window fail at once with errc::unavailable
    // instead of each waiting for the connect timeout again.
    std::chrono::milliseconds reconnect_backoff{250};
    std::size_t statement_cache = 256;  // prepared statements kept per connection (LRU)
};

// A statement parameter. std::monostate binds SQL NULL. Strings are bytes (sent as given).
using sql_value = std::variant<std::monostate, std::int64_t, std::uint64_t, double, std::string>;

// A statement's outcome. Values come back as text (NULL = std::nullopt): integers and DECIMAL as
// the server writes them, FLOAT/DOUBLE in shortest round-trip form, DATETIME/TIMESTAMP as
// "YYYY-MM-DD hh:mm:ss" plus ".ffffff" (six digits) when the fraction is not zero; numbers parse
// with std::from_chars. For INSERT/REPLACE statements that affected rows, last_insert_id is
// LAST_INSERT_ID() after the statement (the first AUTO_INCREMENT value it generated; for INSERT …
// ON DUPLICATE KEY UPDATE that only updated, use the `id = LAST_INSERT_ID(id)` idiom).
struct sql_rows {
    std::vector<std::string> columns;
    std::vector<std::vector<std::optional<std::string>>> rows;
    std::uint64_t affected = 0;
    std::uint64_t last_insert_id = 0;

    // Index of the column named `name`, if any.
    std::optional<std::size_t> column(std::string_view name) const;
};
// Prints the shape (columns, row count, affected, last id), never the values: safe for logs.
std::ostream& operator<<(std::ostream& os, const sql_rows& r);

// A random non-zero token that fits a signed BIGINT: what rows carry so that a worker's claim (or
// one attempt's insert) can tell its own rows from everyone else's.
std::uint64_t random_row_token();

// A column value (sql_rows) as an unsigned integer: 0 for NULL or text that is not one.
std::uint64_t sql_u64(const std::optional<std::string>& v);

// " AND <column> IN (1,2,3)" for a non-empty list of ids, "" for an empty one: a filter that can be
// spliced into SQL text (the ids are integers, so nothing can be injected through it).
std::string and_in(std::string_view column, const std::vector<std::uint64_t>& ids);

// `v` as an SQL literal that can be spliced into statement text without any escaping concern:
// NULL, a decimal integer, a double in shortest round-trip form (finite values only), or a string
// as a hex literal X'…' (its bytes as given; assigned to a text column they are taken in the
// column's character set, as a bound parameter's would be). Appended to `out`.
void append_sql_literal(std::string& out, const sql_value& v);
// The string case of append_sql_literal, without building a sql_value.
void append_sql_string(std::string& out, std::string_view bytes);
// Typed shorthands for statement text with its values inline (query_inline), without building a
// sql_value per value: bytes as append_sql_string, integers in decimal, an empty optional as NULL.
inline void sql_lit(std::string& out, std::string_view bytes) {
    append_sql_string(out, bytes);
}
void sql_lit(std::string& out, std::uint64_t v);
void sql_lit(std::string& out, std::int64_t v);
template <class T>
void sql_lit(std::string& out, const std::optional<T>& v) {
    if (v) {
        sql_lit(out, *v);
    } else {
        out += "NULL";
    }
}

// The last failure of a session, for callers that need more than the errc. `message` is the
// server's text and may quote data (e.g. a duplicate key value): never log it.
struct sql_error {
    int code = 0;  // server error number (1062 duplicate key, 1064 syntax…) or client 2xxx
    std::string sqlstate;  // e.g. "23000"
    std::string message;
};
// Prints the message too: for test output, not for logs.
std::ostream& operator<<(std::ostream& os, const sql_error& e);

namespace detail {
struct session_counters;
}

// One MySQL connection, used by one thread at a time (blocking). Every call checks that it is not
// made on a thread marked as I/O (scrm::mark_io_thread) and aborts if it is: use the pool there.
// Inside the pool, each worker owns one and lends it to the functions passed to mysql_pool::run; a
// CLI may construct one directly (it connects lazily, on the constructing thread, on first use).
//
// Every statement is a server-side prepared statement, cached per connection by its SQL text
// (query_inline() excepted).
// Sessions use utf8mb4 (utf8mb4_unicode_ci), time_zone '+00:00' and a strict sql_mode.
//
// Errors (never exceptions): errc::unavailable (cannot connect, or the connection broke — the
// statement may or may not have run), errc::timeout (the server did not answer within
// read_timeout, or lock wait timeout 1205), errc::conflict (duplicate key 1062/1586),
// errc::bad_input (wrong parameter count, statement not allowed), errc::server_error (any other
// SQL error). last_error() holds the server's code and message.
//
// Reconnect and retry policy: the driver's own auto-reconnect is off (it would silently lose the
// session). When the connection is found broken (2006 gone away, 2013 lost, 1927 killed, 1053
// shutdown…) it is closed; the next use connects again, re-applies the session settings and starts
// with an empty statement cache. A statement is retried once, on a fresh connection, only when it
// provably did not reach the server: the idle ping failed, preparing it failed, or sending it
// failed (2006). A failure after sending (2013, timeouts) is not retried — a write may have been
// applied — and never inside a transaction: once a transaction's connection breaks, every statement
// and commit() fail with errc::unavailable until rollback() (which then succeeds: the server has
// already rolled it back).
class mysql_session {
public:
    explicit mysql_session(mysql_options opts);
    ~mysql_session();
    mysql_session(const mysql_session&) = delete;
    mysql_session& operator=(const mysql_session&) = delete;

    // Runs one statement with `?` placeholders bound to `params` in order.
    result<sql_rows> query(std::string_view sql, const std::vector<sql_value>& params = {});
    // The same, returning only the number of affected rows.
    result<std::uint64_t> execute(std::string_view sql, const std::vector<sql_value>& params = {});
    // A statement with its values already in the text (append_sql_literal), sent over the text
    // protocol in one round trip: no prepare, no statement cache entry, no LAST_INSERT_ID()
    // (last_insert_id stays 0). For statements whose text changes with every call — multi-row
    // batches — where preparing would cost a round trip and a server-side parse each time. Same
    // errors and retry policy as query().
    result<sql_rows> query_inline(std::string_view sql);

    // Explicit transactions. A function given to mysql_pool::run that returns with a transaction
    // still open has it rolled back (and a warning logged).
    result<void> begin();
    result<void> commit();
    result<void> rollback();
    bool in_transaction() const;

    // Connects now if not connected (normally implicit). errc::unavailable on failure.
    result<void> connect();
    // Runs SELECT 1.
    result<void> ping();
    bool connected() const;
    const sql_error& last_error() const;

private:
    friend class mysql_pool;
    struct impl;
    std::unique_ptr<impl> impl_;
    void set_counters(detail::session_counters* counters);
    void finish_job();  // rolls back a transaction left open by a job
};

namespace detail {

// A unit of work for a pool worker. execute() and reject() are called at most once, never throw,
// and complete the waiting coroutine on its own executor.
class mysql_job {
public:
    virtual ~mysql_job() = default;
    virtual void execute(mysql_session& session) noexcept = 0;
    virtual void reject(errc why) noexcept = 0;
};

template <class R, class Fn, class Handler>
class mysql_job_impl final : public mysql_job {
public:
    mysql_job_impl(Fn fn, Handler handler)
        : fn_(std::move(fn)),
          handler_(std::move(handler)),
          work_(boost::asio::get_associated_executor(handler_)) {}

    void execute(mysql_session& session) noexcept override {
        std::exception_ptr error;
        std::optional<R> out;
        try {
            out.emplace(fn_(session));
        } catch (...) {
            error = std::current_exception();
        }
        complete(error, std::move(out));
    }

    void reject(errc why) noexcept override {
        // The error result is built on the caller's side: building it here and moving it through
        // the post trips a false -Wmaybe-uninitialized in g++ 12 at -O1 with sanitizers.
        auto ex = work_.get_executor();
        boost::asio::post(ex, [h = std::move(handler_), why]() mutable {
            std::move(h)(nullptr, std::optional<R>(std::in_place, boost::system::in_place_error,
                                                   make_error_code(why)));
        });
        work_.reset();
    }

private:
    void complete(std::exception_ptr error, std::optional<R> out) noexcept {
        auto ex = work_.get_executor();
        boost::asio::post(ex, [h = std::move(handler_), error, out = std::move(out)]() mutable {
            std::move(h)(error, std::move(out));
        });
        work_.reset();
    }

    Fn fn_;
    Handler handler_;
    boost::asio::executor_work_guard<boost::asio::associated_executor_t<Handler>> work_;
};

template <class T>
struct is_scrm_result : std::false_type {};
template <class T>
struct is_scrm_result<result<T>> : std::true_type {};

}  // namespace detail

// A bounded pool of worker threads, each with its own mysql_session. Thread-safe: any thread or
// coroutine may call run/query/execute/ping/stats. Workers connect in the background at start; the
// constructor never blocks on the server (which may be down and come up later).
//
// Admission: at most `workers + queue_limit` requests are accepted at once (running + waiting);
// a further request completes at once with errc::overloaded, without waiting for any worker.
// After stop(): errc::shutting_down.
//
// No deadline of its own besides the driver timeouts: a caller that needs a shorter bound wraps
// the call in scrm::with_deadline (the statement then finishes in the background).
//
// Lifetime: an accepted request keeps its caller's executor busy (outstanding work) until it
// completes, so stop or destroy the pool before the io_context it answers on.
class mysql_pool {
public:
    explicit mysql_pool(mysql_options opts);
    ~mysql_pool();  // stop()
    mysql_pool(const mysql_pool&) = delete;
    mysql_pool& operator=(const mysql_pool&) = delete;

    // Refuses new requests, fails waiting ones with errc::shutting_down, lets running ones finish
    // (bounded by the driver timeouts) and joins the workers. Idempotent. Blocks the calling thread
    // until the workers exit: call it from the composition root, not from a hot I/O handler.
    void stop();

    // Runs `fn(mysql_session&)` on a worker; `fn` returns a scrm::result<T>. Completes on the
    // calling coroutine's executor. Exceptions thrown by `fn` are rethrown in the caller. `fn` runs
    // on another thread: it must not touch the caller's state without synchronisation (capturing
    // by reference the caller's locals is fine: the caller is suspended until fn returns).
    // g++ 12: name the lambda before the co_await (`auto fn = [...]{}; co_await pool.run(fn);`).
    template <class Fn>
    boost::asio::awaitable<std::invoke_result_t<Fn&, mysql_session&>> run(Fn fn);

    // Conveniences over run(): one statement.
    boost::asio::awaitable<result<sql_rows>> query(std::string sql,
                                                   std::vector<sql_value> params = {});
    boost::asio::awaitable<result<std::uint64_t>> execute(std::string sql,
                                                          std::vector<sql_value> params = {});
    // SELECT 1 on a worker (for /readyz).
    boost::asio::awaitable<result<void>> ping();

    struct stats_t {
        unsigned workers = 0;
        unsigned busy = 0;       // workers running a request
        unsigned connected = 0;  // workers holding a live connection
        std::size_t queued = 0;  // accepted, waiting for a worker
        std::size_t queue_limit = 0;
        std::uint64_t overloaded_total = 0;  // requests refused as overloaded
        std::uint64_t reconnects = 0;        // connections established after a lost one
        std::uint64_t connect_failures = 0;
    };
    stats_t stats() const;  // thread-safe

private:
    // Queues `job` or, when full or stopped, rejects it (posting the rejection to its executor).
    void submit(std::unique_ptr<detail::mysql_job> job);
    void worker_main(unsigned index);

    template <class R, class Fn>
    struct initiate_run {
        mysql_pool* pool;
        template <class Handler>
        void operator()(Handler handler, Fn fn) const {
            pool->submit(std::make_unique<detail::mysql_job_impl<R, Fn, Handler>>(
                std::move(fn), std::move(handler)));
        }
    };

    mysql_options opts_;
    std::unique_ptr<detail::session_counters> counters_;
    mutable std::mutex mu_;
    std::mutex join_mu_;
    std::condition_variable cv_;
    std::deque<std::unique_ptr<detail::mysql_job>> queue_;
    std::size_t in_flight_ = 0;  // accepted and not finished (queued + running)
    unsigned busy_ = 0;
    bool stopping_ = false;
    std::uint64_t overloaded_total_ = 0;
    std::vector<std::thread> threads_;
};

template <class Fn>
boost::asio::awaitable<std::invoke_result_t<Fn&, mysql_session&>> mysql_pool::run(Fn fn) {
    using R = std::invoke_result_t<Fn&, mysql_session&>;
    static_assert(detail::is_scrm_result<R>::value, "the function must return a scrm::result<T>");
    std::optional<R> out =
        co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&,
                                             void(std::exception_ptr, std::optional<R>)>(
            initiate_run<R, Fn>{this}, boost::asio::use_awaitable, std::move(fn));
    co_return std::move(*out);
}

}  // namespace scrm::storage

// The asynchronous Redis client: hiredis 0.14 driven by Asio on one strand, typed commands,
// timeouts from Asio timers, reconnect with backoff, fast failure while disconnected; and a
// subscriber that holds pub/sub subscriptions on its own connection across reconnects.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "scrm/common/error.hpp"

namespace scrm::storage {

struct redis_options {
    std::string host = "127.0.0.1";  // a numeric address, or a name resolved asynchronously
    std::uint16_t port = 6379;
    std::string password;  // secret: sent as AUTH when not empty, never logged
    std::chrono::milliseconds connect_timeout{1000};  // TCP connect + AUTH + PING
    std::chrono::milliseconds command_timeout{1000};  // per command, from send to reply
    std::chrono::milliseconds backoff_initial{50};    // first retry delay after a failure
    std::chrono::milliseconds backoff_max{2000};      // the delay doubles up to this
    bool reset_on_stall = true;                       // see "Stall policy" below
};

// A reply copied out of hiredis. `error` appears only from redis_client::raw() and inside arrays
// (e.g. EXEC); everywhere else a Redis error reply becomes errc::server_error.
struct redis_reply {
    enum class kind { nil, string, integer, array, status, error };
    kind type = kind::nil;
    std::string str;  // string, status and error text
    long long integer = 0;
    std::vector<redis_reply> elements;

    bool operator==(const redis_reply&) const = default;
};
std::ostream& operator<<(std::ostream& os, redis_reply::kind k);
// For test failure messages, e.g. [1, "a", nil]. Never log replies: they may hold patient data.
std::ostream& operator<<(std::ostream& os, const redis_reply& r);

struct redis_stats {
    bool connected = false;        // the connection is up and the handshake (AUTH, PING) succeeded
    std::uint64_t reconnects = 0;  // successful connections after the first one
    std::uint64_t timeouts = 0;    // commands that completed with errc::timeout
    std::size_t in_flight = 0;     // commands sent and not yet answered (timed-out ones included)
};

// A Lua script with its SHA1, computed once: eval() sends EVALSHA and falls back to EVAL when the
// server answers NOSCRIPT (after a restart or SCRIPT FLUSH). Keep scripts as long-lived constants.
struct redis_script {
    explicit redis_script(std::string code);
    std::string code;
    std::string sha1;  // lowercase hex
};

// A pub/sub message. `pattern` is empty unless the message matched a psubscribe pattern.
struct redis_message {
    std::string pattern;
    std::string channel;
    std::string payload;

    bool operator==(const redis_message&) const = default;
};

namespace detail {
class redis_core;
class redis_sub_core;
}  // namespace detail

// One pipelined connection shared by every caller: commands from concurrent coroutines are
// written together and matched to their callers in order.
//
// Threading: every member function is thread-safe. All hiredis calls run on an internal strand of
// `ex`; results are delivered on the awaiting coroutine's executor (never inside a hiredis
// callback). Nothing blocks the calling thread: host names are resolved asynchronously.
//
// Failures (as values, never exceptions):
//   errc::unavailable    not connected (at once, without waiting: the caller decides whether to
//                        retry), or the connection dropped while the command was in flight —
//                        then the command may or may not have run on the server;
//   errc::timeout        no reply within command_timeout — the command may still run; its late
//                        reply is discarded;
//   errc::server_error   Redis answered with an error reply (raw() shows its text);
//   errc::protocol_error the reply had a type the typed command does not expect;
//   errc::bad_input      a command that would put the connection into pub/sub or MONITOR mode
//                        (use redis_subscriber);
//   errc::shutting_down  stop() was called.
//
// Stall policy: when a command times out and nothing at all has been received on the connection
// since that command was sent, the server (or the path to it) is considered stuck: the connection
// is closed, every other command in flight completes with errc::unavailable, and the client
// reconnects with backoff. So a stalled server costs callers one command_timeout, then they fail
// fast. A consequence: a single command (a Lua script, a big KEYS) that runs longer than
// command_timeout gets its connection reset — keep server-side work short; blocking commands
// (BLPOP, XREAD BLOCK) are not supported. With reset_on_stall = false the connection is kept:
// each command then waits out its own timeout while the server is stuck.
//
// Lifetime: create(), then start() once. stop() (or destroying the last shared_ptr, which calls
// stop()) closes the connection; in-flight commands complete with errc::unavailable and the
// internal state is released once its pending handlers have run, so keep the io_context running
// until then (and alive for as long as any client object exists).
class redis_client {
public:
    static std::shared_ptr<redis_client> create(const boost::asio::any_io_executor& ex,
                                                redis_options o);
    ~redis_client();
    redis_client(const redis_client&) = delete;
    redis_client& operator=(const redis_client&) = delete;

    void start();  // connects in the background; reconnects with exponential backoff and jitter
    void stop();

    bool connected() const;
    redis_stats stats() const;
    using stats_t = redis_stats;

    // Completes when connected (ok), after `limit` (errc::timeout) or on stop (shutting_down).
    boost::asio::awaitable<result<void>> wait_connected(std::chrono::milliseconds limit);

    // Any command as binary-safe arguments, e.g. {"HSET", key, field, value}.
    boost::asio::awaitable<result<redis_reply>> command(std::vector<std::string> args);
    // The same, but a Redis error reply is a value of kind::error with its text in `str`.
    boost::asio::awaitable<result<redis_reply>> raw(std::vector<std::string> args);

    boost::asio::awaitable<result<void>> ping();

    // Strings and keys.
    boost::asio::awaitable<result<std::optional<std::string>>> get(std::string key);
    boost::asio::awaitable<result<void>> set(std::string key, std::string value);
    boost::asio::awaitable<result<void>> set_px(std::string key, std::string value,
                                                std::chrono::milliseconds ttl);
    // SET key value NX PX ttl: true when the key was set, false when it already existed.
    boost::asio::awaitable<result<bool>> set_nx_px(std::string key, std::string value,
                                                   std::chrono::milliseconds ttl);
    boost::asio::awaitable<result<long long>> del(std::vector<std::string> keys);  // keys removed
    boost::asio::awaitable<result<long long>> exists(std::vector<std::string> keys);
    // true when the timeout was set (the key exists).
    boost::asio::awaitable<result<bool>> pexpire(std::string key, std::chrono::milliseconds ttl);
    // Remaining time to live; nullopt when the key does not exist or has no expiry.
    boost::asio::awaitable<result<std::optional<std::chrono::milliseconds>>> pttl(std::string key);
    boost::asio::awaitable<result<long long>> incr(std::string key);
    boost::asio::awaitable<result<long long>> incrby(std::string key, long long by);

    // Scripts: EVALSHA, then EVAL on NOSCRIPT. The script's reply as is (an error reply raised by
    // the script is errc::server_error: report expected outcomes as values, not errors).
    boost::asio::awaitable<result<redis_reply>> eval(redis_script script,
                                                     std::vector<std::string> keys,
                                                     std::vector<std::string> args);

    // Hashes.
    boost::asio::awaitable<result<long long>> hset(std::string key, std::string field,
                                                   std::string value);  // fields added
    boost::asio::awaitable<result<long long>> hset(
        std::string key, std::vector<std::pair<std::string, std::string>> fields);
    boost::asio::awaitable<result<std::optional<std::string>>> hget(std::string key,
                                                                    std::string field);
    boost::asio::awaitable<result<std::vector<std::pair<std::string, std::string>>>> hgetall(
        std::string key);  // in server order; empty when the key does not exist
    boost::asio::awaitable<result<long long>> hdel(std::string key,
                                                   std::vector<std::string> fields);
    boost::asio::awaitable<result<long long>> hincrby(std::string key, std::string field,
                                                      long long by);

    // Sorted sets. Bounds use Redis syntax: "1.5", "(1.5" (exclusive), "-inf", "+inf".
    boost::asio::awaitable<result<long long>> zadd(std::string key, double score,
                                                   std::string member);  // members added
    boost::asio::awaitable<result<long long>> zrem(std::string key,
                                                   std::vector<std::string> members);
    // Members with min <= score <= max in score order; count < 0 means no limit.
    boost::asio::awaitable<result<std::vector<std::string>>> zrangebyscore(std::string key,
                                                                           std::string min,
                                                                           std::string max,
                                                                           long long offset = 0,
                                                                           long long count = -1);
    boost::asio::awaitable<result<std::vector<std::pair<std::string, double>>>>
    zrangebyscore_with_scores(std::string key, std::string min, std::string max,
                              long long offset = 0, long long count = -1);
    boost::asio::awaitable<result<std::optional<double>>> zscore(std::string key,
                                                                 std::string member);
    boost::asio::awaitable<result<long long>> zcard(std::string key);

    // Pub/sub publishing (subscribing needs its own connection: redis_subscriber).
    boost::asio::awaitable<result<long long>> publish(std::string channel,
                                                      std::string message);  // receivers

private:
    struct private_tag {
        explicit private_tag() = default;
    };

public:
    redis_client(private_tag, std::shared_ptr<detail::redis_core> core);  // use create()

private:
    std::shared_ptr<detail::redis_core> core_;
};

// Pub/sub on a dedicated connection. Subscriptions are a desired set kept across reconnects: after
// a reconnect every channel and pattern is subscribed again. Messages published while the
// connection was down are lost (pub/sub is at most once) — watch the state handler to resync.
//
// Threading: member functions are thread-safe. The handlers run on the subscriber's internal
// strand, one at a time, in arrival order, never inside a hiredis callback; they must not block.
class redis_subscriber {
public:
    using message_handler = std::function<void(redis_message)>;
    using state_handler = std::function<void(bool connected)>;  // after (re)connect and on loss

    static std::shared_ptr<redis_subscriber> create(const boost::asio::any_io_executor& ex,
                                                    redis_options o, message_handler on_message,
                                                    state_handler on_state = {});
    ~redis_subscriber();
    redis_subscriber(const redis_subscriber&) = delete;
    redis_subscriber& operator=(const redis_subscriber&) = delete;

    void start();
    void stop();
    bool connected() const;
    redis_stats stats() const;
    using stats_t = redis_stats;
    boost::asio::awaitable<result<void>> wait_connected(std::chrono::milliseconds limit);

    // Adds to the desired set and completes once the server confirmed every name (ok), or with
    // errc::unavailable while disconnected / errc::timeout after command_timeout — in both cases
    // the names stay in the set and are subscribed on the next (re)connect.
    boost::asio::awaitable<result<void>> subscribe(std::vector<std::string> channels);
    boost::asio::awaitable<result<void>> psubscribe(std::vector<std::string> patterns);
    // Removes from the desired set at once; no message for these names is delivered afterwards.
    void unsubscribe(std::vector<std::string> channels);
    void punsubscribe(std::vector<std::string> patterns);

private:
    struct private_tag {
        explicit private_tag() = default;
    };

public:
    redis_subscriber(private_tag, std::shared_ptr<detail::redis_sub_core> core);  // use create()

private:
    std::shared_ptr<detail::redis_sub_core> core_;
};

}  // namespace scrm::storage

// The Redis client and subscriber against real servers: round trips on the shared Redis; timeouts,
// stalls, restarts and AUTH on a private Redis (scrm::test::private_services).
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <future>
#include <limits>
#include <sstream>
#include <thread>

#include "scrm/storage/redis.hpp"
#include "test_env.hpp"

namespace asio = boost::asio;
using namespace std::chrono_literals;
using scrm::errc;
using scrm::result;
using scrm::storage::redis_client;
using scrm::storage::redis_message;
using scrm::storage::redis_options;
using scrm::storage::redis_reply;
using scrm::storage::redis_script;
using scrm::storage::redis_subscriber;
using scrm::test::run_sync;
using scrm::test::unique_name;
using steady = std::chrono::steady_clock;
using kind = redis_reply::kind;

namespace {

redis_options options_for(const scrm::gateway::redis_settings& s) {
    redis_options o;
    o.host = s.host;
    o.port = s.port;
    o.password = s.password;
    o.connect_timeout = 1000ms;
    o.command_timeout = 2000ms;
    o.backoff_initial = 20ms;
    o.backoff_max = 200ms;
    return o;
}

redis_options shared_options() {
    return options_for(scrm::test::services_config().redis);
}

// Drives `io` until `pred` holds or `limit` passes (runs handlers meanwhile; never sleeps).
template <class Pred>
bool poll_until(asio::io_context& io, Pred pred, std::chrono::milliseconds limit = 10s) {
    const auto deadline = steady::now() + limit;
    io.restart();
    while (!pred()) {
        if (steady::now() > deadline) return false;
        io.run_one_for(20ms);
    }
    return true;
}

// Runs what is left (the clients' shutdown) until the io_context is out of work.
void drain(asio::io_context& io) {
    io.restart();
    io.run_for(5s);
}

errc code_of(const boost::system::error_code& ec) {
    return static_cast<errc>(ec.value());
}

template <class T>
errc error_of(const result<T>& r) {
    return r ? errc::ok : code_of(r.error());
}

template <class T>
bool ok(const result<T>& r) {
    return r.has_value();
}

redis_reply bulk(std::string s) {
    return {kind::string, std::move(s), 0, {}};
}

// A client on the shared Redis that deletes its keys and stops when the test ends.
struct shared_client {
    asio::io_context io;
    std::shared_ptr<redis_client> client;
    std::vector<std::string> keys;

    explicit shared_client(redis_options o = shared_options()) {
        client = redis_client::create(io.get_executor(), std::move(o));
        client->start();
        REQUIRE(ok(run_sync(io, client->wait_connected(5s))));
    }
    ~shared_client() {
        try {
            if (!keys.empty()) (void)run_sync(io, client->del(keys), 5s);
        } catch (...) {
        }
        client->stop();
        client.reset();
        drain(io);
    }
    std::string key(const std::string& prefix) {
        keys.push_back(unique_name("scrm_test_redis_" + prefix));
        return keys.back();
    }
    template <class T>
    T run(asio::awaitable<T> aw) {
        return run_sync(io, std::move(aw));
    }
};

// One private Redis (and MariaDB) for every test that stalls, stops or reconfigures the server;
// each such test leaves it running and unpaused.
scrm::test::private_services& private_servers() {
    static scrm::test::private_services instance;
    return instance;
}

redis_options private_options() {
    return options_for(private_servers().config().redis);
}

}  // namespace

TEST_CASE("redis: replies print readably and scripts carry their SHA1", "[redis]") {
    const redis_reply r{kind::array, "", 0, {bulk("a"), {kind::integer, "", 7, {}}, {}}};
    std::ostringstream os;
    os << r;
    CHECK(os.str() == R"(["a", 7, nil])");
    CHECK(redis_script("return 1").sha1 == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    CHECK(redis_script("").sha1 == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

TEST_CASE("redis: strings and keys round trip, binary-safe", "[redis]") {
    shared_client c;
    auto& cl = *c.client;
    const auto k = c.key("str");
    const std::string binary("a\0b\r\n$3\r\nzz \xff", 14);

    REQUIRE(ok(c.run(cl.ping())));
    REQUIRE(ok(c.run(cl.set(k, binary))));
    auto got = c.run(cl.get(k));
    REQUIRE(ok(got));
    REQUIRE(got->has_value());
    CHECK(**got == binary);

    auto missing = c.run(cl.get(c.key("missing")));
    REQUIRE(ok(missing));
    CHECK_FALSE(missing->has_value());

    const auto lock = c.key("lock");
    CHECK(c.run(cl.set_nx_px(lock, "owner-1", 10s)).value() == true);
    CHECK(c.run(cl.set_nx_px(lock, "owner-2", 10s)).value() == false);
    CHECK(c.run(cl.get(lock)).value() == std::optional<std::string>("owner-1"));
    auto ttl = c.run(cl.pttl(lock)).value();
    REQUIRE(ttl.has_value());
    CHECK(*ttl > 5s);
    CHECK(*ttl <= 10s);
    CHECK(c.run(cl.pexpire(lock, 60s)).value() == true);
    CHECK(c.run(cl.pexpire(c.key("nokey"), 60s)).value() == false);
    CHECK(c.run(cl.pttl(k)).value() == std::nullopt);  // no expiry

    REQUIRE(ok(c.run(cl.set_px(c.key("px"), "v", 30s))));
    const auto n = c.key("counter");
    CHECK(c.run(cl.incr(n)).value() == 1);
    CHECK(c.run(cl.incrby(n, 41)).value() == 42);
    CHECK(c.run(cl.incrby(n, -2)).value() == 40);

    CHECK(c.run(cl.exists({k, n, c.key("absent")})).value() == 2);
    CHECK(c.run(cl.del({k, n, c.key("absent")})).value() == 2);
    CHECK(c.run(cl.exists({k})).value() == 0);
}

TEST_CASE("redis: hashes and sorted sets", "[redis]") {
    shared_client c;
    auto& cl = *c.client;
    const auto h = c.key("hash");
    CHECK(c.run(cl.hset(h, "a", "1")).value() == 1);
    CHECK(c.run(cl.hset(h, "a", "2")).value() == 0);
    CHECK(c.run(cl.hset(h, {{"b", "x"}, {"c", std::string("\0y", 2)}})).value() == 2);
    CHECK(c.run(cl.hget(h, "a")).value() == std::optional<std::string>("2"));
    CHECK(c.run(cl.hget(h, "zz")).value() == std::nullopt);
    CHECK(c.run(cl.hincrby(h, "n", 5)).value() == 5);
    auto all = c.run(cl.hgetall(h)).value();
    std::sort(all.begin(), all.end());
    using kv = std::vector<std::pair<std::string, std::string>>;
    CHECK(all == kv{{"a", "2"}, {"b", "x"}, {"c", std::string("\0y", 2)}, {"n", "5"}});
    CHECK(c.run(cl.hdel(h, {"a", "b", "nope"})).value() == 2);
    CHECK(c.run(cl.hgetall(c.key("nohash"))).value().empty());

    const auto z = c.key("zset");
    CHECK(c.run(cl.zadd(z, 3, "c")).value() == 1);
    CHECK(c.run(cl.zadd(z, 1.5, "a")).value() == 1);
    CHECK(c.run(cl.zadd(z, 2, "b")).value() == 1);
    CHECK(c.run(cl.zadd(z, 0.1, "a")).value() == 0);  // score updated
    CHECK(c.run(cl.zcard(z)).value() == 3);
    CHECK(c.run(cl.zscore(z, "a")).value() == std::optional<double>(0.1));
    CHECK(c.run(cl.zscore(z, "nope")).value() == std::nullopt);
    using strings = std::vector<std::string>;
    CHECK(c.run(cl.zrangebyscore(z, "-inf", "+inf")).value() == strings{"a", "b", "c"});
    CHECK(c.run(cl.zrangebyscore(z, "(0.1", "3")).value() == strings{"b", "c"});
    CHECK(c.run(cl.zrangebyscore(z, "-inf", "+inf", 1, 1)).value() == strings{"b"});
    using scored = std::vector<std::pair<std::string, double>>;
    CHECK(c.run(cl.zrangebyscore_with_scores(z, "-inf", "2")).value() ==
          scored{{"a", 0.1}, {"b", 2.0}});
    REQUIRE(ok(c.run(cl.zadd(z, -std::numeric_limits<double>::infinity(), "low"))));
    CHECK(c.run(cl.zscore(z, "low")).value() ==
          std::optional<double>(-std::numeric_limits<double>::infinity()));
    CHECK(c.run(cl.zrem(z, {"a", "low", "nope"})).value() == 2);
}

TEST_CASE("redis: error replies, raw replies and refused commands", "[redis]") {
    shared_client c;
    auto& cl = *c.client;
    const auto h = c.key("wrongtype");
    REQUIRE(ok(c.run(cl.hset(h, "f", "v"))));

    CHECK(error_of(c.run(cl.get(h))) == errc::server_error);
    CHECK(error_of(c.run(cl.command({"INCR", h}))) == errc::server_error);
    auto raw = c.run(cl.raw({"INCR", h}));
    REQUIRE(ok(raw));
    CHECK(raw->type == kind::error);
    CHECK(raw->str.rfind("WRONGTYPE", 0) == 0);
    CHECK(error_of(c.run(cl.command({"NOSUCHCOMMAND"}))) == errc::server_error);

    // Commands that would take the connection out of request/reply mode are refused.
    CHECK(error_of(c.run(cl.command({"subscribe", "x"}))) == errc::bad_input);
    CHECK(error_of(c.run(cl.command({"MONITOR"}))) == errc::bad_input);
    CHECK(error_of(c.run(cl.command({}))) == errc::bad_input);

    // An array with an error element (EXEC) stays a value.
    auto multi = c.run(cl.command({"MULTI"}));
    REQUIRE(ok(multi));
    REQUIRE(ok(c.run(cl.raw({"INCR", h}))));  // QUEUED
    REQUIRE(ok(c.run(cl.raw({"HGET", h, "f"}))));
    auto exec = c.run(cl.command({"EXEC"}));
    REQUIRE(ok(exec));
    REQUIRE(exec->elements.size() == 2);
    CHECK(exec->elements[0].type == kind::error);
    CHECK(exec->elements[1] == bulk("v"));

    // The connection is still in step after all of that.
    CHECK(c.run(cl.hget(h, "f")).value() == std::optional<std::string>("v"));
    CHECK(cl.stats().in_flight == 0);
    CHECK(cl.stats().timeouts == 0);
}

TEST_CASE("redis: eval runs a script by SHA1 and loads it on NOSCRIPT", "[redis]") {
    shared_client c;
    auto& cl = *c.client;
    const auto k = c.key("eval");
    // A script text no one else has loaded, so the first EVALSHA answers NOSCRIPT.
    const redis_script script("-- " + unique_name("script") + "\n" +
                              "redis.call('SET', KEYS[1], ARGV[1])\n"
                              "return {redis.call('GET', KEYS[1]), tonumber(ARGV[2]) + 1}");
    auto exists = [&] {
        auto r = c.run(cl.command({"SCRIPT", "EXISTS", script.sha1}));
        REQUIRE(ok(r));
        REQUIRE(r->elements.size() == 1);
        return r->elements[0].integer;
    };
    CHECK(exists() == 0);
    const redis_reply expected{kind::array, "", 0, {bulk("hello"), {kind::integer, "", 42, {}}}};
    CHECK(c.run(cl.eval(script, {k}, {"hello", "41"})).value() == expected);
    CHECK(exists() == 1);
    CHECK(c.run(cl.eval(script, {k}, {"hello", "41"})).value() == expected);

    // A script that raises is a server error; the connection goes on.
    const redis_script failing("return redis.error_reply('FENCED token is stale')");
    CHECK(error_of(c.run(cl.eval(failing, {}, {}))) == errc::server_error);
    CHECK(ok(c.run(cl.ping())));
}

TEST_CASE("redis: commands from many coroutines on several threads are pipelined and matched",
          "[redis]") {
    asio::io_context io;
    auto client = redis_client::create(io.get_executor(), shared_options());
    client->start();
    REQUIRE(ok(run_sync(io, client->wait_connected(5s))));

    constexpr int n = 400;
    const std::string prefix = unique_name("scrm_test_redis_pipe");
    std::atomic<int> ok{0}, done{0};
    std::promise<void> all_done;

    struct worker {
        static asio::awaitable<void> run(std::shared_ptr<redis_client> c, std::string key,
                                         std::string value, std::atomic<int>* good) {
            auto s = co_await c->set_px(key, value, 60s);
            auto g = co_await c->get(key);
            if (s && g && *g == std::optional<std::string>(value)) good->fetch_add(1);
        }
    };
    {
        auto guard = asio::make_work_guard(io);
        io.restart();
        std::vector<std::thread> threads;
        for (int t = 0; t < 2; ++t) threads.emplace_back([&io] { io.run(); });
        for (int i = 0; i < n; ++i) {
            asio::co_spawn(io,
                           worker::run(client, prefix + "_" + std::to_string(i),
                                       "value-" + std::to_string(i * 7919), &ok),
                           [&](std::exception_ptr) {
                               if (done.fetch_add(1) + 1 == n) all_done.set_value();
                           });
        }
        const bool finished = all_done.get_future().wait_for(30s) == std::future_status::ready;
        guard.reset();
        io.stop();
        for (auto& t : threads) t.join();
        REQUIRE(finished);
    }
    CHECK(ok.load() == n);
    CHECK(client->stats().in_flight == 0);
    CHECK(client->stats().timeouts == 0);

    std::vector<std::string> keys;
    for (int i = 0; i < n; ++i) keys.push_back(prefix + "_" + std::to_string(i));
    CHECK(run_sync(io, client->del(keys)).value() == n);
    client->stop();
    client.reset();
    drain(io);
}

TEST_CASE("redis: pub/sub round trip on channels and patterns", "[redis]") {
    shared_client c;
    std::vector<redis_message> got;
    std::vector<bool> states;
    auto sub = redis_subscriber::create(
        c.io.get_executor(), shared_options(),
        [&got](redis_message m) { got.push_back(std::move(m)); },
        [&states](bool up) { states.push_back(up); });
    sub->start();
    REQUIRE(ok(run_sync(c.io, sub->wait_connected(5s))));

    const auto ch = unique_name("scrm_test_chan");
    const auto pattern_base = unique_name("scrm_test_pat");
    REQUIRE(ok(run_sync(c.io, sub->subscribe({ch}))));
    REQUIRE(ok(run_sync(c.io, sub->psubscribe({pattern_base + ".*"}))));
    CHECK(run_sync(c.io, sub->subscribe({ch})));  // already confirmed: at once

    const std::string payload("line 1\r\nline 2\0end", 18);
    CHECK(c.run(c.client->publish(ch, payload)).value() == 1);
    CHECK(c.run(c.client->publish(pattern_base + ".x", "p1")).value() == 1);
    REQUIRE(poll_until(c.io, [&] { return got.size() >= 2; }));
    CHECK(got[0] == redis_message{"", ch, payload});
    CHECK(got[1] == redis_message{pattern_base + ".*", pattern_base + ".x", "p1"});

    // After unsubscribing, nothing more is delivered for the channel.
    sub->unsubscribe({ch});
    REQUIRE(poll_until(c.io,
                       [&] { return run_sync(c.io, c.client->publish(ch, "late")).value() == 0; }));
    CHECK(c.run(c.client->publish(pattern_base + ".y", "p2")).value() == 1);
    REQUIRE(poll_until(c.io, [&] { return got.size() >= 3; }));
    CHECK(got.back() == redis_message{pattern_base + ".*", pattern_base + ".y", "p2"});
    for (const auto& m : got) CHECK(m.payload != "late");
    CHECK(states == std::vector<bool>{true});

    sub->stop();
    sub.reset();
}

TEST_CASE("redis: a channel unsubscribed and at once subscribed again stays subscribed",
          "[redis]") {
    // A page reload: the last listener of a channel leaves as a new one arrives.
    shared_client c;
    std::vector<redis_message> got;
    auto sub = redis_subscriber::create(c.io.get_executor(), shared_options(),
                                        [&got](redis_message m) { got.push_back(std::move(m)); });
    sub->start();
    REQUIRE(ok(run_sync(c.io, sub->wait_connected(5s))));
    const auto ch = unique_name("scrm_test_chan");
    REQUIRE(ok(run_sync(c.io, sub->subscribe({ch}))));
    for (int round = 0; round < 20; ++round) {
        sub->unsubscribe({ch});
        REQUIRE(ok(run_sync(c.io, sub->subscribe({ch}))));
    }
    CHECK(c.run(c.client->publish(ch, "still here")).value() == 1);
    REQUIRE(poll_until(c.io, [&] { return !got.empty(); }));
    CHECK(got.back() == redis_message{"", ch, "still here"});
    sub->stop();
    sub.reset();
}

TEST_CASE("redis: a command in flight when the connection drops completes with unavailable",
          "[redis]") {
    shared_client c;
    shared_client killer;
    auto id = c.run(c.client->command({"CLIENT", "ID"}));
    REQUIRE(ok(id));
    const auto list = c.key("blpop");

    // BLPOP parks the command on the server; CLIENT KILL from another connection drops ours.
    std::optional<result<redis_reply>> blpop;
    struct op {
        static asio::awaitable<void> run(std::shared_ptr<redis_client> cl, std::string key,
                                         std::optional<result<redis_reply>>* out) {
            std::vector<std::string> args{"BLPOP", std::move(key), "1.5"};
            out->emplace(co_await cl->command(std::move(args)));
        }
    };
    asio::co_spawn(c.io, op::run(c.client, list, &blpop), asio::detached);
    REQUIRE(poll_until(c.io, [&] { return c.client->stats().in_flight == 1; }));
    const auto t0 = steady::now();
    CHECK(killer.run(killer.client->command({"CLIENT", "KILL", "ID", std::to_string(id->integer)}))
              .value() == redis_reply{kind::integer, "", 1, {}});
    REQUIRE(poll_until(c.io, [&] { return blpop.has_value(); }));
    CHECK(error_of(*blpop) == errc::unavailable);
    CHECK(steady::now() - t0 < 1s);  // not the BLPOP timeout, not the command timeout

    // It reconnects by itself.
    REQUIRE(ok(run_sync(c.io, c.client->wait_connected(5s))));
    CHECK(ok(c.run(c.client->ping())));
    CHECK(c.client->stats().reconnects >= 1);
}

TEST_CASE("redis: fails fast while the server cannot be reached, and on stop", "[redis]") {
    asio::io_context io;
    redis_options o;
    o.port = scrm::test::free_port();  // nothing listens there
    o.backoff_initial = 10ms;
    o.backoff_max = 50ms;
    auto client = redis_client::create(io.get_executor(), o);
    client->start();

    CHECK(error_of(run_sync(io, client->wait_connected(300ms))) == errc::timeout);
    CHECK_FALSE(client->connected());
    const auto t0 = steady::now();
    CHECK(error_of(run_sync(io, client->get("k"))) == errc::unavailable);
    CHECK(error_of(run_sync(io, client->ping())) == errc::unavailable);
    CHECK(steady::now() - t0 < 100ms);
    CHECK(client->stats().connected == false);
    CHECK(client->stats().reconnects == 0);

    client->stop();
    CHECK(error_of(run_sync(io, client->get("k"))) == errc::shutting_down);
    CHECK(error_of(run_sync(io, client->wait_connected(1s))) == errc::shutting_down);
    client.reset();
    drain(io);
}

TEST_CASE("redis: a command times out against a stalled server, then fails fast and recovers",
          "[redis][private]") {
    auto& servers = private_servers();
    asio::io_context io;
    auto o = private_options();
    o.command_timeout = 300ms;
    o.connect_timeout = 300ms;
    auto client = redis_client::create(io.get_executor(), o);
    client->start();
    REQUIRE(ok(run_sync(io, client->wait_connected(5s))));
    const auto k = unique_name("stall");
    REQUIRE(ok(run_sync(io, client->set(k, "before"))));

    servers.pause_redis();
    auto t0 = steady::now();
    CHECK(error_of(run_sync(io, client->get(k))) == errc::timeout);
    const auto waited = steady::now() - t0;
    CHECK(waited >= 300ms);
    CHECK(waited < 1500ms);
    CHECK(client->stats().timeouts == 1);

    // Nothing came back since that command was sent: the connection is given up at once, and
    // callers fail fast instead of each waiting out a timeout.
    CHECK_FALSE(client->connected());
    t0 = steady::now();
    CHECK(error_of(run_sync(io, client->get(k))) == errc::unavailable);
    CHECK(steady::now() - t0 < 100ms);
    // Reconnect attempts meanwhile time out in the handshake (the kernel still accepts).
    CHECK(error_of(run_sync(io, client->wait_connected(700ms))) == errc::timeout);

    servers.resume_redis();
    REQUIRE(ok(run_sync(io, client->wait_connected(10s))));
    CHECK(run_sync(io, client->get(k)).value() == std::optional<std::string>("before"));
    CHECK(client->stats().reconnects == 1);
    (void)run_sync(io, client->del({k}));
    client->stop();
    client.reset();
    drain(io);
}

TEST_CASE("redis: a reply arriving after its command timed out is dropped and replies stay matched",
          "[redis][private]") {
    (void)private_servers();
    asio::io_context io;
    auto o = private_options();
    o.command_timeout = 600ms;
    o.reset_on_stall = false;  // keep the connection, so that the late reply does arrive
    auto client = redis_client::create(io.get_executor(), o);
    client->start();
    REQUIRE(ok(run_sync(io, client->wait_connected(5s))));
    const auto k = unique_name("late");
    REQUIRE(ok(run_sync(io, client->set(k, "value"))));

    // The server sleeps 0.9 s: the command times out at 0.6 s, its "+OK" comes at 0.9 s while
    // the GET sent after the timeout waits — the GET must get its own reply, not that one.
    CHECK(error_of(run_sync(io, client->command({"DEBUG", "SLEEP", "0.9"}))) == errc::timeout);
    CHECK(client->connected());
    CHECK(client->stats().in_flight == 1);  // the sleeper's reply is still owed
    CHECK(run_sync(io, client->get(k)).value() == std::optional<std::string>("value"));
    CHECK(client->stats().in_flight == 0);
    CHECK(client->stats().timeouts == 1);
    CHECK(client->stats().reconnects == 0);
    (void)run_sync(io, client->del({k}));
    client->stop();
    client.reset();
    drain(io);
}

TEST_CASE("redis: client and subscriber recover after redis-server is restarted",
          "[redis][private]") {
    auto& servers = private_servers();
    asio::io_context io;
    const auto o = private_options();
    auto client = redis_client::create(io.get_executor(), o);
    std::vector<redis_message> got;
    std::vector<bool> states;
    auto sub = redis_subscriber::create(
        io.get_executor(), o, [&got](redis_message m) { got.push_back(std::move(m)); },
        [&states](bool up) { states.push_back(up); });
    client->start();
    sub->start();
    REQUIRE(ok(run_sync(io, client->wait_connected(5s))));
    REQUIRE(ok(run_sync(io, sub->wait_connected(5s))));
    const auto ch = unique_name("restart");
    REQUIRE(ok(run_sync(io, sub->subscribe({ch}))));

    servers.stop_redis();
    REQUIRE(poll_until(io, [&] { return !client->connected() && !sub->connected(); }));
    const auto t0 = steady::now();
    CHECK(error_of(run_sync(io, client->set("k", "v"))) == errc::unavailable);
    CHECK(steady::now() - t0 < 100ms);
    CHECK(error_of(run_sync(io, sub->subscribe({ch + ".2"}))) == errc::unavailable);

    servers.start();
    REQUIRE(ok(run_sync(io, client->wait_connected(10s))));
    REQUIRE(ok(run_sync(io, sub->wait_connected(10s))));
    const auto k = unique_name("restart_key");
    REQUIRE(ok(run_sync(io, client->set(k, "after"))));
    CHECK(run_sync(io, client->get(k)).value() == std::optional<std::string>("after"));
    CHECK(client->stats().reconnects == 1);
    CHECK(sub->stats().reconnects == 1);

    // Both channels (the one subscribed while down included) are subscribed again by themselves.
    REQUIRE(poll_until(
        io, [&] { return run_sync(io, client->publish(ch + ".2", "m2")).value() == 1; }));
    CHECK(run_sync(io, client->publish(ch, "m1")).value() == 1);
    REQUIRE(poll_until(io, [&] { return got.size() >= 2; }));
    CHECK(got[0] == redis_message{"", ch + ".2", "m2"});
    CHECK(got[1] == redis_message{"", ch, "m1"});
    CHECK(states == std::vector<bool>{true, false, true});

    (void)run_sync(io, client->del({k}));
    client->stop();
    sub->stop();
    client.reset();
    sub.reset();
    drain(io);
}

TEST_CASE("redis: AUTH with the configured password, and a wrong one never connects",
          "[redis][private]") {
    (void)private_servers();
    asio::io_context io;
    auto admin = redis_client::create(io.get_executor(), private_options());
    admin->start();
    REQUIRE(ok(run_sync(io, admin->wait_connected(5s))));
    const std::string password = "pw-" + unique_name("auth");
    REQUIRE(ok(run_sync(io, admin->command({"CONFIG", "SET", "requirepass", password}))));

    auto connects = [&](std::string pw) {
        auto o = private_options();
        o.password = std::move(pw);
        auto c = redis_client::create(io.get_executor(), o);
        c->start();
        const bool ok = run_sync(io, c->wait_connected(700ms)).has_value();
        if (ok) CHECK(run_sync(io, c->ping()));
        c->stop();
        return ok;
    };
    const bool with_right = connects(password);
    const bool with_wrong = connects("not-" + password);
    const bool with_none = connects("");
    // The admin connection authenticated before the change; it restores the server.
    REQUIRE(ok(run_sync(io, admin->command({"CONFIG", "SET", "requirepass", ""}))));
    CHECK(with_right);
    CHECK_FALSE(with_wrong);
    CHECK_FALSE(with_none);

    admin->stop();
    admin.reset();
    drain(io);
}

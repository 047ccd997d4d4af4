// routing_live against the real Redis: presence, session locks, exclusive assignment and load,
// timers, suppression and the customer-service window, snapshot assembly. Two redis_client
// connections, each driven by its own io_context and thread, stand for two gateway instances.
// Time is injected (a fixed instant plus offsets); only lock expiry waits for Redis's clock, with
// bounded polls.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "scrm/common/log.hpp"
#include "scrm/routing/live.hpp"
#include "scrm/storage/redis.hpp"
#include "test_env.hpp"

namespace asio = boost::asio;
using namespace std::chrono_literals;
using scrm::errc;
using scrm::result;
using scrm::routing::instant;
using scrm::routing::live_options;
using scrm::routing::live_state;
using scrm::routing::offline_agent;
using scrm::routing::presence_change;
using scrm::storage::redis_client;
using scrm::storage::redis_options;
using scrm::test::run_sync;
using scrm::test::unique_name;
using steady = std::chrono::steady_clock;
using strings = std::vector<std::string>;

namespace {

constexpr std::uint64_t clinic = 7;

// A fixed instant: tests never read the wall clock for decisions.
const instant t0 =
    instant(std::chrono::sys_days(std::chrono::year(2026) / 11 / 23).time_since_epoch()) + 2h;

redis_options redis_opts() {
    const auto& s = scrm::test::services_config().redis;
    redis_options o;
    o.host = s.host;
    o.port = s.port;
    o.password = s.password;
    o.connect_timeout = 2000ms;
    o.command_timeout = 5000ms;
    o.backoff_initial = 20ms;
    o.backoff_max = 200ms;
    return o;
}

// One "gateway instance": its own io_context, Redis connection and live_state.
struct instance {
    asio::io_context io;
    std::shared_ptr<redis_client> client;
    std::unique_ptr<live_state> live;

    explicit instance(const live_options& o) {
        scrm::log::set_min_level(scrm::log::level::warn);  // connect/stop lines are noise here
        client = redis_client::create(io.get_executor(), redis_opts());
        client->start();
        REQUIRE(run_sync(io, client->wait_connected(5s)).has_value());
        live = std::make_unique<live_state>(client, o);
    }
    ~instance() {
        live.reset();
        client->stop();
        client.reset();
        io.restart();
        io.run_for(2s);
    }
    instance(const instance&) = delete;
    instance& operator=(const instance&) = delete;

    template <class T>
    T run(asio::awaitable<T> aw) {
        return run_sync(io, std::move(aw));
    }
};

// Two instances over one unique key root; deletes every key under it at the end.
struct fixture {
    live_options opts;
    std::optional<instance> a_, b_;
    instance& a;
    instance& b;

    static live_options with_root(live_options o) {
        o.key_root = unique_name("scrm_test_live");
        return o;
    }
    explicit fixture(live_options o = {})
        : opts(with_root(std::move(o))), a(a_.emplace(opts)), b(b_.emplace(opts)) {}
    ~fixture() {
        try {
            cleanup();
        } catch (...) {
        }
    }
    fixture(const fixture&) = delete;
    fixture& operator=(const fixture&) = delete;

    // Every key under the root, via SCAN.
    strings keys() {
        strings out;
        std::string cursor = "0";
        do {
            std::vector<std::string> cmd{"SCAN",  cursor, "MATCH", opts.key_root + ":*",
                                         "COUNT", "1000"};
            auto r = a.run(a.client->command(std::move(cmd)));
            REQUIRE(r.has_value());
            REQUIRE(r->elements.size() == 2);
            cursor = r->elements[0].str;
            for (const auto& e : r->elements[1].elements) out.push_back(e.str);
        } while (cursor != "0");
        return out;
    }
    void cleanup() {
        auto k = keys();
        if (!k.empty()) (void)a.run(a.client->del(std::move(k)));
    }
};

// Runs n coroutines made by make(live_state&, i): even i on instance a, odd i on b, each
// instance's io_context on its own thread, so the two connections' commands interleave on the
// server. Returns the results in index order.
template <class T, class Make>
std::vector<T> race(fixture& f, int n, Make make) {
    std::vector<std::optional<T>> out(static_cast<std::size_t>(n));
    std::atomic<int> done{0};
    std::atomic<int> failed{0};
    for (int i = 0; i < n; ++i) {
        instance& in = (i % 2 == 0) ? f.a : f.b;
        auto on_done = [&out, &done, &failed, i](std::exception_ptr e, T v) {
            if (e) {
                ++failed;
            } else {
                out[static_cast<std::size_t>(i)].emplace(std::move(v));
            }
            ++done;
        };
        asio::co_spawn(in.io, make(*in.live, i), std::move(on_done));
    }
    const auto deadline = steady::now() + 30s;
    auto drive = [&done, n, deadline](asio::io_context& io) {
        io.restart();
        while (done.load() < n && steady::now() < deadline) io.run_one_for(20ms);
    };
    std::thread other(drive, std::ref(f.b.io));
    drive(f.a.io);
    other.join();
    REQUIRE(done.load() == n);
    REQUIRE(failed.load() == 0);
    std::vector<T> results;
    for (auto& o : out) results.push_back(std::move(*o));
    return results;
}

// Polls `pred` (which runs its own Redis round trips) until it holds or `limit` passes.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 10s) {
    const auto deadline = steady::now() + limit;
    while (!pred()) {
        if (steady::now() > deadline) return false;
        std::this_thread::sleep_for(10ms);  // waiting for Redis's clock (a PX expiry)
    }
    return true;
}

}  // namespace

// ---- presence ----------------------------------------------------------------------------------

TEST_CASE("presence: a heartbeat keeps an agent online for the TTL, then it is offline",
          "[routing_live][presence]") {
    live_options o;
    o.presence_ttl = 30s;
    fixture f(o);
    auto& a = f.a;

    auto first = a.run(a.live->heartbeat(clinic, "a1", "tab1", t0));
    REQUIRE(first.has_value());
    CHECK(first->came_online);
    auto again = a.run(a.live->heartbeat(clinic, "a1", "tab1", t0 + 10s));
    REQUIRE(again.has_value());
    CHECK_FALSE(again->came_online);

    // Live until the last heartbeat + TTL (exclusive), seen from the other instance too.
    CHECK(f.b.run(f.b.live->online_agents(clinic, t0 + 40s - 1ms)).value() == strings{"a1"});
    CHECK(f.b.run(f.b.live->online_agents(clinic, t0 + 40s)).value().empty());

    // Another clinic's agents are not this clinic's.
    REQUIRE(a.run(a.live->heartbeat(clinic + 1, "a2", "tab1", t0)).has_value());
    CHECK(a.run(a.live->online_agents(clinic, t0 + 1s)).value() == strings{"a1"});
    CHECK(a.run(a.live->online_agents(clinic + 1, t0 + 1s)).value() == strings{"a2"});

    // Coming back after expiry is "came online".
    auto back = a.run(a.live->heartbeat(clinic, "a1", "tab1", t0 + 50s));
    REQUIRE(back.has_value());
    CHECK(back->came_online);
}

TEST_CASE("presence: a page reload within the grace keeps the agent online throughout",
          "[routing_live][presence]") {
    live_options o;
    o.presence_ttl = 30s;
    o.reconnect_grace = 5s;
    fixture f(o);
    auto& a = f.a;
    REQUIRE(a.run(a.live->heartbeat(clinic, "a1", "tab1", t0)).has_value());
    REQUIRE(a.run(a.live->heartbeat(clinic, "a2", "tab1", t0)).has_value());

    // Both close their page at t0+1s; a1 reloads (a new connection) at t0+4s, a2 never comes back.
    REQUIRE(a.run(a.live->disconnect(clinic, "a1", "tab1", t0 + 1s)).has_value());
    REQUIRE(a.run(a.live->disconnect(clinic, "a2", "tab1", t0 + 1s)).has_value());
    CHECK(a.run(a.live->online_agents(clinic, t0 + 3s)).value() == strings{"a1", "a2"});
    auto reload = a.run(a.live->heartbeat(clinic, "a1", "tab2", t0 + 4s));
    REQUIRE(reload.has_value());
    CHECK_FALSE(reload->came_online);  // nothing to re-route: it never went offline

    // a2's grace ends at t0+6s; a1 stays online on its new connection.
    CHECK(a.run(a.live->online_agents(clinic, t0 + 6s - 1ms)).value() == strings{"a1", "a2"});
    CHECK(a.run(a.live->online_agents(clinic, t0 + 6s)).value() == strings{"a1"});
    auto reaped = a.run(a.live->reap_offline(clinic, t0 + 7s));
    REQUIRE(reaped.has_value());
    REQUIRE(reaped->size() == 1);
    CHECK((*reaped)[0].agent == "a2");

    // An unknown connection closing changes nothing.
    REQUIRE(a.run(a.live->disconnect(clinic, "a1", "nope", t0 + 8s)).has_value());
    CHECK(a.run(a.live->online_agents(clinic, t0 + 30s)).value() == strings{"a1"});
}

TEST_CASE("presence: closing one tab does not hide the agent's other tab",
          "[routing_live][presence]") {
    live_options o;
    o.presence_ttl = 30s;
    o.reconnect_grace = 2s;
    fixture f(o);
    auto& a = f.a;
    REQUIRE(a.run(a.live->heartbeat(clinic, "a1", "tab1", t0)).has_value());
    REQUIRE(a.run(a.live->heartbeat(clinic, "a1", "tab2", t0 + 1s)).has_value());
    REQUIRE(a.run(a.live->disconnect(clinic, "a1", "tab1", t0 + 2s)).has_value());
    CHECK(a.run(a.live->online_agents(clinic, t0 + 20s)).value() == strings{"a1"});
    CHECK(a.run(a.live->online_agents(clinic, t0 + 31s)).value().empty());
}

TEST_CASE("presence: not accepting chats counts as offline, switching back is coming online",
          "[routing_live][presence]") {
    fixture f;
    auto& a = f.a;
    REQUIRE(a.run(a.live->heartbeat(clinic, "a1", "tab1", t0)).has_value());
    REQUIRE(a.run(a.live->heartbeat(clinic, "a2", "tab1", t0)).has_value());
    auto off = a.run(a.live->set_accepting(clinic, "a1", false, t0 + 1s));
    REQUIRE(off.has_value());
    CHECK_FALSE(off->came_online);
    CHECK(a.run(a.live->online_agents(clinic, t0 + 2s)).value() == strings{"a2"});
    // Heartbeats while paused do not bring it back.
    auto hb = a.run(a.live->heartbeat(clinic, "a1", "tab1", t0 + 3s));
    REQUIRE(hb.has_value());
    CHECK_FALSE(hb->came_online);
    CHECK(a.run(a.live->online_agents(clinic, t0 + 4s)).value() == strings{"a2"});
    auto on = f.b.run(f.b.live->set_accepting(clinic, "a1", true, t0 + 5s));
    REQUIRE(on.has_value());
    CHECK(on->came_online);
    CHECK(a.run(a.live->online_agents(clinic, t0 + 6s)).value() == strings{"a1", "a2"});
    // Switching on while disconnected is not coming online.
    REQUIRE(a.run(a.live->set_accepting(clinic, "a3", false, t0)).has_value());
    auto on3 = a.run(a.live->set_accepting(clinic, "a3", true, t0));
    REQUIRE(on3.has_value());
    CHECK_FALSE(on3->came_online);
}

TEST_CASE("presence: signing out is offline at once", "[routing_live][presence]") {
    fixture f;
    auto& a = f.a;
    REQUIRE(a.run(a.live->heartbeat(clinic, "a1", "tab1", t0)).has_value());
    REQUIRE(a.run(a.live->sign_out(clinic, "a1")).has_value());
    CHECK(a.run(a.live->online_agents(clinic, t0)).value().empty());
    CHECK(a.run(a.live->reap_offline(clinic, t0 + 1h)).value().empty());
}

TEST_CASE("presence: two instances reaping at once report each expired agent exactly once",
          "[routing_live][presence]") {
    live_options o;
    o.presence_ttl = 10s;
    fixture f(o);
    for (int i = 0; i < 20; ++i) {
        const std::string agent = "a" + std::to_string(i);
        // a0..a9 expire at t0+10s, a10..a19 heartbeat later and stay online.
        const instant at = i < 10 ? t0 : t0 + 20s;
        REQUIRE(f.a.run(f.a.live->heartbeat(clinic, agent, "tab", at)).has_value());
    }
    auto results = race<result<std::vector<offline_agent>>>(
        f, 8, [](live_state& l, int) { return l.reap_offline(clinic, t0 + 15s); });
    std::multiset<std::string> reported;
    for (const auto& r : results) {
        REQUIRE(r.has_value());
        for (const auto& off : *r) reported.insert(off.agent);
    }
    std::multiset<std::string> expected;
    for (int i = 0; i < 10; ++i) expected.insert("a" + std::to_string(i));
    CHECK(reported == expected);
    CHECK(f.a.run(f.a.live->online_agents(clinic, t0 + 15s)).value().size() == 10);
}

TEST_CASE("presence: empty ids are refused", "[routing_live][presence]") {
    fixture f;
    auto r = f.a.run(f.a.live->heartbeat(clinic, "", "tab", t0));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == make_error_code(errc::bad_input));
}

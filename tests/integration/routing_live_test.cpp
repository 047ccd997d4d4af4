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
#include "scrm/routing/decide.hpp"
#include "scrm/routing/live.hpp"
#include "scrm/storage/redis.hpp"
#include "test_env.hpp"

namespace asio = boost::asio;
using namespace std::chrono_literals;
using scrm::errc;
using scrm::result;
using scrm::routing::agent_load;
using scrm::routing::assign_result;
using scrm::routing::assign_status;
using scrm::routing::claimed_timer;
using scrm::routing::instant;
using scrm::routing::live_options;
using scrm::routing::live_snapshot;
using scrm::routing::live_state;
using scrm::routing::lock_info;
using scrm::routing::lock_result;
using scrm::routing::lock_status;
using scrm::routing::offline_agent;
using scrm::routing::presence_change;
using scrm::routing::reply_marks;
using scrm::routing::sender_kind;
using scrm::routing::spend_result;
using scrm::routing::spend_status;
using scrm::routing::timer_info;
using scrm::routing::window_kind;
using scrm::routing::window_state;
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

    explicit instance(const live_options& o, redis_options r = redis_opts()) {
        scrm::log::set_min_level(scrm::log::level::warn);  // connect/stop lines are noise here
        client = redis_client::create(io.get_executor(), std::move(r));
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

// ---- session locks -----------------------------------------------------------------------------

namespace {

// Brings agents online at t0 (for an hour).
void bring_online(instance& in, const strings& agents) {
    for (const auto& a : agents) {
        REQUIRE(in.run(in.live->heartbeat(clinic, a, "tab", t0)).has_value());
    }
}

std::string agent_name(int i) {
    return "ag" + std::to_string(i);
}

}  // namespace

TEST_CASE("locks: 50 agents acquiring one fan's lock at once on two instances, one holds it",
          "[routing_live][locks]") {
    live_options o;
    o.presence_ttl = 1h;
    fixture f(o);
    strings agents;
    for (int i = 0; i < 50; ++i) agents.push_back(agent_name(i));
    bring_online(f.a, agents);

    auto results = race<result<lock_result>>(f, 50, [](live_state& l, int i) {
        return l.acquire_lock(clinic, "fan1", agent_name(i), t0 + 1s);
    });
    std::vector<lock_result> winners;
    std::vector<lock_result> refused;
    for (const auto& r : results) {
        REQUIRE(r.has_value());
        (r->status == lock_status::acquired ? winners : refused).push_back(*r);
    }
    REQUIRE(winners.size() == 1);
    CHECK(refused.size() == 49);
    const lock_result& w = winners[0];
    CHECK(w.token > 0);
    for (const auto& r : refused) {
        CAPTURE(r);
        CHECK(r.status == lock_status::refused);
        CHECK(r.holder == w.holder);  // the refusal names the holder
        CHECK(r.token == 0);          // and never hands out the holder's token
    }
    auto held = f.b.run(f.b.live->lock_of(clinic, "fan1"));
    REQUIRE(held.has_value());
    REQUIRE(held->has_value());
    CHECK((*held)->holder == w.holder);
    CHECK((*held)->token == w.token);
    CHECK(f.a.run(f.a.live->check_fence(clinic, "fan1", w.token)).value());

    // The holder acquiring again renews, keeping its token.
    auto again = f.b.run(f.b.live->acquire_lock(clinic, "fan1", w.holder, t0 + 2s));
    REQUIRE(again.has_value());
    CHECK(again->status == lock_status::renewed);
    CHECK(again->token == w.token);
}

TEST_CASE("locks: the fencing token refuses a stale holder after expiry and re-acquisition",
          "[routing_live][locks]") {
    live_options o;
    o.presence_ttl = 1h;
    o.lock_ttl = 300ms;
    fixture f(o);
    bring_online(f.a, {"a1", "a2"});
    auto first = f.a.run(f.a.live->acquire_lock(clinic, "fan1", "a1", t0 + 1s));
    REQUIRE(first.has_value());
    REQUIRE(first->status == lock_status::acquired);
    const std::int64_t stale = first->token;

    // a2 is refused while the lock lives, then gets it once Redis expired it.
    auto refused = f.b.run(f.b.live->acquire_lock(clinic, "fan1", "a2", t0 + 1s));
    REQUIRE(refused.has_value());
    CHECK(refused->status == lock_status::refused);
    CHECK(refused->holder == "a1");
    REQUIRE(eventually([&] {
        auto l = f.b.run(f.b.live->lock_of(clinic, "fan1"));
        return l.has_value() && !l->has_value();
    }));
    auto second = f.b.run(f.b.live->acquire_lock(clinic, "fan1", "a2", t0 + 2s));
    REQUIRE(second.has_value());
    REQUIRE(second->status == lock_status::acquired);
    CHECK(second->token > stale);

    // The stale holder can neither write, renew nor release; the new one can.
    CHECK_FALSE(f.a.run(f.a.live->check_fence(clinic, "fan1", stale)).value());
    CHECK(f.a.run(f.a.live->check_fence(clinic, "fan1", second->token)).value());
    CHECK_FALSE(f.a.run(f.a.live->renew_lock_as(clinic, "fan1", "a1", stale)).value());
    CHECK_FALSE(f.a.run(f.a.live->release_lock(clinic, "fan1", "a1", stale)).value());
    CHECK(f.a.run(f.a.live->lock_of(clinic, "fan1")).value().value().holder == "a2");

    // Even the same agent re-acquiring gets a new token: the old one stays stale.
    REQUIRE(f.b.run(f.b.live->release_lock(clinic, "fan1", "a2", second->token)).value());
    auto third = f.a.run(f.a.live->acquire_lock(clinic, "fan1", "a2", t0 + 3s));
    REQUIRE(third.has_value());
    CHECK(third->token > second->token);
    CHECK_FALSE(f.a.run(f.a.live->check_fence(clinic, "fan1", second->token)).value());
}

TEST_CASE("locks: a fan or holder message restarts the TTL, anyone else's does not",
          "[routing_live][locks]") {
    live_options o;
    o.presence_ttl = 1h;
    o.lock_ttl = 60s;
    fixture f(o);
    auto& a = f.a;
    bring_online(a, {"a1", "a2"});
    auto got = a.run(a.live->acquire_lock(clinic, "fan1", "a1", t0));
    REQUIRE(got.has_value());
    const std::string lock_key = a.live->key_prefix(clinic) + "lock:fan1";
    auto shorten = [&] {
        std::vector<std::string> cmd{"PEXPIRE", lock_key, "5000"};
        REQUIRE(a.run(a.client->command(std::move(cmd))).has_value());
    };
    auto ttl = [&] { return a.run(a.live->lock_of(clinic, "fan1")).value().value().ttl; };

    shorten();
    auto by_fan = a.run(a.live->renew_lock(clinic, "fan1"));
    REQUIRE(by_fan.has_value());
    REQUIRE(by_fan->has_value());
    CHECK((*by_fan)->holder == "a1");
    CHECK(ttl() > 5000ms);

    shorten();
    CHECK(a.run(a.live->renew_lock_as(clinic, "fan1", "a1", got->token)).value());
    CHECK(ttl() > 5000ms);

    shorten();
    CHECK_FALSE(a.run(a.live->renew_lock_as(clinic, "fan1", "a2", got->token)).value());
    CHECK(ttl() <= 5000ms);

    // No lock: a fan message creates none.
    auto none = a.run(a.live->renew_lock(clinic, "fan2"));
    REQUIRE(none.has_value());
    CHECK_FALSE(none->has_value());
}

TEST_CASE("locks: release by the holder only, transfer hands over with a new token",
          "[routing_live][locks]") {
    live_options o;
    o.presence_ttl = 1h;
    fixture f(o);
    auto& a = f.a;
    bring_online(a, {"a1", "a2", "a3"});
    auto got = a.run(a.live->acquire_lock(clinic, "fan1", "a1", t0));
    REQUIRE(got.has_value());

    // Not the holder, or the wrong token: nothing happens.
    CHECK_FALSE(a.run(a.live->release_lock(clinic, "fan1", "a2", got->token)).value());
    CHECK_FALSE(a.run(a.live->release_lock(clinic, "fan1", "a1", got->token + 1000)).value());
    auto bad = a.run(a.live->transfer_lock(clinic, "fan1", "a2", got->token, "a3"));
    REQUIRE(bad.has_value());
    CHECK(bad->status == lock_status::refused);
    CHECK(bad->holder == "a1");

    auto moved = f.b.run(f.b.live->transfer_lock(clinic, "fan1", "a1", got->token, "a2"));
    REQUIRE(moved.has_value());
    CHECK(moved->status == lock_status::acquired);
    CHECK(moved->holder == "a2");
    CHECK(moved->token > got->token);
    CHECK_FALSE(a.run(a.live->check_fence(clinic, "fan1", got->token)).value());
    CHECK(a.run(a.live->check_fence(clinic, "fan1", moved->token)).value());
    auto refused = a.run(a.live->acquire_lock(clinic, "fan1", "a1", t0 + 1s));
    REQUIRE(refused.has_value());
    CHECK(refused->status == lock_status::refused);
    CHECK(refused->holder == "a2");
    // The old holder's offline release does not touch the moved lock.
    CHECK(a.run(a.live->release_agent_locks(clinic, "a1")).value().empty());

    CHECK(a.run(a.live->release_lock(clinic, "fan1", "a2", moved->token)).value());
    CHECK_FALSE(a.run(a.live->lock_of(clinic, "fan1")).value().has_value());
    auto free_transfer = a.run(a.live->transfer_lock(clinic, "fan1", "a2", moved->token, "a3"));
    REQUIRE(free_transfer.has_value());
    CHECK(free_transfer->status == lock_status::refused);
    CHECK(free_transfer->holder.empty());
    auto fresh = a.run(a.live->acquire_lock(clinic, "fan1", "a3", t0 + 2s));
    REQUIRE(fresh.has_value());
    CHECK(fresh->status == lock_status::acquired);
}

TEST_CASE("locks: an offline holder's locks are released, or taken over by an online agent",
          "[routing_live][locks]") {
    live_options o;
    o.presence_ttl = 30s;
    o.reconnect_grace = 5s;
    fixture f(o);
    auto& a = f.a;
    bring_online(a, {"a1", "a2", "a3", "a4"});
    auto acquire = [&](const std::string& fan, const std::string& agent, instant at) {
        auto r = a.run(a.live->acquire_lock(clinic, fan, agent, at));
        REQUIRE(r.has_value());
        return *r;
    };
    for (std::string fan : {"f1", "f2", "f3"}) {
        REQUIRE(acquire(fan, "a1", t0 + 1s).status == lock_status::acquired);
    }
    REQUIRE(acquire("f4", "a2", t0 + 1s).status == lock_status::acquired);
    REQUIRE(acquire("f5", "a3", t0 + 1s).status == lock_status::acquired);
    REQUIRE(acquire("f6", "a4", t0 + 1s).status == lock_status::acquired);

    // a1's page closes and it never comes back: after the grace, a sweep releases its locks.
    REQUIRE(a.run(a.live->disconnect(clinic, "a1", "tab", t0 + 2s)).has_value());
    CHECK(acquire("f1", "a2", t0 + 6s).status == lock_status::refused);  // still in its grace
    auto reaped = f.b.run(f.b.live->reap_offline(clinic, t0 + 8s));
    REQUIRE(reaped.has_value());
    CHECK(*reaped == std::vector<offline_agent>{offline_agent{"a1", {"f1", "f2", "f3"}, true}});
    for (std::string fan : {"f1", "f2", "f3"}) {
        CHECK_FALSE(a.run(a.live->lock_of(clinic, fan)).value().has_value());
    }
    CHECK(a.run(a.live->lock_of(clinic, "f4")).value().value().holder == "a2");

    // Not accepting chats counts as offline: its locks go at once.
    auto paused = a.run(a.live->set_accepting(clinic, "a2", false, t0 + 9s));
    REQUIRE(paused.has_value());
    CHECK(paused->released_fans == strings{"f4"});
    // Signing out releases too.
    auto out = a.run(a.live->sign_out(clinic, "a3"));
    REQUIRE(out.has_value());
    CHECK(out->released_fans == strings{"f5"});
    CHECK_FALSE(a.run(a.live->lock_of(clinic, "f5")).value().has_value());

    // A lock whose holder went offline without a sweep yet is taken over by the next agent.
    REQUIRE(a.run(a.live->heartbeat(clinic, "a1", "tab", t0 + 40s)).has_value());
    auto over = acquire("f6", "a1", t0 + 40s);  // a4's presence ran out at t0+30s
    CHECK(over.status == lock_status::taken_over);
    CHECK(over.previous_holder == std::optional<std::string>("a4"));
    CHECK(a.run(a.live->release_agent_locks(clinic, "a4")).value().empty());
    CHECK(a.run(a.live->lock_of(clinic, "f6")).value().value().holder == "a1");
    CHECK(a.run(a.live->release_agent_locks(clinic, "a1")).value() == strings{"f6"});
}

// ---- exclusive assignment and load -------------------------------------------------------------

namespace {

std::map<std::string, std::int64_t> loads_of(instance& in, const strings& agents) {
    auto r = in.run(in.live->read_loads(clinic, agents));
    REQUIRE(r.has_value());
    REQUIRE(r->size() == agents.size());
    std::map<std::string, std::int64_t> out;
    for (const auto& l : *r) out[l.agent] = l.load;
    return out;
}

const strings four = {"a1", "a2", "a3", "a4"};

}  // namespace

TEST_CASE("assignment: 50 racing commits on one new fan from two instances, one winner",
          "[routing_live][assign]") {
    fixture f;
    auto results = race<result<assign_result>>(f, 50, [](live_state& l, int i) {
        // Each attempt picked some agent (instances may disagree); none saw an exclusive agent.
        return l.commit_exclusive(clinic, "fan1", std::nullopt,
                                  four[static_cast<std::size_t>(i % 4)], t0 + 1s);
    });
    int assigned = 0;
    std::optional<std::string> winner;
    for (const auto& r : results) {
        REQUIRE(r.has_value());
        if (r->status == assign_status::assigned) {
            ++assigned;
            winner = r->exclusive_agent;
        }
    }
    REQUIRE(assigned == 1);
    REQUIRE(winner.has_value());
    for (std::size_t i = 0; i < results.size(); ++i) {
        const auto& r = *results[i];
        CAPTURE(i, r);
        // Everyone learns the winner; only those who picked it too see already_assigned.
        CHECK(r.exclusive_agent == winner);
        if (r.status != assign_status::assigned) {
            CHECK(r.status ==
                  (four[i % 4] == *winner ? assign_status::already_assigned : assign_status::lost));
        }
    }
    CHECK(f.a.run(f.a.live->exclusive_agent(clinic, "fan1")).value() == winner);
    auto loads = f.b.run(f.b.live->read_loads(clinic, four));
    REQUIRE(loads.has_value());
    for (const auto& l : *loads) {
        CAPTURE(l);
        const bool is_winner = l.agent == *winner;
        CHECK(l.load == (is_winner ? 1 : 0));  // incremented once, for the winner only
        const auto t1 =
            std::chrono::floor<std::chrono::seconds>(t0 + 1s).time_since_epoch().count();
        CHECK(l.last_assigned == (is_winner ? t1 : 0));
    }
}

TEST_CASE("assignment: the compare-and-set honours the expected exclusive agent",
          "[routing_live][assign]") {
    fixture f;
    auto& a = f.a;
    REQUIRE(a.run(a.live->set_exclusive(clinic, "fan1", std::string("a1"))).has_value());
    auto lost = a.run(a.live->commit_exclusive(clinic, "fan1", std::nullopt, "a2", t0));
    REQUIRE(lost.has_value());
    CHECK(*lost == assign_result{assign_status::lost, "a1", {}});
    auto wrong = a.run(a.live->commit_exclusive(clinic, "fan1", std::string("a3"), "a2", t0));
    REQUIRE(wrong.has_value());
    CHECK(*wrong == assign_result{assign_status::lost, "a1", {}});
    CHECK(loads_of(a, four) ==
          std::map<std::string, std::int64_t>{{"a1", 0}, {"a2", 0}, {"a3", 0}, {"a4", 0}});

    // Reassigning from a1 to a2: a1's unanswered fan moves to a2.
    REQUIRE(a.run(a.live->note_unanswered(clinic, "fan1", "a1")).value());
    auto moved = a.run(a.live->commit_exclusive(clinic, "fan1", std::string("a1"), "a2", t0));
    REQUIRE(moved.has_value());
    CHECK(*moved == assign_result{assign_status::assigned, "a2", {}});
    CHECK(loads_of(a, four) ==
          std::map<std::string, std::int64_t>{{"a1", 0}, {"a2", 1}, {"a3", 0}, {"a4", 0}});

    // Removed since: a CAS expecting the old one finds none.
    REQUIRE(a.run(a.live->set_exclusive(clinic, "fan1", std::nullopt)).has_value());
    CHECK_FALSE(a.run(a.live->exclusive_agent(clinic, "fan1")).value().has_value());
    auto gone = a.run(a.live->commit_exclusive(clinic, "fan1", std::string("a2"), "a3", t0));
    REQUIRE(gone.has_value());
    CHECK(*gone == assign_result{assign_status::lost, std::nullopt, {}});

    auto bad = a.run(a.live->commit_exclusive(clinic, "fan1", std::string(""), "a3", t0));
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error() == make_error_code(errc::bad_input));
}

TEST_CASE("load: unanswered fans plus held sessions, each fan counted once",
          "[routing_live][assign]") {
    live_options o;
    o.presence_ttl = 1h;
    fixture f(o);
    auto& a = f.a;
    bring_online(a, four);

    CHECK(a.run(a.live->note_unanswered(clinic, "f1", "a1")).value());
    CHECK_FALSE(a.run(a.live->note_unanswered(clinic, "f1", "a1")).value());  // counted once
    CHECK(a.run(a.live->note_unanswered(clinic, "f2", "a1")).value());
    auto lock = a.run(a.live->acquire_lock(clinic, "f1", "a1", t0));  // same fan: still one
    REQUIRE(lock.has_value());
    auto lock3 = a.run(a.live->acquire_lock(clinic, "f3", "a1", t0));  // a held session: one more
    REQUIRE(lock3.has_value());
    CHECK(loads_of(a, four).at("a1") == 3);

    // A reply takes the fan off its owner's unanswered set; the session still counts.
    CHECK(a.run(a.live->note_answered(clinic, "f1")).value() == std::optional<std::string>("a1"));
    CHECK_FALSE(a.run(a.live->note_answered(clinic, "f1")).value().has_value());
    CHECK(loads_of(a, four).at("a1") == 3);
    REQUIRE(a.run(a.live->release_lock(clinic, "f1", "a1", lock->token)).value());
    CHECK(loads_of(a, four).at("a1") == 2);

    // Marking the fan for another owner moves it; a transferred session moves with the lock.
    CHECK(a.run(a.live->note_unanswered(clinic, "f2", "a2")).value());
    REQUIRE(a.run(a.live->transfer_lock(clinic, "f3", "a1", lock3->token, "a3")).has_value());
    CHECK(loads_of(a, four) ==
          std::map<std::string, std::int64_t>{{"a1", 0}, {"a2", 1}, {"a3", 1}, {"a4", 0}});

    // An agent gone offline: its sessions stop counting, its unanswered fans stay its own.
    CHECK(a.run(a.live->note_unanswered(clinic, "f4", "a3")).value());
    REQUIRE(a.run(a.live->sign_out(clinic, "a3")).has_value());
    CHECK(loads_of(a, four).at("a3") == 1);
}

TEST_CASE("assignment: 200 new fans one after another over 4 agents keep loads within 1",
          "[routing_live][assign]") {
    live_options o;
    o.presence_ttl = 1h;
    fixture f(o);
    bring_online(f.a, four);
    std::map<std::string, int> picks;
    for (int i = 0; i < 200; ++i) {
        instance& in = (i % 2 == 0) ? f.a : f.b;  // alternate instances
        const instant now = t0 + std::chrono::seconds(i);
        auto online = in.run(in.live->online_agents(clinic, now));
        REQUIRE(online.has_value());
        REQUIRE(*online == four);
        auto loads = in.run(in.live->read_loads(clinic, four));
        REQUIRE(loads.has_value());

        scrm::routing::snapshot s;
        s.now = std::chrono::floor<std::chrono::seconds>(now);
        s.config.exclusive_mode = true;
        for (const auto& l : *loads) {
            s.agents.push_back({l.agent, std::nullopt, true, true, l.load, l.last_assigned});
        }
        s.fan.openid = "fan" + std::to_string(i);
        auto d = scrm::routing::decide(s);
        REQUIRE(d.rule == scrm::routing::route_rule::assigned);
        REQUIRE(d.assign_exclusive.has_value());

        auto c = in.run(in.live->commit_exclusive(clinic, s.fan.openid, std::nullopt,
                                                  *d.assign_exclusive, now));
        REQUIRE(c.has_value());
        REQUIRE(c->status == assign_status::assigned);
        ++picks[*d.assign_exclusive];

        auto after = loads_of(in, four);
        std::int64_t lo = after.begin()->second, hi = lo, sum = 0;
        for (const auto& [agent, load] : after) {
            lo = std::min(lo, load);
            hi = std::max(hi, load);
            sum += load;
        }
        CAPTURE(i);
        REQUIRE(hi - lo <= 1);
        REQUIRE(sum == i + 1);
    }
    CHECK(picks == std::map<std::string, int>{{"a1", 50}, {"a2", 50}, {"a3", 50}, {"a4", 50}});
}

// ---- durable timers ----------------------------------------------------------------------------

TEST_CASE("timers: two instances claiming at once get each due timer exactly once",
          "[routing_live][timers]") {
    fixture f;
    std::set<std::string> armed;
    for (int i = 0; i < 60; ++i) {
        const std::string fan = "fan" + std::to_string(i);
        // 50 due by t0+5min, 10 due later.
        const instant due = t0 + (i < 50 ? std::chrono::seconds(i) : 1h);
        REQUIRE(f.a.run(f.a.live->arm_timer(clinic, fan, due, "msg" + std::to_string(i))).value());
        if (i < 50) armed.insert(fan);
    }
    auto results = race<result<std::vector<claimed_timer>>>(
        f, 20, [](live_state& l, int) { return l.claim_due_timers(clinic, t0 + 5min, 4); });
    std::multiset<std::string> claimed;
    std::set<std::int64_t> claim_ids;
    for (const auto& r : results) {
        REQUIRE(r.has_value());
        CHECK(r->size() <= 4);
        for (const auto& t : *r) {
            claimed.insert(t.fan);
            claim_ids.insert(t.claim);
            CHECK(t.payload == "msg" + t.fan.substr(3));
        }
    }
    CHECK(claimed.size() == armed.size());  // 20 claims of up to 4 cover 50 only if none repeats
    CHECK(std::set<std::string>(claimed.begin(), claimed.end()) == armed);
    CHECK(claim_ids.size() == claimed.size());
    // Nothing is due any more before the lease (60 s) runs out; the later ones are still armed.
    CHECK(f.a.run(f.a.live->claim_due_timers(clinic, t0 + 5min + 59s, 100)).value().empty());
    auto later = f.b.run(f.b.live->timer_of(clinic, "fan55"));
    REQUIRE(later.has_value());
    REQUIRE(later->has_value());
    CHECK((*later)->due == t0 + 1h);
    CHECK_FALSE((*later)->lease_until.has_value());
}

TEST_CASE("timers: a claim not confirmed within its lease is due again, once",
          "[routing_live][timers]") {
    live_options o;
    o.timer_lease = 30s;
    fixture f(o);
    REQUIRE(f.a.run(f.a.live->arm_timer(clinic, "fan1", t0, "m1")).value());
    REQUIRE(f.a.run(f.a.live->arm_timer(clinic, "fan2", t0 + 1s, "m2")).value());

    // Instance a claims both and dies before confirming fan1 (it confirms fan2).
    auto first = f.a.run(f.a.live->claim_due_timers(clinic, t0 + 5min, 10));
    REQUIRE(first.has_value());
    REQUIRE(first->size() == 2);
    CHECK((*first)[0].fan == "fan1");  // due order
    CHECK((*first)[0].due == t0);
    CHECK((*first)[1].fan == "fan2");
    REQUIRE(f.a.run(f.a.live->confirm_timer(clinic, "fan2", (*first)[1].claim)).value());
    auto info = f.b.run(f.b.live->timer_of(clinic, "fan1"));
    REQUIRE(info.has_value());
    REQUIRE(info->has_value());
    CHECK((*info)->lease_until == std::optional<instant>(t0 + 5min + 30s));

    // Within the lease nobody else gets it; after, instance b does — and only b.
    CHECK(f.b.run(f.b.live->claim_due_timers(clinic, t0 + 5min + 30s - 1ms, 10)).value().empty());
    auto again = f.b.run(f.b.live->claim_due_timers(clinic, t0 + 5min + 30s, 10));
    REQUIRE(again.has_value());
    REQUIRE(again->size() == 1);
    CHECK((*again)[0].fan == "fan1");
    CHECK((*again)[0].payload == "m1");
    CHECK((*again)[0].due == t0);
    CHECK((*again)[0].claim != (*first)[0].claim);
    CHECK(f.a.run(f.a.live->claim_due_timers(clinic, t0 + 5min + 31s, 10)).value().empty());

    // The dead claimant's late confirm does not count; the live one's does.
    CHECK_FALSE(f.a.run(f.a.live->confirm_timer(clinic, "fan1", (*first)[0].claim)).value());
    CHECK(f.b.run(f.b.live->confirm_timer(clinic, "fan1", (*again)[0].claim)).value());
    CHECK_FALSE(f.b.run(f.b.live->timer_of(clinic, "fan1")).value().has_value());
    CHECK(f.b.run(f.b.live->claim_due_timers(clinic, t0 + 1h, 10)).value().empty());
}

TEST_CASE("timers: cancel stops a timer, armed or claimed, and arming twice keeps the first",
          "[routing_live][timers]") {
    fixture f;
    auto& a = f.a;
    REQUIRE(a.run(a.live->arm_timer(clinic, "fan1", t0 + 5min, "m1")).value());
    CHECK_FALSE(a.run(a.live->arm_timer(clinic, "fan1", t0 + 9min, "m2")).value());
    CHECK(a.run(a.live->timer_of(clinic, "fan1")).value() ==
          std::optional<timer_info>(timer_info{t0 + 5min, "m1", std::nullopt}));
    CHECK(a.run(a.live->cancel_timer(clinic, "fan1")).value());
    CHECK_FALSE(a.run(a.live->cancel_timer(clinic, "fan1")).value());
    CHECK(a.run(a.live->claim_due_timers(clinic, t0 + 1h, 10)).value().empty());

    // Cancelled while claimed: the claimant's confirm fails and it never comes back.
    REQUIRE(a.run(a.live->arm_timer(clinic, "fan2", t0, "m")).value());
    auto claimed = a.run(a.live->claim_due_timers(clinic, t0, 10));
    REQUIRE(claimed.has_value());
    REQUIRE(claimed->size() == 1);
    CHECK_FALSE(a.run(a.live->arm_timer(clinic, "fan2", t0, "m")).value());  // in flight
    CHECK(f.b.run(f.b.live->cancel_timer(clinic, "fan2")).value());
    CHECK_FALSE(a.run(a.live->confirm_timer(clinic, "fan2", (*claimed)[0].claim)).value());
    CHECK(a.run(a.live->claim_due_timers(clinic, t0 + 1h, 10)).value().empty());
    // Re-armed after the cancel, it is a new timer.
    CHECK(a.run(a.live->arm_timer(clinic, "fan2", t0 + 2h, "m3")).value());

    auto bad = a.run(a.live->claim_due_timers(clinic, t0, 0));
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error() == make_error_code(errc::bad_input));
}

TEST_CASE("timers: armed and claimed timers survive a Redis restart and new instances",
          "[routing_live][timers]") {
    scrm::test::private_services svc;
    redis_options r = redis_opts();
    r.host = svc.config().redis.host;
    r.port = svc.config().redis.port;
    r.password = svc.config().redis.password;
    live_options o;
    o.key_root = unique_name("scrm_test_live");
    o.timer_lease = 30s;
    std::int64_t lost_claim = 0;
    {
        instance first(o, r);
        REQUIRE(first.run(first.live->arm_timer(clinic, "fan1", t0, "m1")).value());
        REQUIRE(first.run(first.live->arm_timer(clinic, "fan2", t0 + 1min, "m2")).value());
        auto c = first.run(first.live->claim_due_timers(clinic, t0, 10));  // fan1, then it dies
        REQUIRE(c.has_value());
        REQUIRE(c->size() == 1);
        lost_claim = (*c)[0].claim;
    }
    svc.stop_redis();
    svc.start();
    instance second(o, r);
    auto due = second.run(second.live->claim_due_timers(clinic, t0 + 10min, 10));
    REQUIRE(due.has_value());
    REQUIRE(due->size() == 2);
    CHECK((*due)[0].fan == "fan1");  // its lease ran out: due again
    CHECK((*due)[0].claim > lost_claim);
    CHECK((*due)[1].fan == "fan2");
    CHECK((*due)[1].payload == "m2");
}

// ---- suppression and the customer-service window -----------------------------------------------

TEST_CASE("suppression: an auto-reply or an agent reply within the window silences auto-replies",
          "[routing_live][windows]") {
    live_options o;
    o.suppression_window = 10min;
    fixture f(o);
    auto& a = f.a;
    CHECK_FALSE(a.run(a.live->is_suppressed(clinic, "fan1", t0)).value());
    REQUIRE(a.run(a.live->record_auto_reply(clinic, "fan1", t0)).has_value());
    CHECK(f.b.run(f.b.live->is_suppressed(clinic, "fan1", t0 + 10min - 1ms)).value());
    CHECK_FALSE(f.b.run(f.b.live->is_suppressed(clinic, "fan1", t0 + 10min)).value());

    REQUIRE(a.run(a.live->record_agent_reply(clinic, "fan1", t0 + 5min)).has_value());
    REQUIRE(
        a.run(a.live->record_agent_reply(clinic, "fan1", t0 + 1min)).has_value());  // older: kept
    CHECK(a.run(a.live->reply_marks_of(clinic, "fan1")).value() == reply_marks{t0, t0 + 5min});
    CHECK(a.run(a.live->is_suppressed(clinic, "fan1", t0 + 15min - 1ms)).value());
    CHECK_FALSE(a.run(a.live->is_suppressed(clinic, "fan1", t0 + 15min)).value());
    CHECK(a.run(a.live->reply_marks_of(clinic, "fan2")).value() == reply_marks{});

    // The pure rule at its edges.
    using scrm::routing::suppressed;
    CHECK_FALSE(suppressed(reply_marks{}, t0, 10min));
    CHECK(suppressed(reply_marks{t0 + 1s, std::nullopt}, t0, 10min));  // clock slightly ahead
    CHECK(suppressed(reply_marks{std::nullopt, t0}, t0 + 10min - 1ms, 10min));
    CHECK_FALSE(suppressed(reply_marks{std::nullopt, t0}, t0 + 10min, 10min));
}

TEST_CASE("suppression: of 40 auto-replies claimed at once on two instances, one wins",
          "[routing_live][windows]") {
    fixture f;
    const auto claims = race<bool>(f, 40, [](live_state& live, int) {
        return [](live_state& l) -> asio::awaitable<bool> {
            auto r = co_await l.claim_auto_reply(clinic, "fan1", t0, 10min);
            co_return r.has_value() && *r;
        }(live);
    });
    CHECK(std::count(claims.begin(), claims.end(), true) == 1);
    auto& a = f.a;
    CHECK(a.run(a.live->reply_marks_of(clinic, "fan1")).value() == reply_marks{t0, std::nullopt});
    // Within the window nothing more; after it, the next one; an agent's reply also blocks it.
    CHECK_FALSE(a.run(a.live->claim_auto_reply(clinic, "fan1", t0 + 10min - 1ms, 10min)).value());
    CHECK(a.run(a.live->claim_auto_reply(clinic, "fan1", t0 + 10min, 10min)).value());
    REQUIRE(a.run(a.live->record_agent_reply(clinic, "fan2", t0)).has_value());
    CHECK_FALSE(a.run(a.live->claim_auto_reply(clinic, "fan2", t0 + 1min, 10min)).value());
    CHECK(a.run(a.live->reply_marks_of(clinic, "fan2")).value() ==
          reply_marks{std::nullopt, t0});  // a refused claim changes nothing
    CHECK_FALSE(a.run(a.live->claim_auto_reply(clinic, "", t0, 10min)).has_value());
}

TEST_CASE("window: a fan message allows 5 sends in 48 h, an auto-reply never takes the last",
          "[routing_live][windows]") {
    fixture f;
    auto& a = f.a;
    auto spend = [&](sender_kind who, instant at) {
        auto r = a.run(a.live->spend_window(clinic, "fan1", who, at));
        REQUIRE(r.has_value());
        return *r;
    };
    CHECK(spend(sender_kind::agent, t0) == spend_result{spend_status::closed, std::nullopt, 0});
    REQUIRE(a.run(a.live->open_window(clinic, "fan1", window_kind::message, t0)).has_value());
    for (int left = 4; left >= 2; --left) {
        CHECK(spend(sender_kind::agent, t0 + 1h) ==
              spend_result{spend_status::spent, window_kind::message, left});
    }
    CHECK(spend(sender_kind::auto_reply, t0 + 1h) ==
          spend_result{spend_status::spent, window_kind::message, 1});
    CHECK(spend(sender_kind::auto_reply, t0 + 1h) ==
          spend_result{spend_status::last_slot_reserved, std::nullopt, 0});
    CHECK(spend(sender_kind::agent, t0 + 1h) ==
          spend_result{spend_status::spent, window_kind::message, 0});
    CHECK(spend(sender_kind::agent, t0 + 1h) ==
          spend_result{spend_status::exhausted, std::nullopt, 0});
    auto w = a.run(a.live->windows_of(clinic, "fan1", t0 + 1h));
    REQUIRE(w.has_value());
    REQUIRE(w->size() == 2);
    CHECK((*w)[0] == window_state{window_kind::message, t0, true, 5, 0});
    CHECK((*w)[1] == window_state{window_kind::event, std::nullopt, false, 0, 0});

    // The same message seen again (routed twice), or an older one arriving late, opens nothing.
    REQUIRE(a.run(a.live->open_window(clinic, "fan1", window_kind::message, t0)).has_value());
    REQUIRE(a.run(a.live->open_window(clinic, "fan1", window_kind::message, t0 - 1s)).has_value());
    CHECK(spend(sender_kind::agent, t0 + 1h) ==
          spend_result{spend_status::exhausted, std::nullopt, 0});

    // The fan writes again: a fresh window. 48 h later it is closed.
    REQUIRE(a.run(a.live->open_window(clinic, "fan1", window_kind::message, t0 + 2h)).has_value());
    CHECK(spend(sender_kind::auto_reply, t0 + 50h - 1ms) ==
          spend_result{spend_status::spent, window_kind::message, 4});
    CHECK(spend(sender_kind::agent, t0 + 50h) ==
          spend_result{spend_status::closed, std::nullopt, 0});
}

TEST_CASE(
    "window: a follow, scan or click allows 3 sends in 1 minute, charged before the "
    "message window",
    "[routing_live][windows]") {
    fixture f;
    auto& a = f.a;
    auto spend = [&](sender_kind who, instant at) {
        auto r = a.run(a.live->spend_window(clinic, "fan1", who, at));
        REQUIRE(r.has_value());
        return *r;
    };
    REQUIRE(a.run(a.live->open_window(clinic, "fan1", window_kind::message, t0)).has_value());
    REQUIRE(a.run(a.live->open_window(clinic, "fan1", window_kind::event, t0 + 1s)).has_value());
    // The event window closes first, so it pays first; an auto-reply leaves its last slot.
    CHECK(spend(sender_kind::auto_reply, t0 + 2s) ==
          spend_result{spend_status::spent, window_kind::event, 2});
    CHECK(spend(sender_kind::auto_reply, t0 + 2s) ==
          spend_result{spend_status::spent, window_kind::event, 1});
    CHECK(spend(sender_kind::auto_reply, t0 + 2s) ==
          spend_result{spend_status::spent, window_kind::message, 4});
    CHECK(spend(sender_kind::agent, t0 + 2s) ==
          spend_result{spend_status::spent, window_kind::event, 0});
    // A minute after the follow only the message window is left.
    CHECK(spend(sender_kind::agent, t0 + 61s) ==
          spend_result{spend_status::spent, window_kind::message, 3});
    auto w = a.run(a.live->windows_of(clinic, "fan1", t0 + 61s));
    REQUIRE(w.has_value());
    CHECK((*w)[1] == window_state{window_kind::event, t0 + 1s, false, 3, 0});
}

TEST_CASE("window: concurrent senders on two instances never overspend the quota",
          "[routing_live][windows]") {
    fixture f;
    REQUIRE(f.a.run(f.a.live->open_window(clinic, "fan1", window_kind::message, t0)).has_value());
    auto results = race<result<spend_result>>(f, 20, [](live_state& l, int i) {
        return l.spend_window(clinic, "fan1",
                              i % 3 == 0 ? sender_kind::auto_reply : sender_kind::agent, t0 + 1min);
    });
    int spent = 0;
    std::set<int> remaining;
    for (std::size_t i = 0; i < results.size(); ++i) {
        const auto& r = results[i];
        REQUIRE(r.has_value());
        if (r->status != spend_status::spent) continue;
        ++spent;
        remaining.insert(r->remaining);
        if (r->remaining == 0) CHECK(i % 3 != 0);  // the last slot went to an agent
    }
    CHECK(spent == 5);
    CHECK(remaining == std::set<int>{0, 1, 2, 3, 4});
    auto w = f.a.run(f.a.live->windows_of(clinic, "fan1", t0 + 1min));
    REQUIRE(w.has_value());
    CHECK((*w)[0].used == 5);
}

// ---- snapshot assembly -------------------------------------------------------------------------

namespace {

using scrm::routing::agent_state;
using scrm::routing::route_rule;
using scrm::routing::snapshot;
using scrm::routing::with_receipt;

// The static parts, as the caller would load them from MySQL: agents with store and permission,
// the fan's ownership, the clinic's modes.
snapshot static_parts(const std::string& fan, bool exclusive_mode) {
    snapshot s;
    s.config.exclusive_mode = exclusive_mode;
    for (const auto& id : four) {
        agent_state a;
        a.id = id;
        a.store = "s1";
        a.can_receive = true;
        s.agents.push_back(a);
    }
    s.fan.openid = fan;
    return s;
}

// One new fan's message routed the way the gateway will: snapshot, decide, commit; a stale pick
// (loads changed meanwhile) decides again. The committed exclusive agent, or an error.
asio::awaitable<result<std::string>> route_new_fan(live_state* l, std::string fan, instant now,
                                                   std::atomic<int>* retries) {
    for (int attempt = 0; attempt < 1000; ++attempt) {
        snapshot base =
            static_parts(fan, true);  // a named local: no aggregate temporary in co_await
        auto snap = co_await l->load_snapshot(clinic, std::move(base), now);
        if (!snap) co_return snap.error();
        auto d = scrm::routing::decide(snap->input, with_receipt::yes);
        if (d.rule == route_rule::exclusive) co_return *d.owner;  // someone committed it already
        if (d.rule != route_rule::assigned) co_return make_error_code(errc::conflict);
        std::vector<std::string> candidates = d.receipt->candidates;
        auto c = co_await l->commit_exclusive(clinic, fan, std::nullopt, *d.assign_exclusive, now,
                                              std::move(candidates));
        if (!c) co_return c.error();
        if (c->status != scrm::routing::assign_status::stale_pick) {
            if (!c->exclusive_agent) co_return make_error_code(errc::conflict);
            co_return *c->exclusive_agent;
        }
        ++*retries;
    }
    co_return make_error_code(errc::timeout);
}

}  // namespace

TEST_CASE("snapshot: presence, lock, loads, last_assigned, exclusive agent and marks in one read",
          "[routing_live][snapshot]") {
    live_options o;
    o.presence_ttl = 1h;
    o.suppression_window = 10min;
    fixture f(o);
    auto& a = f.a;
    bring_online(a, {"a1", "a2", "a3"});  // a4 never connects
    REQUIRE(a.run(a.live->set_accepting(clinic, "a3", false, t0)).has_value());
    REQUIRE(a.run(a.live->commit_exclusive(clinic, "fan1", std::nullopt, "a1", t0 + 5s))
                .value()
                .status == assign_status::assigned);
    auto lock = a.run(a.live->acquire_lock(clinic, "fan1", "a2", t0 + 10s));
    REQUIRE(lock.has_value());
    REQUIRE(a.run(a.live->note_unanswered(clinic, "fan9", "a2")).value());
    REQUIRE(a.run(a.live->record_auto_reply(clinic, "fan1", t0 + 20s)).has_value());

    const instant now = t0 + 1min + 500ms;
    auto got = f.b.run(f.b.live->load_snapshot(clinic, static_parts("fan1", true), now));
    REQUIRE(got.has_value());
    const snapshot& s = got->input;
    CHECK(s.now == std::chrono::floor<std::chrono::seconds>(now));
    const auto t5 = std::chrono::floor<std::chrono::seconds>(t0 + 5s).time_since_epoch().count();
    CHECK(s.agents == std::vector<agent_state>{{"a1", "s1", true, true, 1, t5},
                                               {"a2", "s1", true, true, 2, 0},
                                               {"a3", "s1", false, true, 0, 0},
                                               {"a4", "s1", false, true, 0, 0}});
    CHECK(s.fan.exclusive_agent == std::optional<std::string>("a1"));
    CHECK(s.session_holder == std::optional<std::string>("a2"));
    CHECK(s.auto_reply_suppressed);
    REQUIRE(got->lock.has_value());
    CHECK(got->lock->holder == "a2");
    CHECK(got->lock->token == lock->token);
    CHECK(got->lock->ttl > 0ms);
    CHECK(got->marks == reply_marks{t0 + 20s, std::nullopt});
    CHECK(scrm::routing::validate(s).empty());

    // decide() runs on it: the online session holder gets the message, no auto-reply.
    auto d = scrm::routing::decide(s);
    CHECK(d.rule == route_rule::session);
    CHECK(d.targets == strings{"a2"});
    CHECK(d.owner == std::optional<std::string>("a2"));

    // A fan with nothing in Redis keeps the caller's ownership; nothing is locked or suppressed.
    snapshot other = static_parts("fan2", true);
    other.fan.exclusive_agent = "a4";
    auto plain = a.run(a.live->load_snapshot(clinic, other, now));
    REQUIRE(plain.has_value());
    CHECK(plain->input.fan.exclusive_agent == std::optional<std::string>("a4"));
    CHECK_FALSE(plain->input.session_holder.has_value());
    CHECK_FALSE(plain->input.auto_reply_suppressed);
    CHECK_FALSE(plain->lock.has_value());
    // a4 is offline: shared among the other candidates (a1, a2; a3 is not accepting).
    auto d2 = scrm::routing::decide(plain->input);
    CHECK(d2.rule == route_rule::exclusive_offline_shared);
    CHECK(d2.targets == strings{"a1", "a2"});
}

TEST_CASE("snapshot: a lock whose holder went offline is reported stale, then released",
          "[routing_live][snapshot]") {
    live_options o;
    o.presence_ttl = 30s;
    fixture f(o);
    auto& a = f.a;
    bring_online(a, four);
    REQUIRE(a.run(a.live->heartbeat(clinic, "a1", "tab", t0 + 40s)).has_value());
    REQUIRE(a.run(a.live->heartbeat(clinic, "a2", "tab", t0 + 40s)).has_value());
    REQUIRE(a.run(a.live->acquire_lock(clinic, "fan1", "a4", t0 + 10s)).value().status ==
            lock_status::acquired);
    // At t0+45s a4's presence (and a3's) has run out; no sweep has run yet.
    auto got = a.run(a.live->load_snapshot(clinic, static_parts("fan1", false), t0 + 45s));
    REQUIRE(got.has_value());
    CHECK(got->input.session_holder == std::optional<std::string>("a4"));
    auto d = scrm::routing::decide(got->input, with_receipt::yes);
    CHECK(d.rule == route_rule::shared);
    CHECK(d.targets == strings{"a1", "a2"});
    REQUIRE(d.receipt.has_value());
    CHECK(d.receipt->stale_session_holder == std::optional<std::string>("a4"));
    // The shell releases the stale holder's locks; the next snapshot has no session.
    CHECK(a.run(a.live->release_agent_locks(clinic, "a4")).value() == strings{"fan1"});
    auto after = a.run(a.live->load_snapshot(clinic, static_parts("fan1", false), t0 + 46s));
    REQUIRE(after.has_value());
    CHECK_FALSE(after->input.session_holder.has_value());
    CHECK_FALSE(after->lock.has_value());

    // A lock held by someone who is not among the agents is reported but is no session.
    REQUIRE(a.run(a.live->heartbeat(clinic, "gone", "tab", t0 + 40s)).has_value());
    REQUIRE(a.run(a.live->acquire_lock(clinic, "fan2", "gone", t0 + 41s)).has_value());
    auto unknown = a.run(a.live->load_snapshot(clinic, static_parts("fan2", false), t0 + 42s));
    REQUIRE(unknown.has_value());
    CHECK_FALSE(unknown->input.session_holder.has_value());
    REQUIRE(unknown->lock.has_value());
    CHECK(unknown->lock->holder == "gone");
    CHECK(scrm::routing::validate(unknown->input).empty());
}

TEST_CASE("assignment: a pick made from loads that changed meanwhile is refused as stale",
          "[routing_live][assign]") {
    fixture f;
    auto& a = f.a;
    REQUIRE(a.run(a.live->note_unanswered(clinic, "old", "a1")).value());
    auto stale = a.run(a.live->commit_exclusive(clinic, "fan1", std::nullopt, "a1", t0, four));
    REQUIRE(stale.has_value());
    CHECK(stale->status == assign_status::stale_pick);
    CHECK_FALSE(a.run(a.live->exclusive_agent(clinic, "fan1")).value().has_value());
    auto ok = a.run(a.live->commit_exclusive(clinic, "fan1", std::nullopt, "a2", t0, four));
    REQUIRE(ok.has_value());
    CHECK(ok->status == assign_status::assigned);
    // Equal loads are fine: ties are not re-checked.
    auto tie =
        a.run(a.live->commit_exclusive(clinic, "fan2", std::nullopt, "a2", t0, {"a1", "a2"}));
    REQUIRE(tie.has_value());
    CHECK(tie->status == assign_status::assigned);
}

TEST_CASE("assignment: in repick mode a stale pick goes to the least loaded candidate instead",
          "[routing_live][assign]") {
    fixture f;
    auto& a = f.a;
    // Loads a1 2, a2 0, a3 0, a4 1; a3 was assigned more recently than a2.
    REQUIRE(a.run(a.live->note_unanswered(clinic, "old1", "a1")).value());
    REQUIRE(a.run(a.live->note_unanswered(clinic, "old2", "a1")).value());
    REQUIRE(a.run(a.live->note_unanswered(clinic, "old3", "a4")).value());
    REQUIRE(a.run(a.live->commit_exclusive(clinic, "old4", std::nullopt, "a3", t0)).has_value());
    REQUIRE(a.run(a.live->note_answered(clinic, "old4")).has_value());

    auto r =
        a.run(a.live->commit_exclusive(clinic, "fan1", std::nullopt, "a1", t0 + 5s, four, true));
    REQUIRE(r.has_value());
    CHECK(r->status == assign_status::repicked);
    CHECK(r->exclusive_agent == std::optional<std::string>("a2"));
    const auto t0s = std::chrono::floor<std::chrono::seconds>(t0).time_since_epoch().count();
    CHECK(r->loads ==
          std::vector<agent_load>{{"a1", 2, 0}, {"a2", 0, 0}, {"a3", 0, t0s}, {"a4", 1, 0}});
    CHECK(a.run(a.live->exclusive_agent(clinic, "fan1")).value() ==
          std::optional<std::string>("a2"));
    CHECK(loads_of(a, four) ==
          std::map<std::string, std::int64_t>{{"a1", 2}, {"a2", 1}, {"a3", 0}, {"a4", 1}});
    // A pick that is still the best is committed as given (assigned), with the loads.
    auto ok =
        a.run(a.live->commit_exclusive(clinic, "fan2", std::nullopt, "a3", t0 + 6s, four, true));
    REQUIRE(ok.has_value());
    CHECK(ok->status == assign_status::assigned);
    CHECK(ok->exclusive_agent == std::optional<std::string>("a3"));
    CHECK(ok->loads.size() == 4);
}

TEST_CASE(
    "assignment: 200 commits all naming one agent in repick mode on two instances keep loads "
    "within 1",
    "[routing_live][assign]") {
    fixture f;
    auto results = race<result<assign_result>>(f, 200, [](live_state& l, int i) {
        return l.commit_exclusive(clinic, "fan" + std::to_string(i), std::nullopt, "a1", t0, four,
                                  true);
    });
    for (const auto& r : results) REQUIRE(r.has_value());
    std::int64_t lo = 1000, hi = 0;
    for (const auto& [agent, load] : loads_of(f.a, four)) {
        lo = std::min(lo, load);
        hi = std::max(hi, load);
    }
    CHECK(lo == 50);
    CHECK(hi == 50);
}

TEST_CASE("assignment: a burst of 200 new fans across both instances keeps loads within 1",
          "[routing_live][assign][snapshot]") {
    live_options o;
    o.presence_ttl = 1h;
    fixture f(o);
    bring_online(f.a, four);
    std::atomic<int> retries{0};
    auto results = race<result<std::string>>(f, 200, [&retries](live_state& l, int i) {
        return route_new_fan(&l, "fan" + std::to_string(i), t0 + 1s, &retries);
    });
    std::map<std::string, int> per_agent;
    for (const auto& r : results) {
        REQUIRE(r.has_value());
        ++per_agent[*r];
    }
    WARN("stale picks retried: " << retries.load());
    CHECK(per_agent == std::map<std::string, int>{{"a1", 50}, {"a2", 50}, {"a3", 50}, {"a4", 50}});
    auto loads = loads_of(f.a, four);
    for (const auto& [agent, load] : loads) {
        CAPTURE(agent);
        CHECK(load == 50);
    }
}

TEST_CASE("snapshot: a fan message's activity opens its window and renews its lock first",
          "[routing_live][snapshot]") {
    live_options o;
    o.presence_ttl = 1h;
    o.lock_ttl = 10s;
    fixture f(o);
    auto& a = f.a;
    bring_online(a, four);
    REQUIRE(a.run(a.live->acquire_lock(clinic, "fan1", "a2", t0)).has_value());
    // Let some of the lock's TTL run out, so that a renewal is visible.
    REQUIRE(eventually([&] {
        auto l = a.run(a.live->lock_of(clinic, "fan1"));
        return l.has_value() && *l && (*l)->ttl < 9800ms;
    }));
    scrm::routing::fan_activity act{window_kind::message, t0 + 1s, true, std::nullopt};
    auto got = a.run(a.live->load_snapshot(clinic, static_parts("fan1", false), t0 + 2s, act));
    REQUIRE(got.has_value());
    REQUIRE(got->lock.has_value());
    CHECK(got->lock->ttl > 9800ms);  // renewed before it was read
    CHECK(got->input.session_holder == std::optional<std::string>("a2"));
    auto w = a.run(a.live->windows_of(clinic, "fan1", t0 + 2s));
    REQUIRE(w.has_value());
    CHECK((*w)[0] == window_state{window_kind::message, t0 + 1s, true, 0, 5});

    // Without activity nothing changes: no window for another fan, its lock not renewed.
    auto plain = a.run(a.live->load_snapshot(clinic, static_parts("fan2", false), t0 + 2s));
    REQUIRE(plain.has_value());
    auto w2 = a.run(a.live->windows_of(clinic, "fan2", t0 + 2s));
    REQUIRE(w2.has_value());
    CHECK_FALSE((*w2)[0].open);
    // An event's activity opens the event window and leaves the lock alone.
    scrm::routing::fan_activity ev{window_kind::event, t0 + 3s, false, std::nullopt};
    REQUIRE(
        a.run(a.live->load_snapshot(clinic, static_parts("fan2", false), t0 + 3s, ev)).has_value());
    auto w3 = a.run(a.live->windows_of(clinic, "fan2", t0 + 3s));
    REQUIRE(w3.has_value());
    CHECK((*w3)[1] == window_state{window_kind::event, t0 + 3s, true, 0, 3});
}

TEST_CASE("route effects: owner, stale lock, timer and auto-reply claim in one call",
          "[routing_live][snapshot]") {
    live_options o;
    o.presence_ttl = 1h;
    fixture f(o);
    auto& a = f.a;
    bring_online(a, four);
    auto lock = a.run(a.live->acquire_lock(clinic, "fan1", "a4", t0));
    REQUIRE(lock.has_value());

    scrm::routing::route_effects fx;
    fx.owner = "a1";
    fx.release_stale = lock_info{"a4", lock->token, 0ms};
    fx.timer_due = t0 + 5min;
    fx.timer_payload = "3:42";
    fx.claim_at = t0 + 1s;
    fx.claim_window = 10min;
    fx.push_to = {"a1", "a2"};
    fx.push_payload = "{}";
    auto r = f.b.run(f.b.live->apply_route(clinic, "fan1", fx));
    REQUIRE(r.has_value());
    CHECK(*r == scrm::routing::route_outcome{true, true});
    CHECK(a.run(a.live->read_loads(clinic, {"a1", "a4"})).value() ==
          std::vector<agent_load>{{"a1", 1, 0}, {"a4", 0, 0}});
    CHECK_FALSE(a.run(a.live->lock_of(clinic, "fan1")).value().has_value());
    auto t = a.run(a.live->timer_of(clinic, "fan1"));
    REQUIRE(t.has_value());
    REQUIRE(t->has_value());
    CHECK((*t)->due == t0 + 5min);
    CHECK((*t)->payload == "3:42");
    CHECK(a.run(a.live->reply_marks_of(clinic, "fan1")).value() ==
          reply_marks{t0 + 1s, std::nullopt});

    // Again (another message of the fan, a minute later): the timer keeps the first due time,
    // the claim is suppressed, a stale token releases nothing.
    auto lock2 = a.run(a.live->acquire_lock(clinic, "fan1", "a3", t0 + 1min));
    REQUIRE(lock2.has_value());
    fx.release_stale = lock_info{"a3", lock2->token + 1, 0ms};
    fx.timer_due = t0 + 6min;
    fx.claim_at = t0 + 1min;
    auto again = a.run(a.live->apply_route(clinic, "fan1", fx));
    REQUIRE(again.has_value());
    CHECK(*again == scrm::routing::route_outcome{false, false});
    CHECK(a.run(a.live->timer_of(clinic, "fan1")).value()->due == t0 + 5min);
    CHECK(a.run(a.live->lock_of(clinic, "fan1")).value()->holder == "a3");

    // Nothing asked, nothing done; empty ids are refused.
    auto none = a.run(a.live->apply_route(clinic, "fan2", scrm::routing::route_effects{}));
    REQUIRE(none.has_value());
    CHECK(*none == scrm::routing::route_outcome{false, false});
    CHECK_FALSE(a.run(a.live->timer_of(clinic, "fan2")).value().has_value());
    scrm::routing::route_effects bad;
    bad.push_to = {""};
    CHECK(a.run(a.live->apply_route(clinic, "fan1", bad)).error() ==
          make_error_code(errc::bad_input));
    CHECK(a.run(a.live->apply_route(clinic, "", scrm::routing::route_effects{})).error() ==
          make_error_code(errc::bad_input));
}

TEST_CASE("snapshot: several messages in one call read like one call each, agents once",
          "[routing_live][snapshot]") {
    live_options o;
    o.presence_ttl = 1h;
    o.suppression_window = 10min;
    fixture f(o);
    auto& a = f.a;
    bring_online(a, {"a1", "a2", "a3"});
    REQUIRE(a.run(a.live->commit_exclusive(clinic, "fan1", std::nullopt, "a1", t0 + 5s))
                .value()
                .status == assign_status::assigned);
    REQUIRE(a.run(a.live->acquire_lock(clinic, "fan1", "a2", t0 + 10s)).has_value());
    REQUIRE(a.run(a.live->note_unanswered(clinic, "fan9", "a2")).value());
    REQUIRE(a.run(a.live->record_auto_reply(clinic, "fan3", t0 + 20s)).has_value());

    const instant now = t0 + 1min;
    std::vector<scrm::routing::snapshot_request> batch;
    batch.push_back({static_parts("fan1", true), std::nullopt});
    batch.push_back({static_parts("fan2", true),
                     scrm::routing::fan_activity{window_kind::message, now, true, std::nullopt}});
    batch.push_back({static_parts("fan3", true), std::nullopt});
    auto got = f.b.run(f.b.live->load_snapshots(clinic, batch, now));
    REQUIRE(got.has_value());
    REQUIRE(got->size() == 3);
    for (std::size_t i = 0; i < batch.size(); ++i) {
        auto one = a.run(a.live->load_snapshot(clinic, batch[i].base, now));
        REQUIRE(one.has_value());
        const live_snapshot& many = (*got)[i];
        CHECK(many.input == one->input);
        CHECK(many.marks == one->marks);
        CHECK(many.lock.has_value() == one->lock.has_value());
    }
    const snapshot& s1 = (*got)[0].input;
    CHECK(s1.fan.exclusive_agent == std::optional<std::string>("a1"));
    CHECK(s1.session_holder == std::optional<std::string>("a2"));
    CHECK(s1.agents[1].load == 2);  // fan9 unanswered, fan1's lock
    CHECK_FALSE((*got)[1].input.fan.exclusive_agent.has_value());
    CHECK((*got)[2].input.auto_reply_suppressed);
    // The second message's activity was applied: its window is open.
    auto w = a.run(a.live->windows_of(clinic, "fan2", now));
    REQUIRE(w.has_value());
    CHECK((*w)[0].open);

    // Every message must list the same agents; nothing at all is nothing.
    auto other = batch;
    other[1].base.agents.pop_back();
    CHECK(a.run(a.live->load_snapshots(clinic, other, now)).error() ==
          make_error_code(errc::bad_input));
    other = batch;
    other[2].base.agents[0].id = "a9";
    CHECK(a.run(a.live->load_snapshots(clinic, other, now)).error() ==
          make_error_code(errc::bad_input));
    CHECK(a.run(a.live->load_snapshots(clinic, {}, now)).value().empty());
}

TEST_CASE("route effects: several messages in one call apply in order, each its own outcome",
          "[routing_live][snapshot]") {
    live_options o;
    o.presence_ttl = 1h;
    fixture f(o);
    auto& a = f.a;
    bring_online(a, four);
    auto effects = [](std::string owner, instant claim, std::string n) {
        scrm::routing::route_effects fx;
        fx.owner = std::move(owner);
        fx.timer_due = claim + 5min;
        fx.timer_payload = "3:" + n;
        fx.claim_at = claim;
        fx.claim_window = 10min;
        fx.push_to = {"a1", "a2"};
        fx.push_payload = R"({"n":)" + n + "}";
        return fx;
    };
    std::vector<scrm::routing::fan_effects> batch;
    batch.push_back({"fan1", effects("a1", t0 + 1s, "1")});
    batch.push_back({"fan1", effects("a2", t0 + 2s, "2")});  // the same fan again
    batch.push_back({"fan2", effects("a2", t0 + 2s, "3")});
    auto r = f.b.run(f.b.live->apply_routes(clinic, batch));
    REQUIRE(r.has_value());
    // fan1's first message claims and arms; its second finds both done; fan2 is a fan of its own.
    CHECK(*r == std::vector<scrm::routing::route_outcome>{{true, true}, {false, false}, {true, true}});
    CHECK(a.run(a.live->timer_of(clinic, "fan1")).value()->payload == "3:1");
    // fan1 now waits on a2 (the later owner); a2 owns fan1 and fan2.
    CHECK(a.run(a.live->read_loads(clinic, {"a1", "a2"})).value() ==
          std::vector<agent_load>{{"a1", 0, 0}, {"a2", 2, 0}});
    // Every push reached both agents' streams, in order.
    for (const std::string agent : {"a1", "a2"}) {
        auto kept = a.run(a.live->events_after(clinic, agent, "0-1"));
        REQUIRE(kept.has_value());
        REQUIRE(kept->events.size() == 3);
        for (std::size_t i = 0; i < 3; ++i) {
            CHECK(kept->events[i].payload.find(R"("n":)" + std::to_string(i + 1) + "}") !=
                  std::string::npos);
        }
        std::vector<std::string> ttl{"PTTL", a.live->key_prefix(clinic) + "events:" + agent};
        auto left = a.run(a.client->command(std::move(ttl)));
        REQUIRE(left.has_value());
        CHECK(left->integer > 0);  // kept for a day
    }
    // One bad entry refuses the whole call, and nothing of it is applied.
    batch[0].fan = "fan3";
    batch[2].effects.push_to = {""};
    CHECK(a.run(a.live->apply_routes(clinic, batch)).error() == make_error_code(errc::bad_input));
    CHECK_FALSE(a.run(a.live->timer_of(clinic, "fan3")).value().has_value());
    CHECK(a.run(a.live->apply_routes(clinic, {})).value().empty());
}

TEST_CASE("locks: an operation given a TTL (the clinic's) uses it instead of the default",
          "[routing_live][locks]") {
    live_options o;
    o.presence_ttl = 1h;
    fixture f(o);  // default lock TTL: 10 minutes
    auto& a = f.a;
    bring_online(a, four);
    auto ttl_of = [&](const std::string& fan) {
        auto l = a.run(a.live->lock_of(clinic, fan));
        REQUIRE(l.has_value());
        REQUIRE(l->has_value());
        return (*l)->ttl;
    };
    auto l = a.run(a.live->acquire_lock(clinic, "fan1", "a1", t0, 30s));
    REQUIRE(l.has_value());
    CHECK(ttl_of("fan1") <= 30s);
    REQUIRE(a.run(a.live->renew_lock(clinic, "fan1")).has_value());
    CHECK(ttl_of("fan1") > 60s);  // without one: the default
    REQUIRE(a.run(a.live->renew_lock_as(clinic, "fan1", "a1", l->token, 20s)).value());
    CHECK(ttl_of("fan1") <= 20s);
    auto moved = a.run(a.live->transfer_lock(clinic, "fan1", "a1", l->token, "a2", 40s));
    REQUIRE(moved.has_value());
    CHECK(moved->status == lock_status::acquired);
    CHECK(ttl_of("fan1") <= 40s);
    CHECK(ttl_of("fan1") > 20s);
    REQUIRE(a.run(a.live->renew_lock(clinic, "fan1", 15s)).has_value());
    CHECK(ttl_of("fan1") <= 15s);
}

TEST_CASE("events: pushes are kept per agent and a console resumes after the last one it saw",
          "[routing_live][events]") {
    fixture f;
    auto& a = f.a;
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) {
        auto id = a.run(
            a.live->push(clinic, "a1", R"({"type":"message","n":)" + std::to_string(i) + "}"));
        REQUIRE(id.has_value());
        ids.push_back(*id);
    }
    REQUIRE(a.run(a.live->push(clinic, "a2", R"({"type":"other"})")).has_value());
    CHECK(ids[0] < ids[4]);  // same millisecond or later: increasing either way

    auto after = a.run(a.live->events_after(clinic, "a1", ids[1]));
    REQUIRE(after.has_value());
    CHECK_FALSE(after->gap);
    CHECK_FALSE(after->more);
    REQUIRE(after->events.size() == 3);
    CHECK(after->events[0] ==
          scrm::routing::agent_event{ids[2],
                                     R"({"event_id":")" + ids[2] + R"(","type":"message","n":2})"});
    CHECK(after->events[2].id == ids[4]);
    // Paged by the limit, oldest first.
    auto page = a.run(a.live->events_after(clinic, "a1", ids[0], 2));
    REQUIRE(page.has_value());
    CHECK(page->more);
    REQUIRE(page->events.size() == 2);
    CHECK(page->events[1].id == ids[2]);
    // Up to date: nothing, no gap.
    auto none = a.run(a.live->events_after(clinic, "a1", ids[4]));
    REQUIRE(none.has_value());
    CHECK(none->events.empty());
    CHECK_FALSE(none->gap);
    // An id older than everything kept: a gap (the console reloads).
    auto old = a.run(a.live->events_after(clinic, "a1", "1-0"));
    REQUIRE(old.has_value());
    CHECK(old->gap);
    CHECK(old->events.size() == 5);
    // The stream gone (expired): a gap and nothing.
    std::vector<std::string> del{"DEL", a.live->key_prefix(clinic) + "events:a1"};
    REQUIRE(a.run(a.client->command(std::move(del))).has_value());
    auto gone = a.run(a.live->events_after(clinic, "a1", ids[4]));
    REQUIRE(gone.has_value());
    CHECK(gone->gap);
    CHECK(gone->events.empty());
    // Bad input.
    CHECK_FALSE(a.run(a.live->push(clinic, "", "{}")).has_value());
    CHECK_FALSE(a.run(a.live->push(clinic, "a1", "not json")).has_value());
    CHECK_FALSE(a.run(a.live->events_after(clinic, "a1", "123")).has_value());
    CHECK_FALSE(a.run(a.live->events_after(clinic, "a1", "1-x")).has_value());
}

// ---- locks that run out by silence -------------------------------------------------------------

TEST_CASE("locks: a lock run out by silence is claimed once across instances, a renewed one not",
          "[routing_live][locks][silence]") {
    live_options o;
    o.presence_ttl = 1h;
    o.lock_ttl = 300ms;
    fixture f(o);
    bring_online(f.a, {"a1", "a2", "a3"});
    auto acquire = [&](const std::string& fan, const std::string& agent) {
        auto r = f.a.run(f.a.live->acquire_lock(clinic, fan, agent, t0 + 1s));
        REQUIRE(r.has_value());
        REQUIRE(r->status == lock_status::acquired);
        return r->token;
    };
    // silent1..silent8 are left alone; kept1 is renewed by a fan message and kept2 by its holder
    // for a minute; ended1 is released by its holder, moved1 transferred to a2.
    std::map<std::string, std::int64_t> tokens;
    for (int i = 1; i <= 8; ++i) {
        const std::string fan = "silent" + std::to_string(i);
        tokens[fan] = acquire(fan, "a1");
    }
    acquire("kept1", "a1");
    const auto kept2 = acquire("kept2", "a3");
    const auto ended1 = acquire("ended1", "a1");
    const auto moved1 = acquire("moved1", "a1");
    REQUIRE(f.a.run(f.a.live->renew_lock(clinic, "kept1", 60s)).value().has_value());
    REQUIRE(f.a.run(f.a.live->renew_lock_as(clinic, "kept2", "a3", kept2, 60s)).value());
    REQUIRE(f.a.run(f.a.live->release_lock(clinic, "ended1", "a1", ended1)).value());
    auto moved = f.a.run(f.a.live->transfer_lock(clinic, "moved1", "a1", moved1, "a2"));
    REQUIRE(moved.has_value());
    REQUIRE(moved->status == lock_status::acquired);

    // Redis expires the silent ones (and moved1, with the transfer's fresh 300 ms).
    REQUIRE(eventually([&] {
        auto l = f.a.run(f.a.live->lock_of(clinic, "moved1"));
        auto s = f.a.run(f.a.live->lock_of(clinic, "silent8"));
        return l.has_value() && !l->has_value() && s.has_value() && !s->has_value();
    }));
    // Eight claimers on two instances, three locks at most each: every run-out lock once.
    auto results = race<result<std::vector<scrm::routing::expired_lock>>>(
        f, 8, [](live_state& l, int) { return l.claim_expired_locks(clinic, 3); });
    std::map<std::string, int> times;
    for (const auto& r : results) {
        REQUIRE(r.has_value());
        CHECK(r->size() <= 3);
        for (const auto& e : *r) {
            ++times[e.fan];
            if (e.fan == "moved1") {
                CHECK(e.holder == "a2");
                CHECK(e.token == moved->token);
            } else {
                CHECK(e.holder == "a1");
                CHECK(e.token == tokens[e.fan]);
            }
            CHECK(e.due > instant{});
        }
    }
    std::map<std::string, int> expected{{"moved1", 1}};
    for (const auto& [fan, token] : tokens) expected[fan] = 1;
    CHECK(times == expected);
    // Claimed is gone: nothing more to claim; the renewed locks still stand.
    CHECK(f.b.run(f.b.live->claim_expired_locks(clinic, 50)).value().empty());
    CHECK(f.a.run(f.a.live->lock_of(clinic, "kept1")).value().value().holder == "a1");
    CHECK(f.a.run(f.a.live->lock_of(clinic, "kept2")).value().value().holder == "a3");
    // The holder's index no longer names the run-out fans: its load is back to nothing.
    auto loads = f.a.run(f.a.live->read_loads(clinic, {"a1", "a2"}));
    REQUIRE(loads.has_value());
    CHECK(loads->at(0).load == 1);  // kept1
    CHECK(loads->at(1).load == 0);
    CHECK(f.a.run(f.a.live->claim_expired_locks(clinic, 0)).error() ==
          make_error_code(errc::bad_input));
}

TEST_CASE("locks: a lock taken again after it ran out is the new holding's, not reported",
          "[routing_live][locks][silence]") {
    live_options o;
    o.presence_ttl = 1h;
    o.lock_ttl = 200ms;
    fixture f(o);
    bring_online(f.a, {"a1", "a2"});
    REQUIRE(f.a.run(f.a.live->acquire_lock(clinic, "fan1", "a1", t0 + 1s)).has_value());
    REQUIRE(eventually([&] {
        auto l = f.a.run(f.a.live->lock_of(clinic, "fan1"));
        return l.has_value() && !l->has_value();
    }));
    // a2 takes it (before any sweep) for a minute: the old holding is over, the new one lives.
    auto again = f.a.run(f.a.live->acquire_lock(clinic, "fan1", "a2", t0 + 2s, 60s));
    REQUIRE(again.has_value());
    REQUIRE(again->status == lock_status::acquired);
    CHECK(f.a.run(f.a.live->claim_expired_locks(clinic, 10)).value().empty());
    // Released by an agent going offline: nothing left to run out either.
    REQUIRE(f.a.run(f.a.live->sign_out(clinic, "a2")).value().released_fans == strings{"fan1"});
    CHECK(f.a.run(f.a.live->claim_expired_locks(clinic, 10)).value().empty());
}

TEST_CASE("presence: signing out and the switch say when the agent went offline",
          "[routing_live][presence]") {
    fixture f;
    auto& a = f.a;
    bring_online(a, {"a1", "a2"});
    auto paused = a.run(a.live->set_accepting(clinic, "a1", false, t0 + 1s));
    REQUIRE(paused.has_value());
    CHECK(paused->went_offline);
    auto paused_again = a.run(a.live->set_accepting(clinic, "a1", false, t0 + 1s));
    REQUIRE(paused_again.has_value());
    CHECK_FALSE(paused_again->went_offline);
    auto out = a.run(a.live->sign_out(clinic, "a2", t0 + 1s));
    REQUIRE(out.has_value());
    CHECK(out->went_offline);
    auto out_again = a.run(a.live->sign_out(clinic, "a2", t0 + 1s));
    REQUIRE(out_again.has_value());
    CHECK_FALSE(out_again->went_offline);
    // a1 (switched off) and a3 run out: only a3 was still accepting chats.
    REQUIRE(a.run(a.live->heartbeat(clinic, "a3", "tab", t0)).has_value());
    auto reaped = a.run(a.live->reap_offline(clinic, t0 + 2h));
    REQUIRE(reaped.has_value());
    CHECK(*reaped == std::vector<offline_agent>{offline_agent{"a1", {}, false},
                                                offline_agent{"a3", {}, true}});
}

TEST_CASE("events: a push to the online agents reaches each but the one excepted",
          "[routing_live][events]") {
    live_options o;
    o.presence_ttl = 1h;
    fixture f(o);
    bring_online(f.a, {"a1", "a2", "a3"});
    REQUIRE(f.a.run(f.a.live->set_accepting(clinic, "a3", false, t0 + 1s)).has_value());
    auto n = f.a.run(f.a.live->push_online(clinic, R"({"type":"x"})", t0 + 2s, "a1"));
    REQUIRE(n.has_value());
    CHECK(*n == 1);
    for (const auto& [agent, want] : std::map<std::string, std::size_t>{
             {"a1", 0}, {"a2", 1}, {"a3", 0}}) {
        auto ev = f.a.run(f.a.live->events_after(clinic, agent, "0-0"));
        REQUIRE(ev.has_value());
        CAPTURE(agent);
        CHECK(ev->events.size() == want);
    }
    CHECK(f.a.run(f.a.live->push_online(clinic, "x", t0 + 2s)).error() ==
          make_error_code(errc::bad_input));
}

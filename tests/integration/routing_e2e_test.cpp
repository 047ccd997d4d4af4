// Routing across two scrm-gateway processes on one Redis and MariaDB (DESIGN.md §5, §7), driven
// only through the signed webhook and the agents' endpoints: the no-answer timer fires once when
// one instance is killed before it is due; an agent who goes offline loses their locks after the
// presence TTL and reconnect grace; a fan waiting on an offline consultant stays with the
// consultant (and in the consultant's backlog) and reaches nobody else; 200 new fans one after
// another over 4 agents on both instances in exclusive mode leave loads within 1.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <functional>
#include <map>
#include <thread>

#include "clinic_fixture.hpp"
#include "http_client.hpp"
#include "test_env.hpp"
#include "two_gateways.hpp"
#include "ws_client.hpp"

using namespace scrm;
using namespace scrm::test;
using namespace std::chrono_literals;

namespace {

const std::string gateway_bin = SCRM_GATEWAY_BIN;
const std::string password = "routing-e2e-1";

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// Polls `done` every 100 ms until it holds or `limit` passes; whether it held.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= until) return false;
        std::this_thread::sleep_for(100ms);
    }
    return true;
}

std::string timeout_replies(const clinic_fixture& c, const std::string& openid) {
    return c.value(
        "SELECT COUNT(*) FROM outbox WHERE account_id = ? AND openid = ? AND origin = "
        "'auto:timeout'",
        {c.account, openid});
}

}  // namespace

TEST_CASE("a timeout auto-reply fires once with two instances running and one killed before it is due") {
    clinic_fixture c("timeout_s", "6");
    c.add_agent("值班客服", password);
    // Both instances run the timer worker and the outbox, kept to this clinic and account; the
    // outbox talks to a closed port on loopback (the queued row is what is checked).
    two_gateways g(c, gateway_bin,
                   {"SCRM_BACKGROUND_WORKERS=1",
                    "SCRM_WORKER_CLINICS=" + std::to_string(c.clinic),
                    "SCRM_WORKER_ACCOUNTS=" + std::to_string(c.account),
                    "SCRM_WECHAT_API_BASE_URL=http://127.0.0.1:" + std::to_string(free_port())});
    const std::string token = g.sign_in(g.b->port, "值班客服", password);
    auto console = g.connect(g.b->port, token);

    // The fan writes through instance A; the agent (online on B) is notified: the timer is armed.
    REQUIRE(c.deliver(g.a->port, c.text_xml("oTimeout1", 61001)).status == 200);
    REQUIRE(console->wait_for("\"openid\":\"oTimeout1\"", 10s).has_value());

    // A dies before the timer is due.
    g.a->proc.signal(SIGKILL);
    REQUIRE(g.a->proc.wait(10s).has_value());
    REQUIRE(timeout_replies(c, "oTimeout1") == "0");

    // B sends it: exactly one timeout auto-reply for the fan.
    CHECK(eventually([&] { return timeout_replies(c, "oTimeout1") != "0"; }, 30s));
    CHECK(timeout_replies(c, "oTimeout1") == "1");

    // With a fresh instance beside B for several timer rounds, never a second one.
    g.a = g.start("a2");
    std::this_thread::sleep_for(3s);
    CHECK(timeout_replies(c, "oTimeout1") == "1");
    CHECK(c.value("SELECT COUNT(*) FROM outbox WHERE account_id = ? AND origin LIKE 'auto:%'",
                  {c.account}) == "1");
}

TEST_CASE("an agent going offline releases their locks after the presence TTL") {
    clinic_fixture c;
    const auto x = c.add_agent("甲客服", password);
    const auto y = c.add_agent("乙客服", password);
    two_gateways g(c, gateway_bin, {}, "\"presence_ttl_ms\":1500,\"reconnect_grace_ms\":1000");
    const std::string tx = g.sign_in(g.a->port, "甲客服", password);
    const std::string ty = g.sign_in(g.b->port, "乙客服", password);
    auto cx = g.connect(g.a->port, tx);
    auto cy = g.connect(g.b->port, ty);

    REQUIRE(c.deliver(g.a->port, c.text_xml("oOffline1", 62001)).status == 200);
    REQUIRE(cy->wait_for("\"openid\":\"oOffline1\"", 10s).has_value());
    const auto took = g.act(g.a->port, tx, "oOffline1", "accept");
    INFO(took.body);
    REQUIRE(took.status == 200);

    // While X is online, Y on the other instance is refused and told who holds the fan.
    const auto refused = g.act(g.b->port, ty, "oOffline1", "accept");
    INFO(refused.body);
    CHECK(refused.status == 409);
    CHECK(has(refused.body, "\"holder\":{\"id\":" + std::to_string(x)));

    // X's console closes: once presence and grace have run out, Y can take the fan.
    cx->close();
    http_reply later;
    CHECK(eventually(
        [&] {
            later = g.act(g.b->port, ty, "oOffline1", "accept");
            return later.status != 409;
        },
        20s));
    INFO(later.body);
    CHECK(later.status == 200);
    CHECK(has(later.body, "\"holder\":{\"id\":" + std::to_string(y)));
    // And Y now holds it: X (back with a new console) is refused.
    auto cx2 = g.connect(g.a->port, tx);
    const auto back = g.act(g.a->port, tx, "oOffline1", "accept");
    CHECK(back.status == 409);
    CHECK(has(back.body, "\"holder\":{\"id\":" + std::to_string(y)));
}

TEST_CASE("a consultant offline keeps their fans who show up in the waiting view") {
    clinic_fixture c("consultant_mode", "1");
    const auto consultant = c.add_agent("王顾问", password, true, std::nullopt, true, "consultant");
    c.add_agent("前台小李", password, true, std::nullopt, true, "front_desk");
    c.set_fan("oMine1", std::nullopt, consultant);
    two_gateways g(c, gateway_bin);
    const std::string other = g.sign_in(g.a->port, "前台小李", password);
    auto console = g.connect(g.a->port, other);

    // The consultant's fan writes through B: the consultant-offline prompt, nobody else notified.
    const auto r = c.deliver(g.b->port, c.text_xml("oMine1", 63001));
    REQUIRE(r.status == 200);
    CHECK(has(r.body, "专属顾问暂时不在线"));
    CHECK(c.value("SELECT r.rule FROM routing_receipts r JOIN inbound_messages m ON m.id = "
                  "r.message_id WHERE m.account_id = ? AND m.openid = 'oMine1'",
                  {c.account}) == "consultant");
    // A fan without a consultant does reach the online agent; nothing about oMine1 came before.
    REQUIRE(c.deliver(g.b->port, c.text_xml("oNobodys1", 63002)).status == 200);
    bool sentinel = false;
    for (int i = 0; i < 20 && !sentinel; ++i) {
        const auto m = console->next(10s);
        REQUIRE(m.has_value());
        CHECK_FALSE(has(*m, "oMine1"));
        sentinel = has(*m, "\"openid\":\"oNobodys1\"");
    }
    CHECK(sentinel);

    // The consultant's backlog holds the fan (reason consultant); the other agent's does not.
    const std::string mine = g.sign_in(g.b->port, "王顾问", password);
    const auto backlog = g.get(g.b->port, mine, "/api/agent/backlog");
    INFO(backlog.body);
    CHECK(backlog.status == 200);
    CHECK(has(backlog.body, "\"openid\":\"oMine1\""));
    CHECK(has(backlog.body, "\"reason\":\"consultant\""));
    const auto theirs = g.get(g.a->port, other, "/api/agent/backlog");
    INFO(theirs.body);
    CHECK(theirs.status == 200);
    CHECK_FALSE(has(theirs.body, "oMine1"));
}

TEST_CASE("200 new fans one after another over 4 online agents leave loads within 1") {
    clinic_fixture c("exclusive_mode", "1");
    two_gateways g(c, gateway_bin);
    std::vector<std::unique_ptr<ws_client>> consoles;
    for (int i = 0; i < 4; ++i) {
        const std::string name = "客服" + std::to_string(i);
        c.add_agent(name, password);
    }
    for (int i = 0; i < 4; ++i) {
        const std::uint16_t port = i % 2 ? g.b->port : g.a->port;
        consoles.push_back(g.connect(port, g.sign_in(port, "客服" + std::to_string(i), password)));
    }
    for (int i = 0; i < 200; ++i) {
        const std::uint16_t port = i % 2 ? g.b->port : g.a->port;
        const auto r = c.deliver(port, c.text_xml("oEven" + std::to_string(i),
                                                  64000 + static_cast<std::uint64_t>(i)));
        REQUIRE(r.status == 200);
    }
    CHECK(eventually(
        [&] {
            return c.value("SELECT COUNT(*) FROM fans WHERE account_id = ? AND openid LIKE "
                           "'oEven%' AND exclusive_agent_id IS NOT NULL",
                           {c.account}) == "200";
        },
        20s));
    CHECK(c.value("SELECT COUNT(DISTINCT exclusive_agent_id) FROM fans WHERE account_id = ? AND "
                  "openid LIKE 'oEven%'",
                  {c.account}) == "4");
    const auto spread = c.value(
        "SELECT MAX(n) - MIN(n) FROM (SELECT COUNT(*) AS n FROM fans WHERE account_id = ? AND "
        "openid LIKE 'oEven%' GROUP BY exclusive_agent_id) AS loads",
        {c.account});
    CAPTURE(spread);
    CHECK((spread == "0" || spread == "1"));
}

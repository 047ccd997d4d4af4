// Two scrm-gateway processes on one Redis and MariaDB (DESIGN.md §7): an agent whose console is
// connected to instance A receives a message the webhook delivered to instance B; two agents on
// different instances racing to accept (or to answer) one fan — exactly one wins, the other is
// told who; the logs hold no password, token or message text; SIGTERM closes consoles cleanly.
#include <catch2/catch.hpp>

#include <csignal>
#include <thread>

#include "clinic_fixture.hpp"
#include "http_client.hpp"
#include "scrm/gateway/agent_requests.hpp"
#include "two_gateways.hpp"
#include "ws_client.hpp"

using namespace scrm;
using namespace scrm::test;
using namespace std::chrono_literals;

namespace {

const std::string gateway_bin = SCRM_GATEWAY_BIN;
const std::string password = "two-instances-1";

}  // namespace

TEST_CASE("an agent connected to one instance receives what the webhook delivered to the other") {
    clinic_fixture c;
    c.add_agent("张顾问", password);
    two_gateways g(c, gateway_bin);
    const std::string token = g.sign_in(g.a->port, "张顾问", password);
    auto console = g.connect(g.a->port, token);

    const std::string secret_text = "我的牙龈出血三天了";
    const auto r = c.deliver(g.b->port, c.text_xml("oAcross1", 51001, secret_text));
    REQUIRE(r.status == 200);
    const auto pushed = console->wait_for("\"type\":\"message\"", 10s);
    REQUIRE(pushed.has_value());
    CHECK(has(*pushed, "\"openid\":\"oAcross1\""));
    CHECK(has(*pushed, secret_text));
    CHECK(has(*pushed, "\"rule\":\"shared\""));

    // The agent answers through instance B: the reply is queued for the fan.
    const auto sent = g.act(g.b->port, token, "oAcross1", "send", R"({"text":"请尽快来院检查"})");
    CHECK(sent.status == 200);

    // SIGTERM: the console gets "going away" and the instance exits cleanly.
    g.a->proc.signal(SIGTERM);
    CHECK(console->wait_closed(10s) == std::optional<int>(1001));
    CHECK(g.a->proc.wait(20s) == std::optional<int>(0));

    // Nothing secret in either log: no password, no token (nor its digest), no message text.
    const std::string logs = g.logs();
    CHECK(has(logs, "\"event\":\"agent.signed_in\""));
    CHECK_FALSE(has(logs, password));
    CHECK_FALSE(has(logs, token));
    CHECK_FALSE(has(logs, gateway::token_digest(token)));
    CHECK_FALSE(has(logs, secret_text));
    CHECK_FALSE(has(logs, "请尽快来院检查"));
}

TEST_CASE("two agents on two instances race for one fan: exactly one wins, the other is told who") {
    clinic_fixture c;
    const auto x = c.add_agent("甲", password);
    const auto y = c.add_agent("乙", password);
    two_gateways g(c, gateway_bin);
    const std::string tx = g.sign_in(g.a->port, "甲", password);
    const std::string ty = g.sign_in(g.b->port, "乙", password);
    auto cx = g.connect(g.a->port, tx);
    auto cy = g.connect(g.b->port, ty);

    const auto race = [&](const std::string& openid, const std::string& action,
                          const std::string& body) {
        http_reply rx, ry;
        std::thread tx_thread([&] { rx = g.act(g.a->port, tx, openid, action, body); });
        std::thread ty_thread([&] { ry = g.act(g.b->port, ty, openid, action, body); });
        tx_thread.join();
        ty_thread.join();
        CAPTURE(openid, action, rx.status, rx.body, ry.status, ry.body);
        const bool x_won = rx.status == 200;
        CHECK(x_won != (ry.status == 200));
        const http_reply& loser = x_won ? ry : rx;
        CHECK(loser.status == 409);
        const std::string winner_id = std::to_string(x_won ? x : y);
        const std::string winner_name = x_won ? "甲" : "乙";
        CHECK(has(loser.body,
                  "\"holder\":{\"id\":" + winner_id + ",\"name\":\"" + winner_name + "\"}"));
        CHECK(has(loser.body, "「" + winner_name + "」"));
    };
    for (int i = 0; i < 6; ++i) {
        const std::string fan = "oRace" + std::to_string(i);
        REQUIRE(c.deliver(i % 2 ? g.b->port : g.a->port,
                          c.text_xml(fan, 52000 + static_cast<std::uint64_t>(i)))
                    .status == 200);
        if (i % 2) {
            race(fan, "send", R"({"text":"您好"})");
        } else {
            race(fan, "accept", "{}");
        }
    }
    // Exactly one queued reply per fan raced with send.
    CHECK(c.value("SELECT COUNT(*) FROM outbox WHERE account_id = ? AND origin LIKE 'agent:%'",
                  {c.account}) == "3");
}

TEST_CASE(
    "a console that reconnects to the other instance gets what it missed and then live ones") {
    clinic_fixture c;
    c.add_agent("李护士", password);
    two_gateways g(c, gateway_bin);
    const std::string token = g.sign_in(g.a->port, "李护士", password);
    const auto event_id = [](const std::string& text) {
        const std::string head = R"({"event_id":")";
        REQUIRE(text.rfind(head, 0) == 0);
        return text.substr(head.size(), text.find('"', head.size()) - head.size());
    };

    auto first = g.connect(g.a->port, token);
    REQUIRE(c.deliver(g.a->port, c.text_xml("oResume1", 53001)).status == 200);
    const auto seen = first->wait_for("\"openid\":\"oResume1\"", 10s);
    REQUIRE(seen.has_value());
    const std::string last = event_id(*seen);
    first->close();

    // Missed while away (within the reconnect grace the agent is still online: still routed).
    REQUIRE(c.deliver(g.b->port, c.text_xml("oResume2", 53002)).status == 200);
    REQUIRE(c.deliver(g.a->port, c.text_xml("oResume3", 53003)).status == 200);

    const std::vector<std::pair<std::string, std::string>> auth{
        {"Authorization", "Bearer " + token}};
    ws_client again(g.b->port, "/api/agent/ws?last_event_id=" + last, auth);
    REQUIRE(again.status() == 101);
    REQUIRE(again.wait_for("\"type\":\"hello\"").has_value());
    const auto m2 = again.next(10s);
    const auto m3 = again.next(10s);
    REQUIRE(m2.has_value());
    REQUIRE(m3.has_value());
    CHECK(has(*m2, "\"openid\":\"oResume2\""));
    CHECK(has(*m3, "\"openid\":\"oResume3\""));
    CHECK(event_id(*m2) > last);
    // Then live, once each.
    REQUIRE(c.deliver(g.a->port, c.text_xml("oResume4", 53004)).status == 200);
    const auto m4 = again.next(10s);
    REQUIRE(m4.has_value());
    CHECK(has(*m4, "\"openid\":\"oResume4\""));
    const auto extra = again.next(1500ms);
    CHECK_FALSE(extra.has_value());

    // Resuming from an id no longer kept asks the console to reload.
    ws_client stale(g.a->port, "/api/agent/ws?last_event_id=1-0", auth);
    REQUIRE(stale.status() == 101);
    REQUIRE(stale.wait_for("\"type\":\"hello\"").has_value());
    CHECK(stale.wait_for("\"type\":\"resync\"", 10s).has_value());
    // A malformed id is refused.
    ws_client bad(g.a->port, "/api/agent/ws?last_event_id=yesterday", auth);
    CHECK(bad.status() == 400);
}

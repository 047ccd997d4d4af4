// Routing across two scrm-gateway processes on one Redis and MariaDB (DESIGN.md §5, §7), driven
// only through the signed webhook and the agents' endpoints: the no-answer timer fires once when
// one instance is killed before it is due; an agent who goes offline loses their locks after the
// presence TTL and reconnect grace; a fan waiting on an offline consultant stays with the
// consultant (and in the consultant's backlog) and reaches nobody else; 200 new fans one after
// another over 4 agents on both instances in exclusive mode leave loads within 1, and a concurrent
// burst of 200 within 2; 50 simultaneous first messages from one new fan give it one exclusive
// agent; no auto-reply interrupts a live conversation, and a burst of 20 fan messages gets at
// most one; a message stored while Redis is down is routed, once, when it is back.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
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

// The 4 agents "客服0".."客服3", signed in alternately on A and B, each with a console open.
std::vector<std::unique_ptr<ws_client>> four_online(clinic_fixture& c, two_gateways& g) {
    std::vector<std::unique_ptr<ws_client>> consoles;
    for (int i = 0; i < 4; ++i) c.add_agent("客服" + std::to_string(i), password);
    for (int i = 0; i < 4; ++i) {
        const std::uint16_t port = i % 2 ? g.b->port : g.a->port;
        consoles.push_back(g.connect(port, g.sign_in(port, "客服" + std::to_string(i), password)));
    }
    return consoles;
}

// `n` deliveries of `xml_for(i)` from `threads` threads at once, alternately to A and B; how many
// were answered 200, and each answer's body.
struct burst_result {
    int ok = 0;
    std::vector<std::string> bodies;
};
burst_result burst(const clinic_fixture& c, const two_gateways& g, int n, int threads,
                   const std::function<std::string(int)>& xml_for) {
    std::vector<std::string> bodies(static_cast<std::size_t>(n));
    std::atomic<int> ok{0}, next{0};
    std::vector<std::thread> posts;
    for (int t = 0; t < threads; ++t) {
        posts.emplace_back([&] {
            for (int i = next++; i < n; i = next++) {
                const std::uint16_t port = i % 2 ? g.b->port : g.a->port;
                const auto r = c.deliver(port, xml_for(i));
                if (r.status == 200) ++ok;
                bodies[static_cast<std::size_t>(i)] = r.body;
            }
        });
    }
    for (auto& t : posts) t.join();
    return {ok.load(), std::move(bodies)};
}

// The JSON array of the clinic's local dates yesterday, today and tomorrow (UTC+8, the default
// offset): closed on those, the clinic is after hours whatever the time.
std::string closed_around_today() {
    using namespace std::chrono;
    const auto today = floor<days>(system_clock::now() + 8h);
    std::string out = "[";
    for (const auto d : {today - days(1), today, today + days(1)}) {
        const year_month_day ymd(d);
        char text[16];
        std::snprintf(text, sizeof text, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                      static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
        out += std::string(out.size() > 1 ? "," : "") + "\"" + text + "\"";
    }
    return out + "]";
}

const std::string after_hours_text = "下班啦，明天见";

// Auto-replies that went (or wait to go) out through the outbox to the fan.
std::string outbox_auto_replies(const clinic_fixture& c, const std::string& openid) {
    return c.value(
        "SELECT COUNT(*) FROM outbox WHERE account_id = ? AND openid = ? AND origin LIKE 'auto:%'",
        {c.account, openid});
}

std::string timeout_replies(const clinic_fixture& c, const std::string& openid) {
    return c.value(
        "SELECT COUNT(*) FROM outbox WHERE account_id = ? AND openid = ? AND origin = "
        "'auto:timeout'",
        {c.account, openid});
}

}  // namespace

TEST_CASE(
    "a timeout auto-reply fires once with two instances running and one killed before it is due") {
    clinic_fixture c("timeout_s", "6");
    c.add_agent("值班客服", password);
    // Both instances run the timer worker and the outbox, kept to this clinic and account; the
    // outbox talks to a closed port on loopback (the queued row is what is checked).
    two_gateways g(c, gateway_bin,
                   {"SCRM_BACKGROUND_WORKERS=1", "SCRM_WORKER_CLINICS=" + std::to_string(c.clinic),
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
        const auto r = c.deliver(
            port, c.text_xml("oEven" + std::to_string(i), 64000 + static_cast<std::uint64_t>(i)));
        REQUIRE(r.status == 200);
    }
    CHECK(eventually(
        [&] {
            return c.value(
                       "SELECT COUNT(*) FROM fans WHERE account_id = ? AND openid LIKE "
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

TEST_CASE(
    "50 simultaneous first messages from one new fan through both instances yield one exclusive "
    "agent") {
    clinic_fixture c("exclusive_mode", "1");
    two_gateways g(c, gateway_bin);
    const auto consoles = four_online(c, g);

    const auto sent = burst(c, g, 50, 50, [&](int i) {
        return c.text_xml("oOneNewFan", 65000 + static_cast<std::uint64_t>(i));
    });
    CHECK(sent.ok == 50);
    const std::string receipts =
        " FROM routing_receipts r JOIN inbound_messages m ON m.id = r.message_id WHERE "
        "m.account_id = ? AND m.openid = 'oOneNewFan'";
    CHECK(c.value("SELECT COUNT(*)" + receipts, {c.account}) == "50");
    CHECK(c.value("SELECT COUNT(DISTINCT r.owner_agent_id)" + receipts, {c.account}) == "1");
    const auto owner = c.value("SELECT MIN(r.owner_agent_id)" + receipts, {c.account});
    REQUIRE(owner != "NULL");
    // Every message went to that agent alone, who is the fan's exclusive agent.
    CHECK(c.value("SELECT COUNT(*)" + receipts + " AND r.targets = ?",
                  {c.account, "[" + owner + "]"}) == "50");
    CHECK(c.value("SELECT IFNULL(exclusive_agent_id, 'none') FROM fans WHERE account_id = ? AND "
                  "openid = 'oOneNewFan'",
                  {c.account}) == owner);
}

TEST_CASE("a concurrent burst of 200 new fans across both instances leaves loads within 2") {
    clinic_fixture c("exclusive_mode", "1");
    two_gateways g(c, gateway_bin);
    const auto consoles = four_online(c, g);

    const auto sent = burst(c, g, 200, 16, [&](int i) {
        return c.text_xml("oBurstFan" + std::to_string(i), 66000 + static_cast<std::uint64_t>(i));
    });
    CHECK(sent.ok == 200);
    CHECK(c.value("SELECT COUNT(*) FROM fans WHERE account_id = ? AND openid LIKE 'oBurstFan%' "
                  "AND exclusive_agent_id IS NOT NULL",
                  {c.account}) == "200");
    CHECK(c.value("SELECT COUNT(DISTINCT exclusive_agent_id) FROM fans WHERE account_id = ? AND "
                  "openid LIKE 'oBurstFan%'",
                  {c.account}) == "4");
    const auto spread = c.value(
        "SELECT MAX(n) - MIN(n) FROM (SELECT COUNT(*) AS n FROM fans WHERE account_id = ? AND "
        "openid LIKE 'oBurstFan%' GROUP BY exclusive_agent_id) AS loads",
        {c.account});
    CAPTURE(spread);
    CHECK((spread == "0" || spread == "1" || spread == "2"));
}

TEST_CASE(
    "no auto-reply interrupts a live conversation, and a burst of 20 fan messages gets at most "
    "one") {
    // Open at first; the no-answer timeout is 3 s.
    clinic_fixture c("after_hours_text, timeout_s", "'" + after_hours_text + "', 3");
    const auto x = c.add_agent("接诊客服", password);
    two_gateways g(c, gateway_bin,
                   {"SCRM_BACKGROUND_WORKERS=1", "SCRM_WORKER_CLINICS=" + std::to_string(c.clinic),
                    "SCRM_WORKER_ACCOUNTS=" + std::to_string(c.account),
                    "SCRM_WECHAT_API_BASE_URL=http://127.0.0.1:" + std::to_string(free_port())});
    const std::string token = g.sign_in(g.a->port, "接诊客服", password);
    auto console = g.connect(g.a->port, token);

    // A live conversation: the fan writes, the agent answers.
    const auto first = c.deliver(g.b->port, c.text_xml("oLive", 67001));
    REQUIRE(first.status == 200);
    CHECK(first.body == "success");
    REQUIRE(console->wait_for("\"openid\":\"oLive\"", 10s).has_value());
    const auto reply = g.act(g.a->port, token, "oLive", "send", R"({"text":"您好，请讲"})");
    INFO(reply.body);
    REQUIRE(reply.status == 200);

    // The clinic closes now (the settings reach both instances within their cache age): a fan
    // without a conversation gets the after-hours text (a new fan each time: an earlier one's
    // no-answer timeout would silence it)...
    c.execute("UPDATE clinic_routing SET closed_dates = ? WHERE clinic_id = ?",
              {closed_around_today(), c.clinic});
    http_reply control;
    int n = 0;
    CHECK(eventually(
        [&] {
            ++n;
            control = c.deliver(g.a->port, c.text_xml("oControl" + std::to_string(n), 67100));
            return has(control.body, after_hours_text);
        },
        20s));
    // ...but the fan in the live conversation does not, through either instance.
    for (std::uint64_t i = 0; i < 6; ++i) {
        const auto r = c.deliver(i % 2 ? g.b->port : g.a->port, c.text_xml("oLive", 67002 + i));
        REQUIRE(r.status == 200);
        CHECK(r.body == "success");
    }

    // A burst of 20 from one fan (the agent online, notified of each): one after-hours reply.
    const auto sent = burst(c, g, 20, 20, [&](int i) {
        return c.text_xml("oBurst20", 67200 + static_cast<std::uint64_t>(i));
    });
    CHECK(sent.ok == 20);
    int passive = 0;
    for (const auto& body : sent.bodies) passive += has(body, after_hours_text) ? 1 : 0;
    CHECK(passive + std::stoi(outbox_auto_replies(c, "oBurst20")) == 1);

    // Past the no-answer timeout (timers run every second on both instances), still nothing more:
    // the timeout is suppressed by the agent's reply (oLive) and by the after-hours reply
    // (oBurst20) within the suppression window.
    std::this_thread::sleep_for(6s);
    CHECK(outbox_auto_replies(c, "oLive") == "0");
    CHECK(passive + std::stoi(outbox_auto_replies(c, "oBurst20")) == 1);
    CHECK(c.value("SELECT COUNT(*) FROM routing_receipts r JOIN inbound_messages m ON m.id = "
                  "r.message_id WHERE m.account_id = ? AND m.openid = 'oLive' AND r.rule = "
                  "'session' AND r.owner_agent_id = ?",
                  {c.account, x}) == "6");
}

TEST_CASE("a message stored through the webhook while Redis is down is routed once it is back") {
    private_services servers;  // its own Redis (and MariaDB): stopping it disturbs no other test
    clinic_fixture c("", "", servers.config());
    const auto x = c.add_agent("值守客服", password);
    two_gateways g(c, gateway_bin,
                   {"SCRM_BACKGROUND_WORKERS=1",
                    "SCRM_WECHAT_API_BASE_URL=http://127.0.0.1:" + std::to_string(free_port())},
                   "", servers.config_path());

    servers.stop_redis();
    const auto r = c.deliver(g.a->port, c.text_xml("oOutage", 68001));
    INFO(r.body);
    REQUIRE(r.status == 200);  // stored in MariaDB: acknowledged although routing cannot run
    CHECK(c.value("SELECT COUNT(*) FROM inbound_messages WHERE account_id = ? AND openid = "
                  "'oOutage' AND routed_at IS NULL",
                  {c.account}) == "1");
    std::this_thread::sleep_for(3s);  // sweeps meanwhile fail on both instances; nothing routed
    CHECK(c.value("SELECT COUNT(*) FROM routing_receipts WHERE clinic_id = ?", {c.clinic}) == "0");

    servers.start();
    for (const auto port : {g.a->port, g.b->port}) {
        REQUIRE(eventually([&] { return http_call(port, "GET", "/readyz").status == 200; }, 20s));
    }
    const std::string token = g.sign_in(g.b->port, "值守客服", password);
    auto console = g.connect(g.b->port, token);
    // The sweeper (either instance) routes it to the agent now online, exactly once.
    CHECK(console->wait_for("\"openid\":\"oOutage\"", 30s).has_value());
    CHECK(eventually(
        [&] {
            return c.value("SELECT COUNT(*) FROM routing_receipts WHERE clinic_id = ?",
                           {c.clinic}) == "1";
        },
        10s));
    std::this_thread::sleep_for(5s);  // more sweeps on both instances: still one receipt
    CHECK(c.value("SELECT CONCAT(r.rule, ' ', r.targets) FROM routing_receipts r WHERE "
                  "r.clinic_id = ?",
                  {c.clinic}) == "shared [" + std::to_string(x) + "]");
    CHECK(c.value("SELECT COUNT(*) FROM inbound_messages WHERE account_id = ? AND routed_at IS "
                  "NULL",
                  {c.account}) == "0");
}

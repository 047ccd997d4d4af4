// Lock and presence pushes across two scrm-gateway processes that both run the timer worker
// (docs/api.md "The console WebSocket"): a session lock that runs out by silence ends once and
// every online console hears of it once, while a lock the fan keeps renewing stands; a holder
// whose presence runs out, who switches accepting off or signs out has its locks' ends and its
// going offline announced; an agent coming online is announced to the others.
#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

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
const std::string password = "lock-pushes-1";

// Both instances run the timer worker (kept to this clinic); the outbox talks to a closed port.
std::vector<std::string> workers_on(const clinic_fixture& c) {
    return {"SCRM_BACKGROUND_WORKERS=1", "SCRM_WORKER_CLINICS=" + std::to_string(c.clinic),
            "SCRM_WORKER_ACCOUNTS=" + std::to_string(c.account),
            "SCRM_WECHAT_API_BASE_URL=http://127.0.0.1:" + std::to_string(free_port())};
}

// Everything the console receives until it has been quiet for `quiet`.
std::vector<std::string> drain(ws_client& ws, std::chrono::milliseconds quiet = 3s) {
    std::vector<std::string> out;
    while (auto m = ws.next(quiet)) out.push_back(std::move(*m));
    return out;
}

long count_with(const std::vector<std::string>& messages, const std::vector<std::string>& parts) {
    long n = 0;
    for (const auto& m : messages) {
        bool all = true;
        for (const auto& p : parts) all = all && has(m, p);
        if (all) ++n;
    }
    return n;
}

std::string lock_end(const std::string& openid, const std::string& reason) {
    return "\"openid\":\"" + openid + "\",\"holder\":null,\"reason\":\"" + reason + "\"";
}

std::string presence(std::uint64_t agent, const std::string& name, bool online) {
    return "\"type\":\"presence\",\"agent\":{\"id\":" + std::to_string(agent) + ",\"name\":\"" +
           name + "\"},\"online\":" + (online ? "true" : "false") + "}";
}

std::string session_end(const clinic_fixture& c, const std::string& openid, std::uint64_t agent) {
    return c.value(
        "SELECT COALESCE(end_reason, 'open') FROM chat_sessions WHERE account_id = ? AND "
        "openid = ? AND agent_id = ? ORDER BY id DESC LIMIT 1",
        {c.account, openid, agent});
}

}  // namespace

TEST_CASE("a lock run out by silence ends once across two instances and a renewed one stands") {
    clinic_fixture c("lock_ttl_s", "3");
    const auto x = c.add_agent("甲", password);
    const auto y = c.add_agent("乙", password);
    two_gateways g(c, gateway_bin, workers_on(c));
    const std::string tx = g.sign_in(g.a->port, "甲", password);
    const std::string ty = g.sign_in(g.b->port, "乙", password);
    auto cx = g.connect(g.a->port, tx);
    auto cy = g.connect(g.b->port, ty);

    // X takes two fans; the fan of oKept1 keeps writing, the fan of oSilent1 says nothing more.
    std::uint64_t msg = 71000;
    for (const std::string fan : {"oSilent1", "oKept1"}) {
        REQUIRE(c.deliver(g.a->port, c.text_xml(fan, ++msg)).status == 200);
        const auto took = g.act(g.a->port, tx, fan, "accept");
        INFO(took.body);
        REQUIRE(took.status == 200);
    }
    REQUIRE(cy->wait_for("\"openid\":\"oKept1\",\"holder\":{\"id\":" + std::to_string(x), 10s)
                .has_value());

    // oSilent1's lock runs out: Y hears of it, with its event id and account, while oKept1's
    // fan writes well within the TTL (through either instance) and keeps its lock.
    std::vector<std::string> seen;
    bool silent_seen = false;
    int beats_after = 0;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (beats_after < 5 && std::chrono::steady_clock::now() < deadline) {
        ++msg;
        REQUIRE(c.deliver(msg % 2 ? g.a->port : g.b->port, c.text_xml("oKept1", msg)).status ==
                200);
        while (auto m = cy->next(600ms)) seen.push_back(std::move(*m));
        silent_seen = silent_seen || count_with(seen, {lock_end("oSilent1", "silence")}) > 0;
        if (silent_seen) ++beats_after;  // then 5 more rounds, past another TTL
    }
    REQUIRE(silent_seen);
    // oKept1's fan wrote moments ago: its lock is still X's, its session open.
    CHECK(count_with(seen, {lock_end("oKept1", "silence")}) == 0);
    const auto kept = g.act(g.b->port, ty, "oKept1", "accept");
    CHECK(kept.status == 409);
    CHECK(has(kept.body, "\"holder\":{\"id\":" + std::to_string(x)));
    CHECK(session_end(c, "oKept1", x) == "open");
    for (const auto& m : drain(*cy, 1500ms)) seen.push_back(m);
    CHECK(count_with(seen, {lock_end("oSilent1", "silence")}) == 1);
    for (const auto& m : seen) {
        if (!has(m, lock_end("oSilent1", "silence"))) continue;
        CHECK(m.rfind("{\"event_id\":\"", 0) == 0);  // kept for consoles that resume
        CHECK(has(m, "\"type\":\"lock\",\"account_id\":" + std::to_string(c.account) + ","));
    }
    // The holder's own console is told too, once.
    CHECK(count_with(drain(*cx, 1500ms), {lock_end("oSilent1", "silence")}) == 1);

    // The history says why; the fan is free (Y gets it).
    CHECK(session_end(c, "oSilent1", x) == "silence");
    const auto free_now = g.act(g.b->port, ty, "oSilent1", "accept");
    CHECK(free_now.status == 200);
    CHECK(has(free_now.body, "\"status\":\"acquired\""));
    CHECK(session_end(c, "oSilent1", y) == "open");
}

TEST_CASE("a holder whose presence runs out: lock ends and its going offline are pushed once") {
    clinic_fixture c;
    const auto x = c.add_agent("甲客服", password);
    c.add_agent("乙客服", password);
    two_gateways g(c, gateway_bin, workers_on(c),
                   "\"presence_ttl_ms\":1500,\"reconnect_grace_ms\":1000");
    const std::string tx = g.sign_in(g.a->port, "甲客服", password);
    const std::string ty = g.sign_in(g.b->port, "乙客服", password);
    auto cy = g.connect(g.b->port, ty);
    auto cx = g.connect(g.a->port, tx);
    // X coming online is announced to Y (not to X itself).
    REQUIRE(cy->wait_for(presence(x, "甲客服", true), 10s).has_value());

    REQUIRE(c.deliver(g.a->port, c.text_xml("oGone1", 72001)).status == 200);
    REQUIRE(c.deliver(g.b->port, c.text_xml("oGone2", 72002)).status == 200);
    for (const std::string fan : {"oGone1", "oGone2"}) {
        REQUIRE(g.act(g.a->port, tx, fan, "accept").status == 200);
    }
    CHECK(count_with(drain(*cx, 1s), {"\"type\":\"presence\""}) == 0);

    // X's console closes and never comes back: after TTL and grace one of the timer workers
    // takes X offline; Y hears of each lock's end, then of X.
    cx->close();
    REQUIRE(cy->wait_for(lock_end("oGone1", "offline"), 20s).has_value());
    std::vector<std::string> seen{std::string(lock_end("oGone1", "offline"))};
    for (const auto& m : drain(*cy)) seen.push_back(m);
    CHECK(count_with(seen, {lock_end("oGone1", "offline")}) == 1);
    CHECK(count_with(seen, {lock_end("oGone2", "offline")}) == 1);
    CHECK(count_with(seen, {presence(x, "甲客服", false)}) == 1);
    CHECK(session_end(c, "oGone1", x) == "offline");
    CHECK(session_end(c, "oGone2", x) == "offline");

    // X back: Y hears it, once.
    auto cx2 = g.connect(g.a->port, tx);
    CHECK(count_with(drain(*cy), {presence(x, "甲客服", true)}) == 1);
}

TEST_CASE("switching accepting off and signing out end the locks and are announced") {
    clinic_fixture c;
    const auto x = c.add_agent("丙", password);
    c.add_agent("丁", password);
    two_gateways g(c, gateway_bin);
    const std::string tx = g.sign_in(g.a->port, "丙", password);
    const std::string ty = g.sign_in(g.b->port, "丁", password);
    auto cy = g.connect(g.b->port, ty);
    auto cx = g.connect(g.a->port, tx);
    REQUIRE(cy->wait_for(presence(x, "丙", true), 10s).has_value());
    REQUIRE(c.deliver(g.a->port, c.text_xml("oSwitch1", 73001)).status == 200);
    REQUIRE(g.act(g.a->port, tx, "oSwitch1", "accept").status == 200);

    const auto call = [&](const std::string& target, const std::string& body) {
        return http_call(g.a->port, "POST", target, body, {{"Authorization", "Bearer " + tx}});
    };
    REQUIRE(call("/api/agent/accepting", R"({"accepting":false})").status == 200);
    REQUIRE(cy->wait_for(lock_end("oSwitch1", "offline"), 10s).has_value());
    REQUIRE(cy->wait_for(presence(x, "丙", false), 10s).has_value());
    CHECK(session_end(c, "oSwitch1", x) == "offline");
    // Off again changes nothing: nothing is announced.
    REQUIRE(call("/api/agent/accepting", R"({"accepting":false})").status == 200);
    REQUIRE(call("/api/agent/accepting", R"({"accepting":true})").status == 200);
    auto seen = drain(*cy, 2s);
    CHECK(count_with(seen, {"\"type\":\"presence\""}) == 1);
    CHECK(count_with(seen, {presence(x, "丙", true)}) == 1);

    REQUIRE(g.act(g.a->port, tx, "oSwitch1", "accept").status == 200);
    REQUIRE(call("/api/agent/sign-out", "{}").status == 200);
    REQUIRE(cy->wait_for(lock_end("oSwitch1", "signed_out"), 10s).has_value());
    REQUIRE(cy->wait_for(presence(x, "丙", false), 10s).has_value());
    CHECK(session_end(c, "oSwitch1", x) == "offline");
}

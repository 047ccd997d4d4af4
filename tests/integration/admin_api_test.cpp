// The admin API (docs/api.md "Administration") through two real scrm-gateway processes on the
// shared Redis and MariaDB: admins only; routing settings validated and audited, taking effect on
// the other instance within seconds; owner reassignment (round-robin and average over 10 fans and
// 3 receivers) whose preview equals what is applied, refused when the fans changed meanwhile,
// followed by routing at once; deactivating an agent who owns fans; "who would get this now?"
// changing nothing in Redis; the audit log paged.
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <thread>

#include "clinic_fixture.hpp"
#include "http_client.hpp"
#include "scrm/gateway/http.hpp"
#include "scrm/gateway/services.hpp"
#include "scrm/storage/redis.hpp"
#include "test_env.hpp"
#include "two_gateways.hpp"
#include "ws_client.hpp"

using namespace scrm;
using namespace scrm::test;
using namespace std::chrono_literals;
using gateway::json_quote;

namespace {

const std::string gateway_bin = SCRM_GATEWAY_BIN;
const std::string password = "admin-api-1";

http_reply call(std::uint16_t port, const std::string& token, const std::string& method,
                const std::string& target, const std::string& body = {}) {
    return http_call(port, method, target, body, {{"Authorization", "Bearer " + token}});
}

// The value of "name": in a flat JSON text (a string's contents or a number's digits).
std::string field(const std::string& json, const std::string& name) {
    const std::string key = "\"" + name + "\":";
    const auto at = json.find(key);
    if (at == std::string::npos) return {};
    const auto start = at + key.size();
    if (json[start] == '"') return json.substr(start + 1, json.find('"', start + 1) - start - 1);
    return json.substr(start, json.find_first_of(",}]", start) - start);
}

// A Redis connection of the test's own, for reading (and seeding) the live state.
struct redis_probe {
    redis_probe() {
        runner = std::thread([this] { io.run(); });
        client = storage::redis_client::create(
            io.get_executor(), gateway::redis_options_from(services_config().redis));
        client->start();
        REQUIRE(run(client->wait_connected(5s)).has_value());
    }
    ~redis_probe() {
        client->stop();
        work.reset();
        runner.join();
    }
    template <class T>
    T run(boost::asio::awaitable<T> aw) {
        return boost::asio::co_spawn(io, std::move(aw), boost::asio::use_future).get();
    }
    storage::redis_reply command(std::vector<std::string> args) {
        auto r = run(client->command(std::move(args)));
        REQUIRE(r.has_value());
        return *r;
    }
    // Every key under `prefix` with its serialized value and TTL: equal before and after means
    // nothing changed.
    std::map<std::string, std::string> dump(const std::string& prefix) {
        std::map<std::string, std::string> out;
        std::string cursor = "0";
        do {
            auto r = command({"SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"});
            REQUIRE(r.elements.size() == 2);
            cursor = r.elements[0].str;
            for (const auto& k : r.elements[1].elements) {
                out[k.str] = command({"DUMP", k.str}).str + "|ttl " +
                             std::to_string(command({"PTTL", k.str}).integer > 0);
            }
        } while (cursor != "0");
        return out;
    }

    boost::asio::io_context io;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{
        io.get_executor()};
    std::thread runner;
    std::shared_ptr<storage::redis_client> client;
};

std::string live_key(const clinic_fixture& c, const std::string& rest) {
    return "scrm:{c" + std::to_string(c.clinic) + "}:" + rest;
}

std::string ids(const std::vector<std::uint64_t>& v) {
    std::string out = "[";
    for (std::size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + std::to_string(v[i]);
    return out + "]";
}

std::string reassign_body(const std::string& role, const std::vector<std::uint64_t>& from,
                          const std::vector<std::uint64_t>& to, const std::string& how,
                          const std::string& plan = "") {
    return "{\"role\":\"" + role + "\",\"from_agents\":" + ids(from) + ",\"to_agents\":" + ids(to) +
           ",\"distribution\":\"" + how + "\"" +
           (plan.empty() ? "" : ",\"plan\":\"" + plan + "\"") + "}";
}

// The fans' owners of a role as MySQL has them, in fans.id order.
std::vector<std::string> owners(const clinic_fixture& c, const std::string& column, int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) {
        out.push_back(c.value(
            "SELECT IFNULL(" + column + ", 'none') FROM fans WHERE account_id = ? AND openid = ?",
            {c.account, "oFan" + std::to_string(i)}));
    }
    return out;
}

// The "to" of each fan in a preview's or apply's answer, in order.
std::vector<std::string> planned(const std::string& body) {
    std::vector<std::string> out;
    for (auto at = body.find("\"to\":"); at != std::string::npos;
         at = body.find("\"to\":", at + 1)) {
        out.push_back(body.substr(at + 5, body.find_first_of(",}", at + 5) - at - 5));
    }
    return out;
}

}  // namespace

TEST_CASE("the admin API is for admins only") {
    clinic_fixture c;
    c.add_agent("管理员", password, false, std::nullopt, true, "admin");
    c.add_agent("客服甲", password);
    two_gateways g(c, gateway_bin);
    const auto admin = g.sign_in(g.a->port, "管理员", password);
    const auto agent = g.sign_in(g.a->port, "客服甲", password);
    struct row {
        std::string method, target;
    };
    const std::vector<row> rows{
        {"GET", "/api/admin/routing"},
        {"PUT", "/api/admin/routing"},
        {"POST", "/api/admin/reassign/preview"},
        {"POST", "/api/admin/reassign/apply"},
        {"POST", "/api/admin/agents/1/deactivate"},
        {"GET", "/api/admin/route-preview?account=1&openid=o1"},
        {"GET", "/api/admin/audit"},
    };
    for (const auto& [method, target] : rows) {
        CAPTURE(method, target);
        CHECK(http_call(g.a->port, method, target, "{}").status == 401);
        const auto refused = call(g.a->port, agent, method, target, "{}");
        CHECK(refused.status == 403);
        CHECK(refused.body == R"({"error":"仅管理员可以使用此功能"})");
        const auto allowed = call(g.a->port, admin, method, target, "{}");
        CHECK(allowed.status != 403);
        CHECK(allowed.status != 401);
    }
    // Nothing was changed by the refused calls.
    CHECK(c.value("SELECT COUNT(*) FROM audit_log WHERE clinic_id = ?", {c.clinic}) == "0");
}

TEST_CASE(
    "routing settings: read, changed with the same rules as scrm-admin, audited, and in effect on "
    "the other instance within seconds") {
    clinic_fixture c;
    const auto admin_id = c.add_agent("管理员", password, false, std::nullopt, true, "admin");
    two_gateways g(c, gateway_bin);
    const auto admin = g.sign_in(g.a->port, "管理员", password);

    auto r = call(g.a->port, admin, "GET", "/api/admin/routing");
    REQUIRE(r.status == 200);
    CHECK(has(r.body, "\"exclusive_mode\":false"));
    CHECK(has(r.body, "\"utc_offset\":\"+08:00\""));
    CHECK(has(r.body, "\"work_hours\":[]"));
    CHECK(has(r.body, "\"lock_ttl_s\":600"));

    // A fan writes through B while nobody is online: the no-agent text (always open).
    r = c.deliver(g.b->port, c.text_xml("oHours1", 71001));
    REQUIRE(r.status == 200);
    CHECK(has(r.body, "客服暂时不在线"));

    // Bad values: 400 naming the setting and the rule, nothing changed, nothing audited.
    struct bad {
        std::string name, body, expected;
    };
    const std::vector<bad> bad_inputs{{
        {"not json", "x", "请求内容须为 JSON 对象"},
        {"empty", "{}", "请至少填写一项设置"},
        {"unknown", R"({"exclusive":true})", "exclusive：未知的设置项"},
        {"switch", R"({"exclusive_mode":"on"})", "专属模式（exclusive_mode）：须为 true 或 false"},
        {"offset", R"({"utc_offset":"+8"})", "时区（utc_offset）：须为 UTC 时差"},
        {"hours", R"({"work_hours":[{"weekdays":[0],"start":"09:00","end":"18:00"}]})",
         "工作时间（work_hours[0].weekdays[0]）：须为 1（星期一）至 7（星期日）"},
        {"hours end", R"({"work_hours":[{"weekdays":[1],"start":"09:00","end":"9:00"}]})",
         "work_hours[0].end）：须为 00:00 至 24:00 的时间"},
        {"date", R"({"closed_dates":["2027-02-30"]})", "须为存在的日期"},
        {"text", R"({"after_hours_text":""})", "须为1至600个字符"},
        {"seconds", R"({"lock_ttl_s":0})", "须为 1 至 86400 之间的整数秒"},
        {"two at once", R"({"lock_ttl_s":0,"exclusive_mode":1})", "；"},
    }};
    const auto stored = [&] {
        return c.value(
            "SELECT CONCAT_WS('|', exclusive_mode, utc_offset_minutes, work_hours, "
            "closed_dates, after_hours_text, lock_ttl_s) FROM clinic_routing WHERE "
            "clinic_id = ?",
            {c.clinic});
    };
    const auto before = stored();
    for (const auto& [name, body, expected] : bad_inputs) {
        CAPTURE(name);
        r = call(g.a->port, admin, "PUT", "/api/admin/routing", body);
        INFO(r.body);
        CHECK(r.status == 400);
        CHECK(has(r.body, expected));
        CHECK(stored() == before);
    }
    CHECK(has(call(g.a->port, admin, "PUT", "/api/admin/routing", R"({"lock_ttl_s":0})").body,
              R"("problems":[{"field":"lock_ttl_s","error":"须为 1 至 86400 之间的整数秒"}])"));
    CHECK(c.value("SELECT COUNT(*) FROM audit_log WHERE clinic_id = ?", {c.clinic}) == "0");

    // Closed yesterday, today and tomorrow (UTC dates: today in the clinic's +08:00 is among
    // them), with a new after-hours text, through A.
    const auto today = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
    std::string dates = "[";
    for (int d = -1; d <= 1; ++d) {
        const std::chrono::year_month_day ymd{today + std::chrono::days(d)};
        char text[16];
        std::snprintf(text, sizeof text, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                      static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
        dates += std::string(d > -1 ? "," : "") + "\"" + text + "\"";
    }
    dates += "]";
    r = call(g.a->port, admin, "PUT", "/api/admin/routing",
             R"({"after_hours_text":"诊所今日休息，明天回复您","closed_dates":)" + dates +
                 R"(,"work_hours":[{"weekdays":[5,1],"start":"20:00","end":"02:00"}]})");
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(has(r.body, "\"after_hours_text\":\"诊所今日休息，明天回复您\""));
    CHECK(has(r.body, R"("work_hours":[{"weekdays":[1,5],"start":"20:00","end":"02:00"}])"));
    CHECK(has(r.body, "\"changed\":{\"after_hours_text\":{\"before\":"));
    // The same again changes nothing and writes no audit row.
    CHECK(field(call(g.a->port, admin, "PUT", "/api/admin/routing",
                     R"({"after_hours_text":"诊所今日休息，明天回复您"})")
                    .body,
                "changed") == "{");
    CHECK(c.value("SELECT COUNT(*) FROM audit_log WHERE clinic_id = ?", {c.clinic}) == "1");
    CHECK(c.value("SELECT CONCAT_WS('|', actor_agent_id, action, subject) FROM audit_log WHERE "
                  "clinic_id = ?",
                  {c.clinic}) == std::to_string(admin_id) + "|routing.set|routing");
    CHECK(has(
        c.value("SELECT detail FROM audit_log WHERE clinic_id = ?", {c.clinic}),
        R"("after_hours_text":{"before":"您好，现在是非工作时间，我们上班后会尽快回复您。","after":"诊所今日休息，明天回复您"})"));

    // B routed with the old settings a moment ago; within its cache's reload (2 × 5 s at most) a
    // new fan's message gets the new text (one auto-reply per fan and window: a new fan each try).
    int n = 0;
    http_reply seen;
    CHECK(eventually(
        [&] {
            ++n;
            seen = c.deliver(g.b->port, c.text_xml("oHours" + std::to_string(1 + n), 71001 + n));
            return has(seen.body, "诊所今日休息，明天回复您");
        },
        15s));
}

TEST_CASE(
    "reassignment round-robin over 10 fans and 3 receivers: the preview is what is applied, "
    "audited, and routing follows at once") {
    clinic_fixture c("exclusive_mode", "1");
    c.add_agent("管理员", password, false, std::nullopt, true, "admin");
    const auto leaving = c.add_agent("离职客服", password);
    const auto r1 = c.add_agent("接收一", password);
    const auto r2 = c.add_agent("接收二", password);
    const auto r3 = c.add_agent("接收三", password);
    for (int i = 0; i < 10; ++i)
        c.set_fan("oFan" + std::to_string(i), std::nullopt, std::nullopt, leaving);
    c.set_fan("oOther", std::nullopt, std::nullopt, r1);  // not the leaving agent's: untouched
    redis_probe redis;
    // Routing committed a pick for oFan0 earlier: Redis names the leaving agent too.
    redis.command({"HSET", live_key(c, "fan:oFan0"), "exclusive", std::to_string(leaving)});
    two_gateways g(c, gateway_bin);
    const auto admin = g.sign_in(g.a->port, "管理员", password);

    // Bad input: 400 and 422, nothing changed.
    CHECK(call(g.a->port, admin, "POST", "/api/admin/reassign/preview", "[]").status == 400);
    CHECK(call(g.a->port, admin, "POST", "/api/admin/reassign/preview",
               reassign_body("owner", {leaving}, {r1}, "round_robin"))
              .status == 400);
    CHECK(call(g.a->port, admin, "POST", "/api/admin/reassign/preview",
               reassign_body("exclusive", {}, {r1}, "round_robin"))
              .status == 400);
    CHECK(call(g.a->port, admin, "POST", "/api/admin/reassign/preview",
               reassign_body("exclusive", {leaving}, {r1, r1}, "round_robin"))
              .status == 400);
    CHECK(call(g.a->port, admin, "POST", "/api/admin/reassign/preview",
               reassign_body("exclusive", {leaving}, {r1}, "fair"))
              .status == 400);
    CHECK(call(g.a->port, admin, "POST", "/api/admin/reassign/apply",
               reassign_body("exclusive", {leaving}, {r1}, "round_robin"))
              .status == 400);  // no plan: preview first
    const auto unknown =
        call(g.a->port, admin, "POST", "/api/admin/reassign/preview",
             reassign_body("exclusive", {leaving}, {r1, 999999999}, "round_robin"));
    CHECK(unknown.status == 422);
    CHECK(has(unknown.body, "找不到接收客服"));

    const auto body = reassign_body("exclusive", {leaving}, {r1, r2, r3}, "round_robin");
    const auto preview = call(g.a->port, admin, "POST", "/api/admin/reassign/preview", body);
    INFO(preview.body);
    REQUIRE(preview.status == 200);
    // 1st, 4th, 7th, 10th to the first receiver; 2nd, 5th, 8th to the second; the rest to the
    // third — fans in the order they became known (fans.id).
    const std::string a = std::to_string(r1), b = std::to_string(r2), d = std::to_string(r3);
    const std::vector<std::string> expected{a, b, d, a, b, d, a, b, d, a};
    CHECK(planned(preview.body) == expected);
    CHECK(has(preview.body, "{\"id\":" + a + ",\"name\":\"接收一\",\"fans\":4}"));
    CHECK(has(preview.body, "{\"id\":" + b + ",\"name\":\"接收二\",\"fans\":3}"));
    CHECK(field(preview.body, "total") == "10");
    // The preview changed nothing.
    CHECK(owners(c, "exclusive_agent_id", 10) ==
          std::vector<std::string>(10, std::to_string(leaving)));

    // Consoles of the receivers (on B) and of the leaving agent (on A).
    auto console1 = g.connect(g.b->port, g.sign_in(g.b->port, "接收一", password));
    auto console_old = g.connect(g.a->port, g.sign_in(g.a->port, "离职客服", password));

    const auto applied = call(g.a->port, admin, "POST", "/api/admin/reassign/apply",
                              reassign_body("exclusive", {leaving}, {r1, r2, r3}, "round_robin",
                                            field(preview.body, "plan")));
    INFO(applied.body);
    REQUIRE(applied.status == 200);
    CHECK(field(applied.body, "applied") == "10");
    CHECK(planned(applied.body) == expected);
    CHECK(owners(c, "exclusive_agent_id", 10) == expected);
    CHECK(c.value("SELECT exclusive_agent_id FROM fans WHERE account_id = ? AND openid = 'oOther'",
                  {c.account}) == a);
    CHECK(redis.command({"HGET", live_key(c, "fan:oFan0"), "exclusive"}).str == a);
    CHECK(redis.command({"HGET", live_key(c, "fan:oFan1"), "exclusive"}).str == b);
    // Audited in the same transaction: a row per fan and one for the whole.
    CHECK(c.value("SELECT COUNT(*) FROM audit_log WHERE clinic_id = ? AND action = 'fan.owner'",
                  {c.clinic}) == "10");
    CHECK(c.value("SELECT detail FROM audit_log WHERE clinic_id = ? AND subject = ?",
                  {c.clinic, std::to_string(c.account) + "/oFan3"}) ==
          "{\"role\":\"exclusive\",\"before\":" + std::to_string(leaving) + ",\"after\":" + a +
              ",\"by\":\"reassign\"}");
    CHECK(has(c.value("SELECT detail FROM audit_log WHERE clinic_id = ? AND action = "
                      "'fan.reassign'",
                      {c.clinic}),
              "\"distribution\":\"round_robin\",\"from\":[" + std::to_string(leaving) +
                  "],\"to\":[" + a + "," + b + "," + d + "],\"fans\":10"));

    // Routing follows at once: oFan0 writes (through A) and reaches its new exclusive agent.
    REQUIRE(c.deliver(g.a->port, c.text_xml("oFan0", 72001)).status == 200);
    const auto pushed = console1->wait_for("\"openid\":\"oFan0\"", 10s);
    REQUIRE(pushed.has_value());
    CHECK(has(*pushed, "\"rule\":\"exclusive\""));
    CHECK(has(*pushed, "\"owner\":" + a));
    CHECK_FALSE(console_old->wait_for("\"openid\":\"oFan0\"", 500ms).has_value());

    // The same plan again: the fans have changed since its preview.
    const auto again = call(g.a->port, admin, "POST", "/api/admin/reassign/apply",
                            reassign_body("exclusive", {leaving}, {r1, r2, r3}, "round_robin",
                                          field(preview.body, "plan")));
    CHECK(again.status == 409);
    CHECK(has(again.body, "请重新预览"));
}

TEST_CASE(
    "reassignment average over 10 fans and 3 receivers: as even as possible, random, the preview "
    "applied as shown; a change after the preview is refused; clearing") {
    clinic_fixture c;
    c.add_agent("管理员", password, false, std::nullopt, true, "admin");
    const auto old1 = c.add_agent("老顾问一", password, true, std::nullopt, true, "consultant");
    const auto old2 = c.add_agent("老顾问二", password, true, std::nullopt, true, "consultant");
    const auto r1 = c.add_agent("新顾问一", password);
    const auto r2 = c.add_agent("新顾问二", password);
    const auto r3 = c.add_agent("新顾问三", password, false);  // consultants need no permission
    for (int i = 0; i < 10; ++i) {
        c.set_fan("oFan" + std::to_string(i), std::nullopt, i % 2 ? old1 : old2);
    }
    two_gateways g(c, gateway_bin);
    const auto admin = g.sign_in(g.a->port, "管理员", password);
    const auto body = reassign_body("consultant", {old1, old2}, {r1, r2, r3}, "average");

    // Two previews deal differently (a new seed each), each 4/3/3.
    std::vector<std::vector<std::string>> deals;
    std::string plan;
    for (int i = 0; i < 5; ++i) {
        const auto p = call(g.a->port, admin, "POST", "/api/admin/reassign/preview", body);
        REQUIRE(p.status == 200);
        const auto to = planned(p.body);
        REQUIRE(to.size() == 10);
        std::map<std::string, int> counts;
        for (const auto& t : to) ++counts[t];
        std::vector<int> sizes;
        for (const auto& [who, n] : counts) sizes.push_back(n);
        std::sort(sizes.begin(), sizes.end());
        CHECK(sizes == std::vector<int>{3, 3, 4});
        deals.push_back(to);
        plan = field(p.body, "plan");
    }
    CHECK(std::any_of(deals.begin(), deals.end(), [&](const auto& x) { return x != deals[0]; }));

    // A fan changes owner after the (last) preview: apply refuses it, nothing changes.
    c.execute("UPDATE fans SET consultant_agent_id = ? WHERE account_id = ? AND openid = 'oFan9'",
              {r1, c.account});
    auto stale = call(g.a->port, admin, "POST", "/api/admin/reassign/apply",
                      reassign_body("consultant", {old1, old2}, {r1, r2, r3}, "average", plan));
    CHECK(stale.status == 409);
    CHECK(owners(c, "consultant_agent_id", 9) ==
          std::vector<std::string>{std::to_string(old2), std::to_string(old1), std::to_string(old2),
                                   std::to_string(old1), std::to_string(old2), std::to_string(old1),
                                   std::to_string(old2), std::to_string(old1),
                                   std::to_string(old2)});
    CHECK(c.value("SELECT COUNT(*) FROM audit_log WHERE clinic_id = ?", {c.clinic}) == "0");
    c.execute("UPDATE fans SET consultant_agent_id = ? WHERE account_id = ? AND openid = 'oFan9'",
              {old1, c.account});

    // Preview, then apply: exactly the previewed deal lands.
    const auto p = call(g.a->port, admin, "POST", "/api/admin/reassign/preview", body);
    REQUIRE(p.status == 200);
    const auto applied = call(
        g.a->port, admin, "POST", "/api/admin/reassign/apply",
        reassign_body("consultant", {old1, old2}, {r1, r2, r3}, "average", field(p.body, "plan")));
    INFO(applied.body);
    REQUIRE(applied.status == 200);
    CHECK(planned(applied.body) == planned(p.body));
    CHECK(owners(c, "consultant_agent_id", 10) == planned(p.body));

    // No receivers: the role is cleared.
    const auto clear = reassign_body("consultant", {r1}, {}, "round_robin");
    const auto cp = call(g.a->port, admin, "POST", "/api/admin/reassign/preview", clear);
    REQUIRE(cp.status == 200);
    const auto cleared =
        call(g.a->port, admin, "POST", "/api/admin/reassign/apply",
             reassign_body("consultant", {r1}, {}, "round_robin", field(cp.body, "plan")));
    REQUIRE(cleared.status == 200);
    CHECK(c.value("SELECT COUNT(*) FROM fans WHERE account_id = ? AND consultant_agent_id = ?",
                  {c.account, r1}) == "0");
    CHECK(c.value("SELECT COUNT(*) FROM audit_log WHERE clinic_id = ? AND action = 'fan.owner' "
                  "AND detail LIKE '%\"after\":null%'",
                  {c.clinic}) == field(cleared.body, "applied"));
}

TEST_CASE(
    "deactivating an agent who owns fans asks where they go, then moves them and deactivates in "
    "one go") {
    clinic_fixture c("exclusive_mode", "1");
    const auto admin_id = c.add_agent("管理员", password, false, std::nullopt, true, "admin");
    const auto leaving = c.add_agent("要走的", password, true, std::nullopt, true, "consultant");
    const auto stays = c.add_agent("留下的", password);
    const auto no_permission = c.add_agent("无权限", password, false);
    for (int i = 0; i < 3; ++i)
        c.set_fan("oFan" + std::to_string(i), std::nullopt, leaving, leaving);
    two_gateways g(c, gateway_bin);
    const auto admin = g.sign_in(g.a->port, "管理员", password);
    const auto target = "/api/admin/agents/" + std::to_string(leaving) + "/deactivate";

    auto r = call(g.a->port, admin, "POST", target, "{}");
    INFO(r.body);
    CHECK(r.status == 409);
    CHECK(field(r.body, "consultant_fans") == "3");
    CHECK(field(r.body, "exclusive_fans") == "3");
    CHECK(c.value("SELECT active FROM agents WHERE id = ?", {leaving}) == "1");
    // Only one role named: still 409.
    CHECK(
        call(g.a->port, admin, "POST", target, R"({"consultant_fans":{"to_agents":[]}})").status ==
        409);
    // Bad destinations.
    CHECK(call(g.a->port, admin, "POST", target, R"({"consultant_fans":[]})").status == 400);
    const auto self_target = call(g.a->port, admin, "POST",
                                  "/api/admin/agents/" + std::to_string(admin_id) + "/deactivate");
    CHECK(self_target.status == 400);
    CHECK(call(g.a->port, admin, "POST", "/api/admin/agents/999999999/deactivate").status == 404);
    CHECK(call(g.a->port, admin, "POST", "/api/admin/agents/x/deactivate").status == 404);
    const auto no_perm =
        call(g.a->port, admin, "POST", target,
             "{\"consultant_fans\":{\"to_agents\":[]},\"exclusive_fans\":{"
             "\"to_agents\":[" +
                 std::to_string(no_permission) + "],\"distribution\":\"round_robin\"}}");
    CHECK(no_perm.status == 422);
    CHECK(has(no_perm.body, "没有接待在线咨询的权限"));
    CHECK(c.value("SELECT active FROM agents WHERE id = ?", {leaving}) == "1");
    CHECK(c.value("SELECT COUNT(*) FROM audit_log WHERE clinic_id = ?", {c.clinic}) == "0");

    // Consultants cleared, exclusive fans to the one who stays.
    const auto token_leaving = g.sign_in(g.b->port, "要走的", password);
    r = call(g.a->port, admin, "POST", target,
             "{\"consultant_fans\":{\"to_agents\":[]},\"exclusive_fans\":{\"to_agents\":[" +
                 std::to_string(stays) + "],\"distribution\":\"average\"}}");
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(c.value("SELECT active FROM agents WHERE id = ?", {leaving}) == "0");
    CHECK(owners(c, "consultant_agent_id", 3) == std::vector<std::string>(3, "none"));
    CHECK(owners(c, "exclusive_agent_id", 3) == std::vector<std::string>(3, std::to_string(stays)));
    CHECK(c.value("SELECT COUNT(*) FROM audit_log WHERE clinic_id = ? AND action = 'fan.owner'",
                  {c.clinic}) == "6");
    CHECK(c.value("SELECT detail FROM audit_log WHERE clinic_id = ? AND action = "
                  "'agent.deactivate'",
                  {c.clinic}) == R"({"consultant_fans":3,"exclusive_fans":3})");
    // Its session ends; deactivating again is a no-op.
    CHECK(call(g.b->port, token_leaving, "GET", "/api/agent/me").status == 401);
    r = call(g.a->port, admin, "POST", target);
    CHECK(r.status == 200);
    CHECK(has(r.body, "\"already_inactive\":true"));
}

TEST_CASE(
    "who would get this now: the decision and receipt routing would make, changing nothing in "
    "Redis") {
    clinic_fixture c("exclusive_mode", "1");
    c.add_agent("管理员", password, false, std::nullopt, true, "admin");
    const auto x = c.add_agent("甲客服", password);
    const auto y = c.add_agent("乙客服", password);
    two_gateways g(c, gateway_bin);
    const auto admin = g.sign_in(g.a->port, "管理员", password);
    auto cx = g.connect(g.a->port, g.sign_in(g.a->port, "甲客服", password));
    auto cy = g.connect(g.b->port, g.sign_in(g.b->port, "乙客服", password));
    // A fan who wrote before: routing picked an exclusive agent for them.
    REQUIRE(c.deliver(g.a->port, c.text_xml("oKnown", 73001)).status == 200);
    std::string picked;
    REQUIRE(eventually(
        [&] {
            picked = c.value(
                "SELECT IFNULL(exclusive_agent_id, '') FROM fans WHERE account_id = ? "
                "AND openid = 'oKnown'",
                {c.account});
            return !picked.empty();
        },
        10s));

    CHECK(call(g.a->port, admin, "GET", "/api/admin/route-preview?openid=oKnown").status == 400);
    CHECK(call(g.a->port, admin, "GET",
               "/api/admin/route-preview?account=" + std::to_string(c.account) + "&openid=o%20x")
              .status == 400);
    CHECK(call(g.a->port, admin, "GET", "/api/admin/route-preview?account=999999999&openid=oKnown")
              .status == 404);

    redis_probe redis;
    // Presence is renewed by the consoles' heartbeats on their own: left out of the comparison.
    const auto live = [&] {
        auto all = redis.dump(live_key(c, ""));
        all.erase(live_key(c, "pres"));
        return all;
    };
    const auto before = live();
    REQUIRE_FALSE(before.empty());
    const auto known =
        call(g.a->port, admin, "GET",
             "/api/admin/route-preview?account=" + std::to_string(c.account) + "&openid=oKnown");
    INFO(known.body);
    REQUIRE(known.status == 200);
    CHECK(has(known.body, "\"fan_known\":true"));
    CHECK(has(known.body, "\"rule\":\"exclusive\""));
    CHECK(has(known.body, "\"targets\":[\"" + picked + "\"]"));
    CHECK(has(known.body, "\"exclusive_agent\":" + picked));
    CHECK(has(known.body, "\"auto_reply_text\":null"));
    // A new fan would be assigned to the agent with the lower load: the one not picked above.
    const std::string other = picked == std::to_string(x) ? std::to_string(y) : std::to_string(x);
    const auto fresh =
        call(g.a->port, admin, "GET",
             "/api/admin/route-preview?account=" + std::to_string(c.account) + "&openid=oNew");
    INFO(fresh.body);
    REQUIRE(fresh.status == 200);
    CHECK(has(fresh.body, "\"fan_known\":false"));
    CHECK(has(fresh.body, "\"rule\":\"assigned\""));
    CHECK(has(fresh.body, "\"assign_exclusive\":\"" + other + "\""));
    CHECK(has(fresh.body, "\"receipt\":"));
    // Nothing changed in Redis (values and whether they expire), nor in MySQL.
    CHECK(live() == before);
    CHECK(c.value("SELECT COUNT(*) FROM fans WHERE account_id = ? AND openid = 'oNew'",
                  {c.account}) == "0");
    // And routing then does what the preview said.
    REQUIRE(c.deliver(g.b->port, c.text_xml("oNew", 73002)).status == 200);
    auto& console = other == std::to_string(x) ? cx : cy;
    CHECK(console->wait_for("\"openid\":\"oNew\"", 10s).has_value());
}

TEST_CASE("the audit log: newest first, filtered by action, paged, bad queries refused") {
    clinic_fixture c;
    const auto admin_id = c.add_agent("管理员", password, false, std::nullopt, true, "admin");
    for (int i = 0; i < 5; ++i) {
        c.execute(
            "INSERT INTO audit_log (clinic_id, actor_agent_id, actor, action, subject, "
            "detail) VALUES (?, ?, 'agent', ?, ?, ?)",
            {c.clinic, admin_id, i % 2 ? "fan.owner" : "routing.set", "s" + std::to_string(i),
             "{\"i\":" + std::to_string(i) + "}"});
    }
    two_gateways g(c, gateway_bin);
    const auto admin = g.sign_in(g.a->port, "管理员", password);

    auto r = call(g.a->port, admin, "GET", "/api/admin/audit?limit=2");
    INFO(r.body);
    REQUIRE(r.status == 200);
    const auto s4 = r.body.find("\"subject\":\"s4\"");
    const auto s3 = r.body.find("\"subject\":\"s3\"");
    CHECK(s4 < s3);
    CHECK(s3 != std::string::npos);
    CHECK(has(r.body, "\"detail\":{\"i\":4}"));
    CHECK(has(r.body, "\"agent\":{\"id\":" + std::to_string(admin_id) + ",\"name\":\"管理员\"}"));
    const auto next = field(r.body, "next_before");
    REQUIRE(next != "null");
    r = call(g.a->port, admin, "GET", "/api/admin/audit?limit=2&before=" + next);
    CHECK(has(r.body, "\"subject\":\"s2\""));
    CHECK(has(r.body, "\"subject\":\"s1\""));
    CHECK_FALSE(has(r.body, "\"subject\":\"s3\""));
    r = call(g.a->port, admin, "GET", "/api/admin/audit?action=fan.owner");
    CHECK(has(r.body, "\"subject\":\"s3\""));
    CHECK(has(r.body, "\"subject\":\"s1\""));
    CHECK_FALSE(has(r.body, "routing.set"));
    CHECK(field(r.body, "next_before") == "null");
    r = call(g.a->port, admin, "GET", "/api/admin/audit?action=routing.");
    CHECK(has(r.body, "\"subject\":\"s0\""));
    CHECK_FALSE(has(r.body, "fan.owner"));

    for (const char* bad : {"limit=0", "limit=201", "limit=x", "before=-1", "action=a%27b"}) {
        CAPTURE(bad);
        r = call(g.a->port, admin, "GET", std::string("/api/admin/audit?") + bad);
        CHECK(r.status == 400);
        CHECK(has(r.body, "\"error\":"));
    }
}

// The admin API's people and places (docs/api.md "Administration") through two real
// scrm-gateway processes on the shared Redis and MariaDB, with the fake WeChat for stores' QR
// codes: admins only; agents created with scrm-admin's rules, changed, their passwords reset (the
// old one stops working at once); stores created and renamed; each store's permanent QR code made
// once through WeChat and kept; other clinics' agents, stores and accounts are 404; bad input
// changes nothing; every change has its audit row and no password reaches the log or the audit.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "clinic_fixture.hpp"
#include "http_client.hpp"
#include "scrm/fakes/fake_wechat.hpp"
#include "scrm/gateway/secret_box.hpp"
#include "test_env.hpp"
#include "two_gateways.hpp"

using namespace scrm;
using namespace scrm::test;

namespace {

const std::string gateway_bin = SCRM_GATEWAY_BIN;
const std::string password = "people-api-1";

http_reply call(std::uint16_t port, const std::string& token, const std::string& method,
                const std::string& target, const std::string& body = {}) {
    return http_call(port, method, target, body, {{"Authorization", "Bearer " + token}});
}

// The number after "name": in a JSON text (the first one).
std::string number_after(const std::string& json, const std::string& name) {
    const std::string key = "\"" + name + "\":";
    const auto at = json.find(key);
    if (at == std::string::npos) return {};
    const auto start = at + key.size();
    return json.substr(start, json.find_first_of(",}]", start) - start);
}

std::string count(const clinic_fixture& c, const std::string& table) {
    return c.value("SELECT COUNT(*) FROM " + table + " WHERE clinic_id = ?", {c.clinic});
}

std::string audit_count(const clinic_fixture& c, const std::string& action) {
    return c.value("SELECT COUNT(*) FROM audit_log WHERE clinic_id = ? AND action = ?",
                   {c.clinic, action});
}

}  // namespace

TEST_CASE("people and places are for admins only") {
    clinic_fixture c;
    c.add_agent("管理员", password, false, std::nullopt, true, "admin");
    const auto other = c.add_agent("客服甲", password);
    const auto store = c.add_store("东门店");
    two_gateways g(c, gateway_bin);
    const auto admin = g.sign_in(g.a->port, "管理员", password);
    const auto agent = g.sign_in(g.a->port, "客服甲", password);
    const std::string a = std::to_string(other), s = std::to_string(store);
    struct row {
        std::string method, target;
    };
    const std::vector<row> rows{
        {"GET", "/api/admin/agents"},      {"POST", "/api/admin/agents"},
        {"PUT", "/api/admin/agents/" + a}, {"POST", "/api/admin/agents/" + a + "/password"},
        {"GET", "/api/admin/stores"},      {"POST", "/api/admin/stores"},
        {"PUT", "/api/admin/stores/" + s}, {"POST", "/api/admin/stores/" + s + "/qr"},
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
    CHECK(c.value("SELECT COUNT(*) FROM audit_log WHERE clinic_id = ?", {c.clinic}) == "0");
    CHECK(count(c, "agents") == "2");
    CHECK(count(c, "stores") == "1");
}

TEST_CASE("agents: created with the rules of scrm-admin and listed and bad input changes nothing") {
    clinic_fixture c;
    const auto admin_id = c.add_agent("管理员", password, false, std::nullopt, true, "admin");
    const auto store = c.add_store("东门店");
    clinic_fixture other;
    const auto foreign_store = other.add_store("别家门店");
    two_gateways g(c, gateway_bin);
    const auto admin = g.sign_in(g.a->port, "管理员", password);

    const std::string long_name(65, 'x');
    struct bad {
        std::string body, error;
        int status = 400;
    };
    const std::vector<bad> bads{
        {"not json", "请求内容须为 JSON 对象"},
        {R"({"role":"service","password":"longenough"})", "姓名（name）"},
        {R"({"name":" 前后空格","role":"service","password":"longenough"})", "姓名（name）"},
        {R"({"name":")" + long_name + R"(","role":"service","password":"longenough"})",
         "姓名（name）"},
        {R"({"name":"新人","role":"boss","password":"longenough"})", "角色（role）"},
        {R"({"name":"新人","password":"longenough"})", "角色（role）"},
        {R"({"name":"新人","role":"service"})", "请填写密码"},
        {R"({"name":"新人","role":"service","password":"short"})", "密码"},
        {R"({"name":"新人","role":"service","password":"longenough","can_receive":"yes"})",
         "can_receive"},
        {R"({"name":"新人","role":"service","password":"longenough","store_id":"x"})",
         "门店（store_id）"},
        {R"({"name":"新人","role":"service","password":"longenough","shoe_size":42})",
         "未知的字段：shoe_size"},
        {R"({"name":"新人","role":"service","password":"longenough","store_id":)" +
             std::to_string(foreign_store) + "}",
         "门店不存在", 422},
        {R"({"name":"管理员","role":"service","password":"longenough"})", "同名", 409},
    };
    for (const auto& b : bads) {
        CAPTURE(b.body);
        const auto r = call(g.a->port, admin, "POST", "/api/admin/agents", b.body);
        CHECK(r.status == b.status);
        CHECK(has(r.body, "{\"error\":\""));
        CHECK(has(r.body, b.error));
    }
    CHECK(count(c, "agents") == "1");
    CHECK(audit_count(c, "agent.create") == "0");

    const auto made =
        call(g.a->port, admin, "POST", "/api/admin/agents",
             R"({"name":"咨询师乙","role":"consultant","store_id":)" + std::to_string(store) +
                 R"(,"can_receive":false,"password":"brand-new-pass"})");
    REQUIRE(made.status == 201);
    const std::string id = number_after(made.body, "id");
    CHECK(made.body == "{\"agent\":{\"id\":" + id +
                           ",\"name\":\"咨询师乙\",\"role\":\"consultant\",\"store_id\":" +
                           std::to_string(store) + ",\"can_receive\":false,\"active\":true}}");
    CHECK(c.value("SELECT CONCAT(role, '/', store_id, '/', can_receive, '/', active) FROM agents "
                  "WHERE id = ? AND clinic_id = ?",
                  {id, c.clinic}) == "consultant/" + std::to_string(store) + "/0/1");
    CHECK(c.value("SELECT password_hash LIKE 'pbkdf2-sha256$%' FROM agents WHERE id = ?", {id}) ==
          "1");
    // The new agent signs in with the password given (on the other instance too).
    CHECK_FALSE(g.sign_in(g.b->port, "咨询师乙", "brand-new-pass").empty());

    const auto list = call(g.a->port, admin, "GET", "/api/admin/agents");
    REQUIRE(list.status == 200);
    CHECK(has(list.body, "{\"id\":" + std::to_string(admin_id) +
                             ",\"name\":\"管理员\",\"role\":\"admin\",\"store_id\":null"));
    CHECK(has(list.body, "\"name\":\"咨询师乙\",\"role\":\"consultant\""));
    CHECK_FALSE(has(list.body, "password"));
    CHECK_FALSE(has(list.body, "pbkdf2"));

    CHECK(c.value("SELECT CONCAT(subject, ' ', detail) FROM audit_log WHERE clinic_id = ? AND "
                  "action = 'agent.create' AND actor_agent_id = ?",
                  {c.clinic, admin_id}) ==
          "agent:" + id + " {\"name\":\"咨询师乙\",\"role\":\"consultant\",\"store_id\":" +
              std::to_string(store) + ",\"can_receive\":false}");
    // No password in the log or the audit.
    CHECK_FALSE(has(g.logs(), "brand-new-pass"));
    CHECK(c.value("SELECT COUNT(*) FROM audit_log WHERE clinic_id = ? AND detail LIKE ?",
                  {c.clinic, "%brand-new-pass%"}) == "0");
}

TEST_CASE("agents: role store and permission changed and audited; other clinics' agents are 404") {
    clinic_fixture c;
    const auto admin_id = c.add_agent("管理员", password, false, std::nullopt, true, "admin");
    const auto agent_id = c.add_agent("客服甲", password);
    const auto store = c.add_store("东门店");
    clinic_fixture other;
    const auto foreign = other.add_agent("别家客服", password);
    const auto foreign_store = other.add_store("别家门店");
    two_gateways g(c, gateway_bin);
    const auto admin = g.sign_in(g.a->port, "管理员", password);
    const std::string target = "/api/admin/agents/" + std::to_string(agent_id);

    for (const std::string& body :
         {std::string("{}"), std::string("[]"), std::string(R"({"role":"king"})"),
          std::string(R"({"name":"改名"})"), std::string(R"({"can_receive":1})"),
          std::string(R"({"store_id":-3})")}) {
        CAPTURE(body);
        const auto r = call(g.a->port, admin, "PUT", target, body);
        CHECK(r.status == 400);
        CHECK(has(r.body, "{\"error\":\""));
    }
    auto r = call(g.a->port, admin, "PUT", target,
                  R"({"store_id":)" + std::to_string(foreign_store) + "}");
    CHECK(r.status == 422);
    CHECK(r.body == R"({"error":"门店不存在（store_id 须为本诊所的门店编号）"})");
    r = call(g.a->port, admin, "PUT", "/api/admin/agents/" + std::to_string(foreign),
             R"({"role":"admin"})");
    CHECK(r.status == 404);
    CHECK(r.body == R"({"error":"客服不存在"})");
    CHECK(other.value("SELECT role FROM agents WHERE id = ?", {foreign}) == "service");
    r = call(g.a->port, admin, "PUT", "/api/admin/agents/" + std::to_string(admin_id),
             R"({"role":"service"})");
    CHECK(r.status == 400);
    CHECK(r.body == R"({"error":"不能取消自己的管理员角色"})");
    CHECK(c.value("SELECT CONCAT(role, '/', IFNULL(store_id, 'none'), '/', can_receive) FROM "
                  "agents WHERE id = ?",
                  {agent_id}) == "service/none/1");
    CHECK(audit_count(c, "agent.update") == "0");

    r = call(
        g.a->port, admin, "PUT", target,
        R"({"role":"consultant","store_id":)" + std::to_string(store) + R"(,"can_receive":false})");
    REQUIRE(r.status == 200);
    const std::string changed =
        "{\"role\":{\"before\":\"service\",\"after\":\"consultant\"},"
        "\"store_id\":{\"before\":null,\"after\":" +
        std::to_string(store) + "},\"can_receive\":{\"before\":true,\"after\":false}}";
    CHECK(has(r.body, ",\"changed\":" + changed + "}"));
    CHECK(c.value("SELECT CONCAT(role, '/', store_id, '/', can_receive) FROM agents WHERE id = ?",
                  {agent_id}) == "consultant/" + std::to_string(store) + "/0");
    CHECK(c.value("SELECT detail FROM audit_log WHERE clinic_id = ? AND action = 'agent.update' "
                  "AND subject = ?",
                  {c.clinic, "agent:" + std::to_string(agent_id)}) == changed);

    // The same values again: nothing changes, nothing is audited. Then clearing the store.
    r = call(g.a->port, admin, "PUT", target, R"({"role":"consultant","can_receive":false})");
    CHECK(r.status == 200);
    CHECK(has(r.body, "\"changed\":{}"));
    CHECK(audit_count(c, "agent.update") == "1");
    r = call(g.a->port, admin, "PUT", target, R"({"store_id":null})");
    CHECK(r.status == 200);
    CHECK(c.value("SELECT IFNULL(store_id, 'none') FROM agents WHERE id = ?", {agent_id}) ==
          "none");
    CHECK(audit_count(c, "agent.update") == "2");
}

TEST_CASE("agents: a reset password replaces the old one at once and is never logged") {
    clinic_fixture c;
    const auto admin_id = c.add_agent("管理员", password, false, std::nullopt, true, "admin");
    const auto agent_id = c.add_agent("客服甲", password);
    clinic_fixture other;
    const auto foreign = other.add_agent("别家客服", password);
    two_gateways g(c, gateway_bin);
    const auto admin = g.sign_in(g.a->port, "管理员", password);
    const auto agent_session = g.sign_in(g.b->port, "客服甲", password);
    const std::string target = "/api/admin/agents/" + std::to_string(agent_id) + "/password";
    const std::string before = c.value("SELECT password_hash FROM agents WHERE id = ?", {agent_id});

    for (const std::string& body :
         {std::string("nope"), std::string("{}"), std::string(R"({"password":"short"})"),
          std::string(R"({"password":12345678})")}) {
        CAPTURE(body);
        const auto r = call(g.a->port, admin, "POST", target, body);
        CHECK(r.status == 400);
        CHECK(has(r.body, "{\"error\":\""));
    }
    auto r =
        call(g.a->port, admin, "POST", "/api/admin/agents/" + std::to_string(foreign) + "/password",
             R"({"password":"takeover-pass"})");
    CHECK(r.status == 404);
    CHECK(other.value("SELECT COUNT(*) FROM agents WHERE id = ? AND password_hash = ?",
                      {foreign, other.value("SELECT password_hash FROM agents WHERE id = ?",
                                            {foreign})}) == "1");
    CHECK(http_call(
              g.a->port, "POST", "/api/agent/sign-in",
              R"({"clinic":")" + other.name + R"(","name":"别家客服","password":"takeover-pass"})")
              .status == 401);
    r = call(g.a->port, admin, "POST", "/api/admin/agents/" + std::to_string(agent_id) + "/reset",
             R"({"password":"whatever-pass"})");
    CHECK(r.status == 404);
    CHECK(c.value("SELECT password_hash FROM agents WHERE id = ?", {agent_id}) == before);
    CHECK(audit_count(c, "agent.password") == "0");
    CHECK(call(g.a->port, agent_session, "GET", "/api/agent/me", "").status == 200);

    r = call(g.a->port, admin, "POST", target, R"({"password":"fresh-secret-77"})");
    REQUIRE(r.status == 200);
    CHECK(r.body == "{\"agent\":{\"id\":" + std::to_string(agent_id) +
                        ",\"name\":\"客服甲\"},\"password_reset\":true}");
    const auto sign_in = [&](const std::string& pw) {
        return http_call(
                   g.b->port, "POST", "/api/agent/sign-in",
                   R"({"clinic":")" + c.name + R"(","name":"客服甲","password":")" + pw + "\"}")
            .status;
    };
    // Its sessions ended with the old password, on every instance; the admin's did not.
    CHECK(call(g.a->port, agent_session, "GET", "/api/agent/me", "").status == 401);
    CHECK(call(g.b->port, admin, "GET", "/api/agent/me", "").status == 200);
    CHECK(sign_in(password) == 401);
    CHECK(sign_in("fresh-secret-77") == 200);
    CHECK(c.value("SELECT CONCAT(actor_agent_id, ' ', subject, ' ', IFNULL(detail, 'none')) FROM "
                  "audit_log WHERE clinic_id = ? AND action = 'agent.password'",
                  {c.clinic}) ==
          std::to_string(admin_id) + " agent:" + std::to_string(agent_id) + " none");
    CHECK_FALSE(has(g.logs(), "fresh-secret-77"));
}

TEST_CASE("stores: created and renamed and listed with the rules of scrm-admin and audited") {
    clinic_fixture c;
    c.add_agent("管理员", password, false, std::nullopt, true, "admin");
    const auto east = c.add_store("东门店");
    c.add_agent("客服甲", password, true, east);
    clinic_fixture other;
    const auto foreign = other.add_store("别家门店");
    two_gateways g(c, gateway_bin);
    const auto admin = g.sign_in(g.a->port, "管理员", password);

    const std::string long_name(129, 'x');
    for (const std::string& body :
         {std::string("[]"), std::string("{}"), std::string(R"({"name":""})"),
          std::string(R"({"name":"西门店 "})"), std::string(R"({"name":")" + long_name + "\"}"),
          std::string(R"({"name":"西门店","city":"x"})"), std::string(R"({"name":7})")}) {
        CAPTURE(body);
        const auto r = call(g.a->port, admin, "POST", "/api/admin/stores", body);
        CHECK(r.status == 400);
        CHECK(has(r.body, "{\"error\":\""));
    }
    auto r = call(g.a->port, admin, "POST", "/api/admin/stores", R"({"name":"东门店"})");
    CHECK(r.status == 409);
    CHECK(r.body == R"({"error":"本诊所已有同名的门店"})");
    CHECK(count(c, "stores") == "1");

    r = call(g.a->port, admin, "POST", "/api/admin/stores", R"({"name":"西门店"})");
    REQUIRE(r.status == 201);
    const std::string west = number_after(r.body, "id");
    CHECK(r.body == "{\"store\":{\"id\":" + west +
                        ",\"name\":\"西门店\",\"active_agents\":0,\"qr_codes\":[]}}");
    CHECK(c.value("SELECT name FROM stores WHERE id = ? AND clinic_id = ?", {west, c.clinic}) ==
          "西门店");

    r = call(g.a->port, admin, "PUT", "/api/admin/stores/" + west, R"({"name":"东门店"})");
    CHECK(r.status == 409);
    r = call(g.a->port, admin, "PUT", "/api/admin/stores/" + std::to_string(foreign),
             R"({"name":"抢来的"})");
    CHECK(r.status == 404);
    CHECK(r.body == R"({"error":"门店不存在"})");
    CHECK(other.value("SELECT name FROM stores WHERE id = ?", {foreign}) == "别家门店");
    r = call(g.a->port, admin, "PUT", "/api/admin/stores/" + west, R"({"name":""})");
    CHECK(r.status == 400);
    CHECK(c.value("SELECT name FROM stores WHERE id = ?", {west}) == "西门店");

    r = call(g.a->port, admin, "PUT", "/api/admin/stores/" + west, R"({"name":"西湖店"})");
    REQUIRE(r.status == 200);
    CHECK(has(r.body, "\"changed\":{\"name\":{\"before\":\"西门店\",\"after\":\"西湖店\"}}"));
    CHECK(c.value("SELECT name FROM stores WHERE id = ?", {west}) == "西湖店");

    const auto list = call(g.a->port, admin, "GET", "/api/admin/stores");
    REQUIRE(list.status == 200);
    CHECK(list.body == "{\"stores\":[{\"id\":" + std::to_string(east) +
                           ",\"name\":\"东门店\",\"active_agents\":1,\"qr_codes\":[]},{\"id\":" +
                           west + ",\"name\":\"西湖店\",\"active_agents\":0,\"qr_codes\":[]}]}");
    CHECK(c.value("SELECT detail FROM audit_log WHERE clinic_id = ? AND action = 'store.create'",
                  {c.clinic}) == R"({"name":"西门店"})");
    CHECK(c.value("SELECT detail FROM audit_log WHERE clinic_id = ? AND action = 'store.rename'",
                  {c.clinic}) == R"({"name":{"before":"西门店","after":"西湖店"}})");
}

TEST_CASE("a store's permanent QR code is made once through WeChat and kept for printing") {
    fakes::fake_wechat fake;
    REQUIRE(fake.start().has_value());
    clinic_fixture c;
    fakes::account acc;
    acc.appid = c.appid;
    acc.secret = "0123456789abcdef0123456789abcdef";  // the fixture's sealed AppSecret
    acc.token = clinic_fixture::token;
    acc.original_id = clinic_fixture::original_id;
    REQUIRE(fake.api().add_account(acc).has_value());
    c.add_agent("管理员", password, false, std::nullopt, true, "admin");
    const auto store = c.add_store("东门店");
    clinic_fixture other;
    const auto foreign = other.add_store("别家门店");
    two_gateways g(c, gateway_bin, {"SCRM_WECHAT_API_BASE_URL=" + fake.url()});
    const auto admin = g.sign_in(g.a->port, "管理员", password);
    const std::string target = "/api/admin/stores/" + std::to_string(store) + "/qr";
    const std::string account = std::to_string(c.account);

    // Bad input and other clinics' stores or accounts: nothing asked of WeChat, nothing stored.
    for (const std::string& body : {std::string("{}"), std::string(R"({"account_id":"1"})"),
                                    std::string(R"({"account_id":0})")}) {
        CAPTURE(body);
        const auto r = call(g.a->port, admin, "POST", target, body);
        CHECK(r.status == 400);
        CHECK(r.body == R"({"error":"请填写公众号编号（account_id）"})");
    }
    auto r = call(g.a->port, admin, "POST", target,
                  R"({"account_id":)" + std::to_string(other.account) + "}");
    CHECK(r.status == 404);
    CHECK(r.body == R"({"error":"公众号不存在"})");
    r = call(g.a->port, admin, "POST", "/api/admin/stores/" + std::to_string(foreign) + "/qr",
             R"({"account_id":)" + account + "}");
    CHECK(r.status == 404);
    CHECK(r.body == R"({"error":"门店不存在"})");
    CHECK(fake.api().calls("qrcode_create").empty());

    // WeChat refuses (the account lacks the permission): 502, nothing stored.
    fakes::fault f;
    f.api = "qrcode_create";
    f.errcode = 48001;
    fake.api().inject(f);
    r = call(g.a->port, admin, "POST", target, R"({"account_id":)" + account + "}");
    CHECK(r.status == 502);
    CHECK(has(r.body, "48001"));
    CHECK(c.value("SELECT COUNT(*) FROM store_qr_codes WHERE store_id = ?", {store}) == "0");
    CHECK(audit_count(c, "store.qr") == "0");

    r = call(g.a->port, admin, "POST", target, R"({"account_id":)" + account + "}");
    REQUIRE(r.status == 200);
    const auto calls = fake.api().calls("qrcode_create");
    REQUIRE(calls.size() == 2);
    CHECK(has(calls[1].body, "\"action_name\":\"QR_LIMIT_STR_SCENE\""));
    CHECK(has(calls[1].body, "\"scene_str\":\"store_" + std::to_string(store) + "\""));
    const std::string ticket =
        c.value("SELECT ticket FROM store_qr_codes WHERE store_id = ? AND account_id = ?",
                {store, c.account});
    const auto qr = fake.api().find_qr(ticket);
    REQUIRE(qr.has_value());
    CHECK(qr->permanent);
    CHECK(qr->scene == "store_" + std::to_string(store));
    CHECK(qr->appid == c.appid);
    CHECK(has(r.body, "\"scene\":\"store_" + std::to_string(store) + "\""));
    CHECK(has(r.body, "\"image_url\":\"https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket="));
    CHECK(c.value("SELECT detail FROM audit_log WHERE clinic_id = ? AND action = 'store.qr'",
                  {c.clinic}) ==
          "{\"account_id\":" + account + ",\"scene\":\"store_" + std::to_string(store) + "\"}");

    // Asked again (on the other instance): the stored code, no second WeChat call.
    const auto again = call(g.b->port, admin, "POST", target, R"({"account_id":)" + account + "}");
    CHECK(again.status == 200);
    CHECK(again.body == r.body);
    CHECK(fake.api().calls("qrcode_create").size() == 2);
    CHECK(audit_count(c, "store.qr") == "1");
    const auto list = call(g.a->port, admin, "GET", "/api/admin/stores");
    CHECK(has(list.body, "\"qr_codes\":[" + r.body.substr(6, r.body.size() - 7) + "]"));
}

namespace {

// A sealed column of the account, opened with the fixture's master key.
std::string opened(const clinic_fixture& c, const std::string& appid, const std::string& field) {
    const auto sealed = c.value(
        "SELECT IFNULL(" + field + "_sealed, 'none') FROM official_accounts WHERE appid = ?",
        {appid});
    if (sealed == "none") return sealed;
    auto box = gateway::secret_box::from_hex(clinic_fixture::master_hex);
    REQUIRE(box.has_value());
    auto plain = box->open(sealed, "official_accounts." + field + ":" + appid);
    REQUIRE(plain.has_value());
    return *plain;
}

}  // namespace

TEST_CASE(
    "official accounts: listed without secrets and added or updated with secrets write-only") {
    clinic_fixture c;
    const auto admin_id = c.add_agent("管理员", password, false, std::nullopt, true, "admin");
    clinic_fixture other;
    two_gateways g(c, gateway_bin);
    const auto admin = g.sign_in(g.a->port, "管理员", password);
    const std::string fixture_secret = "0123456789abcdef0123456789abcdef";

    auto r = call(g.a->port, admin, "GET", "/api/admin/accounts");
    REQUIRE(r.status == 200);
    CHECK(has(r.body,
              "{\"accounts\":[{\"id\":" + std::to_string(c.account) + ",\"appid\":\"" + c.appid +
                  "\",\"original_id\":\"" + clinic_fixture::original_id +
                  "\",\"safe_mode_only\":false,\"previous_aes_key\":false,\"updated_at\":\""));
    CHECK_FALSE(has(r.body, other.appid));
    CHECK_FALSE(has(r.body, fixture_secret));
    CHECK_FALSE(has(r.body, clinic_fixture::token));
    CHECK_FALSE(has(r.body, "v1."));

    std::string appid = c.appid;
    appid[2] = 'a';  // unique as the fixture's
    const std::string aes1(43, 'A'), aes2(43, 'B');
    const std::string good =
        R"({"appid":")" + appid +
        R"(","original_id":"gh_abcdef123456","token":"NewToken42","aes_key":")" + aes1 +
        R"(","secret":"fedcba9876543210fedcba9876543210"})";
    struct bad {
        std::string body, error;
        int status = 400;
    };
    const std::vector<bad> bads{
        {"[]", "请求内容须为 JSON 对象"},
        {"{}", "AppID（appid）须为 wx 加16位字母或数字"},
        {R"({"appid":"wx1","original_id":"gh_abcdef123456","token":"NewToken42","aes_key":")" +
             aes1 + R"(","secret":"fedcba9876543210fedcba9876543210"})",
         "AppID（appid）"},
        {R"({"appid":")" + appid +
             R"(","original_id":"gh_abcdef123456","token":"NewToken42","aes_key":"short","secret":"fedcba9876543210fedcba9876543210"})",
         "消息加解密密钥（aes_key"},
        {R"({"appid":")" + appid +
             R"(","original_id":"gh_abcdef123456","token":"NewToken42","aes_key":")" + aes1 +
             R"(","secret":"tiny"})",
         "开发者密码（secret"},
        {good.substr(0, good.size() - 1) + R"(,"safe_mode_only":"yes"})", "safe_mode_only"},
        {good.substr(0, good.size() - 1) + R"(,"clinic":"x"})", "未知的字段：clinic"},
        {R"({"appid":")" + other.appid +
             R"(","original_id":"gh_abcdef123456","token":"NewToken42","aes_key":")" + aes1 +
             R"(","secret":"fedcba9876543210fedcba9876543210"})",
         "该公众号（appid）已登记在其他诊所", 409},
    };
    for (const auto& b : bads) {
        CAPTURE(b.body);
        r = call(g.a->port, admin, "POST", "/api/admin/accounts", b.body);
        CHECK(r.status == b.status);
        CHECK(has(r.body, "{\"error\":\""));
        CHECK(has(r.body, b.error));
        CHECK_FALSE(has(r.body, "fedcba9876543210"));
    }
    CHECK(count(c, "official_accounts") == "1");
    CHECK(other.value(
              "SELECT CONCAT(clinic_id, ' ', original_id) FROM official_accounts WHERE id = ?",
              {other.account}) == std::to_string(other.clinic) + " " + clinic_fixture::original_id);
    CHECK(opened(other, other.appid, "secret") == fixture_secret);
    CHECK(audit_count(c, "account.add") == "0");

    r = call(g.a->port, admin, "POST", "/api/admin/accounts", good);
    REQUIRE(r.status == 200);
    const std::string id = number_after(r.body, "id");
    CHECK(has(r.body, "\"appid\":\"" + appid + "\",\"original_id\":\"gh_abcdef123456\""));
    CHECK_FALSE(has(r.body, "NewToken42"));
    CHECK_FALSE(has(r.body, "fedcba9876543210"));
    CHECK(c.value("SELECT clinic_id FROM official_accounts WHERE id = ?", {id}) ==
          std::to_string(c.clinic));
    // Sealed with the master key: the columns hold no plain text and open to what was sent.
    CHECK(c.value("SELECT COUNT(*) FROM official_accounts WHERE id = ? AND (secret_sealed LIKE "
                  "'%fedcba%' OR token_sealed LIKE '%NewToken%')",
                  {id}) == "0");
    CHECK(opened(c, appid, "secret") == "fedcba9876543210fedcba9876543210");
    CHECK(opened(c, appid, "token") == "NewToken42");
    CHECK(opened(c, appid, "aes_key") == aes1);
    CHECK(opened(c, appid, "aes_key_previous") == "none");
    CHECK(c.value("SELECT CONCAT(actor_agent_id, ' ', subject, ' ', detail) FROM audit_log WHERE "
                  "clinic_id = ? AND action = 'account.add'",
                  {c.clinic}) ==
          std::to_string(admin_id) + " account:" + id + " {\"appid\":\"" + appid +
              "\",\"fields\":[\"original_id\",\"token\",\"aes_key\",\"secret\"]}");

    // Updates: only the fields given; a new EncodingAESKey keeps the replaced one as previous.
    const std::string target = "/api/admin/accounts/" + id;
    for (const auto& [body, error] : std::vector<std::pair<std::string, std::string>>{
             {"{}", "请至少填写一项"},
             {R"({"appid":"wx0000000000000000"})", "AppID（appid）不能修改"},
             {R"({"token":"x"})", "令牌（token）须为3至32位字母或数字"},
             {R"({"aes_key_previous":")" + aes2 + "\"}", "未知的字段：aes_key_previous"}}) {
        CAPTURE(body);
        r = call(g.a->port, admin, "PUT", target, body);
        CHECK(r.status == 400);
        CHECK(has(r.body, error));
    }
    r = call(g.a->port, admin, "PUT", "/api/admin/accounts/" + std::to_string(other.account),
             R"({"safe_mode_only":true})");
    CHECK(r.status == 404);
    CHECK(r.body == R"({"error":"公众号不存在"})");
    CHECK(other.value("SELECT safe_mode_only FROM official_accounts WHERE id = ?",
                      {other.account}) == "0");
    CHECK(opened(c, appid, "token") == "NewToken42");
    CHECK(audit_count(c, "account.update") == "0");

    r = call(g.a->port, admin, "PUT", target,
             R"({"aes_key":")" + aes2 + R"(","secret":"0000111122223333","safe_mode_only":true})");
    REQUIRE(r.status == 200);
    CHECK(has(r.body, "\"safe_mode_only\":true,\"previous_aes_key\":true"));
    CHECK_FALSE(has(r.body, "0000111122223333"));
    CHECK(opened(c, appid, "aes_key") == aes2);
    CHECK(opened(c, appid, "aes_key_previous") == aes1);
    CHECK(opened(c, appid, "secret") == "0000111122223333");
    CHECK(opened(c, appid, "token") == "NewToken42");
    CHECK(c.value("SELECT CONCAT(original_id, ' ', safe_mode_only) FROM official_accounts WHERE "
                  "id = ?",
                  {id}) == "gh_abcdef123456 1");
    CHECK(c.value("SELECT detail FROM audit_log WHERE clinic_id = ? AND action = 'account.update'",
                  {c.clinic}) ==
          "{\"appid\":\"" + appid + "\",\"fields\":[\"aes_key\",\"secret\",\"safe_mode_only\"]}");
    // No secret in the gateways' logs or the audit.
    const auto logs = g.logs();
    for (const std::string& secret : std::vector<std::string>{"NewToken42", "fedcba9876543210",
                                                              "0000111122223333", aes1, aes2}) {
        CAPTURE(secret);
        CHECK_FALSE(has(logs, secret));
        CHECK(c.value("SELECT COUNT(*) FROM audit_log WHERE clinic_id = ? AND detail LIKE ?",
                      {c.clinic, "%" + secret + "%"}) == "0");
    }
}

TEST_CASE("account health: the recent WeChat errors that need a person per account") {
    clinic_fixture c;
    c.add_agent("管理员", password, false, std::nullopt, true, "admin");
    clinic_fixture other;
    two_gateways g(c, gateway_bin);
    const auto admin = g.sign_in(g.a->port, "管理员", password);

    auto r = call(g.a->port, admin, "GET", "/api/admin/health");
    REQUIRE(r.status == 200);
    CHECK(r.body == "{\"days\":7,\"accounts\":[{\"id\":" + std::to_string(c.account) +
                        ",\"appid\":\"" + c.appid + "\",\"ok\":true,\"problems\":[]}]}");

    // Outbox rows as the outbox leaves them (none due: no worker picks them up).
    const auto row = [](const clinic_fixture& f, const std::string& state, const std::string& code,
                        const std::string& error, const std::string& age) {
        f.execute(
            "INSERT INTO outbox (account_id, openid, kind, api_path, body, state, "
            "next_attempt_at, last_errcode, last_error, updated_at) VALUES (?, 'oHealth', "
            "'text', '/cgi-bin/message/custom/send', '{}', ?, NOW(3) + INTERVAL 1 DAY, " +
                code + ", ?, NOW(3) - INTERVAL " + age + ")",
            {f.account, state, error});
    };
    row(c, "failed", "40164", "invalid ip 203.0.113.7, not in whitelist (older)", "2 HOUR");
    row(c, "failed", "40164", "invalid ip 203.0.113.9, not in whitelist", "1 HOUR");
    row(c, "queued", "45009", "reach max api daily quota limit", "30 MINUTE");
    row(c, "failed", "45015", "response out of time limit", "10 MINUTE");  // the fan's window
    row(c, "sent", "NULL", "", "5 MINUTE");
    row(c, "failed", "48001", "api unauthorized", "8 DAY");  // older than the window
    row(other, "failed", "40164", "other clinic", "1 HOUR");

    r = call(g.a->port, admin, "GET", "/api/admin/health");
    REQUIRE(r.status == 200);
    CHECK(has(r.body, "\"ok\":false"));
    CHECK(has(r.body, "{\"errcode\":45009,\"kind\":\"daily_quota\",\"advice\":\""));
    CHECK(has(r.body, "{\"errcode\":40164,\"kind\":\"ip_not_allowlisted\",\"advice\":\""));
    CHECK(has(r.body, "\"count\":2,"));
    CHECK(has(r.body, "\"last_error\":\"invalid ip 203.0.113.9, not in whitelist\"}"));
    CHECK(r.body.find("45009") < r.body.find("40164"));  // newest first
    CHECK_FALSE(has(r.body, "45015"));
    CHECK_FALSE(has(r.body, "48001"));
    CHECK_FALSE(has(r.body, "other clinic"));

    r = call(g.a->port, admin, "GET", "/api/admin/health?days=9");
    CHECK(has(r.body, "{\"errcode\":48001,\"kind\":\"unauthorized\""));
    for (const std::string& q :
         {std::string("?days=0"), std::string("?days=91"), std::string("?days=x")}) {
        CAPTURE(q);
        r = call(g.a->port, admin, "GET", "/api/admin/health" + q);
        CHECK(r.status == 400);
        CHECK(r.body == R"({"error":"days 须为 1 至 90 之间的整数"})");
    }
}

TEST_CASE(
    "retention: a clinic setting and the worker removes unfollowed fans' data once it passed") {
    clinic_fixture c("auto_reply_enabled", "0");
    const auto admin_id = c.add_agent("管理员", password, false, std::nullopt, true, "admin");
    clinic_fixture other;
    two_gateways g(c, gateway_bin);
    const auto admin = g.sign_in(g.a->port, "管理员", password);

    auto r = call(g.a->port, admin, "GET", "/api/admin/retention");
    CHECK(r.status == 200);
    CHECK(r.body == R"({"message_retention_days":null})");
    for (const std::string& body :
         {std::string("{}"), std::string("x"), std::string(R"({"message_retention_days":0})"),
          std::string(R"({"message_retention_days":3651})"),
          std::string(R"({"message_retention_days":"30"})"),
          std::string(R"({"message_retention_days":1.5})"),
          std::string(R"({"message_retention_days":30,"purge":true})")}) {
        CAPTURE(body);
        r = call(g.a->port, admin, "PUT", "/api/admin/retention", body);
        CHECK(r.status == 400);
        CHECK(has(r.body, "{\"error\":\""));
    }
    CHECK(c.value("SELECT IFNULL(message_retention_days, 'none') FROM clinics WHERE id = ?",
                  {c.clinic}) == "none");
    r = call(g.a->port, admin, "PUT", "/api/admin/retention", R"({"message_retention_days":30})");
    REQUIRE(r.status == 200);
    CHECK(
        r.body ==
        R"({"message_retention_days":30,"changed":{"message_retention_days":{"before":null,"after":30}}})");
    CHECK(c.value("SELECT CONCAT(actor_agent_id, ' ', subject, ' ', detail) FROM audit_log WHERE "
                  "clinic_id = ? AND action = 'retention.set'",
                  {c.clinic}) ==
          std::to_string(admin_id) +
              R"( retention {"message_retention_days":{"before":null,"after":30}})");
    CHECK(call(g.a->port, admin, "GET", "/api/admin/retention").body ==
          R"({"message_retention_days":30})");

    // Fans with messages through the webhook: one unfollowed 40 days ago (due), one 10 days ago,
    // one still following; and another clinic's fan unfollowed long ago (that clinic keeps all).
    std::uint64_t msg = 9'100'000'000ULL + c.clinic * 100;
    for (const std::string openid : {"oGone", "oGone", "oGone", "oRecent", "oFollowing"}) {
        REQUIRE(c.deliver(g.a->port, c.text_xml(openid, ++msg)).status == 200);
    }
    REQUIRE(other.deliver(g.a->port, other.text_xml("oOther", ++msg)).status == 200);
    const auto unfollow = [](const clinic_fixture& f, const std::string& openid, int days) {
        f.execute("UPDATE fans SET subscribed = 0, unsubscribed_at = NOW(3) - INTERVAL " +
                      std::to_string(days) + " DAY WHERE account_id = ? AND openid = ?",
                  {f.account, openid});
    };
    unfollow(c, "oGone", 40);
    unfollow(c, "oRecent", 10);
    unfollow(other, "oOther", 400);
    const std::string gone_message =
        c.value("SELECT MIN(id) FROM inbound_messages WHERE account_id = ? AND openid = 'oGone'",
                {c.account});
    const auto media_dir = g.dir / "w-media";
    const std::string relative = c.appid + "/" + gone_message + ".jpg";
    std::filesystem::create_directories(media_dir / c.appid);
    std::ofstream(media_dir / relative) << "jpeg bytes";
    c.execute(
        "INSERT INTO inbound_media (message_id, account_id, media_id, kind, state, "
        "expires_at, path) VALUES (?, ?, 'm1', 'image', 'fetched', NOW(3), ?)",
        {gone_message, c.account, relative});
    c.execute(
        "INSERT INTO outbox (account_id, openid, kind, api_path, body, state) VALUES (?, "
        "'oGone', 'text', '/cgi-bin/message/custom/send', '{}', 'sent')",
        {c.account});
    const auto count_of = [&](const clinic_fixture& f, const std::string& table,
                              const std::string& openid) {
        return f.value("SELECT COUNT(*) FROM " + table + " WHERE account_id = ? AND openid = ?",
                       {f.account, openid});
    };
    CHECK(count_of(c, "inbound_messages", "oGone") == "3");
    CHECK(c.value("SELECT COUNT(*) FROM routing_receipts r JOIN inbound_messages m ON m.id = "
                  "r.message_id WHERE m.account_id = ? AND m.openid = 'oGone'",
                  {c.account}) == "3");

    // An instance running the workers (for this clinic only) purges within seconds of starting.
    g.env.push_back("SCRM_BACKGROUND_WORKERS=1");
    g.env.push_back("SCRM_WORKER_CLINICS=" + std::to_string(c.clinic));
    g.env.push_back("SCRM_WORKER_ACCOUNTS=" + std::to_string(c.account));
    g.env.push_back("SCRM_WECHAT_API_BASE_URL=http://127.0.0.1:" + std::to_string(free_port()));
    auto worker = g.start("w");
    CHECK(
        eventually([&] { return count_of(c, "fans", "oGone") == "0"; }, std::chrono::seconds(20)));
    CHECK(count_of(c, "inbound_messages", "oGone") == "0");
    CHECK(count_of(c, "outbox", "oGone") == "0");
    CHECK(c.value("SELECT COUNT(*) FROM inbound_media WHERE message_id = ?", {gone_message}) ==
          "0");
    CHECK(c.value("SELECT COUNT(*) FROM routing_receipts WHERE message_id = ?", {gone_message}) ==
          "0");
    CHECK_FALSE(std::filesystem::exists(media_dir / relative));
    // Not yet due, still following, or another clinic's: kept.
    CHECK(count_of(c, "fans", "oRecent") == "1");
    CHECK(count_of(c, "inbound_messages", "oRecent") == "1");
    CHECK(count_of(c, "inbound_messages", "oFollowing") == "1");
    CHECK(count_of(other, "inbound_messages", "oOther") == "1");
    CHECK(count_of(other, "fans", "oOther") == "1");
}

// Template settings, API keys and snippets through a real scrm-gateway on the shared Redis and
// MariaDB (docs/api.md "Template settings", "API keys", "Snippets"): admins only (agents get 403,
// except their own snippets); scrm-admin's rules; partial updates; bad input changes nothing;
// another clinic's admin sees and changes nothing of this clinic (404); every clinic-level change
// has its audit row and agents' own snippets none; the limits hold.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "clinic_fixture.hpp"
#include "http_client.hpp"
#include "scrm/gateway/http.hpp"
#include "scrm/gateway/retention.hpp"
#include "scrm/gateway/services.hpp"
#include "scrm/storage/mysql.hpp"
#include "scrm/templates/notifier.hpp"
#include "test_env.hpp"
#include "two_gateways.hpp"

using namespace scrm;
using namespace scrm::test;

namespace {

const std::string gateway_bin = SCRM_GATEWAY_BIN;
const std::string password = "admin-rest-1";

http_reply call(std::uint16_t port, const std::string& token, const std::string& method,
                const std::string& target, const std::string& body = {}) {
    return http_call(port, method, target, body, {{"Authorization", "Bearer " + token}});
}

// Signs in an agent of another clinic than the gateways' own fixture.
std::string sign_in_at(two_gateways& g, const clinic_fixture& f, const std::string& agent) {
    const auto r = http_call(g.a->port, "POST", "/api/agent/sign-in",
                             "{\"clinic\":" + gateway::json_quote(f.name) +
                                 ",\"name\":" + gateway::json_quote(agent) +
                                 ",\"password\":" + gateway::json_quote(password) + "}");
    INFO(r.body);
    REQUIRE(r.status == 200);
    const auto at = r.body.find("\"token\":\"") + 9;
    g.tokens.push_back(r.body.substr(at, 64));
    return g.tokens.back();
}

// The text after "name": in a JSON text (the first one), up to the next , } or ].
std::string value_after(const std::string& json, const std::string& name) {
    const std::string key = "\"" + name + "\":";
    const auto at = json.find(key);
    if (at == std::string::npos) return {};
    const auto start = at + key.size();
    return json.substr(start, json.find_first_of(",}]", start) - start);
}

std::string audits(const clinic_fixture& c, const std::string& action) {
    return c.value("SELECT COUNT(*) FROM audit_log WHERE clinic_id = ? AND action = ?",
                   {c.clinic, action});
}

std::string all_audits(const clinic_fixture& c) {
    return c.value("SELECT COUNT(*) FROM audit_log WHERE clinic_id = ?", {c.clinic});
}

// A clinic with an admin and an agent, another clinic with its admin, and a gateway.
struct setup {
    clinic_fixture c, other;
    std::uint64_t admin_id = 0, agent_id = 0;
    two_gateways g;
    std::string admin, agent, foreign_admin;
    setup()
        : admin_id(c.add_agent("管理员", password, false, std::nullopt, true, "admin")),
          agent_id(c.add_agent("客服甲", password)),
          g(c, gateway_bin) {
        other.add_agent("别家管理员", password, false, std::nullopt, true, "admin");
        admin = g.sign_in(g.a->port, "管理员", password);
        agent = g.sign_in(g.a->port, "客服甲", password);
        foreign_admin = sign_in_at(g, other, "别家管理员");
    }
    http_reply as_admin(const std::string& method, const std::string& target,
                        const std::string& body = {}) {
        return call(g.a->port, admin, method, target, body);
    }
};

const std::string keywords_ok =
    R"([{"keyword":"thing1","value":"{{doctor}} {{store}}"},{"keyword":"time2","value":"{{appointment_time}}"}])";

}  // namespace

TEST_CASE("template settings api keys and snippet groups are for admins only") {
    setup s;
    struct row {
        std::string method, target;
    };
    const std::vector<row> rows{
        {"GET", "/api/admin/templates"},
        {"PUT", "/api/admin/templates/appointment_created"},
        {"GET", "/api/admin/api-keys"},
        {"POST", "/api/admin/api-keys"},
        {"POST", "/api/admin/api-keys/x/revoke"},
        {"GET", "/api/admin/snippet-groups"},
        {"POST", "/api/admin/snippet-groups"},
        {"PUT", "/api/admin/snippet-groups/1"},
        {"DELETE", "/api/admin/snippet-groups/1"},
        {"POST", "/api/admin/snippet-groups/1/snippets"},
        {"PUT", "/api/admin/snippets/1"},
        {"DELETE", "/api/admin/snippets/1"},
    };
    for (const auto& [method, target] : rows) {
        CAPTURE(method, target);
        CHECK(http_call(s.g.a->port, method, target, "{}").status == 401);
        const auto refused = call(s.g.a->port, s.agent, method, target, "{}");
        CHECK(refused.status == 403);
        CHECK(refused.body == R"({"error":"仅管理员可以使用此功能"})");
        const auto allowed = s.as_admin(method, target, "{}");
        CHECK(allowed.status != 403);
        CHECK(allowed.status != 401);
    }
    // The agents' own snippets need a sign-in, any role.
    CHECK(http_call(s.g.a->port, "GET", "/api/snippets").status == 401);
    CHECK(http_call(s.g.a->port, "POST", "/api/agent/snippets", R"({"text":"x"})").status == 401);
    CHECK(call(s.g.a->port, s.agent, "GET", "/api/snippets").status == 200);
    CHECK(all_audits(s.c) == "0");
    CHECK(s.c.value("SELECT COUNT(*) FROM api_keys WHERE clinic_id = ?", {s.c.clinic}) == "0");
    CHECK(s.c.value("SELECT COUNT(*) FROM template_settings WHERE clinic_id = ?", {s.c.clinic}) ==
          "0");
}

TEST_CASE("template settings: listed per kind and set partially with scrm-admin's rules") {
    setup s;
    auto r = s.as_admin("GET", "/api/admin/templates");
    REQUIRE(r.status == 200);
    CHECK(has(
        r.body,
        R"({"kind":"appointment_created","label":"预约创建提醒","fields":[{"name":"appointment_time","label":"预约时间","required":true},)"));
    CHECK(has(
        r.body,
        R"("configured":false,"template_id":null,"keywords":[],"url":null,"miniprogram":null,"enabled":false})"));
    CHECK(has(r.body,
              R"("builtin_fields":[{"name":"patient_name","label":"患者姓名","required":false})"));
    CHECK_FALSE(has(r.body, R"("configured":true)"));

    const std::string target = "/api/admin/templates/appointment_created";
    struct bad {
        std::string body, error;
    };
    const std::vector<bad> bads{
        {"not json", "请求内容须为 JSON 对象"},
        {"{}", "请至少填写一项"},
        {R"({"template_id":"t1","colour":"red"})", "未知的字段：colour"},
        {R"({"template_id":7})", "模板ID（template_id）须为文字"},
        {R"({"keywords":"thing1"})", "关键词映射（keywords）"},
        {R"({"enabled":"on"})", "启用（enabled）须为 true 或 false"},
        {R"({"url":5})", "链接（url）"},
        {R"({"miniprogram":{"appid":"wx0123456789abcdef"}})", "小程序（miniprogram）"},
        // The setting after the change must pass validate(): a first setting needs keywords.
        {R"({"template_id":"tmpl-1"})", "keywords：关键词映射必须有1至10项"},
        {R"({"template_id":"bad id!","keywords":)" + keywords_ok + "}", "template_id："},
        {R"({"template_id":"tmpl-1","keywords":[{"keyword":"first","value":"x"}]})",
         "keywords[0].keyword：微信自2023年5月起不再显示first"},
        {R"({"template_id":"tmpl-1","keywords":[{"keyword":"thing1","value":"{{shoe_size}}"}]})",
         "keywords[0].value"},
        {R"({"template_id":"tmpl-1","keywords":)" + keywords_ok + R"(,"url":"ftp://x"})",
         "url：链接必须是http://或https://开头"},
    };
    for (const auto& b : bads) {
        CAPTURE(b.body);
        r = s.as_admin("PUT", target, b.body);
        CHECK(r.status == 400);
        CHECK(has(r.body, b.error));
    }
    r = s.as_admin("PUT", target,
                   R"({"template_id":"tmpl-1","keywords":[{"keyword":"remark","value":"x"}]})");
    CHECK(has(
        r.body,
        R"("problems":[{"field":"keywords[0].keyword","error":"微信自2023年5月起不再显示remark)"));
    r = s.as_admin("PUT", "/api/admin/templates/birthday", R"({"enabled":true})");
    CHECK(r.status == 404);
    CHECK(r.body == R"({"error":"未知的通知类型：birthday"})");
    CHECK(s.c.value("SELECT COUNT(*) FROM template_settings WHERE clinic_id = ?", {s.c.clinic}) ==
          "0");
    CHECK(all_audits(s.c) == "0");

    // A first setting: stored as scrm-admin stores it, audited with what changed.
    r = s.as_admin("PUT", target,
                   R"({"template_id":"tmpl-1","keywords":)" + keywords_ok +
                       R"(,"url":"https://clinic.example/a/{{appointment_id}}"})");
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(has(r.body, R"({"template":{"kind":"appointment_created",)"));
    CHECK(has(
        r.body,
        R"("configured":true,"template_id":"tmpl-1","keywords":)" + keywords_ok +
            R"(,"url":"https://clinic.example/a/{{appointment_id}}","miniprogram":null,"enabled":true},"changed":{"template_id":{"before":null,"after":"tmpl-1"},"keywords":{"before":[],"after":)" +
            keywords_ok +
            R"(},"url":{"before":null,"after":"https://clinic.example/a/{{appointment_id}}"},"enabled":{"before":false,"after":true}}})"));
    CHECK(s.c.value("SELECT CONCAT(template_id, ' ', keywords, ' ', url, ' ', enabled) FROM "
                    "template_settings WHERE clinic_id = ? AND kind = 'appointment_created'",
                    {s.c.clinic}) ==
          "tmpl-1 " + keywords_ok + " https://clinic.example/a/{{appointment_id}} 1");
    CHECK(s.c.value(
              "SELECT CONCAT(actor_agent_id, ' ', subject) FROM audit_log WHERE clinic_id = ? AND "
              "action = 'template.set'",
              {s.c.clinic}) == std::to_string(s.admin_id) + " appointment_created");

    // Only what is given changes; the same again changes and audits nothing.
    r = s.as_admin(
        "PUT", target,
        R"({"enabled":false,"url":null,"miniprogram":{"appid":"wx0123456789abcdef","page":"pages/a?id={{appointment_id}}"}})");
    REQUIRE(r.status == 200);
    CHECK(has(r.body, R"("template_id":"tmpl-1")"));
    CHECK(has(
        r.body,
        R"("changed":{"url":{"before":"https://clinic.example/a/{{appointment_id}}","after":null},"miniprogram":{"before":null,"after":{"appid":"wx0123456789abcdef","page":"pages/a?id={{appointment_id}}"}},"enabled":{"before":true,"after":false}}})"));
    CHECK(s.c.value("SELECT CONCAT(template_id, ' ', IFNULL(url, '-'), ' ', mp_appid, ' ', "
                    "enabled) FROM template_settings WHERE clinic_id = ?",
                    {s.c.clinic}) == "tmpl-1 - wx0123456789abcdef 0");
    r = s.as_admin("PUT", target, R"({"enabled":false})");
    CHECK(r.status == 200);
    CHECK(has(r.body, R"("changed":{}})"));
    CHECK(audits(s.c, "template.set") == "2");
    r = s.as_admin("GET", "/api/admin/templates");
    CHECK(has(r.body, R"("configured":true,"template_id":"tmpl-1")"));

    // Another clinic's admin sees its own clinic's settings, and sets only those.
    r = call(s.g.a->port, s.foreign_admin, "GET", "/api/admin/templates");
    REQUIRE(r.status == 200);
    CHECK_FALSE(has(r.body, "tmpl-1"));
    r = call(s.g.a->port, s.foreign_admin, "PUT", target, R"({"enabled":true})");
    CHECK(r.status == 400);  // nothing set there yet: needs template_id and keywords
    CHECK(s.c.value("SELECT enabled FROM template_settings WHERE clinic_id = ?", {s.c.clinic}) ==
          "0");
    CHECK(s.other.value("SELECT COUNT(*) FROM template_settings WHERE clinic_id = ?",
                        {s.other.clinic}) == "0");
}

TEST_CASE("api keys: created once revoked by name or id and other clinics' keys are 404") {
    setup s;
    struct bad {
        std::string body, error;
        int status = 400;
    };
    const std::vector<bad> bads{
        {"not json", "请求内容须为 JSON 对象"},
        {"{}", "密钥名称（name）"},
        {R"({"name":""})", "密钥名称（name）"},
        {R"({"name":" PMS"})", "密钥名称（name）"},
        {R"({"name":")" + std::string(65, 'k') + R"("})", "密钥名称（name）"},
        {R"({"name":"PMS","scope":"all"})", "未知的字段：scope"},
    };
    for (const auto& b : bads) {
        CAPTURE(b.body);
        const auto r = s.as_admin("POST", "/api/admin/api-keys", b.body);
        CHECK(r.status == b.status);
        CHECK(has(r.body, b.error));
    }
    CHECK(s.c.value("SELECT COUNT(*) FROM api_keys WHERE clinic_id = ?", {s.c.clinic}) == "0");

    auto r = s.as_admin("POST", "/api/admin/api-keys", R"({"name":"PMS 系统"})");
    INFO(r.body);
    REQUIRE(r.status == 201);
    CHECK(r.header("cache-control") == "no-store");
    const std::string key = value_after(r.body, "key").substr(1, 67);
    REQUIRE(templates::api_key_well_formed(key));
    const std::string id = value_after(r.body, "id");
    CHECK(
        has(r.body, R"("name":"PMS 系统","prefix":")" + key.substr(0, 10) + R"(","created_at":")"));
    CHECK(has(r.body, R"("revoked_at":null,"active":true})"));
    // Only the hash is stored; the key is in no log and no audit row.
    CHECK(s.c.value("SELECT key_hash FROM api_keys WHERE id = ?", {id}) ==
          templates::api_key_hash(key));
    CHECK(s.c.value("SELECT CONCAT(subject, ' ', detail) FROM audit_log WHERE clinic_id = ? AND "
                    "action = 'apikey.add'",
                    {s.c.clinic}) ==
          "PMS 系统 {\"id\":" + id + ",\"prefix\":\"" + key.substr(0, 10) + "\"}");
    CHECK_FALSE(has(s.g.logs(), key.substr(10)));
    // The key works for the integration API at once (a 400 for the empty event, not a 401).
    const auto event = [&] {
        return http_call(s.g.a->port, "POST", "/api/integration/events", "{}",
                         {{"Authorization", "Bearer " + key}});
    };
    CHECK(event().status == 400);

    r = s.as_admin("GET", "/api/admin/api-keys");
    CHECK(r.status == 200);
    CHECK(has(r.body, R"({"api_keys":[{"id":)" + id + R"(,"name":"PMS 系统")"));
    CHECK_FALSE(has(r.body, key.substr(10)));
    CHECK_FALSE(has(r.body, templates::api_key_hash(key)));

    r = s.as_admin("POST", "/api/admin/api-keys", R"({"name":"PMS 系统"})");
    CHECK(r.status == 409);
    CHECK(s.c.value("SELECT COUNT(*) FROM api_keys WHERE clinic_id = ?", {s.c.clinic}) == "1");

    // Another clinic's admin neither sees nor revokes it.
    r = call(s.g.a->port, s.foreign_admin, "GET", "/api/admin/api-keys");
    CHECK(r.body == R"({"api_keys":[]})");
    r = call(s.g.a->port, s.foreign_admin, "POST", "/api/admin/api-keys/" + id + "/revoke");
    CHECK(r.status == 404);
    CHECK(r.body == R"({"error":"API 密钥不存在"})");
    r = s.as_admin("POST", "/api/admin/api-keys/nobody/revoke");
    CHECK(r.status == 404);
    CHECK(event().status == 400);

    // Revoked by its name (percent-encoded): it stops working at once.
    r = s.as_admin("POST", "/api/admin/api-keys/PMS%20%E7%B3%BB%E7%BB%9F/revoke");
    REQUIRE(r.status == 200);
    CHECK(has(r.body, R"("active":false})"));
    CHECK(value_after(r.body, "revoked_at") != "null");
    CHECK(event().status == 401);
    CHECK(audits(s.c, "apikey.revoke") == "1");
    // By its id, again: already so, nothing audited.
    r = s.as_admin("POST", "/api/admin/api-keys/" + id + "/revoke");
    CHECK(r.status == 200);
    CHECK(has(r.body, R"("already_revoked":true})"));
    CHECK(audits(s.c, "apikey.revoke") == "1");

    // A second key by id.
    r = s.as_admin("POST", "/api/admin/api-keys", R"({"name":"billing"})");
    REQUIRE(r.status == 201);
    const std::string second = value_after(r.body, "id");
    r = s.as_admin("POST", "/api/admin/api-keys/" + second + "/revoke");
    CHECK(r.status == 200);
    CHECK(s.c.value("SELECT revoked_at IS NOT NULL FROM api_keys WHERE id = ?", {second}) == "1");
    CHECK(audits(s.c, "apikey.add") == "2");
}

TEST_CASE("snippet groups: created ordered renamed and removed by admins with audit and limits") {
    setup s;
    struct bad {
        std::string method, target, body, error;
    };
    const std::vector<bad> bads{
        {"POST", "/api/admin/snippet-groups", "x", "请求内容须为 JSON 对象"},
        {"POST", "/api/admin/snippet-groups", "{}", "请填写分组名称（name）"},
        {"POST", "/api/admin/snippet-groups", R"({"name":" 预约"})", "分组名称（name）"},
        {"POST", "/api/admin/snippet-groups", R"({"name":")" + std::string(65, 'g') + R"("})",
         "分组名称（name）"},
        {"POST", "/api/admin/snippet-groups", R"({"name":"预约","position":0})",
         "位置（position）"},
        {"POST", "/api/admin/snippet-groups", R"({"name":"预约","colour":1})",
         "未知的字段：colour"},
    };
    for (const auto& b : bads) {
        CAPTURE(b.body);
        const auto r = s.as_admin(b.method, b.target, b.body);
        CHECK(r.status == 400);
        CHECK(has(r.body, b.error));
    }
    CHECK(s.c.value("SELECT COUNT(*) FROM snippet_groups WHERE clinic_id = ?", {s.c.clinic}) ==
          "0");

    auto r = s.as_admin("POST", "/api/admin/snippet-groups", R"({"name":"预约"})");
    REQUIRE(r.status == 201);
    const std::string booking = value_after(r.body, "id");
    CHECK(r.body ==
          R"({"group":{"id":)" + booking + R"(,"name":"预约","position":1,"snippets":[]}})");
    r = s.as_admin("POST", "/api/admin/snippet-groups", R"({"name":"价格","position":1})");
    REQUIRE(r.status == 201);
    const std::string prices = value_after(r.body, "id");
    CHECK(has(r.body, R"("position":1)"));
    r = s.as_admin("POST", "/api/admin/snippet-groups", R"({"name":"预约"})");
    CHECK(r.status == 409);
    CHECK(r.body == R"({"error":"本诊所已有同名的快捷回复分组"})");

    // Snippets in a group, in order.
    const std::string into = "/api/admin/snippet-groups/" + booking + "/snippets";
    for (const auto& [body, error] : std::vector<std::pair<std::string, std::string>>{
             {"{}", "请填写快捷回复内容（text）"},
             {R"({"text":""})", "快捷回复内容（text）"},
             {R"({"text":")" + std::string(1001, 'a') + R"("})", "快捷回复内容（text）"},
             {R"({"text":"a\u0007b"})", "快捷回复内容（text）"},
             {R"({"text":"a","position":-1})", "位置（position）"}}) {
        CAPTURE(body);
        r = s.as_admin("POST", into, body);
        CHECK(r.status == 400);
        CHECK(has(r.body, error));
    }
    r = s.as_admin("POST", into, R"({"text":"您好，请问想预约哪一天？\n我们周一休息。"})");
    REQUIRE(r.status == 201);
    const std::string first = value_after(r.body, "id");
    CHECK(r.body == R"({"snippet":{"id":)" + first + R"(,"group_id":)" + booking +
                        R"(,"text":"您好，请问想预约哪一天？\n我们周一休息。","position":1}})");
    r = s.as_admin("POST", into, R"({"text":")" + std::string(1000, 'a') + R"(","position":1})");
    REQUIRE(r.status == 201);
    const std::string second = value_after(r.body, "id");
    r = s.as_admin("GET", "/api/admin/snippet-groups");
    REQUIRE(r.status == 200);
    CHECK(has(r.body, R"({"groups":[{"id":)" + prices +
                          R"(,"name":"价格","position":1,"snippets":[]},{"id":)" + booking +
                          R"(,"name":"预约","position":2,"snippets":[{"id":)" + second));
    CHECK(has(r.body, R"(},{"id":)" + first + R"(,"text":"您好)"));
    CHECK(has(
        r.body,
        R"("limits":{"groups":50,"snippets_per_group":200,"text_chars":1000,"name_chars":64}})"));

    // Renamed and moved; a snippet changed and moved.
    r = s.as_admin("PUT", "/api/admin/snippet-groups/" + booking,
                   R"({"name":"预约挂号","position":1})");
    REQUIRE(r.status == 200);
    CHECK(has(
        r.body,
        R"("changed":{"name":{"before":"预约","after":"预约挂号"},"position":{"before":2,"after":1}}})"));
    r = s.as_admin("PUT", "/api/admin/snippet-groups/" + prices, R"({"name":"预约挂号"})");
    CHECK(r.status == 409);
    r = s.as_admin("PUT", "/api/admin/snippet-groups/" + prices, R"({"name":"价格"})");
    CHECK(has(r.body, R"("changed":{}})"));
    r = s.as_admin("PUT", "/api/admin/snippets/" + first,
                   R"({"text":"请问哪天方便？","position":1})");
    REQUIRE(r.status == 200);
    CHECK(has(
        r.body,
        R"("changed":{"text":{"before":"您好，请问想预约哪一天？\n我们周一休息。","after":"请问哪天方便？"},"position":{"before":2,"after":1}}})"));
    r = s.as_admin("GET", "/api/admin/snippet-groups");
    CHECK(has(r.body, R"({"groups":[{"id":)" + booking +
                          R"(,"name":"预约挂号","position":1,"snippets":[{"id":)" + first +
                          R"(,"text":"请问哪天方便？"},{"id":)" + second));

    // Another clinic's admin: 404 on every one of them, nothing changed.
    const auto foreign = [&](const std::string& method, const std::string& target,
                             const std::string& body) {
        return call(s.g.a->port, s.foreign_admin, method, target, body);
    };
    CHECK(foreign("PUT", "/api/admin/snippet-groups/" + booking, R"({"name":"x"})").status == 404);
    CHECK(foreign("DELETE", "/api/admin/snippet-groups/" + booking, "").status == 404);
    CHECK(foreign("POST", into, R"({"text":"x"})").status == 404);
    CHECK(foreign("PUT", "/api/admin/snippets/" + first, R"({"text":"x"})").body ==
          R"({"error":"快捷回复不存在"})");
    CHECK(foreign("DELETE", "/api/admin/snippets/" + first, "").status == 404);
    CHECK(foreign("GET", "/api/admin/snippet-groups", "").body.rfind(R"({"groups":[],)", 0) == 0);
    CHECK(s.c.value("SELECT COUNT(*) FROM snippets WHERE group_id = ?", {booking}) == "2");

    // Audit rows: two groups created, one renamed and moved, two snippets created, one updated.
    CHECK(audits(s.c, "snippet_group.create") == "2");
    CHECK(audits(s.c, "snippet_group.update") == "1");
    CHECK(audits(s.c, "snippet.create") == "2");
    CHECK(
        s.c.value("SELECT CONCAT(actor_agent_id, ' ', subject) FROM audit_log WHERE clinic_id = ? "
                  "AND action = 'snippet.update'",
                  {s.c.clinic}) == std::to_string(s.admin_id) + " snippet:" + first);

    // Deleting a snippet, then the group with what is left.
    r = s.as_admin("DELETE", "/api/admin/snippets/" + second);
    CHECK(r.body == R"({"deleted":{"id":)" + second + R"(,"group_id":)" + booking + "}}");
    r = s.as_admin("DELETE", "/api/admin/snippet-groups/" + booking);
    CHECK(r.body == R"({"deleted":{"id":)" + booking + R"(,"name":"预约挂号","snippets":1}})");
    CHECK(s.c.value("SELECT COUNT(*) FROM snippets WHERE clinic_id = ?", {s.c.clinic}) == "0");
    CHECK(s.as_admin("DELETE", "/api/admin/snippet-groups/" + booking).status == 404);
    CHECK(audits(s.c, "snippet.delete") == "1");
    CHECK(audits(s.c, "snippet_group.delete") == "1");

    // The limits: 50 groups, 200 snippets in a group.
    for (int i = 0; i < 49; ++i) {
        s.c.execute("INSERT INTO snippet_groups (clinic_id, name, position) VALUES (?, ?, ?)",
                    {s.c.clinic, "g" + std::to_string(i), std::uint64_t(i + 10)});
    }
    r = s.as_admin("POST", "/api/admin/snippet-groups", R"({"name":"第51个"})");
    CHECK(r.status == 422);
    CHECK(r.body == R"({"error":"每个诊所最多50个快捷回复分组"})");
    for (int i = 0; i < 200; ++i) {
        s.c.execute(
            "INSERT INTO snippets (clinic_id, group_id, position, text) VALUES (?, ?, ?, 'x')",
            {s.c.clinic, prices, std::uint64_t(i + 1)});
    }
    r = s.as_admin("POST", "/api/admin/snippet-groups/" + prices + "/snippets",
                   R"({"text":"多一条"})");
    CHECK(r.status == 422);
    CHECK(r.body == R"({"error":"每个分组最多200条快捷回复"})");
    CHECK(s.c.value("SELECT COUNT(*) FROM snippet_groups WHERE clinic_id = ?", {s.c.clinic}) ==
          "50");
    CHECK(s.c.value("SELECT COUNT(*) FROM snippets WHERE group_id = ?", {prices}) == "200");
}

TEST_CASE("agents see the clinic's groups and keep their own snippets unaudited") {
    setup s;
    const auto second_id = s.c.add_agent("客服乙", password);
    const auto other_agent = s.g.sign_in(s.g.a->port, "客服乙", password);
    auto r = s.as_admin("POST", "/api/admin/snippet-groups", R"({"name":"常用"})");
    REQUIRE(r.status == 201);
    const std::string group = value_after(r.body, "id");
    r = s.as_admin("POST", "/api/admin/snippet-groups/" + group + "/snippets",
                   R"({"text":"欢迎光临"})");
    REQUIRE(r.status == 201);
    const std::string clinic_snippet = value_after(r.body, "id");
    const auto before = all_audits(s.c);

    const auto as_agent = [&](const std::string& method, const std::string& target,
                              const std::string& body = {}) {
        return call(s.g.a->port, s.agent, method, target, body);
    };
    for (const auto& [body, error] : std::vector<std::pair<std::string, std::string>>{
             {"[]", "请求内容须为 JSON 对象"},
             {"{}", "请填写快捷回复内容（text）"},
             {R"({"text":")" + std::string(1001, 'b') + R"("})", "快捷回复内容（text）"},
             {R"({"text":"x","group_id":1})", "未知的字段：group_id"}}) {
        CAPTURE(body);
        r = as_agent("POST", "/api/agent/snippets", body);
        CHECK(r.status == 400);
        CHECK(has(r.body, error));
    }
    r = as_agent("POST", "/api/agent/snippets", R"({"text":"稍等，我查一下"})");
    REQUIRE(r.status == 201);
    const std::string mine = value_after(r.body, "id");
    CHECK(r.body == R"({"snippet":{"id":)" + mine +
                        R"(,"group_id":null,"text":"稍等，我查一下","position":1}})");
    r = as_agent("POST", "/api/agent/snippets", R"({"text":"好的","position":1})");
    REQUIRE(r.status == 201);
    const std::string mine2 = value_after(r.body, "id");
    r = as_agent("GET", "/api/snippets");
    CHECK(r.body == R"({"groups":[{"id":)" + group +
                        R"(,"name":"常用","position":1,"snippets":[{"id":)" + clinic_snippet +
                        R"(,"text":"欢迎光临"}]}],"own":[{"id":)" + mine2 +
                        R"(,"text":"好的"},{"id":)" + mine + R"(,"text":"稍等，我查一下"}]})");
    // The other agent sees the clinic's groups, not these.
    r = call(s.g.a->port, other_agent, "GET", "/api/snippets");
    CHECK(has(r.body, "欢迎光临"));
    CHECK(has(r.body, R"("own":[]})"));

    r = as_agent("PUT", "/api/agent/snippets/" + mine, R"({"text":"请稍等"})");
    CHECK(r.status == 200);
    CHECK(has(r.body, R"("changed":{"text":{"before":"稍等，我查一下","after":"请稍等"}}})"));
    r = as_agent("PUT", "/api/agent/snippets/" + mine, "{}");
    CHECK(r.status == 400);
    // Not one's own: another agent's, the clinic's, another clinic's admin — all 404.
    CHECK(call(s.g.a->port, other_agent, "PUT", "/api/agent/snippets/" + mine, R"({"text":"x"})")
              .status == 404);
    CHECK(call(s.g.a->port, other_agent, "DELETE", "/api/agent/snippets/" + mine).status == 404);
    CHECK(as_agent("PUT", "/api/agent/snippets/" + clinic_snippet, R"({"text":"x"})").status ==
          404);
    CHECK(as_agent("DELETE", "/api/agent/snippets/" + clinic_snippet).status == 404);
    CHECK(call(s.g.a->port, s.foreign_admin, "DELETE", "/api/agent/snippets/" + mine).status ==
          404);
    // The admin manages the clinic's groups, not an agent's own.
    CHECK(s.as_admin("PUT", "/api/admin/snippets/" + mine, R"({"text":"x"})").status == 404);
    CHECK(s.c.value("SELECT text FROM snippets WHERE id = ?", {mine}) == "请稍等");
    CHECK(s.c.value("SELECT text FROM snippets WHERE id = ?", {clinic_snippet}) == "欢迎光临");

    r = as_agent("DELETE", "/api/agent/snippets/" + mine2);
    CHECK(r.body == R"({"deleted":{"id":)" + mine2 + R"(,"group_id":null}})");
    CHECK(all_audits(s.c) == before);  // own snippets are not audited

    // At most 200 of one's own.
    for (int i = 0; i < 199; ++i) {
        s.c.execute(
            "INSERT INTO snippets (clinic_id, agent_id, position, text) VALUES (?, ?, ?, 'y')",
            {s.c.clinic, s.agent_id, std::uint64_t(i + 10)});
    }
    r = as_agent("POST", "/api/agent/snippets", R"({"text":"多一条"})");
    CHECK(r.status == 422);
    CHECK(r.body == R"({"error":"个人快捷回复最多200条"})");
    CHECK(call(s.g.a->port, other_agent, "POST", "/api/agent/snippets", R"({"text":"我的"})")
              .status == 201);
    CHECK(s.c.value("SELECT COUNT(*) FROM snippets WHERE agent_id = ?", {second_id}) == "1");
}

TEST_CASE("retention removes integration events older than the kept days and never under 7") {
    clinic_fixture c, other;
    const auto event = [](const clinic_fixture& f, const std::string& key, int days) {
        f.execute(
            "INSERT INTO integration_events (clinic_id, idempotency_key, kind, request_hash, "
            "created_at) VALUES (?, ?, 'appointment_created', REPEAT('0', 64), NOW(3) - INTERVAL " +
                std::to_string(days) + " DAY)",
            {f.clinic, key});
    };
    event(c, "old-40", 40);
    event(c, "old-31", 31);
    event(c, "mid-10", 10);
    event(c, "new-6", 6);
    event(c, "new-0", 0);
    event(other, "foreign-40", 40);  // another clinic, outside the worker's scope
    const auto keys = [&c] {
        return c.value(
            "SELECT IFNULL(GROUP_CONCAT(idempotency_key ORDER BY created_at SEPARATOR ' '), '') "
            "FROM integration_events WHERE clinic_id = ?",
            {c.clinic});
    };
    boost::asio::io_context io;
    storage::mysql_pool pool(gateway::mysql_options_from(services_config().mysql));
    const auto pass = [&](std::uint32_t days) {
        gateway::retention_options o;
        o.clinics = {c.clinic};
        o.integration_event_days = days;
        o.events_per_batch = 1;  // several batches
        gateway::retention_worker w(io.get_executor(), pool, o);
        const auto r = run_sync(io, w.run_once());
        REQUIRE(r.has_value());
    };
    pass(30);
    CHECK(keys() == "mid-10 new-6 new-0");
    // Asked to keep 3 days, it keeps the promised 7.
    pass(3);
    CHECK(keys() == "new-6 new-0");
    CHECK(other.value("SELECT COUNT(*) FROM integration_events WHERE clinic_id = ?",
                      {other.clinic}) == "1");
}

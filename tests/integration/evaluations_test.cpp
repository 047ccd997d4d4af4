// Patient evaluations (docs/api.md "Evaluations") through a real scrm-gateway process on the
// shared Redis and MariaDB: invitations made with the function the "visit finished" event calls
// (the same master key as the gateway's), the patient's signed link answered once (bad input,
// reuse, expiry, tampering), the clinic's attributes with their limits and audit, the admin list
// filtered and paged, replies through the outbox or waiting for the notice, other clinics'
// evaluations out of reach, the statistics and both exports read back (the .xlsx with openpyxl).
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "clinic_fixture.hpp"
#include "http_client.hpp"
#include "scrm/gateway/evaluation_rules.hpp"
#include "scrm/gateway/evaluations.hpp"
#include "scrm/gateway/secret_box.hpp"
#include "scrm/gateway/services.hpp"
#include "scrm/gateway/text_rules.hpp"
#include "scrm/storage/mysql.hpp"
#include "test_env.hpp"
#include "two_gateways.hpp"

using namespace scrm;
using namespace scrm::test;
using namespace std::chrono_literals;

namespace {

const std::string gateway_bin = SCRM_GATEWAY_BIN;
const std::string password = "evaluations-1";

http_reply call(std::uint16_t port, const std::string& token, const std::string& method,
                const std::string& target, const std::string& body = {}) {
    return http_call(port, method, target, body, {{"Authorization", "Bearer " + token}});
}

// The link's token as the gateway (SCRM_MASTER_KEY = clinic_fixture::master_hex) checks it.
gateway::evaluation_tokens tokens() {
    auto box = gateway::secret_box::from_hex(clinic_fixture::master_hex);
    REQUIRE(box.has_value());
    return gateway::evaluation_tokens(box->derive_key(gateway::evaluation_key_label));
}

// What the "visit finished" event does: the invitation for a fan's visit.
gateway::evaluation_invitation invite(const clinic_fixture& c, const std::string& openid,
                                      const std::string& visit,
                                      std::optional<std::uint64_t> patient = std::nullopt) {
    storage::mysql_session db(gateway::mysql_options_from(c.cfg.mysql));
    gateway::evaluation_invite in{c.clinic, c.account, openid, patient, visit};
    auto made = gateway::create_evaluation_invitation(db, tokens(), in, std::chrono::hours(24));
    REQUIRE(made.has_value());
    return *made;
}

std::string token_of(const gateway::evaluation_invitation& inv) {
    return inv.path.substr(std::string("/eval/").size());
}

std::string all_good(const std::vector<std::string>& attrs, const std::string& comment = "") {
    std::string body = "{\"ratings\":{";
    for (std::size_t i = 0; i < attrs.size(); ++i) {
        body += (i ? "," : "") + gateway::json_quote(attrs[i]) + ":\"good\"";
    }
    return body + "},\"comment\":" + gateway::json_quote(comment) + "}";
}

const std::vector<std::string> defaults{"服务态度", "专业水平", "环境卫生", "等候时间"};

std::string ratings_with(const std::string& poor_one) {
    std::string body = "{\"ratings\":{";
    for (std::size_t i = 0; i < defaults.size(); ++i) {
        body += (i ? "," : "") + gateway::json_quote(defaults[i]) + ":" +
                (defaults[i] == poor_one ? "\"poor\"" : "\"good\"");
    }
    return body + "}}";
}

std::string state_of(const clinic_fixture& c, std::uint64_t id) {
    return c.value("SELECT state FROM evaluations WHERE id = ?", {id});
}

std::string audits(const clinic_fixture& c, const std::string& action) {
    return c.value("SELECT COUNT(*) FROM audit_log WHERE clinic_id = ? AND action = ?",
                   {c.clinic, action});
}

// Runs a command; its standard output.
std::string output_of(const std::string& command) {
    std::string out;
    FILE* p = ::popen(command.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    CHECK(::pclose(p) == 0);
    return out;
}

}  // namespace

TEST_CASE("evaluations: the admin endpoints are for admins only") {
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
        {"GET", "/api/admin/evaluation-attributes"},
        {"PUT", "/api/admin/evaluation-attributes"},
        {"GET", "/api/admin/evaluations"},
        {"GET", "/api/admin/evaluations/stats"},
        {"GET", "/api/admin/evaluations/export.csv"},
        {"GET", "/api/admin/evaluations/export.xlsx"},
        {"POST", "/api/admin/evaluations/1/reply"},
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
    CHECK(c.value("SELECT COUNT(*) FROM evaluation_attributes WHERE clinic_id = ?", {c.clinic}) ==
          "0");
}

TEST_CASE(
    "evaluation attributes: the defaults plus at most 10 of the clinic's own of at most 64 "
    "characters each - audited") {
    clinic_fixture c;
    c.add_agent("管理员", password, false, std::nullopt, true, "admin");
    two_gateways g(c, gateway_bin);
    const auto admin = g.sign_in(g.a->port, "管理员", password);

    auto r = call(g.a->port, admin, "GET", "/api/admin/evaluation-attributes");
    REQUIRE(r.status == 200);
    CHECK(
        r.body ==
        R"({"default":["服务态度","专业水平","环境卫生","等候时间"],"custom":[],"max_custom":10,"max_length":64})");

    r = call(g.a->port, admin, "PUT", "/api/admin/evaluation-attributes",
             R"({"custom":["前台接待","停车便利"]})");
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(has(r.body, R"("custom":["前台接待","停车便利"])"));
    CHECK(has(r.body, R"("changed":true)"));
    CHECK(audits(c, "evaluation.attributes") == "1");
    CHECK(c.value("SELECT detail FROM audit_log WHERE clinic_id = ? AND action = ?",
                  {c.clinic, "evaluation.attributes"}) ==
          R"({"before":[],"after":["前台接待","停车便利"]})");
    // The same list again changes nothing and audits nothing.
    r = call(g.a->port, admin, "PUT", "/api/admin/evaluation-attributes",
             R"({"custom":["前台接待","停车便利"]})");
    CHECK(has(r.body, R"("changed":false)"));
    CHECK(audits(c, "evaluation.attributes") == "1");

    std::string eleven = "[";
    for (int i = 0; i < 11; ++i) eleven += (i ? ",\"项" : "\"项") + std::to_string(i) + "\"";
    eleven += "]";
    std::string long_name;
    for (int i = 0; i < 65; ++i) long_name += "长";
    struct bad {
        std::string name, body, expected;
    };
    const std::vector<bad> bad_inputs{
        {"eleven", "{\"custom\":" + eleven + "}", "自定义评价属性最多10个（已填写11个）"},
        {"65 characters", "{\"custom\":[\"" + long_name + "\"]}",
         "第1个自定义评价属性超过64个字符（65个）"},
        {"duplicate", R"({"custom":["甲","甲"]})", "第2个自定义评价属性“甲”重复"},
        {"default", R"({"custom":["环境卫生"]})",
         "第1个自定义评价属性“环境卫生”与默认评价属性重复"},
        {"not a list", R"({"custom":"甲"})", "请填写自定义评价属性（custom：字符串数组，可为空）"},
        {"not json", "[", "请求内容必须是 JSON 对象"},
    };
    for (const auto& b : bad_inputs) {
        CAPTURE(b.name);
        r = call(g.a->port, admin, "PUT", "/api/admin/evaluation-attributes", b.body);
        CHECK(r.status == 400);
        CHECK(r.body == "{\"error\":" + gateway::json_quote(b.expected) + "}");
    }
    // Nothing changed, nothing more audited.
    CHECK(c.value("SELECT GROUP_CONCAT(name ORDER BY position) FROM evaluation_attributes WHERE "
                  "clinic_id = ?",
                  {c.clinic}) == "前台接待,停车便利");
    CHECK(audits(c, "evaluation.attributes") == "1");

    // Ten names of 64 characters: the limits themselves are allowed.
    std::string ten = "[";
    for (int i = 0; i < 10; ++i) {
        std::string name = std::to_string(i);
        while (gateway::utf8_chars(name).value_or(0) < 64) name += "字";
        ten += (i ? "," : "") + gateway::json_quote(name);
    }
    r = call(g.a->port, admin, "PUT", "/api/admin/evaluation-attributes",
             "{\"custom\":" + ten + "]}");
    CHECK(r.status == 200);
    CHECK(c.value("SELECT COUNT(*) FROM evaluation_attributes WHERE clinic_id = ?", {c.clinic}) ==
          "10");
}

TEST_CASE(
    "evaluations: a patient answers the signed link once - bad input changes nothing and a used or "
    "expired link is refused") {
    clinic_fixture c;
    c.add_agent("管理员", password, false, std::nullopt, true, "admin");
    c.set_fan("oEval1");
    two_gateways g(c, gateway_bin);
    const auto admin = g.sign_in(g.a->port, "管理员", password);
    REQUIRE(call(g.a->port, admin, "PUT", "/api/admin/evaluation-attributes",
                 R"({"custom":["前台接待"]})")
                .status == 200);

    const auto inv = invite(c, "oEval1", "visit-1");
    CHECK(inv.created);
    CHECK(inv.path.rfind("/eval/", 0) == 0);
    // The same visit again (a repeated event): the same evaluation and link.
    const auto again = invite(c, "oEval1", "visit-1");
    CHECK_FALSE(again.created);
    CHECK(again.path == inv.path);
    CHECK(c.value("SELECT COUNT(*) FROM evaluations WHERE clinic_id = ?", {c.clinic}) == "1");
    // An account that is not the clinic's: refused.
    {
        storage::mysql_session db(gateway::mysql_options_from(c.cfg.mysql));
        gateway::evaluation_invite other{c.clinic, c.account + 1000000, "oEval1", std::nullopt,
                                         "visit-x"};
        auto made = gateway::create_evaluation_invitation(db, tokens(), other, 1h);
        CHECK(made.error() == make_error_code(errc::not_found));
        gateway::evaluation_invite empty{c.clinic, c.account, "oEval1", std::nullopt, ""};
        CHECK(gateway::create_evaluation_invitation(db, tokens(), empty, 1h).error() ==
              make_error_code(errc::bad_input));
    }

    // The page, in Chinese, with no Referer leaking the token.
    auto page = http_call(g.a->port, "GET", inv.path);
    CHECK(page.status == 200);
    CHECK(has(page.header("content-type"), "text/html"));
    CHECK(has(page.body, "服务评价"));
    CHECK(page.header("referrer-policy") == "no-referrer");

    const std::string api = "/api/eval/" + token_of(inv);
    auto r = http_call(g.a->port, "GET", api);
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(has(r.body, "\"clinic\":" + gateway::json_quote(c.name)));
    CHECK(has(r.body, R"("state":"awaiting")"));
    CHECK(has(r.body, R"("attributes":["服务态度","专业水平","环境卫生","等候时间","前台接待"])"));
    CHECK_FALSE(has(r.body, "oEval1"));  // the fan's openid is not shown

    // A tampered or unknown link.
    std::string tampered = api;
    tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
    for (const std::string& target :
         {tampered, std::string("/api/eval/1.xyz"), std::string("/api/eval/")}) {
        CAPTURE(target);
        CHECK(http_call(g.a->port, "GET", target).status == 404);
        CHECK(http_call(g.a->port, "POST", target, all_good(defaults)).body ==
              R"({"error":"评价链接无效，请从微信消息中重新打开"})");
    }
    CHECK(http_call(g.a->port, "GET", "/eval/1.xyz").status == 404);

    std::vector<std::string> asked = defaults;
    asked.push_back("前台接待");
    std::string long_comment;
    for (int i = 0; i < 501; ++i) long_comment += "言";
    struct bad {
        std::string name, body, expected;
    };
    const std::vector<bad> bad_inputs{
        {"one missing", all_good(defaults), "请为“前台接待”选择好、中或差"},
        {"unknown", R"({"ratings":{"停车":"good"}})", "评价项目“停车”不在本次评价中"},
        {"bad rating", R"({"ratings":{"服务态度":"5"}})",
         "“服务态度”的评价只能是好（good）、中（average）或差（poor）"},
        {"long comment", all_good(asked, long_comment), "留言最多500个字符（已输入501个）"},
        {"not json", "ratings", "请求内容必须是 JSON 对象"},
    };
    for (const auto& b : bad_inputs) {
        CAPTURE(b.name);
        r = http_call(g.a->port, "POST", api, b.body);
        CHECK(r.status == 400);
        CHECK(r.body == "{\"error\":" + gateway::json_quote(b.expected) + "}");
    }
    CHECK(state_of(c, inv.id) == "awaiting");
    CHECK(c.value("SELECT COUNT(*) FROM evaluation_ratings WHERE evaluation_id = ?", {inv.id}) ==
          "0");

    std::string body = all_good(asked, "医生很耐心");
    body.replace(body.find("\"前台接待\":\"good\""), std::string("\"前台接待\":\"good\"").size(),
                 "\"前台接待\":\"average\"");
    r = http_call(g.a->port, "POST", api, body);
    INFO(r.body);
    CHECK(r.status == 200);
    CHECK(r.body == R"({"state":"submitted","rating":"average"})");
    CHECK(state_of(c, inv.id) == "submitted");
    CHECK(c.value("SELECT CONCAT_WS('|', overall, comment) FROM evaluations WHERE id = ?",
                  {inv.id}) == "average|医生很耐心");
    CHECK(c.value("SELECT GROUP_CONCAT(CONCAT(attribute, '=', rating) ORDER BY position) FROM "
                  "evaluation_ratings WHERE evaluation_id = ?",
                  {inv.id}) ==
          "服务态度=good,专业水平=good,环境卫生=good,等候时间=good,前台接待=average");

    // Used: a second submission is refused and changes nothing.
    r = http_call(g.a->port, "POST", api, all_good(asked, "再来一次"));
    CHECK(r.status == 409);
    CHECK(r.body == R"({"error":"您已提交过本次评价，不能重复提交"})");
    CHECK(c.value("SELECT comment FROM evaluations WHERE id = ?", {inv.id}) == "医生很耐心");
    // The page now shows what was given.
    r = http_call(g.a->port, "GET", api);
    CHECK(r.status == 200);
    CHECK(has(r.body, R"("state":"submitted")"));
    CHECK(has(r.body, R"("前台接待":"average")"));

    // Expired: refused with 410, even with a valid body, and nothing changes.
    const auto old = invite(c, "oEval1", "visit-2");
    c.execute(
        "UPDATE evaluations SET expires_at = CURRENT_TIMESTAMP(3) - INTERVAL 1 SECOND "
        "WHERE id = ?",
        {old.id});
    const std::string old_api = "/api/eval/" + token_of(old);
    r = http_call(g.a->port, "GET", old_api);
    CHECK(r.status == 410);
    CHECK(r.body == R"({"error":"评价链接已过期，感谢您的关注"})");
    r = http_call(g.a->port, "POST", old_api, all_good(asked));
    CHECK(r.status == 410);
    CHECK(state_of(c, old.id) == "awaiting");
}

TEST_CASE(
    "evaluations: admins list evaluations by state and rating - paged - and reply through WeChat "
    "or the "
    "reply-waiting notice - other clinics' evaluations are out of reach") {
    clinic_fixture c;
    c.add_agent("管理员", password, false, std::nullopt, true, "admin");
    c.execute("INSERT INTO patients (clinic_id, name) VALUES (?, ?)", {c.clinic, "张三"});
    const auto patient = std::stoull(
        c.value("SELECT id FROM patients WHERE clinic_id = ? AND name = ?", {c.clinic, "张三"}));
    two_gateways g(c, gateway_bin);
    const auto admin = g.sign_in(g.a->port, "管理员", password);

    const auto good = invite(c, "oList1", "v-good", patient);
    const auto poor = invite(c, "oList2", "v-poor");
    const auto waiting = invite(c, "oList3", "v-waiting");
    REQUIRE(http_call(g.a->port, "POST", "/api/eval/" + token_of(good), ratings_with("")).status ==
            200);
    REQUIRE(http_call(g.a->port, "POST", "/api/eval/" + token_of(poor), ratings_with("等候时间"))
                .status == 200);

    auto r = call(g.a->port, admin, "GET", "/api/admin/evaluations");
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(has(r.body, R"("total":3,"page":1,"page_size":20)"));
    CHECK(has(r.body, R"("patient":"张三")"));
    CHECK(has(r.body, R"("等候时间":"poor")"));
    // Newest first.
    CHECK(r.body.find("\"id\":" + std::to_string(waiting.id)) <
          r.body.find("\"id\":" + std::to_string(good.id)));
    r = call(g.a->port, admin, "GET", "/api/admin/evaluations?state=submitted");
    CHECK(has(r.body, R"("total":2)"));
    r = call(g.a->port, admin, "GET", "/api/admin/evaluations?state=awaiting");
    CHECK(has(r.body, R"("total":1)"));
    CHECK(has(r.body, "\"id\":" + std::to_string(waiting.id)));
    r = call(g.a->port, admin, "GET", "/api/admin/evaluations?rating=poor");
    CHECK(has(r.body, R"("total":1)"));
    CHECK(has(r.body, "\"id\":" + std::to_string(poor.id)));
    r = call(g.a->port, admin, "GET", "/api/admin/evaluations?rating=good&state=submitted");
    CHECK(has(r.body, R"("total":1)"));
    CHECK(has(r.body, "\"id\":" + std::to_string(good.id)));
    r = call(g.a->port, admin, "GET", "/api/admin/evaluations?page=2&page_size=2");
    CHECK(has(r.body, R"("total":3,"page":2,"page_size":2)"));
    CHECK(has(r.body, "\"id\":" + std::to_string(good.id)));
    CHECK_FALSE(has(r.body, "\"id\":" + std::to_string(poor.id)));
    for (const char* q : {"?state=open", "?rating=5", "?page=0", "?page_size=101"}) {
        CAPTURE(q);
        r = call(g.a->port, admin, "GET", std::string("/api/admin/evaluations") + q);
        CHECK(r.status == 400);
        CHECK(has(r.body, "\"error\":"));
    }

    // Replies: refused for one not yet submitted, for a bad text, for an unknown id.
    const auto reply_to = [&](std::uint64_t id, const std::string& body) {
        return call(g.a->port, admin, "POST",
                    "/api/admin/evaluations/" + std::to_string(id) + "/reply", body);
    };
    r = reply_to(waiting.id, R"({"text":"谢谢"})");
    CHECK(r.status == 409);
    CHECK(r.body == R"({"error":"顾客尚未提交评价，暂时不能回复"})");
    r = reply_to(good.id, R"({"text":""})");
    CHECK(r.status == 400);
    CHECK(r.body == R"({"error":"请填写回复内容（text）"})");
    CHECK(reply_to(999999999, R"({"text":"谢谢"})").status == 404);
    CHECK(call(g.a->port, admin, "POST", "/api/admin/evaluations/x/reply", R"({"text":"谢谢"})")
              .status == 404);
    CHECK(state_of(c, good.id) == "submitted");

    // No window open (the fan has not written): stored, the reply-waiting notice is needed.
    r = reply_to(good.id, R"({"text":"感谢您的好评"})");
    INFO(r.body);
    CHECK(r.status == 200);
    CHECK(has(r.body, R"("delivery":"notice_needed","outbox_id":null)"));
    CHECK(
        c.value("SELECT CONCAT_WS('|', state, reply, reply_delivery) FROM evaluations WHERE id = ?",
                {good.id}) == "replied|感谢您的好评|notice_needed");
    CHECK(c.value("SELECT COUNT(*) FROM outbox WHERE account_id = ? AND openid = ?",
                  {c.account, "oList1"}) == "0");
    // The patient's link shows the reply.
    CHECK(has(http_call(g.a->port, "GET", "/api/eval/" + token_of(good)).body,
              R"("reply":"感谢您的好评")"));
    // Replied: once only.
    r = reply_to(good.id, R"({"text":"再次感谢"})");
    CHECK(r.status == 409);
    CHECK(r.body == R"({"error":"该评价已回复过，不能重复回复"})");

    // The fan writes: the window opens and the reply goes out as a customer-service text.
    REQUIRE(c.deliver(g.a->port, c.text_xml("oList2", 880001, "等太久了")).status == 200);
    REQUIRE(eventually(
        [&] {
            return c.value(
                       "SELECT COUNT(*) FROM inbound_messages WHERE account_id = ? AND "
                       "openid = ?",
                       {c.account, "oList2"}) == "1";
        },
        5s));
    r = reply_to(poor.id, R"({"text":"抱歉让您久等，我们会改进"})");
    INFO(r.body);
    CHECK(r.status == 200);
    CHECK(has(r.body, R"("delivery":"sent")"));
    const std::string outbox = c.value(
        "SELECT CONCAT_WS('|', kind, origin) FROM outbox WHERE account_id = ? AND openid = ? AND "
        "origin LIKE 'evaluation:%'",
        {c.account, "oList2"});
    CHECK(outbox == "text|evaluation:" + std::to_string(poor.id));
    CHECK(has(c.value("SELECT body FROM outbox WHERE account_id = ? AND openid = ? AND origin "
                      "LIKE 'evaluation:%'",
                      {c.account, "oList2"}),
              "抱歉让您久等"));
    r = call(g.a->port, admin, "GET", "/api/admin/evaluations?state=replied");
    CHECK(has(r.body, R"("total":2)"));
    CHECK(audits(c, "evaluation.reply") == "2");

    // Another clinic's evaluation: not found, not listed, unchanged.
    clinic_fixture other;
    const auto theirs = invite(other, "oOther", "v-other");
    REQUIRE(
        http_call(g.a->port, "POST", "/api/eval/" + token_of(theirs), ratings_with("")).status ==
        200);
    r = reply_to(theirs.id, R"({"text":"不是我们的"})");
    CHECK(r.status == 404);
    CHECK(r.body == R"({"error":"评价不存在"})");
    CHECK(other.value("SELECT state FROM evaluations WHERE id = ?", {theirs.id}) == "submitted");
    r = call(g.a->port, admin, "GET", "/api/admin/evaluations");
    CHECK(has(r.body, R"("total":3)"));
    CHECK_FALSE(has(r.body, "\"id\":" + std::to_string(theirs.id) + ","));
}

TEST_CASE("evaluations: per-attribute statistics and the CSV and Excel exports") {
    clinic_fixture c;
    c.add_agent("管理员", password, false, std::nullopt, true, "admin");
    two_gateways g(c, gateway_bin);
    const auto admin = g.sign_in(g.a->port, "管理员", password);
    REQUIRE(call(g.a->port, admin, "PUT", "/api/admin/evaluation-attributes",
                 R"({"custom":["前台接待"]})")
                .status == 200);
    std::vector<std::string> asked = defaults;
    asked.push_back("前台接待");

    auto r = call(g.a->port, admin, "GET", "/api/admin/evaluations/stats");
    REQUIRE(r.status == 200);
    CHECK(has(r.body, R"({"name":"服务态度","good":0,"average":0,"poor":0})"));

    const auto e1 = invite(c, "oStat1", "s-1");
    const auto e2 = invite(c, "oStat2", "s-2");
    const auto e3 = invite(c, "oStat3", "s-3");
    std::string second = all_good(asked, "=HYPERLINK(\"x\"),\"很好\"");
    second.replace(second.find("\"服务态度\":\"good\""),
                   std::string("\"服务态度\":\"good\"").size(), "\"服务态度\":\"poor\"");
    REQUIRE(
        http_call(g.a->port, "POST", "/api/eval/" + token_of(e1), all_good(asked, "满意")).status ==
        200);
    REQUIRE(http_call(g.a->port, "POST", "/api/eval/" + token_of(e2), second).status == 200);

    r = call(g.a->port, admin, "GET", "/api/admin/evaluations/stats");
    INFO(r.body);
    CHECK(r.body == R"({"attributes":[{"name":"服务态度","good":1,"average":0,"poor":1},)"
                    R"({"name":"专业水平","good":2,"average":0,"poor":0},)"
                    R"({"name":"环境卫生","good":2,"average":0,"poor":0},)"
                    R"({"name":"等候时间","good":2,"average":0,"poor":0},)"
                    R"({"name":"前台接待","good":2,"average":0,"poor":0}]})");

    // CSV: UTF-8 with a BOM, a header, one line per evaluation (newest first), formulas
    // neutralised and quotes doubled.
    r = call(g.a->port, admin, "GET", "/api/admin/evaluations/export.csv");
    REQUIRE(r.status == 200);
    CHECK(r.header("content-type") == "text/csv; charset=utf-8");
    CHECK(has(r.header("content-disposition"), "evaluations.csv"));
    const std::string& csv = r.body;
    REQUIRE(csv.rfind("\xEF\xBB\xBF", 0) == 0);
    CHECK(csv.find(
              "\xEF\xBB\xBF编号,状态,总体评价,患者,OpenID,就诊编号,邀请时间（UTC）,提交时间（UTC）,"
              "服务态度,专业水平,环境卫生,等候时间,前台接待,留言,回复,回复时间（UTC）\r\n") == 0);
    CHECK(has(csv, "\r\n" + std::to_string(e3.id) + ",待评价,,,oStat3,s-3,"));
    CHECK(has(csv, "\r\n" + std::to_string(e2.id) + ",已评价,差,,oStat2,s-2,"));
    CHECK(has(csv, ",差,好,好,好,好,\"'=HYPERLINK(\"\"x\"\"),\"\"很好\"\"\",,\r\n"));
    CHECK(has(csv, ",好,好,好,好,好,满意,,\r\n"));
    // Filtered like the list.
    r = call(g.a->port, admin, "GET", "/api/admin/evaluations/export.csv?rating=poor");
    CHECK(has(r.body, "oStat2"));
    CHECK_FALSE(has(r.body, "oStat1"));
    CHECK(call(g.a->port, admin, "GET", "/api/admin/evaluations/export.csv?state=x").status == 400);

    // Excel: read back with openpyxl.
    r = call(g.a->port, admin, "GET", "/api/admin/evaluations/export.xlsx");
    REQUIRE(r.status == 200);
    CHECK(r.header("content-type") ==
          "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    const auto file = std::filesystem::temp_directory_path() /
                      ("scrm_eval_" + std::to_string(c.clinic) + ".xlsx");
    {
        std::ofstream out(file, std::ios::binary);
        out << r.body;
    }
    const std::string cells = output_of(
        "/usr/bin/python3 -c \"import openpyxl,sys\n"
        "ws = openpyxl.load_workbook(sys.argv[1]).active\n"
        "print(ws.title)\n"
        "for row in ws.iter_rows(values_only=True):\n"
        "    print('|'.join('' if v is None else str(v) for v in row))\" " +
        file.string());
    std::filesystem::remove(file);
    INFO(cells);
    CHECK(cells.rfind(
              "服务评价\n编号|状态|总体评价|患者|OpenID|就诊编号|邀请时间（UTC）|提交时间（UTC）|"
              "服务态度|专业水平|环境卫生|等候时间|前台接待|留言|回复|回复时间（UTC）\n",
              0) == 0);
    CHECK(has(cells, "\n" + std::to_string(e3.id) + "|待评价|||oStat3|s-3|"));
    CHECK(has(cells, "|差|好|好|好|好|=HYPERLINK(\"x\"),\"很好\"||\n"));
    CHECK(has(cells, "\n" + std::to_string(e1.id) + "|已评价|好||oStat1|s-1|"));
    CHECK(has(cells, "|好|好|好|好|好|满意||\n"));
}

TEST_CASE(
    "evaluations: racing invitations of one visit make one evaluation and racing "
    "submissions of one link store one") {
    clinic_fixture c;
    two_gateways g(c, gateway_bin);
    constexpr int racers = 8;
    std::vector<gateway::evaluation_invitation> made(racers);
    {
        std::vector<std::thread> threads;
        for (int i = 0; i < racers; ++i) {
            threads.emplace_back([&, i] {
                storage::mysql_session db(gateway::mysql_options_from(c.cfg.mysql));
                gateway::evaluation_invite in{c.clinic, c.account, "oRace", std::nullopt, "race-1"};
                auto r = gateway::create_evaluation_invitation(db, tokens(), in, 1h);
                if (r) {
                    made[static_cast<std::size_t>(i)] = *r;
                } else {
                    made[static_cast<std::size_t>(i)].token = r.error().message();
                }
            });
        }
        for (auto& t : threads) t.join();
    }
    int created = 0;
    for (const auto& m : made) {
        CAPTURE(m.token);
        CHECK(m.id != 0);
        CHECK(m.path == made[0].path);
        created += m.created ? 1 : 0;
    }
    CHECK(created == 1);
    CHECK(c.value("SELECT COUNT(*) FROM evaluations WHERE clinic_id = ?", {c.clinic}) == "1");

    std::vector<int> status(racers);
    {
        std::vector<std::thread> threads;
        for (int i = 0; i < racers; ++i) {
            threads.emplace_back([&, i] {
                status[static_cast<std::size_t>(i)] =
                    http_call(i % 2 ? g.a->port : g.b->port, "POST",
                              "/api/eval/" + token_of(made[0]), ratings_with("专业水平"))
                        .status;
            });
        }
        for (auto& t : threads) t.join();
    }
    CHECK(std::count(status.begin(), status.end(), 200) == 1);
    CHECK(std::count(status.begin(), status.end(), 409) == racers - 1);
    CHECK(c.value("SELECT COUNT(*) FROM evaluation_ratings WHERE evaluation_id = ?",
                  {made[0].id}) == "4");
}

// evaluation_rules.hpp: the attributes' limits, submissions, replies and list queries with their
// Chinese problems, the overall rating, the signed links and the CSV text.
#include <catch2/catch.hpp>

#include <array>

#include "scrm/gateway/evaluation_rules.hpp"
#include "scrm/gateway/secret_box.hpp"

using namespace scrm::gateway;

namespace {

std::string chars(std::size_t n, const std::string& one = "字") {
    std::string out;
    for (std::size_t i = 0; i < n; ++i) out += one;
    return out;
}

std::string names_json(std::size_t n) {
    std::string out = "[";
    for (std::size_t i = 0; i < n; ++i)
        out += (i ? ",\"属性" : "\"属性") + std::to_string(i) + "\"";
    return out + "]";
}

}  // namespace

TEST_CASE("evaluations: attribute updates keep the limits of 10 names of at most 64 characters") {
    struct row {
        std::string name, body, problem;  // problem empty: accepted
    };
    const auto r = GENERATE(values<row>({
        {"none", R"({"custom":[]})", ""},
        {"ten", "{\"custom\":" + names_json(10) + "}", ""},
        {"64 characters", "{\"custom\":[\"" + chars(64) + "\"]}", ""},
        {"eleven", "{\"custom\":" + names_json(11) + "}", "自定义评价属性最多10个（已填写11个）"},
        {"65 characters", "{\"custom\":[\"" + chars(65) + "\"]}",
         "第1个自定义评价属性超过64个字符（65个）"},
        {"empty name", R"({"custom":[""]})", "第1个自定义评价属性必须是1到64个字符"},
        {"leading space", R"({"custom":[" 前台"]})", "首尾不能有空格"},
        {"control", "{\"custom\":[\"a\\nb\"]}", "不能包含控制字符"},
        {"duplicate", R"({"custom":["前台","前台"]})", "第2个自定义评价属性“前台”重复"},
        {"default", R"({"custom":["服务态度"]})", "与默认评价属性重复"},
        {"number", R"({"custom":[1]})", "第1个自定义评价属性必须是文字"},
        {"missing", R"({})", "请填写自定义评价属性"},
        {"unknown", R"({"custom":[],"x":1})", "不认识的字段：x"},
        {"not json", "x", "请求内容必须是 JSON 对象"},
    }));
    CAPTURE(r.name);
    const auto parsed = parse_attribute_update(r.body);
    if (r.problem.empty()) {
        CHECK(parsed.value.has_value());
    } else {
        CHECK_FALSE(parsed.value.has_value());
        CHECK(parsed.problem.find(r.problem) != std::string::npos);
    }
}

TEST_CASE("evaluations: a submission rates every attribute asked once with good average or poor") {
    const std::vector<std::string> asked{"服务态度", "前台"};
    struct row {
        std::string name, body, problem;
    };
    const auto r = GENERATE(values<row>({
        {"ok", R"({"ratings":{"服务态度":"good","前台":"poor"},"comment":"很好"})", ""},
        {"no comment", R"({"ratings":{"服务态度":"good","前台":"average"}})", ""},
        {"missing one", R"({"ratings":{"服务态度":"good"}})", "请为“前台”选择好、中或差"},
        {"unknown", R"({"ratings":{"服务态度":"good","前台":"good","停车":"good"}})",
         "评价项目“停车”不在本次评价中"},
        {"bad value", R"({"ratings":{"服务态度":"great","前台":"good"}})",
         "“服务态度”的评价只能是好（good）、中（average）或差（poor）"},
        {"no ratings", R"({"comment":"x"})", "请为每一项评价选择好、中或差"},
        {"long comment",
         "{\"ratings\":{\"服务态度\":\"good\",\"前台\":\"good\"},\"comment\":\"" + chars(501) +
             "\"}",
         "留言最多500个字符（已输入501个）"},
        {"comment number", R"({"ratings":{"服务态度":"good","前台":"good"},"comment":3})",
         "留言必须是文字"},
        {"unknown field", R"({"ratings":{},"stars":5})", "不认识的字段：stars"},
    }));
    CAPTURE(r.name);
    const auto parsed = parse_submission(r.body, asked);
    if (r.problem.empty()) {
        REQUIRE(parsed.value.has_value());
        CHECK(parsed.value->ratings.size() == 2);
    } else {
        CHECK_FALSE(parsed.value.has_value());
        CHECK(parsed.problem == r.problem);
    }
}

TEST_CASE("evaluations: the overall rating is the worst one given") {
    CHECK(overall_rating({rating::good, rating::good}) == rating::good);
    CHECK(overall_rating({rating::good, rating::average}) == rating::average);
    CHECK(overall_rating({rating::average, rating::poor, rating::good}) == rating::poor);
}

TEST_CASE("evaluations: replies and list queries are validated") {
    CHECK(parse_reply(R"({"text":"感谢您的建议"})").value ==
          std::optional<std::string>("感谢您的建议"));
    CHECK(parse_reply(R"({"text":""})").problem == "请填写回复内容（text）");
    CHECK(parse_reply("{\"text\":\"" + chars(601) + "\"}").problem ==
          "回复最多600个字符（已输入601个）");
    CHECK(parse_reply("{\"text\":\"" + chars(600) + "\"}").value.has_value());
    CHECK(parse_reply(R"({"text":"  "})").problem.find("不能为空") != std::string::npos);

    const auto q = parse_evaluation_query("state=submitted&rating=poor&page=2&page_size=5");
    REQUIRE(q.value.has_value());
    CHECK(q.value->state == std::optional<std::string>("submitted"));
    CHECK(q.value->overall == std::optional<rating>(rating::poor));
    CHECK(q.value->page == 2);
    CHECK(q.value->page_size == 5);
    CHECK(parse_evaluation_query("").value->page_size == 20);
    CHECK(parse_evaluation_query("state=open").problem.find("状态（state）") == 0);
    CHECK(parse_evaluation_query("rating=bad").problem.find("评价（rating）") == 0);
    CHECK(parse_evaluation_query("page=0").problem.find("页码") == 0);
    CHECK(parse_evaluation_query("page_size=101").problem.find("每页条数") == 0);
    CHECK(parse_evaluation_query("page_size=1x").problem.find("每页条数") == 0);
}

TEST_CASE("evaluations: links are signed with a key derived from the master key") {
    const auto box = secret_box::from_hex(std::string(64, 'a'));
    REQUIRE(box.has_value());
    const evaluation_tokens tokens(box->derive_key("scrm evaluation links v1"));
    const std::string t = tokens.token_for(42);
    CHECK(t.rfind("42.", 0) == 0);
    CHECK(t.size() == 3 + 22);
    CHECK(tokens.verify(t) == std::optional<std::uint64_t>(42));
    // Another id with the same signature, a changed signature, another key: refused.
    CHECK_FALSE(tokens.verify("43" + t.substr(2)).has_value());
    std::string tampered = t;
    tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
    CHECK_FALSE(tokens.verify(tampered).has_value());
    const evaluation_tokens other(box->derive_key("another purpose"));
    CHECK_FALSE(other.verify(t).has_value());
    for (const char* bad : {"", ".", "42", "42.", "x.abc", "0."}) {
        CAPTURE(bad);
        CHECK_FALSE(tokens.verify(bad).has_value());
    }
    // A known answer (HMAC-SHA-256 twice, computed independently with Python's hmac).
    CHECK(tokens.token_for(1) == "1.cEEfb20BX_ELzIXVg1JiDg");
}

TEST_CASE("links: the purpose is signed - an evaluation token opens no waiting reply") {
    const auto box = secret_box::from_hex(std::string(64, 'a'));
    REQUIRE(box.has_value());
    const auto key = box->derive_key("one key");
    const link_signer evaluations("evaluation", key);
    const link_signer replies("waiting_reply", key);
    CHECK(evaluations.token_for(7) != replies.token_for(7));
    CHECK_FALSE(replies.verify(evaluations.token_for(7)).has_value());
    CHECK(replies.verify(replies.token_for(7)) == std::optional<std::uint64_t>(7));
    // evaluation_tokens is the "evaluation" signer: its links did not change.
    CHECK(evaluation_tokens(key).token_for(7) == evaluations.token_for(7));
}

TEST_CASE("evaluations: CSV for Excel: a BOM and quoted cells with formulas neutralised") {
    const std::string csv =
        csv_document({{"编号", "留言"}, {"1", "好,很\"好\"\n下次再来"}, {"2", "=1+1"}});
    CHECK(csv == "\xEF\xBB\xBF编号,留言\r\n1,\"好,很\"\"好\"\"\n下次再来\"\r\n2,'=1+1\r\n");
}

// The pure parts of the template settings, API keys and snippets endpoints: bodies read or
// refused with a reason in Chinese, a partial template change applied to the stored setting, and
// moving an item in an ordered list.
#include <catch2/catch.hpp>

#include "scrm/gateway/admin_rest_requests.hpp"

using namespace scrm;
using namespace scrm::gateway;

TEST_CASE("template updates: members read and applied to the stored setting") {
    auto u = parse_template_update(
        R"({"keywords":{"thing1":"{{doctor}}","time2":"{{appointment_time}}"},"url":null,"miniprogram":{"appid":"wx0123456789abcdef","page":"p"}})");
    REQUIRE(u.value.has_value());
    CHECK_FALSE(u.value->template_id.has_value());
    CHECK_FALSE(u.value->enabled.has_value());
    REQUIRE(u.value->keywords.has_value());
    CHECK(*u.value->keywords == std::vector<templates::keyword_mapping>{
                                    {"thing1", "{{doctor}}"}, {"time2", "{{appointment_time}}"}});
    CHECK(u.value->url == std::optional<std::string>(""));

    templates::template_setting stored;
    stored.kind = "appointment_created";
    stored.template_id = "t1";
    stored.url = "https://x";
    stored.enabled = false;
    const auto after = templates::updated(stored, "appointment_created", *u.value);
    CHECK(after.template_id == "t1");  // not given: kept
    CHECK(after.url.empty());          // null: removed
    CHECK(after.mp_appid == "wx0123456789abcdef");
    CHECK(after.mp_page == "p");
    CHECK_FALSE(after.enabled);
    // A new setting starts enabled.
    CHECK(templates::updated(std::nullopt, "bill_issued", {}).enabled);
    u = parse_template_update(R"({"miniprogram":null})");
    REQUIRE(u.value.has_value());
    stored.mp_appid = "wx0123456789abcdef";
    stored.mp_page = "p";
    const auto cleared = templates::updated(stored, "appointment_created", *u.value);
    CHECK(cleared.mp_appid.empty());
    CHECK(cleared.mp_page.empty());

    struct row {
        const char* body;
        const char* problem;
    };
    for (const row& r :
         std::vector<row>{{"", "JSON 对象"},
                          {"[]", "JSON 对象"},
                          {"{}", "请至少填写一项"},
                          {R"({"first":"x"})", "未知的字段：first"},
                          {R"({"template_id":null})", "模板ID"},
                          {R"({"keywords":[{"keyword":"thing1"}]})", "关键词映射"},
                          {R"({"keywords":[1]})", "关键词映射"},
                          {R"({"url":false})", "链接"},
                          {R"({"miniprogram":{"appid":"wx","page":"p","x":1}})", "小程序"},
                          {R"({"miniprogram":"wx"})", "小程序"},
                          {R"({"enabled":1})", "启用"}}) {
        CAPTURE(r.body);
        const auto p = parse_template_update(r.body);
        CHECK_FALSE(p.value.has_value());
        CHECK(p.problem.find(r.problem) != std::string::npos);
    }
}

TEST_CASE("api key names and snippet bodies: their rules") {
    CHECK(parse_api_key_name(R"({"name":"PMS 系统"})").value ==
          std::optional<std::string>("PMS 系统"));
    for (const char* bad : {"", R"({})", R"({"name":""})", R"({"name":"a "})", R"({"name":1})",
                            R"({"name":"a","b":1})"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_api_key_name(bad).value.has_value());
    }

    auto g = parse_snippet_group(R"({"name":"预约","position":3})", true);
    REQUIRE(g.value.has_value());
    CHECK(g.value->position == std::optional<std::size_t>(3));
    CHECK_FALSE(parse_snippet_group(R"({"position":3})", true).value.has_value());
    CHECK(parse_snippet_group(R"({"position":3})", false).value.has_value());
    CHECK(parse_snippet_group(R"({})", false).problem == "请至少填写一项：name 或 position");
    CHECK_FALSE(parse_snippet_group(R"({"name":"a","position":0})", true).value.has_value());
    CHECK_FALSE(parse_snippet_group(R"({"name":"a","position":1.5})", true).value.has_value());

    const std::string longest(snippet_text_max, 'a');
    auto t = parse_snippet(R"({"text":")" + longest + R"("})", true);
    CHECK(t.value.has_value());
    t = parse_snippet(R"({"text":"第一行\n第二行\t。"})", true);
    REQUIRE(t.value.has_value());
    CHECK(*t.value->text == "第一行\n第二行\t。");
    // 1000 characters, not bytes: 1000 Chinese characters pass.
    std::string chinese;
    for (std::size_t i = 0; i < snippet_text_max; ++i) chinese += "字";
    CHECK(parse_snippet(R"({"text":")" + chinese + R"("})", true).value.has_value());
    for (const std::string& bad :
         {std::string(R"({"text":""})"), R"({"text":")" + longest + R"(a"})",
          std::string(R"({"text":"a\u0000"})"), std::string(R"({"text":"a\u007f"})"),
          std::string(R"({})"), std::string(R"({"text":"a","pos":1})")}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_snippet(bad, true).value.has_value());
    }
    CHECK(parse_snippet(R"({"position":2})", false).value.has_value());
    CHECK_FALSE(parse_snippet(R"({"position":2})", true).value.has_value());
}

TEST_CASE("moved: an item to a 1-based place and the others in their order") {
    using ids = std::vector<std::uint64_t>;
    struct row {
        const char* name;
        std::uint64_t id;
        std::size_t position;
        ids expected;
    };
    const auto r = GENERATE(values<row>({
        {"to the front", 3, 1, {3, 1, 2, 4}},
        {"to the end", 1, 4, {2, 3, 4, 1}},
        {"past the end", 2, 99, {1, 3, 4, 2}},
        {"where it is", 2, 2, {1, 2, 3, 4}},
        {"one down", 2, 3, {1, 3, 2, 4}},
        {"not in the list", 9, 1, {1, 2, 3, 4}},
    }));
    CAPTURE(r.name);
    CHECK(moved({1, 2, 3, 4}, r.id, r.position) == r.expected);
}

// The console's pure input and output rules: list and history query strings with their cursors,
// LIKE escaping, the fan panel's bodies, the password change, display names and previews.
#include <catch2/catch.hpp>

#include <ostream>

#include "scrm/gateway/console_requests.hpp"

using namespace scrm::gateway;

namespace scrm::gateway {
std::ostream& operator<<(std::ostream& os, const list_query& q) {
    os << "{filter " << static_cast<int>(q.filter) << ", store "
       << (q.store ? std::to_string(*q.store) : "-") << ", q " << q.search.value_or("-")
       << ", cursor " << (q.cursor ? to_string(*q.cursor) : "-") << ", limit " << q.limit << "}";
    return os;
}
std::ostream& operator<<(std::ostream& os, const history_query& q) {
    return os << "{before " << (q.before ? to_string(*q.before) : "-") << ", limit " << q.limit
              << "}";
}
}  // namespace scrm::gateway

TEST_CASE("list queries: filter, store, search, cursor and limit, or the reason they are refused") {
    const auto with = [](auto change) {
        list_query q;
        change(q);
        return std::optional<list_query>(q);
    };
    struct row {
        const char* name;
        std::string query;
        std::optional<list_query> expected;
    };
    const auto r = GENERATE_COPY(values<row>({
        {"empty", "", list_query{}},
        {"mine", "filter=mine", with([](list_query& q) { q.filter = conversation_filter::mine; })},
        {"waiting", "filter=waiting",
         with([](list_query& q) { q.filter = conversation_filter::waiting; })},
        {"consultant waiting", "filter=consultant_waiting",
         with([](list_query& q) { q.filter = conversation_filter::consultant_waiting; })},
        {"unknown filter", "filter=everything", std::nullopt},
        {"store", "store=12", with([](list_query& q) { q.store = 12; })},
        {"store not an id", "store=0", std::nullopt},
        {"search trimmed", "q=+%E7%8E%8B+", with([](list_query& q) { q.search = "王"; })},
        {"blank search is none", "q=+++", list_query{}},
        {"search too long", "q=" + std::string(33, 'a'), std::nullopt},
        {"search with a control character", "q=a%01b", std::nullopt},
        {"search not UTF-8", "q=%FF", std::nullopt},
        {"cursor", "cursor=1796186000000.42", with([](list_query& q) {
             q.cursor = list_cursor{1796186000000, 42};
         })},
        {"cursor without a fan", "cursor=1796186000000.0", std::nullopt},
        {"cursor malformed", "cursor=abc", std::nullopt},
        {"limit", "limit=100", with([](list_query& q) { q.limit = 100; })},
        {"limit zero", "limit=0", std::nullopt},
        {"limit too big", "limit=101", std::nullopt},
        {"limit not a number", "limit=ten", std::nullopt},
    }));
    CAPTURE(r.name);
    const auto parsed = parse_list_query(r.query);
    CHECK(parsed.value == r.expected);
    CHECK(parsed.problem.empty() == r.expected.has_value());
}

TEST_CASE("history queries: before a cursor of both sides, and a limit") {
    CHECK(parse_history_query("").value == std::optional<history_query>(history_query{}));
    const auto both = parse_history_query("before=120.44&limit=5");
    REQUIRE(both.value.has_value());
    CHECK(both.value->before == std::optional<history_cursor>(history_cursor{120, 44}));
    CHECK(both.value->limit == 5);
    CHECK(parse_history_query("before=0.7").value->before ==
          std::optional<history_cursor>(history_cursor{0, 7}));
    for (const char* bad : {"before=0.0", "before=1", "before=a.b", "before=-1.2", "limit=0"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_history_query(bad).value.has_value());
    }
}

TEST_CASE("a search matches its text anywhere with LIKE's wildcards as plain characters") {
    CHECK(like_anywhere("王") == "%王%");
    CHECK(like_anywhere("50%_a\\") == "%50\\%\\_a\\\\%");
}

TEST_CASE("fan profile bodies: a remark and tags within their limits") {
    auto p = parse_fan_profile(R"({"remark":" 王女士 ","tags":["VIP","种植","VIP"]})");
    REQUIRE(p.value.has_value());
    CHECK(p.value->set_remark);
    CHECK(p.value->remark == std::optional<std::string>("王女士"));
    CHECK(p.value->tags == std::optional<std::vector<std::string>>({"VIP", "种植"}));
    p = parse_fan_profile(R"({"remark":null})");
    REQUIRE(p.value.has_value());
    CHECK(p.value->set_remark);
    CHECK_FALSE(p.value->remark.has_value());
    CHECK_FALSE(p.value->tags.has_value());
    CHECK(parse_fan_profile(R"({"remark":""})").value->remark == std::nullopt);
    for (
        const char* bad :
        {"{}", "[]", R"({"remark":12})", R"({"tags":"VIP"})", R"({"tags":[1]})", R"({"tags":[""]})",
         R"({"tags":["a\"b"]})", R"({"tags":["a\\b"]})", R"({"remark":"a\u0001b"})",
         R"({"tags":["0","1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17","18","19","20"]})",
         R"({"tags":["一二三四五六七八九十一二三四五六七"]})"}) {
        CAPTURE(bad);
        const auto r = parse_fan_profile(bad);
        CHECK_FALSE(r.value.has_value());
        CHECK_FALSE(r.problem.empty());
    }
    CHECK(tags_json({"VIP", "种植"}) == R"(["VIP","种植"])");
    CHECK(parse_tags_json(R"(["VIP","种植"])") ==
          std::optional<std::vector<std::string>>({"VIP", "种植"}));
    CHECK_FALSE(parse_tags_json("{}").has_value());
}

TEST_CASE("owner bodies: an id or null for each owner given") {
    auto o = parse_owner(R"({"consultant":7,"exclusive":null})");
    REQUIRE(o.value.has_value());
    CHECK(o.value->set_consultant);
    CHECK(o.value->consultant == std::optional<std::uint64_t>(7));
    CHECK(o.value->set_exclusive);
    CHECK_FALSE(o.value->exclusive.has_value());
    o = parse_owner(R"({"exclusive":"12"})");
    REQUIRE(o.value.has_value());
    CHECK_FALSE(o.value->set_consultant);
    CHECK(o.value->exclusive == std::optional<std::uint64_t>(12));
    for (const char* bad :
         {"{}", R"({"consultant":0})", R"({"consultant":"x"})", R"({"exclusive":true})", "null"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_owner(bad).value.has_value());
    }
}

TEST_CASE("patient bodies: an existing patient, or a name with an optional phone and record") {
    auto b = parse_bind_patient(R"({"name":" 王小红 ","phone":"+86 139-0000","record_no":"R-1"})");
    REQUIRE(b.value.has_value());
    CHECK(b.value->name == "王小红");
    CHECK(b.value->phone == std::optional<std::string>("+86 139-0000"));
    CHECK(b.value->record_no == std::optional<std::string>("R-1"));
    b = parse_bind_patient(R"({"patient_id":3})");
    REQUIRE(b.value.has_value());
    CHECK(b.value->patient_id == std::optional<std::uint64_t>(3));
    CHECK(parse_bind_patient(R"({"name":"x","phone":""})").value->phone == std::nullopt);
    for (const char* bad : {"{}", R"({"name":""})", R"({"name":"x","phone":"12"})",
                            R"({"name":"x","phone":"abc123"})", R"({"name":"x","record_no":"a b"})",
                            R"({"patient_id":3,"name":"x"})", R"({"patient_id":0})"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_bind_patient(bad).value.has_value());
    }
    CHECK(parse_unbind_patient(R"({"patient_id":"4"})").value == std::optional<std::uint64_t>(4));
    CHECK_FALSE(parse_unbind_patient("{}").value.has_value());
}

TEST_CASE("password changes: the old one given, the new one long enough and different") {
    const auto ok =
        parse_password_change(R"({"old_password":"old-one","new_password":"new-one-2"})");
    REQUIRE(ok.value.has_value());
    CHECK(ok.value->new_password == "new-one-2");
    for (const char* bad : {"{}", R"({"old_password":"","new_password":"long-enough"})",
                            R"({"old_password":"x","new_password":"short"})",
                            R"({"old_password":"same-pass","new_password":"same-pass"})"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_password_change(bad).value.has_value());
    }
    CHECK_FALSE(parse_password_change("{\"old_password\":\"x\",\"new_password\":\"" +
                                      std::string(257, 'a') + "\"}")
                    .value.has_value());
}

TEST_CASE("display names and previews") {
    CHECK(display_name(std::string("王女士"), std::string("王小红"), "oAbcdef123456") == "王女士");
    CHECK(display_name(std::nullopt, std::string("王小红"), "oAbcdef123456") == "王小红");
    CHECK(display_name(std::string(""), std::nullopt, "oAbcdef123456") == "顾客123456");
    CHECK(display_name(std::nullopt, std::nullopt, "o12") == "顾客o12");
    CHECK(preview("你好") == "你好");
    CHECK(preview("一二三四五", 3) == "一二三…");
    CHECK(preview("abc", 3) == "abc");
}

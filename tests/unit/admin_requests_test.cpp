// The admin API's pure parts: the reassignment distributions (documented deals, even and random
// averages, clearing), plan tokens, and the request parsers' refusals in Chinese.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>

#include "scrm/gateway/admin_requests.hpp"

using namespace scrm::gateway;

namespace {

std::vector<std::optional<std::uint64_t>> deal(std::vector<std::uint64_t> ids) {
    return {ids.begin(), ids.end()};
}

std::map<std::uint64_t, int> counts(const std::vector<std::optional<std::uint64_t>>& plan) {
    std::map<std::uint64_t, int> out;
    for (const auto& p : plan) ++out[p.value_or(0)];
    return out;
}

}  // namespace

TEST_CASE("round-robin deals the 1st 4th 7th... fan to the first receiver and so on in turn") {
    CHECK(plan_reassignment(10, {21, 22, 23}, distribution::round_robin, 0) ==
          deal({21, 22, 23, 21, 22, 23, 21, 22, 23, 21}));
    CHECK(plan_reassignment(5, {21, 22}, distribution::round_robin, 99) ==
          deal({21, 22, 21, 22, 21}));
    CHECK(plan_reassignment(0, {21}, distribution::round_robin, 0).empty());
    // No receivers: every fan is cleared.
    CHECK(plan_reassignment(3, {}, distribution::average, 7) ==
          std::vector<std::optional<std::uint64_t>>(3));
}

TEST_CASE("average is as even as possible and random but the same for the same seed") {
    const std::vector<std::uint64_t> receivers{21, 22, 23};
    std::map<std::vector<std::optional<std::uint64_t>>, int> seen;
    std::map<std::uint64_t, int> got_four;
    for (std::uint64_t seed = 1; seed <= 200; ++seed) {
        const auto plan = plan_reassignment(10, receivers, distribution::average, seed);
        CHECK(plan == plan_reassignment(10, receivers, distribution::average, seed));
        const auto c = counts(plan);
        REQUIRE(c.size() == 3);
        std::vector<int> sizes;
        for (const auto& [id, n] : c) {
            sizes.push_back(n);
            if (n == 4) ++got_four[id];
        }
        std::sort(sizes.begin(), sizes.end());
        CHECK(sizes == std::vector<int>{3, 3, 4});
        ++seen[plan];
    }
    // Random: many different deals, and each receiver is sometimes the one with the extra fan.
    CHECK(seen.size() > 150);
    CHECK(got_four.size() == 3);
    // 9 fans over 3: exactly 3 each.
    const auto even = counts(plan_reassignment(9, receivers, distribution::average, 5));
    CHECK(even == std::map<std::uint64_t, int>{{21, 3}, {22, 3}, {23, 3}});
}

TEST_CASE("plan tokens carry the seed and the fingerprint and refuse anything else") {
    const std::string fp(64, 'a');
    const auto t = plan_token(0x0123456789abcdefULL, fp);
    CHECK(t == "0123456789abcdef." + fp);
    const auto back = parse_plan_token(t);
    REQUIRE(back.has_value());
    CHECK(back->first == 0x0123456789abcdefULL);
    CHECK(back->second == fp);
    CHECK_FALSE(parse_plan_token("").has_value());
    CHECK_FALSE(parse_plan_token("0123456789abcdef-" + fp).has_value());
    CHECK_FALSE(parse_plan_token("0123456789ABCDEF." + fp).has_value());
    CHECK_FALSE(parse_plan_token("0123456789abcdef." + fp.substr(1)).has_value());

    // The fingerprint changes with the request and with any fan's owner.
    reassign_request r;
    r.role = owner_role::exclusive;
    r.from_agents = {5};
    r.to.to_agents = {6, 7};
    std::vector<reassign_fan> fans{{1, 1, "oA", 5}, {2, 1, "oB", 5}};
    const auto base = plan_fingerprint(r, fans);
    CHECK(base.size() == 64);
    auto other = fans;
    other[1].owner = 6;
    CHECK(plan_fingerprint(r, other) != base);
    other.pop_back();
    CHECK(plan_fingerprint(r, other) != base);
    auto r2 = r;
    r2.to.to_agents = {7, 6};
    CHECK(plan_fingerprint(r2, fans) != base);
    r2 = r;
    r2.to.how = distribution::average;
    CHECK(plan_fingerprint(r2, fans) != base);
}

TEST_CASE("reassignment bodies are refused with a reason in Chinese") {
    struct row {
        std::string name, body;
        bool need_plan;
        std::string problem;
    };
    auto [name, body, need_plan, problem] = GENERATE(values<row>({
        {"not json", "x", false, "请求内容须为 JSON 对象"},
        {"role", R"({"role":"owner","from_agents":[1],"to_agents":[]})", false, "更换类型"},
        {"no from", R"({"role":"consultant","to_agents":[]})", false, "请选择原归属客服"},
        {"empty from", R"({"role":"consultant","from_agents":[],"to_agents":[]})", false,
         "请选择原归属客服"},
        {"twice", R"({"role":"consultant","from_agents":[1,1],"to_agents":[]})", false,
         "请选择原归属客服"},
        {"bad id", R"({"role":"consultant","from_agents":[0],"to_agents":[]})", false,
         "请选择原归属客服"},
        {"no to", R"({"role":"consultant","from_agents":[1]})", false, "请填写接收顾客的客服"},
        {"to twice", R"({"role":"consultant","from_agents":[1],"to_agents":["2",2]})", false,
         "接收客服（to_agents）须为不重复"},
        {"no distribution", R"({"role":"consultant","from_agents":[1],"to_agents":[2]})", false,
         "请选择分配方式"},
        {"distribution",
         R"({"role":"consultant","from_agents":[1],"to_agents":[2],"distribution":"x"})", false,
         "分配方式（distribution）须为"},
        {"no plan",
         R"({"role":"consultant","from_agents":[1],"to_agents":[2],"distribution":"average"})",
         true, "请先预览"},
        {"bad plan",
         R"({"role":"consultant","from_agents":[1],"to_agents":[2],"distribution":"average",)"
         R"("plan":"x"})",
         true, "请先预览"},
    }));
    CAPTURE(name);
    const auto p = parse_reassign(body, need_plan);
    CHECK_FALSE(p.value.has_value());
    CHECK(p.problem.find(problem) != std::string::npos);
}

TEST_CASE("a reassignment body read") {
    const auto p = parse_reassign(
        R"({"role":"exclusive","from_agents":[3,"4"],"to_agents":[],"distribution":"average"})",
        false);
    REQUIRE(p.value.has_value());
    CHECK(p.value->role == owner_role::exclusive);
    CHECK(p.value->from_agents == std::vector<std::uint64_t>{3, 4});
    CHECK(p.value->to.to_agents.empty());
    CHECK(p.value->to.how == distribution::average);
    // Clearing needs no distribution.
    CHECK(parse_reassign(R"({"role":"consultant","from_agents":[1],"to_agents":[]})", false)
              .value.has_value());
    const auto d =
        parse_deactivate(R"({"exclusive_fans":{"to_agents":[2],"distribution":"round_robin"}})");
    REQUIRE(d.value.has_value());
    CHECK_FALSE(d.value->consultant_fans.has_value());
    REQUIRE(d.value->exclusive_fans.has_value());
    CHECK(d.value->exclusive_fans->to_agents == std::vector<std::uint64_t>{2});
    CHECK(parse_deactivate("").value.has_value());
    CHECK_FALSE(parse_deactivate(R"({"consultant_fans":[]})").value.has_value());
}

TEST_CASE("routing updates name each refused member and its rule") {
    auto bad = parse_routing_update(
        R"({"exclusive_mode":"on","work_hours":[{"weekdays":[1],"start":"25:00","end":"18:00"}],"x":1})");
    CHECK_FALSE(bad.value.has_value());
    REQUIRE(bad.details.size() == 3);
    CHECK(bad.details[0].field == "exclusive_mode");
    CHECK(bad.details[1].field == "work_hours[0].start");
    CHECK(bad.details[2].field == "x");
    CHECK(bad.problem ==
          "专属模式（exclusive_mode）：须为 true 或 false；工作时间（work_hours[0].start）：须为 "
          "00:00 至 23:59 的时间 \"HH:MM\"；x：未知的设置项");
    const auto good = parse_routing_update(
        R"({"exclusive_mode":true,"timeout_s":120,"utc_offset":"-05:30","closed_dates":["2027-02-01","2027-01-01"]})");
    REQUIRE(good.value.has_value());
    REQUIRE(good.value->given.size() == 4);
    CHECK(std::get<std::int64_t>(good.value->given[0].second) == 1);
    CHECK(std::get<std::int64_t>(good.value->given[1].second) == 120);
    CHECK(std::get<std::int64_t>(good.value->given[2].second) == -330);
    CHECK(std::get<std::string>(good.value->given[3].second) == R"(["2027-01-01","2027-02-01"])");
}

TEST_CASE("audit queries") {
    const auto q = parse_audit_query("action=fan.&before=12&limit=5");
    REQUIRE(q.value.has_value());
    CHECK(q.value->action == std::optional<std::string>("fan."));
    CHECK(q.value->before == std::optional<std::uint64_t>(12));
    CHECK(q.value->limit == 5);
    CHECK(parse_audit_query("").value->limit == 50);
    for (const char* bad : {"limit=0", "limit=201", "before=x", "action=DROP%20TABLE"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_audit_query(bad).value.has_value());
    }
    CHECK(json_or_string(R"({"a":1})") == R"({"a":1})");
    CHECK(json_or_string("not json") == R"("not json")");
}

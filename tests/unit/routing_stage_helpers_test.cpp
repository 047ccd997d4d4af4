// The routing stage's pure helpers: store scenes and the clinic_routing hours columns.
#include <catch2/catch.hpp>

#include "scrm/gateway/routing_stage.hpp"

using namespace scrm;
using namespace scrm::gateway;
using namespace std::chrono_literals;

TEST_CASE("store_from_scene reads store_<id> and qrscene_store_<id> only") {
    struct row {
        const char* name;
        std::string_view scene;
        std::optional<std::uint64_t> expected;
    };
    auto r = GENERATE(values<row>({
        {"SCAN scene", "store_12", 12},
        {"subscribe scene, prefix kept", "qrscene_store_7", 7},
        {"zero is no store", "store_0", std::nullopt},
        {"trailing junk", "store_12x", std::nullopt},
        {"no digits", "store_", std::nullopt},
        {"other scene", "campaign_3", std::nullopt},
        {"empty", "", std::nullopt},
        {"negative", "store_-1", std::nullopt},
    }));
    CAPTURE(r.name);
    CHECK(store_from_scene(r.scene) == r.expected);
}

TEST_CASE("parse_hours reads windows and closed dates, and refuses malformed columns") {
    routing::clinic_config c;
    REQUIRE(parse_hours(R"([{"weekdays":[1,2,3,4,5],"start":"09:00","end":"18:00"},
                            {"weekdays":[5],"start":"20:00","end":"02:00"}])",
                        R"(["2027-01-01"])", c));
    REQUIRE(c.work_hours.size() == 2);
    CHECK(c.work_hours[0].weekdays == routing::weekday_set{1, 2, 3, 4, 5});
    CHECK(c.work_hours[0].start == 540min);
    CHECK(c.work_hours[0].end == 1080min);
    CHECK(c.work_hours[1].end == 120min);
    REQUIRE(c.closed_dates.size() == 1);
    CHECK(c.closed_dates[0] == std::chrono::year_month_day(std::chrono::year(2027),
                                                           std::chrono::January,
                                                           std::chrono::day(1)));

    struct row {
        const char* name;
        const char* hours;
        const char* dates;
    };
    auto bad = GENERATE(values<row>({
        {"not JSON", "[", "[]"},
        {"not an array", "{}", "[]"},
        {"weekday 8", R"([{"weekdays":[8],"start":"09:00","end":"18:00"}])", "[]"},
        {"no weekdays", R"([{"weekdays":[],"start":"09:00","end":"18:00"}])", "[]"},
        {"bad clock", R"([{"weekdays":[1],"start":"9am","end":"18:00"}])", "[]"},
        {"start 24:00", R"([{"weekdays":[1],"start":"24:00","end":"18:00"}])", "[]"},
        {"missing end", R"([{"weekdays":[1],"start":"09:00"}])", "[]"},
        {"bad date", "[]", R"(["2027-02-30"])"},
        {"date not a string", "[]", "[20270101]"},
    }));
    CAPTURE(bad.name);
    routing::clinic_config untouched;
    untouched.work_hours.push_back({{1}, 0min, 60min});
    const auto before = untouched;
    CHECK_FALSE(parse_hours(bad.hours, bad.dates, untouched));
    CHECK(untouched == before);
}

TEST_CASE("auto_reply_text names each kind's text") {
    clinic_settings s;
    s.consultant_offline_text = "c";
    s.after_hours_text = "h";
    s.no_agent_text = "n";
    CHECK(auto_reply_text(s, routing::auto_reply_kind::consultant_offline) == "c");
    CHECK(auto_reply_text(s, routing::auto_reply_kind::after_hours) == "h");
    CHECK(auto_reply_text(s, routing::auto_reply_kind::no_agent) == "n");
}

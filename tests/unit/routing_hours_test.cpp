// Working hours and clinic-local time: window boundaries, split shifts, overnight windows across
// midnight and the week's end, closed dates at positive and negative offsets — and the hand-written
// parsers/printers for instants, offsets, dates and clock times.
#include <catch2/catch.hpp>

#include "scrm/routing/hours.hpp"
#include "scrm/routing/time_text.hpp"

using namespace scrm::routing;
using std::chrono::minutes;
namespace chr = std::chrono;

namespace {

minutes hm(int h, int m = 0) {
    return minutes{h * 60 + m};
}

chr::sys_seconds at(std::string_view rfc3339) {
    const auto t = parse_timestamp(rfc3339);
    REQUIRE(t);
    return *t;
}

clinic_config hours_at(std::string_view tz, std::vector<work_window> windows,
                       std::vector<chr::year_month_day> closed = {}) {
    clinic_config c;
    c.utc_offset = *parse_utc_offset(tz);
    c.work_hours = std::move(windows);
    c.closed_dates = std::move(closed);
    return c;
}

const std::vector<work_window> weekdays_9_18 = {{{1, 2, 3, 4, 5}, hm(9), hm(18)}};
// Two shifts on weekdays, a short Saturday.
const std::vector<work_window> split = {
    {{1, 2, 3, 4, 5}, hm(9), hm(12)}, {{1, 2, 3, 4, 5}, hm(14), hm(18, 30)}, {{6}, hm(10), hm(14)}};
// Monday night shift 20:00–02:00.
const std::vector<work_window> monday_night = {{{1}, hm(20), hm(2)}};
// Friday 20:00–02:00 and Sunday 22:00–06:00 (into Monday: the week's end).
const std::vector<work_window> weekend_nights = {{{5}, hm(20), hm(2)}, {{7}, hm(22), hm(6)}};
constexpr auto christmas = chr::year{2026} / 12 / 25;  // a Friday

struct row {
    std::string name;
    clinic_config config;
    std::string now;
    hours_state expected;
};

}  // namespace

TEST_CASE("working hours: boundaries, split shifts, overnight windows, closed dates") {
    using H = hours_state;
    auto [name, config, now, expected] = GENERATE(values<row>({
        // 2026-11-23 is a Monday, 2026-11-29 a Sunday.
        {"no windows: always open", hours_at("+08:00", {}), "2026-11-29T03:00:00+08:00",
         H::always_open},
        {"start inclusive", hours_at("+08:00", weekdays_9_18), "2026-11-23T09:00:00+08:00",
         H::open},
        {"a second before start", hours_at("+08:00", weekdays_9_18), "2026-11-23T08:59:59+08:00",
         H::outside_hours},
        {"end exclusive", hours_at("+08:00", weekdays_9_18), "2026-11-23T18:00:00+08:00",
         H::outside_hours},
        {"a second before end", hours_at("+08:00", weekdays_9_18), "2026-11-23T17:59:59+08:00",
         H::open},
        {"Friday listed", hours_at("+08:00", weekdays_9_18), "2026-11-27T12:00:00+08:00", H::open},
        {"Saturday not listed", hours_at("+08:00", weekdays_9_18), "2026-11-28T12:00:00+08:00",
         H::outside_hours},
        {"Sunday not listed", hours_at("+08:00", weekdays_9_18), "2026-11-29T12:00:00+08:00",
         H::outside_hours},
        {"split: morning shift", hours_at("+08:00", split), "2026-11-24T11:59:59+08:00", H::open},
        {"split: lunch break starts at the first end", hours_at("+08:00", split),
         "2026-11-24T12:00:00+08:00", H::outside_hours},
        {"split: lunch break", hours_at("+08:00", split), "2026-11-24T13:59:59+08:00",
         H::outside_hours},
        {"split: afternoon shift starts", hours_at("+08:00", split), "2026-11-24T14:00:00+08:00",
         H::open},
        {"split: afternoon ends at 18:30", hours_at("+08:00", split), "2026-11-24T18:30:00+08:00",
         H::outside_hours},
        {"split: Saturday's own window", hours_at("+08:00", split), "2026-11-28T13:00:00+08:00",
         H::open},
        {"split: Saturday afternoon", hours_at("+08:00", split), "2026-11-28T15:00:00+08:00",
         H::outside_hours},
        {"overnight: starts Monday 20:00", hours_at("+08:00", monday_night),
         "2026-11-23T20:00:00+08:00", H::open},
        {"overnight: before the start", hours_at("+08:00", monday_night),
         "2026-11-23T19:59:59+08:00", H::outside_hours},
        {"overnight: Monday 23:59:59", hours_at("+08:00", monday_night),
         "2026-11-23T23:59:59+08:00", H::open},
        {"overnight: past midnight, Tuesday 00:00", hours_at("+08:00", monday_night),
         "2026-11-24T00:00:00+08:00", H::open},
        {"overnight: Tuesday 01:59:59", hours_at("+08:00", monday_night),
         "2026-11-24T01:59:59+08:00", H::open},
        {"overnight: end exclusive, Tuesday 02:00", hours_at("+08:00", monday_night),
         "2026-11-24T02:00:00+08:00", H::outside_hours},
        {"overnight: belongs to Monday, so Tuesday 20:00 is closed",
         hours_at("+08:00", monday_night), "2026-11-24T20:00:00+08:00", H::outside_hours},
        {"overnight: Monday 01:00 would be Sunday's night", hours_at("+08:00", monday_night),
         "2026-11-23T01:00:00+08:00", H::outside_hours},
        {"Friday night into Saturday", hours_at("+08:00", weekend_nights),
         "2026-11-28T01:30:00+08:00", H::open},
        {"Saturday night is not Friday's", hours_at("+08:00", weekend_nights),
         "2026-11-28T21:00:00+08:00", H::outside_hours},
        {"Sunday night crosses the week's end into Monday", hours_at("+08:00", weekend_nights),
         "2026-11-30T05:59:59+08:00", H::open},
        {"Sunday night ends Monday 06:00", hours_at("+08:00", weekend_nights),
         "2026-11-30T06:00:00+08:00", H::outside_hours},
        {"Sunday 22:00 starts it", hours_at("+08:00", weekend_nights), "2026-11-29T22:00:00+08:00",
         H::open},
        {"a window ending at 24:00", hours_at("+08:00", {{{1}, hm(12), hm(24)}}),
         "2026-11-23T23:59:59+08:00", H::open},
        {"a window ending at 24:00 does not reach Tuesday",
         hours_at("+08:00", {{{1}, hm(12), hm(24)}}), "2026-11-24T00:00:00+08:00",
         H::outside_hours},
        {"00:00–00:00 is a whole day", hours_at("+08:00", {{{1}, hm(0), hm(0)}}),
         "2026-11-23T23:59:59+08:00", H::open},
        {"00:00–00:00 is only that day", hours_at("+08:00", {{{1}, hm(0), hm(0)}}),
         "2026-11-24T00:00:00+08:00", H::outside_hours},
        {"now in UTC, hours in +08:00: 01:00Z is 09:00 local", hours_at("+08:00", weekdays_9_18),
         "2026-11-23T01:00:00Z", H::open},
        {"now in another offset than the clinic's", hours_at("+08:00", weekdays_9_18),
         "2026-11-22T20:00:00-05:00", H::open},  // = Monday 09:00 at +08:00
        {"-05:30: Monday 14:29Z is 08:59 local", hours_at("-05:30", weekdays_9_18),
         "2026-11-23T14:29:59Z", H::outside_hours},
        {"-05:30: Monday 14:30Z is 09:00 local", hours_at("-05:30", weekdays_9_18),
         "2026-11-23T14:30:00Z", H::open},
        {"-05:30: Saturday 02:00Z is still Friday evening local",
         hours_at("-05:30", {{{5}, hm(20), hm(22)}}), "2026-11-28T02:00:00Z", H::open},
        // Closed dates: every instant of the clinic-local day.
        {"closed date, always-open clinic", hours_at("+08:00", {}, {christmas}),
         "2026-12-25T12:00:00+08:00", H::closed_date},
        {"closed date inside a window", hours_at("+08:00", weekdays_9_18, {christmas}),
         "2026-12-25T10:00:00+08:00", H::closed_date},
        {"+08:00: 16:00Z the day before is local midnight of the closed date",
         hours_at("+08:00", {}, {christmas}), "2026-12-24T16:00:00Z", H::closed_date},
        {"+08:00: a second earlier is the open day before", hours_at("+08:00", {}, {christmas}),
         "2026-12-24T15:59:59Z", H::always_open},
        {"+08:00: the closed day's last second", hours_at("+08:00", {}, {christmas}),
         "2026-12-25T15:59:59Z", H::closed_date},
        {"+08:00: the next day opens", hours_at("+08:00", {}, {christmas}), "2026-12-25T16:00:00Z",
         H::always_open},
        {"-05:30: 05:29:59Z on the 25th is still the 24th locally",
         hours_at("-05:30", {}, {christmas}), "2026-12-25T05:29:59Z", H::always_open},
        {"-05:30: 05:30Z on the 25th is local midnight", hours_at("-05:30", {}, {christmas}),
         "2026-12-25T05:30:00Z", H::closed_date},
        {"-05:30: 05:29:59Z on the 26th is the closed day's last second",
         hours_at("-05:30", {}, {christmas}), "2026-12-26T05:29:59Z", H::closed_date},
        {"-05:30: 05:30Z on the 26th opens", hours_at("-05:30", {}, {christmas}),
         "2026-12-26T05:30:00Z", H::always_open},
        {"closed date closes the tail of the night before",
         hours_at("+08:00", {{{4}, hm(20), hm(2)}}, {christmas}),  // Thursday night into Christmas
         "2026-12-25T01:00:00+08:00", H::closed_date},
        {"closed date cancels the tail of its own night shift",
         hours_at("+08:00", weekend_nights, {christmas}), "2026-12-26T01:00:00+08:00",
         H::closed_date},
        {"a closed date elsewhere leaves the night shift open",
         hours_at("+08:00", weekend_nights, {christmas}), "2026-12-19T01:00:00+08:00", H::open},
        {"after the cancelled tail it is plain outside hours",
         hours_at("+08:00", weekend_nights, {christmas}), "2026-12-26T03:00:00+08:00",
         H::outside_hours},
    }));
    CAPTURE(name, config, now);
    CHECK(evaluate_hours(config, at(now)).state == expected);
}

TEST_CASE("to_local gives the clinic's date, ISO weekday and time of day") {
    struct local_row {
        std::string name;
        std::string now;
        std::string tz;
        local_time expected;
    };
    auto [name, now, tz, expected] = GENERATE(values<local_row>({
        {"Monday morning at +08:00",
         "2026-11-23T10:00:00+08:00",
         "+08:00",
         {chr::year{2026} / 11 / 23, 1, chr::hours{10}}},
        {"UTC midnight is 08:00 at +08:00",
         "2026-11-23T00:00:00Z",
         "+08:00",
         {chr::year{2026} / 11 / 23, 1, chr::hours{8}}},
        {"-05:30 crosses back to Sunday",
         "2026-11-23T03:00:00Z",
         "-05:30",
         {chr::year{2026} / 11 / 22, 7, chr::hours{21} + minutes{30}}},
        {"+14:00 crosses the year",
         "2026-12-31T10:00:00Z",
         "+14:00",
         {chr::year{2027} / 1 / 1, 5, chr::hours{0}}},
        {"leap day",
         "2028-02-29T12:34:56Z",
         "Z",
         {chr::year{2028} / 2 / 29, 2, chr::hours{12} + minutes{34} + chr::seconds{56}}},
        {"before the epoch",
         "1969-12-31T23:59:59Z",
         "Z",
         {chr::year{1969} / 12 / 31, 3, chr::hours{23} + minutes{59} + chr::seconds{59}}},
    }));
    CAPTURE(name, now, tz);
    CHECK(to_local(at(now), *parse_utc_offset(tz)) == expected);
}

TEST_CASE("covering_part tells the same-day part from the overnight tail") {
    const work_window w{{7}, hm(22), hm(6)};
    CHECK(covering_part(w, {chr::year{2026} / 11 / 29, 7, chr::hours{23}}) ==
          window_part::same_day);
    CHECK(covering_part(w, {chr::year{2026} / 11 / 30, 1, chr::hours{5}}) ==
          window_part::overnight_tail);
    CHECK(covering_part(w, {chr::year{2026} / 11 / 30, 1, chr::hours{6}}) == window_part::none);
    CHECK(covering_part(w, {chr::year{2026} / 11 / 29, 7, chr::hours{5}}) == window_part::none);
}

TEST_CASE("UTC offsets: exactly ±HH:MM or Z") {
    struct offset_row {
        std::string text;
        std::optional<minutes> expected;
    };
    auto [text, expected] = GENERATE(values<offset_row>({
        {"+08:00", minutes{480}},
        {"-05:30", minutes{-330}},
        {"+00:00", minutes{0}},
        {"-00:00", minutes{0}},
        {"Z", minutes{0}},
        {"+23:59", minutes{23 * 60 + 59}},
        {"+14:00", minutes{840}},
        {"+8:00", std::nullopt},
        {"08:00", std::nullopt},
        {"+08", std::nullopt},
        {"+0800", std::nullopt},
        {"+24:00", std::nullopt},
        {"+08:60", std::nullopt},
        {"UTC+8", std::nullopt},
        {"z", std::nullopt},
        {"+08:00 ", std::nullopt},
        {"", std::nullopt},
    }));
    CAPTURE(text);
    CHECK(parse_utc_offset(text) == expected);
}

TEST_CASE("RFC 3339 instants") {
    struct timestamp_row {
        std::string text;
        std::optional<std::int64_t> expected;  // seconds since the epoch
    };
    auto [text, expected] = GENERATE(values<timestamp_row>({
        {"2026-11-23T10:00:00+08:00", 1795399200},
        {"2026-11-23T02:00:00Z", 1795399200},
        {"2026-11-22T20:30:00-05:30", 1795399200},
        {"2026-11-23T02:00:00.999Z", 1795399200},
        {"1970-01-01T00:00:00Z", 0},
        {"1969-12-31T23:59:59Z", -1},
        {"2024-02-29T00:00:00Z", 1709164800},
        {"2026-02-29T00:00:00Z", std::nullopt},
        {"2026-13-01T00:00:00Z", std::nullopt},
        {"2026-11-31T00:00:00Z", std::nullopt},
        {"2026-11-23T24:00:00Z", std::nullopt},
        {"2026-11-23T10:60:00Z", std::nullopt},
        {"2026-11-23T10:00:60Z", std::nullopt},
        {"2026-11-23T10:00:00", std::nullopt},
        {"2026-11-23T10:00+08:00", std::nullopt},
        {"2026-11-23 10:00:00+08:00", std::nullopt},
        {"2026-11-23t10:00:00Z", std::nullopt},
        {"2026-11-23T10:00:00.Z", std::nullopt},
        {"2026-11-23T10:00:00+08:00x", std::nullopt},
        {"26-11-23T10:00:00Z", std::nullopt},
        {"", std::nullopt},
    }));
    CAPTURE(text);
    const auto t = parse_timestamp(text);
    CHECK((t ? std::optional<std::int64_t>(t->time_since_epoch().count()) : std::nullopt) ==
          expected);
}

TEST_CASE("dates and clock times") {
    CHECK(parse_date("2026-12-25") == chr::year{2026} / 12 / 25);
    CHECK(parse_date("2024-02-29") == chr::year{2024} / 2 / 29);
    CHECK_FALSE(parse_date("2026-02-29"));
    CHECK_FALSE(parse_date("2026-12-25T00:00:00Z"));
    CHECK_FALSE(parse_date("2026-1-5"));
    CHECK(parse_clock("00:00", false) == hm(0));
    CHECK(parse_clock("09:30", false) == hm(9, 30));
    CHECK(parse_clock("23:59", false) == hm(23, 59));
    CHECK_FALSE(parse_clock("24:00", false));
    CHECK(parse_clock("24:00", true) == hm(24));
    CHECK_FALSE(parse_clock("24:01", true));
    CHECK_FALSE(parse_clock("9:00", false));
    CHECK_FALSE(parse_clock("09:00:00", false));
    CHECK_FALSE(parse_clock("12:60", false));
}

TEST_CASE("formatting round-trips") {
    CHECK(format_utc_offset(minutes{480}) == "+08:00");
    CHECK(format_utc_offset(minutes{-330}) == "-05:30");
    CHECK(format_utc_offset(minutes{0}) == "+00:00");
    CHECK(format_date(chr::year{2026} / 1 / 5) == "2026-01-05");
    CHECK(format_clock(hm(9)) == "09:00");
    CHECK(format_clock(hm(24)) == "24:00");
    CHECK(format_timestamp(at("2026-11-23T02:00:00Z"), minutes{480}) ==
          "2026-11-23T10:00:00+08:00");
    CHECK(format_timestamp(at("2026-11-23T03:00:00Z"), minutes{-330}) ==
          "2026-11-22T21:30:00-05:30");
    CHECK(format_timestamp(at("1969-12-31T23:59:59Z"), minutes{0}) == "1969-12-31T23:59:59+00:00");
}

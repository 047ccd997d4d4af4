// The §8 scenario format: a good scenario becomes the expected snapshot, every kind of bad field
// gets a message naming it, one bad entry does not stop the others, decisions are written in the
// documented shape, and `expect` comparison (scrm-route --check) tells pass from fail.
#include <catch2/catch.hpp>

#include <functional>

#include "scrm/routing/scenario_json.hpp"
#include "scrm/routing/time_text.hpp"

using namespace scrm::routing;
using std::chrono::minutes;

namespace {

// Every field of §8 present; rows below edit it by plain text replacement.
const std::string base = R"({
  "name": "base",
  "now": "2026-11-23T10:00:00+08:00",
  "config": {
    "consultant_mode": false, "exclusive_mode": true, "chain_store_mode": false,
    "auto_reply_enabled": true, "consultant_offline_prompt_enabled": true,
    "auto_reply_off": [],
    "timezone": "+08:00",
    "work_hours": [ { "weekdays": [1,2,3,4,5], "start": "09:00", "end": "18:00" } ],
    "closed_dates": [ "2026-12-25" ]
  },
  "agents": [ { "id": "a1", "store": "s1", "online": true, "can_receive": true, "load": 0, "last_assigned": 0 },
              { "id": "a2", "store": null, "online": false, "can_receive": true, "load": 3, "last_assigned": 1700000000 } ],
  "fan": { "openid": "o1", "consultant": null, "exclusive_agent": null, "store": null },
  "session": null,
  "auto_reply_suppressed": false,
  "expect": { "targets": ["a1"], "owner": "a1", "assign_exclusive": "a1", "auto_reply": null, "rule": "assigned" }
})";

std::string edit(std::string text, std::string_view from, std::string_view to) {
    const auto pos = text.find(from);
    REQUIRE(pos != std::string::npos);
    text.replace(pos, from.size(), to);
    return text;
}

std::vector<scenario> parse_ok(std::string_view json) {
    auto r = parse_scenarios(json);
    if (const auto* e = std::get_if<document_error>(&r)) FAIL("document error: " << e->message);
    return std::get<std::vector<scenario>>(std::move(r));
}

std::string error_of(std::string_view json) {
    const auto scenarios = parse_ok(json);
    REQUIRE(scenarios.size() == 1);
    return scenarios[0].error;
}

}  // namespace

TEST_CASE("a complete scenario becomes the snapshot it describes") {
    const auto scenarios = parse_ok(base);
    REQUIRE(scenarios.size() == 1);
    const scenario& sc = scenarios[0];
    CHECK(sc.error.empty());
    CHECK(sc.name == "base");
    REQUIRE(sc.input);

    snapshot expected;
    expected.now = *parse_timestamp("2026-11-23T02:00:00Z");
    expected.config.exclusive_mode = true;
    expected.config.utc_offset = minutes{480};
    expected.config.work_hours = {work_window{{1, 2, 3, 4, 5}, minutes{540}, minutes{1080}}};
    expected.config.closed_dates = {std::chrono::year{2026} / 12 / 25};
    expected.agents = {agent_state{"a1", "s1", true, true, 0, 0},
                       agent_state{"a2", std::nullopt, false, true, 3, 1700000000}};
    expected.fan.openid = "o1";
    CHECK(*sc.input == expected);

    REQUIRE(sc.expect);
    CHECK_FALSE(sc.expect->error);
    CHECK(sc.expect->expected ==
          decision{route_rule::assigned, {"a1"}, "a1", "a1", std::nullopt, {}});
}

TEST_CASE("optional and nullable fields") {
    struct row {
        std::string name;
        std::string json;
        std::function<bool(const snapshot&)> holds;
    };
    auto [name, json, holds] = GENERATE(values<row>({
        {"work_hours missing = always open",
         edit(base,
              R"("work_hours": [ { "weekdays": [1,2,3,4,5], "start": "09:00", "end": "18:00" } ],)",
              ""),
         [](const snapshot& s) { return s.config.work_hours.empty(); }},
        {"closed_dates null = none", edit(base, R"([ "2026-12-25" ])", "null"),
         [](const snapshot& s) { return s.config.closed_dates.empty(); }},
        {"auto_reply_off missing", edit(base, R"("auto_reply_off": [],)", ""),
         [](const snapshot& s) { return s.config.auto_reply_off.empty(); }},
        {"auto_reply_off kinds; timeout and welcome accepted and dropped",
         edit(base, R"("auto_reply_off": [])",
              R"("auto_reply_off": ["no_agent","timeout","welcome","after_hours"])"),
         [](const snapshot& s) {
             return s.config.auto_reply_off ==
                    std::vector<auto_reply_kind>{auto_reply_kind::no_agent,
                                                 auto_reply_kind::after_hours};
         }},
        {"agent store missing = no store",
         edit(base, R"("id": "a1", "store": "s1",)", R"("id": "a1",)"),
         [](const snapshot& s) { return !s.agents[0].store; }},
        {"fan references missing = null",
         edit(base, R"("consultant": null, "exclusive_agent": null, "store": null)", R"("x": 1)"),
         [](const snapshot& s) {
             return !s.fan.consultant && !s.fan.exclusive_agent && !s.fan.store;
         }},
        {"session missing = no lock", edit(base, R"("session": null,)", ""),
         [](const snapshot& s) { return !s.session_holder; }},
        {"session lock", edit(base, R"("session": null)", R"("session": {"agent": "a2"})"),
         [](const snapshot& s) { return s.session_holder == "a2"; }},
        {"timezone Z", edit(base, R"("timezone": "+08:00")", R"("timezone": "Z")"),
         [](const snapshot& s) { return s.config.utc_offset == minutes{0}; }},
        {"timezone -05:30", edit(base, R"("timezone": "+08:00")", R"("timezone": "-05:30")"),
         [](const snapshot& s) { return s.config.utc_offset == minutes{-330}; }},
        {"a window ending at 24:00",
         edit(base, R"("start": "09:00", "end": "18:00")", R"("start": "20:00", "end": "24:00")"),
         [](const snapshot& s) { return s.config.work_hours[0].end == minutes{1440}; }},
        {"unknown keys are ignored",
         edit(base, R"("session": null,)", R"("session": null, "extra": {"deep": [1]},)"),
         [](const snapshot& s) { return !s.session_holder; }},
        {"now with a fraction and Z",
         edit(base, R"("2026-11-23T10:00:00+08:00")", R"("2026-11-23T02:00:00.5Z")"),
         [](const snapshot& s) { return s.now == *parse_timestamp("2026-11-23T10:00:00+08:00"); }},
    }));
    CAPTURE(name, json);
    const auto scenarios = parse_ok(json);
    REQUIRE(scenarios.size() == 1);
    CAPTURE(scenarios[0].error);
    REQUIRE(scenarios[0].input);
    CHECK(holds(*scenarios[0].input));
}

TEST_CASE("every malformed or missing field is reported with its path") {
    struct row {
        std::string name;
        std::string json;
        std::string expected;  // a fragment of the message
    };
    auto [name, json, expected] = GENERATE(values<row>({
        {"name missing", edit(base, R"("name": "base",)", ""), "name: missing"},
        {"name not a string", edit(base, R"("name": "base")", R"("name": 7)"),
         "name: expected a string"},
        {"now missing", edit(base, R"("now": "2026-11-23T10:00:00+08:00",)", ""), "now: missing"},
        {"now without offset",
         edit(base, R"("2026-11-23T10:00:00+08:00")", R"("2026-11-23T10:00:00")"),
         "now: expected an RFC 3339 time"},
        {"now not a date",
         edit(base, R"("2026-11-23T10:00:00+08:00")", R"("2026-02-30T10:00:00Z")"),
         "now: expected an RFC 3339 time"},
        {"now a number", edit(base, R"("2026-11-23T10:00:00+08:00")", "1795399200"),
         "now: expected a string"},
        {"config missing", edit(base, R"("config": {)", R"("konfig": {)"), "config: missing"},
        {"config not an object", edit(base, R"("config": {)", R"("config": 1, "unused": {)"),
         "config: expected an object"},
        {"a mode missing", edit(base, R"("consultant_mode": false, )", ""),
         "config.consultant_mode: missing"},
        {"a mode as a string",
         edit(base, R"("exclusive_mode": true)", R"("exclusive_mode": "true")"),
         "config.exclusive_mode: expected true or false"},
        {"timezone missing", edit(base, R"("timezone": "+08:00",)", ""),
         "config.timezone: missing"},
        {"timezone without minutes", edit(base, R"("timezone": "+08:00")", R"("timezone": "+08")"),
         "config.timezone: expected a UTC offset"},
        {"timezone by name",
         edit(base, R"("timezone": "+08:00")", R"("timezone": "Asia/Shanghai")"),
         "config.timezone: expected a UTC offset"},
        {"timezone out of range", edit(base, R"("timezone": "+08:00")", R"("timezone": "+24:00")"),
         "config.timezone: expected a UTC offset"},
        {"unknown auto-reply kind",
         edit(base, R"("auto_reply_off": [])", R"("auto_reply_off": ["later"])"),
         "config.auto_reply_off[0]: unknown auto-reply kind \"later\""},
        {"auto_reply_off not an array",
         edit(base, R"("auto_reply_off": [])", R"("auto_reply_off": "no_agent")"),
         "config.auto_reply_off: expected an array"},
        {"weekday 0", edit(base, "[1,2,3,4,5]", "[0,1]"),
         "config.work_hours[0].weekdays[0]: expected 1 (Monday) to 7 (Sunday)"},
        {"weekday 8", edit(base, "[1,2,3,4,5]", "[1,8]"),
         "config.work_hours[0].weekdays[1]: expected 1"},
        {"weekdays empty", edit(base, "[1,2,3,4,5]", "[]"),
         "config.work_hours[0].weekdays: expected a non-empty array"},
        {"weekdays missing", edit(base, R"("weekdays": [1,2,3,4,5], )", ""),
         "config.work_hours[0].weekdays: missing"},
        {"start 24:00", edit(base, R"("start": "09:00")", R"("start": "24:00")"),
         "config.work_hours[0].start: expected \"HH:MM\" from 00:00 to 23:59"},
        {"start without leading zero", edit(base, R"("start": "09:00")", R"("start": "9:00")"),
         "config.work_hours[0].start: expected \"HH:MM\""},
        {"end 24:30", edit(base, R"("end": "18:00")", R"("end": "24:30")"),
         "config.work_hours[0].end: expected \"HH:MM\" from 00:00 to 24:00"},
        {"end missing", edit(base, R"(, "end": "18:00")", ""), "config.work_hours[0].end: missing"},
        {"window not an object",
         edit(base, R"([ { "weekdays": [1,2,3,4,5], "start": "09:00", "end": "18:00" } ])", "[1]"),
         "config.work_hours[0]: expected an object"},
        {"closed date malformed", edit(base, R"("2026-12-25")", R"("25/12/2026")"),
         "config.closed_dates[0]: expected a date \"YYYY-MM-DD\""},
        {"closed date that does not exist", edit(base, R"("2026-12-25")", R"("2026-02-29")"),
         "config.closed_dates[0]: expected a date"},
        {"agents missing", edit(base, R"("agents": [)", R"("agentz": [)"), "agents: missing"},
        {"agents not an array", edit(base, R"("agents": [)", R"("agents": 5, "unused": [)"),
         "agents: expected an array"},
        {"agent not an object", edit(base, R"("agents": [)", R"("agents": [ 5,)"),
         "agents[0]: expected an agent object"},
        {"agent id missing", edit(base, R"("id": "a1", )", ""), "agents[0].id: missing"},
        {"agent id empty", edit(base, R"("id": "a1")", R"("id": "")"),
         "agents[0].id: expected a non-empty string"},
        {"agent id a number", edit(base, R"("id": "a1")", R"("id": 1)"),
         "agents[0].id: expected a non-empty string"},
        {"agent store a number", edit(base, R"("store": "s1")", R"("store": 1)"),
         "agents[0].store: expected a non-empty string or null"},
        {"online missing", edit(base, R"("online": false, )", ""), "agents[1].online: missing"},
        {"can_receive null",
         edit(base, R"("online": true, "can_receive": true)",
              R"("online": true, "can_receive": null)"),
         "agents[0].can_receive: expected true or false"},
        {"negative load", edit(base, R"("load": 3)", R"("load": -1)"),
         "agents[1].load: expected a non-negative integer"},
        {"fractional load", edit(base, R"("load": 3)", R"("load": 1.5)"),
         "agents[1].load: expected a non-negative integer"},
        {"load as a string", edit(base, R"("load": 3)", R"("load": "3")"),
         "agents[1].load: expected a non-negative integer"},
        {"last_assigned missing", edit(base, R"(, "last_assigned": 1700000000)", ""),
         "agents[1].last_assigned: missing"},
        {"duplicate agent ids", edit(base, R"("id": "a2")", R"("id": "a1")"),
         "agents[1].id: duplicate agent id \"a1\" (also agents[0])"},
        {"fan missing", edit(base, R"("fan": {)", R"("fann": {)"), "fan: missing"},
        {"fan not an object", edit(base, R"("fan": {)", R"("fan": [], "unused": {)"),
         "fan: expected an object"},
        {"openid missing", edit(base, R"("openid": "o1", )", ""), "fan.openid: missing"},
        {"consultant not among the agents",
         edit(base, R"("consultant": null)", R"("consultant": "zz")"),
         "fan.consultant: unknown consultant \"zz\""},
        {"exclusive agent not among the agents",
         edit(base, R"("exclusive_agent": null)", R"("exclusive_agent": "zz")"),
         "fan.exclusive_agent: unknown exclusive agent \"zz\""},
        {"consultant empty", edit(base, R"("consultant": null)", R"("consultant": "")"),
         "fan.consultant: expected a non-empty string or null"},
        {"fan store false",
         edit(base, R"("exclusive_agent": null, "store": null)",
              R"("exclusive_agent": null, "store": false)"),
         "fan.store: expected a non-empty string or null"},
        {"session holder not among the agents",
         edit(base, R"("session": null)", R"("session": {"agent": "zz"})"),
         "session.agent: unknown session holder \"zz\""},
        {"session holder missing", edit(base, R"("session": null)", R"("session": {})"),
         "session.agent: missing"},
        {"session a string", edit(base, R"("session": null)", R"("session": "a1")"),
         "session: expected null or {\"agent\": id}"},
        {"auto_reply_suppressed missing", edit(base, R"("auto_reply_suppressed": false,)", ""),
         "auto_reply_suppressed: missing"},
        {"auto_reply_suppressed as 0",
         edit(base, R"("auto_reply_suppressed": false)", R"("auto_reply_suppressed": 0)"),
         "auto_reply_suppressed: expected true or false"},
    }));
    CAPTURE(name, json);
    const std::string message = error_of(json);
    CAPTURE(message);
    CHECK(!message.empty());
    CHECK(message.find(expected) != std::string::npos);
}

TEST_CASE("all problems of an entry are reported together") {
    std::string json = edit(base, R"("timezone": "+08:00")", R"("timezone": "CST")");
    json = edit(json, R"("load": 3)", R"("load": -3)");
    json = edit(json, R"("openid": "o1", )", "");
    const std::string message = error_of(json);
    CHECK(message.find("config.timezone") != std::string::npos);
    CHECK(message.find("agents[1].load") != std::string::npos);
    CHECK(message.find("fan.openid") != std::string::npos);
}

TEST_CASE("one bad scenario does not stop the others") {
    const std::string bad =
        edit(edit(base, R"("name": "base")", R"("name": "bad")"), R"("id": "a2")", R"("id": "a1")");
    const auto scenarios = parse_ok("[" + base + ", 42, " + bad + ", " + base + "]");
    REQUIRE(scenarios.size() == 4);
    CHECK(scenarios[0].input);
    CHECK_FALSE(scenarios[1].input);
    CHECK_FALSE(scenarios[1].name);
    CHECK(scenarios[1].error == "entry 1: expected a scenario object");
    CHECK_FALSE(scenarios[2].input);
    CHECK(scenarios[2].name == "bad");
    CHECK(scenarios[3].input);

    std::vector<routed> results;
    for (const auto& sc : scenarios) results.push_back(route(sc));
    CHECK(
        write_decisions(results) ==
        "[\n"
        R"({"name":"base","targets":["a1"],"owner":"a1","assign_exclusive":"a1","auto_reply":null,"rule":"assigned"},)"
        "\n"
        R"({"name":null,"error":"entry 1: expected a scenario object"},)"
        "\n"
        R"~({"name":"bad","error":"agents[1].id: duplicate agent id \"a1\" (also agents[0])"},)~"
        "\n"
        R"({"name":"base","targets":["a1"],"owner":"a1","assign_exclusive":"a1","auto_reply":null,"rule":"assigned"})"
        "\n]\n");
}

TEST_CASE("input that is not a scenario document is a document error") {
    struct row {
        std::string name;
        std::string json;
        std::string expected;
    };
    auto [name, json, expected] = GENERATE(values<row>({
        {"truncated", "[{\"name\":", "not valid JSON at byte"},
        {"trailing garbage", "[] []", "not valid JSON at byte 3"},
        {"empty input", "", "not valid JSON"},
        {"invalid UTF-8", "[\"\xff\"]", "not valid JSON"},
        {"a number", "42", "expected an array of scenarios or one scenario object"},
        {"a string", "\"x\"", "expected an array of scenarios or one scenario object"},
        {"deep nesting does not overflow the stack", std::string(100000, '['), "not valid JSON"},
    }));
    CAPTURE(name);
    const auto r = parse_scenarios(json);
    REQUIRE(std::holds_alternative<document_error>(r));
    CHECK(std::get<document_error>(r).message.find(expected) != std::string::npos);
}

TEST_CASE("a single object is a document of one, an empty array gives an empty array") {
    const auto one = route_document(base, with_receipt::no);
    REQUIRE(std::holds_alternative<std::string>(one));
    CHECK(
        std::get<std::string>(one) ==
        "[\n"
        R"({"name":"base","targets":["a1"],"owner":"a1","assign_exclusive":"a1","auto_reply":null,"rule":"assigned"})"
        "\n]\n");
    const auto none = route_document(" [ ] ", with_receipt::no);
    REQUIRE(std::holds_alternative<std::string>(none));
    CHECK(std::get<std::string>(none) == "[]\n");
}

TEST_CASE("decisions are written with sorted targets, nulls and an optional receipt") {
    const std::string json =
        edit(edit(base, R"("exclusive_mode": true)", R"("exclusive_mode": false)"),
             R"("online": false)", R"("online": true)");
    const auto scenarios =
        parse_ok(edit(json, R"("name": "base")", R"("name": "quote \" and 中文")"));
    const routed plain = route(scenarios[0]);
    CHECK(
        write_decisions({plain}) ==
        "[\n"
        R"({"name":"quote \" and 中文","targets":["a1","a2"],"owner":null,"assign_exclusive":null,"auto_reply":null,"rule":"shared"})"
        "\n]\n");

    const routed with = route(scenarios[0], with_receipt::yes);
    CHECK(
        write_decisions({with}) ==
        "[\n"
        R"({"name":"quote \" and 中文","targets":["a1","a2"],"owner":null,"assign_exclusive":null,"auto_reply":null,"rule":"shared",)"
        R"("receipt":{"candidates":["a1","a2"],"excluded":[],"tie_break":null,"hours":"open",)"
        R"("local_time":"2026-11-23T10:00:00","weekday":1,)"
        R"("auto_replies":{"consultant_offline":"not_applicable","after_hours":"not_applicable","no_agent":"not_applicable"},)"
        R"("stale_session_holder":null}})"
        "\n]\n");

    const std::string pretty = write_decisions({plain}, json_style::pretty);
    CHECK(pretty.find("[\n  {\n    \"name\": ") == 0);
    CHECK(pretty.find("\"targets\": [\n      \"a1\",\n      \"a2\"\n    ]") != std::string::npos);
}

TEST_CASE("the receipt lists exclusions and the tie-break in JSON") {
    const std::string json = edit(base, R"("online": false)", R"("online": true)");
    const auto out = route_document(json, with_receipt::yes);
    REQUIRE(std::holds_alternative<std::string>(out));
    const std::string& text = std::get<std::string>(out);
    CAPTURE(text);
    CHECK(text.find(R"("excluded":[{"agent":"a2","reason":"higher_load"}],"tie_break":"load")") !=
          std::string::npos);
}

TEST_CASE("check compares the five fields, an expected error only needs an error") {
    using verdict = check_result::verdict;
    struct row {
        std::string name;
        std::string json;
        verdict expected;
    };
    auto [name, json, expected] = GENERATE(values<row>({
        {"matching expectation", base, verdict::pass},
        {"unsorted expected targets still match",
         edit(
             edit(edit(base, R"("exclusive_mode": true)", R"("exclusive_mode": false)"),
                  R"("online": false)", R"("online": true)"),
             R"("expect": { "targets": ["a1"], "owner": "a1", "assign_exclusive": "a1", "auto_reply": null, "rule": "assigned" })",
             R"("expect": { "targets": ["a2", "a1"], "owner": null, "assign_exclusive": null, "auto_reply": null, "rule": "shared" })"),
         verdict::pass},
        {"a missing target", edit(base, R"("targets": ["a1"])", R"("targets": [])"), verdict::fail},
        {"wrong rule", edit(base, R"("rule": "assigned")", R"("rule": "shared")"), verdict::fail},
        {"wrong owner", edit(base, R"("owner": "a1")", R"("owner": null)"), verdict::fail},
        {"wrong auto_reply",
         edit(base, R"("auto_reply": null, "rule")", R"("auto_reply": "no_agent", "rule")"),
         verdict::fail},
        {"expected error, got a decision",
         edit(base, R"("expect": {)", R"("expect": { "error": "x", "y": {)") + "}", verdict::fail},
        {"expected error, got one",
         edit(edit(base, R"("id": "a2")", R"("id": "a1")"), R"("expect": {)",
              R"("expect": { "error": "dup", "y": {)") +
             "}",
         verdict::pass},
        {"expected a decision, got an error", edit(base, R"("id": "a2")", R"("id": "a1")"),
         verdict::fail},
        {"malformed expect", edit(base, R"("rule": "assigned")", R"("rule": "routed")"),
         verdict::fail},
        {"no expect", edit(base, R"("expect")", R"("comment")"), verdict::unchecked},
    }));
    CAPTURE(name, json);
    const auto scenarios = parse_ok(json);
    REQUIRE(scenarios.size() == 1);
    const check_result result = check(scenarios[0], route(scenarios[0]));
    CAPTURE(result.detail);
    CHECK(result.outcome == expected);
}

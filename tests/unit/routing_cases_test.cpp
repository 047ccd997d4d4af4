// The shared examples (tests/data/routing_cases.json, a copy of the design's routing/cases.json):
// every scenario's decision matches its "expect", in-process and through the scrm-route binary,
// which is also checked for its exit codes, stdin input and --help.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

#include "scrm/routing/scenario_json.hpp"

using namespace scrm::routing;

namespace {

// SCRM_SOURCE_DIR is set by ctest; the compile-time path serves direct runs of the suite.
std::string cases_path() {
    if (const char* dir = std::getenv("SCRM_SOURCE_DIR"); dir != nullptr && *dir != '\0') {
        return std::string(dir) + "/tests/data/routing_cases.json";
    }
    return SCRM_ROUTING_CASES;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<scenario> load_cases() {
    auto parsed = parse_scenarios(read_file(cases_path()));
    REQUIRE(std::holds_alternative<std::vector<scenario>>(parsed));
    return std::get<std::vector<scenario>>(std::move(parsed));
}

struct run_result {
    int status = -1;
    std::string out;
};

// Runs a shell command line, capturing standard output (standard error passes through).
run_result run(const std::string& command) {
    run_result r;
    FILE* p = ::popen(command.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    const int raw = ::pclose(p);
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    return r;
}

std::string quote(const std::string& s) {
    return "'" + s + "'";
}

}  // namespace

TEST_CASE("every shared scenario gets its expected decision") {
    const auto cases = load_cases();
    REQUIRE(cases.size() >= 39);
    std::size_t passed = 0;
    for (const scenario& sc : cases) {
        const std::string name = sc.name.value_or("(no name)");
        CAPTURE(name);
        REQUIRE(sc.expect_error.empty());
        REQUIRE(sc.expect);
        if (sc.expect->error) {
            CHECK_FALSE(sc.input);
            CHECK_FALSE(sc.error.empty());
        } else {
            CAPTURE(sc.error);
            REQUIRE(sc.input);
            decision d = decide(*sc.input);
            CHECK(d == sc.expect->expected);
            // The receipt explains the decision without changing it.
            decision with = decide(*sc.input, with_receipt::yes);
            REQUIRE(with.receipt);
            with.receipt.reset();
            CHECK(with == d);
            if (d == sc.expect->expected) ++passed;
            continue;
        }
        if (!sc.input) ++passed;
    }
    CHECK(passed == cases.size());
}

TEST_CASE("scrm-route --check passes on the shared scenarios") {
    const run_result r = run(quote(SCRM_ROUTE_BIN) + " --check " + quote(cases_path()));
    CAPTURE(r.out);
    CHECK(r.status == 0);
    CHECK(r.out.find(" 0 failed, 0 unchecked") != std::string::npos);
    CHECK(r.out.find("FAIL") == std::string::npos);
}

TEST_CASE("scrm-route prints what the library decides, from a file or standard input") {
    const std::string text = read_file(cases_path());
    const auto expected = route_document(text, with_receipt::no);
    REQUIRE(std::holds_alternative<std::string>(expected));
    const auto expected_receipts = route_document(text, with_receipt::yes, json_style::pretty);
    REQUIRE(std::holds_alternative<std::string>(expected_receipts));

    const run_result from_file = run(quote(SCRM_ROUTE_BIN) + " " + quote(cases_path()));
    CHECK(from_file.status == 0);
    CHECK(from_file.out == std::get<std::string>(expected));

    const run_result from_stdin = run(quote(SCRM_ROUTE_BIN) + " < " + quote(cases_path()));
    CHECK(from_stdin.status == 0);
    CHECK(from_stdin.out == std::get<std::string>(expected));

    const run_result dash =
        run(quote(SCRM_ROUTE_BIN) + " --receipt --pretty - < " + quote(cases_path()));
    CHECK(dash.status == 0);
    CHECK(dash.out == std::get<std::string>(expected_receipts));
}

TEST_CASE("scrm-route exit codes") {
    const std::string bin = quote(SCRM_ROUTE_BIN);
    struct row {
        std::string name;
        std::string command;
        int status;
        std::string out_fragment;
    };
    auto [name, command, status, out_fragment] = GENERATE_REF(values<row>({
        {"--help", bin + " --help", 0, "Usage: scrm-route"},
        {"-h", bin + " -h", 0, "Usage: scrm-route"},
        {"not JSON", "printf '[{' | " + bin + " 2>/dev/null", 2, ""},
        {"not a scenario document", "printf '42' | " + bin + " 2>/dev/null", 2, ""},
        {"unknown option", bin + " --verbose 2>/dev/null", 2, ""},
        {"two files", bin + " a b 2>/dev/null", 2, ""},
        {"missing file", bin + " /nonexistent/cases.json 2>/dev/null", 2, ""},
        {"bad scenarios are still exit 0", "printf '[{\"name\":\"x\"}, 1]' | " + bin, 0,
         R"({"name":"x","error":"now: missing;)"},
        {"--check with a mismatch",
         R"(printf '{"name":"n","now":"2026-11-23T10:00:00Z","config":{"consultant_mode":false,"exclusive_mode":false,"chain_store_mode":false,"auto_reply_enabled":true,"consultant_offline_prompt_enabled":true,"timezone":"Z"},"agents":[],"fan":{"openid":"o"},"auto_reply_suppressed":false,"expect":{"targets":[],"owner":null,"assign_exclusive":null,"auto_reply":null,"rule":"none"}}' | )" +
             bin + " --check",
         1,
         "FAIL  n: expected {rule: none, targets: [], owner: null, assign_exclusive: null, "
         "auto_reply: null}, "
         "got {rule: none, targets: [], owner: null, assign_exclusive: null, auto_reply: "
         "no_agent}"},
    }));
    CAPTURE(name, command);
    const run_result r = run(command);
    CAPTURE(r.out);
    CHECK(r.status == status);
    CHECK(r.out.find(out_fragment) != std::string::npos);
}

TEST_CASE("scrm-route reports unparseable input on standard error") {
    const run_result r = run("printf '[1,' | " + quote(SCRM_ROUTE_BIN) + " 2>&1 >/dev/null");
    CHECK(r.status == 2);
    CHECK(r.out.find("scrm-route: standard input: not valid JSON at byte") != std::string::npos);
}

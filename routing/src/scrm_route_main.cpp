// scrm-route: decides routing for §8 scenarios read from a file or standard input and prints the
// decisions (or, with --check, compares them with each scenario's "expect"). Only argument
// handling and I/O live here; the work is in routing_json and routing_core.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>

#include "scrm/routing/scenario_json.hpp"

namespace {

constexpr const char* usage_text =
    R"(Usage: scrm-route [--receipt] [--pretty] [--check] [FILE | -]

Decides where each message scenario would be routed (DESIGN.md §5) and prints the decisions as a
JSON array, in input order. Input: a JSON array of scenarios, or one scenario object (DESIGN.md §8),
from FILE, or from standard input when FILE is "-" or absent. An invalid scenario yields
{"name": ..., "error": "..."} and the others are still decided.

Options:
  --receipt   add each decision's receipt: candidates, why every other agent was excluded,
              tie-break, working-hours verdict, the fate of each auto-reply kind
  --pretty    indent the output (default: one decision per line)
  --check     instead of the decisions, compare each with the scenario's "expect" object and
              print one line per scenario (ok / FAIL / SKIP) and a summary
  -h, --help  show this text

Exit status: 0 done (invalid scenarios are reported in the output); 1 --check found a mismatch;
2 bad usage, unreadable FILE, or input that is not JSON (message on standard error).
)";

struct options {
    bool receipt = false;
    bool pretty = false;
    bool check = false;
    std::string file = "-";
};

bool read_input(const std::string& file, std::string& out) {
    if (file == "-") {
        out.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
        return !std::cin.bad();
    }
    std::ifstream in(file, std::ios::binary);
    if (!in) return false;
    out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return !in.bad();
}

int run_check(const std::vector<scrm::routing::scenario>& scenarios) {
    using verdict = scrm::routing::check_result::verdict;
    std::size_t passed = 0, failed = 0, unchecked = 0;
    for (std::size_t i = 0; i < scenarios.size(); ++i) {
        const auto& sc = scenarios[i];
        const auto result = scrm::routing::check(sc, scrm::routing::route(sc));
        const std::string name = sc.name ? *sc.name : "#" + std::to_string(i);
        switch (result.outcome) {
            case verdict::pass:
                ++passed;
                std::cout << "ok    " << name << '\n';
                break;
            case verdict::fail:
                ++failed;
                std::cout << "FAIL  " << name << ": " << result.detail << '\n';
                break;
            case verdict::unchecked:
                ++unchecked;
                std::cout << "SKIP  " << name << ": " << result.detail << '\n';
                break;
        }
    }
    std::cout << passed << " passed, " << failed << " failed, " << unchecked << " unchecked\n";
    return failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    options opt;
    bool have_file = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            std::cout << usage_text;
            return 0;
        }
        if (arg == "--receipt") {
            opt.receipt = true;
        } else if (arg == "--pretty") {
            opt.pretty = true;
        } else if (arg == "--check") {
            opt.check = true;
        } else if ((arg.size() > 1 && arg[0] == '-') || have_file) {
            std::cerr << "scrm-route: unexpected argument '" << arg << "'\n\n" << usage_text;
            return 2;
        } else {
            opt.file = arg;
            have_file = true;
        }
    }

    std::string input;
    if (!read_input(opt.file, input)) {
        std::cerr << "scrm-route: cannot read " << (opt.file == "-" ? "standard input" : opt.file)
                  << '\n';
        return 2;
    }
    auto parsed = scrm::routing::parse_scenarios(input);
    if (const auto* err = std::get_if<scrm::routing::document_error>(&parsed)) {
        std::cerr << "scrm-route: " << (opt.file == "-" ? "standard input" : opt.file) << ": "
                  << err->message << '\n';
        return 2;
    }
    const auto& scenarios = std::get<std::vector<scrm::routing::scenario>>(parsed);
    if (opt.check) return run_check(scenarios);

    std::vector<scrm::routing::routed> results;
    results.reserve(scenarios.size());
    const auto wr =
        opt.receipt ? scrm::routing::with_receipt::yes : scrm::routing::with_receipt::no;
    for (const auto& sc : scenarios) results.push_back(scrm::routing::route(sc, wr));
    const std::string out = scrm::routing::write_decisions(
        results, opt.pretty ? scrm::routing::json_style::pretty : scrm::routing::json_style::lines);
    std::cout << out;
    std::cout.flush();
    return std::cout ? 0 : 2;
}

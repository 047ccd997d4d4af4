// The `scrm-route` scenario format (DESIGN.md §8): JSON scenarios in, snapshots out (with a
// message naming every missing or malformed field), decisions back out as JSON, and the `expect`
// comparison behind `scrm-route --check`. Library `routing_json`; RapidJSON stays private to it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "scrm/routing/decide.hpp"
#include "scrm/routing/decision.hpp"
#include "scrm/routing/snapshot.hpp"

namespace scrm::routing {

// A scenario's "expect" object: {"error": …} or the five decision fields.
struct expectation {
    bool error = false;  // an error is expected (its wording does not matter)
    decision expected;   // when !error: rule, targets, owner, assign_exclusive, auto_reply
    friend bool operator==(const expectation&, const expectation&) = default;
};

// One entry of the input array.
struct scenario {
    std::optional<std::string> name;  // the entry's "name" when it is a string
    std::optional<snapshot> input;    // engaged iff the entry is valid
    // Every problem found, "; "-separated, each starting with the field's path
    // ("agents[1].id: duplicate agent id \"a1\" (also agents[0])"). Empty iff `input` is engaged.
    std::string error;
    std::optional<expectation> expect;  // when "expect" is present and well-formed
    std::string expect_error;           // why a present "expect" could not be read
};

// The input as a whole is unusable: not JSON (message with the byte offset), or neither an array
// nor an object.
struct document_error {
    std::string message;
};

// Parses §8 input: an array of scenarios or one scenario object (treated as an array of one).
// Entries that are not objects, or that fail validation (including validate()), come back with
// `error` set; the others are unaffected. Unknown keys are ignored. Does not throw.
std::variant<std::vector<scenario>, document_error> parse_scenarios(std::string_view json);

// One output entry: the scenario's name and its decision, or the error message.
struct routed {
    std::optional<std::string> name;
    std::variant<decision, std::string> outcome;
};

routed route(const scenario& sc, with_receipt r = with_receipt::no);

enum class json_style : unsigned char {
    lines,   // one entry per line inside the array (diff- and grep-friendly)
    pretty,  // indented
};

// Writes the §8 output array: {"name", "targets" (sorted), "owner", "assign_exclusive",
// "auto_reply", "rule"[, "receipt"]} per decision, {"name", "error"} per invalid entry. A decision
// carrying a receipt gets a "receipt" object. Ends with a newline.
std::string write_decisions(const std::vector<routed>& results,
                            json_style style = json_style::lines);

// parse_scenarios + route + write_decisions: what `scrm-route` prints.
std::variant<std::string, document_error> route_document(std::string_view json, with_receipt r,
                                                         json_style style = json_style::lines);

struct check_result {
    enum class verdict : unsigned char { pass, fail, unchecked } outcome = verdict::unchecked;
    std::string detail;  // for fail: expected vs actual; for unchecked: why
};

// Compares a routed entry with its scenario's expectation: the five fields must be equal; an
// expected error only needs an error. `unchecked` when the scenario has no "expect".
check_result check(const scenario& sc, const routed& r);

}  // namespace scrm::routing

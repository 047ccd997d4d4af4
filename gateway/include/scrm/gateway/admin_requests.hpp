// The admin endpoints' input and their pure parts (docs/api.md "Administration"): request bodies
// and query strings with problems in Simplified Chinese, and owner reassignment as a pure
// function — which receiver each fan goes to, and the plan token that binds a preview to its
// apply. No I/O, thread-safe; admin_api.cpp and admin_reassign.cpp use them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "scrm/gateway/agent_requests.hpp"
#include "scrm/gateway/routing_settings.hpp"

namespace scrm::gateway {

// ---- routing settings: PUT /api/admin/routing ----------------------------------------------

// The members given (any subset of routing_settings()' keys), each checked by check_setting.
// Unknown members, a body that is not a JSON object and an empty object are refused; problems
// name the member ("work_hours[0].start") and the rule, in Chinese.
struct routing_update {
    std::vector<std::pair<const routing_setting*, setting_value>> given;
};
struct routing_update_problem {
    std::string field;  // "work_hours[0].start"
    std::string error;  // Chinese
};
struct parsed_routing_update {
    std::optional<routing_update> value;
    std::string problem;                          // all problems in one sentence (Chinese)
    std::vector<routing_update_problem> details;  // one per problem (may be empty)
};
parsed_routing_update parse_routing_update(std::string_view body);

// ---- owner reassignment (seed 000: 批量更换归属) -------------------------------------------

enum class owner_role { consultant, exclusive };
enum class distribution { average, round_robin };
const char* to_string(owner_role r) noexcept;
const char* to_string(distribution d) noexcept;
// fans column of a role (a constant: safe to splice into SQL).
const char* owner_column(owner_role r) noexcept;

// Where an agent's fans of one role go: receivers in the order given (none: the role is
// cleared) and how they are shared.
struct fan_destination {
    std::vector<std::uint64_t> to_agents;
    distribution how = distribution::round_robin;
};

// POST /api/admin/reassign/preview and /apply: {"role":"consultant"|"exclusive",
// "from_agents":[ids…], "to_agents":[ids…], "distribution":"average"|"round_robin"} and, for
// apply, "plan" (the preview's token). from_agents: 1–50 distinct ids; to_agents: 0–50 distinct
// ids (none: clear); distribution required when there are receivers.
struct reassign_request {
    owner_role role = owner_role::consultant;
    std::vector<std::uint64_t> from_agents;
    fan_destination to;
    std::optional<std::string> plan;
};
parsed<reassign_request> parse_reassign(std::string_view body, bool need_plan);

// POST /api/admin/agents/{id}/deactivate: {} or {"consultant_fans": {"to_agents":[…],
// "distribution":…}, "exclusive_fans": {…}} — where the agent's fans of each role go.
struct deactivate_request {
    std::optional<fan_destination> consultant_fans, exclusive_fans;
};
parsed<deactivate_request> parse_deactivate(std::string_view body);

// The receiver of each of `fans` fans, in their order: round_robin gives fan i to receivers[i %
// n] (1st, 3rd, 5th… to the first of two); average shuffles the fans and the receivers with
// `seed` (Fisher–Yates on splitmix64, fully specified so every instance computes the same) and
// deals them in turn — each receiver gets ⌊fans/n⌋ or ⌈fans/n⌉, at random which. No receivers:
// nullopt for every fan (cleared).
std::vector<std::optional<std::uint64_t>> plan_reassignment(
    std::size_t fans, const std::vector<std::uint64_t>& receivers, distribution how,
    std::uint64_t seed);

// A fan as the reassignment sees it, in the documented order (fans.id ascending).
struct reassign_fan {
    std::uint64_t id = 0;  // fans.id
    std::uint64_t account_id = 0;
    std::string openid;
    std::uint64_t owner = 0;  // the from agent it belongs to now
};

// What a preview was computed from — the request and the fans with their owners — as SHA-256
// hex: apply recomputes it and refuses when anything changed meanwhile.
std::string plan_fingerprint(const reassign_request& r, const std::vector<reassign_fan>& fans);
// "<seed: 16 hex digits>.<fingerprint: 64 hex digits>" and back (nullopt when malformed).
std::string plan_token(std::uint64_t seed, std::string_view fingerprint);
std::optional<std::pair<std::uint64_t, std::string>> parse_plan_token(std::string_view token);

// ---- the audit log: GET /api/admin/audit?action=&before=&limit= -----------------------------

struct audit_query {
    std::optional<std::string> action;    // exact ("fan.owner") or a prefix ending in '.' ("fan.")
    std::optional<std::uint64_t> before;  // entries with a smaller id (the previous page's last)
    std::uint32_t limit = 50;             // 1–200
};
parsed<audit_query> parse_audit_query(std::string_view query);

// `text` as a JSON value if it is one (the audit log's detail), else as a JSON string.
std::string json_or_string(std::string_view text);

}  // namespace scrm::gateway

// Request bodies of the template settings, API keys and snippets endpoints (docs/api.md
// "Template settings", "API keys", "Snippets"), with their problems in Simplified Chinese. Pure:
// no I/O, thread-safe. The settings' own rules are templates::validate's, applied by the handler
// to the setting after the change.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scrm/gateway/agent_requests.hpp"
#include "scrm/templates/setting.hpp"

namespace scrm::gateway {

// PUT /api/admin/templates/{kind}: any of "template_id" (text), "keywords" ([{"keyword","value"}]
// or {"thing1":"…"}), "url" (text; null or "" removes it), "miniprogram" ({"appid","page"}; null
// removes it), "enabled" (true/false). At least one; unknown members refused.
parsed<templates::setting_update> parse_template_update(std::string_view body);

// POST /api/admin/api-keys: {"name":"…"} — 1–64 characters, no control characters, no leading or
// trailing space (scrm-admin apikey add's rule).
inline constexpr std::size_t api_key_name_max = 64;
parsed<std::string> parse_api_key_name(std::string_view body);

// ---- snippets ------------------------------------------------------------------------------

inline constexpr std::size_t snippet_groups_max = 50;      // groups per clinic
inline constexpr std::size_t snippets_per_list_max = 200;  // per group, and per agent's own
inline constexpr std::size_t snippet_text_max = 1000;      // characters
inline constexpr std::size_t snippet_group_name_max = 64;

// A group's body: POST {"name"} (required), PUT any of {"name","position"}. position: 1-based
// place in the list (larger than the list: last).
struct snippet_group_change {
    std::optional<std::string> name;
    std::optional<std::size_t> position;
};
parsed<snippet_group_change> parse_snippet_group(std::string_view body, bool create);

// A snippet's body: POST {"text"} (required; appended), PUT any of {"text","position"}. text:
// 1–snippet_text_max characters, line breaks allowed, no other control characters.
struct snippet_change {
    std::optional<std::string> text;
    std::optional<std::size_t> position;
};
parsed<snippet_change> parse_snippet(std::string_view body, bool create);

// `ids` (a list in order) with `id` moved to the 1-based `position` — past the end: last; the
// others keep their order. `ids` unchanged when `id` is not in it.
std::vector<std::uint64_t> moved(std::vector<std::uint64_t> ids, std::uint64_t id,
                                 std::size_t position);

}  // namespace scrm::gateway

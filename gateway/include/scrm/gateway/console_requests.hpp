// The staff console's input and output rules as plain values (docs/api.md "The console"): the
// conversation list's filters, search and cursor, the history's cursor, the fan panel's bodies
// (remark and tags, owners, patients), the password change, display names and previews. Pure: no
// Asio, no I/O, thread-safe; the handlers in console_api.cpp and fan_panel_api.cpp use them.
// Problems are Simplified Chinese, shown to the agent as is.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scrm/gateway/agent_requests.hpp"

namespace scrm::gateway {

// ---- GET /api/conversations ----------------------------------------------------------------

enum class conversation_filter : std::uint8_t {
    all,                 // every conversation the agent may see
    mine,                // the agent is the fan's consultant or exclusive agent, or holds its lock
    waiting,             // the agent's backlog (DESIGN.md §5 "Backlog")
    consultant_waiting,  // fans waiting on an offline consultant (front desk and admins)
};

// A list position: the last row of the previous page (newest activity first). Text form
// "<activity ms since epoch>.<fan id>".
struct list_cursor {
    std::int64_t activity_ms = 0;
    std::uint64_t fan_id = 0;
    friend bool operator==(const list_cursor&, const list_cursor&) = default;
};
std::string to_string(const list_cursor& c);

inline constexpr std::size_t default_page = 30;
inline constexpr std::size_t max_page = 100;
inline constexpr std::size_t max_search_chars = 32;

struct list_query {
    conversation_filter filter = conversation_filter::all;
    std::optional<std::uint64_t> store;  // store=<id>
    std::optional<std::string> search;   // q: 1–32 characters, trimmed
    std::optional<list_cursor> cursor;
    std::size_t limit = default_page;  // 1–100
    friend bool operator==(const list_query&, const list_query&) = default;
};
// The query string of GET /api/conversations: filter=mine|waiting|consultant_waiting|all
// (default all), store=<id>, q=<text>, cursor=<from next_cursor>, limit=1..100.
parsed<list_query> parse_list_query(std::string_view query);

// `text` as a LIKE pattern matching it anywhere: %, _ and \ escaped (ESCAPE '\\').
std::string like_anywhere(std::string_view text);

// ---- GET …/messages ------------------------------------------------------------------------

// A history position: older than inbound message `inbound` and outbox row `outbound` (0: no bound
// yet). Text form "<inbound>.<outbound>".
struct history_cursor {
    std::uint64_t inbound = 0;
    std::uint64_t outbound = 0;
    friend bool operator==(const history_cursor&, const history_cursor&) = default;
};
std::string to_string(const history_cursor& c);

struct history_query {
    std::optional<history_cursor> before;
    std::size_t limit = default_page;
    friend bool operator==(const history_query&, const history_query&) = default;
};
// before=<from next_before>, limit=1..100.
parsed<history_query> parse_history_query(std::string_view query);

// ---- the fan panel -------------------------------------------------------------------------

inline constexpr std::size_t max_remark_chars = 32;
inline constexpr std::size_t max_tags = 20;
inline constexpr std::size_t max_tag_chars = 16;

// POST …/fan: {"remark": "…" | null (clear), "tags": ["…", …]} — at least one of them. A remark
// is 1–32 characters (trimmed); tags 0–20 distinct strings of 1–16 characters each, no '"' or
// control characters.
struct fan_profile_request {
    bool set_remark = false;
    std::optional<std::string> remark;  // with set_remark: nullopt clears it
    std::optional<std::vector<std::string>> tags;
};
parsed<fan_profile_request> parse_fan_profile(std::string_view body);

// The tags as a JSON array, and back (nullopt: not an array of strings).
std::string tags_json(const std::vector<std::string>& tags);
std::optional<std::vector<std::string>> parse_tags_json(std::string_view json);

// POST …/owner: {"consultant": id | null, "exclusive": id | null} — at least one given; null
// clears it.
struct owner_request {
    bool set_consultant = false;
    std::optional<std::uint64_t> consultant;
    bool set_exclusive = false;
    std::optional<std::uint64_t> exclusive;
};
parsed<owner_request> parse_owner(std::string_view body);

// POST …/bind-patient: {"patient_id": id} (a patient of the clinic), or {"name": "…",
// "phone": "…", "record_no": "…"} — a name of 1–32 characters, a phone of 3–20 of digits, '+',
// '-' and spaces, a record number of 1–64 printable ASCII characters; phone and record number
// optional. With a record number the clinic's patient of that number is reused.
struct bind_patient_request {
    std::optional<std::uint64_t> patient_id;
    std::string name;
    std::optional<std::string> phone;
    std::optional<std::string> record_no;
};
parsed<bind_patient_request> parse_bind_patient(std::string_view body);

// POST …/unbind-patient: {"patient_id": id}.
parsed<std::uint64_t> parse_unbind_patient(std::string_view body);

// ---- POST /api/agent/password --------------------------------------------------------------

inline constexpr std::size_t min_password_bytes = 8;
inline constexpr std::size_t max_password_bytes = 256;

// {"old_password": "…", "new_password": "…"}: the new one 8–256 bytes, different from the old.
struct password_change {
    std::string old_password;
    std::string new_password;
};
parsed<password_change> parse_password_change(std::string_view body);

// ---- output --------------------------------------------------------------------------------

// What the console calls a fan (WeChat no longer gives nicknames): the remark, else the bound
// patient's name, else "顾客" and the openid's last 6 characters.
std::string display_name(const std::optional<std::string>& remark,
                         const std::optional<std::string>& patient_name, std::string_view openid);

// The first `max_chars` characters of UTF-8 `text` (whole characters), "…" appended when cut.
std::string preview(std::string_view text, std::size_t max_chars = 40);

}  // namespace scrm::gateway

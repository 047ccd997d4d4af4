// A clinic's routing settings as people set them (table clinic_routing, DESIGN.md §5): which
// settings there are, the one rule for each value, and reading and writing them on a MySQL
// session. `scrm-admin routing show|set` and the admin API (GET/PUT /api/admin/routing) both use
// this, so a value one accepts the other accepts too. Problems come in English (for operators)
// and Simplified Chinese (for the admin page).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "scrm/common/error.hpp"

namespace scrm::storage {
class mysql_session;
}

namespace scrm::gateway {

enum class routing_value {
    on_off,   // a switch
    text,     // an auto-reply text: 1–600 characters, line breaks allowed
    seconds,  // whole seconds within [min, max]
    offset,   // a UTC offset "+08:00" (stored as minutes)
    hours,    // working hours: a JSON array of weekly windows
    dates,    // closed dates: a JSON array of "YYYY-MM-DD"
};

struct routing_setting {
    const char* key;     // the admin API's member: "exclusive_mode", "welcome_text", "utc_offset"
    const char* flag;    // scrm-admin's option: "--exclusive-mode"
    const char* column;  // clinic_routing column (a constant: safe to splice into SQL)
    const char* label;   // its name for people (Chinese): "专属模式"
    routing_value kind;
    long min = 0;  // seconds only
    long max = 0;
};

// Every setting, in the order shown (and read by read_routing_settings).
std::span<const routing_setting> routing_settings() noexcept;
// The setting whose API key is `key`, or nullptr.
const routing_setting* routing_setting_by_key(std::string_view key) noexcept;

// A value as a front end read it: a switch, an integer, or text (for hours and dates: their JSON
// text). std::monostate: a value of the wrong type (e.g. "yes" for a switch), refused with the
// setting's rule.
using setting_input = std::variant<std::monostate, bool, long long, std::string>;
// A value to store: an integer column or a text one.
using setting_value = std::variant<std::int64_t, std::string>;

// A refused value: where within the setting ("[0].start"; empty for the whole value) and the
// rule, for operators and for people.
struct setting_problem {
    std::string where;
    std::string en;
    std::string zh;
    friend bool operator==(const setting_problem&, const setting_problem&) = default;
};

// The value to store for `in` (hours normalised: weekdays sorted, clocks "HH:MM"; dates sorted),
// or nullopt with the problems appended to `problems`.
std::optional<setting_value> check_setting(const routing_setting& s, const setting_input& in,
                                           std::vector<setting_problem>& problems);

// A stored value (as MySQL returns it, text) as JSON for the API: a switch as true/false, seconds
// as a number, the offset as "+08:00", texts as strings, hours and dates as their JSON.
std::string setting_json(const routing_setting& s, const std::optional<std::string>& stored);

// The settings that differ between two reads (routing_settings() order), as a JSON object for
// the audit log and the API's answer: {"<key>":{"before":…,"after":…},…}; "{}" when none does.
std::string routing_changes_json(const std::vector<std::optional<std::string>>& before,
                                 const std::vector<std::optional<std::string>>& after);

// ---- on a MySQL session (blocking: a CLI's session or inside mysql_pool::run) -------------

// The clinic's stored settings in routing_settings() order, within the caller's transaction.
// A clinic never configured has no row: one is inserted to read the column defaults (so the
// defaults live in the migration only) and `inserted` is set — the caller rolls back to leave
// nothing written, or keeps it when it writes next.
struct stored_settings {
    std::vector<std::optional<std::string>> values;
    bool inserted = false;
};
result<stored_settings> read_routing_settings(storage::mysql_session& db, std::uint64_t clinic,
                                              bool for_update = false);

// Sets `given` on the clinic's row (which read_routing_settings made sure exists), within the
// caller's transaction; the values after the change, in routing_settings() order.
result<std::vector<std::optional<std::string>>> write_routing_settings(
    storage::mysql_session& db, std::uint64_t clinic,
    const std::vector<std::pair<const routing_setting*, setting_value>>& given);

}  // namespace scrm::gateway

// Text forms of the times routing deals in, parsed and printed by hand (g++ 12 has neither a
// time-zone database nor <format>): RFC 3339 instants, fixed UTC offsets, dates and clock times.
// Every parser accepts exactly the documented form and returns nullopt for anything else.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace scrm::routing {

// "+08:00", "-05:30", "+00:00", "-00:00" or "Z" (hours 00–23, minutes 00–59).
std::optional<std::chrono::minutes> parse_utc_offset(std::string_view text) noexcept;

// RFC 3339 "YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)", e.g. "2026-11-23T10:00:00+08:00" or
// "2026-11-23T02:00:00Z". The date must exist (leap years checked); seconds 00–59 (no leap
// second); a fraction is truncated to whole seconds.
std::optional<std::chrono::sys_seconds> parse_timestamp(std::string_view text) noexcept;

// "YYYY-MM-DD", a date that exists.
std::optional<std::chrono::year_month_day> parse_date(std::string_view text) noexcept;

// "HH:MM" as minutes after midnight: 00:00–23:59, and "24:00" too when `allow_24` (a window end).
std::optional<std::chrono::minutes> parse_clock(std::string_view text, bool allow_24) noexcept;

std::string format_utc_offset(std::chrono::minutes offset);             // "+08:00", "-05:30"
std::string format_date(const std::chrono::year_month_day& d);          // "2026-11-23"
std::string format_clock(std::chrono::minutes minutes_after_midnight);  // "09:00", "24:00"
// "2026-11-23T10:00:00+08:00": the instant as read at `offset`.
std::string format_timestamp(std::chrono::sys_seconds t, std::chrono::minutes offset);

}  // namespace scrm::routing

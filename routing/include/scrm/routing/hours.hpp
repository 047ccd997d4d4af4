// Clinic-local time and working hours: converting `now` with the clinic's fixed UTC offset, and
// deciding whether that instant is inside the working hours (windows, overnight windows, closed
// dates). Pure arithmetic on std::chrono calendar types; no time-zone database.
#pragma once

#include <chrono>

#include "scrm/routing/decision.hpp"
#include "scrm/routing/snapshot.hpp"

namespace scrm::routing {

// The wall-clock reading of `now` at the fixed offset `utc_offset` (local = UTC + offset).
local_time to_local(std::chrono::sys_seconds now, std::chrono::minutes utc_offset) noexcept;

struct hours_result {
    hours_state state = hours_state::always_open;
    local_time local;
    friend bool operator==(const hours_result&, const hours_result&) = default;
};

// Whether the clinic is open at `now` (DESIGN.md §8). No windows = always open; otherwise open iff
// some window covers the instant, start inclusive and end exclusive. A closed date closes every
// instant of that clinic-local day — including the tail of an overnight window begun the day
// before — and, since an overnight window belongs to the weekday it starts on, it also cancels the
// after-midnight tail of a window that starts on the closed date (Friday closed: no Friday
// 20:00–02:00 shift, so Saturday 01:00 is closed too); both report `closed_date`.
hours_result evaluate_hours(const clinic_config& c, std::chrono::sys_seconds now) noexcept;

// Which part of `w`, if any, covers the local reading `t` (closed dates not considered): the part
// on the day the window starts, or the after-midnight tail of an overnight window begun the day
// before.
enum class window_part : unsigned char { none, same_day, overnight_tail };
window_part covering_part(const work_window& w, const local_time& t) noexcept;

}  // namespace scrm::routing

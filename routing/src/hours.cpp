// Clinic-local time and working hours (see hours.hpp for the rules).
#include "scrm/routing/hours.hpp"

#include <algorithm>

namespace scrm::routing {

namespace chr = std::chrono;

local_time to_local(chr::sys_seconds now, chr::minutes utc_offset) noexcept {
    const chr::sys_seconds local = now + utc_offset;
    const chr::sys_days day = chr::floor<chr::days>(local);
    local_time t;
    t.date = chr::year_month_day{day};
    t.weekday = chr::weekday{day}.iso_encoding();
    t.time_of_day = local - day;
    return t;
}

window_part covering_part(const work_window& w, const local_time& t) noexcept {
    const chr::seconds tod = t.time_of_day;
    if (w.end > w.start) {
        return w.weekdays.contains(t.weekday) && w.start <= tod && tod < w.end
                   ? window_part::same_day
                   : window_part::none;
    }
    // Overnight: [start, 24:00) on a listed day, then [00:00, end) on the day after.
    if (w.weekdays.contains(t.weekday) && tod >= w.start) return window_part::same_day;
    const unsigned previous = t.weekday == 1 ? 7 : t.weekday - 1;
    if (w.weekdays.contains(previous) && tod < w.end) return window_part::overnight_tail;
    return window_part::none;
}

hours_result evaluate_hours(const clinic_config& c, chr::sys_seconds now) noexcept {
    hours_result r;
    r.local = to_local(now, c.utc_offset);
    const auto closed = [&c](const chr::year_month_day& d) {
        return std::find(c.closed_dates.begin(), c.closed_dates.end(), d) != c.closed_dates.end();
    };
    if (!c.closed_dates.empty() && closed(r.local.date)) {
        r.state = hours_state::closed_date;
        return r;
    }
    if (c.work_hours.empty()) {
        r.state = hours_state::always_open;
        return r;
    }
    bool tail_cancelled = false;
    for (const work_window& w : c.work_hours) {
        switch (covering_part(w, r.local)) {
            case window_part::none: break;
            case window_part::same_day: r.state = hours_state::open; return r;
            case window_part::overnight_tail:
                // The window belongs to yesterday; a closed yesterday cancels it.
                if (!c.closed_dates.empty() &&
                    closed(chr::year_month_day{chr::sys_days{r.local.date} - chr::days{1}})) {
                    tail_cancelled = true;
                    break;
                }
                r.state = hours_state::open;
                return r;
        }
    }
    r.state = tail_cancelled ? hours_state::closed_date : hours_state::outside_hours;
    return r;
}

}  // namespace scrm::routing

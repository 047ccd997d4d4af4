// Names of the routing enums (the §8 JSON spelling) and operator<< for every routing value type,
// so that test failures and logs show readable values.
#include <ostream>

#include "scrm/routing/decision.hpp"
#include "scrm/routing/snapshot.hpp"
#include "scrm/routing/time_text.hpp"

namespace scrm::routing {

namespace {

const char* tf(bool b) {
    return b ? "true" : "false";
}

template <class T>
void print_optional(std::ostream& os, const std::optional<T>& v) {
    if (v) {
        os << '"' << *v << '"';
    } else {
        os << "null";
    }
}

void print_ids(std::ostream& os, const std::vector<std::string>& ids) {
    os << '[';
    for (std::size_t i = 0; i < ids.size(); ++i) os << (i ? ", " : "") << '"' << ids[i] << '"';
    os << ']';
}

template <class T>
void print_list(std::ostream& os, const std::vector<T>& items) {
    os << '[';
    for (std::size_t i = 0; i < items.size(); ++i) os << (i ? ", " : "") << items[i];
    os << ']';
}

}  // namespace

const char* to_string(auto_reply_kind k) noexcept {
    switch (k) {
        case auto_reply_kind::consultant_offline: return "consultant_offline";
        case auto_reply_kind::after_hours: return "after_hours";
        case auto_reply_kind::no_agent: return "no_agent";
    }
    return "?";
}

const char* to_string(route_rule r) noexcept {
    switch (r) {
        case route_rule::consultant: return "consultant";
        case route_rule::session: return "session";
        case route_rule::exclusive: return "exclusive";
        case route_rule::exclusive_offline_shared: return "exclusive_offline_shared";
        case route_rule::assigned: return "assigned";
        case route_rule::shared: return "shared";
        case route_rule::none: return "none";
    }
    return "?";
}

const char* to_string(exclusion_reason r) noexcept {
    switch (r) {
        case exclusion_reason::offline: return "offline";
        case exclusion_reason::no_permission: return "no_permission";
        case exclusion_reason::other_store: return "other_store";
        case exclusion_reason::no_store: return "no_store";
        case exclusion_reason::not_owner: return "not_owner";
        case exclusion_reason::higher_load: return "higher_load";
        case exclusion_reason::assigned_more_recently: return "assigned_more_recently";
        case exclusion_reason::larger_id: return "larger_id";
    }
    return "?";
}

const char* to_string(tie_break t) noexcept {
    switch (t) {
        case tie_break::none: return "none";
        case tie_break::only_candidate: return "only_candidate";
        case tie_break::load: return "load";
        case tie_break::last_assigned: return "last_assigned";
        case tie_break::id: return "id";
    }
    return "?";
}

const char* to_string(hours_state h) noexcept {
    switch (h) {
        case hours_state::always_open: return "always_open";
        case hours_state::open: return "open";
        case hours_state::outside_hours: return "outside_hours";
        case hours_state::closed_date: return "closed_date";
    }
    return "?";
}

const char* to_string(auto_reply_status s) noexcept {
    switch (s) {
        case auto_reply_status::not_applicable: return "not_applicable";
        case auto_reply_status::switched_off: return "switched_off";
        case auto_reply_status::suppressed: return "suppressed";
        case auto_reply_status::sent: return "sent";
        case auto_reply_status::outranked: return "outranked";
    }
    return "?";
}

std::ostream& operator<<(std::ostream& os, auto_reply_kind k) {
    return os << to_string(k);
}
std::ostream& operator<<(std::ostream& os, route_rule r) {
    return os << to_string(r);
}
std::ostream& operator<<(std::ostream& os, exclusion_reason r) {
    return os << to_string(r);
}
std::ostream& operator<<(std::ostream& os, tie_break t) {
    return os << to_string(t);
}
std::ostream& operator<<(std::ostream& os, hours_state h) {
    return os << to_string(h);
}
std::ostream& operator<<(std::ostream& os, auto_reply_status s) {
    return os << to_string(s);
}

std::ostream& operator<<(std::ostream& os, weekday_set w) {
    os << '[';
    bool first = true;
    for (unsigned d = 1; d <= 7; ++d) {
        if (!w.contains(d)) continue;
        os << (first ? "" : ",") << d;
        first = false;
    }
    return os << ']';
}

std::ostream& operator<<(std::ostream& os, const work_window& w) {
    return os << "{weekdays: " << w.weekdays << ", start: " << format_clock(w.start)
              << ", end: " << format_clock(w.end) << '}';
}

std::ostream& operator<<(std::ostream& os, const clinic_config& c) {
    os << "{consultant_mode: " << tf(c.consultant_mode)
       << ", exclusive_mode: " << tf(c.exclusive_mode)
       << ", chain_store_mode: " << tf(c.chain_store_mode)
       << ", auto_reply_enabled: " << tf(c.auto_reply_enabled)
       << ", consultant_offline_prompt_enabled: " << tf(c.consultant_offline_prompt_enabled)
       << ", auto_reply_off: ";
    print_list(os, c.auto_reply_off);
    os << ", timezone: " << format_utc_offset(c.utc_offset) << ", work_hours: ";
    print_list(os, c.work_hours);
    os << ", closed_dates: [";
    for (std::size_t i = 0; i < c.closed_dates.size(); ++i) {
        os << (i ? ", " : "") << format_date(c.closed_dates[i]);
    }
    return os << "]}";
}

std::ostream& operator<<(std::ostream& os, const agent_state& a) {
    os << "{id: \"" << a.id << "\", store: ";
    print_optional(os, a.store);
    return os << ", online: " << tf(a.online) << ", can_receive: " << tf(a.can_receive)
              << ", load: " << a.load << ", last_assigned: " << a.last_assigned << '}';
}

std::ostream& operator<<(std::ostream& os, const fan_state& f) {
    os << "{openid: \"" << f.openid << "\", consultant: ";
    print_optional(os, f.consultant);
    os << ", exclusive_agent: ";
    print_optional(os, f.exclusive_agent);
    os << ", store: ";
    print_optional(os, f.store);
    return os << '}';
}

std::ostream& operator<<(std::ostream& os, const snapshot& s) {
    os << "{now: " << format_timestamp(s.now, s.config.utc_offset) << ", config: " << s.config
       << ", agents: ";
    print_list(os, s.agents);
    os << ", fan: " << s.fan << ", session_holder: ";
    print_optional(os, s.session_holder);
    return os << ", auto_reply_suppressed: " << tf(s.auto_reply_suppressed) << '}';
}

std::ostream& operator<<(std::ostream& os, const local_time& t) {
    const long s = t.time_of_day.count();
    return os << format_date(t.date) << " (" << t.weekday << ") "
              << format_clock(std::chrono::minutes{s / 60}) << ':' << (s % 60 < 10 ? "0" : "")
              << s % 60;
}

std::ostream& operator<<(std::ostream& os, const exclusion& e) {
    return os << '"' << e.agent << "\": " << e.reason;
}

std::ostream& operator<<(std::ostream& os, const receipt& r) {
    os << "{candidates: ";
    print_ids(os, r.candidates);
    os << ", excluded: {";
    for (std::size_t i = 0; i < r.excluded.size(); ++i) os << (i ? ", " : "") << r.excluded[i];
    os << "}, tie_break: " << r.tie << ", hours: " << r.hours << ", local: " << r.local
       << ", auto_replies: {";
    for (std::size_t k = 0; k < r.auto_replies.size(); ++k) {
        os << (k ? ", " : "") << static_cast<auto_reply_kind>(k) << ": " << r.auto_replies[k];
    }
    os << "}, stale_session_holder: ";
    print_optional(os, r.stale_session_holder);
    return os << '}';
}

std::ostream& operator<<(std::ostream& os, const decision& d) {
    os << "{rule: " << d.rule << ", targets: ";
    print_ids(os, d.targets);
    os << ", owner: ";
    print_optional(os, d.owner);
    os << ", assign_exclusive: ";
    print_optional(os, d.assign_exclusive);
    os << ", auto_reply: ";
    if (d.auto_reply) {
        os << *d.auto_reply;
    } else {
        os << "null";
    }
    if (d.receipt) os << ", receipt: " << *d.receipt;
    return os << '}';
}

}  // namespace scrm::routing

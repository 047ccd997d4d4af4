// routing_live's plain parts: construction, key prefixes and printing (no coroutines here).
#include <algorithm>
#include <ostream>

#include "live_detail.hpp"
#include "scrm/routing/live.hpp"

namespace scrm::routing {

namespace {

std::ostream& print_list(std::ostream& os, const std::vector<std::string>& v) {
    os << '[';
    for (std::size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
    return os << ']';
}

}  // namespace

live_state::live_state(std::shared_ptr<storage::redis_client> redis, live_options options)
    : redis_(std::move(redis)), opts_(std::move(options)) {}

std::chrono::milliseconds live_state::fan_marks_ttl() const {
    // Clean-up only (decisions compare the stored instants with `now`): outlive every window.
    return std::max(
               {opts_.suppression_window, opts_.message_window.length, opts_.event_window.length}) +
           std::chrono::hours(1);
}

bool suppressed(const reply_marks& m, instant now, std::chrono::milliseconds window) noexcept {
    auto recent = [&](const std::optional<instant>& t) { return t && now - *t < window; };
    return recent(m.auto_reply) || recent(m.agent_reply);
}

window_state evaluate_window(window_kind kind, std::optional<instant> opened, int used, instant now,
                             const quota_rule& rule) noexcept {
    window_state w;
    w.kind = kind;
    w.opened = opened;
    w.used = used;
    w.open = opened && now < *opened + rule.length;
    w.remaining = w.open ? std::max(0, rule.messages - used) : 0;
    return w;
}

const char* to_string(window_kind k) noexcept {
    return k == window_kind::message ? "message" : "event";
}

const char* to_string(spend_status s) noexcept {
    switch (s) {
        case spend_status::spent: return "spent";
        case spend_status::closed: return "closed";
        case spend_status::exhausted: return "exhausted";
        case spend_status::last_slot_reserved: return "last_slot_reserved";
    }
    return "?";
}

std::ostream& operator<<(std::ostream& os, window_kind k) {
    return os << to_string(k);
}

std::ostream& operator<<(std::ostream& os, spend_status s) {
    return os << to_string(s);
}

std::ostream& operator<<(std::ostream& os, const spend_result& r) {
    os << '{' << r.status;
    if (r.window) os << ", " << *r.window << ", remaining: " << r.remaining;
    return os << '}';
}

std::ostream& operator<<(std::ostream& os, const window_state& w) {
    os << '{' << w.kind << ", " << (w.open ? "open" : "closed");
    if (w.opened) os << ", opened: " << w.opened->time_since_epoch().count() << "ms";
    return os << ", used: " << w.used << ", remaining: " << w.remaining << '}';
}

std::ostream& operator<<(std::ostream& os, const reply_marks& m) {
    auto put = [&](const std::optional<instant>& t) -> std::ostream& {
        if (t) return os << t->time_since_epoch().count() << "ms";
        return os << '-';
    };
    os << "{auto_reply: ";
    put(m.auto_reply) << ", agent_reply: ";
    return put(m.agent_reply) << '}';
}

std::string live_state::key_prefix(std::uint64_t clinic) const {
    return opts_.key_root + ":{c" + std::to_string(clinic) + "}:";
}

const char* to_string(lock_status s) noexcept {
    switch (s) {
        case lock_status::acquired: return "acquired";
        case lock_status::renewed: return "renewed";
        case lock_status::taken_over: return "taken_over";
        case lock_status::refused: return "refused";
    }
    return "?";
}

std::ostream& operator<<(std::ostream& os, lock_status s) {
    return os << to_string(s);
}

const char* to_string(assign_status s) noexcept {
    switch (s) {
        case assign_status::assigned: return "assigned";
        case assign_status::already_assigned: return "already_assigned";
        case assign_status::lost: return "lost";
        case assign_status::stale_pick: return "stale_pick";
        case assign_status::repicked: return "repicked";
    }
    return "?";
}

std::ostream& operator<<(std::ostream& os, assign_status s) {
    return os << to_string(s);
}

std::ostream& operator<<(std::ostream& os, const assign_result& r) {
    return os << '{' << r.status << ", exclusive: " << r.exclusive_agent.value_or("-") << '}';
}

std::ostream& operator<<(std::ostream& os, const agent_load& l) {
    return os << '{' << l.agent << ", load: " << l.load << ", last_assigned: " << l.last_assigned
              << '}';
}

std::ostream& operator<<(std::ostream& os, const claimed_timer& t) {
    return os << '{' << t.fan << ", due: " << t.due.time_since_epoch().count()
              << "ms, claim: " << t.claim << '}';
}

std::ostream& operator<<(std::ostream& os, const timer_info& t) {
    os << "{due: " << t.due.time_since_epoch().count() << "ms";
    if (t.lease_until)
        os << ", leased until: " << t.lease_until->time_since_epoch().count() << "ms";
    return os << '}';
}

std::ostream& operator<<(std::ostream& os, const lock_result& r) {
    os << '{' << r.status << ", holder: " << r.holder << ", token: " << r.token;
    if (r.previous_holder) os << ", previous: " << *r.previous_holder;
    return os << '}';
}

std::ostream& operator<<(std::ostream& os, const lock_info& l) {
    return os << "{holder: " << l.holder << ", token: " << l.token << ", ttl: " << l.ttl.count()
              << "ms}";
}

std::ostream& operator<<(std::ostream& os, const presence_change& c) {
    os << "{came_online: " << (c.came_online ? "true" : "false")
       << ", went_offline: " << (c.went_offline ? "true" : "false") << ", released: ";
    return print_list(os, c.released_fans) << '}';
}

std::ostream& operator<<(std::ostream& os, const offline_agent& a) {
    os << "{agent: " << a.agent << ", released: ";
    return print_list(os, a.released_fans)
           << ", was_accepting: " << (a.was_accepting ? "true" : "false") << '}';
}

std::ostream& operator<<(std::ostream& os, const expired_lock& l) {
    return os << "{fan: " << l.fan << ", holder: " << l.holder << ", token: " << l.token
              << ", due: " << l.due.time_since_epoch().count() << "ms}";
}

}  // namespace scrm::routing

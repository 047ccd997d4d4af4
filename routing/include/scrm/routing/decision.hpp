// The routing core's output: who is notified, who owns the message, whether the fan becomes an
// agent's exclusive fan, which auto-reply (if any) goes out — and, on request, the receipt that
// explains it to an admin ("why did this go to her?", "why to nobody?").
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "scrm/routing/snapshot.hpp"

namespace scrm::routing {

// The rule that decided (DESIGN.md §5), spelled as in the §8 JSON by to_string().
enum class route_rule : std::uint8_t {
    consultant,                // rule 1: the fan's consultant, online or not
    session,                   // rule 2: the online holder of the session lock
    exclusive,                 // rule 3: the fan's online, permitted exclusive agent
    exclusive_offline_shared,  // pool: exclusive agent unavailable, every other candidate shares it
    assigned,                  // pool: exclusive mode, even-distribution pick becomes exclusive
    shared,                    // pool: shared mode, every candidate
    none,                      // pool: no candidate; nobody is notified now
};

// Why an agent is not among the targets.
enum class exclusion_reason : std::uint8_t {
    offline,                 // console not connected or not accepting chats
    no_permission,           // lacks "receive online consultation"
    other_store,             // chain-store mode: the fan is bound to another store
    no_store,                // chain-store mode: the fan is bound to a store, the agent to none
    not_owner,               // rules 1–3: the message belongs to the consultant/holder/exclusive
    higher_load,             // lost the even-distribution pick on load
    assigned_more_recently,  // lost it on last_assigned (same load)
    larger_id,               // lost it on id (same load and last_assigned)
};

// The deciding criterion of an even-distribution pick (rule `assigned`): the one that separated
// the winner from the runner-up. `none` for every other rule.
enum class tie_break : std::uint8_t { none, only_candidate, load, last_assigned, id };

// Working hours at `now`: open (no hours configured, or inside a window) or closed (and why).
enum class hours_state : std::uint8_t { always_open, open, outside_hours, closed_date };

constexpr bool is_open(hours_state h) noexcept {
    return h == hours_state::always_open || h == hours_state::open;
}

// What happened to one auto-reply kind for this message.
enum class auto_reply_status : std::uint8_t {
    not_applicable,  // its condition does not hold
    switched_off,    // applies, but its switch (or the master switch) is off: falls through
    suppressed,      // applies and enabled, but auto_reply_suppressed silences it
    sent,            // the chosen one
    outranked,       // applies and enabled, but a higher-priority kind was sent
};

// The clinic-local wall-clock reading of `now`.
struct local_time {
    std::chrono::year_month_day date{};
    unsigned weekday = 1;                // ISO: 1 = Monday … 7 = Sunday
    std::chrono::seconds time_of_day{};  // [0, 24h)
    friend bool operator==(const local_time&, const local_time&) = default;
};

struct exclusion {
    std::string agent;
    exclusion_reason reason = exclusion_reason::offline;
    friend bool operator==(const exclusion&, const exclusion&) = default;
};

struct receipt {
    // The agents the deciding rule chose among, sorted by id: the owner alone for rules 1–3,
    // every pool candidate (after chain-store narrowing) for the pool rules.
    std::vector<std::string> candidates;
    // Every agent that is not a target, with why; sorted by agent id.
    std::vector<exclusion> excluded;
    tie_break tie = tie_break::none;
    hours_state hours = hours_state::always_open;
    local_time local;
    // Indexed by auto_reply_kind.
    std::array<auto_reply_status, auto_reply_kind_count> auto_replies{};
    // A session lock whose holder is offline was ignored; the shell should release it.
    std::optional<std::string> stale_session_holder;
    friend bool operator==(const receipt&, const receipt&) = default;
};

struct decision {
    route_rule rule = route_rule::none;
    std::vector<std::string> targets;             // agents to notify, sorted by id
    std::optional<std::string> owner;             // nullopt when shared or nobody
    std::optional<std::string> assign_exclusive;  // set only by rule `assigned`
    std::optional<auto_reply_kind> auto_reply;    // the passive reply to send, if any
    std::optional<struct receipt> receipt;        // engaged iff asked for
    friend bool operator==(const decision&, const decision&) = default;
};

const char* to_string(route_rule r) noexcept;
const char* to_string(exclusion_reason r) noexcept;
const char* to_string(tie_break t) noexcept;
const char* to_string(hours_state h) noexcept;
const char* to_string(auto_reply_status s) noexcept;

std::ostream& operator<<(std::ostream& os, route_rule r);
std::ostream& operator<<(std::ostream& os, exclusion_reason r);
std::ostream& operator<<(std::ostream& os, tie_break t);
std::ostream& operator<<(std::ostream& os, hours_state h);
std::ostream& operator<<(std::ostream& os, auto_reply_status s);
std::ostream& operator<<(std::ostream& os, const local_time& t);
std::ostream& operator<<(std::ostream& os, const exclusion& e);
std::ostream& operator<<(std::ostream& os, const receipt& r);
std::ostream& operator<<(std::ostream& os, const decision& d);

}  // namespace scrm::routing

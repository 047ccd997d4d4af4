// The routing core's input: everything `decide` looks at, as plain values — the clinic's modes,
// auto-reply switches and working hours, the agents with their presence and load, the fan, the
// session lock and the instant `now`. The shell fills it from Redis/MySQL; tests build it by hand.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace scrm::routing {

// The per-message auto-reply kinds, in priority order (DESIGN.md §5). `timeout` and `welcome` are
// not decided per message and so are not represented here.
enum class auto_reply_kind : std::uint8_t { consultant_offline, after_hours, no_agent };
inline constexpr std::size_t auto_reply_kind_count = 3;

// A set of ISO weekdays (1 = Monday … 7 = Sunday). Values outside 1..7 are ignored by the
// constructor; validate() therefore cannot see them — the parsing layer rejects them.
class weekday_set {
public:
    constexpr weekday_set() = default;
    constexpr weekday_set(std::initializer_list<unsigned> days) {
        for (unsigned d : days) insert(d);
    }
    constexpr void insert(unsigned iso_day) {
        if (iso_day >= 1 && iso_day <= 7)
            bits_ = static_cast<std::uint8_t>(bits_ | (1u << iso_day));
    }
    constexpr bool contains(unsigned iso_day) const {
        return iso_day <= 7 && ((bits_ >> iso_day) & 1u) != 0;
    }
    constexpr bool empty() const { return bits_ == 0; }
    friend constexpr bool operator==(weekday_set, weekday_set) = default;

private:
    std::uint8_t bits_ = 0;  // bit d set ⇔ ISO weekday d is in the set
};

// One working-hours window in clinic-local time. `start` is inclusive, `end` exclusive. A window
// whose `end` is not after its `start` runs overnight and belongs to the weekday it starts on:
// {Fri, 20:00, 02:00} is Friday 20:00 to Saturday 02:00, and {Sun, 22:00, 06:00} runs into Monday.
// Valid ranges: start in [00:00, 24:00), end in [00:00, 24:00] (see validate()).
struct work_window {
    weekday_set weekdays;
    std::chrono::minutes start{0};  // minutes after local midnight
    std::chrono::minutes end{0};
    friend bool operator==(const work_window&, const work_window&) = default;
};

struct clinic_config {
    bool consultant_mode = false;
    bool exclusive_mode = false;  // off = shared mode
    bool chain_store_mode = false;
    bool auto_reply_enabled = true;                 // master switch for after_hours and no_agent
    bool consultant_offline_prompt_enabled = true;  // alone governs consultant_offline
    // Kinds switched off individually; a switched-off kind falls through to the next that applies.
    // Only after_hours and no_agent are affected: consultant_offline listed here is ignored
    // (its own switch alone governs it, DESIGN.md §8).
    std::vector<auto_reply_kind> auto_reply_off;
    std::chrono::minutes utc_offset{0};   // clinic time zone as a fixed offset (+08:00 = 480 min)
    std::vector<work_window> work_hours;  // empty = always open
    std::vector<std::chrono::year_month_day> closed_dates;  // clinic-local dates closed all day
    friend bool operator==(const clinic_config&, const clinic_config&) = default;
};

struct agent_state {
    std::string id;
    std::optional<std::string> store;  // nullopt = belongs to no store (e.g. head office)
    bool online = false;               // console connected AND accepting chats
    bool can_receive = false;          // holds the "receive online consultation" permission
    std::int64_t load = 0;             // fans owned and unanswered + sessions held; >= 0
    std::int64_t last_assigned = 0;    // seconds since epoch of the last pick; 0 = never
    friend bool operator==(const agent_state&, const agent_state&) = default;
};

struct fan_state {
    std::string openid;
    std::optional<std::string> consultant;       // agent id
    std::optional<std::string> exclusive_agent;  // agent id
    std::optional<std::string> store;            // store id the fan is bound to
    friend bool operator==(const fan_state&, const fan_state&) = default;
};

struct snapshot {
    std::chrono::sys_seconds now{};
    clinic_config config;
    std::vector<agent_state> agents;  // any order; sorted by id is fastest (no sort needed)
    fan_state fan;
    std::optional<std::string> session_holder;  // agent holding an unexpired session lock
    // Computed by the shell: an auto-reply was sent, or an agent replied, within the suppression
    // window. Silences every per-message auto-reply.
    bool auto_reply_suppressed = false;
    friend bool operator==(const snapshot&, const snapshot&) = default;
};

// Checks what the types cannot: unique non-empty agent ids, the consultant / exclusive agent /
// session holder among the agents, non-empty store ids, load and last_assigned >= 0, windows with
// at least one weekday and times in range. Returns one message per problem, naming the field as
// the §8 JSON would ("agents[1].id: duplicate agent id \"a1\" (also agents[0])"); empty = valid.
// decide() never fails on an invalid snapshot, but which agents it then picks is unspecified.
std::vector<std::string> validate(const snapshot& s);

std::ostream& operator<<(std::ostream& os, auto_reply_kind k);
std::ostream& operator<<(std::ostream& os, weekday_set w);
std::ostream& operator<<(std::ostream& os, const work_window& w);
std::ostream& operator<<(std::ostream& os, const clinic_config& c);
std::ostream& operator<<(std::ostream& os, const agent_state& a);
std::ostream& operator<<(std::ostream& os, const fan_state& f);
std::ostream& operator<<(std::ostream& os, const snapshot& s);

// "consultant_offline", "after_hours", "no_agent" — the §8 JSON spelling.
const char* to_string(auto_reply_kind k) noexcept;

}  // namespace scrm::routing

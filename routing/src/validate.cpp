// validate(): the snapshot invariants the types cannot express, one message per problem, each
// naming the field with its §8 JSON path.
#include <algorithm>
#include <chrono>
#include <string_view>

#include "scrm/routing/snapshot.hpp"

namespace scrm::routing {

namespace {

std::string quoted(std::string_view s) {
    std::string q;
    q.reserve(s.size() + 2);
    q += '"';
    q += s;
    q += '"';
    return q;
}

std::string at(std::string_view list, std::size_t i) {
    return std::string(list) + "[" + std::to_string(i) + "]";
}

bool has_agent(const snapshot& s, std::string_view id) {
    return std::any_of(s.agents.begin(), s.agents.end(),
                       [id](const agent_state& a) { return a.id == id; });
}

void check_reference(const snapshot& s, const std::optional<std::string>& id,
                     std::string_view field, std::string_view what,
                     std::vector<std::string>& problems) {
    if (id && !has_agent(s, *id)) {
        problems.emplace_back(std::string(field) + ": unknown " + std::string(what) + " " +
                              quoted(*id) + " (not among the agents)");
    }
}

}  // namespace

std::vector<std::string> validate(const snapshot& s) {
    using std::chrono::hours;
    using std::chrono::minutes;
    std::vector<std::string> problems;

    const clinic_config& c = s.config;
    if (c.utc_offset <= -hours{24} || c.utc_offset >= hours{24}) {
        problems.emplace_back("config.timezone: offset out of range (-23:59 to +23:59)");
    }
    for (std::size_t i = 0; i < c.work_hours.size(); ++i) {
        const work_window& w = c.work_hours[i];
        const std::string path = at("config.work_hours", i);
        if (w.weekdays.empty()) problems.emplace_back(path + ".weekdays: no weekday listed");
        if (w.start < minutes{0} || w.start >= hours{24}) {
            problems.emplace_back(path + ".start: out of range (00:00 to 23:59)");
        }
        if (w.end < minutes{0} || w.end > hours{24}) {
            problems.emplace_back(path + ".end: out of range (00:00 to 24:00)");
        }
    }
    for (std::size_t i = 0; i < c.closed_dates.size(); ++i) {
        if (!c.closed_dates[i].ok())
            problems.emplace_back(at("config.closed_dates", i) + ": not a date");
    }

    for (std::size_t i = 0; i < s.agents.size(); ++i) {
        const agent_state& a = s.agents[i];
        const std::string path = at("agents", i);
        if (a.id.empty()) problems.emplace_back(path + ".id: empty agent id");
        // Quadratic, but a clinic has tens of agents.
        for (std::size_t j = 0; j < i && !a.id.empty(); ++j) {
            if (s.agents[j].id == a.id) {
                problems.emplace_back(path + ".id: duplicate agent id " + quoted(a.id) + " (also " +
                                      at("agents", j) + ")");
                break;
            }
        }
        if (a.store && a.store->empty()) problems.emplace_back(path + ".store: empty store id");
        if (a.load < 0) problems.emplace_back(path + ".load: negative");
        if (a.last_assigned < 0) problems.emplace_back(path + ".last_assigned: negative");
    }

    check_reference(s, s.fan.consultant, "fan.consultant", "consultant", problems);
    check_reference(s, s.fan.exclusive_agent, "fan.exclusive_agent", "exclusive agent", problems);
    check_reference(s, s.session_holder, "session.agent", "session holder", problems);
    if (s.fan.store && s.fan.store->empty()) problems.emplace_back("fan.store: empty store id");
    return problems;
}

}  // namespace scrm::routing

// scrm-admin routing show|set: a clinic's routing settings (table clinic_routing, DESIGN.md §5) —
// the modes, the auto-reply switches and texts (Chinese, for patients), the time zone, working
// hours, closed dates and durations. `set` changes only the settings given, all or none. The
// settings and their rules are routing_settings.hpp's, shared with the admin API.
#include <charconv>
#include <iostream>

#include "admin_commands.hpp"
#include "scrm/gateway/audit_log.hpp"
#include "scrm/gateway/routing_settings.hpp"
#include "scrm/routing/time_text.hpp"

namespace scrm::gateway {
namespace {

// The operator's text for a setting's value: on/off for switches, digits for seconds, else the
// text itself (hours and dates: their JSON). Anything else is given as a wrong type.
setting_input input_from(const routing_setting& s, const std::string& value) {
    switch (s.kind) {
        case routing_value::on_off:
            if (value == "on") return true;
            if (value == "off") return false;
            return std::monostate{};
        case routing_value::seconds: {
            long long n = -1;
            const auto* end = value.data() + value.size();
            const auto [p, ec] = std::from_chars(value.data(), end, n);
            if (value.empty() || ec != std::errc() || p != end) return std::monostate{};
            return n;
        }
        default: return value;
    }
}

// How a stored value reads for operators.
std::string shown(const routing_setting& s, const std::optional<std::string>& stored) {
    if (!stored) return "(null)";
    switch (s.kind) {
        case routing_value::on_off: return *stored == "1" ? "on" : "off";
        case routing_value::offset: {
            long m = 0;
            std::from_chars(stored->data(), stored->data() + stored->size(), m);
            return routing::format_utc_offset(std::chrono::minutes(m));
        }
        case routing_value::text: {
            std::string out;
            for (char c : *stored) out += c == '\n' ? std::string("\\n") : std::string(1, c);
            return out;
        }
        default: return *stored;
    }
}

std::string option_name(const routing_setting& s) {
    return std::string(std::string_view(s.flag).substr(2));
}

int routing_show(const config& cfg, const std::vector<std::string>& args) {
    const char* what = "routing show";
    std::map<std::string, std::string> o;
    std::string error;
    if (!parse_options(args, 2, {"--clinic"}, {}, o, error)) return complain(what, error, 2);
    if (!o.count("--clinic")) return complain(what, "--clinic is required", 2);
    const std::string clinic = o["--clinic"];
    storage::mysql_session db(mysql_options_from(cfg.mysql));
    if (auto r = begin_transaction(db); !r)
        return complain(what, "cannot reach MySQL: " + why(db, r.error()), 1);
    auto clinic_id = find_clinic(db, clinic);
    if (!clinic_id) return complain(what, "cannot read clinics: " + why(db, clinic_id.error()), 1);
    if (!*clinic_id) return complain(what, no_such_clinic("--clinic", clinic), 2);
    // Rolled back: show writes nothing (a clinic never configured reads the column defaults).
    auto stored = read_routing_settings(db, std::stoull(**clinic_id));
    db.rollback();
    if (!stored) return complain(what, "cannot read routing: " + why(db, stored.error()), 1);
    std::cout << "routing of clinic " << quoted(clinic)
              << (stored->inserted ? " (never set: the defaults)" : "") << "\n";
    const auto settings = routing_settings();
    for (std::size_t i = 0; i < settings.size(); ++i) {
        std::cout << option_name(settings[i]) << ": " << shown(settings[i], stored->values[i])
                  << "\n";
    }
    return 0;
}

int routing_set(const config& cfg, const std::vector<std::string>& args) {
    const char* what = "routing set";
    const auto settings = routing_settings();
    std::vector<std::string> with_value{"--clinic"};
    for (const auto& s : settings) with_value.emplace_back(s.flag);
    std::map<std::string, std::string> o;
    std::string error;
    if (!parse_options(args, 2, with_value, {}, o, error)) return complain(what, error, 2);
    if (!o.count("--clinic")) return complain(what, "--clinic is required", 2);
    const std::string clinic = o["--clinic"];

    std::vector<setting_problem> problems;
    std::vector<std::pair<const routing_setting*, setting_value>> given;
    for (const auto& s : settings) {
        if (!o.count(s.flag)) continue;
        const std::size_t before = problems.size();
        if (auto v = check_setting(s, input_from(s, o[s.flag]), problems)) {
            given.emplace_back(&s, std::move(*v));
        }
        for (std::size_t i = before; i < problems.size(); ++i) {
            problems[i].where = s.flag + problems[i].where;
        }
    }
    if (!problems.empty()) {
        std::cerr << "scrm-admin routing set: invalid input (nothing changed):\n";
        for (const auto& p : problems) std::cerr << "  " << p.where << ": " << p.en << "\n";
        return 2;
    }
    if (given.empty()) {
        return complain(what, "nothing to set: give at least one setting (scrm-admin help)", 2);
    }

    storage::mysql_session db(mysql_options_from(cfg.mysql));
    if (auto r = begin_transaction(db); !r)
        return complain(what, "cannot reach MySQL: " + why(db, r.error()), 1);
    auto clinic_id = find_clinic(db, clinic, true);
    if (!clinic_id) return complain(what, "cannot read clinics: " + why(db, clinic_id.error()), 1);
    if (!*clinic_id) return complain(what, no_such_clinic("--clinic", clinic), 2);
    const std::uint64_t id = std::stoull(**clinic_id);
    auto before = read_routing_settings(db, id, true);
    if (!before) return complain(what, "cannot read routing: " + why(db, before.error()), 1);
    auto after = write_routing_settings(db, id, given);
    if (!after) return complain(what, "cannot store routing: " + why(db, after.error()), 1);
    const std::string changed = routing_changes_json(before->values, *after);
    if (changed != "{}") {
        audit_entry e{id, std::nullopt, "scrm-admin", "routing.set", "routing", changed};
        if (auto r = append_audit(db, e); !r) {
            return complain(what, "cannot write the audit log: " + why(db, r.error()), 1);
        }
    }
    if (auto r = db.commit(); !r) return complain(what, "cannot commit: " + why(db, r.error()), 1);

    std::vector<std::string> changes;
    for (std::size_t i = 0; i < settings.size(); ++i) {
        const auto& s = settings[i];
        const auto old_text = shown(s, before->values[i]);
        const auto new_text = shown(s, (*after)[i]);
        if (old_text == new_text) continue;
        changes.push_back(s.kind == routing_value::text
                              ? option_name(s) + " changed"
                              : option_name(s) + " " + old_text + " -> " + new_text);
    }
    if (changes.empty()) {
        std::cout << "routing of clinic " << quoted(clinic) << " unchanged\n";
        return 0;
    }
    std::cout << "updated routing of clinic " << quoted(clinic) << ":";
    for (std::size_t i = 0; i < changes.size(); ++i) std::cout << (i ? ", " : " ") << changes[i];
    std::cout << "\n";
    return 0;
}

}  // namespace

int cmd_routing(const config& cfg, const std::vector<std::string>& args) {
    const std::string sub = args.size() > 1 ? args[1] : "";
    if (sub == "show") return routing_show(cfg, args);
    if (sub == "set") return routing_set(cfg, args);
    return complain("routing", "expected \"show --clinic NAME\" or \"set --clinic NAME …\"", 2);
}

}  // namespace scrm::gateway

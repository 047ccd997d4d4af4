// scrm-admin routing show|set: a clinic's routing settings (table clinic_routing, DESIGN.md §5) —
// the modes, the auto-reply switches and texts (Chinese, for patients), the time zone, working
// hours, closed dates and durations. `set` changes only the settings given, all or none.
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>
#include <iostream>

#include "admin_commands.hpp"
#include "scrm/routing/time_text.hpp"

namespace scrm::gateway {
namespace {

enum class kind { on_off, text, seconds, offset, hours, dates };

struct setting {
    const char* flag;    // "--exclusive-mode"; the name shown is the flag without "--"
    const char* column;  // clinic_routing column (a constant: safe to put in SQL)
    kind k;
    long min = 0;  // seconds only
    long max = 0;
};

constexpr setting settings[] = {
    {"--consultant-mode", "consultant_mode", kind::on_off},
    {"--exclusive-mode", "exclusive_mode", kind::on_off},
    {"--chain-store-mode", "chain_store_mode", kind::on_off},
    {"--auto-reply", "auto_reply_enabled", kind::on_off},
    {"--welcome-reply", "welcome_enabled", kind::on_off},
    {"--welcome", "welcome_text", kind::text},
    {"--consultant-offline-reply", "consultant_offline_enabled", kind::on_off},
    {"--consultant-offline", "consultant_offline_text", kind::text},
    {"--after-hours-reply", "after_hours_enabled", kind::on_off},
    {"--after-hours", "after_hours_text", kind::text},
    {"--no-agent-reply", "no_agent_enabled", kind::on_off},
    {"--no-agent", "no_agent_text", kind::text},
    {"--timeout-reply", "timeout_enabled", kind::on_off},
    {"--timeout", "timeout_text", kind::text},
    {"--utc-offset", "utc_offset_minutes", kind::offset},
    {"--hours", "work_hours", kind::hours},
    {"--closed-dates", "closed_dates", kind::dates},
    {"--timeout-after", "timeout_s", kind::seconds, 1, 86400},
    {"--suppression-window", "suppression_window_s", kind::seconds, 0, 86400},
    {"--lock-ttl", "lock_ttl_s", kind::seconds, 1, 86400},
};

std::string json_text(const rapidjson::Value& v) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    v.Accept(w);
    return {buf.GetString(), buf.GetSize()};
}

std::string_view view(const rapidjson::Value& v) {
    return {v.GetString(), v.GetStringLength()};
}

constexpr const char* hours_rule =
    R"(must be a JSON array of {"weekdays":[1-7,…],"start":"HH:MM","end":"HH:MM"} (1 = Monday))";

// Working hours as routing reads them (routing/snapshot.hpp work_window): weekdays 1–7 listed
// once each, start 00:00–23:59, end 00:00–24:00; an end not after the start runs overnight.
// Returns the normalised JSON, or adds problems.
std::optional<std::string> parse_hours(const std::string& flag, const std::string& text,
                                       std::vector<std::string>& problems) {
    rapidjson::Document doc;
    doc.Parse(text.data(), text.size());
    if (doc.HasParseError() || !doc.IsArray()) {
        problems.push_back(flag + ": " + hours_rule);
        return std::nullopt;
    }
    const std::size_t before = problems.size();
    rapidjson::Document out(rapidjson::kArrayType);
    auto& alloc = out.GetAllocator();
    for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
        const std::string path = flag + "[" + std::to_string(i) + "]";
        const auto& w = doc[i];
        if (!w.IsObject()) {
            problems.push_back(path +
                               R"(: must be {"weekdays":[…],"start":"HH:MM","end":"HH:MM"})");
            continue;
        }
        for (auto m = w.MemberBegin(); m != w.MemberEnd(); ++m) {
            const auto key = view(m->name);
            if (key != "weekdays" && key != "start" && key != "end") {
                problems.push_back(path + ": unknown key " + quoted(key) +
                                   " (weekdays, start, end)");
            }
        }
        rapidjson::Value window(rapidjson::kObjectType);
        rapidjson::Value days(rapidjson::kArrayType);
        const auto wd = w.FindMember("weekdays");
        if (wd == w.MemberEnd() || !wd->value.IsArray() || wd->value.Empty()) {
            problems.push_back(path +
                               ".weekdays: must be a non-empty array of 1 (Monday) to 7 "
                               "(Sunday)");
        } else {
            bool seen[8] = {};
            for (rapidjson::SizeType k = 0; k < wd->value.Size(); ++k) {
                const auto& d = wd->value[k];
                const std::string dpath = path + ".weekdays[" + std::to_string(k) + "]";
                if (!d.IsInt() || d.GetInt() < 1 || d.GetInt() > 7) {
                    problems.push_back(dpath + ": must be 1 (Monday) to 7 (Sunday)");
                } else if (seen[d.GetInt()]) {
                    problems.push_back(dpath + ": " + std::to_string(d.GetInt()) +
                                       " is listed twice");
                } else {
                    seen[d.GetInt()] = true;
                }
            }
            for (int d = 1; d <= 7; ++d) {
                if (seen[d]) days.PushBack(d, alloc);
            }
        }
        window.AddMember("weekdays", days, alloc);
        for (const char* key : {"start", "end"}) {
            const bool is_end = key == std::string_view("end");
            const auto t = w.FindMember(key);
            std::optional<std::chrono::minutes> m;
            if (t != w.MemberEnd() && t->value.IsString()) {
                m = routing::parse_clock(view(t->value), is_end);
            }
            if (!m) {
                problems.push_back(path + "." + key + ": must be \"HH:MM\" from 00:00 to " +
                                   (is_end ? "24:00" : "23:59"));
                continue;
            }
            const std::string clock = routing::format_clock(*m);
            window.AddMember(
                rapidjson::StringRef(key),
                rapidjson::Value(clock.c_str(), static_cast<rapidjson::SizeType>(clock.size()),
                                 alloc),
                alloc);
        }
        out.PushBack(window, alloc);
    }
    if (problems.size() != before) return std::nullopt;
    return json_text(out);
}

// Closed dates: an array of existing dates "YYYY-MM-DD", each once; stored sorted.
std::optional<std::string> parse_dates(const std::string& flag, const std::string& text,
                                       std::vector<std::string>& problems) {
    rapidjson::Document doc;
    doc.Parse(text.data(), text.size());
    if (doc.HasParseError() || !doc.IsArray()) {
        problems.push_back(flag + R"(: must be a JSON array of dates like ["2027-01-01"])");
        return std::nullopt;
    }
    const std::size_t before = problems.size();
    std::vector<std::string> dates;
    for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
        const std::string path = flag + "[" + std::to_string(i) + "]";
        const auto& d = doc[i];
        const auto date = d.IsString() ? routing::parse_date(view(d)) : std::nullopt;
        if (!date) {
            problems.push_back(path + ": must be a date \"YYYY-MM-DD\" that exists");
            continue;
        }
        const std::string canonical = routing::format_date(*date);
        if (std::find(dates.begin(), dates.end(), canonical) != dates.end()) {
            problems.push_back(path + ": " + canonical + " is listed twice");
            continue;
        }
        dates.push_back(canonical);
    }
    if (problems.size() != before) return std::nullopt;
    std::sort(dates.begin(), dates.end());
    rapidjson::Document out(rapidjson::kArrayType);
    for (const auto& d : dates) {
        out.PushBack(rapidjson::Value(d.c_str(), static_cast<rapidjson::SizeType>(d.size()),
                                      out.GetAllocator()),
                     out.GetAllocator());
    }
    return json_text(out);
}

// The value to store for `s`, or a problem added.
std::optional<storage::sql_value> parse_setting(const setting& s, const std::string& value,
                                                std::vector<std::string>& problems) {
    const std::string flag = s.flag;
    switch (s.k) {
        case kind::on_off:
            if (value == "on") return storage::sql_value(std::int64_t{1});
            if (value == "off") return storage::sql_value(std::int64_t{0});
            problems.push_back(flag + ": must be on or off");
            return std::nullopt;
        case kind::text: {
            const auto chars = utf8_chars(value);
            bool ok = chars && *chars >= 1 && *chars <= 600;
            for (unsigned char c : value) {
                if ((c < 0x20 && c != '\n') || c == 0x7F) ok = false;
            }
            if (ok) return storage::sql_value(value);
            problems.push_back(flag +
                               ": must be 1-600 characters of UTF-8 text (line breaks allowed, no "
                               "other control characters)");
            return std::nullopt;
        }
        case kind::seconds: {
            long n = -1;
            const auto* end = value.data() + value.size();
            const auto [p, ec] = std::from_chars(value.data(), end, n);
            if (!value.empty() && ec == std::errc() && p == end && n >= s.min && n <= s.max) {
                return storage::sql_value(std::int64_t{n});
            }
            problems.push_back(flag + ": must be whole seconds from " + std::to_string(s.min) +
                               " to " + std::to_string(s.max));
            return std::nullopt;
        }
        case kind::offset:
            if (const auto m = routing::parse_utc_offset(value)) {
                return storage::sql_value(std::int64_t{m->count()});
            }
            problems.push_back(flag +
                               ": must be a UTC offset \"+HH:MM\" or \"-HH:MM\" (e.g. +08:00)");
            return std::nullopt;
        case kind::hours:
            if (auto j = parse_hours(flag, value, problems)) return storage::sql_value(*j);
            return std::nullopt;
        case kind::dates:
            if (auto j = parse_dates(flag, value, problems)) return storage::sql_value(*j);
            return std::nullopt;
    }
    return std::nullopt;
}

// How a stored value reads for operators.
std::string shown(const setting& s, const std::optional<std::string>& stored) {
    if (!stored) return "(null)";
    switch (s.k) {
        case kind::on_off: return *stored == "1" ? "on" : "off";
        case kind::offset: {
            long m = 0;
            std::from_chars(stored->data(), stored->data() + stored->size(), m);
            return routing::format_utc_offset(std::chrono::minutes(m));
        }
        case kind::text: {
            std::string out;
            for (char c : *stored) out += c == '\n' ? std::string("\\n") : std::string(1, c);
            return out;
        }
        default: return *stored;
    }
}

std::string select_columns() {
    std::string sql = "SELECT ";
    for (std::size_t i = 0; i < std::size(settings); ++i) {
        sql += std::string(i ? ", " : "") + settings[i].column;
    }
    return sql + " FROM clinic_routing WHERE clinic_id = ?";
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
    // A clinic never configured routes with the table's defaults: insert a row to read them and
    // roll back, so the defaults live in one place (the migration) and show writes nothing.
    auto inserted =
        db.execute("INSERT IGNORE INTO clinic_routing (clinic_id) VALUES (?)", {**clinic_id});
    if (!inserted) return complain(what, "cannot read routing: " + why(db, inserted.error()), 1);
    auto rows = db.query(select_columns(), {**clinic_id});
    db.rollback();
    if (!rows || rows->rows.empty()) return complain(what, "cannot read routing settings", 1);
    std::cout << "routing of clinic " << quoted(clinic)
              << (*inserted ? " (never set: the defaults)" : "") << "\n";
    for (std::size_t i = 0; i < std::size(settings); ++i) {
        std::cout << std::string_view(settings[i].flag).substr(2) << ": "
                  << shown(settings[i], rows->rows[0][i]) << "\n";
    }
    return 0;
}

int routing_set(const config& cfg, const std::vector<std::string>& args) {
    const char* what = "routing set";
    std::vector<std::string> with_value{"--clinic"};
    for (const auto& s : settings) with_value.emplace_back(s.flag);
    std::map<std::string, std::string> o;
    std::string error;
    if (!parse_options(args, 2, with_value, {}, o, error)) return complain(what, error, 2);
    if (!o.count("--clinic")) return complain(what, "--clinic is required", 2);
    const std::string clinic = o["--clinic"];

    std::vector<std::string> problems;
    std::vector<std::pair<const setting*, storage::sql_value>> given;
    for (const auto& s : settings) {
        if (!o.count(s.flag)) continue;
        if (auto v = parse_setting(s, o[s.flag], problems)) given.emplace_back(&s, std::move(*v));
    }
    if (!problems.empty()) {
        std::cerr << "scrm-admin routing set: invalid input (nothing changed):\n";
        for (const auto& p : problems) std::cerr << "  " << p << "\n";
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
    auto inserted =
        db.execute("INSERT IGNORE INTO clinic_routing (clinic_id) VALUES (?)", {**clinic_id});
    if (!inserted) return complain(what, "cannot store routing: " + why(db, inserted.error()), 1);
    auto before = db.query(select_columns() + " FOR UPDATE", {**clinic_id});
    if (!before || before->rows.empty()) return complain(what, "cannot read routing settings", 1);
    std::string sql = "UPDATE clinic_routing SET ";
    std::vector<storage::sql_value> params;
    for (std::size_t i = 0; i < given.size(); ++i) {
        sql += std::string(i ? ", " : "") + given[i].first->column + " = ?";
        params.push_back(given[i].second);
    }
    sql += " WHERE clinic_id = ?";
    params.emplace_back(**clinic_id);
    if (auto r = db.execute(sql, params); !r) {
        return complain(what, "cannot store routing: " + why(db, r.error()), 1);
    }
    auto after = db.query(select_columns(), {**clinic_id});
    if (!after || after->rows.empty()) return complain(what, "cannot read routing settings", 1);
    if (auto r = db.commit(); !r) return complain(what, "cannot commit: " + why(db, r.error()), 1);

    std::vector<std::string> changes;
    for (std::size_t i = 0; i < std::size(settings); ++i) {
        const auto& s = settings[i];
        const auto old_text = shown(s, before->rows[0][i]);
        const auto new_text = shown(s, after->rows[0][i]);
        if (old_text == new_text) continue;
        const std::string name(std::string_view(s.flag).substr(2));
        changes.push_back(s.k == kind::text ? name + " changed"
                                            : name + " " + old_text + " -> " + new_text);
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

// §8 scenarios ↔ routing values on RapidJSON: a reader that records a message per bad field and
// keeps going (so one pass reports everything wrong with an entry), and the decision writer.
#include "scrm/routing/scenario_json.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "scrm/routing/time_text.hpp"

namespace scrm::routing {

namespace {

using rapidjson::Value;

std::string_view view(const Value& v) {
    return {v.GetString(), v.GetStringLength()};
}

std::string index_path(std::string_view base, std::size_t i) {
    return std::string(base) + "[" + std::to_string(i) + "]";
}

std::string join(std::string_view base, std::string_view key) {
    return base.empty() ? std::string(key) : std::string(base) + "." + std::string(key);
}

// Reads fields of one object, recording "<path>: <problem>" for each bad one.
class reader {
public:
    explicit reader(std::vector<std::string>& problems) : problems_(problems) {}

    void problem(const std::string& path, std::string_view what) {
        problems_.push_back(path + ": " + std::string(what));
    }

    // The member, or nullptr (and a "missing" problem when `required`).
    const Value* find(const Value& obj, const char* key, const std::string& path, bool required) {
        const auto it = obj.FindMember(key);
        if (it == obj.MemberEnd()) {
            if (required) problem(path, "missing");
            return nullptr;
        }
        return &it->value;
    }

    const Value* object(const Value& obj, const char* key, const std::string& path) {
        const Value* v = find(obj, key, path, true);
        if (v && !v->IsObject()) {
            problem(path, "expected an object");
            return nullptr;
        }
        return v;
    }

    void boolean(const Value& obj, const char* key, const std::string& path, bool& out) {
        if (const Value* v = find(obj, key, path, true)) {
            if (v->IsBool()) {
                out = v->GetBool();
            } else {
                problem(path, "expected true or false");
            }
        }
    }

    void count(const Value& obj, const char* key, const std::string& path, std::int64_t& out) {
        if (const Value* v = find(obj, key, path, true)) {
            if (v->IsInt64() && v->GetInt64() >= 0) {
                out = v->GetInt64();
            } else {
                problem(path, "expected a non-negative integer");
            }
        }
    }

    std::optional<std::string> text(const Value& obj, const char* key, const std::string& path) {
        if (const Value* v = find(obj, key, path, true)) {
            if (v->IsString()) return std::string(view(*v));
            problem(path, "expected a string");
        }
        return std::nullopt;
    }

    // A required non-empty string (ids).
    void id(const Value& obj, const char* key, const std::string& path, std::string& out) {
        if (const Value* v = find(obj, key, path, true)) {
            if (v->IsString() && v->GetStringLength() > 0) {
                out.assign(v->GetString(), v->GetStringLength());
            } else {
                problem(path, "expected a non-empty string");
            }
        }
    }

    // A non-empty string or null; a missing key reads as null.
    void nullable_id(const Value& obj, const char* key, const std::string& path,
                     std::optional<std::string>& out) {
        out.reset();
        const Value* v = find(obj, key, path, false);
        if (v == nullptr || v->IsNull()) return;
        if (v->IsString() && v->GetStringLength() > 0) {
            out.emplace(v->GetString(), v->GetStringLength());
        } else {
            problem(path, "expected a non-empty string or null");
        }
    }

    // An optional array (missing or null = empty).
    const Value* optional_array(const Value& obj, const char* key, const std::string& path) {
        const Value* v = find(obj, key, path, false);
        if (v == nullptr || v->IsNull()) return nullptr;
        if (!v->IsArray()) {
            problem(path, "expected an array");
            return nullptr;
        }
        return v;
    }

private:
    std::vector<std::string>& problems_;
};

std::optional<auto_reply_kind> reply_kind(std::string_view s) {
    if (s == "consultant_offline") return auto_reply_kind::consultant_offline;
    if (s == "after_hours") return auto_reply_kind::after_hours;
    if (s == "no_agent") return auto_reply_kind::no_agent;
    return std::nullopt;
}

std::optional<route_rule> rule_named(std::string_view s) {
    for (auto r : {route_rule::consultant, route_rule::session, route_rule::exclusive,
                   route_rule::exclusive_offline_shared, route_rule::assigned, route_rule::shared,
                   route_rule::none}) {
        if (s == to_string(r)) return r;
    }
    return std::nullopt;
}

void read_window(reader& rd, const Value& v, const std::string& path, work_window& w) {
    if (!v.IsObject()) {
        rd.problem(path, R"(expected an object {"weekdays", "start", "end"})");
        return;
    }
    const std::string days_path = join(path, "weekdays");
    if (const Value* days = rd.find(v, "weekdays", days_path, true)) {
        if (!days->IsArray() || days->Empty()) {
            rd.problem(days_path,
                       "expected a non-empty array of weekdays 1 (Monday) to 7 (Sunday)");
        } else {
            for (rapidjson::SizeType i = 0; i < days->Size(); ++i) {
                const Value& d = (*days)[i];
                if (d.IsInt() && d.GetInt() >= 1 && d.GetInt() <= 7) {
                    w.weekdays.insert(static_cast<unsigned>(d.GetInt()));
                } else {
                    rd.problem(index_path(days_path, i), "expected 1 (Monday) to 7 (Sunday)");
                }
            }
        }
    }
    const std::string start_path = join(path, "start");
    if (const auto s = rd.text(v, "start", start_path)) {
        if (const auto m = parse_clock(*s, false)) {
            w.start = *m;
        } else {
            rd.problem(start_path, "expected \"HH:MM\" from 00:00 to 23:59");
        }
    }
    const std::string end_path = join(path, "end");
    if (const auto s = rd.text(v, "end", end_path)) {
        if (const auto m = parse_clock(*s, true)) {
            w.end = *m;
        } else {
            rd.problem(end_path, "expected \"HH:MM\" from 00:00 to 24:00");
        }
    }
}

void read_config(reader& rd, const Value& c, clinic_config& out) {
    rd.boolean(c, "consultant_mode", "config.consultant_mode", out.consultant_mode);
    rd.boolean(c, "exclusive_mode", "config.exclusive_mode", out.exclusive_mode);
    rd.boolean(c, "chain_store_mode", "config.chain_store_mode", out.chain_store_mode);
    rd.boolean(c, "auto_reply_enabled", "config.auto_reply_enabled", out.auto_reply_enabled);
    rd.boolean(c, "consultant_offline_prompt_enabled", "config.consultant_offline_prompt_enabled",
               out.consultant_offline_prompt_enabled);
    if (const auto tz = rd.text(c, "timezone", "config.timezone")) {
        if (const auto off = parse_utc_offset(*tz)) {
            out.utc_offset = *off;
        } else {
            rd.problem("config.timezone", R"(expected a UTC offset "+HH:MM", "-HH:MM" or "Z")");
        }
    }
    if (const Value* off = rd.optional_array(c, "auto_reply_off", "config.auto_reply_off")) {
        for (rapidjson::SizeType i = 0; i < off->Size(); ++i) {
            const Value& k = (*off)[i];
            const std::string path = index_path("config.auto_reply_off", i);
            if (!k.IsString()) {
                rd.problem(path, "expected an auto-reply kind");
            } else if (const auto kind = reply_kind(view(k))) {
                out.auto_reply_off.push_back(*kind);
            } else if (view(k) != "timeout" && view(k) != "welcome") {
                // timeout and welcome are real kinds, just not decided per message.
                rd.problem(path, "unknown auto-reply kind \"" + std::string(view(k)) +
                                     "\" (consultant_offline, after_hours, no_agent, timeout, "
                                     "welcome)");
            }
        }
    }
    if (const Value* wh = rd.optional_array(c, "work_hours", "config.work_hours")) {
        for (rapidjson::SizeType i = 0; i < wh->Size(); ++i) {
            work_window w;
            read_window(rd, (*wh)[i], index_path("config.work_hours", i), w);
            out.work_hours.push_back(w);
        }
    }
    if (const Value* cd = rd.optional_array(c, "closed_dates", "config.closed_dates")) {
        for (rapidjson::SizeType i = 0; i < cd->Size(); ++i) {
            const Value& d = (*cd)[i];
            const auto date = d.IsString() ? parse_date(view(d)) : std::nullopt;
            if (date) {
                out.closed_dates.push_back(*date);
            } else {
                rd.problem(index_path("config.closed_dates", i), "expected a date \"YYYY-MM-DD\"");
            }
        }
    }
}

void read_agent(reader& rd, const Value& v, const std::string& path, agent_state& a) {
    if (!v.IsObject()) {
        rd.problem(path, "expected an agent object");
        return;
    }
    rd.id(v, "id", join(path, "id"), a.id);
    rd.nullable_id(v, "store", join(path, "store"), a.store);
    rd.boolean(v, "online", join(path, "online"), a.online);
    rd.boolean(v, "can_receive", join(path, "can_receive"), a.can_receive);
    rd.count(v, "load", join(path, "load"), a.load);
    rd.count(v, "last_assigned", join(path, "last_assigned"), a.last_assigned);
}

void read_snapshot(reader& rd, const Value& v, snapshot& s) {
    if (const auto now = rd.text(v, "now", "now")) {
        if (const auto t = parse_timestamp(*now)) {
            s.now = *t;
        } else {
            rd.problem("now", "expected an RFC 3339 time like \"2026-11-23T10:00:00+08:00\"");
        }
    }
    if (const Value* c = rd.object(v, "config", "config")) read_config(rd, *c, s.config);
    if (const Value* agents = rd.find(v, "agents", "agents", true)) {
        if (!agents->IsArray()) {
            rd.problem("agents", "expected an array");
        } else {
            s.agents.resize(agents->Size());
            for (rapidjson::SizeType i = 0; i < agents->Size(); ++i) {
                read_agent(rd, (*agents)[i], index_path("agents", i), s.agents[i]);
            }
        }
    }
    if (const Value* fan = rd.object(v, "fan", "fan")) {
        rd.id(*fan, "openid", "fan.openid", s.fan.openid);
        rd.nullable_id(*fan, "consultant", "fan.consultant", s.fan.consultant);
        rd.nullable_id(*fan, "exclusive_agent", "fan.exclusive_agent", s.fan.exclusive_agent);
        rd.nullable_id(*fan, "store", "fan.store", s.fan.store);
    }
    // "session": null (or missing) = no lock; {"agent": id} = an unexpired lock.
    if (const Value* session = rd.find(v, "session", "session", false);
        session != nullptr && !session->IsNull()) {
        if (session->IsObject()) {
            s.session_holder.emplace();
            rd.id(*session, "agent", "session.agent", *s.session_holder);
        } else {
            rd.problem("session", "expected null or {\"agent\": id}");
        }
    }
    rd.boolean(v, "auto_reply_suppressed", "auto_reply_suppressed", s.auto_reply_suppressed);
}

// Reads "expect"; returns the problem or an empty string.
std::string read_expectation(const Value& v, expectation& e) {
    if (!v.IsObject()) return "expect: expected an object";
    if (v.HasMember("error")) {
        e.error = true;
        return {};
    }
    std::vector<std::string> problems;
    reader rd(problems);
    if (const Value* t = rd.find(v, "targets", "expect.targets", true)) {
        if (t->IsArray()) {
            for (rapidjson::SizeType i = 0; i < t->Size(); ++i) {
                if ((*t)[i].IsString()) {
                    e.expected.targets.emplace_back(view((*t)[i]));
                } else {
                    rd.problem(index_path("expect.targets", i), "expected a string");
                }
            }
            std::sort(e.expected.targets.begin(), e.expected.targets.end());
        } else {
            rd.problem("expect.targets", "expected an array");
        }
    }
    for (const char* key : {"owner", "assign_exclusive"}) {
        const std::string path = join("expect", key);
        if (const Value* o = rd.find(v, key, path, true)) {
            auto& dst =
                std::string_view(key) == "owner" ? e.expected.owner : e.expected.assign_exclusive;
            if (o->IsString()) {
                dst.emplace(view(*o));
            } else if (!o->IsNull()) {
                rd.problem(path, "expected a string or null");
            }
        }
    }
    if (const Value* a = rd.find(v, "auto_reply", "expect.auto_reply", true)) {
        if (a->IsString() && reply_kind(view(*a))) {
            e.expected.auto_reply = reply_kind(view(*a));
        } else if (!a->IsNull()) {
            rd.problem("expect.auto_reply", "expected null or an auto-reply kind");
        }
    }
    if (const auto r = rd.text(v, "rule", "expect.rule")) {
        if (const auto rule = rule_named(*r)) {
            e.expected.rule = *rule;
        } else {
            rd.problem("expect.rule", "unknown rule \"" + *r + "\"");
        }
    }
    std::string joined;
    for (const auto& p : problems) joined += (joined.empty() ? "" : "; ") + p;
    return joined;
}

scenario read_scenario(const Value& v, std::size_t index) {
    scenario sc;
    std::vector<std::string> problems;
    reader rd(problems);
    if (!v.IsObject()) {
        sc.error = "entry " + std::to_string(index) + ": expected a scenario object";
        return sc;
    }
    if (const auto it = v.FindMember("expect"); it != v.MemberEnd()) {
        expectation e;
        sc.expect_error = read_expectation(it->value, e);
        if (sc.expect_error.empty()) sc.expect = std::move(e);
    }
    sc.name = rd.text(v, "name", "name");
    snapshot s;
    read_snapshot(rd, v, s);
    // Cross-field checks (duplicate ids, unknown references) only make sense once every field
    // read cleanly; otherwise they would repeat the problems already reported.
    if (problems.empty()) problems = validate(s);
    if (problems.empty()) {
        sc.input = std::move(s);
    } else {
        for (const auto& p : problems) sc.error += (sc.error.empty() ? "" : "; ") + p;
    }
    return sc;
}

template <class Writer>
void write_nullable(Writer& w, const std::optional<std::string>& v) {
    if (v) {
        w.String(v->data(), static_cast<rapidjson::SizeType>(v->size()));
    } else {
        w.Null();
    }
}

template <class Writer>
void write_string(Writer& w, std::string_view s) {
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

template <class Writer>
void write_ids(Writer& w, const std::vector<std::string>& ids) {
    w.StartArray();
    for (const auto& id : ids) write_string(w, id);
    w.EndArray();
}

// The clinic-local wall-clock reading, "2026-11-23T20:00:00" (no offset: it is not an instant).
std::string local_reading(const local_time& t) {
    const long long s = t.time_of_day.count();
    char buf[64];
    std::snprintf(buf, sizeof buf, "T%02lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
    return format_date(t.date) + buf;
}

template <class Writer>
void write_receipt(Writer& w, const receipt& r) {
    w.StartObject();
    w.Key("candidates");
    write_ids(w, r.candidates);
    w.Key("excluded");
    w.StartArray();
    for (const exclusion& e : r.excluded) {
        w.StartObject();
        w.Key("agent");
        write_string(w, e.agent);
        w.Key("reason");
        w.String(to_string(e.reason));
        w.EndObject();
    }
    w.EndArray();
    w.Key("tie_break");
    if (r.tie == tie_break::none) {
        w.Null();
    } else {
        w.String(to_string(r.tie));
    }
    w.Key("hours");
    w.String(to_string(r.hours));
    w.Key("local_time");
    write_string(w, local_reading(r.local));
    w.Key("weekday");
    w.Uint(r.local.weekday);
    w.Key("auto_replies");
    w.StartObject();
    for (std::size_t k = 0; k < r.auto_replies.size(); ++k) {
        w.Key(to_string(static_cast<auto_reply_kind>(k)));
        w.String(to_string(r.auto_replies[k]));
    }
    w.EndObject();
    w.Key("stale_session_holder");
    write_nullable(w, r.stale_session_holder);
    w.EndObject();
}

template <class Writer>
void write_routed(Writer& w, const routed& r) {
    w.StartObject();
    w.Key("name");
    write_nullable(w, r.name);
    if (const auto* err = std::get_if<std::string>(&r.outcome)) {
        w.Key("error");
        write_string(w, *err);
        w.EndObject();
        return;
    }
    const auto& d = std::get<decision>(r.outcome);
    w.Key("targets");
    write_ids(w, d.targets);
    w.Key("owner");
    write_nullable(w, d.owner);
    w.Key("assign_exclusive");
    write_nullable(w, d.assign_exclusive);
    w.Key("auto_reply");
    if (d.auto_reply) {
        w.String(to_string(*d.auto_reply));
    } else {
        w.Null();
    }
    w.Key("rule");
    w.String(to_string(d.rule));
    if (d.receipt) {
        w.Key("receipt");
        write_receipt(w, *d.receipt);
    }
    w.EndObject();
}

decision five_fields(decision d) {
    d.receipt.reset();
    return d;
}

std::string describe(const std::variant<decision, std::string>& outcome) {
    std::ostringstream os;
    if (const auto* err = std::get_if<std::string>(&outcome)) {
        os << "error \"" << *err << '"';
    } else {
        os << five_fields(std::get<decision>(outcome));
    }
    return os.str();
}

}  // namespace

std::variant<std::vector<scenario>, document_error> parse_scenarios(std::string_view json) {
    rapidjson::Document doc;
    // Iterative parsing: deeply nested input cannot exhaust the stack.
    constexpr unsigned flags =
        rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
    doc.Parse<flags>(json.data(), json.size());
    if (doc.HasParseError()) {
        return document_error{"not valid JSON at byte " + std::to_string(doc.GetErrorOffset()) +
                              ": " + rapidjson::GetParseError_En(doc.GetParseError())};
    }
    std::vector<scenario> out;
    if (doc.IsObject()) {
        out.push_back(read_scenario(doc, 0));
    } else if (doc.IsArray()) {
        out.reserve(doc.Size());
        for (rapidjson::SizeType i = 0; i < doc.Size(); ++i)
            out.push_back(read_scenario(doc[i], i));
    } else {
        return document_error{"expected an array of scenarios or one scenario object"};
    }
    return out;
}

routed route(const scenario& sc, with_receipt r) {
    if (sc.input) return routed{sc.name, decide(*sc.input, r)};
    return routed{sc.name, sc.error};
}

std::string write_decisions(const std::vector<routed>& results, json_style style) {
    rapidjson::StringBuffer buf;
    if (style == json_style::pretty) {
        rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
        w.SetIndent(' ', 2);
        w.StartArray();
        for (const routed& r : results) write_routed(w, r);
        w.EndArray();
        return std::string(buf.GetString(), buf.GetSize()) + "\n";
    }
    std::string out = "[";
    for (std::size_t i = 0; i < results.size(); ++i) {
        buf.Clear();
        rapidjson::Writer<rapidjson::StringBuffer> w(buf);
        write_routed(w, results[i]);
        out += i == 0 ? "\n" : ",\n";
        out.append(buf.GetString(), buf.GetSize());
    }
    out += results.empty() ? "]\n" : "\n]\n";
    return out;
}

std::variant<std::string, document_error> route_document(std::string_view json, with_receipt r,
                                                         json_style style) {
    auto parsed = parse_scenarios(json);
    if (auto* err = std::get_if<document_error>(&parsed)) return std::move(*err);
    const auto& scenarios = std::get<std::vector<scenario>>(parsed);
    std::vector<routed> results;
    results.reserve(scenarios.size());
    for (const scenario& sc : scenarios) results.push_back(route(sc, r));
    return write_decisions(results, style);
}

check_result check(const scenario& sc, const routed& r) {
    using verdict = check_result::verdict;
    if (!sc.expect_error.empty()) return {verdict::fail, sc.expect_error};
    if (!sc.expect) return {verdict::unchecked, "no \"expect\""};
    if (sc.expect->error) {
        if (std::holds_alternative<std::string>(r.outcome)) return {verdict::pass, {}};
        return {verdict::fail, "expected an error, got " + describe(r.outcome)};
    }
    if (const auto* d = std::get_if<decision>(&r.outcome);
        d && five_fields(*d) == sc.expect->expected) {
        return {verdict::pass, {}};
    }
    return {verdict::fail,
            "expected " + describe(sc.expect->expected) + ", got " + describe(r.outcome)};
}

}  // namespace scrm::routing

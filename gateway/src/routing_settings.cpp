// See routing_settings.hpp. The rules were scrm-admin's (admin_routing.cpp) and read as routing
// does (routing/snapshot.hpp work_window, routing_stage parse_hours).
#include "scrm/gateway/routing_settings.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>

#include "scrm/gateway/http.hpp"
#include "scrm/gateway/text_rules.hpp"
#include "scrm/routing/time_text.hpp"
#include "scrm/storage/mysql.hpp"

namespace scrm::gateway {
namespace {

using k = routing_value;

constexpr routing_setting all[] = {
    {"consultant_mode", "--consultant-mode", "consultant_mode", "顾问模式", k::on_off},
    {"exclusive_mode", "--exclusive-mode", "exclusive_mode", "专属模式", k::on_off},
    {"chain_store_mode", "--chain-store-mode", "chain_store_mode", "连锁门店模式", k::on_off},
    {"auto_reply_enabled", "--auto-reply", "auto_reply_enabled", "自动回复总开关", k::on_off},
    {"welcome_enabled", "--welcome-reply", "welcome_enabled", "关注欢迎语开关", k::on_off},
    {"welcome_text", "--welcome", "welcome_text", "关注欢迎语", k::text},
    {"consultant_offline_enabled", "--consultant-offline-reply", "consultant_offline_enabled",
     "顾问不在线提示开关", k::on_off},
    {"consultant_offline_text", "--consultant-offline", "consultant_offline_text", "顾问不在线提示",
     k::text},
    {"after_hours_enabled", "--after-hours-reply", "after_hours_enabled", "非工作时间回复开关",
     k::on_off},
    {"after_hours_text", "--after-hours", "after_hours_text", "非工作时间回复", k::text},
    {"no_agent_enabled", "--no-agent-reply", "no_agent_enabled", "无客服在线回复开关", k::on_off},
    {"no_agent_text", "--no-agent", "no_agent_text", "无客服在线回复", k::text},
    {"timeout_enabled", "--timeout-reply", "timeout_enabled", "超时未回复提示开关", k::on_off},
    {"timeout_text", "--timeout", "timeout_text", "超时未回复提示", k::text},
    {"utc_offset", "--utc-offset", "utc_offset_minutes", "时区", k::offset},
    {"work_hours", "--hours", "work_hours", "工作时间", k::hours},
    {"closed_dates", "--closed-dates", "closed_dates", "休息日", k::dates},
    {"timeout_s", "--timeout-after", "timeout_s", "超时时长（秒）", k::seconds, 1, 86400},
    {"suppression_window_s", "--suppression-window", "suppression_window_s", "自动回复间隔（秒）",
     k::seconds, 0, 86400},
    {"lock_ttl_s", "--lock-ttl", "lock_ttl_s", "会话保持时长（秒）", k::seconds, 1, 86400},
};

constexpr std::size_t max_text_chars = 600;

std::string json_text(const rapidjson::Value& v) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    v.Accept(w);
    return {buf.GetString(), buf.GetSize()};
}

std::string_view view(const rapidjson::Value& v) {
    return {v.GetString(), v.GetStringLength()};
}

rapidjson::Value string_value(const std::string& s, rapidjson::Document::AllocatorType& alloc) {
    return rapidjson::Value(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), alloc);
}

struct problems_at {
    std::vector<setting_problem>& out;
    void add(std::string where, std::string en, std::string zh) {
        out.push_back({std::move(where), std::move(en), std::move(zh)});
    }
};

constexpr const char* hours_rule_en =
    R"(must be a JSON array of {"weekdays":[1-7,…],"start":"HH:MM","end":"HH:MM"} (1 = Monday))";
constexpr const char* hours_rule_zh =
    R"(须为工作时段数组，如 [{"weekdays":[1,2,3,4,5],"start":"09:00","end":"18:00"}]（1 = 星期一）)";

// Working hours as routing reads them: weekdays 1–7 listed once each, start 00:00–23:59, end
// 00:00–24:00; an end not after the start runs overnight. The normalised JSON, or problems.
std::optional<std::string> check_hours(std::string_view text, problems_at p) {
    rapidjson::Document doc;
    doc.Parse(text.data(), text.size());
    if (doc.HasParseError() || !doc.IsArray()) {
        p.add("", hours_rule_en, hours_rule_zh);
        return std::nullopt;
    }
    const std::size_t before = p.out.size();
    rapidjson::Document out(rapidjson::kArrayType);
    auto& alloc = out.GetAllocator();
    for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
        const std::string path = "[" + std::to_string(i) + "]";
        const auto& w = doc[i];
        if (!w.IsObject()) {
            p.add(path, R"(must be {"weekdays":[…],"start":"HH:MM","end":"HH:MM"})",
                  R"(须为 {"weekdays":[…],"start":"HH:MM","end":"HH:MM"})");
            continue;
        }
        for (auto m = w.MemberBegin(); m != w.MemberEnd(); ++m) {
            const auto key = view(m->name);
            if (key != "weekdays" && key != "start" && key != "end") {
                const std::string q = "\"" + std::string(key) + "\"";
                p.add(path, "unknown key " + q + " (weekdays, start, end)",
                      "未知的字段 " + q + "（可用 weekdays、start、end）");
            }
        }
        rapidjson::Value window(rapidjson::kObjectType);
        rapidjson::Value days(rapidjson::kArrayType);
        const auto wd = w.FindMember("weekdays");
        if (wd == w.MemberEnd() || !wd->value.IsArray() || wd->value.Empty()) {
            p.add(path + ".weekdays", "must be a non-empty array of 1 (Monday) to 7 (Sunday)",
                  "须为非空数组，取值 1（星期一）至 7（星期日）");
        } else {
            bool seen[8] = {};
            for (rapidjson::SizeType j = 0; j < wd->value.Size(); ++j) {
                const auto& d = wd->value[j];
                const std::string dpath = path + ".weekdays[" + std::to_string(j) + "]";
                if (!d.IsInt() || d.GetInt() < 1 || d.GetInt() > 7) {
                    p.add(dpath, "must be 1 (Monday) to 7 (Sunday)",
                          "须为 1（星期一）至 7（星期日）");
                } else if (seen[d.GetInt()]) {
                    const std::string n = std::to_string(d.GetInt());
                    p.add(dpath, n + " is listed twice", "星期 " + n + " 重复列出");
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
                const std::string last = is_end ? "24:00" : "23:59";
                p.add(path + "." + key, "must be \"HH:MM\" from 00:00 to " + last,
                      "须为 00:00 至 " + last + " 的时间 \"HH:MM\"");
                continue;
            }
            window.AddMember(rapidjson::StringRef(key),
                             string_value(routing::format_clock(*m), alloc), alloc);
        }
        out.PushBack(window, alloc);
    }
    if (p.out.size() != before) return std::nullopt;
    return json_text(out);
}

// Closed dates: an array of existing dates "YYYY-MM-DD", each once; stored sorted.
std::optional<std::string> check_dates(std::string_view text, problems_at p) {
    rapidjson::Document doc;
    doc.Parse(text.data(), text.size());
    if (doc.HasParseError() || !doc.IsArray()) {
        p.add("", R"(must be a JSON array of dates like ["2027-01-01"])",
              R"(须为日期数组，如 ["2027-01-01"])");
        return std::nullopt;
    }
    const std::size_t before = p.out.size();
    std::vector<std::string> dates;
    for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
        const std::string path = "[" + std::to_string(i) + "]";
        const auto& d = doc[i];
        const auto date = d.IsString() ? routing::parse_date(view(d)) : std::nullopt;
        if (!date) {
            p.add(path, "must be a date \"YYYY-MM-DD\" that exists",
                  "须为存在的日期 \"YYYY-MM-DD\"");
            continue;
        }
        const std::string canonical = routing::format_date(*date);
        if (std::find(dates.begin(), dates.end(), canonical) != dates.end()) {
            p.add(path, canonical + " is listed twice", canonical + " 重复列出");
            continue;
        }
        dates.push_back(canonical);
    }
    if (p.out.size() != before) return std::nullopt;
    std::sort(dates.begin(), dates.end());
    rapidjson::Document out(rapidjson::kArrayType);
    for (const auto& d : dates)
        out.PushBack(string_value(d, out.GetAllocator()), out.GetAllocator());
    return json_text(out);
}

bool valid_text(std::string_view value) {
    const auto chars = utf8_chars(value);
    bool ok = chars && *chars >= 1 && *chars <= max_text_chars;
    for (unsigned char c : value) {
        if ((c < 0x20 && c != '\n') || c == 0x7F) ok = false;
    }
    return ok;
}

std::string select_columns() {
    std::string sql = "SELECT ";
    for (std::size_t i = 0; i < std::size(all); ++i) {
        sql += std::string(i ? ", " : "") + all[i].column;
    }
    return sql + " FROM clinic_routing WHERE clinic_id = ?";
}

}  // namespace

std::span<const routing_setting> routing_settings() noexcept {
    return all;
}

const routing_setting* routing_setting_by_key(std::string_view key) noexcept {
    for (const auto& s : all) {
        if (key == s.key) return &s;
    }
    return nullptr;
}

std::optional<setting_value> check_setting(const routing_setting& s, const setting_input& in,
                                           std::vector<setting_problem>& problems) {
    problems_at p{problems};
    const auto* text = std::get_if<std::string>(&in);
    switch (s.kind) {
        case k::on_off:
            if (const auto* b = std::get_if<bool>(&in)) return setting_value(std::int64_t{*b});
            p.add("", "must be on or off", "须为 true 或 false");
            return std::nullopt;
        case k::text:
            if (text && valid_text(*text)) return setting_value(*text);
            p.add("",
                  "must be 1-600 characters of UTF-8 text (line breaks allowed, no other control "
                  "characters)",
                  "须为1至600个字符（可换行，不可含其他控制字符）");
            return std::nullopt;
        case k::seconds: {
            const auto* n = std::get_if<long long>(&in);
            if (n && *n >= s.min && *n <= s.max) return setting_value(std::int64_t{*n});
            const std::string lo = std::to_string(s.min), hi = std::to_string(s.max);
            p.add("", "must be whole seconds from " + lo + " to " + hi,
                  "须为 " + lo + " 至 " + hi + " 之间的整数秒");
            return std::nullopt;
        }
        case k::offset:
            if (const auto m = text ? routing::parse_utc_offset(*text) : std::nullopt) {
                return setting_value(std::int64_t{m->count()});
            }
            p.add("", "must be a UTC offset \"+HH:MM\" or \"-HH:MM\" (e.g. +08:00)",
                  "须为 UTC 时差 \"+HH:MM\" 或 \"-HH:MM\"（如 +08:00）");
            return std::nullopt;
        case k::hours:
            if (!text) {
                p.add("", hours_rule_en, hours_rule_zh);
                return std::nullopt;
            }
            if (auto j = check_hours(*text, p)) return setting_value(std::move(*j));
            return std::nullopt;
        case k::dates:
            if (!text) {
                p.add("", R"(must be a JSON array of dates like ["2027-01-01"])",
                      R"(须为日期数组，如 ["2027-01-01"])");
                return std::nullopt;
            }
            if (auto j = check_dates(*text, p)) return setting_value(std::move(*j));
            return std::nullopt;
    }
    return std::nullopt;
}

std::string setting_json(const routing_setting& s, const std::optional<std::string>& stored) {
    if (!stored) return "null";
    switch (s.kind) {
        case k::on_off: return *stored == "0" ? "false" : "true";
        case k::seconds: return *stored;  // an unsigned column: digits
        case k::offset: {
            long m = 0;
            std::from_chars(stored->data(), stored->data() + stored->size(), m);
            return json_quote(routing::format_utc_offset(std::chrono::minutes(m)));
        }
        case k::text: return json_quote(*stored);
        case k::hours:
        case k::dates: {
            // Stored normalised by check_setting; anything else (written by hand) is shown empty
            // rather than passed on as JSON it may not be.
            rapidjson::Document doc;
            doc.Parse(stored->data(), stored->size());
            return doc.HasParseError() || !doc.IsArray() ? "[]" : json_text(doc);
        }
    }
    return "null";
}

std::string routing_changes_json(const std::vector<std::optional<std::string>>& before,
                                 const std::vector<std::optional<std::string>>& after) {
    std::string out = "{";
    for (std::size_t i = 0; i < std::size(all) && i < before.size() && i < after.size(); ++i) {
        const std::string was = setting_json(all[i], before[i]);
        const std::string now = setting_json(all[i], after[i]);
        if (was == now) continue;
        if (out.size() > 1) out += ',';
        out += json_quote(all[i].key) + ":{\"before\":" + was + ",\"after\":" + now + "}";
    }
    return out + "}";
}

result<stored_settings> read_routing_settings(storage::mysql_session& db, std::uint64_t clinic,
                                              bool for_update) {
    std::vector<storage::sql_value> p{clinic};
    auto inserted = db.execute("INSERT IGNORE INTO clinic_routing (clinic_id) VALUES (?)", p);
    if (!inserted) return inserted.error();
    auto rows = db.query(select_columns() + (for_update ? " FOR UPDATE" : ""), p);
    if (!rows) return rows.error();
    if (rows->rows.empty()) return make_error_code(errc::not_found);
    return stored_settings{std::move(rows->rows[0]), *inserted > 0};
}

result<std::vector<std::optional<std::string>>> write_routing_settings(
    storage::mysql_session& db, std::uint64_t clinic,
    const std::vector<std::pair<const routing_setting*, setting_value>>& given) {
    if (!given.empty()) {
        std::string sql = "UPDATE clinic_routing SET ";
        std::vector<storage::sql_value> params;
        for (std::size_t i = 0; i < given.size(); ++i) {
            sql += std::string(i ? ", " : "") + given[i].first->column + " = ?";
            std::visit([&](const auto& v) { params.emplace_back(v); }, given[i].second);
        }
        sql += " WHERE clinic_id = ?";
        params.emplace_back(clinic);
        if (auto r = db.execute(sql, params); !r) return r.error();
    }
    std::vector<storage::sql_value> p{clinic};
    auto after = db.query(select_columns(), p);
    if (!after) return after.error();
    if (after->rows.empty()) return make_error_code(errc::not_found);
    return std::move(after->rows[0]);
}

}  // namespace scrm::gateway

// Outbound API answers read with RapidJSON's DOM; strict about the JSON types of the fields we
// use, silent about fields we do not.
#include "scrm/wechat/api_answer.hpp"

#include <rapidjson/document.h>

#include <limits>
#include <ostream>

namespace scrm::wechat {
namespace {

boost::system::error_code bad_answer() {
    return make_error_code(errc::protocol_error);
}

bool parse_object(std::string_view body, rapidjson::Document& d) {
    d.Parse(body.data(), body.size());
    return !d.HasParseError() && d.IsObject();
}

const rapidjson::Value* member(const rapidjson::Value& obj, const char* name) {
    auto it = obj.FindMember(name);
    if (it == obj.MemberEnd() || it->value.IsNull()) return nullptr;
    return &it->value;
}

// Reads an optional string field into `out`; false if it is present with another type.
bool opt_string(const rapidjson::Value& obj, const char* name, std::string& out) {
    const auto* v = member(obj, name);
    if (!v) return true;
    if (!v->IsString()) return false;
    out.assign(v->GetString(), v->GetStringLength());
    return true;
}

char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

}  // namespace

scrm::result<std::string> parse_media_upload_answer(std::string_view body) {
    rapidjson::Document d;
    if (!parse_object(body, d)) return bad_answer();
    std::string id;
    if (!opt_string(d, "media_id", id)) return bad_answer();
    if (id.empty() && !opt_string(d, "thumb_media_id", id)) return bad_answer();
    if (id.empty()) return bad_answer();
    return id;
}

scrm::result<std::uint64_t> parse_template_send_answer(std::string_view body) {
    rapidjson::Document d;
    if (!parse_object(body, d)) return bad_answer();
    const auto* v = member(d, "msgid");
    if (!v || !v->IsUint64()) return bad_answer();
    return v->GetUint64();
}

scrm::result<qr_ticket> parse_qr_answer(std::string_view body) {
    rapidjson::Document d;
    if (!parse_object(body, d)) return bad_answer();
    qr_ticket q;
    if (!opt_string(d, "ticket", q.ticket) || !opt_string(d, "url", q.url)) return bad_answer();
    if (q.ticket.empty() || q.url.empty()) return bad_answer();
    if (const auto* v = member(d, "expire_seconds")) {
        if (!v->IsInt64()) return bad_answer();
        q.expire_seconds = v->GetInt64();
    }
    return q;
}

scrm::result<fan_info> parse_user_info(std::string_view body) {
    rapidjson::Document d;
    if (!parse_object(body, d)) return bad_answer();
    fan_info f;
    const auto* sub = member(d, "subscribe");
    if (!sub || !sub->IsInt() || (sub->GetInt() != 0 && sub->GetInt() != 1)) return bad_answer();
    f.subscribed = sub->GetInt() == 1;
    if (!opt_string(d, "openid", f.openid) || f.openid.empty()) return bad_answer();
    if (!opt_string(d, "language", f.language) || !opt_string(d, "remark", f.remark) ||
        !opt_string(d, "unionid", f.unionid) ||
        !opt_string(d, "subscribe_scene", f.subscribe_scene) ||
        !opt_string(d, "qr_scene_str", f.qr_scene_str)) {
        return bad_answer();
    }
    if (const auto* v = member(d, "subscribe_time")) {
        if (!v->IsInt64()) return bad_answer();
        f.subscribe_time = v->GetInt64();
    }
    if (const auto* v = member(d, "qr_scene")) {
        if (!v->IsUint()) return bad_answer();
        f.qr_scene = v->GetUint();
    }
    if (const auto* v = member(d, "tagid_list")) {
        if (!v->IsArray()) return bad_answer();
        for (const auto& t : v->GetArray()) {
            if (!t.IsUint()) return bad_answer();
            f.tagid_list.push_back(t.GetUint());
        }
    }
    return f;
}

std::ostream& operator<<(std::ostream& os, const fan_info& f) {
    os << "fan_info{openid: " << f.openid << ", subscribed: " << (f.subscribed ? "true" : "false")
       << ", subscribe_time: " << f.subscribe_time << ", language: " << f.language << ", remark: \""
       << f.remark << "\", unionid: " << f.unionid << ", subscribe_scene: " << f.subscribe_scene
       << ", qr_scene: " << f.qr_scene << ", qr_scene_str: \"" << f.qr_scene_str
       << "\", tagid_list: [";
    for (std::size_t i = 0; i < f.tagid_list.size(); ++i) {
        os << (i ? ", " : "") << f.tagid_list[i];
    }
    return os << "]}";
}

bool is_json_content_type(std::string_view content_type) noexcept {
    const std::string_view media = trim(content_type.substr(0, content_type.find(';')));
    return iequals(media, "application/json") || iequals(media, "text/plain");
}

std::string content_disposition_filename(std::string_view h) {
    constexpr auto npos = std::string_view::npos;
    auto skip_space = [&h](std::size_t i) {
        while (i < h.size() && (h[i] == ' ' || h[i] == '\t')) ++i;
        return i;
    };
    std::size_t i = h.find(';');  // past the disposition type
    while (i != npos) {
        i = skip_space(i + 1);
        const auto eq = h.find('=', i);
        if (eq == npos) break;
        const std::string_view name = trim(h.substr(i, eq - i));
        i = skip_space(eq + 1);
        std::string value;
        if (i < h.size() && h[i] == '"') {  // a quoted string may hold ';' and \-escapes
            for (++i; i < h.size() && h[i] != '"'; ++i) {
                if (h[i] == '\\' && i + 1 < h.size()) ++i;
                value.push_back(h[i]);
            }
            i = h.find(';', i);
        } else {
            const auto end = h.find(';', i);
            value = std::string(trim(h.substr(i, end == npos ? npos : end - i)));
            i = end;
        }
        if (iequals(name, "filename")) {
            if (const auto slash = value.find_last_of("/\\"); slash != std::string::npos) {
                value.erase(0, slash + 1);
            }
            return value;
        }
    }
    return {};
}

std::string parse_video_url(std::string_view body) {
    rapidjson::Document d;
    std::string url;
    if (!parse_object(body, d) || !opt_string(d, "video_url", url)) return {};
    return url;
}

}  // namespace scrm::wechat

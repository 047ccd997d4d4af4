// See console_requests.hpp.
#include "scrm/gateway/console_requests.hpp"

#include <algorithm>
#include <charconv>

#include "request_json.hpp"
#include "scrm/gateway/http.hpp"

namespace scrm::gateway {
namespace {

using namespace request_json;

// Length of the UTF-8 sequence starting with `c` (1 for anything that does not start one: the
// text was validated before).
std::size_t sequence_length(unsigned char c) {
    if ((c & 0xE0) == 0xC0) return 2;
    if ((c & 0xF0) == 0xE0) return 3;
    if ((c & 0xF8) == 0xF0) return 4;
    return 1;
}

std::size_t utf8_length(std::string_view s) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < s.size(); i += sequence_length(static_cast<unsigned char>(s[i]))) {
        ++n;
    }
    return n;
}

std::string_view trim_space(std::string_view s) {
    const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    while (!s.empty() && blank(s.front())) s.remove_prefix(1);
    while (!s.empty() && blank(s.back())) s.remove_suffix(1);
    return s;
}

bool has_control(std::string_view s) {
    return std::any_of(s.begin(), s.end(),
                       [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; });
}

// A short text a person typed: valid UTF-8, trimmed, 1–max characters, no control characters.
std::optional<std::string> short_text(std::string_view raw, std::size_t max_chars) {
    if (!valid_utf8(raw)) return std::nullopt;
    const std::string_view t = trim_space(raw);
    if (t.empty() || has_control(t) || utf8_length(t) > max_chars) return std::nullopt;
    return std::string(t);
}

template <class T>
bool parse_number(std::string_view text, T& out) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

// limit=1..100 (absent: the default).
bool parse_limit(std::string_view query, std::size_t& out) {
    auto text = query_param(query, "limit");
    if (!text) return true;
    std::size_t n = 0;
    if (!parse_number(*text, n) || n < 1 || n > max_page) return false;
    out = n;
    return true;
}

// "<a>.<b>" of two numbers.
template <class A, class B>
bool parse_pair(std::string_view text, A& a, B& b) {
    const auto dot = text.find('.');
    if (dot == std::string_view::npos) return false;
    return parse_number(text.substr(0, dot), a) && parse_number(text.substr(dot + 1), b);
}

// A member that may be absent (false), null (true, nullopt) or an id (true, the id); `bad` when it
// is anything else.
bool nullable_id(const rapidjson::Document& doc, const char* name,
                 std::optional<std::uint64_t>& out, bool& bad) {
    const auto it = doc.FindMember(name);
    if (it == doc.MemberEnd()) return false;
    if (it->value.IsNull()) {
        out.reset();
        return true;
    }
    out = id_member(doc, name, bad);
    return true;
}

}  // namespace

std::string to_string(const list_cursor& c) {
    return std::to_string(c.activity_ms) + "." + std::to_string(c.fan_id);
}

std::string to_string(const history_cursor& c) {
    return std::to_string(c.inbound) + "." + std::to_string(c.outbound);
}

parsed<list_query> parse_list_query(std::string_view query) {
    list_query q;
    if (auto f = query_param(query, "filter")) {
        if (*f == "all") {
            q.filter = conversation_filter::all;
        } else if (*f == "mine") {
            q.filter = conversation_filter::mine;
        } else if (*f == "waiting") {
            q.filter = conversation_filter::waiting;
        } else if (*f == "consultant_waiting") {
            q.filter = conversation_filter::consultant_waiting;
        } else {
            return {std::nullopt, "filter 只能是 all、mine、waiting 或 consultant_waiting"};
        }
    }
    if (auto s = query_param(query, "store")) {
        q.store = parse_id(*s);
        if (!q.store) return {std::nullopt, "store 必须是门店编号"};
    }
    if (auto text = query_param(query, "q")) {
        if (!trim_space(*text).empty()) {
            q.search = short_text(*text, max_search_chars);
            if (!q.search) {
                return {std::nullopt, "搜索内容最多" + std::to_string(max_search_chars) +
                                          "个字，且不能含有控制字符"};
            }
        }
    }
    if (auto c = query_param(query, "cursor")) {
        list_cursor cur;
        if (!parse_pair(*c, cur.activity_ms, cur.fan_id) || cur.fan_id == 0) {
            return {std::nullopt, "cursor 无效，请从第一页重新加载"};
        }
        q.cursor = cur;
    }
    if (!parse_limit(query, q.limit)) {
        return {std::nullopt, "limit 必须是 1 到 " + std::to_string(max_page) + " 之间的整数"};
    }
    return {std::move(q), {}};
}

std::string like_anywhere(std::string_view text) {
    std::string out = "%";
    for (char c : text) {
        if (c == '%' || c == '_' || c == '\\') out += '\\';
        out += c;
    }
    out += '%';
    return out;
}

parsed<history_query> parse_history_query(std::string_view query) {
    history_query q;
    if (auto b = query_param(query, "before")) {
        history_cursor cur;
        if (!parse_pair(*b, cur.inbound, cur.outbound) || (cur.inbound == 0 && cur.outbound == 0)) {
            return {std::nullopt, "before 无效，请重新打开会话"};
        }
        q.before = cur;
    }
    if (!parse_limit(query, q.limit)) {
        return {std::nullopt, "limit 必须是 1 到 " + std::to_string(max_page) + " 之间的整数"};
    }
    return {q, {}};
}

parsed<fan_profile_request> parse_fan_profile(std::string_view body) {
    auto doc = parse_object(body);
    if (!doc) return {std::nullopt, not_an_object};
    fan_profile_request r;
    if (const auto it = doc->FindMember("remark"); it != doc->MemberEnd()) {
        r.set_remark = true;
        if (!it->value.IsNull()) {
            const bool blank =
                it->value.IsString() &&
                trim_space(std::string_view(it->value.GetString(), it->value.GetStringLength()))
                    .empty();
            if (it->value.IsString() && !blank) {
                r.remark =
                    short_text(std::string_view(it->value.GetString(), it->value.GetStringLength()),
                               max_remark_chars);
            }
            if (!blank && !r.remark) {
                return {std::nullopt,
                        "备注最多" + std::to_string(max_remark_chars) + "个字，且不能含有控制字符"};
            }
        }
    }
    if (const auto it = doc->FindMember("tags"); it != doc->MemberEnd()) {
        if (!it->value.IsArray() || it->value.Size() > max_tags) {
            return {std::nullopt, "标签必须是列表，最多" + std::to_string(max_tags) + "个"};
        }
        std::vector<std::string> tags;
        for (const auto& v : it->value.GetArray()) {
            std::optional<std::string> t;
            if (v.IsString()) {
                t = short_text(std::string_view(v.GetString(), v.GetStringLength()), max_tag_chars);
            }
            if (!t || t->find('"') != std::string::npos || t->find('\\') != std::string::npos) {
                return {std::nullopt, "每个标签1到" + std::to_string(max_tag_chars) +
                                          "个字，不能含有引号、反斜杠或控制字符"};
            }
            if (std::find(tags.begin(), tags.end(), *t) == tags.end()) tags.push_back(*t);
        }
        r.tags = std::move(tags);
    }
    if (!r.set_remark && !r.tags) return {std::nullopt, "请填写备注（remark）或标签（tags）"};
    return {std::move(r), {}};
}

std::string tags_json(const std::vector<std::string>& tags) {
    std::string out = "[";
    for (const auto& t : tags) {
        if (out.size() > 1) out += ',';
        out += json_quote(t);
    }
    return out + "]";
}

std::optional<std::vector<std::string>> parse_tags_json(std::string_view json) {
    rapidjson::Document doc;
    doc.Parse(json.data(), json.size());
    if (doc.HasParseError() || !doc.IsArray()) return std::nullopt;
    std::vector<std::string> out;
    for (const auto& v : doc.GetArray()) {
        if (!v.IsString()) return std::nullopt;
        out.emplace_back(v.GetString(), v.GetStringLength());
    }
    return out;
}

parsed<owner_request> parse_owner(std::string_view body) {
    auto doc = parse_object(body);
    if (!doc) return {std::nullopt, not_an_object};
    owner_request r;
    bool bad = false;
    r.set_consultant = nullable_id(*doc, "consultant", r.consultant, bad);
    r.set_exclusive = nullable_id(*doc, "exclusive", r.exclusive, bad);
    if (bad) return {std::nullopt, "consultant / exclusive 必须是客服编号或 null"};
    if (!r.set_consultant && !r.set_exclusive) {
        return {std::nullopt, "请指定顾问（consultant）或专属客服（exclusive）"};
    }
    return {r, {}};
}

parsed<bind_patient_request> parse_bind_patient(std::string_view body) {
    auto doc = parse_object(body);
    if (!doc) return {std::nullopt, not_an_object};
    bind_patient_request r;
    bool bad = false;
    r.patient_id = id_member(*doc, "patient_id", bad);
    auto name = string_member(*doc, "name", bad);
    auto phone = string_member(*doc, "phone", bad);
    auto record = string_member(*doc, "record_no", bad);
    if (bad) return {std::nullopt, "请求中的字段类型不正确"};
    if (r.patient_id) {
        if (name || phone || record) {
            return {std::nullopt, "已指定 patient_id 时不能再填写姓名、电话或病历号"};
        }
        return {std::move(r), {}};
    }
    auto n = name ? short_text(*name, 32) : std::nullopt;
    if (!n) return {std::nullopt, "请填写患者姓名（1到32个字）"};
    r.name = std::move(*n);
    if (phone && !trim_space(*phone).empty()) {
        const std::string_view p = trim_space(*phone);
        const bool ok =
            p.size() >= 3 && p.size() <= 20 && std::all_of(p.begin(), p.end(), [](char c) {
                return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == ' ';
            });
        if (!ok) return {std::nullopt, "电话号码格式不正确"};
        r.phone = std::string(p);
    }
    if (record && !trim_space(*record).empty()) {
        const std::string_view t = trim_space(*record);
        const bool ok = t.size() <= 64 && std::all_of(t.begin(), t.end(),
                                                      [](char c) { return c > 0x20 && c < 0x7F; });
        if (!ok) return {std::nullopt, "病历号最多64个字母、数字或符号"};
        r.record_no = std::string(t);
    }
    return {std::move(r), {}};
}

parsed<std::uint64_t> parse_unbind_patient(std::string_view body) {
    auto doc = parse_object(body);
    if (!doc) return {std::nullopt, not_an_object};
    bool bad = false;
    auto id = id_member(*doc, "patient_id", bad);
    if (bad || !id) return {std::nullopt, "请指定要解除绑定的患者（patient_id）"};
    return {*id, {}};
}

parsed<password_change> parse_password_change(std::string_view body) {
    auto doc = parse_object(body);
    if (!doc) return {std::nullopt, not_an_object};
    bool bad = false;
    auto old_pw = string_member(*doc, "old_password", bad);
    auto new_pw = string_member(*doc, "new_password", bad);
    if (bad || !old_pw || !new_pw || old_pw->empty()) {
        return {std::nullopt, "请填写原密码和新密码"};
    }
    if (new_pw->size() < min_password_bytes || new_pw->size() > max_password_bytes) {
        return {std::nullopt, "新密码至少" + std::to_string(min_password_bytes) + "位，最多" +
                                  std::to_string(max_password_bytes) + "字节"};
    }
    if (!valid_utf8(*new_pw)) return {std::nullopt, "新密码含有无效字符"};
    if (*new_pw == *old_pw) return {std::nullopt, "新密码不能与原密码相同"};
    return {password_change{std::move(*old_pw), std::move(*new_pw)}, {}};
}

std::string display_name(const std::optional<std::string>& remark,
                         const std::optional<std::string>& patient_name, std::string_view openid) {
    if (remark && !remark->empty()) return *remark;
    if (patient_name && !patient_name->empty()) return *patient_name;
    return "顾客" + std::string(openid.substr(openid.size() > 6 ? openid.size() - 6 : 0));
}

std::string preview(std::string_view text, std::size_t max_chars) {
    std::size_t i = 0;
    std::size_t chars = 0;
    while (i < text.size() && chars < max_chars) {
        i += sequence_length(static_cast<unsigned char>(text[i]));
        ++chars;
    }
    if (i >= text.size()) return std::string(text);
    return std::string(text.substr(0, i)) + "…";
}

}  // namespace scrm::gateway

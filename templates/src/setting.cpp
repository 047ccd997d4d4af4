// Settings: validation, the stored JSON form, placeholder expansion and rendering (setting.hpp).
#include "scrm/templates/setting.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <array>

#include "scrm/wechat/xml_text.hpp"
#include "text.hpp"

namespace scrm::templates {
namespace {

using detail::chars;
using detail::has_control;
using detail::view;

constexpr std::array<std::string_view, 13> keyword_types = {
    "thing",  "number",       "letter",     "symbol", "character_string", "time", "date",
    "amount", "phone_number", "car_number", "name",   "phrase",           "const"};

// "thing12" → "thing"; nullopt unless <type><1–99>.
std::optional<std::string_view> keyword_type(std::string_view keyword) noexcept {
    const auto digits = keyword.find_first_of("0123456789");
    if (digits == std::string_view::npos || digits == 0) return std::nullopt;
    const auto number = keyword.substr(digits);
    if (number.size() > 2 || number.front() == '0' ||
        number.find_first_not_of("0123456789") != std::string_view::npos) {
        return std::nullopt;
    }
    const auto type = keyword.substr(0, digits);
    if (std::find(keyword_types.begin(), keyword_types.end(), type) == keyword_types.end()) {
        return std::nullopt;
    }
    return type;
}

// One piece of a value template: fixed text, or a placeholder's field name.
struct piece {
    std::string_view text;
    bool placeholder = false;
};

// Splits at "{{name}}"; an unclosed "{{" is fixed text. Names are trimmed of spaces.
std::vector<piece> pieces(std::string_view tmpl) {
    std::vector<piece> out;
    std::size_t at = 0;
    while (at < tmpl.size()) {
        const auto open = tmpl.find("{{", at);
        const auto close = open == std::string_view::npos ? open : tmpl.find("}}", open + 2);
        if (open == std::string_view::npos || close == std::string_view::npos) {
            out.push_back({tmpl.substr(at), false});
            break;
        }
        if (open > at) out.push_back({tmpl.substr(at, open - at), false});
        auto name = tmpl.substr(open + 2, close - open - 2);
        while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
        while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
        out.push_back({name, true});
        at = close + 2;
    }
    return out;
}

bool valid_field_name(std::string_view name) noexcept {
    return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
}

struct problems_out {
    std::vector<problem>& list;
    void add(std::string field, std::string en, std::string zh) {
        list.push_back({std::move(field), std::move(en), std::move(zh)});
    }
};

// Placeholders of `tmpl` that are not fields of `kind`.
void check_placeholders(const kind_info& kind, std::string_view tmpl, const std::string& where,
                        problems_out& out) {
    for (const auto& p : pieces(tmpl)) {
        if (!p.placeholder) continue;
        const std::string name(p.text);
        if (!valid_field_name(p.text) || !find_field(kind, p.text)) {
            out.add(where, "{{" + name + "}} is not a field of " + std::string(kind.name),
                    "{{" + name + "}} 不是“" + std::string(kind.label) + "”的字段");
        }
    }
}

bool is_hex_lower(std::string_view s) noexcept {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

std::optional<keyword_limit> limit_for(std::string_view keyword) noexcept {
    const auto type = keyword_type(keyword);
    if (!type) return std::nullopt;
    if (*type == "thing" || *type == "const") return keyword_limit{20, 17};
    if (*type == "character_string") return keyword_limit{32, 29};
    if (*type == "phone_number") return keyword_limit{17, 14};
    if (*type == "car_number") return keyword_limit{8, 5};
    return std::nullopt;
}

std::string truncate_value(std::string_view keyword, std::string_view value) {
    const auto limit = limit_for(keyword);
    if (!limit || chars(value) <= limit->max_chars) return std::string(value);
    std::size_t kept = 0, at = 0;
    while (at < value.size()) {
        const auto u = static_cast<unsigned char>(value[at]);
        if ((u & 0xC0) != 0x80) {
            if (kept == limit->kept_chars) break;
            ++kept;
        }
        ++at;
    }
    return std::string(value.substr(0, at)) + "...";
}

template_setting updated(const std::optional<template_setting>& before, std::string_view kind,
                         const setting_update& u) {
    template_setting s;
    if (before) s = *before;
    s.kind = std::string(kind);
    if (u.template_id) s.template_id = *u.template_id;
    if (u.keywords) s.keywords = *u.keywords;
    if (u.url) s.url = *u.url;
    if (u.mp_appid) s.mp_appid = *u.mp_appid;
    if (u.mp_page) s.mp_page = *u.mp_page;
    if (u.enabled) s.enabled = *u.enabled;
    return s;
}

std::vector<problem> validate(const template_setting& s) {
    std::vector<problem> list;
    problems_out out{list};
    const kind_info* kind = find_kind(s.kind);
    if (!kind) {
        out.add("kind", "unknown kind " + s.kind + " (scrm-admin template kinds lists them)",
                "未知的通知类型：" + s.kind);
    }
    const bool id_ok = !s.template_id.empty() && s.template_id.size() <= 128 &&
                       std::all_of(s.template_id.begin(), s.template_id.end(), [](char c) {
                           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                  (c >= '0' && c <= '9') || c == '_' || c == '-';
                       });
    if (!id_ok) {
        out.add("template_id", "must be WeChat's template id: 1-128 of A-Z a-z 0-9 _ -",
                "模板ID必须是微信公众平台上的模板ID（1至128位字母、数字、_或-）");
    }
    if (s.keywords.empty() || s.keywords.size() > max_keywords) {
        out.add("keywords",
                "must map 1-" + std::to_string(max_keywords) + " of the template's keywords",
                "关键词映射必须有1至" + std::to_string(max_keywords) + "项");
    }
    for (std::size_t i = 0; i < s.keywords.size(); ++i) {
        const auto& k = s.keywords[i];
        const std::string where = "keywords[" + std::to_string(i) + "]";
        if (k.keyword == "first" || k.keyword == "remark") {
            out.add(where + ".keyword",
                    k.keyword + " is ignored by WeChat since May 2023: map a category keyword",
                    "微信自2023年5月起不再显示" + k.keyword + "，请映射到模板的类目关键词");
            continue;
        }
        const auto type = keyword_type(k.keyword);
        if (!type) {
            out.add(where + ".keyword",
                    "\"" + k.keyword +
                        "\" is not a template keyword: <type><n> with type thing, number, letter, "
                        "symbol, character_string, time, date, amount, phone_number, car_number, "
                        "name, phrase or const and n 1-99 (e.g. thing1)",
                    "“" + k.keyword + "”不是模板关键词（例如 thing1、time2）");
        }
        for (std::size_t j = 0; j < i; ++j) {
            if (s.keywords[j].keyword == k.keyword) {
                out.add(where + ".keyword", k.keyword + " is mapped twice",
                        "关键词 " + k.keyword + " 重复");
                break;
            }
        }
        const bool text_ok = wechat::is_clean_text(k.value) && !has_control(k.value);
        const std::size_t n = text_ok ? chars(k.value) : 0;
        if (!text_ok || n == 0 || n > max_value_template_chars) {
            out.add(where + ".value",
                    "must be 1-" + std::to_string(max_value_template_chars) +
                        " characters of UTF-8 text without control characters",
                    "关键词的内容必须是1至" + std::to_string(max_value_template_chars) +
                        "个字符，不能包含控制字符");
            continue;
        }
        if (kind) check_placeholders(*kind, k.value, where + ".value", out);
        if (const auto limit = limit_for(k.keyword)) {
            std::size_t fixed = 0;
            for (const auto& p : pieces(k.value)) {
                if (!p.placeholder) fixed += chars(p.text);
            }
            if (fixed > limit->max_chars) {
                out.add(where + ".value",
                        "its fixed text has " + std::to_string(fixed) +
                            " characters; WeChat cuts " + std::string(*type) + " keywords after " +
                            std::to_string(limit->max_chars),
                        "固定文字有" + std::to_string(fixed) + "个字符，微信只显示" +
                            std::string(*type) + "类关键词的前" + std::to_string(limit->max_chars) +
                            "个字符");
            }
        }
    }
    if (!s.url.empty()) {
        const bool scheme = s.url.rfind("https://", 0) == 0 || s.url.rfind("http://", 0) == 0;
        const bool clean = wechat::is_clean_text(s.url) && !has_control(s.url) &&
                           s.url.find(' ') == std::string::npos;
        if (!scheme || !clean || s.url.size() > 512) {
            out.add("url", "must be an http:// or https:// URL of at most 512 bytes, no spaces",
                    "链接必须是http://或https://开头、不超过512字节且不含空格的网址");
        } else if (kind) {
            check_placeholders(*kind, s.url, "url", out);
        }
    }
    if (s.mp_appid.empty() != s.mp_page.empty()) {
        out.add("miniprogram", "give both the mini program's appid and its page, or neither",
                "小程序的AppID和页面路径必须同时填写");
    } else if (!s.mp_appid.empty()) {
        if (s.mp_appid.size() != 18 || s.mp_appid.rfind("wx", 0) != 0 ||
            !is_hex_lower(std::string_view(s.mp_appid).substr(2))) {
            out.add("mp_appid", "must be a mini program AppID: wx and 16 hex digits",
                    "小程序AppID格式不正确（wx加16位十六进制数字）");
        }
        if (s.mp_page.size() > 255 || !wechat::is_clean_text(s.mp_page) || has_control(s.mp_page) ||
            s.mp_page.find(' ') != std::string::npos) {
            out.add("mp_page", "must be a page path of at most 255 bytes, no spaces",
                    "小程序页面路径不能超过255字节，且不能包含空格");
        } else if (kind) {
            check_placeholders(*kind, s.mp_page, "mp_page", out);
        }
    }
    return list;
}

std::vector<std::string> used_fields(const template_setting& s) {
    std::vector<std::string> out;
    auto collect = [&out](std::string_view tmpl) {
        for (const auto& p : pieces(tmpl)) {
            if (!p.placeholder) continue;
            if (std::find(out.begin(), out.end(), p.text) == out.end()) out.emplace_back(p.text);
        }
    };
    for (const auto& k : s.keywords) collect(k.value);
    collect(s.url);
    collect(s.mp_page);
    return out;
}

std::string keywords_json(const std::vector<keyword_mapping>& keywords) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartArray();
    for (const auto& k : keywords) {
        w.StartObject();
        w.Key("keyword");
        w.String(k.keyword.c_str(), static_cast<rapidjson::SizeType>(k.keyword.size()));
        w.Key("value");
        w.String(k.value.c_str(), static_cast<rapidjson::SizeType>(k.value.size()));
        w.EndObject();
    }
    w.EndArray();
    return {buf.GetString(), buf.GetSize()};
}

std::optional<std::vector<keyword_mapping>> parse_keywords_json(std::string_view text) {
    rapidjson::Document d;
    d.Parse<rapidjson::kParseValidateEncodingFlag>(text.data(), text.size());
    if (d.HasParseError()) return std::nullopt;
    std::vector<keyword_mapping> out;
    if (d.IsObject()) {
        for (auto m = d.MemberBegin(); m != d.MemberEnd(); ++m) {
            if (!m->value.IsString()) return std::nullopt;
            out.push_back({std::string(view(m->name)), std::string(view(m->value))});
        }
        return out;
    }
    if (!d.IsArray()) return std::nullopt;
    for (const auto& e : d.GetArray()) {
        if (!e.IsObject() || e.MemberCount() != 2) return std::nullopt;
        const auto k = e.FindMember("keyword");
        const auto v = e.FindMember("value");
        if (k == e.MemberEnd() || v == e.MemberEnd() || !k->value.IsString() ||
            !v->value.IsString()) {
            return std::nullopt;
        }
        out.push_back({std::string(view(k->value)), std::string(view(v->value))});
    }
    return out;
}

std::string expand(std::string_view tmpl, const field_values& values, bool percent_encode) {
    std::string out;
    for (const auto& p : pieces(tmpl)) {
        if (!p.placeholder) {
            out += p.text;
            continue;
        }
        const auto it = values.find(p.text);
        if (it == values.end()) continue;
        if (!percent_encode) {
            out += it->second;
            continue;
        }
        static constexpr char hex[] = "0123456789ABCDEF";
        for (char c : it->second) {
            const auto u = static_cast<unsigned char>(c);
            const bool unreserved = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
                                    (u >= '0' && u <= '9') || u == '-' || u == '.' || u == '_' ||
                                    u == '~';
            if (unreserved) {
                out += c;
            } else {
                out += '%';
                out += hex[u >> 4];
                out += hex[u & 0x0F];
            }
        }
    }
    return out;
}

wechat::template_message render(const template_setting& s, const field_values& values,
                                std::string openid, std::string client_msg_id) {
    wechat::template_message m;
    m.touser = std::move(openid);
    m.template_id = s.template_id;
    m.client_msg_id = std::move(client_msg_id);
    m.url = expand(s.url, values, true);
    if (!s.mp_appid.empty()) {
        m.miniprogram = wechat::template_miniprogram{s.mp_appid, expand(s.mp_page, values, true)};
    }
    for (const auto& k : s.keywords) {
        std::string v = expand(k.value, values);
        for (char& c : v) {
            const auto u = static_cast<unsigned char>(c);
            if (u < 0x20 || u == 0x7F) c = ' ';
        }
        const auto first = v.find_first_not_of(' ');
        const auto last = v.find_last_not_of(' ');
        v = first == std::string::npos ? std::string() : v.substr(first, last - first + 1);
        if (v.empty()) v = "-";
        m.data.push_back({k.keyword, truncate_value(k.keyword, v), {}});
    }
    return m;
}

}  // namespace scrm::templates

// A clinic's setting for one notification kind, its validation, its stored JSON form, and
// rendering it into a WeChat template message (protocol sheet §5.4). Pure: no I/O, no clock,
// thread-safe.
//
// WeChat shows only the template's category keywords since May 2023 (`first` and `remark` are
// dropped) and truncates long keyword values per keyword type, so a setting maps our fields onto
// keywords with short value templates: "{{doctor}} {{store}}". Placeholders name fields of the
// kind (catalog.hpp) or the built-in ones.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scrm/templates/catalog.hpp"
#include "scrm/wechat/outbound.hpp"

namespace scrm::templates {

struct keyword_mapping {
    std::string keyword;  // the template's keyword, e.g. "thing1", "time2"
    std::string value;    // the value template: text and {{field}} placeholders
    friend bool operator==(const keyword_mapping&, const keyword_mapping&) = default;
};

struct template_setting {
    std::string kind;         // a catalog kind name
    std::string template_id;  // WeChat's template id
    std::vector<keyword_mapping> keywords;
    std::string url;       // may hold placeholders (values are percent-encoded); empty: none
    std::string mp_appid;  // a mini program opened instead of the URL (both or neither with page)
    std::string mp_page;   // its page path; may hold placeholders
    bool enabled = true;
    friend bool operator==(const template_setting&, const template_setting&) = default;
};

// What is wrong with one part of a setting or an event, for operators (English, the CLI) and for
// people (Simplified Chinese, the API and admin pages).
struct problem {
    std::string field;  // "keywords[1].value", "url", …
    std::string en;
    std::string zh;
    friend bool operator==(const problem&, const problem&) = default;
};

inline constexpr std::size_t max_keywords = 10;
inline constexpr std::size_t max_value_template_chars = 64;

// Every problem of `s` (empty: valid). Rules: a catalog kind; template_id 1–128 of
// [A-Za-z0-9_-]; 1–max_keywords keywords, each named <type><n> with a WeChat keyword type (thing,
// number, letter, symbol, character_string, time, date, amount, phone_number, car_number, name,
// phrase, const) and n 1–99, once each — "first" and "remark" are refused (WeChat ignores them);
// each value template 1–max_value_template_chars characters, placeholders naming fields of the
// kind or built-ins, no control characters, and its fixed text (without placeholders) within the
// length WeChat keeps for the keyword's type; url empty or http(s)://… up to 512 bytes without
// spaces or control characters (placeholders allowed); mp_appid "wx" + 16 hex digits and mp_page
// 1–255 bytes, both or neither.
std::vector<problem> validate(const template_setting& s);

// A partial change of a setting (scrm-admin template set, PUT /api/admin/templates/{kind}): the
// members given replace the stored ones, the others stay.
struct setting_update {
    std::optional<std::string> template_id;
    std::optional<std::vector<keyword_mapping>> keywords;
    std::optional<std::string> url;       // "": no URL
    std::optional<std::string> mp_appid;  // "": no mini program
    std::optional<std::string> mp_page;
    std::optional<bool> enabled;
};
// `before` (none: a new setting of `kind`, enabled) with `u` applied; validate() it before storing.
template_setting updated(const std::optional<template_setting>& before, std::string_view kind,
                         const setting_update& u);

// The fields (kind's or built-in) that the setting's keywords and link use, each once, in order.
std::vector<std::string> used_fields(const template_setting& s);

// The keywords as stored (template_settings.keywords): [{"keyword":…,"value":…},…].
std::string keywords_json(const std::vector<keyword_mapping>& keywords);
// Parses keywords_json's form (also what `scrm-admin template set --keywords` takes). Also
// accepts an object {"thing1":"…","time2":"…"} (members in order). nullopt when it is neither.
std::optional<std::vector<keyword_mapping>> parse_keywords_json(std::string_view text);

// The characters WeChat keeps of a value for a keyword type, and how many remain before "..."
// when it is cut (WxJava resetValue): thing 20/17, character_string 32/29, phone_number 17/14,
// car_number 8/5, const 20/17. nullopt: not truncated (time, date, amount, …).
struct keyword_limit {
    std::size_t max_chars = 0;
    std::size_t kept_chars = 0;
};
std::optional<keyword_limit> limit_for(std::string_view keyword) noexcept;
// `value` cut as WeChat would (counting characters, i.e. code points), with "..." when cut.
std::string truncate_value(std::string_view keyword, std::string_view value);

using field_values = std::map<std::string, std::string, std::less<>>;

// `tmpl` with each {{field}} replaced by its value (absent: empty). With `percent_encode`, the
// values are percent-encoded (RFC 3986 unreserved characters kept) — for links.
std::string expand(std::string_view tmpl, const field_values& values, bool percent_encode = false);

// The template message for `openid`: each keyword's expanded value (line breaks and other control
// characters become spaces, surrounding spaces trimmed) cut by truncate_value; an empty result
// becomes "-" (WeChat refuses empty values); the link expanded with percent-encoding.
wechat::template_message render(const template_setting& s, const field_values& values,
                                std::string openid, std::string client_msg_id);

}  // namespace scrm::templates

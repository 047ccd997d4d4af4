// See admin_rest_requests.hpp.
#include "scrm/gateway/admin_rest_requests.hpp"

#include <algorithm>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "request_json.hpp"
#include "scrm/gateway/text_rules.hpp"

namespace scrm::gateway {
namespace {

using request_json::member;
using request_json::parse_object;
using request_json::unknown_member;

constexpr const char* not_object = "请求内容须为 JSON 对象";

template <class T>
parsed<T> refused(std::string problem) {
    parsed<T> out;
    out.problem = std::move(problem);
    return out;
}

std::string text_of(const rapidjson::Value& v) {
    return {v.GetString(), v.GetStringLength()};
}

// "position": a whole number from 1, or nullopt with `bad` set.
std::optional<std::size_t> position_member(const rapidjson::Document& doc, bool& bad) {
    const rapidjson::Value* v = member(doc, "position");
    if (!v) return std::nullopt;
    if (!v->IsUint64() || v->GetUint64() == 0 || v->GetUint64() > 100000) {
        bad = true;
        return std::nullopt;
    }
    return static_cast<std::size_t>(v->GetUint64());
}

constexpr const char* bad_position = "位置（position）须为从1开始的整数";

}  // namespace

parsed<templates::setting_update> parse_template_update(std::string_view body) {
    using out_t = templates::setting_update;
    auto doc = parse_object(body);
    if (!doc) return refused<out_t>(not_object);
    if (auto u =
            unknown_member(*doc, {"template_id", "keywords", "url", "miniprogram", "enabled"})) {
        return refused<out_t>("未知的字段：" + *u);
    }
    if (doc->MemberCount() == 0) {
        return refused<out_t>("请至少填写一项：template_id、keywords、url、miniprogram 或 enabled");
    }
    out_t u;
    if (const auto it = doc->FindMember("template_id"); it != doc->MemberEnd()) {
        if (!it->value.IsString()) return refused<out_t>("模板ID（template_id）须为文字");
        u.template_id = text_of(it->value);
    }
    if (const auto it = doc->FindMember("keywords"); it != doc->MemberEnd()) {
        std::optional<std::vector<templates::keyword_mapping>> k;
        if (it->value.IsArray() || it->value.IsObject()) {
            rapidjson::StringBuffer buf;
            rapidjson::Writer<rapidjson::StringBuffer> w(buf);
            it->value.Accept(w);
            k = templates::parse_keywords_json(std::string_view(buf.GetString(), buf.GetSize()));
        }
        if (!k) {
            return refused<out_t>(
                R"(关键词映射（keywords）须为 [{"keyword":"thing1","value":"{{doctor}}"},…] 或 )"
                R"({"thing1":"{{doctor}}",…})");
        }
        u.keywords = std::move(k);
    }
    if (const auto it = doc->FindMember("url"); it != doc->MemberEnd()) {
        if (!it->value.IsNull() && !it->value.IsString()) {
            return refused<out_t>("链接（url）须为网址文字，或 null（不设链接）");
        }
        u.url = it->value.IsNull() ? std::string() : text_of(it->value);
    }
    if (const auto it = doc->FindMember("miniprogram"); it != doc->MemberEnd()) {
        const rapidjson::Value& v = it->value;
        if (v.IsNull()) {
            u.mp_appid = u.mp_page = std::string();
        } else {
            const bool shape = v.IsObject() && v.MemberCount() == 2 && v.HasMember("appid") &&
                               v.HasMember("page") && v["appid"].IsString() && v["page"].IsString();
            if (!shape) {
                return refused<out_t>(
                    R"(小程序（miniprogram）须为 {"appid":"wx…","page":"pages/…"}，或 null（不设小程序）)");
            }
            u.mp_appid = text_of(v["appid"]);
            u.mp_page = text_of(v["page"]);
        }
    }
    if (const auto it = doc->FindMember("enabled"); it != doc->MemberEnd()) {
        if (!it->value.IsBool()) return refused<out_t>("启用（enabled）须为 true 或 false");
        u.enabled = it->value.GetBool();
    }
    parsed<out_t> out;
    out.value = std::move(u);
    return out;
}

parsed<std::string> parse_api_key_name(std::string_view body) {
    auto doc = parse_object(body);
    if (!doc) return refused<std::string>(not_object);
    if (auto u = unknown_member(*doc, {"name"})) return refused<std::string>("未知的字段：" + *u);
    const rapidjson::Value* v = member(*doc, "name");
    if (!v || !v->IsString() || !valid_name(text_of(*v), api_key_name_max)) {
        return refused<std::string>(
            "密钥名称（name）须为1至64个字符，不含控制字符，首尾不能是空格");
    }
    parsed<std::string> out;
    out.value = text_of(*v);
    return out;
}

parsed<snippet_group_change> parse_snippet_group(std::string_view body, bool create) {
    auto doc = parse_object(body);
    if (!doc) return refused<snippet_group_change>(not_object);
    if (auto u = unknown_member(*doc, {"name", "position"})) {
        return refused<snippet_group_change>("未知的字段：" + *u);
    }
    snippet_group_change c;
    if (const rapidjson::Value* v = member(*doc, "name")) {
        if (!v->IsString() || !valid_name(text_of(*v), snippet_group_name_max)) {
            return refused<snippet_group_change>(
                "分组名称（name）须为1至64个字符，不含控制字符，首尾不能是空格");
        }
        c.name = text_of(*v);
    }
    bool bad = false;
    c.position = position_member(*doc, bad);
    if (bad) return refused<snippet_group_change>(bad_position);
    if (create && !c.name) return refused<snippet_group_change>("请填写分组名称（name）");
    if (!create && !c.name && !c.position) {
        return refused<snippet_group_change>("请至少填写一项：name 或 position");
    }
    parsed<snippet_group_change> out;
    out.value = std::move(c);
    return out;
}

parsed<snippet_change> parse_snippet(std::string_view body, bool create) {
    auto doc = parse_object(body);
    if (!doc) return refused<snippet_change>(not_object);
    if (auto u = unknown_member(*doc, {"text", "position"})) {
        return refused<snippet_change>("未知的字段：" + *u);
    }
    snippet_change c;
    if (const rapidjson::Value* v = member(*doc, "text")) {
        if (!v->IsString() || v->GetStringLength() == 0 ||
            !valid_free_text(text_of(*v), snippet_text_max)) {
            return refused<snippet_change>(
                "快捷回复内容（text）须为1至1000个字符（可换行，不可含其他控制字符）");
        }
        c.text = text_of(*v);
    }
    bool bad = false;
    c.position = position_member(*doc, bad);
    if (bad) return refused<snippet_change>(bad_position);
    if (create && !c.text) return refused<snippet_change>("请填写快捷回复内容（text）");
    if (!create && !c.text && !c.position) {
        return refused<snippet_change>("请至少填写一项：text 或 position");
    }
    parsed<snippet_change> out;
    out.value = std::move(c);
    return out;
}

std::vector<std::uint64_t> moved(std::vector<std::uint64_t> ids, std::uint64_t id,
                                 std::size_t position) {
    const auto it = std::find(ids.begin(), ids.end(), id);
    if (it == ids.end() || position == 0) return ids;
    ids.erase(it);
    ids.insert(ids.begin() + static_cast<std::ptrdiff_t>(std::min(position - 1, ids.size())), id);
    return ids;
}

}  // namespace scrm::gateway

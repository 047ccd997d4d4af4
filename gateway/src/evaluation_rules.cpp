// See evaluation_rules.hpp. Bodies are read with RapidJSON; unknown members are refused (a
// misspelt field must not pass silently).
#include "scrm/gateway/evaluation_rules.hpp"

#include <rapidjson/document.h>

#include <algorithm>
#include <charconv>

#include "scrm/gateway/agent_requests.hpp"
#include "scrm/gateway/http.hpp"
#include "scrm/gateway/text_rules.hpp"

namespace scrm::gateway {
namespace {

std::optional<rapidjson::Document> parse_object(std::string_view body) {
    rapidjson::Document doc;
    doc.Parse(body.data(), body.size());
    if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
    return doc;
}

std::string_view text_of(const rapidjson::Value& v) {
    return {v.GetString(), v.GetStringLength()};
}

// The first member of `obj` not in `known`, or nullptr.
const char* unknown_member(const rapidjson::Value& obj,
                           std::initializer_list<std::string_view> known) {
    for (const auto& m : obj.GetObject()) {
        if (std::find(known.begin(), known.end(), text_of(m.name)) == known.end()) {
            return m.name.GetString();
        }
    }
    return nullptr;
}

template <class T>
parsed_input<T> problem(std::string text) {
    parsed_input<T> out;
    out.problem = std::move(text);
    return out;
}

}  // namespace

const char* to_string(rating r) noexcept {
    switch (r) {
        case rating::good: return "good";
        case rating::average: return "average";
        case rating::poor: return "poor";
    }
    return "good";
}

const char* rating_label(rating r) noexcept {
    switch (r) {
        case rating::good: return "好";
        case rating::average: return "中";
        case rating::poor: return "差";
    }
    return "好";
}

std::optional<rating> parse_rating(std::string_view text) noexcept {
    if (text == "good") return rating::good;
    if (text == "average") return rating::average;
    if (text == "poor") return rating::poor;
    return std::nullopt;
}

rating overall_rating(const std::vector<rating>& ratings) noexcept {
    rating worst = rating::good;
    for (rating r : ratings) worst = std::max(worst, r);
    return worst;
}

const std::vector<std::string>& default_evaluation_attributes() {
    static const std::vector<std::string> names{"服务态度", "专业水平", "环境卫生", "等候时间"};
    return names;
}

std::string join_attributes(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) {
        if (!out.empty()) out += '\n';
        out += n;
    }
    return out;
}

std::vector<std::string> split_attributes(std::string_view stored) {
    std::vector<std::string> out;
    while (!stored.empty()) {
        const auto nl = stored.find('\n');
        out.emplace_back(stored.substr(0, nl));
        if (nl == std::string_view::npos) break;
        stored.remove_prefix(nl + 1);
    }
    return out;
}

parsed_input<std::vector<std::string>> parse_attribute_update(std::string_view body) {
    using out_t = std::vector<std::string>;
    const auto doc = parse_object(body);
    if (!doc) return problem<out_t>("请求内容必须是 JSON 对象");
    if (const char* m = unknown_member(*doc, {"custom"})) {
        return problem<out_t>(std::string("不认识的字段：") + m);
    }
    const auto it = doc->FindMember("custom");
    if (it == doc->MemberEnd() || !it->value.IsArray()) {
        return problem<out_t>("请填写自定义评价属性（custom：字符串数组，可为空）");
    }
    if (it->value.Size() > max_custom_attributes) {
        return problem<out_t>("自定义评价属性最多10个（已填写" + std::to_string(it->value.Size()) +
                              "个）");
    }
    out_t names;
    const auto& defaults = default_evaluation_attributes();
    for (const auto& v : it->value.GetArray()) {
        const std::string index = "第" + std::to_string(names.size() + 1) + "个自定义评价属性";
        if (!v.IsString()) return problem<out_t>(index + "必须是文字");
        const std::string_view name = text_of(v);
        const auto chars = utf8_chars(name);
        if (chars && *chars > max_attribute_chars) {
            return problem<out_t>(index + "超过64个字符（" + std::to_string(*chars) + "个）");
        }
        if (!valid_name(name, max_attribute_chars)) {
            return problem<out_t>(index + "必须是1到64个字符，不能包含控制字符，首尾不能有空格");
        }
        if (std::find(defaults.begin(), defaults.end(), name) != defaults.end()) {
            return problem<out_t>(index + "“" + std::string(name) + "”与默认评价属性重复");
        }
        if (std::find(names.begin(), names.end(), name) != names.end()) {
            return problem<out_t>(index + "“" + std::string(name) + "”重复");
        }
        names.emplace_back(name);
    }
    parsed_input<out_t> out;
    out.value = std::move(names);
    return out;
}

parsed_input<evaluation_submission> parse_submission(std::string_view body,
                                                     const std::vector<std::string>& asked) {
    using out_t = evaluation_submission;
    const auto doc = parse_object(body);
    if (!doc) return problem<out_t>("请求内容必须是 JSON 对象");
    if (const char* m = unknown_member(*doc, {"ratings", "comment"})) {
        return problem<out_t>(std::string("不认识的字段：") + m);
    }
    const auto r = doc->FindMember("ratings");
    if (r == doc->MemberEnd() || !r->value.IsObject()) {
        return problem<out_t>("请为每一项评价选择好、中或差");
    }
    out_t sub;
    sub.ratings.resize(asked.size(), rating::good);
    std::vector<bool> seen(asked.size(), false);
    for (const auto& m : r->value.GetObject()) {
        const std::string_view name = text_of(m.name);
        const auto at = std::find(asked.begin(), asked.end(), name);
        if (at == asked.end()) {
            return problem<out_t>("评价项目“" + std::string(name) + "”不在本次评价中");
        }
        const auto i = static_cast<std::size_t>(at - asked.begin());
        const auto value = m.value.IsString() ? parse_rating(text_of(m.value)) : std::nullopt;
        if (!value) {
            return problem<out_t>("“" + std::string(name) +
                                  "”的评价只能是好（good）、中（average）或差（poor）");
        }
        if (seen[i]) return problem<out_t>("“" + std::string(name) + "”评价了两次");
        seen[i] = true;
        sub.ratings[i] = *value;
    }
    for (std::size_t i = 0; i < asked.size(); ++i) {
        if (!seen[i]) return problem<out_t>("请为“" + asked[i] + "”选择好、中或差");
    }
    const auto c = doc->FindMember("comment");
    if (c != doc->MemberEnd() && !c->value.IsNull()) {
        if (!c->value.IsString()) return problem<out_t>("留言必须是文字");
        const std::string_view text = text_of(c->value);
        const auto chars = utf8_chars(text);
        if (chars && *chars > max_comment_chars) {
            return problem<out_t>("留言最多500个字符（已输入" + std::to_string(*chars) + "个）");
        }
        if (!valid_free_text(text, max_comment_chars)) return problem<out_t>("留言包含无法识别的字符");
        sub.comment = std::string(text);
    }
    parsed_input<out_t> out;
    out.value = std::move(sub);
    return out;
}

parsed_input<std::string> parse_reply(std::string_view body) {
    const auto doc = parse_object(body);
    if (!doc) return problem<std::string>("请求内容必须是 JSON 对象");
    if (const char* m = unknown_member(*doc, {"text"})) {
        return problem<std::string>(std::string("不认识的字段：") + m);
    }
    const auto t = doc->FindMember("text");
    if (t == doc->MemberEnd() || !t->value.IsString() || t->value.GetStringLength() == 0) {
        return problem<std::string>("请填写回复内容（text）");
    }
    const std::string_view text = text_of(t->value);
    const auto chars = utf8_chars(text);
    if (chars && *chars > max_reply_chars) {
        return problem<std::string>("回复最多600个字符（已输入" + std::to_string(*chars) + "个）");
    }
    if (!valid_free_text(text, max_reply_chars) ||
        std::all_of(text.begin(), text.end(), [](char ch) { return ch == ' ' || ch == '\n'; })) {
        return problem<std::string>("回复内容不能为空，也不能包含无法识别的字符");
    }
    parsed_input<std::string> out;
    out.value = std::string(text);
    return out;
}

parsed_input<evaluation_query> parse_evaluation_query(std::string_view query) {
    evaluation_query q;
    if (auto s = query_param(query, "state"); s && !s->empty()) {
        if (*s != "awaiting" && *s != "submitted" && *s != "replied") {
            return problem<evaluation_query>(
                "状态（state）只能是 awaiting（待评价）、submitted（已评价）或 replied（已回复）");
        }
        q.state = *s;
    }
    if (auto r = query_param(query, "rating"); r && !r->empty()) {
        q.overall = parse_rating(*r);
        if (!q.overall) {
            return problem<evaluation_query>(
                "评价（rating）只能是 good（好评）、average（中评）或 poor（差评）");
        }
    }
    const auto number = [&](const char* name, std::size_t& out, std::size_t max) {
        const auto v = query_param(query, name);
        if (!v) return true;
        std::size_t n = 0;
        const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
        if (ec != std::errc() || end != v->data() + v->size() || n < 1 || n > max) return false;
        out = n;
        return true;
    };
    if (!number("page", q.page, 1000000)) {
        return problem<evaluation_query>("页码（page）必须是从1开始的整数");
    }
    if (!number("page_size", q.page_size, 100)) {
        return problem<evaluation_query>("每页条数（page_size）必须是1到100之间的整数");
    }
    parsed_input<evaluation_query> out;
    out.value = q;
    return out;
}

std::string csv_document(const std::vector<std::vector<std::string>>& rows) {
    std::string out = "\xEF\xBB\xBF";
    for (const auto& row : rows) {
        for (std::size_t i = 0; i < row.size(); ++i) {
            if (i) out += ',';
            std::string cell = row[i];
            if (!cell.empty() &&
                (cell[0] == '=' || cell[0] == '+' || cell[0] == '-' || cell[0] == '@')) {
                cell.insert(cell.begin(), '\'');
            }
            if (cell.find_first_of(",\"\r\n") == std::string::npos) {
                out += cell;
                continue;
            }
            out += '"';
            for (char c : cell) {
                if (c == '"') out += '"';
                out += c;
            }
            out += '"';
        }
        out += "\r\n";
    }
    return out;
}

}  // namespace scrm::gateway

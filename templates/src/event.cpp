// Integration events: parsing and the canonical form (event.hpp).
#include "scrm/templates/event.hpp"

#include <rapidjson/document.h>

#include <algorithm>

#include "scrm/wechat/xml_text.hpp"
#include "text.hpp"

namespace scrm::templates {
namespace {

using detail::chars;
using detail::view;

bool clean_line(std::string_view s) noexcept {
    return wechat::is_clean_text(s) && !detail::has_control(s);
}

bool blank(std::string_view s) noexcept {
    return s.find_first_not_of(" \t") == std::string_view::npos;
}

parsed_event fail(std::string field, std::string en, std::string zh) {
    parsed_event out;
    out.error = problem{std::move(field), std::move(en), std::move(zh)};
    return out;
}

}  // namespace

parsed_event parse_event(std::string_view body) {
    rapidjson::Document d;
    d.Parse<rapidjson::kParseValidateEncodingFlag>(body.data(), body.size());
    if (d.HasParseError() || !d.IsObject()) {
        return fail("", "the body must be a JSON object in UTF-8",
                    "请求体必须是UTF-8编码的JSON对象");
    }
    for (auto m = d.MemberBegin(); m != d.MemberEnd(); ++m) {
        const auto name = view(m->name);
        if (name != "kind" && name != "idempotency_key" && name != "patient" && name != "data") {
            return fail(std::string(name), "unknown member " + std::string(name),
                        "未知字段：" + std::string(name));
        }
    }
    integration_event e;
    const auto kind = d.FindMember("kind");
    if (kind == d.MemberEnd() || !kind->value.IsString()) {
        return fail("kind", "kind is required", "缺少通知类型（kind）");
    }
    e.kind = find_kind(view(kind->value));
    if (!e.kind) {
        return fail("kind", "unknown kind " + std::string(view(kind->value)),
                    "未知的通知类型：" + std::string(view(kind->value)));
    }

    const auto key = d.FindMember("idempotency_key");
    const bool key_ok =
        key != d.MemberEnd() && key->value.IsString() && key->value.GetStringLength() > 0 &&
        key->value.GetStringLength() <= max_idempotency_key &&
        std::all_of(view(key->value).begin(), view(key->value).end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '.' || c == '_' || c == ':' || c == '-';
        });
    if (!key_ok) {
        return fail("idempotency_key", "idempotency_key must be 1-128 of A-Z a-z 0-9 . _ : -",
                    "幂等键（idempotency_key）必须是1至128位字母、数字或 . _ : -");
    }
    e.idempotency_key = std::string(view(key->value));

    const auto patient = d.FindMember("patient");
    if (patient == d.MemberEnd() || !patient->value.IsObject()) {
        return fail("patient", "patient {\"record_no\" or \"phone\"} is required",
                    "缺少患者信息（patient：病历号record_no或手机号phone）");
    }
    for (auto m = patient->value.MemberBegin(); m != patient->value.MemberEnd(); ++m) {
        const auto name = view(m->name);
        if ((name != "record_no" && name != "phone") || !m->value.IsString()) {
            return fail("patient." + std::string(name),
                        "patient takes record_no and phone, as strings",
                        "患者信息只能包含字符串形式的病历号（record_no）和手机号（phone）");
        }
        const auto v = view(m->value);
        if (name == "record_no") {
            if (v.empty() || chars(v) > 64 || !clean_line(v)) {
                return fail("patient.record_no", "record_no must be 1-64 characters",
                            "病历号必须是1至64个字符");
            }
            e.patient.record_no = std::string(v);
        } else {
            const bool ok =
                v.size() >= 5 && v.size() <= 32 && std::all_of(v.begin(), v.end(), [](char c) {
                    return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == ' ';
                });
            if (!ok) {
                return fail("patient.phone", "phone must be 5-32 of digits, +, - and spaces",
                            "手机号格式不正确");
            }
            e.patient.phone = std::string(v);
        }
    }
    if (e.patient.record_no.empty() && e.patient.phone.empty()) {
        return fail("patient", "patient needs record_no or phone", "请提供患者的病历号或手机号");
    }

    const auto data = d.FindMember("data");
    if (data != d.MemberEnd()) {
        if (!data->value.IsObject()) {
            return fail("data", "data must be an object", "data必须是JSON对象");
        }
        for (auto m = data->value.MemberBegin(); m != data->value.MemberEnd(); ++m) {
            const std::string name(view(m->name));
            const field_info* f = find_field(*e.kind, name);
            if (!f || is_builtin_field(name)) {
                return fail("data." + name,
                            name + " is not a field of " + std::string(e.kind->name),
                            name + " 不是“" + std::string(e.kind->label) + "”的字段");
            }
            std::string value;
            if (m->value.IsString()) {
                value = std::string(view(m->value));
            } else if (m->value.IsInt64()) {
                value = std::to_string(m->value.GetInt64());
            } else {
                return fail("data." + name, name + " must be a string or an integer",
                            std::string(f->label) + "（" + name + "）必须是字符串或整数");
            }
            if (chars(value) > max_field_chars || !clean_line(value)) {
                return fail("data." + name,
                            name + " must be at most " + std::to_string(max_field_chars) +
                                " characters without control characters",
                            std::string(f->label) + "（" + name + "）不能超过" +
                                std::to_string(max_field_chars) + "个字符，且不能包含控制字符");
            }
            e.data[name] = std::move(value);
        }
    }
    for (const auto& f : e.kind->fields) {
        if (!f.required) continue;
        const auto it = e.data.find(f.name);
        if (it == e.data.end() || blank(it->second)) {
            return fail("data." + std::string(f.name), std::string(f.name) + " is required",
                        "缺少" + std::string(f.label) + "（" + std::string(f.name) + "）");
        }
    }
    parsed_event out;
    out.event = std::move(e);
    return out;
}

std::string canonical(const integration_event& e) {
    std::string out;
    auto add = [&out](std::string_view s) {
        out += std::to_string(s.size());
        out += ':';
        out += s;
    };
    add(e.kind ? e.kind->name : "");
    add(e.patient.record_no);
    add(e.patient.phone);
    for (const auto& [name, value] : e.data) {
        add(name);
        add(value);
    }
    return out;
}

}  // namespace scrm::templates

// RapidJSON helpers for the request parsers (agent_requests.cpp, console_requests.cpp,
// admin_requests.cpp, admin_rest_requests.cpp): a body as an object, typed members, unknown
// members, UTF-8 validity. Private to the gateway's libraries.
#pragma once

#include <rapidjson/document.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "scrm/gateway/agent_requests.hpp"

namespace scrm::gateway::request_json {

inline constexpr const char* not_an_object = "请求格式不正确（需要 JSON 对象）";

// The body as a JSON object, or nullopt.
inline std::optional<rapidjson::Document> parse_object(std::string_view body) {
    rapidjson::Document doc;
    doc.Parse(body.data(), body.size());
    if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
    return doc;
}

inline const rapidjson::Value* member(const rapidjson::Document& doc, const char* name) {
    const auto it = doc.FindMember(name);
    if (it == doc.MemberEnd() || it->value.IsNull()) return nullptr;
    return &it->value;
}

// An id given as a JSON number or a digit string; nullopt (with `bad` set) for anything else.
inline std::optional<std::uint64_t> id_member(const rapidjson::Document& doc, const char* name,
                                              bool& bad) {
    const rapidjson::Value* v = member(doc, name);
    if (!v) return std::nullopt;
    std::optional<std::uint64_t> id;
    if (v->IsUint64() && v->GetUint64() > 0) {
        id = v->GetUint64();
    } else if (v->IsString()) {
        id = parse_id(std::string_view(v->GetString(), v->GetStringLength()));
    }
    if (!id) bad = true;
    return id;
}

inline std::optional<std::string> string_member(const rapidjson::Document& doc, const char* name,
                                                bool& bad) {
    const rapidjson::Value* v = member(doc, name);
    if (!v) return std::nullopt;
    if (!v->IsString()) {
        bad = true;
        return std::nullopt;
    }
    return std::string(v->GetString(), v->GetStringLength());
}

// Each member of `obj` must be one of `known`: the first that is not, or nullopt.
inline std::optional<std::string> unknown_member(const rapidjson::Value& obj,
                                                 std::initializer_list<std::string_view> known) {
    for (auto m = obj.MemberBegin(); m != obj.MemberEnd(); ++m) {
        const std::string_view key(m->name.GetString(), m->name.GetStringLength());
        if (std::find(known.begin(), known.end(), key) == known.end()) return std::string(key);
    }
    return std::nullopt;
}

inline bool valid_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t len = 0;
        std::uint32_t cp = 0;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > s.size()) return false;
        for (std::size_t k = 1; k < len; ++k) {
            const auto d = static_cast<unsigned char>(s[i + k]);
            if ((d & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (d & 0x3F);
        }
        const std::uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

}  // namespace scrm::gateway::request_json

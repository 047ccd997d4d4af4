// Small helpers on UTF-8 text shared by the core's files (not installed).
#pragma once

#include <algorithm>
#include <cstddef>
#include <string_view>

#include <rapidjson/document.h>

namespace scrm::templates::detail {

inline std::string_view view(const rapidjson::Value& v) {
    return {v.GetString(), v.GetStringLength()};
}

// Code points in valid UTF-8 (continuation bytes are not counted).
inline std::size_t chars(std::string_view s) noexcept {
    return static_cast<std::size_t>(std::count_if(
        s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// Any C0 control character (line breaks included) or DEL.
inline bool has_control(std::string_view s) noexcept {
    return std::any_of(s.begin(), s.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7F;
    });
}

}  // namespace scrm::templates::detail

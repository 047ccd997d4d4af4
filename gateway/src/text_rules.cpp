// See text_rules.hpp.
#include "scrm/gateway/text_rules.hpp"

#include <algorithm>

namespace scrm::gateway {

std::optional<std::size_t> utf8_chars(std::string_view s) {
    std::size_t chars = 0;
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t len = 0;
        unsigned cp = 0;
        if (c < 0x80) {
            len = 1;
            cp = c;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1Fu;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0Fu;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07u;
        } else {
            return std::nullopt;
        }
        if (i + len > s.size()) return std::nullopt;
        for (std::size_t k = 1; k < len; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return std::nullopt;
            cp = (cp << 6) | (cc & 0x3Fu);
        }
        // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
        static constexpr unsigned min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_for_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return std::nullopt;
        }
        i += len;
        ++chars;
    }
    return chars;
}

bool valid_name(std::string_view value, std::size_t max_chars) {
    const auto chars = utf8_chars(value);
    bool ok =
        chars && *chars >= 1 && *chars <= max_chars && value.front() != ' ' && value.back() != ' ';
    for (unsigned char c : value) {
        if (c < 0x20 || c == 0x7F) ok = false;
    }
    return ok;
}

std::optional<std::string> name_problem(std::string_view flag, std::string_view value,
                                        std::size_t max_chars) {
    if (valid_name(value, max_chars)) return std::nullopt;
    return std::string(flag) + ": must be 1-" + std::to_string(max_chars) +
           " characters of UTF-8 text, without control characters or leading/trailing spaces";
}

bool valid_free_text(std::string_view s, std::size_t max_chars) {
    const auto chars = utf8_chars(s);
    if (!chars || *chars > max_chars) return false;
    return std::none_of(s.begin(), s.end(), [](char ch) {
        const auto c = static_cast<unsigned char>(ch);
        return (c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7F;
    });
}

}  // namespace scrm::gateway

// UTF-8 validation with U+FFFD replacement (maximal subparts), XML 1.0 character filtering, and
// CDATA writing with "]]>" split across sections.
#include "scrm/wechat/xml_text.hpp"

#include <cstdint>

namespace scrm::wechat {
namespace {

struct utf8_step {
    std::size_t length;  // bytes consumed: the sequence, or the maximal ill-formed subpart
    bool valid;
    char32_t code_point;
};

// Decodes the sequence at text[i] (i < text.size()) following Unicode Table 3-7 (well-formed UTF-8
// byte sequences), so overlongs, surrogates and code points above U+10FFFF are ill-formed.
utf8_step decode(std::string_view text, std::size_t i) noexcept {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) return {1, true, c};
    std::size_t need = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    char32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        cp = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        cp = c & 0x07;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return {1, false, 0};
    }
    for (std::size_t k = 1; k <= need; ++k) {
        if (i + k >= text.size()) return {k, false, 0};
        const auto d = static_cast<unsigned char>(text[i + k]);
        const unsigned char min = k == 1 ? lo : 0x80;
        const unsigned char max = k == 1 ? hi : 0xBF;
        if (d < min || d > max) return {k, false, 0};
        cp = cp << 6 | (d & 0x3F);
    }
    return {need + 1, true, cp};
}

constexpr bool xml_char(char32_t cp) noexcept {
    if (cp < 0x20) return cp == 0x09 || cp == 0x0A || cp == 0x0D;
    return cp != 0xFFFE && cp != 0xFFFF;
}

}  // namespace

bool is_clean_text(std::string_view text) noexcept {
    for (std::size_t i = 0; i < text.size();) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x80) {  // the common case: printable ASCII
            ++i;
            continue;
        }
        const auto s = decode(text, i);
        if (!s.valid || !xml_char(s.code_point)) return false;
        i += s.length;
    }
    return true;
}

std::string sanitize_text(std::string_view text) {
    if (is_clean_text(text)) return std::string(text);
    std::string out;
    out.reserve(text.size() + 16);
    for (std::size_t i = 0; i < text.size();) {
        const auto s = decode(text, i);
        if (s.valid && xml_char(s.code_point)) {
            out.append(text.substr(i, s.length));
        } else {
            out.append(replacement_char);
        }
        i += s.length;
    }
    return out;
}

void append_cdata(std::string& out, std::string_view text) {
    std::string cleaned;
    if (!is_clean_text(text)) {
        cleaned = sanitize_text(text);
        text = cleaned;
    }
    out.append("<![CDATA[");
    for (;;) {
        const auto end = text.find("]]>");
        if (end == std::string_view::npos) break;
        // "]]" stays in this section, ">" opens the next: "]]]]><![CDATA[>".
        out.append(text.substr(0, end + 2));
        out.append("]]><![CDATA[");
        text.remove_prefix(end + 2);
    }
    out.append(text);
    out.append("]]>");
}

}  // namespace scrm::wechat

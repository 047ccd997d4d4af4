// Text that goes into or comes out of WeChat XML: making arbitrary bytes valid UTF-8 that XML 1.0
// can carry, and writing it as CDATA. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace scrm::wechat {

// The replacement character U+FFFD in UTF-8.
inline constexpr std::string_view replacement_char = "\xEF\xBF\xBD";

// Whether `text` is valid UTF-8 made only of characters XML 1.0 allows (TAB, LF, CR, U+0020 and
// above, except U+FFFE and U+FFFF; UTF-8 already excludes surrogates).
bool is_clean_text(std::string_view text) noexcept;

// `text` with nothing silently dropped: every ill-formed UTF-8 sequence (each maximal subpart, as
// in Unicode §3.9 / the WHATWG decoder: "\xE4\xB8" is one U+FFFD, "\xFF\xFE" two) and every
// character XML 1.0 forbids (NUL and the other C0 controls except TAB, LF and CR; U+FFFE; U+FFFF)
// becomes one U+FFFD. Valid text comes back unchanged. The result satisfies is_clean_text().
std::string sanitize_text(std::string_view text);

// Appends `<![CDATA[text]]>` with `text` sanitized and every "]]>" in it split across two
// sections ("]]]]><![CDATA[>"), so any input yields one well-formed element value that parses
// back to sanitize_text(text).
void append_cdata(std::string& out, std::string_view text);

}  // namespace scrm::wechat

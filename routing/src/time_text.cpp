// Hand-written parsers and printers for RFC 3339 instants, UTC offsets, dates and clock times.
#include "scrm/routing/time_text.hpp"

#include <cstdio>
#include <cstdlib>

namespace scrm::routing {

namespace chr = std::chrono;

namespace {

// Reads exactly `n` ASCII digits at `pos`, advancing it; nullopt if any is not a digit.
std::optional<int> digits(std::string_view s, std::size_t& pos, std::size_t n) noexcept {
    if (pos > s.size() || s.size() - pos < n) return std::nullopt;
    int v = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const char ch = s[pos + i];
        if (ch < '0' || ch > '9') return std::nullopt;
        v = v * 10 + (ch - '0');
    }
    pos += n;
    return v;
}

bool expect(std::string_view s, std::size_t& pos, char ch) noexcept {
    if (pos >= s.size() || s[pos] != ch) return false;
    ++pos;
    return true;
}

std::optional<chr::year_month_day> date_at(std::string_view s, std::size_t& pos) noexcept {
    const auto y = digits(s, pos, 4);
    if (!y || !expect(s, pos, '-')) return std::nullopt;
    const auto m = digits(s, pos, 2);
    if (!m || !expect(s, pos, '-')) return std::nullopt;
    const auto d = digits(s, pos, 2);
    if (!d) return std::nullopt;
    const chr::year_month_day ymd{chr::year{*y}, chr::month{static_cast<unsigned>(*m)},
                                  chr::day{static_cast<unsigned>(*d)}};
    if (!ymd.ok()) return std::nullopt;
    return ymd;
}

// "HH:MM" with HH 00–23, MM 00–59.
std::optional<chr::minutes> hh_mm_at(std::string_view s, std::size_t& pos) noexcept {
    const auto h = digits(s, pos, 2);
    if (!h || !expect(s, pos, ':')) return std::nullopt;
    const auto m = digits(s, pos, 2);
    if (!m || *h > 23 || *m > 59) return std::nullopt;
    return chr::hours{*h} + chr::minutes{*m};
}

std::optional<chr::minutes> offset_at(std::string_view s, std::size_t& pos) noexcept {
    if (pos >= s.size()) return std::nullopt;
    const char sign = s[pos];
    if (sign == 'Z') {
        ++pos;
        return chr::minutes{0};
    }
    if (sign != '+' && sign != '-') return std::nullopt;
    ++pos;
    const auto hm = hh_mm_at(s, pos);
    if (!hm) return std::nullopt;
    return sign == '-' ? -*hm : *hm;
}

std::string two(long v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%02ld", v);
    return buf;
}

}  // namespace

std::optional<chr::minutes> parse_utc_offset(std::string_view text) noexcept {
    std::size_t pos = 0;
    const auto off = offset_at(text, pos);
    if (!off || pos != text.size()) return std::nullopt;
    return off;
}

std::optional<chr::sys_seconds> parse_timestamp(std::string_view text) noexcept {
    std::size_t pos = 0;
    const auto date = date_at(text, pos);
    if (!date || !expect(text, pos, 'T')) return std::nullopt;
    const auto hm = hh_mm_at(text, pos);
    if (!hm || !expect(text, pos, ':')) return std::nullopt;
    const auto sec = digits(text, pos, 2);
    if (!sec || *sec > 59) return std::nullopt;
    if (pos < text.size() && text[pos] == '.') {
        ++pos;
        const std::size_t first = pos;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
        if (pos == first) return std::nullopt;  // "." needs at least one digit
    }
    const auto off = offset_at(text, pos);
    if (!off || pos != text.size()) return std::nullopt;
    // Local reading minus the offset is UTC; the dropped fraction makes this a floor.
    return chr::sys_seconds{chr::sys_days{*date}} + *hm + chr::seconds{*sec} - *off;
}

std::optional<chr::year_month_day> parse_date(std::string_view text) noexcept {
    std::size_t pos = 0;
    const auto d = date_at(text, pos);
    if (!d || pos != text.size()) return std::nullopt;
    return d;
}

std::optional<chr::minutes> parse_clock(std::string_view text, bool allow_24) noexcept {
    if (allow_24 && text == "24:00") return chr::hours{24};
    std::size_t pos = 0;
    const auto hm = hh_mm_at(text, pos);
    if (!hm || pos != text.size()) return std::nullopt;
    return hm;
}

std::string format_utc_offset(chr::minutes offset) {
    const char sign = offset < chr::minutes{0} ? '-' : '+';
    const long m = std::abs(offset.count());
    return sign + two(m / 60) + ":" + two(m % 60);
}

std::string format_date(const chr::year_month_day& d) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(d.year()),
                  static_cast<unsigned>(d.month()), static_cast<unsigned>(d.day()));
    return buf;
}

std::string format_clock(chr::minutes m) {
    return two(m.count() / 60) + ":" + two(m.count() % 60);
}

std::string format_timestamp(chr::sys_seconds t, chr::minutes offset) {
    const chr::sys_seconds local = t + offset;
    const chr::sys_days day = chr::floor<chr::days>(local);
    const long s = (local - day).count();
    return format_date(chr::year_month_day{day}) + "T" + two(s / 3600) + ":" + two(s / 60 % 60) +
           ":" + two(s % 60) + format_utc_offset(offset);
}

}  // namespace scrm::routing

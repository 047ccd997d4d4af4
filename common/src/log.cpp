// JSON-lines logger. Timestamps are UTC with milliseconds; strings are JSON-escaped.
#include "scrm/common/log.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace scrm::log {
namespace {

std::atomic<int> min_level{static_cast<int>(level::info)};

const char* name(level lvl) {
    switch (lvl) {
        case level::debug: return "debug";
        case level::info: return "info";
        case level::warn: return "warn";
        case level::error: return "error";
    }
    return "info";
}

void append_escaped(std::string& out, std::string_view s) {
    out += '"';
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    out += '"';
}

}  // namespace

field::field(std::string_view k, double v) : key(k), raw(true) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    value = buf;
}

std::string format_line(level lvl, std::string_view event, std::initializer_list<field> fields) {
    using namespace std::chrono;
    const auto now = system_clock::now();
    const std::time_t secs = system_clock::to_time_t(now);
    const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char ts[80];
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));

    std::string out;
    out.reserve(128);
    out += "{\"ts\":\"";
    out += ts;
    out += "\",\"level\":\"";
    out += name(lvl);
    out += "\",\"event\":";
    append_escaped(out, event);
    for (const field& f : fields) {
        out += ',';
        append_escaped(out, f.key);
        out += ':';
        if (f.raw) {
            out += f.value;
        } else {
            append_escaped(out, f.value);
        }
    }
    out += '}';
    return out;
}

void write(level lvl, std::string_view event, std::initializer_list<field> fields) {
    if (static_cast<int>(lvl) < min_level.load(std::memory_order_relaxed)) return;
    std::string line = format_line(lvl, event, fields);
    line += '\n';
    // One write(2) per line: atomic for lines under PIPE_BUF on pipes, and never interleaved
    // mid-line by our own threads on regular files opened with O_APPEND.
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {
        const ssize_t n = ::write(STDERR_FILENO, p, left);
        if (n <= 0) return;  // nowhere to report a failing stderr
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

void set_min_level(level lvl) {
    min_level.store(static_cast<int>(lvl), std::memory_order_relaxed);
}

bool parse_level(std::string_view text, level& out) {
    if (text == "debug")
        out = level::debug;
    else if (text == "info")
        out = level::info;
    else if (text == "warn")
        out = level::warn;
    else if (text == "error")
        out = level::error;
    else
        return false;
    return true;
}

}  // namespace scrm::log

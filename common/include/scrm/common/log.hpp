// Structured logging: one JSON object per line on stderr, written with a single write(2) so lines
// from several threads never interleave. Never pass secrets or patients' message text as fields.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace scrm::log {

enum class level { debug = 0, info = 1, warn = 2, error = 3 };

// A key and a value already rendered as text (numbers and booleans are rendered unquoted).
struct field {
    field(std::string_view k, std::string_view v) : key(k), value(v) {}
    field(std::string_view k, const char* v) : key(k), value(v) {}
    field(std::string_view k, const std::string& v) : key(k), value(v) {}
    field(std::string_view k, bool v) : key(k), value(v ? "true" : "false"), raw(true) {}
    field(std::string_view k, std::int64_t v) : key(k), value(std::to_string(v)), raw(true) {}
    field(std::string_view k, std::uint64_t v) : key(k), value(std::to_string(v)), raw(true) {}
    field(std::string_view k, int v) : key(k), value(std::to_string(v)), raw(true) {}
    field(std::string_view k, unsigned v) : key(k), value(std::to_string(v)), raw(true) {}
    field(std::string_view k, double v);

    std::string_view key;
    std::string value;
    bool raw = false;  // emit without quotes
};

// Thread-safe. Lines below the minimum level are dropped.
void write(level lvl, std::string_view event, std::initializer_list<field> fields = {});
void set_min_level(level lvl);
// Parses "debug" | "info" | "warn" | "error"; returns false for anything else.
bool parse_level(std::string_view text, level& out);

// Renders one line (without the trailing newline); exposed for tests.
std::string format_line(level lvl, std::string_view event, std::initializer_list<field> fields);

inline void debug(std::string_view e, std::initializer_list<field> f = {}) {
    write(level::debug, e, f);
}
inline void info(std::string_view e, std::initializer_list<field> f = {}) {
    write(level::info, e, f);
}
inline void warn(std::string_view e, std::initializer_list<field> f = {}) {
    write(level::warn, e, f);
}
inline void error(std::string_view e, std::initializer_list<field> f = {}) {
    write(level::error, e, f);
}

}  // namespace scrm::log

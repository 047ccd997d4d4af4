// Rules for text people type into the gateway's settings (names, auto-reply texts), shared by
// scrm-admin and the admin API. Pure.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace scrm::gateway {

// Number of characters (code points) in valid UTF-8 `s`; nullopt if `s` is not valid UTF-8.
std::optional<std::size_t> utf8_chars(std::string_view s);

// A name as people type it: 1–max_chars characters of valid UTF-8, no control characters and
// no leading or trailing space.
bool valid_name(std::string_view value, std::size_t max_chars);

// Free text (a comment, a reply, a snippet): valid UTF-8 of at most `max_chars` characters, no
// control characters but line breaks and tabs. Empty text passes: check emptiness separately.
bool valid_free_text(std::string_view s, std::size_t max_chars);

// A name as operators type it (valid_name): the problem ("--name: must be …"), or nullopt.
std::optional<std::string> name_problem(std::string_view flag, std::string_view value,
                                        std::size_t max_chars);

}  // namespace scrm::gateway

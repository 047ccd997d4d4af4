// Small helpers shared by the fake's translation units (not part of its public interface).
#pragma once

#include <string>
#include <string_view>

namespace scrm::fakes::detail {

// Percent-decoding ('+' is a space).
std::string url_decode(std::string_view s);
// The first value of `name` in an undecoded query string, decoded; "" if absent.
std::string query_param(std::string_view query, std::string_view name);

}  // namespace scrm::fakes::detail

// Agents' passwords at rest: PBKDF2-HMAC-SHA256 (OpenSSL) with a random 16-byte salt per password,
// stored as "pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>". Pure apart from the random salt.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace scrm::gateway {

// Default work factor: about 50 ms per check on one core here, which slows guessing without
// making sign-in slow. Tests may pass fewer.
inline constexpr unsigned password_iterations = 210000;

// A new stored form for `password`; nullopt only if the random source fails.
std::optional<std::string> hash_password(std::string_view password,
                                         unsigned iterations = password_iterations);

// Whether `password` matches `stored` (constant-time comparison). False for a malformed stored
// form, never an exception. Blocking CPU work: not on an I/O thread for the default iterations.
bool verify_password(std::string_view password, std::string_view stored);

// The rules for a new password: 8–128 bytes. The problem in Simplified Chinese, or nullopt.
std::optional<std::string> password_problem(std::string_view password);

}  // namespace scrm::gateway

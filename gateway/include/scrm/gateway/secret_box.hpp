// Secrets at rest (AppSecret, Token, EncodingAESKey): AES-256-GCM under a master key that comes
// from the environment (SCRM_MASTER_KEY), never from the database. Each sealed value is bound to a
// context string (e.g. "official_accounts.secret:wx1234") so values cannot be swapped between
// columns or rows without detection.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "scrm/common/error.hpp"

namespace scrm::gateway {

class secret_box {
public:
    // The master key as 64 hex digits. errc::bad_input (with no echo of the value) otherwise.
    static result<secret_box> from_hex(std::string_view hex);
    // From SCRM_MASTER_KEY; errc::not_found when unset, bad_input when malformed.
    static result<secret_box> from_env();

    // "v1." + base64(nonce ‖ ciphertext ‖ tag); a fresh random nonce each time.
    result<std::string> seal(std::string_view plaintext, std::string_view context) const;
    // errc::bad_input for a malformed value, errc::conflict when authentication fails (wrong
    // key, wrong context, tampered value).
    result<std::string> open(std::string_view sealed, std::string_view context) const;
    // A key for another purpose, derived from the master key: HMAC-SHA-256(master, label). Keys of
    // different labels are independent (e.g. "scrm evaluation links v1" signs evaluation links).
    std::array<unsigned char, 32> derive_key(std::string_view label) const;

private:
    explicit secret_box(const std::array<unsigned char, 32>& key) : key_(key) {}
    std::array<unsigned char, 32> key_;
};

}  // namespace scrm::gateway

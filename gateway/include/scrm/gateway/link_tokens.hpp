// Signed, unguessable links for patients (evaluations' /eval/<token>, waiting replies'
// /reply/<token>): "<id>.<22 characters of base64url>" — a row's id and the first 128 bits of
// HMAC-SHA-256(key, "<purpose>:<id>"). The key is derived from the master key
// (secret_box::derive_key) with a label per purpose, and the purpose is signed too, so a token of
// one kind never opens the other. Nothing is stored to check a token; expiry and what the link
// may still do are the row's. Pure, thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace scrm::gateway {

class link_signer {
public:
    link_signer(std::string purpose, const std::array<unsigned char, 32>& key)
        : purpose_(std::move(purpose)), key_(key) {}
    std::string token_for(std::uint64_t id) const;
    // The id a well-formed, correctly signed token names; nullopt otherwise (compared in
    // constant time).
    std::optional<std::uint64_t> verify(std::string_view token) const;

private:
    std::string purpose_;
    std::array<unsigned char, 32> key_;
};

}  // namespace scrm::gateway

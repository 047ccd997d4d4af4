// Safe/compatible-mode message crypto (protocol sheet §4.3–§4.4): the EncodingAESKey, AES-256-CBC
// with the library's padding off and PKCS#7 to 32 bytes, the random ‖ msg_len ‖ msg ‖ appid frame,
// the AppID check and key rotation; plus the building blocks, exposed for tests and fuzzing.
// Pure: no I/O and no clock. Every function is thread-safe (no shared mutable state; the system
// random source is OpenSSL's thread-safe DRBG).
#pragma once

#include <array>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "scrm/common/error.hpp"

namespace scrm::wechat {

// The 16 random bytes that open every encrypted frame.
using random16 = std::array<std::uint8_t, 16>;

// An AES-256 key derived from an EncodingAESKey. The IV is its first 16 bytes (fixed by the
// protocol, not random). operator<< never prints the key material.
class aes_key {
public:
    // Decodes an EncodingAESKey: exactly 43 characters of [A-Za-z0-9], read as base64 with "="
    // appended. Non-zero trailing bits in the last character are ignored, as every SDK's decoder
    // does (KAT-D's key ends in 'S', canonically 'Q'). Anything else (wrong length, '+', '/',
    // '=', spaces) fails with wechat_errc::bad_aes_key.
    static scrm::result<aes_key> from_encoding_aes_key(std::string_view encoding_aes_key);
    static aes_key from_bytes(const std::array<std::uint8_t, 32>& bytes) noexcept;

    std::span<const std::uint8_t, 32> bytes() const noexcept { return bytes_; }
    std::span<const std::uint8_t, 16> iv() const noexcept { return bytes().first<16>(); }

    friend bool operator==(const aes_key&, const aes_key&) = default;
    friend std::ostream& operator<<(std::ostream& os, const aes_key& k);

private:
    std::array<std::uint8_t, 32> bytes_{};
};

// Which key of a key_ring decrypted a message. Encrypt the reply with the same one.
enum class key_slot : std::uint8_t { current, previous };
const char* to_string(key_slot s) noexcept;
std::ostream& operator<<(std::ostream& os, key_slot s);

// The current EncodingAESKey and, during a rotation, the previous one (official Technical Plan:
// if decryption with the current key fails, try the previous one).
struct key_ring {
    aes_key current;
    std::optional<aes_key> previous;

    // The key in `s`. Precondition: `previous` is set when s == key_slot::previous.
    const aes_key& operator[](key_slot s) const noexcept {
        return s == key_slot::previous ? *previous : current;
    }
};

// A decrypted inbound message.
struct decrypted_message {
    std::string message;  // the msg_len bytes of the frame: the plaintext XML, not yet validated
    random16 random{};    // the sender's random prefix (chanxuehong reuses it for the reply)
    key_slot key = key_slot::current;

    friend bool operator==(const decrypted_message&, const decrypted_message&) = default;
};
// Prints the message text too: for tests, not for logs.
std::ostream& operator<<(std::ostream& os, const decrypted_message& m);

// ---- the two directions --------------------------------------------------------------------

// base64(AES-256-CBC(pkcs7_pad(random ‖ be32(len(message)) ‖ message ‖ appid))). `message` is
// bytes (its UTF-8 byte length goes in the length field, never a character count). Fails with
// errc::bad_input if the frame exceeds 2^31 bytes, wechat_errc::crypto_failure if OpenSSL fails.
scrm::result<std::string> encrypt(const aes_key& key, std::string_view appid,
                                  std::string_view message, const random16& random);

// Decrypts an Encrypt text (verify msg_signature first — see verify_msg_signature). Key-independent
// checks come first: wechat_errc::bad_base64, then wechat_errc::bad_ciphertext (decoded length is
// not a positive multiple of 32: truncated or not ours). Then each key of `keys` in turn, current
// first: bad_padding, bad_length_field (msg_len out of range), appid_mismatch (the tail is not
// exactly `appid`, byte for byte). If no key succeeds, the error of the attempt that got furthest
// (appid_mismatch > bad_length_field > bad_padding; ties go to the current key) is returned.
// crypto_failure if OpenSSL itself fails.
scrm::result<decrypted_message> decrypt(const key_ring& keys, std::string_view appid,
                                        std::string_view encrypt_text);

// ---- randomness, injectable --------------------------------------------------------------------

// Where the 16-byte frame prefix (and any other random bytes) come from. Tests inject
// fixed_random; production uses system_random().
class random_source {
public:
    virtual ~random_source() = default;
    // Fills `out` completely, or fails with wechat_errc::crypto_failure.
    virtual scrm::result<void> fill(std::span<std::uint8_t> out) = 0;
};

// OpenSSL's RAND_bytes. Thread-safe; the returned object lives for the whole program.
random_source& system_random() noexcept;

// Repeats the given bytes (cyclically) forever: deterministic output for known-answer tests.
// Precondition: `bytes` is not empty.
class fixed_random final : public random_source {
public:
    explicit fixed_random(std::string_view bytes) : bytes_(bytes) {}
    scrm::result<void> fill(std::span<std::uint8_t> out) override;

private:
    std::string bytes_;
    std::size_t next_ = 0;
};

scrm::result<random16> make_random16(random_source& rng);

// encrypt() with the random prefix drawn from `rng`.
scrm::result<std::string> encrypt(const aes_key& key, std::string_view appid,
                                  std::string_view message, random_source& rng);

// ---- building blocks (exposed for tests and fuzzing)
// ---------------------------------------------

// Standard alphabet, "=" padding, no line breaks.
std::string base64_encode(std::string_view bytes);
// Standard alphabet. Padding is optional, but if present the text's length must be a multiple of
// 4; non-zero trailing bits are ignored. Any other character (whitespace, '-', '_', '=' inside)
// fails with wechat_errc::bad_base64.
scrm::result<std::string> base64_decode(std::string_view text);

// PKCS#7 with K = 32: appends 32 − (size mod 32) bytes of that value (a whole block of 0x20 when
// the size is already a multiple of 32).
void pkcs7_pad(std::string& buffer);
// The length of `buffer` without its padding; wechat_errc::bad_padding unless the last byte n is
// in 1..32, n <= size, and the last n bytes all equal n.
scrm::result<std::size_t> pkcs7_unpadded_size(std::string_view buffer) noexcept;

// AES-256-CBC with the key's IV and the library's padding off. The input must be a multiple of 16
// bytes (errc::bad_input otherwise, or if it exceeds 2^31 bytes); crypto_failure if OpenSSL fails.
scrm::result<std::string> aes_cbc_encrypt(const aes_key& key, std::string_view plain);
scrm::result<std::string> aes_cbc_decrypt(const aes_key& key, std::string_view cipher);

// random ‖ be32(message size) ‖ message ‖ appid, unpadded. Precondition: message.size() < 2^32.
std::string frame_message(const random16& random, std::string_view message, std::string_view appid);

// The parts of an unpadded frame, viewing into it.
struct frame_parts {
    random16 random{};
    std::string_view message;
    std::string_view appid;
};
// Splits an unpadded frame; wechat_errc::bad_length_field if it is shorter than 20 bytes or
// msg_len exceeds what follows the length field.
scrm::result<frame_parts> unframe_message(std::string_view frame) noexcept;

}  // namespace scrm::wechat

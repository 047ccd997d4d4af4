// Request signatures (protocol sheet §1 and §4.5): SHA-1 over the byte-wise sorted, concatenated
// strings, as 40 lowercase hex digits, and their constant-time verification. Pure functions.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include "scrm/common/error.hpp"

namespace scrm::wechat {

// hex(SHA1(concat(sort(parts)))): the parts are sorted as byte strings (std::string_view's
// operator<) and joined with no separator. Any number of parts; empty parts are allowed.
std::string sorted_sha1_hex(std::initializer_list<std::string_view> parts);

// `signature` of URL verification (GET) and of every POST: over token, timestamp and nonce, the
// exact query strings after URL-decoding.
std::string url_signature(std::string_view token, std::string_view timestamp,
                          std::string_view nonce);

// `msg_signature` of safe/compatible mode: over token, timestamp, nonce and the Encrypt text
// exactly as it appears in the XML body (no URL-decoding, no trimming). Also the MsgSignature of
// an encrypted reply.
std::string msg_signature(std::string_view token, std::string_view timestamp,
                          std::string_view nonce, std::string_view encrypt);

// Whether `given` equals `expected`, comparing the bytes in constant time (CRYPTO_memcmp). Only
// the length, which is public (40 for a SHA-1 hex), can end the comparison early. Case-sensitive:
// WeChat sends lowercase hex, and so do we.
bool signature_equal(std::string_view expected, std::string_view given) noexcept;

// Checks a URL-verification / POST `signature`. Fails with wechat_errc::signature_mismatch.
scrm::result<void> verify_url_signature(std::string_view token, std::string_view timestamp,
                                        std::string_view nonce, std::string_view signature);

// Checks a `msg_signature` over the Encrypt text. Fails with wechat_errc::signature_mismatch.
// Call it before decrypting.
scrm::result<void> verify_msg_signature(std::string_view token, std::string_view timestamp,
                                        std::string_view nonce, std::string_view encrypt,
                                        std::string_view signature);

}  // namespace scrm::wechat

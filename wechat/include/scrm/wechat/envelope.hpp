// Safe-mode envelopes end to end (protocol sheet §4.5–§4.6): opening an encrypted POST body
// (msg_signature checked before anything is decrypted) and sealing a reply into the
// <Encrypt>/<MsgSignature>/<TimeStamp>/<Nonce> envelope. Pure apart from the injected random
// source; thread-safe if that source is.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>

#include "scrm/common/error.hpp"
#include "scrm/wechat/crypto.hpp"
#include "scrm/wechat/parse.hpp"

namespace scrm::wechat {

// The query parameters of an encrypted POST that the envelope needs (URL-decoded).
struct safe_mode_query {
    std::string_view timestamp;
    std::string_view nonce;
    std::string_view msg_signature;
};

struct opened_envelope {
    encrypted_envelope envelope;  // the outer ToUserName and Encrypt
    decrypted_message decrypted;  // the inner XML (parse it with parse_message), key slot, random
    friend bool operator==(const opened_envelope&, const opened_envelope&) = default;
};
std::ostream& operator<<(std::ostream& os, const opened_envelope& o);

// parse_envelope(body), then verify_msg_signature over its Encrypt, then decrypt(keys, appid, …).
// Fails with the first step's error: bad_xml / forbidden_dtd / missing_field,
// signature_mismatch, or one of decrypt()'s errors. The `signature` parameter of the same request
// is checked separately (verify_url_signature).
scrm::result<opened_envelope> open_envelope(std::string_view token, const key_ring& keys,
                                            std::string_view appid, const safe_mode_query& query,
                                            std::string_view body);

// An encrypted reply, field by field.
struct encrypted_reply {
    std::string encrypt;        // base64 ciphertext
    std::string msg_signature;  // msg_signature(token, to_string(timestamp), nonce, encrypt)
    std::int64_t timestamp = 0;
    std::string nonce;
    friend bool operator==(const encrypted_reply&, const encrypted_reply&) = default;
};
std::ostream& operator<<(std::ostream& os, const encrypted_reply& r);

// `<xml><Encrypt><![CDATA[…]]></Encrypt><MsgSignature><![CDATA[…]]></MsgSignature>
// <TimeStamp>…</TimeStamp><Nonce><![CDATA[…]]></Nonce></xml>` (one line), as the official sample.
std::string to_xml(const encrypted_reply& r);

// Encrypts `reply_xml` (a text_reply/image_reply/news_reply result, or any bytes) under `key` —
// the key_ring slot that opened the request — with a fresh 16-byte random from `rng`, and signs
// it. `timestamp` and `nonce` may be the request's own (as silenceper/chanxuehong do) or fresh
// ones (unix seconds; the nonce should be plain ASCII such as digits, since the signature covers
// it verbatim). Fails with crypto_failure if `rng` or OpenSSL fails.
scrm::result<encrypted_reply> seal_reply(std::string_view token, const aes_key& key,
                                         std::string_view appid, std::string_view reply_xml,
                                         std::int64_t timestamp, std::string_view nonce,
                                         random_source& rng);

}  // namespace scrm::wechat

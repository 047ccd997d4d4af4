// Errors of the WeChat protocol core: why a signature, a ciphertext or an XML body was refused.
// They travel as boost::system::error_code (category "wechat") inside scrm::result<T>;
// general_errc() maps each onto the project-wide scrm::errc. Nothing in wechat_core throws except
// std::bad_alloc, and nothing logs.
#pragma once

#include <boost/system/error_code.hpp>

#include "scrm/common/error.hpp"

namespace scrm::wechat {

// The official WXBizMsgCrypt sample code each value corresponds to is noted (protocol sheet §4.7).
enum class wechat_errc {
    ok = 0,
    signature_mismatch = 1,  // signature / msg_signature does not match (-40001)
    bad_xml = 2,             // not well-formed XML, or the root is not <xml> (-40002)
    forbidden_dtd = 3,       // a DOCTYPE or ENTITY declaration: refused before parsing (-40002)
    missing_field = 4,       // a required element is absent or empty (-40002)
    bad_field = 5,           // an element that must be a number is not one (-40002)
    bad_aes_key = 6,         // EncodingAESKey is not 43 characters of [A-Za-z0-9] (-40004)
    appid_mismatch = 7,      // the decrypted AppID tail is not ours (-40005)
    bad_base64 = 8,          // the Encrypt text is not base64 (-40010)
    bad_ciphertext = 9,      // ciphertext length is not a positive multiple of 32 bytes (-40007)
    bad_padding = 10,        // the 32-byte PKCS#7 padding is invalid: wrong key or corrupt (-40007)
    bad_length_field = 11,   // msg_len points outside the decrypted buffer (-40008)
    crypto_failure = 12,     // OpenSSL or the random source failed (-40006 / -40003)
};

const boost::system::error_category& wechat_category() noexcept;

inline boost::system::error_code make_error_code(wechat_errc e) noexcept {
    return {static_cast<int>(e), wechat_category()};
}

// The project-wide class of a wechat error: everything the peer sent wrong is errc::bad_input;
// crypto_failure (our side) is errc::server_error; ok is errc::ok.
scrm::errc general_errc(wechat_errc e) noexcept;

// The official sample's numeric code for `e` (§4.7), e.g. -40001; 0 for ok.
int official_code(wechat_errc e) noexcept;

}  // namespace scrm::wechat

template <>
struct boost::system::is_error_code_enum<scrm::wechat::wechat_errc> : std::true_type {};

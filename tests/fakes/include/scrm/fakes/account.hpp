// An Official Account as the fake WeChat knows it: the API credentials (appid, AppSecret) and the
// callback settings its sender uses (Token, EncodingAESKey, original id, mode, URL).
#pragma once

#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "scrm/common/error.hpp"

namespace scrm::fakes {

// How callbacks are delivered (protocol sheet §4.1): plaintext; compatible (plaintext fields and
// <Encrypt> side by side); safe (only ToUserName and <Encrypt>; the reply must be encrypted).
enum class encryption_mode { plain, compatible, safe };
const char* to_string(encryption_mode m) noexcept;
std::ostream& operator<<(std::ostream& os, encryption_mode m);
// "plain" | "compatible" | "safe"; errc::bad_input otherwise.
scrm::result<encryption_mode> parse_encryption_mode(std::string_view text);

struct account {
    std::string appid;             // "wx…"
    std::string secret;            // AppSecret, for /cgi-bin/token and /cgi-bin/stable_token
    std::string token;             // the callback Token (signatures)
    std::string encoding_aes_key;  // 43 characters; required unless mode is plain
    std::string original_id;       // "gh_…": ToUserName of every callback
    encryption_mode mode = encryption_mode::plain;
    std::string callback_url;  // where the sender POSTs, e.g. http://127.0.0.1:8080/wx/wx123; may
                               // be left empty and given per delivery instead
    std::vector<std::string> template_ids;  // accepted template_ids; empty: any non-empty id
};

}  // namespace scrm::fakes

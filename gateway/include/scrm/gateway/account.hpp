// An official account's settings as an operator enters them, and their validation. Pure: the
// admin CLI and (later) the admin API both check input with validate_account before storing it.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace scrm::gateway {

struct account_input {
    std::string clinic;       // clinic name, 1–128 characters
    std::string appid;        // "wx" + 16 letters or digits
    std::string original_id;  // "gh_" + 12 letters or digits
    std::string token;        // 3–32 letters or digits (WeChat's console rule)
    std::string aes_key;      // EncodingAESKey: 43 of [A-Za-z0-9]
    std::optional<std::string> aes_key_previous;  // the key before a rotation, same form
    std::string secret;                           // AppSecret: 16–64 letters or digits
    bool safe_mode_only = false;
};

// Every problem, one message per field, naming the field and the rule — never echoing a secret.
std::vector<std::string> validate_account(const account_input& in);

}  // namespace scrm::gateway

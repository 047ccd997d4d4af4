// An official account's settings as an operator enters them, and their validation. Pure: the
// admin CLI (validate_account) and the admin API (account_problems) check input with the same
// rules before storing it.
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

// One field breaking its rule, never echoing the value: `field` is account_input's member name
// ("appid", "aes_key_previous", …), `rule` in English for operators, `rule_zh` in Simplified
// Chinese for the admin API.
struct account_problem {
    std::string field;
    std::string rule;
    std::string rule_zh;
};
std::vector<account_problem> account_problems(const account_input& in);

// Every problem, one message per field, naming the command-line flag and the rule
// ("--aes-key: must be …") — never echoing a secret.
std::vector<std::string> validate_account(const account_input& in);

}  // namespace scrm::gateway

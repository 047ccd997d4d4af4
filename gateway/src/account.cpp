// Field rules for official accounts, from WeChat's console (protocol sheet §0, §4.3).
#include "scrm/gateway/account.hpp"

#include <cctype>

namespace scrm::gateway {
namespace {

bool alnum(const std::string& s) {
    for (unsigned char c : s) {
        if (!std::isalnum(c)) return false;
    }
    return true;
}

bool utf8_length_between(const std::string& s, std::size_t lo, std::size_t hi) {
    std::size_t chars = 0;
    for (unsigned char c : s) {
        if ((c & 0xC0) != 0x80) ++chars;
    }
    return chars >= lo && chars <= hi;
}

}  // namespace

std::vector<std::string> validate_account(const account_input& in) {
    std::vector<std::string> problems;
    if (!utf8_length_between(in.clinic, 1, 128)) {
        problems.push_back("--clinic: must be 1-128 characters");
    }
    if (in.appid.size() != 18 || in.appid.rfind("wx", 0) != 0 || !alnum(in.appid)) {
        problems.push_back("--appid: must be \"wx\" followed by 16 letters or digits");
    }
    if (in.original_id.size() != 15 || in.original_id.rfind("gh_", 0) != 0 ||
        !alnum(in.original_id.substr(3))) {
        problems.push_back("--original-id: must be \"gh_\" followed by 12 letters or digits");
    }
    if (in.token.size() < 3 || in.token.size() > 32 || !alnum(in.token)) {
        problems.push_back("--token: must be 3-32 letters or digits");
    }
    if (in.aes_key.size() != 43 || !alnum(in.aes_key)) {
        problems.push_back("--aes-key: must be 43 letters or digits (the EncodingAESKey)");
    }
    if (in.aes_key_previous &&
        (in.aes_key_previous->size() != 43 || !alnum(*in.aes_key_previous))) {
        problems.push_back("--aes-key-previous: must be 43 letters or digits");
    }
    if (in.secret.size() < 16 || in.secret.size() > 64 || !alnum(in.secret)) {
        problems.push_back("--secret: must be 16-64 letters or digits (the AppSecret)");
    }
    return problems;
}

}  // namespace scrm::gateway

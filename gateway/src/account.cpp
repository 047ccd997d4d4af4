// Field rules for official accounts, from WeChat's console (protocol sheet §0, §4.3).
#include "scrm/gateway/account.hpp"

#include <algorithm>
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

std::vector<account_problem> account_problems(const account_input& in) {
    std::vector<account_problem> p;
    if (!utf8_length_between(in.clinic, 1, 128)) {
        p.push_back({"clinic", "must be 1-128 characters", "诊所名称须为1至128个字符"});
    }
    if (in.appid.size() != 18 || in.appid.rfind("wx", 0) != 0 || !alnum(in.appid)) {
        p.push_back({"appid", "must be \"wx\" followed by 16 letters or digits",
                     "AppID（appid）须为 wx 加16位字母或数字"});
    }
    if (in.original_id.size() != 15 || in.original_id.rfind("gh_", 0) != 0 ||
        !alnum(in.original_id.substr(3))) {
        p.push_back({"original_id", "must be \"gh_\" followed by 12 letters or digits",
                     "原始ID（original_id）须为 gh_ 加12位字母或数字"});
    }
    if (in.token.size() < 3 || in.token.size() > 32 || !alnum(in.token)) {
        p.push_back(
            {"token", "must be 3-32 letters or digits", "令牌（token）须为3至32位字母或数字"});
    }
    if (in.aes_key.size() != 43 || !alnum(in.aes_key)) {
        p.push_back({"aes_key", "must be 43 letters or digits (the EncodingAESKey)",
                     "消息加解密密钥（aes_key，EncodingAESKey）须为43位字母或数字"});
    }
    if (in.aes_key_previous &&
        (in.aes_key_previous->size() != 43 || !alnum(*in.aes_key_previous))) {
        p.push_back({"aes_key_previous", "must be 43 letters or digits",
                     "上一个消息加解密密钥（aes_key_previous）须为43位字母或数字"});
    }
    if (in.secret.size() < 16 || in.secret.size() > 64 || !alnum(in.secret)) {
        p.push_back({"secret", "must be 16-64 letters or digits (the AppSecret)",
                     "开发者密码（secret，AppSecret）须为16至64位字母或数字"});
    }
    return p;
}

std::vector<std::string> validate_account(const account_input& in) {
    std::vector<std::string> out;
    for (const auto& p : account_problems(in)) {
        std::string flag = p.field;
        std::replace(flag.begin(), flag.end(), '_', '-');
        out.push_back("--" + flag + ": " + p.rule);
    }
    return out;
}

}  // namespace scrm::gateway

// See agent_requests.hpp. JSON bodies are read with RapidJSON; unknown members are ignored (the
// console may send more than a handler reads).
#include "scrm/gateway/agent_requests.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "request_json.hpp"
#include "scrm/common/hex.hpp"

namespace scrm::gateway {
namespace {

using namespace request_json;

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

bool openid_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

}  // namespace

std::optional<std::string> new_session_token() {
    unsigned char bytes[32];
    if (RAND_bytes(bytes, sizeof bytes) != 1) return std::nullopt;
    return to_hex(bytes, sizeof bytes);
}

bool token_well_formed(std::string_view text) noexcept {
    return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

std::string token_digest(std::string_view token) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned size = 0;
    EVP_Digest(token.data(), token.size(), digest, &size, EVP_sha256(), nullptr);
    return to_hex(digest, size);
}

std::optional<std::string> cookie_value(std::string_view header, std::string_view name) {
    while (!header.empty()) {
        const auto semi = header.find(';');
        const std::string_view pair = trim(header.substr(0, semi));
        const auto eq = pair.find('=');
        if (eq != std::string_view::npos && trim(pair.substr(0, eq)) == name) {
            std::string_view v = trim(pair.substr(eq + 1));
            if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
            return std::string(v);
        }
        if (semi == std::string_view::npos) break;
        header.remove_prefix(semi + 1);
    }
    return std::nullopt;
}

std::optional<presented_token> find_token(std::string_view authorization,
                                          std::string_view cookie_header) {
    authorization = trim(authorization);
    if (authorization.size() > 7 && iequals(authorization.substr(0, 7), "bearer ")) {
        return presented_token{std::string(trim(authorization.substr(7))), token_source::bearer};
    }
    if (auto c = cookie_value(cookie_header, session_cookie_name)) {
        return presented_token{std::move(*c), token_source::cookie};
    }
    return std::nullopt;
}

std::string session_cookie(std::string_view token, std::int64_t max_age_s, bool secure) {
    std::string out(session_cookie_name);
    out += '=';
    out += token;
    out += "; Path=/api/; Max-Age=" + std::to_string(max_age_s) + "; HttpOnly; SameSite=Strict";
    if (secure) out += "; Secure";
    return out;
}

std::string cleared_session_cookie(bool secure) {
    return session_cookie("", 0, secure);
}

bool same_origin(std::string_view origin, std::string_view host) noexcept {
    origin = trim(origin);
    if (origin.empty()) return true;
    const auto scheme_end = origin.find("://");
    if (scheme_end == std::string_view::npos) return false;  // "null" and other opaque origins
    std::string_view authority = origin.substr(scheme_end + 3);
    if (const auto slash = authority.find('/'); slash != std::string_view::npos) {
        authority = authority.substr(0, slash);
    }
    // Default ports may be omitted on one side and not the other.
    const auto strip_default = [](std::string_view hp, std::string_view scheme) {
        const std::string_view port = scheme == "https" ? ":443" : ":80";
        if (hp.size() > port.size() && hp.substr(hp.size() - port.size()) == port) {
            hp.remove_suffix(port.size());
        }
        return hp;
    };
    const std::string_view scheme = origin.substr(0, scheme_end);
    return !authority.empty() &&
           iequals(strip_default(authority, scheme), strip_default(trim(host), scheme));
}

std::optional<std::uint64_t> parse_id(std::string_view text) noexcept {
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty() || v == 0 ||
        text.front() == '0') {
        return std::nullopt;
    }
    return v;
}

parsed<sign_in_request> parse_sign_in(std::string_view body) {
    auto doc = parse_object(body);
    if (!doc) return {std::nullopt, not_an_object};
    sign_in_request r;
    bool bad = false;
    r.clinic = string_member(*doc, "clinic", bad);
    r.clinic_id = id_member(*doc, "clinic_id", bad);
    r.name = string_member(*doc, "name", bad);
    r.agent_id = id_member(*doc, "agent_id", bad);
    auto password = string_member(*doc, "password", bad);
    if (bad) return {std::nullopt, "请求中的字段类型不正确"};
    if ((!r.clinic && !r.clinic_id) || (!r.name && !r.agent_id) || !password || password->empty() ||
        (r.clinic && r.clinic->empty()) || (r.name && r.name->empty())) {
        return {std::nullopt, "请填写诊所、姓名和密码"};
    }
    if (password->size() > 1024 || (r.clinic && r.clinic->size() > 512) ||
        (r.name && r.name->size() > 256)) {
        return {std::nullopt, "请求中的字段过长"};
    }
    r.password = std::move(*password);
    return {std::move(r), {}};
}

parsed<bool> parse_accepting(std::string_view body) {
    auto doc = parse_object(body);
    if (!doc) return {std::nullopt, not_an_object};
    const rapidjson::Value* v = member(*doc, "accepting");
    if (!v || !v->IsBool()) return {std::nullopt, "accepting 必须是 true 或 false"};
    return {v->GetBool(), {}};
}

parsed<std::string> parse_send_text(std::string_view body) {
    auto doc = parse_object(body);
    if (!doc) return {std::nullopt, not_an_object};
    bool bad = false;
    auto text = string_member(*doc, "text", bad);
    if (bad || !text) return {std::nullopt, "请填写要发送的文字（text）"};
    const bool blank = std::all_of(text->begin(), text->end(), [](char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
    });
    if (blank) return {std::nullopt, "消息内容不能为空"};
    if (text->size() > max_text_bytes) {
        return {std::nullopt,
                "消息过长：微信客服消息最多" + std::to_string(max_text_bytes) + "字节"};
    }
    if (!valid_utf8(*text)) return {std::nullopt, "消息含有无效字符"};
    return {std::move(text), {}};
}

parsed<transfer_request> parse_transfer(std::string_view body) {
    auto doc = parse_object(body);
    if (!doc) return {std::nullopt, not_an_object};
    transfer_request r;
    bool bad = false;
    r.to_agent = id_member(*doc, "to_agent", bad);
    r.to_store = id_member(*doc, "to_store", bad);
    if (bad) return {std::nullopt, "to_agent / to_store 必须是编号"};
    if (r.to_agent.has_value() == r.to_store.has_value()) {
        return {std::nullopt, "请指定转接对象：to_agent（客服）或 to_store（门店）二选一"};
    }
    return {r, {}};
}

std::optional<conversation_path> parse_conversation_path(std::string_view path) {
    if (path.substr(0, conversations_prefix.size()) != conversations_prefix) return std::nullopt;
    path.remove_prefix(conversations_prefix.size());
    std::string_view parts[3];
    for (int i = 0; i < 3; ++i) {
        const auto slash = path.find('/');
        if ((slash == std::string_view::npos) != (i == 2)) return std::nullopt;
        parts[i] = path.substr(0, slash);
        if (slash != std::string_view::npos) path.remove_prefix(slash + 1);
    }
    const auto account = parse_id(parts[0]);
    const std::string_view openid = parts[1];
    const std::string_view action = parts[2];
    if (!account || openid.empty() || openid.size() > 128 ||
        !std::all_of(openid.begin(), openid.end(), openid_char)) {
        return std::nullopt;
    }
    static constexpr std::string_view actions[] = {
        "accept",        "send", "end",   "transfer",     "messages",
        "ignore-unread", "fan",  "owner", "bind-patient", "unbind-patient",
        "send-image",    "send-news"};
    if (std::find(std::begin(actions), std::end(actions), action) == std::end(actions)) {
        return std::nullopt;
    }
    return conversation_path{*account, std::string(openid), std::string(action)};
}

}  // namespace scrm::gateway

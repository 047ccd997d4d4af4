// The agent endpoints' input and output as plain values (docs/api.md): session tokens and cookies,
// conversation paths, JSON request bodies and the same-origin check. Pure (OpenSSL for random
// bytes and SHA-256 only): no Asio, no I/O, thread-safe; the handlers in agent_api.cpp use them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace scrm::gateway {

// ---- session tokens ------------------------------------------------------------------------
// A token is 32 random bytes as 64 lowercase hex digits. The server keeps only its SHA-256 (also
// hex), so a copy of Redis does not hold usable tokens.

inline constexpr std::string_view session_cookie_name = "scrm_agent";

// A new token; nullopt only if the random source fails.
std::optional<std::string> new_session_token();
// Whether `text` has the form of a token (64 lowercase hex digits): anything else is refused
// before it reaches Redis.
bool token_well_formed(std::string_view text) noexcept;
// SHA-256 of the token, 64 lowercase hex digits.
std::string token_digest(std::string_view token);

// Where a request's token came from: the cookie is what the console page sends (and what needs
// the same-origin check); a bearer header is for other clients.
enum class token_source { bearer, cookie };
struct presented_token {
    std::string token;
    token_source source = token_source::bearer;
    friend bool operator==(const presented_token&, const presented_token&) = default;
};
// "Authorization: Bearer <token>" first, else the session cookie from the Cookie header;
// nullopt when neither is present (a malformed one counts as presented: it is refused later).
std::optional<presented_token> find_token(std::string_view authorization,
                                          std::string_view cookie_header);
// The value of cookie `name` in a Cookie header ("a=1; b=2"), if present.
std::optional<std::string> cookie_value(std::string_view cookie_header, std::string_view name);

// Set-Cookie values: the session (HttpOnly, SameSite=Strict, Path=/api/, Max-Age) and its removal.
std::string session_cookie(std::string_view token, std::int64_t max_age_s, bool secure);
std::string cleared_session_cookie(bool secure);

// A browser request sent with the cookie must come from the console's own origin: when an Origin
// header is present, its host[:port] must equal the Host header (case-insensitive). No Origin
// (curl, other clients) passes: they hold no ambient cookie of a victim.
bool same_origin(std::string_view origin, std::string_view host) noexcept;

// ---- request bodies ------------------------------------------------------------------------
// Each parser answers the value or, when it is absent, a problem in Simplified Chinese (shown to
// the agent).
template <class T>
struct parsed {
    std::optional<T> value;
    std::string problem;
};

// POST /api/agent/sign-in: the clinic by name or id, the agent by name or id, the password.
struct sign_in_request {
    std::optional<std::string> clinic;  // clinics.name
    std::optional<std::uint64_t> clinic_id;
    std::optional<std::string> name;  // agents.name within the clinic
    std::optional<std::uint64_t> agent_id;
    std::string password;
};
parsed<sign_in_request> parse_sign_in(std::string_view body);

// POST /api/agent/accepting: {"accepting": true|false}.
parsed<bool> parse_accepting(std::string_view body);

// POST …/send: {"text": "…"}: 1 to max_text_bytes bytes of UTF-8, not only white space.
inline constexpr std::size_t max_text_bytes = 2048;
parsed<std::string> parse_send_text(std::string_view body);

// POST …/transfer: exactly one of {"to_agent": id} and {"to_store": id} (ids as numbers or
// digit strings).
struct transfer_request {
    std::optional<std::uint64_t> to_agent;
    std::optional<std::uint64_t> to_store;
};
parsed<transfer_request> parse_transfer(std::string_view body);

// ---- conversation paths --------------------------------------------------------------------

// /api/conversations/{account_id}/{openid}/{action}: the account id (decimal, > 0), the openid
// (1–128 of [A-Za-z0-9_-]) and the action (accept, send, end, transfer; the console's messages,
// ignore-unread, fan, owner, bind-patient, unbind-patient). nullopt when the path does not have
// this shape (→ 404).
struct conversation_path {
    std::uint64_t account_id = 0;
    std::string openid;
    std::string action;
    friend bool operator==(const conversation_path&, const conversation_path&) = default;
};
inline constexpr std::string_view conversations_prefix = "/api/conversations/";
std::optional<conversation_path> parse_conversation_path(std::string_view path);

// A decimal id as JSON text ("12" → 12); nullopt for anything else.
std::optional<std::uint64_t> parse_id(std::string_view text) noexcept;

}  // namespace scrm::gateway

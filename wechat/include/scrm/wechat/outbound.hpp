// Request bodies of the outbound WeChat APIs (protocol sheet §5.3 customer-service messages and
// typing, §5.2 media upload, §5.4 template messages, §6 QR codes) and their paths: pure
// functions, no I/O, no clock, thread-safe. The API client (client.hpp) sends them; a durable
// outbox can store them as they are.
//
// Every body is compact JSON in UTF-8. Non-ASCII text (Chinese, emoji) is written as raw UTF-8,
// never as \uXXXX escapes (WeChat's docs ask for UTF-8 JSON, and PHP SDKs must pass
// JSON_UNESCAPED_UNICODE for it); '"', '\' and the control characters JSON requires are escaped
// ("\n", "\t", "\u0001", …). Every string is first passed through sanitize_text (xml_text.hpp):
// ill-formed UTF-8 and characters XML 1.0 forbids (C0 controls other than TAB, LF, CR; U+FFFE/F)
// become U+FFFD, so a body is always valid JSON and WeChat's XML push of the same text (e.g. a
// scene in EventKey) stays parseable. Otherwise values are passed through unchanged: the builders
// do not check lengths or emptiness (WeChat answers 44004, 45002, 47001, … and the client maps
// them), except where stated. They cannot fail (allocation failure aside) unless stated.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scrm/common/error.hpp"
#include "scrm/wechat/news_article.hpp"

namespace scrm::wechat {

// ---- API paths (append "?access_token=…") -------------------------------------------------------

inline constexpr std::string_view custom_send_path = "/cgi-bin/message/custom/send";
inline constexpr std::string_view custom_typing_path = "/cgi-bin/message/custom/typing";
inline constexpr std::string_view template_send_path = "/cgi-bin/message/template/send";
inline constexpr std::string_view qrcode_create_path = "/cgi-bin/qrcode/create";
inline constexpr std::string_view media_upload_path = "/cgi-bin/media/upload";
inline constexpr std::string_view media_get_path = "/cgi-bin/media/get";
inline constexpr std::string_view user_info_path = "/cgi-bin/user/info";

// ---- customer-service messages: POST custom_send_path (§5.3) ------------------------------------
// Each is {"touser":openid,"msgtype":T,T:{…}} plus, when `kf_account` is not empty,
// "customservice":{"kf_account":kf_account} (the agent shown to the fan, "prefix@account").

// {"text":{"content":…}}; newlines are allowed.
std::string custom_text_body(std::string_view openid, std::string_view content,
                             std::string_view kf_account = {});
// {"image":{"media_id":…}}: an uploaded image (temporary media lives 3 days).
std::string custom_image_body(std::string_view openid, std::string_view media_id,
                              std::string_view kf_account = {});
// {"news":{"articles":[{"title","description","url","picurl"}]}}: exactly one article (more is
// 45008), so the type takes one.
std::string custom_news_body(std::string_view openid, const news_article& article,
                             std::string_view kf_account = {});
// {"mpnewsarticle":{"article_id":…}}: a published article (replaces the retired "mpnews").
std::string custom_mpnewsarticle_body(std::string_view openid, std::string_view article_id,
                                      std::string_view kf_account = {});

struct miniprogram_page {
    std::string title;
    std::string appid;           // the mini program's AppID
    std::string pagepath;        // e.g. "pages/index?foo=bar"
    std::string thumb_media_id;  // an uploaded image
    friend bool operator==(const miniprogram_page&, const miniprogram_page&) = default;
};
// {"miniprogrampage":{"title","appid","pagepath","thumb_media_id"}}.
std::string custom_miniprogrampage_body(std::string_view openid, const miniprogram_page& page,
                                        std::string_view kf_account = {});

struct menu_option {
    std::string id;       // comes back as bizmsgmenuid on the text message the tap sends
    std::string content;  // the option's text (also the text of that message)
    friend bool operator==(const menu_option&, const menu_option&) = default;
};
struct msg_menu {
    std::string head_content;
    std::vector<menu_option> options;  // "list", in this order
    std::string tail_content;
    friend bool operator==(const msg_menu&, const msg_menu&) = default;
};
// {"msgmenu":{"head_content","list":[{"id","content"},…],"tail_content"}}.
std::string custom_msgmenu_body(std::string_view openid, const msg_menu& menu,
                                std::string_view kf_account = {});

// ---- typing: POST custom_typing_path (§5.3) ----------------------------------------------------

// {"touser":openid,"command":"Typing"} when `on`, else "CancelTyping".
std::string typing_body(std::string_view openid, bool on);

// ---- template messages: POST template_send_path (§5.4) -----------------------------------------

struct template_keyword {
    std::string name;   // e.g. "thing1", "time2"
    std::string value;  // WeChat truncates long values per keyword type
    // e.g. "#173177"; empty: omitted (whether WeChat still honours it is not confirmed)
    std::string color;
    friend bool operator==(const template_keyword&, const template_keyword&) = default;
};
struct template_miniprogram {
    std::string appid;
    std::string pagepath;
    friend bool operator==(const template_miniprogram&, const template_miniprogram&) = default;
};
struct template_message {
    std::string touser;  // the fan's OpenID
    std::string template_id;
    std::string url;                                  // empty: omitted
    std::optional<template_miniprogram> miniprogram;  // wins over url on current clients
    std::vector<template_keyword> data;               // written in this order
    // WeChat sends one message per openid + client_msg_id within 10 minutes: the idempotency key
    // for retries. Empty: omitted.
    std::string client_msg_id;
    friend bool operator==(const template_message&, const template_message&) = default;
};
// {"touser","template_id"[,"client_msg_id"][,"url"][,"miniprogram":{"appid","pagepath"}],
//  "data":{name:{"value"[,"color"]},…}} — the field order of WxJava's test (§5.4). A keyword
// name given twice is written twice (JSON readers keep one): do not.
std::string template_send_body(const template_message& m);

// ---- permanent QR codes with a string scene: POST qrcode_create_path (§6) ----------------------

inline constexpr std::size_t qr_scene_str_max_bytes = 64;
// 1–64 bytes (WeChat says 1–64 characters; counting bytes is the safe reading for non-ASCII) of
// clean text (is_clean_text) without control characters: the scene comes back in the EventKey of
// subscribe/SCAN callbacks.
bool valid_qr_scene_str(std::string_view scene_str) noexcept;
// {"action_name":"QR_LIMIT_STR_SCENE","action_info":{"scene":{"scene_str":…}}} (no expiry:
// permanent). errc::bad_input when !valid_qr_scene_str(scene_str).
scrm::result<std::string> permanent_qr_body(std::string_view scene_str);

// ---- image upload: POST media_upload_path?type=image as multipart/form-data (§5.2) -------------

// WeChat's texts disagree (2 MB / 10 MB); 2 MB is safe under both.
inline constexpr std::size_t image_upload_max_bytes = 2 * 1024 * 1024;

enum class image_format { unknown, jpeg, png };
// By magic bytes: FF D8 FF (JPEG), 89 50 4E 47 0D 0A 1A 0A (PNG).
image_format sniff_image(std::string_view bytes) noexcept;
// "image/jpeg", "image/png"; "application/octet-stream" for unknown.
const char* mime_type(image_format f) noexcept;

// The filename sent for an image (WeChat looks at its extension): `requested` without any
// directory part, bytes outside [A-Za-z0-9._-] replaced by '_', at most 64 bytes, ending in the
// format's extension (".jpg" or ".png"; ".jpeg" is kept for JPEG) — appended when missing or
// wrong. An empty name becomes "image.jpg" / "image.png".
std::string upload_filename(std::string_view requested, image_format f);

// One file part named `field` ("media" for WeChat):
//   --B CRLF Content-Disposition: form-data; name="field"; filename="…" CRLF
//   Content-Type: content_type CRLF CRLF bytes CRLF --B-- CRLF
// `field`, `filename` and `content_type` must be header-safe (upload_filename's names are);
// the boundary must not occur in `bytes` (see boundary_fits). The matching request Content-Type
// is "multipart/form-data; boundary=B".
std::string multipart_file_body(std::string_view boundary, std::string_view field,
                                std::string_view filename, std::string_view content_type,
                                std::string_view bytes);
// Whether `boundary` is 1–70 characters of RFC 2046's safe set ([A-Za-z0-9'()+_,-./:=?]) and does
// not occur in `bytes`.
bool boundary_fits(std::string_view boundary, std::string_view bytes) noexcept;

}  // namespace scrm::wechat

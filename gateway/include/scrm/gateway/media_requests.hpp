// The console's image and news sends (POST /api/conversations/{account}/{openid}/send-image and
// …/send-news): checks of what the agent uploads or types, pure (no I/O), answers in Simplified
// Chinese for the agent.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "scrm/gateway/agent_requests.hpp"

namespace scrm::gateway {

// The image a console uploads (the body itself, JPEG or PNG): the browser downscales to this
// first; WeChat's temporary media takes 2 MB for certain (wechat::image_upload_max_bytes).
inline constexpr std::size_t max_image_bytes = 2 * 1024 * 1024;
// The HTTP body limit of send-image: a little over the image limit, so an image just over it gets
// the clear 413 below rather than the server's generic one.
inline constexpr std::size_t send_image_body_limit = max_image_bytes + 64 * 1024;

// Whether the upload is an image WeChat takes: not empty, at most max_image_bytes, JPEG
// (FF D8 FF) or PNG (89 50 4E 47 0D 0A 1A 0A) by its first bytes. The problem, or empty when
// it is fine; `too_large` tells 413 from 400.
struct image_check {
    std::string problem;
    bool too_large = false;
};
image_check check_image(std::string_view bytes);

// POST …/send-news: {"title", "description", "url", "picurl"} — one article. title 1–64
// characters, description at most 120 characters (may be absent), url an http(s) address the
// fan opens, picurl (optional) the http(s) address of its picture; addresses at most 1024 bytes
// without spaces or control characters; everything valid UTF-8.
struct news_request {
    std::string title, description, url, picurl;
};
inline constexpr std::size_t max_news_title_chars = 64;
inline constexpr std::size_t max_news_description_chars = 120;
inline constexpr std::size_t max_news_url_bytes = 1024;
parsed<news_request> parse_send_news(std::string_view body);

}  // namespace scrm::gateway

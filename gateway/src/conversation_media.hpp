// The console's non-text sends (POST …/send-image, …/send-news): the request checked and turned
// into the outbox message. conversation_api.cpp sends it under the text send's lock and window
// rules. Private to the gateway library.
#pragma once

#include <optional>
#include <string>

#include "scrm/gateway/http.hpp"
#include "scrm/wechat/outbox.hpp"

namespace scrm::gateway {

// Whether `action` is one of the non-text sends.
bool is_media_send(const std::string& action);

// The message to queue for `openid` (account_id and origin are the caller's to fill), or the
// refusal: 400 (empty, not JPEG/PNG, malformed news), 413 (image over 2 MB).
struct media_send {
    std::optional<wechat::outbound_message> message;
    http_response refusal;
};
media_send media_send_of(const std::string& action, const std::string& openid,
                         const http_request& req);

}  // namespace scrm::gateway

// Passive reply XML (protocol sheet §3.2): text, image and news with exactly one article — the
// body of the HTTP response to WeChat's POST (encrypt it with seal_reply in safe mode). No
// transfer_customer_service: routing to agents is ours. Pure functions; thread-safe.
//
// Every builder answers `to`: ToUserName is its FromUserName (the fan), FromUserName its
// ToUserName (the account). CreateTime is the caller's (no clock is read). String values are
// written as CDATA through append_cdata: sanitized (invalid UTF-8 and XML-illegal characters become
// U+FFFD) and with "]]>" split across sections, so the result is always one well-formed <xml>
// element with no XML declaration. Strings are passed through otherwise unchanged; empty values
// produce empty elements. The builders cannot fail (allocation failure aside).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "scrm/wechat/message.hpp"
#include "scrm/wechat/news_article.hpp"

namespace scrm::wechat {

std::string text_reply(const inbound_message& to, std::string_view content,
                       std::int64_t create_time);

// `media_id`: an uploaded image (temporary or permanent material; no GIF).
std::string image_reply(const inbound_message& to, std::string_view media_id,
                        std::int64_t create_time);

// One article only: more gives errcode 45008 since 2018 (§3.2), so the type does not allow it.
std::string news_reply(const inbound_message& to, const news_article& article,
                       std::int64_t create_time);

}  // namespace scrm::wechat

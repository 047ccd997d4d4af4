// Answers of the outbound WeChat APIs read into values (protocol sheet §5.2, §5.4, §6, §7): media
// upload, template send, QR code creation, user info, and the headers of a media download. Pure
// functions, no I/O; thread-safe. The errcode of an answer is the client's business (client.cpp):
// these read a body that already carried errcode 0 (or none).
//
// Each parser fails with errc::protocol_error when the body is not a JSON object, a required field
// is missing, or a field has the wrong JSON type — an answer we cannot trust to mean what we think.
// Optional fields that are absent (or null) keep their defaults.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "scrm/common/error.hpp"

namespace scrm::wechat {

// POST /cgi-bin/media/upload → {"type":"image","media_id":…,"created_at":…}: the media_id
// (thumb_media_id for type=thumb). Required: a non-empty media_id or thumb_media_id.
scrm::result<std::string> parse_media_upload_answer(std::string_view body);

// POST /cgi-bin/message/template/send → {"errcode":0,"errmsg":"ok","msgid":200228332}: the msgid
// (an unsigned 64-bit number; TEMPLATESENDJOBFINISH reports it as MsgID). Required.
scrm::result<std::uint64_t> parse_template_send_answer(std::string_view body);

struct qr_ticket {
    std::string ticket;  // for GET https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=<encoded>
    std::string url;     // the QR code's content, e.g. "http://weixin.qq.com/q/…"
    std::int64_t expire_seconds = 0;  // 0: permanent
    friend bool operator==(const qr_ticket&, const qr_ticket&) = default;
};
// POST /cgi-bin/qrcode/create → {"ticket":…[,"expire_seconds":…],"url":…}. Required: non-empty
// ticket and url.
scrm::result<qr_ticket> parse_qr_answer(std::string_view body);

// GET /cgi-bin/user/info. With subscribed false WeChat returns almost nothing else (§7); the
// deprecated profile fields (nickname, headimgurl, sex, …) are not read.
struct fan_info {
    std::string openid;
    bool subscribed = false;          // "subscribe": 1
    std::int64_t subscribe_time = 0;  // unix seconds of the last follow; 0 when not following
    std::string language;
    std::string remark;           // the operator's note
    std::string unionid;          // only if the account is bound to an Open Platform account
    std::string subscribe_scene;  // e.g. "ADD_SCENE_QR_CODE"
    std::uint32_t qr_scene = 0;
    std::string qr_scene_str;
    std::vector<std::uint32_t> tagid_list;
    friend bool operator==(const fan_info&, const fan_info&) = default;
};
std::ostream& operator<<(std::ostream& os, const fan_info& f);
// Required: "subscribe" (0 or 1) and a non-empty openid.
scrm::result<fan_info> parse_user_info(std::string_view body);

// Whether a media download's Content-Type says WeChat answered JSON (an errcode, or a video's
// {"video_url":…}) rather than the file: application/json or text/plain (WeChat has used both),
// case-insensitive, parameters ignored.
bool is_json_content_type(std::string_view content_type) noexcept;

// The filename parameter of a Content-Disposition header (quoted or token form; a quoted value's
// backslash escapes undone), with any directory part removed; "" when absent.
std::string content_disposition_filename(std::string_view header);

// {"video_url":…} from GET /cgi-bin/media/get for video media; "" when the field is absent.
std::string parse_video_url(std::string_view body);

}  // namespace scrm::wechat

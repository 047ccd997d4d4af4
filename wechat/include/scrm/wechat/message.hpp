// Inbound messages and events as typed values (protocol sheet §2), and their de-duplication
// identity (§3.3, §9). Produced by parse_message() (parse.hpp); plain values with operator== and
// operator<< (which prints user content: for tests, never for logs).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace scrm::wechat {

// Every string below is valid UTF-8 that XML 1.0 can carry (see sanitize_text in xml_text.hpp);
// an element that is absent reads as "" or 0 unless noted. Numbers are decimal in the XML.

// ---- ordinary messages (§2.2), each with a MsgId ----------------------------------------------

struct text_message {
    std::string content;          // Content
    std::string biz_msg_menu_id;  // bizmsgmenuid: the tapped msgmenu option's id, "" if none
    friend bool operator==(const text_message&, const text_message&) = default;
};

struct image_message {
    std::string pic_url;   // PicUrl
    std::string media_id;  // MediaId
    friend bool operator==(const image_message&, const image_message&) = default;
};

struct voice_message {
    std::string media_id;      // MediaId
    std::string format;        // Format: amr, speex
    std::string recognition;   // Recognition: speech-to-text, often "" even when enabled
    std::string media_id_16k;  // MediaId16K
    friend bool operator==(const voice_message&, const voice_message&) = default;
};

struct video_message {           // MsgType video
    std::string media_id;        // MediaId
    std::string thumb_media_id;  // ThumbMediaId
    friend bool operator==(const video_message&, const video_message&) = default;
};

struct short_video_message {  // MsgType shortvideo
    std::string media_id;
    std::string thumb_media_id;
    friend bool operator==(const short_video_message&, const short_video_message&) = default;
};

struct location_message {
    double latitude = 0;     // Location_X
    double longitude = 0;    // Location_Y
    std::int64_t scale = 0;  // Scale
    std::string label;       // Label
    friend bool operator==(const location_message&, const location_message&) = default;
};

struct link_message {
    std::string title;        // Title
    std::string description;  // Description
    std::string url;          // Url
    friend bool operator==(const link_message&, const link_message&) = default;
};

// Any other MsgType (miniprogrampage, file, device_*, …): the header, msg_id if present, and
// nothing else.
struct other_message {
    friend bool operator==(const other_message&, const other_message&) = default;
};

// ---- events (§2.3), MsgType "event" ------------------------------------------------------------
// Event names (and MsgType values) are matched case-insensitively; inbound_message keeps the text
// as sent.

struct subscribe_event {
    // The scene of a parametric QR code the fan scanned before following: EventKey without its
    // "qrscene_" prefix. nullopt for a plain follow (EventKey empty, absent or unprefixed).
    std::optional<std::string> qr_scene;
    std::string ticket;  // Ticket, "" for a plain follow
    friend bool operator==(const subscribe_event&, const subscribe_event&) = default;
};

struct unsubscribe_event {
    friend bool operator==(const unsubscribe_event&, const unsubscribe_event&) = default;
};

// An already-following fan scanned a parametric QR code.
struct scan_event {
    std::string qr_scene;  // EventKey as sent: the scene_id in decimal or the scene_str, no prefix
    std::string ticket;    // Ticket
    friend bool operator==(const scan_event&, const scan_event&) = default;
};

struct location_event {    // Event LOCATION: the automatic location report
    double latitude = 0;   // Latitude
    double longitude = 0;  // Longitude
    double precision = 0;  // Precision
    friend bool operator==(const location_event&, const location_event&) = default;
};

struct click_event {
    std::string key;  // EventKey: the menu button's key
    friend bool operator==(const click_event&, const click_event&) = default;
};

struct view_event {
    std::string url;      // EventKey
    std::string menu_id;  // MenuId (personalised menus), "" otherwise
    friend bool operator==(const view_event&, const view_event&) = default;
};

struct scancode_event {       // scancode_push / scancode_waitmsg
    bool wait_msg = false;    // true for scancode_waitmsg
    std::string key;          // EventKey
    std::string scan_type;    // ScanCodeInfo/ScanType
    std::string scan_result;  // ScanCodeInfo/ScanResult
    friend bool operator==(const scancode_event&, const scancode_event&) = default;
};

enum class pic_source : std::uint8_t { sysphoto, photo_or_album, weixin };
const char* to_string(pic_source s) noexcept;
std::ostream& operator<<(std::ostream& os, pic_source s);

struct pic_event {  // pic_sysphoto / pic_photo_or_album / pic_weixin
    pic_source source = pic_source::sysphoto;
    std::string key;                        // EventKey
    std::int64_t count = 0;                 // SendPicsInfo/Count
    std::vector<std::string> pic_md5_sums;  // SendPicsInfo/PicList/item/PicMd5Sum, in order
    friend bool operator==(const pic_event&, const pic_event&) = default;
};

struct location_select_event {
    std::string key;         // EventKey
    double latitude = 0;     // SendLocationInfo/Location_X
    double longitude = 0;    // SendLocationInfo/Location_Y
    std::int64_t scale = 0;  // SendLocationInfo/Scale
    std::string label;       // SendLocationInfo/Label
    std::string poiname;     // SendLocationInfo/Poiname
    friend bool operator==(const location_select_event&, const location_select_event&) = default;
};

struct view_miniprogram_event {
    std::string page_path;  // EventKey
    std::string menu_id;    // MenuId
    friend bool operator==(const view_miniprogram_event&, const view_miniprogram_event&) = default;
};

// Delivery result of a template message. Status is kept verbatim: "success",
// "failed:user block" (no space), "failed: system failed" (with one), "failed:freq limit", …
struct template_send_job_finish_event {
    std::uint64_t msg_id = 0;  // <MsgID> — capital D, not <MsgId>; equals the send call's msgid
    std::string status;        // Status
    friend bool operator==(const template_send_job_finish_event&,
                           const template_send_job_finish_event&) = default;
};

struct mass_send_job_finish_event {
    std::uint64_t msg_id = 0;       // <MsgID>
    std::string status;             // Status
    std::int64_t total_count = 0;   // TotalCount
    std::int64_t filter_count = 0;  // FilterCount
    std::int64_t sent_count = 0;    // SentCount
    std::int64_t error_count = 0;   // ErrorCount
    friend bool operator==(const mass_send_job_finish_event&,
                           const mass_send_job_finish_event&) = default;
};

struct kf_create_session_event {
    std::string kf_account;  // KfAccount
    friend bool operator==(const kf_create_session_event&,
                           const kf_create_session_event&) = default;
};

struct kf_close_session_event {
    std::string kf_account;  // KfAccount
    friend bool operator==(const kf_close_session_event&, const kf_close_session_event&) = default;
};

struct kf_switch_session_event {
    std::string from_kf_account;  // FromKfAccount
    std::string to_kf_account;    // ToKfAccount
    friend bool operator==(const kf_switch_session_event&,
                           const kf_switch_session_event&) = default;
};

// Any other Event: see inbound_message::event and event_key.
struct other_event {
    friend bool operator==(const other_event&, const other_event&) = default;
};

using message_body =
    std::variant<text_message, image_message, voice_message, video_message, short_video_message,
                 location_message, link_message, other_message, subscribe_event, unsubscribe_event,
                 scan_event, location_event, click_event, view_event, scancode_event, pic_event,
                 location_select_event, view_miniprogram_event, template_send_job_finish_event,
                 mass_send_job_finish_event, kf_create_session_event, kf_close_session_event,
                 kf_switch_session_event, other_event>;

// One inbound message or event: the common header (§2.1), the raw fields identity needs, and the
// typed body.
struct inbound_message {
    std::string to_user_name;      // ToUserName: the account's original id, "gh_…"
    std::string from_user_name;    // FromUserName: the fan's OpenID
    std::int64_t create_time = 0;  // CreateTime, unix seconds
    std::string msg_type;          // MsgType as sent, surrounding whitespace trimmed
    std::string event;             // Event as sent, trimmed; "" for ordinary messages
    std::string event_key;  // EventKey exactly as sent; "" if absent (bodies repeat it by meaning)
    std::optional<std::uint64_t> msg_id;     // <MsgId>: set for every ordinary message type
    std::optional<std::string> msg_data_id;  // MsgDataId: only for messages sent from an article
    std::optional<std::int64_t> idx;         // Idx: which article of a multi-article post, from 1
    message_body body;

    bool is_event() const noexcept { return !event.empty(); }
    friend bool operator==(const inbound_message&, const inbound_message&) = default;
};

// The QR scene of a subscribe (prefix stripped) or SCAN event (as sent); nullopt for anything else
// and for a plain follow.
std::optional<std::string_view> qr_scene(const inbound_message& m) noexcept;

// ---- identity ------------------------------------------------------------------------------

// What makes a delivery the same message as an earlier one (a retry), per §3.3 and DESIGN.md §4:
// ordinary messages MsgId + FromUserName + CreateTime; events FromUserName + CreateTime + Event +
// EventKey, plus MsgID for TEMPLATESENDJOBFINISH / MASSSENDJOBFINISH (one event per send, so two
// sends finishing in the same second stay distinct). A message without a MsgId (an unknown
// MsgType) uses its MsgType instead. Unique within one Official Account: qualify it by the
// account when storing several.
struct message_identity {
    bool event = false;
    std::string from_user_name;
    std::int64_t create_time = 0;
    std::optional<std::uint64_t> msg_id;  // MsgId (message) or MsgID (job-finish event)
    std::string msg_type;                 // messages without a MsgId only
    std::string event_name;               // events: Event as sent
    std::string event_key;                // events: EventKey as sent

    // A canonical string form, injective (distinct identities give distinct keys), e.g.
    // "m|1409735668|6054768590064713728|oyORnu…" or "e|1458889120|-|9:subscribe|0:|okPEat…".
    // Built from the raw fields, so it can be long (a VIEW EventKey is a URL): hash it for an
    // index.
    std::string key() const;

    friend bool operator==(const message_identity&, const message_identity&) = default;
};

message_identity identity(const inbound_message& m);

std::ostream& operator<<(std::ostream& os, const message_body& b);
std::ostream& operator<<(std::ostream& os, const inbound_message& m);
std::ostream& operator<<(std::ostream& os, const message_identity& id);

}  // namespace scrm::wechat

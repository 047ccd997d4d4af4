// The pure half of the fake WeChat's SENDER: what WeChat POSTs to an account's callback URL for
// a fan's message or event (XML, protocol sheet §2), how the query is signed and the body
// encrypted (§1, §4), and how the gateway's answer is judged (§3, §4.6). No I/O, no clock; the
// crypto, signature and CDATA code is wechat_core's.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "scrm/common/error.hpp"
#include "scrm/fakes/account.hpp"
#include "scrm/wechat/crypto.hpp"

namespace scrm::fakes {

// One message or event a fan sends. `type` is an ordinary MsgType ("text", "image", "voice",
// "video", "shortvideo", "location", "link") or an Event name ("subscribe", "unsubscribe", "SCAN",
// "LOCATION", "CLICK", "VIEW", "scancode_push", "scancode_waitmsg", "TEMPLATESENDJOBFINISH", …,
// sent as MsgType event). The special type "qr" (see inbound::qr) becomes "subscribe" with
// "qrscene_<scene>" or "SCAN" with the bare scene, depending on whether the fan already follows.
// Fields a type does not use are ignored.
struct inbound_spec {
    std::string type = "text";
    std::string from;                     // the fan's OpenID (FromUserName)
    std::int64_t create_time = 0;         // CreateTime; 0: the delivery's wire time
    std::optional<std::uint64_t> msg_id;  // MsgId of ordinary messages; assigned if absent
    std::string content;                  // text: Content
    std::string biz_msg_menu_id;          // text: bizmsgmenuid (a tapped msgmenu option)
    std::string media_id;                 // image/voice/video/shortvideo: MediaId
    std::string pic_url;                  // image: PicUrl
    std::string format = "amr";           // voice: Format
    std::string recognition;              // voice: Recognition (omitted when empty)
    std::string thumb_media_id;           // video/shortvideo: ThumbMediaId
    double latitude = 0, longitude = 0;   // location: Location_X/Y; LOCATION: Latitude/Longitude
    double precision = 0;                 // LOCATION: Precision
    std::int64_t scale = 15;              // location: Scale
    std::string label;                    // location: Label
    std::string title, description, url;  // link
    std::string event_key;                // subscribe/SCAN/CLICK/VIEW/scancode_*: EventKey
    std::string ticket;                   // subscribe (from a QR code)/SCAN: Ticket; qr: the ticket
    std::uint64_t job_msg_id = 0;         // TEMPLATESENDJOBFINISH: <MsgID> (capital D)
    std::string status = "success";       // TEMPLATESENDJOBFINISH: Status
    std::vector<std::pair<std::string, std::string>> extra;  // more elements, written as CDATA

    bool is_event() const;
};
std::ostream& operator<<(std::ostream& os, const inbound_spec& s);  // type and fan only

// Shorthands for the common cases.
namespace inbound {
inbound_spec text(std::string openid, std::string content);
inbound_spec image(std::string openid, std::string media_id, std::string pic_url = {});
inbound_spec voice(std::string openid, std::string media_id, std::string recognition = {});
inbound_spec video(std::string openid, std::string media_id, std::string thumb_media_id);
inbound_spec location(std::string openid, double latitude, double longitude, std::string label);
inbound_spec link(std::string openid, std::string title, std::string description, std::string url);
// A plain follow (no scene), or one from a parametric QR code: EventKey "qrscene_<scene>".
inbound_spec subscribe(std::string openid, const std::string& scene = {}, std::string ticket = {});
inbound_spec unsubscribe(std::string openid);
// An already-following fan scans a QR code: EventKey is the bare scene.
inbound_spec scan(std::string openid, std::string scene, std::string ticket = {});
// Scanning the QR code behind `ticket` (from /cgi-bin/qrcode/create): subscribe or SCAN.
inbound_spec qr(std::string openid, std::string ticket);
inbound_spec click(std::string openid, std::string key);
inbound_spec view(std::string openid, std::string url);
inbound_spec template_finish(std::string openid, std::uint64_t msgid, std::string status);
}  // namespace inbound

// The callback's window effect (protocol sheet §5.3): a fan message opens the 48 h window; a
// follow, a QR scan and the menu click kinds that count (CLICK, scancode_push, scancode_waitmsg)
// open the 1 min window; anything else (VIEW, LOCATION, unsubscribe, job results…) opens none.
enum class interaction { none, message, event };
interaction interaction_of(const inbound_spec& s);

// The plaintext XML of `s` as WeChat sends it, to `original_id`. Strings are CDATA (via
// wechat_core's append_cdata), numbers bare.
std::string inbound_xml(std::string_view original_id, const inbound_spec& s,
                        std::int64_t create_time, std::uint64_t msg_id);

// A ready-to-POST callback request: the query string (without '?') and the body.
struct signed_callback {
    std::string query;  // signature, timestamp, nonce, openid[, encrypt_type=aes, msg_signature]
    std::string body;
    std::string timestamp, nonce;
    std::string signature, msg_signature;  // msg_signature empty in plain mode
    std::string encrypt;                   // the <Encrypt> text, empty in plain mode
};

// Signs (and in compatible/safe mode encrypts, with a random prefix from `rng`) `plain_xml` for
// `acct`. Fails with wechat_core's errors (bad_aes_key, crypto_failure).
scrm::result<signed_callback> sign_callback(const account& acct, std::string_view openid,
                                            std::string_view plain_xml, std::string_view timestamp,
                                            std::string_view nonce, wechat::random_source& rng);

// How the gateway answered one callback, judged as WeChat would.
struct passive_reply {
    enum class kind {
        none,       // "success" or an empty body: nothing shown to the fan, no retry
        xml,        // a plaintext reply
        encrypted,  // an encrypted envelope, MsgSignature checked and decrypted
        invalid,  // anything else: the fan sees "该公众号暂时无法提供服务，请稍后再试"
    };
    kind k = kind::invalid;
    std::string xml;       // the (decrypted) reply XML; empty for none
    std::string msg_type;  // its MsgType
    std::string content;   // text replies: Content
    std::string media_id;  // image replies: Image/MediaId
    std::string problem;   // invalid: why
};
std::ostream& operator<<(std::ostream& os, const passive_reply& r);
const char* to_string(passive_reply::kind k) noexcept;

// Judges an HTTP answer (status and body) to a callback for fan `openid`: status must be 200;
// "success"/"" mean no reply; in safe mode the reply must be an encrypted envelope whose
// MsgSignature verifies and whose frame carries acct.appid; in plain mode it must be plaintext;
// the reply XML must be exactly one <xml> root (no declaration), ToUserName = the fan,
// FromUserName = the original id, a numeric CreateTime and a known MsgType with its content (a
// text reply with empty Content is invalid, unlike an empty body).
passive_reply judge_reply(const account& acct, std::string_view openid, unsigned status,
                          std::string_view body);

}  // namespace scrm::fakes

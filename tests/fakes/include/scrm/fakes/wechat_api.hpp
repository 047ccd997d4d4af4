// The fake WeChat's API as a value-in, value-out state machine: every /cgi-bin/… call the gateway
// makes (protocol sheet §5–§7) is an api_request turned into an api_response by api_state::handle,
// with the platform's rules — access tokens and their lifetimes, stable_token's forced-refresh
// limits, customer-service windows and quotas per fan, media, template de-duplication, QR codes,
// follow state — read against an injected fake_clock. No sockets: fake_wechat (fake_wechat.hpp)
// serves it over HTTP(S) and performs the faults (latency, dropped connections) it hands out.
//
// Error codes (errcode in the JSON body, HTTP status 200, as WeChat does), by API:
//   every call with ?access_token=   41001 missing, 40014 malformed, 40001 unknown or invalidated
//                                    (a superseded /cgi-bin/token token after its overlap, a
//                                    stable token after force_refresh), 42001 expired (§5.1, §8.11)
//   GET  /cgi-bin/token              40002 grant_type, 41002/40013 appid missing/unknown,
//                                    41004 secret missing, 40001 wrong secret (§5.1), 45009 over
//                                    the daily count (§5.1)
//   POST /cgi-bin/stable_token       the same, except 40125 for a wrong secret; force_refresh
//                                    45011 within the minimum interval, 45009 over the daily count
//   POST /cgi-bin/message/custom/send   47001 bad JSON, 40003 bad openid format, 43004 unknown fan
//                                    or not following, 40008 unknown msgtype (mpnews included:
//                                    replaced by mpnewsarticle, §8.16), 44004 empty text, 45002
//                                    text too long, 44003/45008 news with 0/more than 1 article
//                                    (§3.2), 40007 unknown media_id, 45015 no window open, 45047
//                                    quota used (§5.3, §8.13)
//   POST /cgi-bin/message/custom/typing 47001, 40003, 43004, 45015 no interaction in 30 s (§5.3)
//   POST /cgi-bin/media/upload       40004 type, 41005 no "media" part, 40005 not JPG/PNG (image),
//                                    40009/40010/40011/40012 over 2 MB image / 2 MB voice /
//                                    10 MB video / 64 KB thumb (§5.2)
//   GET  /cgi-bin/media/get          40007 unknown, expired (3 days) or another account's media
//   POST /cgi-bin/message/template/send 47001, 40003, 43004, 40037 template_id (§5.4)
//   POST /cgi-bin/qrcode/create      40052 action_name, 40053 scene (§6)
//   GET  /cgi-bin/user/info          40003 bad or unknown openid (§7)
//   wrong HTTP method                43001 require GET / 43002 require POST
// Codes without a row in the sheet (41001, 41002, 41004, 40002, 40125, 47001, 40008, 44003,
// 40004, 41005, 40005, 40009–40012, 40037, 40052, 40053, 43001, 43002) are WeChat's global
// return codes for those cases. Injected faults add any other code (-1, 40164, 48001, 45009, …).
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "scrm/common/error.hpp"
#include "scrm/fakes/account.hpp"
#include "scrm/fakes/clock.hpp"
#include "scrm/fakes/inbound.hpp"

namespace scrm::fakes {

// The platform's numbers; every one adjustable so tests stay fast. Defaults are WeChat's.
struct api_limits {
    std::chrono::seconds token_lifetime{7200};  // expires_in of a new token
    std::chrono::seconds legacy_overlap{300};   // an old /cgi-bin/token token stays valid
    // stable_token hands out a new token this long before the current one expires (the old one
    // stays valid until its expiry); capped at half the lifetime so short test lifetimes work.
    std::chrono::seconds stable_refresh_before{300};
    std::chrono::seconds force_refresh_min_interval{30};  // stable_token force_refresh spacing
    unsigned force_refresh_daily = 20;                    // stable_token force_refresh per day
    unsigned token_daily = 2000;                          // /cgi-bin/token per day
    unsigned message_quota = 5;                           // after a fan message…
    std::chrono::seconds message_window{48 * 3600};       // …within 48 h
    unsigned event_quota = 3;                             // after a follow, scan or menu click…
    std::chrono::seconds event_window{60};                // …within 1 minute
    std::chrono::seconds typing_window{30};               // typing needs an interaction this recent
    std::chrono::seconds typing_duration{15};             // how long "typing" shows
    std::chrono::seconds template_dedup{600};             // client_msg_id de-duplication
    std::chrono::seconds media_lifetime{3 * 24 * 3600};   // temporary media
    std::size_t image_max_bytes = 2 * 1024 * 1024;
    std::size_t voice_max_bytes = 2 * 1024 * 1024;
    std::size_t video_max_bytes = 10 * 1024 * 1024;
    std::size_t thumb_max_bytes = 64 * 1024;
    std::size_t text_max_bytes = 2048;  // custom-service text Content, UTF-8 bytes (45002)
    // OpenIDs must be 28 characters of [A-Za-z0-9_-] (as WeChat's are); false: 1–64 characters.
    bool strict_openid = true;
};

// Whether `openid` has the format WeChat's OpenIDs have (see api_limits::strict_openid).
bool valid_openid(std::string_view openid, bool strict = true) noexcept;
// A valid, deterministic OpenID for tests: "o" + 27 characters derived from `seed`.
std::string make_openid(std::string_view seed);

struct fan {
    std::string appid;
    std::string openid;
    bool following = true;
    std::int64_t subscribe_time = 0;  // unix seconds; 0: set to now when registered
    std::string subscribe_scene = "ADD_SCENE_SEARCH";
    std::uint32_t qr_scene = 0;
    std::string qr_scene_str;
    std::string unionid;
    std::string remark;
    std::string language = "zh_CN";
    std::vector<std::uint32_t> tagid_list;  // the account's tags on the fan (user/info, §7)
    // The fan refuses the account's template messages: template/send still answers ok, and the
    // TEMPLATESENDJOBFINISH status becomes "failed:user block".
    bool blocks_templates = false;
};

// The two customer-service windows a fan can hold (§5.3).
enum class window_kind { message, event };
const char* to_string(window_kind k) noexcept;

// A snapshot of one window, for tests.
struct window_state {
    bool open = false;  // opened and not yet closed (quota may still be used up)
    unsigned used = 0;
    unsigned quota = 0;
    sys_time opened{};
    sys_time closes{};
    unsigned remaining() const { return open && used < quota ? quota - used : 0; }
};

// What an injected fault does to the next calls of an API.
enum class fault_action {
    none,                   // only `delay`
    error,                  // answer {"errcode": errcode, …} without processing the call
    http_status,            // answer that HTTP status (a proxy's 502/503) without processing
    drop,                   // read the request, close the connection, do not process it
    drop_after_processing,  // process the call (its effects happen), then close without answering
};
const char* to_string(fault_action a) noexcept;
scrm::result<fault_action> parse_fault_action(std::string_view text);

struct fault {
    std::string api = "*";  // an api name (api_state::api_name), or "*" for every API call
    fault_action action = fault_action::error;
    int errcode = -1;
    std::string errmsg;  // empty: WeChat's text for the code
    unsigned http_status = 503;
    std::chrono::milliseconds delay{0};  // before anything else (the answer is late)
    int times = 1;                       // calls affected; < 0: until cleared
};

struct api_request {
    std::string method;  // "GET", "POST"
    std::string path;    // e.g. "/cgi-bin/message/custom/send"
    std::string query;   // undecoded, without '?'
    std::string content_type;
    std::string body;
};

struct api_response {
    unsigned status = 200;
    std::string content_type = "application/json; encoding=utf-8";
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    int errcode = 0;    // the body's errcode (0 for media bytes)
    std::string appid;  // the account the access_token belongs to, if it was valid
};

// One API call as the fake received it (bodies included — this is a test tool).
struct call_record {
    std::uint64_t seq = 0;
    std::int64_t at = 0;  // the fake clock, unix seconds
    std::string api;      // api_name, e.g. "custom_send"
    std::string method, target, content_type, body;
    unsigned status = 0;  // 0 when the connection was dropped
    std::string response_body;
    int errcode = 0;
    std::string fault;  // "" or the fault_action applied
    std::string appid;  // from the access_token ("" if it was not valid)
};
std::ostream& operator<<(std::ostream& os, const call_record& r);  // no bodies

// A message that reached a fan: an accepted custom/send or template/send.
struct sent_message {
    std::uint64_t seq = 0;
    std::int64_t at = 0;
    std::string appid, openid;
    std::string api;          // "custom_send" or "template_send"
    std::string msgtype;      // custom_send: msgtype; template_send: "template"
    std::string body;         // the request JSON
    std::uint64_t msgid = 0;  // template_send
    std::string client_msg_id;
    std::string kf_account;  // custom_send: customservice.kf_account, if given
};

struct template_record {
    std::uint64_t msgid = 0;
    std::string appid, openid, template_id, client_msg_id;
    std::int64_t at = 0;
    std::string status = "success";  // what TEMPLATESENDJOBFINISH will report
};

struct qr_record {
    std::string appid, ticket, scene;  // scene: the scene_id in decimal or the scene_str
    bool numeric = false;
    bool permanent = false;
    std::int64_t expires_at = 0;  // unix seconds; 0 when permanent
};

struct media_record {
    std::string appid, media_id, type, content_type, bytes;
    std::int64_t created_at = 0;
};

// Thread-safe (one mutex): the server thread handles calls while a test thread inspects and
// controls. Values are returned by copy.
class api_state {
public:
    explicit api_state(std::shared_ptr<fake_clock> clock, api_limits limits = {});
    ~api_state();
    api_state(const api_state&) = delete;
    api_state& operator=(const api_state&) = delete;

    // ---- the API -----------------------------------------------------------------------------
    // The API a path belongs to: "token", "stable_token", "custom_send", "custom_typing",
    // "media_upload", "media_get", "template_send", "qrcode_create", "user_info",
    // "getcallbackip"; "" if the path is none of them.
    static std::string_view api_name(std::string_view path) noexcept;
    static bool is_api_name(std::string_view name) noexcept;
    // Answers one call, applying its effects. Does not record it (the server does, after faults).
    api_response handle(const api_request& req);

    // ---- accounts, fans, interactions ----------------------------------------------------------
    // errc::bad_input for an empty appid or secret, or an invalid EncodingAESKey outside plain
    // mode.
    scrm::result<void> add_account(account a);
    std::optional<account> find_account(std::string_view appid) const;
    std::vector<account> accounts() const;
    // Registers or replaces a fan (subscribe_time 0 becomes now).
    void set_fan(fan f);
    std::optional<fan> find_fan(std::string_view appid, std::string_view openid) const;
    // Opens (renews) a window at now, as a delivered interaction of that kind would; the fan is
    // created as following if unknown.
    void record_interaction(std::string_view appid, std::string_view openid, window_kind kind);
    window_state window(std::string_view appid, std::string_view openid, window_kind kind) const;
    bool typing(std::string_view appid, std::string_view openid) const;  // "typing" showing now

    // What the sender does before delivering `spec` (resolves type "qr" into subscribe/SCAN).
    // errc::not_found for an unknown QR ticket.
    scrm::result<inbound_spec> resolve(std::string_view appid, inbound_spec spec) const;
    // Effects of a delivered callback: follow state (subscribe/unsubscribe; a fan message from an
    // unknown fan registers it as following) and the window it opens.
    void on_delivered(std::string_view appid, const inbound_spec& spec);
    // A fresh MsgId for an ordinary message (64-bit, above 2^53 as WeChat's are).
    std::uint64_t next_msg_id();

    // ---- tokens --------------------------------------------------------------------------------
    // Every token of `appid` (all accounts when empty) now reads as expired (42001).
    void expire_tokens(std::string_view appid = {});
    // Every token of `appid` (all accounts when empty) is now invalid (40001).
    void invalidate_tokens(std::string_view appid = {});

    // ---- media, templates, QR codes ------------------------------------------------------------
    // Registers media served by /cgi-bin/media/get (and usable in sends); returns its media_id
    // (`media_id` if given). `type`: image, voice, video or thumb.
    std::string add_media(std::string_view appid, std::string type, std::string content_type,
                          std::string bytes, std::string media_id = {});
    std::optional<media_record> find_media(std::string_view media_id) const;
    std::optional<template_record> find_template(std::uint64_t msgid) const;
    // The status the TEMPLATESENDJOBFINISH of `msgid` will report (e.g. "failed: system failed").
    scrm::result<void> set_template_status(std::uint64_t msgid, std::string status);
    std::optional<qr_record> find_qr(std::string_view ticket) const;

    // ---- faults --------------------------------------------------------------------------------
    void inject(fault f);
    void clear_faults();
    // The first fault for `api` (or "*"), consuming one of its `times`.
    std::optional<fault> take_fault(std::string_view api);

    // ---- records -------------------------------------------------------------------------------
    void record(call_record r);  // assigns seq and at
    // Calls of `api` ("" for all), oldest first.
    std::vector<call_record> calls(std::string_view api = {}) const;
    // Messages that reached fans, filtered by account and fan ("" for all), oldest first.
    std::vector<sent_message> sent(std::string_view appid = {}, std::string_view openid = {}) const;

    // ---- configuration -------------------------------------------------------------------------
    api_limits limits() const;
    void set_limits(api_limits l);
    // Forgets everything (accounts, fans, tokens, media, templates, QR codes, faults, records)
    // and restores the limits given at construction. The clock is not touched.
    void reset();
    fake_clock& clock() const noexcept { return *clock_; }

    // {"errcode":code,"errmsg":"<text> rid: …"} with WeChat's text for `code` when `errmsg` is
    // empty.
    std::string error_body(int code, std::string_view errmsg = {});

    struct state;  // defined in wechat_api.cpp

private:
    std::shared_ptr<fake_clock> clock_;
    api_limits initial_limits_;
    mutable std::mutex mutex_;
    std::unique_ptr<state> s_;
};

}  // namespace scrm::fakes

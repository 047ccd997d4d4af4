// The WeChat API client (the I/O shell of wechat/): HTTPS calls to api.weixin.qq.com with
// certificate and host-name verification, access tokens from POST /cgi-bin/stable_token cached in
// Redis and refreshed by one instance at a time, and the wrapped APIs: customer-service sends and
// typing, image upload and media download, template messages, permanent QR codes, user info
// (protocol sheet §5–§7, §8.11). Every failure is a typed value (api_failure); nothing throws out
// of it.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>

#include "scrm/common/error.hpp"
#include "scrm/wechat/api_answer.hpp"
#include "scrm/wechat/outbound.hpp"

namespace scrm::storage {
class redis_client;
}

namespace scrm::wechat {

// ---- the transport (wechat/src/https.cpp) -------------------------------------------------------

struct http_endpoint {
    // "https://api.weixin.qq.com" in production; "http://…" only in tests. An optional path
    // prefix is kept ("https://proxy.example/wx" + "/cgi-bin/…").
    std::string base_url = "https://api.weixin.qq.com";
    // PEM CA certificates to trust; empty: the system's default trust store. The server's
    // certificate must chain to them AND match the base URL's host (DNS name or IP address).
    std::string ca_file;
    // The whole exchange (resolve, connect, handshake, write, read) must finish within this.
    std::chrono::milliseconds timeout{10000};
};

// One HTTP request. GET and HEAD carry no body; any other method sends `body` with
// Content-Length and, if `content_type` is not empty, that Content-Type.
struct http_request {
    std::string method = "GET";
    std::string target;  // path and query, appended to the base URL's path prefix
    std::string content_type;
    std::string body;
    // The largest answer body accepted (a larger one fails with the parser's body_limit error).
    std::uint64_t response_limit = 4 * 1024 * 1024;
};

// One HTTP exchange's outcome. `ec` is set when no complete HTTP answer arrived; `written` then
// says whether any byte of the request had been handed to the connection: false means the server
// cannot have acted on the request (DNS failure, refused connection, TLS handshake or certificate
// failure, connect timeout); true means it may have (timeout waiting for the answer, connection
// closed before the answer).
struct http_outcome {
    boost::system::error_code ec;
    bool written = false;
    unsigned status = 0;
    std::string content_type;         // the answer's Content-Type header, as sent
    std::string content_disposition;  // the answer's Content-Disposition header, as sent
    std::string body;                 // bytes as received (binary-safe)
};

// One request on a fresh connection ("Connection: close"; keep-alive is future work), on the
// calling coroutine's executor. Errors: errc::bad_input for a base URL that is not
// http(s)://host[:port][/prefix] or an unknown method, errc::timeout when the deadline passed, else
// the underlying error as is (connection refused, SSL errors such as "certificate verify failed",
// end of stream, body limit exceeded, …). Never throws except std::bad_alloc.
boost::asio::awaitable<http_outcome> http_exchange(http_endpoint ep, http_request req);

// ---- typed API errors ---------------------------------------------------------------------------

enum class api_error {
    ok = 0,
    window_closed,            // 45015: no customer-service window (48 h / 1 min) or unfollowed
    quota_used,               // 45047: the window's message quota is used up
    not_following,            // 43004: the fan does not follow the account
    invalid_openid,           // 40003: not an OpenID of this account
    ip_not_allowlisted,       // 40164: this server's IP is not on the account's API allowlist
    unauthorized,             // 48001: the account lacks the API permission
    daily_quota,              // 45009: daily API quota (or the 20 forced token refreshes) used
    minute_quota,             // 45011: per-minute limit (or forced refreshes < 30 s apart)
    system_busy,              // -1: WeChat's "system error"; retrying later is allowed
    token_invalid,            // 40001/40014/42001 even after one refresh and one retry
    token_refresh_throttled,  // a forced refresh was needed but one happened < 30 s ago
    bad_credentials,          // appid/secret refused when fetching a token (40013, 40125, …)
    rejected_content,         // 44004 empty, 45002 too long, 45008/44003 news, 40007 media_id
                              // unknown or expired, 40008 msgtype, 47001 body, 40005/40009 file
    transport,                // no HTTP answer: see api_failure::maybe_delivered and `transport`
    http_status,              // an HTTP status other than 200 (a proxy's 502/503, …)
    bad_response,             // 200 with a body that is not WeChat's JSON
    storage,                  // Redis failed where the client could not proceed without it
    invalid_request,          // refused locally, nothing sent: breaks a rule WeChat enforces
    other,                    // any other errcode: see api_failure::errcode / errmsg
};
const char* to_string(api_error e) noexcept;
std::ostream& operator<<(std::ostream& os, api_error e);
// The typed error for a WeChat errcode (0 → ok; unknown codes → other).
api_error classify_errcode(int errcode) noexcept;

struct api_failure {
    api_error kind = api_error::other;
    int errcode = 0;     // WeChat's errcode when it answered with one, else 0
    std::string errmsg;  // WeChat's errmsg (never holds the token), or a short reason
    unsigned http_status = 0;
    boost::system::error_code transport;  // kind == transport (or storage): the I/O error
    // The request may have reached WeChat and taken effect (it was written and no answer came, or
    // the answer could not be understood). A message in this state must NEVER be sent again
    // automatically: the fan may already have it. False whenever WeChat answered an errcode
    // or the failure happened before the request was written.
    bool maybe_delivered = false;
};
std::ostream& operator<<(std::ostream& os, const api_failure& f);  // kind, codes; no secrets

// boost::system::result's value() on an error throws this (std::runtime_error with the kind and
// the codes). Prefer has_value()/error().
[[noreturn]] void throw_exception_from_error(const api_failure& f,
                                             const boost::source_location& loc);

template <class T>
using api_result = boost::system::result<T, api_failure>;

// ---- the client ---------------------------------------------------------------------------------

struct client_options {
    http_endpoint endpoint;
    std::string appid;
    std::string secret;  // AppSecret: sent only in the stable_token body, never logged
    // Redis keys: <prefix>token:<appid> (the token), <prefix>token-lock:<appid> (one refresher),
    // <prefix>token-forced:<appid> (a forced refresh happened within force_min_interval).
    std::string key_prefix = "scrm:wx:";
    // WeChat allows forced refreshes 30 s apart (20 a day); a refresh is not forced again
    // within this interval, across every instance sharing the Redis.
    std::chrono::milliseconds force_min_interval{30000};
    // How long an instance that did not get the refresh lock waits for the other instance's new
    // token (polling Redis) before giving up with token_invalid.
    std::chrono::milliseconds refresh_wait{5000};
    std::chrono::milliseconds poll_interval{50};
    // The largest media download accepted (WeChat's image limit is 10 MB by one of its texts).
    std::uint64_t media_download_limit = 16 * 1024 * 1024;
};

// Counters for tests and metrics.
struct client_stats {
    std::uint64_t token_fetches = 0;     // stable_token calls in normal mode
    std::uint64_t forced_refreshes = 0;  // stable_token calls with force_refresh=true
    std::uint64_t token_retries = 0;     // calls retried after a token error
};

// A file from GET /cgi-bin/media/get.
struct media_file {
    std::string bytes;
    std::string content_type;  // as WeChat sent it, e.g. "image/jpeg"
    std::string filename;      // from Content-Disposition (no directory part); may be empty
    // Video media: WeChat answers {"video_url":…} instead of the bytes; bytes is then empty.
    std::string video_url;
};

// Thread-safety: the coroutines may run concurrently on one executor (or a strand); the client
// object must outlive every call. The Redis client is shared and thread-safe. Ownership: the
// client keeps a shared_ptr to the Redis client.
//
// Access tokens: read from Redis; on a miss fetched with stable_token (normal mode, which hands
// every instance the same token) and stored with a TTL a little under expires_in. When a call
// fails with 40001/40014/42001 and Redis still holds the token that failed, one instance (a Redis
// SET NX PX lock) refreshes: first in normal mode; only if that returns the same failing token it
// forces a refresh — at most once per force_min_interval across instances (else
// token_refresh_throttled), and WeChat's own 45009/45011 refusals come back as daily_quota /
// minute_quota. Other instances wait for the new token in Redis. The call is then retried once.
// If Redis is down, tokens are fetched directly (normal mode) without caching or forcing.
class client {
public:
    client(std::shared_ptr<storage::redis_client> redis, client_options opts);
    ~client();
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    // POST /cgi-bin/message/custom/send with the bodies of outbound.hpp. `kf_account` (optional)
    // names the agent. send_news takes exactly one article (WeChat refuses more).
    boost::asio::awaitable<api_result<void>> send_text(std::string openid, std::string content,
                                                       std::string kf_account = {});
    boost::asio::awaitable<api_result<void>> send_image(std::string openid, std::string media_id,
                                                        std::string kf_account = {});
    boost::asio::awaitable<api_result<void>> send_news(std::string openid, news_article article,
                                                       std::string kf_account = {});
    // POST /cgi-bin/message/custom/typing: "typing…" shown to the fan for up to 15 s (on) or
    // cancelled. WeChat wants an interaction within the last 30 s, else 45015 (window_closed).
    boost::asio::awaitable<api_result<void>> typing(std::string openid, bool on);

    // POST /cgi-bin/media/upload?type=image (multipart/form-data, part "media"): a temporary
    // image (3 days) → its media_id. Refused locally (invalid_request, nothing sent) when `bytes`
    // is over image_upload_max_bytes or not JPEG/PNG by its magic bytes. The filename sent is
    // upload_filename(filename, format): sanitized, with the right extension.
    boost::asio::awaitable<api_result<std::string>> upload_image(std::string bytes,
                                                                 std::string filename);

    // GET /cgi-bin/media/get?media_id=…: the file. An unknown, expired or other account's
    // media_id is errcode 40007 (rejected_content); WeChat sends that as a JSON body, told apart
    // from the file by its Content-Type. Files over options().media_download_limit fail with
    // kind transport.
    boost::asio::awaitable<api_result<media_file>> download_media(std::string media_id);

    // POST /cgi-bin/message/template/send with template_send_body(m) → the msgid. Set
    // m.client_msg_id to make retries safe: WeChat sends once per openid + client_msg_id within
    // 10 minutes and answers a repeat with the first msgid. 43004 not_following for a fan who
    // does not follow.
    boost::asio::awaitable<api_result<std::uint64_t>> send_template(template_message m);

    // POST /cgi-bin/qrcode/create, QR_LIMIT_STR_SCENE (permanent) → {ticket, url}. Refused locally
    // (invalid_request) unless valid_qr_scene_str(scene_str).
    boost::asio::awaitable<api_result<qr_ticket>> create_permanent_qr(std::string scene_str);

    // GET /cgi-bin/user/info?openid=…&lang=zh_CN. A fan who unfollowed is subscribed == false
    // (not an error); an OpenID that is not this account's is 40003 (invalid_openid).
    boost::asio::awaitable<api_result<fan_info>> user_info(std::string openid);

    // Any POST API taking access_token, with a prepared JSON body (path e.g. "/cgi-bin/…").
    // Returns the answer's body when errcode is 0 (or absent).
    boost::asio::awaitable<api_result<std::string>> post_json(std::string path, std::string body);
    // Any GET API taking access_token: `path_and_query` e.g. "/cgi-bin/user/info?openid=…"
    // (already percent-encoded; the token is appended). Returns the body as post_json does.
    boost::asio::awaitable<api_result<std::string>> get_json(std::string path_and_query);

    // The current access token (cached, fetched when missing). For callers of APIs not wrapped
    // here; never log it.
    boost::asio::awaitable<api_result<std::string>> access_token();

    client_stats stats() const;
    const client_options& options() const { return opts_; }

    struct state;

private:
    // One API call with the access token appended to req.target, retried once with a refreshed
    // token on 40001/40014/42001 (see above). Succeeds with a 200 answer whose JSON errcode is 0
    // or absent — or, when `binary_ok`, whose Content-Type is not JSON (a file).
    boost::asio::awaitable<api_result<http_outcome>> call(http_request req, bool binary_ok);

    std::shared_ptr<storage::redis_client> redis_;
    client_options opts_;
    std::unique_ptr<state> s_;
};

}  // namespace scrm::wechat

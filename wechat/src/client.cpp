// The WeChat API client: JSON bodies, errcode classification, the access-token cache in Redis and
// the one-refresher protocol, retry-once on token errors. HTTP lives in https.cpp.
#include "scrm/wechat/client.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>
#include <ostream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "scrm/common/log.hpp"
#include "scrm/storage/redis.hpp"
#include "scrm/wechat/api_answer.hpp"

namespace scrm::wechat {

namespace asio = boost::asio;

// ---- typed errors -------------------------------------------------------------------------------

const char* to_string(api_error e) noexcept {
    switch (e) {
        case api_error::ok: return "ok";
        case api_error::window_closed: return "window_closed";
        case api_error::quota_used: return "quota_used";
        case api_error::not_following: return "not_following";
        case api_error::invalid_openid: return "invalid_openid";
        case api_error::ip_not_allowlisted: return "ip_not_allowlisted";
        case api_error::unauthorized: return "unauthorized";
        case api_error::daily_quota: return "daily_quota";
        case api_error::minute_quota: return "minute_quota";
        case api_error::system_busy: return "system_busy";
        case api_error::token_invalid: return "token_invalid";
        case api_error::token_refresh_throttled: return "token_refresh_throttled";
        case api_error::bad_credentials: return "bad_credentials";
        case api_error::rejected_content: return "rejected_content";
        case api_error::transport: return "transport";
        case api_error::http_status: return "http_status";
        case api_error::bad_response: return "bad_response";
        case api_error::storage: return "storage";
        case api_error::invalid_request: return "invalid_request";
        case api_error::other: return "other";
    }
    return "unknown";
}

std::ostream& operator<<(std::ostream& os, api_error e) {
    return os << to_string(e);
}

api_error classify_errcode(int errcode) noexcept {
    switch (errcode) {
        case 0: return api_error::ok;
        case -1: return api_error::system_busy;
        case 45015: return api_error::window_closed;
        case 45047: return api_error::quota_used;
        case 43004: return api_error::not_following;
        case 40003: return api_error::invalid_openid;
        case 40164: return api_error::ip_not_allowlisted;
        case 48001: return api_error::unauthorized;
        case 45009: return api_error::daily_quota;
        case 45011: return api_error::minute_quota;
        case 40001:
        case 40014:
        case 42001: return api_error::token_invalid;
        case 40013:
        case 40125:
        case 41002:
        case 41004: return api_error::bad_credentials;
        case 44004:
        case 45002:
        case 45008:
        case 44003:
        case 40007:
        case 40008:
        case 40005:  // upload: not an accepted file type
        case 40009:  // upload: image too large
        case 47001: return api_error::rejected_content;
        default: return api_error::other;
    }
}

std::ostream& operator<<(std::ostream& os, const api_failure& f) {
    os << "api_failure{" << f.kind;
    if (f.errcode != 0) os << ", errcode: " << f.errcode;
    if (!f.errmsg.empty()) os << ", errmsg: \"" << f.errmsg << '"';
    if (f.http_status != 0) os << ", http: " << f.http_status;
    if (f.transport) os << ", transport: " << f.transport.message();
    return os << ", maybe_delivered: " << (f.maybe_delivered ? "true" : "false") << '}';
}

void throw_exception_from_error(const api_failure& f, const boost::source_location&) {
    std::ostringstream os;
    os << f;
    throw std::runtime_error(os.str());
}

// ---- helpers ------------------------------------------------------------------------------------

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);
constexpr const char* json_content_type = "application/json; charset=utf-8";

bool is_token_error(int errcode) {
    return errcode == 40001 || errcode == 40014 || errcode == 42001;
}

std::string pct_encode(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') ||
            u == '-' || u == '_' || u == '.' || u == '~') {
            out.push_back(c);
        } else {
            out.push_back('%');
            out.push_back(hex[u >> 4]);
            out.push_back(hex[u & 15]);
        }
    }
    return out;
}

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

void put(json_writer& w, const char* key, const std::string& value) {
    w.Key(key);
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

// WeChat's JSON answer: errcode (0 when absent), errmsg, and the token fields. `file`: the answer
// was not JSON but a file (allowed for downloads only); nothing else is set then.
struct answer {
    bool file = false;
    int errcode = 0;
    std::string errmsg;
    std::string access_token;
    std::int64_t expires_in = 0;
};

bool parse_answer(const std::string& body, answer& out) {
    rapidjson::Document d;
    d.Parse(body.data(), body.size());
    if (d.HasParseError() || !d.IsObject()) return false;
    if (auto it = d.FindMember("errcode"); it != d.MemberEnd()) {
        if (!it->value.IsInt()) return false;
        out.errcode = it->value.GetInt();
    }
    if (auto it = d.FindMember("errmsg"); it != d.MemberEnd() && it->value.IsString()) {
        out.errmsg.assign(it->value.GetString(), it->value.GetStringLength());
    }
    if (auto it = d.FindMember("access_token"); it != d.MemberEnd() && it->value.IsString()) {
        out.access_token.assign(it->value.GetString(), it->value.GetStringLength());
    }
    if (auto it = d.FindMember("expires_in"); it != d.MemberEnd() && it->value.IsInt64()) {
        out.expires_in = it->value.GetInt64();
    }
    return true;
}

api_failure failure(api_error kind, std::string msg) {
    api_failure f;
    f.kind = kind;
    f.errmsg = std::move(msg);
    return f;
}

// The outcome of one exchange as an answer or a typed failure (errcode not yet looked at).
// `binary_ok`: a 200 whose Content-Type is not JSON is a file, not a bad response.
api_result<answer> interpret(const http_outcome& out, bool binary_ok = false) {
    if (out.ec) {
        api_failure f = failure(api_error::transport, {});
        f.transport = out.ec;
        f.maybe_delivered = out.written;
        return f;
    }
    if (out.status != 200) {
        api_failure f = failure(api_error::http_status, {});
        f.http_status = out.status;
        // A gateway error may hide an upstream that did process the request.
        f.maybe_delivered = out.status == 502 || out.status == 504;
        return f;
    }
    answer a;
    if (binary_ok && !is_json_content_type(out.content_type)) {
        a.file = true;
        return a;
    }
    if (!parse_answer(out.body, a)) {
        api_failure f = failure(api_error::bad_response, "answer is not WeChat JSON");
        f.maybe_delivered = true;
        return f;
    }
    return a;
}

api_failure errcode_failure(const answer& a) {
    api_failure f;
    f.kind = classify_errcode(a.errcode);
    f.errcode = a.errcode;
    f.errmsg = a.errmsg;
    return f;
}

const storage::redis_script& release_script() {
    static const storage::redis_script s(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) "
        "else return 0 end");
    return s;
}

}  // namespace

// ---- the client ---------------------------------------------------------------------------------

struct client::state {
    std::atomic<std::uint64_t> token_fetches{0};
    std::atomic<std::uint64_t> forced_refreshes{0};
    std::atomic<std::uint64_t> token_retries{0};
    std::atomic<std::uint64_t> lock_seq{0};
    std::atomic<std::uint64_t> upload_seq{0};
    std::string instance_id;
    std::string token_key, lock_key, forced_key;
};

client::client(std::shared_ptr<storage::redis_client> redis, client_options opts)
    : redis_(std::move(redis)), opts_(std::move(opts)), s_(std::make_unique<state>()) {
    std::random_device rd;
    s_->instance_id =
        std::to_string(::getpid()) + "-" + std::to_string(rd()) + "-" + std::to_string(rd());
    s_->token_key = opts_.key_prefix + "token:" + opts_.appid;
    s_->lock_key = opts_.key_prefix + "token-lock:" + opts_.appid;
    s_->forced_key = opts_.key_prefix + "token-forced:" + opts_.appid;
}

client::~client() = default;

client_stats client::stats() const {
    client_stats st;
    st.token_fetches = s_->token_fetches.load();
    st.forced_refreshes = s_->forced_refreshes.load();
    st.token_retries = s_->token_retries.load();
    return st;
}

namespace {

struct token_value {
    std::string token;
    std::int64_t expires_in = 0;
};

asio::awaitable<api_result<token_value>> fetch_stable(const client_options& o, bool force) {
    rapidjson::StringBuffer buf;
    json_writer w(buf);
    w.StartObject();
    w.Key("grant_type");
    w.String("client_credential");
    put(w, "appid", o.appid);
    put(w, "secret", o.secret);
    w.Key("force_refresh");
    w.Bool(force);
    w.EndObject();
    http_request req;
    req.method = "POST";
    req.target = "/cgi-bin/stable_token";
    req.content_type = json_content_type;
    req.body.assign(buf.GetString(), buf.GetSize());
    http_outcome out = co_await http_exchange(o.endpoint, std::move(req));
    auto a = interpret(out);
    if (!a) {
        log::warn("wechat_token_fetch_failed",
                  {{"appid", o.appid}, {"kind", to_string(a.error().kind)}});
        co_return a.error();
    }
    if (a->errcode != 0 || a->access_token.empty()) {
        api_failure f = errcode_failure(*a);
        // On the token endpoints 40001 means a wrong AppSecret, not a stale token.
        if (f.kind == api_error::token_invalid || f.kind == api_error::ok) {
            f.kind = a->errcode == 0 ? api_error::bad_response : api_error::bad_credentials;
        }
        log::warn("wechat_token_fetch_failed",
                  {{"appid", o.appid}, {"errcode", a->errcode}, {"force", force}});
        co_return f;
    }
    token_value v;
    v.token = std::move(a->access_token);
    v.expires_in = a->expires_in > 0 ? a->expires_in : 7200;
    co_return v;
}

// A little under expires_in, so a cached token is never one WeChat already dropped.
std::chrono::milliseconds cache_ttl(std::int64_t expires_in) {
    const std::int64_t s =
        expires_in > 240 ? expires_in - 120 : std::max<std::int64_t>(expires_in / 2, 1);
    return std::chrono::seconds(s);
}

asio::awaitable<void> pause(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    t.expires_after(d);
    co_await t.async_wait(tuple_awaitable);
}

}  // namespace

asio::awaitable<api_result<std::string>> client::access_token() {
    std::string key = s_->token_key;
    auto cached = co_await redis_->get(std::move(key));
    if (cached && *cached && !(*cached)->empty()) co_return std::move(**cached);
    if (!cached) log::warn("wechat_token_cache_unavailable", {{"appid", opts_.appid}});
    ++s_->token_fetches;
    auto v = co_await fetch_stable(opts_, false);
    if (!v) co_return v.error();
    if (cached) {
        std::string k = s_->token_key;
        std::string t = v->token;
        auto set = co_await redis_->set_px(std::move(k), std::move(t), cache_ttl(v->expires_in));
        if (!set) log::warn("wechat_token_cache_write_failed", {{"appid", opts_.appid}});
    }
    log::info("wechat_token_fetched", {{"appid", opts_.appid}, {"expires_in", v->expires_in}});
    co_return std::move(v->token);
}

namespace {

// The refresh itself, run by the one instance holding the lock: normal mode first (the platform
// may already have a new token), forcing only if it hands back the token that failed.
asio::awaitable<api_result<std::string>> refresh_locked(storage::redis_client& redis,
                                                        const client_options& o, client::state& s,
                                                        std::string failed) {
    ++s.token_fetches;
    auto normal = co_await fetch_stable(o, false);
    if (!normal) co_return normal.error();
    token_value fresh;
    if (normal->token != failed) {
        fresh = std::move(*normal);
    } else {
        std::string fk = s.forced_key;
        std::string one = "1";
        auto slot = co_await redis.set_nx_px(std::move(fk), std::move(one), o.force_min_interval);
        if (!slot) {
            api_failure f = failure(api_error::storage, "cannot record the forced refresh");
            f.transport = slot.error();
            co_return f;
        }
        if (!*slot) {
            log::warn("wechat_token_refresh_throttled", {{"appid", o.appid}});
            co_return failure(api_error::token_refresh_throttled,
                              "a forced token refresh happened less than the minimum interval ago");
        }
        ++s.forced_refreshes;
        auto forced = co_await fetch_stable(o, true);
        if (!forced) {
            log::error("wechat_token_forced_refresh_failed",
                       {{"appid", o.appid}, {"errcode", forced.error().errcode}});
            co_return forced.error();
        }
        log::info("wechat_token_forced_refresh", {{"appid", o.appid}});
        fresh = std::move(*forced);
    }
    std::string k = s.token_key;
    std::string t = fresh.token;
    auto set = co_await redis.set_px(std::move(k), std::move(t), cache_ttl(fresh.expires_in));
    if (!set) log::warn("wechat_token_cache_write_failed", {{"appid", o.appid}});
    co_return std::move(fresh.token);
}

}  // namespace

namespace {

// After a token error with `failed`: a token other than `failed` to retry with, obtained by this
// instance (under the lock) or by another one (seen in Redis).
asio::awaitable<api_result<std::string>> refreshed_token(storage::redis_client& redis,
                                                         const client_options& o, client::state& s,
                                                         std::string failed) {
    const auto deadline = std::chrono::steady_clock::now() + o.refresh_wait;
    for (;;) {
        std::string key = s.token_key;
        auto cur = co_await redis.get(std::move(key));
        if (!cur) {
            // No coordination possible: take what normal mode gives, never force blind.
            ++s.token_fetches;
            auto v = co_await fetch_stable(o, false);
            if (!v) co_return v.error();
            if (v->token != failed) co_return std::move(v->token);
            api_failure f =
                failure(api_error::token_invalid, "token refused and Redis unavailable");
            f.transport = cur.error();
            co_return f;
        }
        if (*cur && **cur != failed && !(*cur)->empty()) co_return std::move(**cur);
        std::string lock_key = s.lock_key;
        std::string lock_id = s.instance_id + "-" + std::to_string(++s.lock_seq);
        std::string lock_val = lock_id;
        const auto lock_ttl = o.endpoint.timeout * 3;
        auto got = co_await redis.set_nx_px(std::move(lock_key), std::move(lock_val), lock_ttl);
        if (got && *got) {
            auto r = co_await refresh_locked(redis, o, s, failed);
            std::vector<std::string> keys;
            keys.push_back(s.lock_key);
            std::vector<std::string> args;
            args.push_back(lock_id);
            auto released = co_await redis.eval(release_script(), std::move(keys), std::move(args));
            if (!released) log::warn("wechat_token_lock_release_failed", {{"appid", o.appid}});
            co_return r;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            co_return failure(api_error::token_invalid,
                              "token refresh by another instance did not complete in time");
        }
        co_await pause(o.poll_interval);
    }
}

}  // namespace

asio::awaitable<api_result<http_outcome>> client::call(http_request req, bool binary_ok) {
    const auto q = req.target.find('?');
    // Logged by path only: queries hold OpenIDs and the token.
    const std::string api = req.target.substr(0, q);
    const std::string base_target = req.target + (q == std::string::npos ? "?" : "&");
    auto tok = co_await access_token();
    if (!tok) co_return tok.error();
    std::string token = std::move(*tok);
    for (int attempt = 0;; ++attempt) {
        http_request r = req;  // the body is kept for the retry
        r.target = base_target + "access_token=" + pct_encode(token);
        http_outcome out = co_await http_exchange(opts_.endpoint, std::move(r));
        auto a = interpret(out, binary_ok);
        if (!a) {
            log::warn("wechat_call_failed", {{"appid", opts_.appid},
                                             {"api", api},
                                             {"kind", to_string(a.error().kind)},
                                             {"maybe_delivered", a.error().maybe_delivered}});
            co_return a.error();
        }
        if (a->errcode == 0) co_return std::move(out);
        if (is_token_error(a->errcode) && attempt == 0) {
            log::info("wechat_token_refused", {{"appid", opts_.appid}, {"errcode", a->errcode}});
            auto fresh = co_await refreshed_token(*redis_, opts_, *s_, token);
            if (!fresh) co_return fresh.error();
            token = std::move(*fresh);
            ++s_->token_retries;
            continue;
        }
        log::info("wechat_call_refused",
                  {{"appid", opts_.appid}, {"api", api}, {"errcode", a->errcode}});
        co_return errcode_failure(*a);
    }
}

asio::awaitable<api_result<std::string>> client::post_json(std::string path, std::string body) {
    http_request req;
    req.method = "POST";
    req.target = std::move(path);
    req.content_type = json_content_type;
    req.body = std::move(body);
    auto r = co_await call(std::move(req), false);
    if (!r) co_return r.error();
    co_return std::move(r->body);
}

asio::awaitable<api_result<std::string>> client::get_json(std::string path_and_query) {
    http_request req;
    req.method = "GET";
    req.target = std::move(path_and_query);
    auto r = co_await call(std::move(req), false);
    if (!r) co_return r.error();
    co_return std::move(r->body);
}

namespace {

asio::awaitable<api_result<void>> post_void(client& c, std::string path, std::string body) {
    auto r = co_await c.post_json(std::move(path), std::move(body));
    if (!r) co_return r.error();
    co_return api_result<void>{};
}

// A 200 answer with errcode 0 that we could not read (a missing field, a wrong type): WeChat may
// have acted on the request.
api_failure unreadable(const char* what) {
    api_failure f = failure(api_error::bad_response, what);
    f.maybe_delivered = true;
    return f;
}

}  // namespace

asio::awaitable<api_result<void>> client::send_text(std::string openid, std::string content,
                                                    std::string kf_account) {
    std::string body = custom_text_body(openid, content, kf_account);
    std::string path(custom_send_path);
    co_return co_await post_void(*this, std::move(path), std::move(body));
}

asio::awaitable<api_result<void>> client::send_image(std::string openid, std::string media_id,
                                                     std::string kf_account) {
    std::string body = custom_image_body(openid, media_id, kf_account);
    std::string path(custom_send_path);
    co_return co_await post_void(*this, std::move(path), std::move(body));
}

asio::awaitable<api_result<void>> client::send_news(std::string openid, news_article article,
                                                    std::string kf_account) {
    std::string body = custom_news_body(openid, article, kf_account);
    std::string path(custom_send_path);
    co_return co_await post_void(*this, std::move(path), std::move(body));
}

asio::awaitable<api_result<void>> client::typing(std::string openid, bool on) {
    std::string body = typing_body(openid, on);
    std::string path(custom_typing_path);
    co_return co_await post_void(*this, std::move(path), std::move(body));
}

asio::awaitable<api_result<std::string>> client::upload_image(std::string bytes,
                                                              std::string filename) {
    if (bytes.size() > image_upload_max_bytes) {
        co_return failure(api_error::invalid_request, "image over 2 MB");
    }
    const image_format format = sniff_image(bytes);
    if (format == image_format::unknown) {
        co_return failure(api_error::invalid_request, "image is neither JPEG nor PNG");
    }
    std::string boundary;
    for (std::uint64_t n = ++s_->upload_seq;; n = ++s_->upload_seq) {
        boundary = "scrm-" + s_->instance_id + "-" + std::to_string(n);
        if (boundary_fits(boundary, bytes)) break;
    }
    http_request req;
    req.method = "POST";
    req.target = std::string(media_upload_path) + "?type=image";
    req.content_type = "multipart/form-data; boundary=" + boundary;
    req.body = multipart_file_body(boundary, "media", upload_filename(filename, format),
                                   mime_type(format), bytes);
    bytes = std::string();  // the body holds a copy; do not keep two across the call
    auto r = co_await call(std::move(req), false);
    if (!r) co_return r.error();
    auto id = parse_media_upload_answer(r->body);
    if (!id) co_return unreadable("media/upload answer has no media_id");
    co_return std::move(*id);
}

asio::awaitable<api_result<media_file>> client::download_media(std::string media_id) {
    http_request req;
    req.method = "GET";
    req.target = std::string(media_get_path) + "?media_id=" + pct_encode(media_id);
    req.response_limit = opts_.media_download_limit;
    auto r = co_await call(std::move(req), true);
    if (!r) co_return r.error();
    media_file f;
    f.content_type = std::move(r->content_type);
    if (is_json_content_type(f.content_type)) {
        // errcode 0 as JSON: a video, served by URL.
        f.video_url = parse_video_url(r->body);
        if (f.video_url.empty()) co_return unreadable("media/get answered JSON without a file");
        co_return f;
    }
    f.filename = content_disposition_filename(r->content_disposition);
    f.bytes = std::move(r->body);
    co_return f;
}

asio::awaitable<api_result<std::uint64_t>> client::send_template(template_message m) {
    std::string body = template_send_body(m);
    std::string path(template_send_path);
    auto r = co_await post_json(std::move(path), std::move(body));
    if (!r) co_return r.error();
    auto msgid = parse_template_send_answer(*r);
    if (!msgid) co_return unreadable("template/send answer has no msgid");
    co_return *msgid;
}

asio::awaitable<api_result<qr_ticket>> client::create_permanent_qr(std::string scene_str) {
    auto body = permanent_qr_body(scene_str);
    if (!body) {
        co_return failure(api_error::invalid_request,
                          "QR scene_str must be 1-64 bytes of text without control characters");
    }
    std::string path(qrcode_create_path);
    auto r = co_await post_json(std::move(path), std::move(*body));
    if (!r) co_return r.error();
    auto q = parse_qr_answer(*r);
    if (!q) co_return unreadable("qrcode/create answer has no ticket or url");
    co_return std::move(*q);
}

asio::awaitable<api_result<fan_info>> client::user_info(std::string openid) {
    std::string target =
        std::string(user_info_path) + "?openid=" + pct_encode(openid) + "&lang=zh_CN";
    auto r = co_await get_json(std::move(target));
    if (!r) co_return r.error();
    auto info = parse_user_info(*r);
    if (!info) {
        api_failure f = failure(api_error::bad_response, "user/info answer is not readable");
        co_return f;
    }
    co_return std::move(*info);
}

}  // namespace scrm::wechat

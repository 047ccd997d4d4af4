// The webhook's request handling, in the order of DESIGN.md §4. Every refusal is logged with its
// reason and the appid — never with the body, which holds patients' messages.
#include "scrm/gateway/webhook.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <charconv>
#include <map>
#include <mutex>

#include "scrm/common/log.hpp"
#include "scrm/storage/mysql.hpp"
#include "scrm/storage/redis.hpp"
#include "scrm/storage/spool.hpp"
#include "scrm/wechat/envelope.hpp"
#include "scrm/wechat/error.hpp"
#include "scrm/wechat/parse.hpp"
#include "scrm/wechat/reply.hpp"
#include "scrm/wechat/signature.hpp"

namespace scrm::gateway {

using boost::asio::awaitable;

namespace {

http_response text(unsigned status, std::string body) {
    http_response r;
    r.status = status;
    r.content_type = "text/plain; charset=utf-8";
    r.body = std::move(body);
    return r;
}

// The answer carrying a passive reply: its XML, sealed into an envelope in safe mode (`slot` is
// the key that opened the request). If sealing fails the fan gets no reply, but the message is
// stored: answer `success` rather than an error WeChat would retry.
http_response reply_response(const account& a, const std::string& fan,
                             const passive_reply& reply, std::int64_t now,
                             std::optional<wechat::key_slot> slot, std::string_view nonce) {
    wechat::inbound_message to;  // the builders answer the message: only the two names matter
    to.from_user_name = fan;
    to.to_user_name = a.original_id;
    std::string xml;
    switch (reply.type) {
        case passive_reply::kind::text: xml = wechat::text_reply(to, reply.content, now); break;
        case passive_reply::kind::image: xml = wechat::image_reply(to, reply.content, now); break;
        case passive_reply::kind::news: xml = wechat::news_reply(to, reply.article, now); break;
    }
    if (slot) {
        auto sealed = wechat::seal_reply(a.token, a.keys[*slot], a.appid, xml, now, nonce,
                                         wechat::system_random());
        if (!sealed) {
            log::error("webhook.reply_seal_failed", {{"appid", a.appid}});
            return text(200, "success");
        }
        xml = wechat::to_xml(*sealed);
    }
    http_response r;
    r.status = 200;
    r.content_type = "application/xml; charset=utf-8";
    r.body = std::move(xml);
    return r;
}

http_response refuse(unsigned status, const std::string& appid, std::string_view reason) {
    log::info("webhook.refused", {{"appid", appid}, {"status", status}, {"reason", reason}});
    return json_error(status, reason);
}

std::string hex(std::string_view bytes) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

// Redis keys carry the clinic as hash tag, so one clinic's keys share a slot (DESIGN.md §6).
std::string redis_key(const account& a, std::string_view kind, std::string_view rest) {
    return "scrm:{c" + std::to_string(a.clinic_id) + "}:" + std::string(kind) + ":" + a.appid +
           ":" + std::string(rest);
}

bool is_wechat(const boost::system::error_code& ec, wechat::wechat_errc e) {
    return ec == make_error_code(e);
}

inbound_row to_row(const account& a, const wechat::inbound_message& m, std::string hash,
                   std::string body_xml) {
    inbound_row row;
    row.account_id = a.id;
    row.identity_hash = std::move(hash);
    row.openid = m.from_user_name;
    row.msg_type = m.msg_type;
    if (m.is_event()) {
        row.event = m.event;
        row.event_key = m.event_key;
    }
    row.wx_msg_id = m.msg_id;
    row.create_time = m.create_time;
    if (const auto* t = std::get_if<wechat::text_message>(&m.body)) row.content = t->content;
    if (const auto* v = std::get_if<wechat::voice_message>(&m.body)) {
        if (!v->recognition.empty()) row.content = v->recognition;
    }
    if (const auto* i = std::get_if<wechat::image_message>(&m.body)) row.media_id = i->media_id;
    if (const auto* v = std::get_if<wechat::voice_message>(&m.body)) row.media_id = v->media_id;
    if (const auto* v = std::get_if<wechat::video_message>(&m.body)) row.media_id = v->media_id;
    if (const auto* v = std::get_if<wechat::short_video_message>(&m.body)) {
        row.media_id = v->media_id;
    }
    if (m.event == "subscribe") row.fan = fan_change::subscribe;
    if (m.event == "unsubscribe") row.fan = fan_change::unsubscribe;
    if (auto scene = wechat::qr_scene(m)) row.scene = std::string(*scene);
    row.body_xml = std::move(body_xml);
    return row;
}

// Plain mode's replay check and the committed-identity lookup in one round trip.
// KEYS[1] the (timestamp, nonce, signature) triple, KEYS[2] the identity's "seen" key; ARGV[1]
// the identity (hex), ARGV[2] the triple's TTL in ms. Returns {bound, seen}: bound 0 when the
// triple is already bound to another identity; seen 1 when the identity is known committed.
const storage::redis_script& check_script() {
    static const storage::redis_script s(R"lua(
local bound = 1
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local v = redis.call('GET', KEYS[1])
  if v and v ~= ARGV[1] then bound = 0 end
end
return {bound, redis.call('EXISTS', KEYS[2])}
)lua");
    return s;
}

// Marks committed identities: KEYS the "seen" keys (one clinic's: they share a hash slot),
// ARGV[1] the TTL in ms.
const storage::redis_script& seen_script() {
    static const storage::redis_script s(R"lua(
for _, k in ipairs(KEYS) do redis.call('SET', k, '1', 'PX', ARGV[1]) end
return #KEYS
)lua");
    return s;
}

}  // namespace

// The cache writes of committed identities, group-written: a request hands its key over and goes
// on at once (the cache is only an optimisation for WeChat's retries); one flusher at a time
// writes everything handed over meanwhile, one script call per clinic.
struct detail::seen_writer {
    seen_writer(storage::redis_client& r, std::chrono::milliseconds t) : redis(r), ttl(t) {}
    storage::redis_client& redis;
    std::chrono::milliseconds ttl;
    std::mutex mutex;
    std::map<std::uint64_t, std::vector<std::string>> pending;  // clinic -> keys
    bool flushing = false;

    // True if the caller must start a flush.
    bool add(std::uint64_t clinic, std::string key) {
        std::lock_guard lock(mutex);
        pending[clinic].push_back(std::move(key));
        if (flushing) return false;
        flushing = true;
        return true;
    }
};

namespace {

awaitable<void> flush_seen(std::shared_ptr<detail::seen_writer> w) {
    for (;;) {
        std::map<std::uint64_t, std::vector<std::string>> batch;
        {
            std::lock_guard lock(w->mutex);
            batch.swap(w->pending);
            if (batch.empty()) {
                w->flushing = false;
                co_return;
            }
        }
        for (auto& entry : batch) {
            std::vector<std::string> args(1, std::to_string(w->ttl.count()));
            storage::redis_script script = seen_script();
            auto written = co_await w->redis.eval(std::move(script), std::move(entry.second),
                                                  std::move(args));
            if (!written) {
                log::debug("webhook.seen_cache_skipped", {{"reason", written.error().message()}});
            }
        }
    }
}

}  // namespace

webhook::webhook(account_registry& accounts, message_store& store, storage::redis_client& redis,
                 storage::mysql_pool& mysql, stored_message_sink& sink, storage::spool* spool,
                 webhook_settings settings, clock_fn now)
    : accounts_(accounts),
      store_(store),
      redis_(redis),
      mysql_(mysql),
      sink_(sink),
      spool_(spool),
      settings_(settings),
      now_(std::move(now)),
      seen_(std::make_shared<detail::seen_writer>(redis, settings.seen_ttl)) {}

void webhook::add_routes(router& routes) {
    routes.prefix("GET", "/wx/", "/wx/{appid}",
                  [this](http_request r) { return handle(std::move(r)); });
    routes.prefix("POST", "/wx/", "/wx/{appid}",
                  [this](http_request r) { return handle(std::move(r)); });
}

awaitable<http_response> webhook::handle(http_request req) {
    const std::string appid = req.path.substr(4);
    if (appid.empty() || appid.size() > 32 || appid.find('/') != std::string::npos) {
        co_return refuse(404, appid.substr(0, 32), "unknown account");
    }
    auto found = co_await accounts_.find(appid);
    if (!found) {
        log::warn("webhook.accounts_unavailable",
                  {{"appid", appid}, {"reason", found.error().message()}});
        co_return json_error(503, "account settings unavailable");
    }
    if (!*found) co_return refuse(404, appid, "unknown account");
    if (req.method == "GET") co_return co_await verify_url(**found, req);
    co_return co_await receive(*found, std::move(req));
}

awaitable<http_response> webhook::verify_url(const account& a, const http_request& req) {
    const auto signature = query_param(req.query, "signature");
    const auto timestamp = query_param(req.query, "timestamp");
    const auto nonce = query_param(req.query, "nonce");
    const auto echostr = query_param(req.query, "echostr");
    if (!signature || !timestamp || !nonce || !echostr) {
        co_return refuse(401, a.appid, "missing signature parameters");
    }
    if (!wechat::verify_url_signature(a.token, *timestamp, *nonce, *signature)) {
        co_return refuse(401, a.appid, "signature mismatch");
    }
    co_return text(200, *echostr);  // byte for byte
}

awaitable<http_response> webhook::receive(std::shared_ptr<const account> a, http_request req) {
    const auto signature = query_param(req.query, "signature");
    const auto timestamp = query_param(req.query, "timestamp");
    const auto nonce = query_param(req.query, "nonce");
    if (!signature || !timestamp || !nonce)
        co_return refuse(401, a->appid, "missing signature parameters");
    if (!wechat::verify_url_signature(a->token, *timestamp, *nonce, *signature)) {
        co_return refuse(401, a->appid, "signature mismatch");
    }
    std::int64_t ts = 0;
    try {
        std::size_t used = 0;
        ts = std::stoll(*timestamp, &used);
        if (used != timestamp->size()) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
        co_return refuse(401, a->appid, "timestamp is not a number");
    }
    const std::int64_t skew = now_() - ts;
    if (skew > settings_.timestamp_window.count() || -skew > settings_.timestamp_window.count()) {
        co_return refuse(401, a->appid, "timestamp outside the allowed window");
    }
    const bool safe_mode =
        query_param(req.query, "encrypt_type") == std::optional<std::string>("aes");
    if (!safe_mode && a->safe_mode_only)
        co_return refuse(403, a->appid, "this account accepts safe mode only");

    // Decrypt (safe mode) and parse; a correctly signed body that fails here is a dead letter.
    std::string xml;
    std::string dead_reason;
    std::optional<wechat::key_slot> reply_key;  // safe mode: the key that opened the request
    if (safe_mode) {
        const auto msg_signature = query_param(req.query, "msg_signature");
        if (!msg_signature) co_return refuse(401, a->appid, "missing msg_signature");
        auto opened = wechat::open_envelope(a->token, a->keys, a->appid,
                                            {*timestamp, *nonce, *msg_signature}, req.body);
        if (!opened && is_wechat(opened.error(), wechat::wechat_errc::signature_mismatch)) {
            co_return refuse(401, a->appid, "msg_signature mismatch");
        }
        if (opened) {
            xml = std::move(opened->decrypted.message);
            reply_key = opened->decrypted.key;
        } else {
            dead_reason = "cannot decrypt: " + opened.error().message();
        }
    } else {
        xml = req.body;
    }
    std::optional<wechat::inbound_message> message;
    if (dead_reason.empty()) {
        auto parsed = wechat::parse_message(xml);
        if (!parsed) {
            dead_reason = "cannot parse: " + parsed.error().message();
        } else if (parsed->to_user_name != a->original_id) {
            dead_reason = "ToUserName is not this account's original id";
        } else if (parsed->from_user_name.empty() || parsed->from_user_name.size() > 128 ||
                   parsed->msg_type.size() > 64 || parsed->event.size() > 64) {
            dead_reason = "FromUserName, MsgType or Event missing or too long";
        } else {
            message = std::move(*parsed);
        }
    }
    if (!message) {
        auto fn = [&](storage::mysql_session& db) {
            return db.execute(
                "INSERT INTO dead_letters (account_id, reason, query_string, body) VALUES (?, ?, "
                "?, ?)",
                {a->id, dead_reason.substr(0, 255), req.query, req.body});
        };
        auto kept = co_await mysql_.run(fn);
        if (!kept) {
            log::warn("webhook.dead_letter_failed",
                      {{"appid", a->appid}, {"reason", kept.error().message()}});
            co_return json_error(503, "storage unavailable");
        }
        log::warn("webhook.dead_letter", {{"appid", a->appid}, {"reason", dead_reason}});
        co_return text(200, "success");
    }

    const auto id = wechat::identity(*message);
    std::string hash = identity_hash(a->id, id.key());
    const std::string hash_hex = hex(hash);
    const std::string spool_copy = spool_ ? xml : std::string();  // kept if the store fails

    // Plain mode: the signature does not cover the body, so bind each (timestamp, nonce,
    // signature) triple to the first message seen with it. The same round trip asks whether the
    // identity is already known committed (safe mode asks that alone).
    const auto seen_key = redis_key(*a, "seen", hash_hex);
    bool seen = false;
    if (!safe_mode) {
        std::vector<std::string> keys;
        keys.reserve(2);
        keys.push_back(redis_key(*a, "sig", *timestamp + ":" + *nonce + ":" + *signature));
        keys.push_back(seen_key);
        const auto ttl =
            std::chrono::duration_cast<std::chrono::milliseconds>(settings_.timestamp_window * 2);
        std::vector<std::string> args;
        args.reserve(2);
        args.push_back(hash_hex);
        args.push_back(std::to_string(ttl.count()));
        storage::redis_script script = check_script();
        auto checked = co_await redis_.eval(std::move(script), std::move(keys), std::move(args));
        if (checked && checked->type == storage::redis_reply::kind::array &&
            checked->elements.size() == 2) {
            if (checked->elements[0].integer == 0) {
                co_return refuse(401, a->appid, "signature already used for another message");
            }
            seen = checked->elements[1].integer != 0;
        } else {
            // Redis down: the signature and the timestamp window still hold; do not refuse
            // WeChat's messages for an outage of the replay cache.
            log::warn("webhook.replay_check_skipped",
                      {{"appid", a->appid},
                       {"reason", checked ? std::string("unexpected reply")
                                          : checked.error().message()}});
        }
    } else if (auto cached = co_await redis_.get(seen_key); cached && *cached) {
        seen = true;
    }
    if (seen) {
        log::debug("webhook.duplicate", {{"appid", a->appid}, {"source", "cache"}});
        co_return text(200, "success");
    }

    const std::string fan = message->from_user_name;
    const std::uint64_t token = new_insert_token();  // spooled with the message if the store fails
    auto stored =
        co_await store_and_hand_on(a, std::move(*message), std::move(xml), token, 0, true,
                                   std::move(hash));
    if (stored) {
        // Only now is the identity known committed: cache it for cheap answers to retries —
        // written in the background, batched with other requests' (seen_writer).
        if (seen_->add(a->clinic_id, seen_key)) {
            auto ex = co_await boost::asio::this_coro::executor;
            boost::asio::co_spawn(ex, flush_seen(seen_), boost::asio::detached);
        }
        if (*stored) {
            co_return reply_response(*a, fan, **stored, now_(), reply_key, *nonce);
        }
        co_return text(200, "success");
    }
    log::warn("webhook.store_failed", {{"appid", a->appid}, {"reason", stored.error().message()}});
    if (spool_) {
        // MySQL is away: keep the verified message on local disk (fsynced) and acknowledge it;
        // replay_spool_once moves it into MySQL, in order, when MySQL is back. The record keeps
        // this attempt's token: the store may have committed the row after all (a COMMIT whose
        // answer timed out), and then the replay must take the row over and hand it on.
        std::string record = a->appid + " " + std::to_string(token) + "\n" + spool_copy;
        auto kept = co_await spool_->append(std::move(record));
        if (kept) {
            log::info("webhook.spooled", {{"appid", a->appid}});
            co_return text(200, "success");
        }
        log::error("webhook.spool_failed", {{"appid", a->appid}});
    }
    co_return json_error(503, "storage unavailable");
}

awaitable<result<std::optional<passive_reply>>> webhook::store_and_hand_on(
    std::shared_ptr<const account> a, wechat::inbound_message message, std::string body_xml,
    std::uint64_t insert_token, std::uint64_t takes_over, bool can_reply, std::string hash) {
    if (hash.empty()) hash = identity_hash(a->id, wechat::identity(message).key());
    // g++ 12 destroys temporaries in a co_await expression twice: pass named values only.
    inbound_row row = to_row(*a, message, std::move(hash), std::move(body_xml));
    row.insert_token = insert_token;
    row.takes_over = takes_over;
    std::shared_ptr<routed_in_store> route;
    if (can_reply && takes_over == 0) route = co_await sink_.before_store(a, message);
    row.route = route;
    auto stored = co_await store_.store(std::move(row));
    if (!stored) co_return stored.error();
    std::optional<passive_reply> reply;
    if (stored->inserted) {
        stored_message handed{stored->id, a,     std::move(message), can_reply,
                              stored->fan, route, stored->routed};
        reply = co_await sink_.on_stored(std::move(handed));
        if (!can_reply) reply.reset();
    } else {
        log::debug("webhook.duplicate", {{"appid", a->appid}, {"source", "mysql"}});
    }
    co_return reply;
}

awaitable<result<std::size_t>> webhook::replay_spool_once() {
    if (!spool_) co_return std::size_t{0};
    auto segments = co_await spool_->seal();
    if (!segments) co_return segments.error();
    std::size_t replayed = 0;
    for (const auto& segment : *segments) {
        auto records = co_await spool_->read(segment);
        if (!records) co_return records.error();
        for (const auto& record : *records) {
            // "appid token\nxml" ("appid\nxml" from versions that did not keep the token).
            const auto nl = record.find('\n');
            std::string appid = record.substr(0, nl);
            std::string xml = nl == std::string::npos ? std::string() : record.substr(nl + 1);
            std::uint64_t spooled_token = 0;
            if (const auto space = appid.find(' '); space != std::string::npos) {
                const std::string digits = appid.substr(space + 1);
                appid.resize(space);
                const auto [end, ec] =
                    std::from_chars(digits.data(), digits.data() + digits.size(), spooled_token);
                if (ec != std::errc() || end != digits.data() + digits.size()) spooled_token = 0;
            }
            auto found = co_await accounts_.find(appid);
            if (!found) co_return found.error();
            auto parsed = wechat::parse_message(xml);
            if (!*found || !parsed) {
                // Verified and parsed before it was spooled: only a deleted account gets here.
                log::error("spool.record_dropped", {{"appid", appid}});
                continue;
            }
            // A segment is replayed whole; records already stored by an earlier, interrupted
            // replay are found by their identity and not handed on twice. A row the spooled
            // attempt committed without learning it is taken over (its token) and handed on here.
            auto stored = co_await store_and_hand_on(*found, std::move(*parsed), std::move(xml),
                                                     new_insert_token(), spooled_token, false,
                                                     std::string());
            if (!stored) co_return stored.error();
            ++replayed;
        }
        if (auto removed = co_await spool_->remove(segment); !removed) co_return removed.error();
        log::info("spool.segment_replayed",
                  {{"segment", segment.filename().string()},
                   {"records", static_cast<std::uint64_t>(records->size())}});
    }
    co_return replayed;
}

awaitable<void> webhook::replay_loop(std::chrono::milliseconds interval) {
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    while (!replay_stopped_) {
        auto r = co_await replay_spool_once();
        if (!r) log::debug("spool.replay_deferred", {{"reason", r.error().message()}});
        timer.expires_after(interval);
        co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
}

}  // namespace scrm::gateway

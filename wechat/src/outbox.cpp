// The outbox worker: claim (two statements: pick each fan's oldest due row, then take them with a
// conditional UPDATE carrying a random claim token, so two instances never take one row), send
// the claimed rows in parallel, record each outcome with an UPDATE conditioned on the same token.
#include "scrm/wechat/outbox.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <mutex>

#include "scrm/common/log.hpp"
#include "scrm/storage/mysql.hpp"
#include "scrm/storage/redis.hpp"
#include "scrm/wechat/outbound.hpp"

namespace scrm::wechat {

namespace asio = boost::asio;
using asio::awaitable;
using storage::sql_value;

const char* to_string(outbox_state s) noexcept {
    switch (s) {
        case outbox_state::queued: return "queued";
        case outbox_state::sending: return "sending";
        case outbox_state::sent: return "sent";
        case outbox_state::failed: return "failed";
        case outbox_state::uncertain: return "uncertain";
    }
    return "?";
}

std::optional<outbox_state> parse_outbox_state(std::string_view text) noexcept {
    for (auto s : {outbox_state::queued, outbox_state::sending, outbox_state::sent,
                   outbox_state::failed, outbox_state::uncertain}) {
        if (text == to_string(s)) return s;
    }
    return std::nullopt;
}

const char* readable_reason(api_error e) noexcept {
    switch (e) {
        case api_error::ok: return "";
        case api_error::window_closed: return "粉丝48小时内没有互动，客服消息窗口已关闭";
        case api_error::quota_used: return "本次互动后可发送的客服消息条数已用完";
        case api_error::not_following: return "粉丝已取消关注公众号";
        case api_error::invalid_openid: return "粉丝的OpenID无效";
        case api_error::ip_not_allowlisted: return "服务器IP不在公众号的IP白名单中";
        case api_error::unauthorized: return "公众号没有该接口的权限";
        case api_error::daily_quota: return "接口今日调用次数已达上限";
        case api_error::minute_quota: return "接口调用过于频繁";
        case api_error::system_busy: return "微信系统繁忙";
        case api_error::token_invalid: return "无法取得有效的access_token";
        case api_error::token_refresh_throttled: return "access_token刷新过于频繁";
        case api_error::bad_credentials: return "公众号AppID或AppSecret错误";
        case api_error::rejected_content: return "消息内容被微信拒绝（为空、过长或格式不符）";
        case api_error::transport: return "无法连接微信服务器";
        case api_error::http_status: return "微信服务器返回了异常的HTTP状态";
        case api_error::bad_response: return "微信服务器的应答无法识别";
        case api_error::storage: return "无法读取access_token缓存";
        case api_error::invalid_request: return "请求不符合微信的要求，未发送";
        case api_error::other: return "微信返回了错误";
    }
    return "微信返回了错误";
}

namespace {

constexpr const char* uncertain_sent_reason = "发送结果未知：请求已发出但没有收到微信的应答，请确认后决定是否重发";
constexpr const char* uncertain_orphan_reason = "发送结果未知：发送过程中服务中断，请确认后决定是否重发";

// Failures known to have happened before WeChat acted on the request, and that may pass.
bool retryable(api_error e) {
    switch (e) {
        case api_error::system_busy:
        case api_error::minute_quota:
        case api_error::token_invalid:
        case api_error::token_refresh_throttled:
        case api_error::transport:
        case api_error::http_status:
        case api_error::storage: return true;
        default: return false;
    }
}

}  // namespace

attempt_verdict judge_attempt(const api_result<std::string>& outcome, unsigned attempts,
                              const outbox_options& opts) {
    attempt_verdict v;
    if (outcome.has_value()) return v;
    const api_failure& f = outcome.error();
    v.errcode = f.errcode;
    if (f.maybe_delivered) {
        v.next = outbox_state::uncertain;
        v.reason = uncertain_sent_reason;
        return v;
    }
    v.reason = readable_reason(f.kind);
    if (f.kind == api_error::other && f.errcode != 0) {
        v.reason += "（错误码 " + std::to_string(f.errcode) + "）";
    }
    if (!retryable(f.kind) || attempts >= opts.max_attempts) {
        v.next = outbox_state::failed;
        if (retryable(f.kind)) v.reason += "，已重试" + std::to_string(attempts) + "次";
        return v;
    }
    v.next = outbox_state::queued;
    const unsigned shift = std::min(attempts - 1, 20u);
    const std::chrono::milliseconds wait = opts.backoff_base * (std::int64_t{1} << shift);
    v.retry_after = std::min(opts.backoff_cap, wait);
    return v;
}

namespace {

using done_channel = asio::experimental::concurrent_channel<void(boost::system::error_code)>;

struct claimed_row {
    std::uint64_t id = 0, account_id = 0, clinic_id = 0, token = 0;
    std::string appid, openid, kind, api_path, body, origin;
    unsigned attempts = 0;
};

// WeChat's msgid from a template/send answer, if any.
std::optional<std::uint64_t> answer_msgid(const std::string& answer) {
    rapidjson::Document d;
    d.Parse(answer.data(), answer.size());
    if (d.HasParseError() || !d.IsObject()) return std::nullopt;
    auto it = d.FindMember("msgid");
    if (it == d.MemberEnd() || !it->value.IsUint64()) return std::nullopt;
    return it->value.GetUint64();
}

std::string state_event(std::uint64_t id, std::uint64_t account_id, const std::string& openid,
                        outbox_state state, int errcode, const std::string& reason) {
    rapidjson::StringBuffer out;
    rapidjson::Writer<rapidjson::StringBuffer> w(out);
    w.StartObject();
    w.Key("type");
    w.String("outbox");
    w.Key("id");
    w.Uint64(id);
    w.Key("account_id");
    w.Uint64(account_id);
    w.Key("openid");
    w.String(openid.c_str(), static_cast<rapidjson::SizeType>(openid.size()));
    w.Key("state");
    w.String(to_string(state));
    if (errcode != 0) {
        w.Key("errcode");
        w.Int(errcode);
    }
    if (!reason.empty()) {
        w.Key("reason");
        w.String(reason.c_str(), static_cast<rapidjson::SizeType>(reason.size()));
    }
    w.EndObject();
    return out.GetString();
}

constexpr const char* entry_columns =
    "id, account_id, openid, kind, origin, state, attempts, last_errcode, last_error, wx_msgid";

outbox_entry to_entry(const std::vector<std::optional<std::string>>& r) {
    outbox_entry e;
    e.id = storage::sql_u64(r[0]);
    e.account_id = storage::sql_u64(r[1]);
    e.openid = r[2].value_or("");
    e.kind = r[3].value_or("");
    e.origin = r[4].value_or("");
    e.state = parse_outbox_state(r[5].value_or("")).value_or(outbox_state::queued);
    e.attempts = static_cast<unsigned>(storage::sql_u64(r[6]));
    if (r[7]) {
        int code = 0;
        std::from_chars(r[7]->data(), r[7]->data() + r[7]->size(), code);
        e.last_errcode = code;
    }
    e.last_error = r[8].value_or("");
    if (r[9]) e.wx_msgid = storage::sql_u64(r[9]);
    return e;
}

// Picks each fan's oldest row if it is due, then takes the picked rows that are still queued.
result<std::vector<claimed_row>> claim(storage::mysql_session& db, std::size_t batch,
                                       const std::vector<std::uint64_t>& accounts) {
    auto picked = db.query(
        "SELECT o.id FROM outbox o WHERE o.state = 'queued' AND o.next_attempt_at <= NOW(3)" +
            storage::and_in("o.account_id", accounts) +
            " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.account_id = o.account_id "
            "AND p.openid = o.openid AND p.id < o.id AND p.state IN ('queued', 'sending')) "
            "ORDER BY o.id LIMIT ?",
        {static_cast<std::uint64_t>(batch)});
    if (!picked) return picked.error();
    if (picked->rows.empty()) return std::vector<claimed_row>{};

    const std::uint64_t token = storage::random_row_token();
    std::string take =
        "UPDATE outbox SET state = 'sending', claim_token = ?, claimed_at = NOW(3), "
        "attempts = attempts + 1 WHERE state = 'queued' AND id IN (";
    std::vector<sql_value> params{token};
    for (std::size_t i = 0; i < picked->rows.size(); ++i) {
        take += i ? ",?" : "?";
        params.emplace_back(storage::sql_u64(picked->rows[i][0]));
    }
    take += ")";
    auto taken = db.execute(take, params);
    if (!taken) return taken.error();
    if (*taken == 0) return std::vector<claimed_row>{};

    auto rows = db.query(
        "SELECT o.id, o.account_id, a.appid, o.openid, o.kind, o.api_path, o.body, o.attempts, "
        "a.clinic_id, o.origin FROM outbox o JOIN official_accounts a ON a.id = o.account_id "
        "WHERE o.claim_token = ? AND o.state = 'sending' ORDER BY o.id",
        {token});
    if (!rows) return rows.error();
    std::vector<claimed_row> out;
    for (auto& r : rows->rows) {
        claimed_row c;
        c.id = storage::sql_u64(r[0]);
        c.account_id = storage::sql_u64(r[1]);
        c.token = token;
        c.appid = r[2].value_or("");
        c.openid = r[3].value_or("");
        c.kind = r[4].value_or("");
        c.api_path = r[5].value_or("");
        c.body = r[6].value_or("");
        c.attempts = static_cast<unsigned>(storage::sql_u64(r[7]));
        c.clinic_id = storage::sql_u64(r[8]);
        c.origin = r[9].value_or("");
        out.push_back(std::move(c));
    }
    return out;
}

struct orphan {
    std::uint64_t id = 0, account_id = 0, clinic_id = 0;
    std::string openid, kind, origin;
};

// Rows left 'sending' longer than the lease: their worker is gone, the send may have happened.
result<std::vector<orphan>> mark_orphans(storage::mysql_session& db,
                                         std::chrono::milliseconds lease,
                                         const std::vector<std::uint64_t>& accounts) {
    const auto lease_us = static_cast<std::int64_t>(lease.count()) * 1000;
    auto rows = db.query(
        "SELECT o.id, o.account_id, o.openid, o.claim_token, a.clinic_id, o.kind, o.origin "
        "FROM outbox o JOIN official_accounts a ON a.id = o.account_id "
        "WHERE o.state = 'sending' AND o.claimed_at < TIMESTAMPADD(MICROSECOND, ?, NOW(3))" +
            storage::and_in("o.account_id", accounts) + " ORDER BY o.id LIMIT 100",
        {-lease_us});
    if (!rows) return rows.error();
    std::vector<orphan> out;
    for (const auto& r : rows->rows) {
        auto n = db.execute(
            "UPDATE outbox SET state = 'uncertain', claim_token = NULL, last_errcode = NULL, "
            "last_error = ? WHERE id = ? AND state = 'sending' AND claim_token <=> ?",
            {std::string(uncertain_orphan_reason), storage::sql_u64(r[0]),
             r[3] ? sql_value(storage::sql_u64(r[3])) : sql_value(std::monostate{})});
        if (!n) return n.error();
        if (*n == 1) {
            out.push_back({storage::sql_u64(r[0]), storage::sql_u64(r[1]), storage::sql_u64(r[4]),
                           r[2].value_or(""), r[5].value_or(""), r[6].value_or("")});
        }
    }
    return out;
}

}  // namespace

struct outbox::impl : std::enable_shared_from_this<impl> {
    impl(asio::any_io_executor e, storage::mysql_pool& m,
         std::shared_ptr<storage::redis_client> r, client_lookup c, outbox_options o)
        : strand(asio::make_strand(e)),
          wake(strand),
          mysql(m),
          redis(std::move(r)),
          clients(std::move(c)),
          opts(std::move(o)) {}

    asio::strand<asio::any_io_executor> strand;
    asio::steady_timer wake;
    storage::mysql_pool& mysql;
    std::shared_ptr<storage::redis_client> redis;
    client_lookup clients;
    outbox_options opts;

    std::atomic<bool> stopping{false};
    std::atomic<bool> woken{false};
    std::atomic<bool> running{false};
    std::chrono::steady_clock::time_point last_sweep{};
    mutable std::mutex mutex;
    outbox_stats counters;

    void notify() {
        woken = true;
        asio::post(strand, [self = shared_from_this()] { self->wake.cancel(); });
    }

    void count(outbox_state s) {
        std::lock_guard lock(mutex);
        switch (s) {
            case outbox_state::sent: ++counters.sent; break;
            case outbox_state::failed: ++counters.failed; break;
            case outbox_state::uncertain: ++counters.uncertain; break;
            case outbox_state::queued: ++counters.retried; break;
            case outbox_state::sending: break;
        }
    }

    // The worker's changes: PUBLISHed, then told to the hook (the console push).
    awaitable<void> changed(delivery_change c) {
        co_await publish(c.id, c.account_id, c.openid, c.state, c.errcode, c.reason);
        if (opts.on_change) co_await opts.on_change(std::move(c));
    }

    awaitable<void> publish(std::uint64_t id, std::uint64_t account_id, const std::string& openid,
                            outbox_state state, int errcode, const std::string& reason) {
        if (!redis) co_return;
        std::string channel = opts.channel_prefix + std::to_string(account_id);
        std::string event = state_event(id, account_id, openid, state, errcode, reason);
        auto r = co_await redis->publish(std::move(channel), std::move(event));
        if (!r) {
            log::warn("outbox.publish_failed",
                      {{"id", id}, {"state", to_string(state)}, {"reason", r.error().message()}});
        }
    }

    // Records the outcome; retried a few times because a row left 'sending' would turn uncertain.
    awaitable<void> finish(const claimed_row& row, const attempt_verdict& v,
                           std::optional<std::uint64_t> msgid) {
        const auto retry_us = static_cast<std::int64_t>(v.retry_after.count()) * 1000;
        auto fn = [&](storage::mysql_session& db) {
            return db.execute(
                "UPDATE outbox SET state = ?, claim_token = NULL, "
                "next_attempt_at = TIMESTAMPADD(MICROSECOND, ?, NOW(3)), last_errcode = ?, "
                "last_error = ?, wx_msgid = COALESCE(?, wx_msgid), "
                "sent_at = IF(? = 'sent', NOW(3), sent_at) "
                "WHERE id = ? AND claim_token = ?",
                {std::string(to_string(v.next)), retry_us,
                 v.errcode ? sql_value(static_cast<std::int64_t>(v.errcode))
                           : sql_value(std::monostate{}),
                 v.reason.empty() ? sql_value(std::monostate{}) : sql_value(v.reason),
                 msgid ? sql_value(*msgid) : sql_value(std::monostate{}),
                 std::string(to_string(v.next)), row.id, row.token});
        };
        asio::steady_timer pause(co_await asio::this_coro::executor);
        for (int attempt = 0;; ++attempt) {
            auto r = co_await mysql.run(fn);
            if (r) break;
            if (attempt == 4) {
                log::error("outbox.record_failed",
                           {{"id", row.id}, {"state", to_string(v.next)},
                            {"reason", r.error().message()}});
                co_return;
            }
            pause.expires_after(std::chrono::milliseconds(200 << attempt));
            co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        count(v.next);
        log::info("outbox.attempt", {{"id", row.id},
                                     {"account_id", row.account_id},
                                     {"kind", row.kind},
                                     {"attempt", row.attempts},
                                     {"state", to_string(v.next)},
                                     {"errcode", v.errcode}});
        delivery_change change{row.id,   row.account_id, row.clinic_id, row.openid, row.kind,
                               row.origin, v.next,         v.errcode,     v.reason};
        co_await changed(std::move(change));
    }

    // An image row: upload the file, then send the message naming it. An upload that failed
    // reached no fan whatever happened on the wire, so it is never "maybe delivered".
    static awaitable<api_result<std::string>> send_image(std::shared_ptr<client> c,
                                                         std::string openid, std::string bytes) {
        auto media = co_await c->upload_image(std::move(bytes), "image");
        if (!media) {
            api_failure f = media.error();
            if (f.maybe_delivered) {
                f.maybe_delivered = false;
                if (f.kind == api_error::bad_response) f.kind = api_error::transport;
            }
            co_return f;
        }
        std::string body = custom_image_body(openid, *media);
        co_return co_await c->post_json(std::string(custom_send_path), std::move(body));
    }

    awaitable<void> send(claimed_row row) {
        attempt_verdict v;
        std::optional<std::uint64_t> msgid;
        auto c = co_await clients(row.appid);
        if (!c) {
            api_failure f;
            if (c.error() == errc::not_found) {
                v.next = outbox_state::failed;
                v.reason = "公众号不存在或已删除";
            } else {
                f.kind = api_error::storage;
                f.errmsg = "account lookup failed";
                api_result<std::string> failed(f);
                v = judge_attempt(failed, row.attempts, opts);
            }
        } else {
            api_result<std::string> answer{api_failure{}};
            if (row.api_path == media_upload_path) {
                answer = co_await send_image(*c, row.openid, std::move(row.body));
            } else {
                answer = co_await (*c)->post_json(row.api_path, row.body);
            }
            v = judge_attempt(answer, row.attempts, opts);
            if (answer) msgid = answer_msgid(*answer);
        }
        co_await finish(row, v, msgid);
    }

    awaitable<result<std::size_t>> cycle() {
        const auto now = std::chrono::steady_clock::now();
        const auto sweep_every = std::max(opts.lease / 4, std::chrono::milliseconds(100));
        if (now - last_sweep >= sweep_every) {
            last_sweep = now;
            auto sweep = [this](storage::mysql_session& db) {
                return mark_orphans(db, opts.lease, opts.accounts);
            };
            auto orphans = co_await mysql.run(sweep);
            if (!orphans) co_return orphans.error();
            for (const auto& o : *orphans) {
                {
                    std::lock_guard lock(mutex);
                    ++counters.orphans;
                    ++counters.uncertain;
                }
                log::warn("outbox.orphan_uncertain", {{"id", o.id}, {"account_id", o.account_id}});
                delivery_change change{o.id,     o.account_id, o.clinic_id,
                                       o.openid, o.kind,       o.origin,
                                       outbox_state::uncertain, 0, uncertain_orphan_reason};
                co_await changed(std::move(change));
            }
        }

        const std::size_t batch = std::max<std::size_t>(1, opts.batch);
        auto take = [this, batch](storage::mysql_session& db) {
            return claim(db, batch, opts.accounts);
        };
        auto rows = co_await mysql.run(take);
        if (!rows) co_return rows.error();
        const std::size_t n = rows->size();
        if (n == 0) co_return std::size_t{0};

        // One coroutine per row (at most one row per fan, so order per fan holds); wait for all.
        auto ex = co_await asio::this_coro::executor;
        auto done = std::make_shared<done_channel>(ex, n);
        for (auto& row : *rows) {
            auto self = shared_from_this();
            auto one = [](std::shared_ptr<impl> s, claimed_row r) -> awaitable<void> {
                co_await s->send(std::move(r));
            };
            asio::co_spawn(ex, one(self, std::move(row)),
                           [done](std::exception_ptr e) {
                               if (e) log::error("outbox.send_threw");
                               done->try_send(boost::system::error_code{});
                           });
        }
        for (std::size_t i = 0; i < n; ++i) {
            co_await done->async_receive(asio::as_tuple(asio::use_awaitable));
        }
        co_return n;
    }

    awaitable<void> loop() {
        running = true;
        while (!stopping) {
            auto n = co_await cycle();
            if (!n) {
                log::warn("outbox.cycle_failed", {{"reason", n.error().message()}});
            } else if (*n > 0) {
                continue;  // more may be due
            }
            if (woken.exchange(false) && n) continue;
            if (stopping) break;
            wake.expires_after(opts.poll_interval);
            co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        running = false;
    }
};

outbox::outbox(asio::any_io_executor ex, storage::mysql_pool& mysql,
               std::shared_ptr<storage::redis_client> redis, client_lookup clients,
               outbox_options opts)
    : impl_(std::make_shared<impl>(std::move(ex), mysql, std::move(redis), std::move(clients),
                                   std::move(opts))) {}

outbox::~outbox() {
    impl_->stopping = true;
    impl_->notify();
}

outbound_message outbound_image(std::uint64_t account_id, std::string openid,
                                std::string bytes, std::string origin) {
    outbound_message m;
    m.account_id = account_id;
    m.openid = std::move(openid);
    m.kind = "image";
    m.api_path = std::string(media_upload_path);
    m.body = std::move(bytes);
    m.origin = std::move(origin);
    return m;
}

result<std::uint64_t> enqueue_on(storage::mysql_session& db, const outbound_message& m) {
    if (m.account_id == 0 || m.openid.empty() || m.openid.size() > 128 || m.kind.empty() ||
        m.kind.size() > 32 || m.api_path.rfind("/cgi-bin/", 0) != 0 || m.api_path.size() > 255 ||
        m.body.empty() || m.origin.size() > 64) {
        return make_error_code(errc::bad_input);
    }
    auto r = db.query(
        "INSERT INTO outbox (account_id, openid, kind, api_path, body, origin) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        {m.account_id, m.openid, m.kind, m.api_path, m.body, m.origin});
    if (!r) return r.error();
    return r->last_insert_id;
}

void outbox::wake() {
    impl_->notify();
}

awaitable<result<std::uint64_t>> outbox::enqueue(outbound_message m) {
    auto fn = [&m](storage::mysql_session& db) { return enqueue_on(db, m); };
    auto r = co_await impl_->mysql.run(fn);
    if (!r) co_return r.error();
    const std::uint64_t id = *r;
    impl_->notify();
    co_await impl_->publish(id, m.account_id, m.openid, outbox_state::queued, 0, {});
    co_return id;
}

awaitable<result<outbox_entry>> outbox::get(std::uint64_t id) {
    auto fn = [id](storage::mysql_session& db) {
        return db.query(std::string("SELECT ") + entry_columns + " FROM outbox WHERE id = ?",
                        {id});
    };
    auto r = co_await impl_->mysql.run(fn);
    if (!r) co_return r.error();
    if (r->rows.empty()) co_return errc::not_found;
    co_return to_entry(r->rows.front());
}

awaitable<result<bool>> outbox::requeue(std::uint64_t id) {
    auto fn = [id](storage::mysql_session& db) {
        return db.execute(
            "UPDATE outbox SET state = 'queued', attempts = 0, next_attempt_at = NOW(3), "
            "claim_token = NULL, last_errcode = NULL, last_error = NULL "
            "WHERE id = ? AND state IN ('uncertain', 'failed')",
            {id});
    };
    auto r = co_await impl_->mysql.run(fn);
    // (result<bool> would take an error_code as a bool: say which one is meant.)
    if (!r) co_return result<bool>(boost::system::in_place_error, r.error());
    if (*r == 0) co_return false;
    log::info("outbox.requeued", {{"id", id}});
    impl_->notify();
    co_return true;
}

awaitable<result<std::size_t>> outbox::run_once() {
    co_return co_await impl_->cycle();
}

namespace {
awaitable<void> run_loop(std::shared_ptr<outbox::impl> self) {
    co_await self->loop();
}
}  // namespace

void outbox::start() {
    asio::co_spawn(impl_->strand, run_loop(impl_), asio::detached);
}

awaitable<void> outbox::stop(std::chrono::milliseconds limit) {
    impl_->stopping = true;
    impl_->notify();
    asio::steady_timer t(co_await asio::this_coro::executor);
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (impl_->running && std::chrono::steady_clock::now() < deadline) {
        t.expires_after(std::chrono::milliseconds(20));
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

outbox_stats outbox::stats() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->counters;
}

}  // namespace scrm::wechat

// The group-commit loop. Requests queue their rows under a mutex and wait on a one-shot channel;
// the loop (one coroutine on a strand) takes everything queued, commits it on a MySQL worker, and
// answers each request. Which request inserted a row is decided by the attempt's token stored with
// the row (column insert_batch): the row carries a request's token only if that request created
// it, or took it over from an attempt that failed without learning its outcome.
#include "scrm/gateway/message_store.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <map>
#include <mutex>

#include "scrm/common/log.hpp"
#include "scrm/storage/mysql.hpp"

namespace scrm::gateway {

namespace asio = boost::asio;
using asio::awaitable;
using done_channel =
    asio::experimental::concurrent_channel<void(boost::system::error_code, stored_row)>;

std::string identity_hash(std::uint64_t account_id, std::string_view identity_key) {
    // Fetched once (EVP_sha256() in EVP_Digest looks the implementation up on every call) and one
    // digest context per thread: this runs for every inbound message.
    static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(
        EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    char prefix[24];
    char* end = std::to_chars(prefix, prefix + sizeof prefix - 1, account_id).ptr;
    *end++ = '|';
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (sha256 && ctx && EVP_DigestInit_ex2(ctx.get(), sha256, nullptr) == 1 &&
        EVP_DigestUpdate(ctx.get(), prefix, static_cast<std::size_t>(end - prefix)) == 1 &&
        EVP_DigestUpdate(ctx.get(), identity_key.data(), identity_key.size()) == 1 &&
        EVP_DigestFinal_ex(ctx.get(), digest, &size) == 1) {
        return std::string(reinterpret_cast<const char*>(digest), size);
    }
    const std::string input = std::string(prefix, end) + std::string(identity_key);
    EVP_Digest(input.data(), input.size(), digest, &size, EVP_sha256(), nullptr);
    return std::string(reinterpret_cast<const char*>(digest), size);
}

std::uint64_t new_insert_token() {
    return storage::random_row_token();
}

namespace {

struct job {
    inbound_row row;
    std::shared_ptr<done_channel> done;
};

storage::sql_value opt(const std::optional<std::string>& v) {
    return v ? storage::sql_value(*v) : storage::sql_value(std::monostate{});
}

// Inline SQL literals (storage::append_sql_literal), without copying strings into a sql_value.
void lit(std::string& out, std::string_view bytes) {
    storage::append_sql_string(out, bytes);
}
void lit(std::string& out, const std::optional<std::string>& v) {
    if (v) {
        storage::append_sql_string(out, *v);
    } else {
        out += "NULL";
    }
}
void lit(std::string& out, std::uint64_t v) {
    storage::append_sql_literal(out, v);
}
void lit(std::string& out, std::int64_t v) {
    storage::append_sql_literal(out, v);
}
void lit(std::string& out, const std::optional<std::uint64_t>& v) {
    if (v) {
        storage::append_sql_literal(out, *v);
    } else {
        out += "NULL";
    }
}

// Upserts each distinct fan, in a fixed order so that two instances' batches lock fans alike.
result<void> upsert_fans(storage::mysql_session& db, const std::vector<job>& batch) {
    std::map<std::pair<std::uint64_t, std::string>, const inbound_row*> fans;
    for (const auto& j : batch) {
        auto& slot = fans[{j.row.account_id, j.row.openid}];
        // A subscribe or unsubscribe outranks a plain message for the fan row.
        if (!slot || j.row.fan != fan_change::none) slot = &j.row;
    }
    // Plain messages (the bulk) update their fans with one multi-row statement; follows and
    // unfollows, which are rare, one by one. The multi-row statement's text changes with the
    // batch, so it carries its values inline (one round trip, nothing prepared).
    std::string plain_sql;
    for (const auto& [key, row] : fans) {
        result<std::uint64_t> r = std::uint64_t{0};
        switch (row->fan) {
            case fan_change::subscribe:
                r = db.execute(
                    "INSERT INTO fans (account_id, openid, subscribed, subscribe_scene, "
                    "last_message_at) VALUES (?, ?, 1, ?, CURRENT_TIMESTAMP(3)) "
                    "ON DUPLICATE KEY UPDATE subscribed = 1, unsubscribed_at = NULL, "
                    "subscribe_scene = COALESCE(VALUES(subscribe_scene), subscribe_scene), "
                    "last_message_at = VALUES(last_message_at)",
                    {key.first, key.second, opt(row->scene)});
                break;
            case fan_change::unsubscribe:
                r = db.execute(
                    "INSERT INTO fans (account_id, openid, subscribed, unsubscribed_at) "
                    "VALUES (?, ?, 0, CURRENT_TIMESTAMP(3)) ON DUPLICATE KEY UPDATE "
                    "subscribed = 0, unsubscribed_at = VALUES(unsubscribed_at)",
                    {key.first, key.second});
                break;
            case fan_change::none:
                plain_sql += plain_sql.empty()
                                 ? "INSERT INTO fans (account_id, openid, subscribe_scene, "
                                   "last_message_at) VALUES ("
                                 : ",(";
                lit(plain_sql, key.first);
                plain_sql += ',';
                lit(plain_sql, std::string_view(key.second));
                plain_sql += ',';
                lit(plain_sql, row->scene);
                plain_sql += ",CURRENT_TIMESTAMP(3))";
                break;
        }
        if (!r) return r.error();
    }
    if (!plain_sql.empty()) {
        plain_sql +=
            " ON DUPLICATE KEY UPDATE "
            "subscribe_scene = COALESCE(VALUES(subscribe_scene), subscribe_scene), "
            "last_message_at = VALUES(last_message_at)";
        if (auto r = db.query_inline(plain_sql); !r) return r.error();
    }
    return {};
}

// One transaction for the whole batch; returns each job's outcome in batch order.
result<std::vector<stored_row>> commit_batch(storage::mysql_session& db,
                                             const std::vector<job>& batch) {
    if (auto r = db.begin(); !r) return r.error();
    if (auto r = upsert_fans(db, batch); !r) return r.error();
    // Retries of attempts whose outcome is unknown (rare: spool replays) take their rows over.
    for (const auto& j : batch) {
        if (j.row.takes_over == 0) continue;
        auto r = db.execute(
            "UPDATE inbound_messages SET insert_batch = ? WHERE identity_hash = ? AND "
            "insert_batch = ?",
            {j.row.insert_token, j.row.identity_hash, j.row.takes_over});
        if (!r) return r.error();
    }

    // The batch's statements change text with every batch: values go inline (one round trip
    // each, nothing prepared; strings as hex literals, so nothing can be injected).
    std::string insert;
    insert.reserve(256 + batch.size() * 1024);
    insert =
        "INSERT INTO inbound_messages (account_id, identity_hash, openid, msg_type, event, "
        "event_key, wx_msg_id, create_time, content, body_xml, insert_batch) VALUES ";
    std::string select;
    select.reserve(128 + batch.size() * 70);
    select =
        "SELECT identity_hash, id, insert_batch FROM inbound_messages WHERE identity_hash IN (";
    for (std::size_t i = 0; i < batch.size(); ++i) {
        const inbound_row& r = batch[i].row;
        insert += i ? ",(" : "(";
        lit(insert, r.account_id);
        insert += ',';
        lit(insert, std::string_view(r.identity_hash));
        insert += ',';
        lit(insert, std::string_view(r.openid));
        insert += ',';
        lit(insert, std::string_view(r.msg_type));
        insert += ',';
        lit(insert, r.event);
        insert += ',';
        lit(insert, r.event_key);
        insert += ',';
        lit(insert, r.wx_msg_id);
        insert += ',';
        lit(insert, r.create_time);
        insert += ',';
        lit(insert, r.content);
        insert += ',';
        lit(insert, std::string_view(r.body_xml));
        insert += ',';
        lit(insert, r.insert_token);
        insert += ')';
        if (i) select += ',';
        lit(select, std::string_view(r.identity_hash));
    }
    insert += " ON DUPLICATE KEY UPDATE id = id";
    select += ")";
    if (auto r = db.query_inline(insert); !r) return r.error();
    auto rows = db.query_inline(select);
    if (!rows) return rows.error();

    std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> by_hash;  // hash -> id, token
    for (const auto& row : rows->rows) {
        by_hash[*row[0]] = {std::stoull(*row[1]), std::stoull(*row[2])};
    }
    // Media to fetch (media_fetcher.hpp) is recorded with its message, in the same transaction.
    std::string media;
    std::vector<storage::sql_value> media_params;
    for (const auto& j : batch) {
        const inbound_row& r = j.row;
        if (!r.media_id || r.media_id->empty() || r.media_id->size() > 255) continue;
        auto it = by_hash.find(r.identity_hash);
        if (it == by_hash.end()) return errc::protocol_error;
        media += media.empty() ? "(?,?,?,?,FROM_UNIXTIME(?))" : ",(?,?,?,?,FROM_UNIXTIME(?))";
        // WeChat keeps a message's media for 3 days after it was sent.
        media_params.insert(media_params.end(), {it->second.first, r.account_id, *r.media_id,
                                                 r.msg_type, r.create_time + 3 * 24 * 3600});
    }
    if (!media.empty()) {
        auto r = db.execute(
            "INSERT INTO inbound_media (message_id, account_id, media_id, kind, expires_at) "
            "VALUES " + media + " ON DUPLICATE KEY UPDATE message_id = message_id",
            media_params);
        if (!r) return r.error();
    }
    if (auto r = db.commit(); !r) return r.error();
    std::vector<stored_row> out;
    out.reserve(batch.size());
    for (const auto& j : batch) {
        auto it = by_hash.find(j.row.identity_hash);
        if (it == by_hash.end()) return errc::protocol_error;  // cannot happen after a commit
        out.push_back({it->second.first, it->second.second == j.row.insert_token});
        // Tokens are unique per attempt; should a caller reuse one, still one inserter only.
        if (out.back().inserted) it->second.second = 0;
    }
    return out;
}

}  // namespace

struct message_store::impl : std::enable_shared_from_this<impl> {
    impl(asio::any_io_executor e, storage::mysql_pool& m, std::size_t max)
        : strand(asio::make_strand(e)), wake(strand), mysql(m), max_batch(max) {}

    asio::strand<asio::any_io_executor> strand;
    asio::steady_timer wake;
    storage::mysql_pool& mysql;
    std::size_t max_batch;
    static constexpr std::size_t max_batch_bytes = 2 * 1024 * 1024;
    mutable std::mutex mutex;
    std::deque<job> pending;
    bool stopping = false;
    std::uint64_t batches = 0, rows = 0;

    void notify() {
        asio::post(strand, [self = shared_from_this()] { self->wake.cancel(); });
    }

    awaitable<void> run() {
        for (;;) {
            std::vector<job> batch;
            {
                std::lock_guard lock(mutex);
                // The batch's statements carry the values inline, hex-encoded: keep them well
                // under max_allowed_packet (16 MiB by default).
                std::size_t bytes = 0;
                while (!pending.empty() && batch.size() < max_batch &&
                       (batch.empty() || bytes < max_batch_bytes)) {
                    const inbound_row& r = pending.front().row;
                    bytes += r.body_xml.size() + (r.content ? r.content->size() : 0) +
                             (r.event_key ? r.event_key->size() : 0) + r.openid.size() + 128;
                    batch.push_back(std::move(pending.front()));
                    pending.pop_front();
                }
                if (batch.empty() && stopping) break;
            }
            if (batch.empty()) {
                wake.expires_at(asio::steady_timer::time_point::max());
                co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
                continue;
            }
            auto fn = [&batch](storage::mysql_session& db) { return commit_batch(db, batch); };
            auto outcome = co_await mysql.run(fn);
            if (!outcome) {
                log::warn("message_store.batch_failed",
                          {{"rows", static_cast<std::uint64_t>(batch.size())},
                           {"reason", outcome.error().message()}});
            }
            {
                std::lock_guard lock(mutex);
                ++batches;
                if (outcome) rows += batch.size();
            }
            for (std::size_t i = 0; i < batch.size(); ++i) {
                if (outcome) {
                    batch[i].done->try_send(boost::system::error_code{}, (*outcome)[i]);
                } else {
                    batch[i].done->try_send(outcome.error(), stored_row{});
                }
            }
        }
    }
};

namespace {
awaitable<void> run_loop(std::shared_ptr<message_store::impl> self) {
    co_await self->run();
}
}  // namespace

message_store::message_store(asio::any_io_executor ex, storage::mysql_pool& mysql,
                             std::size_t max_batch)
    : impl_(std::make_shared<impl>(std::move(ex), mysql, max_batch)) {}

message_store::~message_store() {
    stop();
}

void message_store::start() {
    asio::co_spawn(impl_->strand, run_loop(impl_), asio::detached);
}

void message_store::stop() {
    std::deque<job> left;
    {
        std::lock_guard lock(impl_->mutex);
        impl_->stopping = true;
        left.swap(impl_->pending);
    }
    for (auto& j : left) j.done->try_send(make_error_code(errc::shutting_down), stored_row{});
    impl_->notify();
}

awaitable<result<stored_row>> message_store::store(inbound_row row) {
    auto done = std::make_shared<done_channel>(co_await asio::this_coro::executor, 1);
    if (row.insert_token == 0) row.insert_token = new_insert_token();
    {
        std::lock_guard lock(impl_->mutex);
        if (impl_->stopping) co_return errc::shutting_down;
        impl_->pending.push_back(job{std::move(row), done});
    }
    impl_->notify();
    auto [ec, stored] = co_await done->async_receive(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return ec;
    co_return stored;
}

message_store::stats_t message_store::stats() const {
    std::lock_guard lock(impl_->mutex);
    return {impl_->batches, impl_->rows, impl_->pending.size()};
}

}  // namespace scrm::gateway

// See retention.hpp. SQL runs on the MySQL pool's workers; removing media files too (they are
// small, and the pool's threads are not the I/O threads).
#include "scrm/gateway/retention.hpp"
#include "scrm/gateway/voice_transcoder.hpp"

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "scrm/common/log.hpp"
#include "scrm/storage/mysql.hpp"

namespace scrm::gateway {

namespace asio = boost::asio;
using asio::awaitable;
using storage::mysql_session;
using storage::sql_u64;
using storage::sql_value;

struct retention_worker::impl {
    impl(asio::any_io_executor e, storage::mysql_pool& m, retention_options o)
        : ex(asio::make_strand(e)), mysql(m), opts(std::move(o)), timer(ex) {}
    asio::any_io_executor ex;  // a strand: the loop and stop() touch the timer
    storage::mysql_pool& mysql;
    retention_options opts;
    asio::steady_timer timer;
    std::atomic<bool> stopping{false};
    std::atomic<bool> running{false};
};

namespace {

struct due_fan {
    std::uint64_t id = 0, account = 0;
    std::string openid;
};

// The condition that makes a fan due: unfollowed longer ago than its clinic keeps content.
constexpr const char* due_sql =
    "f.subscribed = 0 AND c.message_retention_days IS NOT NULL AND f.unsubscribed_at < "
    "NOW(3) - INTERVAL c.message_retention_days DAY";

result<std::vector<due_fan>> due_fans(mysql_session& db, const retention_options& o) {
    std::vector<sql_value> p{static_cast<std::uint64_t>(o.fans_per_pass)};
    auto rows = db.query(
        std::string("SELECT f.id, f.account_id, f.openid FROM fans f JOIN official_accounts a ON "
                    "a.id = f.account_id JOIN clinics c ON c.id = a.clinic_id WHERE ") +
            due_sql + (o.clinics.empty() ? "" : storage::and_in("c.id", o.clinics)) +
            " ORDER BY f.id LIMIT ?",
        p);
    if (!rows) return rows.error();
    std::vector<due_fan> out;
    for (const auto& r : rows->rows)
        out.push_back({sql_u64(r[0]), sql_u64(r[1]), r[2].value_or("")});
    return out;
}

struct batch_result {
    bool fan_gone = false;  // the last batch removed the fan row
    bool skipped = false;   // no longer due (followed again)
    std::vector<std::string> files;
};

// One transaction: up to messages_per_batch of the fan's messages with their media and receipts;
// when none are left, everything else of the fan and its row.
result<batch_result> purge_batch(mysql_session& db, const retention_options& o, const due_fan& f) {
    batch_result out;
    if (auto r = db.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED"); !r) return r.error();
    if (auto r = db.begin(); !r) return r.error();
    struct guard {
        mysql_session& db;
        ~guard() {
            if (db.in_transaction()) (void)db.rollback();
        }
    } undo{db};
    std::vector<sql_value> id{f.id};
    auto still = db.query(std::string("SELECT f.id FROM fans f JOIN official_accounts a ON a.id = "
                                      "f.account_id JOIN clinics c ON c.id = a.clinic_id WHERE "
                                      "f.id = ? AND ") +
                              due_sql + " FOR UPDATE",
                          id);
    if (!still) return still.error();
    if (still->rows.empty()) {
        out.skipped = true;
        return out;
    }
    const std::vector<sql_value> fan{f.account, f.openid};
    std::vector<sql_value> p{f.account, f.openid, static_cast<std::uint64_t>(o.messages_per_batch)};
    auto msgs = db.query(
        "SELECT id FROM inbound_messages WHERE account_id = ? AND openid = ? ORDER BY id LIMIT ?",
        p);
    if (!msgs) return msgs.error();
    if (!msgs->rows.empty()) {
        std::vector<std::uint64_t> ids;
        for (const auto& r : msgs->rows) ids.push_back(sql_u64(r[0]));
        auto paths = db.query("SELECT path FROM inbound_media WHERE path IS NOT NULL" +
                              storage::and_in("message_id", ids));
        if (!paths) return paths.error();
        for (const auto& r : paths->rows) out.files.push_back(r[0].value_or(""));
        // Receipts and media refer to the messages: they go first.
        const std::string by_message = storage::and_in("message_id", ids);
        for (const std::string& sql :
             {"DELETE FROM routing_receipts WHERE message_id > 0" + by_message,
              "DELETE FROM inbound_media WHERE message_id > 0" + by_message,
              "DELETE FROM inbound_messages WHERE id > 0" + storage::and_in("id", ids)}) {
            auto r = db.execute(sql);
            if (!r) return r.error();
        }
    } else {
        for (const char* sql :
             {"DELETE FROM waiting_replies WHERE account_id = ? AND openid = ?",
              "DELETE FROM outbox WHERE account_id = ? AND openid = ? AND state <> 'sending'",
              "DELETE FROM chat_sessions WHERE account_id = ? AND openid = ?",
              "DELETE FROM fan_patients WHERE account_id = ? AND openid = ?",
              "DELETE FROM fans WHERE account_id = ? AND openid = ?"}) {
            auto r = db.execute(sql, fan);
            if (!r) return r.error();
        }
        out.fan_gone = true;
    }
    if (auto c = db.commit(); !c) return c.error();
    return out;
}

// The integration events in scope older than the kept days, in batches (each its own statement:
// nothing else refers to them — the send log keeps its own copy of what was sent).
result<std::uint64_t> purge_events(mysql_session& db, const retention_options& o,
                                   const std::atomic<bool>& stopping) {
    const std::uint64_t days = std::max<std::uint32_t>(o.integration_event_days, 7);
    const std::string sql =
        "DELETE FROM integration_events WHERE created_at < NOW(3) - INTERVAL ? DAY" +
        (o.clinics.empty() ? std::string() : storage::and_in("clinic_id", o.clinics)) +
        " ORDER BY id LIMIT ?";
    std::uint64_t removed = 0;
    while (!stopping) {
        auto r = db.execute(sql, {days, static_cast<std::uint64_t>(o.events_per_batch)});
        if (!r) return r.error();
        removed += *r;
        if (*r < o.events_per_batch) break;
    }
    return removed;
}

void remove_files(const std::filesystem::path& dir, const std::vector<std::string>& files) {
    for (const auto& f : files) {
        if (f.empty() || f.find("..") != std::string::npos) continue;  // relative, inside dir
        std::error_code ec;
        std::filesystem::remove(dir / f, ec);
        std::filesystem::remove(mp3_cache_path(dir / f), ec);  // voice played in the console
    }
}

awaitable<result<std::size_t>> pass(std::shared_ptr<retention_worker::impl> self);

awaitable<void> loop(std::shared_ptr<retention_worker::impl> self) {
    auto wait = self->opts.first_pass;
    while (!self->stopping) {
        self->timer.expires_after(wait);
        boost::system::error_code ec;
        co_await self->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (self->stopping) break;
        auto n = co_await pass(self);
        if (!n) log::warn("retention.pass_failed", {{"reason", n.error().message()}});
        wait = self->opts.interval;
    }
    self->running = false;
}

}  // namespace

retention_worker::retention_worker(asio::any_io_executor ex, storage::mysql_pool& mysql,
                                   retention_options opts)
    : impl_(std::make_shared<impl>(std::move(ex), mysql, std::move(opts))) {}

retention_worker::~retention_worker() = default;

void retention_worker::start() {
    impl_->running = true;
    asio::co_spawn(impl_->ex, loop(impl_), asio::detached);
}

awaitable<void> retention_worker::stop() {
    impl_->stopping = true;
    asio::post(impl_->ex, [self = impl_] { self->timer.cancel(); });
    asio::steady_timer t(impl_->ex);
    while (impl_->running) {  // a pass in flight finishes its batch
        t.expires_after(std::chrono::milliseconds(20));
        boost::system::error_code ec;
        co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
}

awaitable<result<std::size_t>> retention_worker::run_once() {
    co_return co_await pass(impl_);
}

namespace {

awaitable<result<std::size_t>> pass(std::shared_ptr<retention_worker::impl> self) {
    const retention_options& o = self->opts;
    auto find = [&o](mysql_session& db) { return due_fans(db, o); };
    auto fans = co_await self->mysql.run(find);
    if (!fans) co_return fans.error();
    std::size_t removed = 0;
    for (const due_fan& f : *fans) {
        while (!self->stopping) {
            auto batch = [&o, &f](mysql_session& db) {
                auto r = purge_batch(db, o, f);
                if (r && !r->files.empty()) remove_files(o.media_dir, r->files);
                return r;
            };
            auto b = co_await self->mysql.run(batch);
            if (!b) co_return b.error();
            if (b->skipped) break;
            if (b->fan_gone) {
                ++removed;
                break;
            }
        }
        if (self->stopping) break;
    }
    if (removed) log::info("retention.purged", {{"fans", static_cast<std::uint64_t>(removed)}});
    if (self->stopping) co_return removed;
    auto purge = [&o, &self](mysql_session& db) { return purge_events(db, o, self->stopping); };
    auto events = co_await self->mysql.run(purge);
    if (!events) co_return events.error();
    if (*events) log::info("retention.events_purged", {{"events", *events}});
    co_return removed;
}

}  // namespace

}  // namespace scrm::gateway

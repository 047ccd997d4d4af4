// See media_fetcher.hpp. Claims work like the outbox (a conditional UPDATE with a random token),
// but a download is idempotent, so an expired claim is simply taken again.
#include "scrm/gateway/media_fetcher.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <mutex>

#include "scrm/common/log.hpp"
#include "scrm/common/thread_role.hpp"
#include "scrm/storage/mysql.hpp"

namespace scrm::gateway {

namespace asio = boost::asio;
using asio::awaitable;
using storage::sql_value;

std::string media_extension(std::string_view content_type, std::string_view kind) {
    const std::string_view type = content_type.substr(0, content_type.find(';'));
    struct known {
        std::string_view type, ext;
    };
    static constexpr known table[] = {
        {"image/jpeg", "jpg"}, {"image/jpg", "jpg"},  {"image/png", "png"},
        {"image/gif", "gif"},  {"audio/amr", "amr"},  {"voice/amr", "amr"},
        {"audio/speex", "spx"}, {"audio/mpeg", "mp3"}, {"video/mp4", "mp4"},
    };
    for (const auto& k : table) {
        if (type == k.type) return std::string(k.ext);
    }
    if (kind == "voice") return "amr";  // WeChat's voice messages are AMR unless it says otherwise
    return "bin";
}

namespace {

struct claimed {
    std::uint64_t message_id = 0, token = 0;
    std::string appid, media_id, kind;
    unsigned attempts = 0;
};

// Writes `bytes` to `path` whole or not at all: a temporary file beside it, fsync, rename, fsync
// of the directory. Blocking: MySQL worker threads only.
result<void> write_whole(const std::filesystem::path& path, const std::string& bytes) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) return errc::unavailable;
    const std::filesystem::path tmp = path.string() + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) return errc::unavailable;
    std::size_t done = 0;
    bool ok = true;
    while (ok && done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        ok = n > 0;
        if (ok) done += static_cast<std::size_t>(n);
    }
    ok = ok && ::fsync(fd) == 0;
    ok = ::close(fd) == 0 && ok;
    if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
        ::unlink(tmp.c_str());
        return errc::unavailable;
    }
    const int dir = ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        ::fsync(dir);
        ::close(dir);
    }
    return {};
}

std::string sha256(const std::string& bytes) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(), nullptr);
    return std::string(reinterpret_cast<const char*>(digest), size);
}

// A file name part that cannot leave its folder: letters, digits, '_' and '-' only.
bool safe_name(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
    });
}

}  // namespace

struct media_fetcher::impl : std::enable_shared_from_this<impl> {
    impl(asio::any_io_executor e, storage::mysql_pool& m, wechat::client_lookup c,
         media_fetch_options o)
        : strand(asio::make_strand(e)), wake(strand), mysql(m), clients(std::move(c)),
          opts(std::move(o)) {}

    asio::strand<asio::any_io_executor> strand;
    asio::steady_timer wake;
    storage::mysql_pool& mysql;
    wechat::client_lookup clients;
    media_fetch_options opts;
    std::atomic<bool> stopping{false}, woken{false}, running{false};
    mutable std::mutex mutex;
    media_fetch_stats counters;

    void notify() {
        woken = true;
        asio::post(strand, [self = shared_from_this()] { self->wake.cancel(); });
    }

    // Expires what cannot be fetched any more, then claims due rows.
    awaitable<result<std::vector<claimed>>> claim() {
        const auto lease_us = static_cast<std::int64_t>(opts.lease.count()) * 1000;
        const std::uint64_t batch = std::max<std::size_t>(1, opts.batch);
        auto fn = [this, lease_us, batch](storage::mysql_session& db)
            -> result<std::vector<claimed>> {
            const std::string only = storage::and_in("account_id", opts.accounts);
            auto expired = db.execute(
                "UPDATE inbound_media SET state = 'expired', claim_token = NULL "
                "WHERE state IN ('pending', 'fetching') AND expires_at <= NOW(3)" + only);
            if (!expired) return expired.error();
            if (*expired > 0) {
                std::lock_guard lock(mutex);
                counters.expired += *expired;
                log::warn("media.expired", {{"rows", *expired}});
            }
            const std::uint64_t token = storage::random_row_token();
            auto taken = db.execute(
                "UPDATE inbound_media SET state = 'fetching', claim_token = ?, "
                "claimed_at = NOW(3), attempts = attempts + 1 "
                "WHERE ((state = 'pending' AND next_attempt_at <= NOW(3)) OR (state = 'fetching' "
                "AND claimed_at < TIMESTAMPADD(MICROSECOND, ?, NOW(3))))" + only +
                    " ORDER BY message_id LIMIT ?",
                {token, -lease_us, batch});
            if (!taken) return taken.error();
            std::vector<claimed> out;
            if (*taken == 0) return out;
            auto rows = db.query(
                "SELECT d.message_id, a.appid, d.media_id, d.kind, d.attempts "
                "FROM inbound_media d JOIN official_accounts a ON a.id = d.account_id "
                "WHERE d.claim_token = ? AND d.state = 'fetching'",
                {token});
            if (!rows) return rows.error();
            for (auto& r : rows->rows) {
                claimed c;
                c.message_id = storage::sql_u64(r[0]);
                c.token = token;
                c.appid = r[1].value_or("");
                c.media_id = r[2].value_or("");
                c.kind = r[3].value_or("");
                c.attempts = static_cast<unsigned>(storage::sql_u64(r[4]));
                out.push_back(std::move(c));
            }
            return out;
        };
        co_return co_await mysql.run(fn);
    }

    // Records a failed attempt: retried with backoff (it expires on its own), or failed for good.
    awaitable<void> record_failure(const claimed& c, bool permanent, int errcode,
                                   std::string reason) {
        const unsigned shift = std::min(c.attempts == 0 ? 0u : c.attempts - 1, 20u);
        const auto wait = std::min(opts.backoff_cap, opts.backoff_base * (std::int64_t{1} << shift));
        const auto wait_us = static_cast<std::int64_t>(wait.count()) * 1000;
        auto fn = [&](storage::mysql_session& db) {
            return db.execute(
                "UPDATE inbound_media SET state = ?, claim_token = NULL, last_errcode = ?, "
                "last_error = ?, next_attempt_at = TIMESTAMPADD(MICROSECOND, ?, NOW(3)) "
                "WHERE message_id = ? AND claim_token = ?",
                {std::string(permanent ? "failed" : "pending"),
                 errcode ? sql_value(static_cast<std::int64_t>(errcode))
                         : sql_value(std::monostate{}),
                 reason, wait_us, c.message_id, c.token});
        };
        auto r = co_await mysql.run(fn);
        if (!r) log::warn("media.record_failed", {{"message_id", c.message_id}});
        {
            std::lock_guard lock(mutex);
            ++(permanent ? counters.failed : counters.retried);
        }
        log::info("media.fetch_failed", {{"message_id", c.message_id},
                                         {"attempt", c.attempts},
                                         {"errcode", errcode},
                                         {"permanent", permanent}});
    }

    awaitable<void> fetch(claimed c) {
        auto client = co_await clients(c.appid);
        if (!client) {
            const bool gone = client.error() == errc::not_found;
            co_await record_failure(c, gone, 0, gone ? "公众号不存在或已删除" : "无法读取公众号配置");
            co_return;
        }
        auto file = co_await (*client)->download_media(c.media_id);
        if (!file) {
            const auto& f = file.error();
            // 40007: WeChat does not know this media (or no longer): trying again cannot help.
            const bool permanent = f.errcode == 40007;
            co_await record_failure(c, permanent, f.errcode, wechat::readable_reason(f.kind));
            co_return;
        }
        const bool link = file->bytes.empty() && !file->video_url.empty();
        std::string relative;
        if (!link) {
            if (!safe_name(c.appid)) {
                co_await record_failure(c, true, 0, "公众号AppID不能用作目录名");
                co_return;
            }
            relative = c.appid + "/" + std::to_string(c.message_id) + "." +
                       media_extension(file->content_type, c.kind);
        }
        const std::filesystem::path full = opts.dir / relative;
        auto fn = [&](storage::mysql_session& db) -> result<std::uint64_t> {
            if (!link) {
                expect_blocking_allowed("media_fetcher: writing a media file");
                if (auto w = write_whole(full, file->bytes); !w) return w.error();
                return db.execute(
                    "UPDATE inbound_media SET state = 'fetched', claim_token = NULL, path = ?, "
                    "content_type = ?, size = ?, sha256 = ?, last_errcode = NULL, "
                    "last_error = NULL, fetched_at = NOW(3) "
                    "WHERE message_id = ? AND claim_token = ?",
                    {relative, file->content_type, static_cast<std::uint64_t>(file->bytes.size()),
                     sha256(file->bytes), c.message_id, c.token});
            }
            return db.execute(
                "UPDATE inbound_media SET state = 'fetched', claim_token = NULL, source_url = ?, "
                "last_errcode = NULL, last_error = NULL, fetched_at = NOW(3) "
                "WHERE message_id = ? AND claim_token = ?",
                {file->video_url, c.message_id, c.token});
        };
        auto stored = co_await mysql.run(fn);
        if (!stored) {
            co_await record_failure(c, false, 0, "无法保存媒体文件");
            co_return;
        }
        {
            std::lock_guard lock(mutex);
            ++counters.fetched;
        }
        log::info("media.fetched", {{"message_id", c.message_id},
                                    {"kind", c.kind},
                                    {"bytes", static_cast<std::uint64_t>(file->bytes.size())}});
    }

    awaitable<result<std::size_t>> cycle() {
        auto rows = co_await claim();
        if (!rows) co_return rows.error();
        for (auto& c : *rows) co_await fetch(std::move(c));  // a few at a time: no hurry
        co_return rows->size();
    }

    awaitable<void> loop() {
        running = true;
        while (!stopping) {
            auto n = co_await cycle();
            if (!n) log::warn("media.cycle_failed", {{"reason", n.error().message()}});
            if (n && *n > 0) continue;
            if (woken.exchange(false) && n) continue;
            if (stopping) break;
            wake.expires_after(opts.poll_interval);
            co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        running = false;
    }
};

media_fetcher::media_fetcher(asio::any_io_executor ex, storage::mysql_pool& mysql,
                             wechat::client_lookup clients, media_fetch_options opts)
    : impl_(std::make_shared<impl>(std::move(ex), mysql, std::move(clients), std::move(opts))) {}

media_fetcher::~media_fetcher() {
    impl_->stopping = true;
    impl_->notify();
}

awaitable<result<std::size_t>> media_fetcher::run_once() {
    co_return co_await impl_->cycle();
}

awaitable<result<media_row>> media_fetcher::get(std::uint64_t message_id) {
    auto fn = [message_id](storage::mysql_session& db) {
        return db.query(
            "SELECT message_id, state, attempts, path, source_url, content_type, size, "
            "last_errcode, last_error FROM inbound_media WHERE message_id = ?",
            {message_id});
    };
    auto r = co_await impl_->mysql.run(fn);
    if (!r) co_return r.error();
    if (r->rows.empty()) co_return errc::not_found;
    const auto& row = r->rows.front();
    media_row m;
    m.message_id = storage::sql_u64(row[0]);
    m.state = row[1].value_or("");
    m.attempts = static_cast<unsigned>(storage::sql_u64(row[2]));
    m.path = row[3];
    m.source_url = row[4];
    m.content_type = row[5];
    if (row[6]) m.size = storage::sql_u64(row[6]);
    if (row[7]) m.last_errcode = static_cast<int>(std::stol(*row[7]));
    m.last_error = row[8].value_or("");
    co_return m;
}

namespace {
awaitable<void> run_loop(std::shared_ptr<media_fetcher::impl> self) {
    co_await self->loop();
}
}  // namespace

void media_fetcher::start() {
    asio::co_spawn(impl_->strand, run_loop(impl_), asio::detached);
}

void media_fetcher::notify() {
    impl_->notify();
}

awaitable<void> media_fetcher::stop(std::chrono::milliseconds limit) {
    impl_->stopping = true;
    impl_->notify();
    asio::steady_timer t(co_await asio::this_coro::executor);
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (impl_->running && std::chrono::steady_clock::now() < deadline) {
        t.expires_after(std::chrono::milliseconds(20));
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

media_fetch_stats media_fetcher::stats() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->counters;
}

}  // namespace scrm::gateway

// Fetches inbound media (image, voice, video) before WeChat forgets it (3 days): a worker claims
// pending rows of inbound_media (written with their message, sql/005_inbound_media.sql), downloads
// each through /cgi-bin/media/get, writes the file under the media directory (temporary file,
// fsync, rename: a file that exists is whole) and records where it is. Failures are retried with
// backoff until the media expires; a row claimed by a worker that died is claimed again after a
// lease (downloading twice is harmless). File and MySQL work run together on a MySQL pool worker
// thread, never on an I/O thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "scrm/common/error.hpp"
#include "scrm/wechat/outbox.hpp"

namespace scrm::storage {
class mysql_pool;
}

namespace scrm::gateway {

struct media_fetch_options {
    std::filesystem::path dir;  // files go to <dir>/<appid>/<message id>.<ext>
    std::size_t batch = 8;
    std::chrono::milliseconds poll_interval{2000};
    std::chrono::milliseconds backoff_base{5000};  // retry n waits base × 2^(n-1) …
    std::chrono::milliseconds backoff_cap{600000};  // … at most this
    std::chrono::milliseconds lease{300000};        // a claim older than this is taken again
    // Only these accounts' media (official_accounts.id); empty: every account. Lets a test (or
    // an operator) keep a fetcher to its own accounts on a shared database.
    std::vector<std::uint64_t> accounts;
};

// The file name extension for a media content type ("image/jpeg" → "jpg"; unknown → "bin").
std::string media_extension(std::string_view content_type, std::string_view kind);

struct media_row {
    std::uint64_t message_id = 0;
    std::string state;  // pending, fetching, fetched, failed, expired
    unsigned attempts = 0;
    std::optional<std::string> path;  // relative to the media directory
    std::optional<std::string> source_url, content_type;
    std::optional<std::uint64_t> size;
    std::optional<int> last_errcode;
    std::string last_error;
};

struct media_fetch_stats {
    std::uint64_t fetched = 0, retried = 0, failed = 0, expired = 0;
};

// Thread-safe. stop() must complete before the MySQL pool stops.
class media_fetcher {
public:
    media_fetcher(boost::asio::any_io_executor ex, storage::mysql_pool& mysql,
                  wechat::client_lookup clients, media_fetch_options opts);
    ~media_fetcher();
    media_fetcher(const media_fetcher&) = delete;
    media_fetcher& operator=(const media_fetcher&) = delete;

    // One cycle: expires rows past their 3 days, claims due rows, fetches them. Returns how many
    // rows it tried.
    boost::asio::awaitable<result<std::size_t>> run_once();
    // The row of a message, or errc::not_found.
    boost::asio::awaitable<result<media_row>> get(std::uint64_t message_id);

    void start();
    void notify();  // something new to fetch: run a cycle now
    boost::asio::awaitable<void> stop(std::chrono::milliseconds limit = std::chrono::seconds(30));
    media_fetch_stats stats() const;

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace scrm::gateway

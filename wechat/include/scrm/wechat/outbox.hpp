// The durable outbox every outbound WeChat message goes through (issue: "stored before sending").
// A message is a row in MySQL (sql/004_outbox.sql) before any byte goes to WeChat; a worker — on
// every gateway instance, sharing the table — claims due rows, sends them with the account's
// client and records the outcome, publishing each state change on Redis for the console.
//
// Customer-service sends carry no idempotency key, so a message is sent again only when the
// failure is known to have happened before WeChat could act on it (connection refused, WeChat's
// -1 "system busy", a per-minute limit, a token that could not be had): those are retried with
// exponential backoff, up to max_attempts. A failure after the request was written — and a row
// left 'sending' by a crashed worker, found when its lease ran out — becomes 'uncertain': a person
// decides (requeue), the outbox never does.
//
// Order: per fan (account, openid), a row is claimed only when no earlier row of that fan is
// queued or sending, so a fan receives messages in the order they were enqueued; different fans
// are sent in parallel.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scrm/common/error.hpp"
#include "scrm/wechat/client.hpp"

namespace scrm::storage {
class mysql_pool;
class mysql_session;
class redis_client;
}  // namespace scrm::storage

namespace scrm::wechat {

enum class outbox_state { queued, sending, sent, failed, uncertain };
const char* to_string(outbox_state s) noexcept;
std::optional<outbox_state> parse_outbox_state(std::string_view text) noexcept;

struct outbound_message {
    std::uint64_t account_id = 0;  // official_accounts.id
    std::string openid;
    std::string kind;  // "text", "image", "news", …, "template": what the console shows
    std::string api_path = "/cgi-bin/message/custom/send";
    std::string body;    // the JSON body WeChat takes (wechat/outbound.hpp builds them)
    std::string origin;  // who asked for it: "agent:<id>", "auto:<kind>", "template:<kind>", …
};

// A customer-service image message to `openid` whose picture is `bytes` (JPEG or PNG, at most
// image_upload_max_bytes): the row's api_path is media_upload_path and its body the file itself.
// Each attempt first uploads it as temporary media (client::upload_image) and then sends
// custom_image_body with the media_id WeChat returned; an upload that fails (token errors after
// the client's own refresh, -1, transport…) is judged like a send that never reached WeChat, so it
// is retried — the fan cannot have received anything yet.
outbound_message outbound_image(std::uint64_t account_id, std::string openid,
                                std::string bytes, std::string origin);

// A state change of a row, as the worker records it (also PUBLISHed on Redis).
struct delivery_change {
    std::uint64_t id = 0, account_id = 0, clinic_id = 0;
    std::string openid, kind, origin;
    outbox_state state = outbox_state::queued;  // queued again (a retry), sent, failed, uncertain
    int errcode = 0;
    std::string reason;
};
// Called on the worker after each recorded change (not for enqueue's own 'queued'); must not
// throw. Runs in the worker's send coroutine: keep it short (a Redis call or two).
using delivery_hook = std::function<boost::asio::awaitable<void>(delivery_change)>;

struct outbox_options {
    std::size_t batch = 32;                         // rows claimed per cycle (at most one per fan)
    std::chrono::milliseconds poll_interval{1000};  // idle: other instances' rows, due retries
    // A row 'sending' for longer than this was orphaned (its worker crashed): it becomes
    // 'uncertain'. Must exceed the longest send (client timeout × 2 plus a token refresh).
    std::chrono::milliseconds lease{60000};
    unsigned max_attempts = 6;                     // sends of one row before 'failed'
    std::chrono::milliseconds backoff_base{1000};  // retry n waits base × 2^(n-1) …
    std::chrono::milliseconds backoff_cap{60000};  // … at most this
    std::string channel_prefix = "scrm:outbox:";   // PUBLISH <prefix><account_id> per change
    // Only these accounts' rows (official_accounts.id); empty: every account. Lets a test (or an
    // operator) keep a worker to its own accounts on a shared database.
    std::vector<std::uint64_t> accounts;
    delivery_hook on_change;  // optional: the gateway pushes changes to the sender's console
};

// What one attempt's outcome means for the row. Pure; `attempts` counts this attempt.
struct attempt_verdict {
    outbox_state next = outbox_state::sent;
    std::chrono::milliseconds retry_after{0};  // next == queued: when to try again
    int errcode = 0;                           // WeChat's errcode, if it answered one
    std::string reason;  // for people (Simplified Chinese); empty when sent
};
attempt_verdict judge_attempt(const api_result<std::string>& outcome, unsigned attempts,
                              const outbox_options& opts);

// A person-readable reason (Simplified Chinese: it is shown to clinic staff) for a failure kind.
const char* readable_reason(api_error e) noexcept;

// A row as stored.
struct outbox_entry {
    std::uint64_t id = 0;
    std::uint64_t account_id = 0;
    std::string openid, kind, origin;
    outbox_state state = outbox_state::queued;
    unsigned attempts = 0;
    std::optional<int> last_errcode;
    std::string last_error;
    std::optional<std::uint64_t> wx_msgid;  // template sends: WeChat's msgid
};

// The account's client, by appid. errc::not_found when the account no longer exists (its rows
// fail); any other error is temporary (the row is retried).
using client_lookup =
    std::function<boost::asio::awaitable<result<std::shared_ptr<client>>>(std::string appid)>;

struct outbox_stats {
    std::uint64_t sent = 0, failed = 0, uncertain = 0, retried = 0, orphans = 0;
};

// Stores `m` on the caller's session — inside its transaction, if one is open, so the message is
// committed (or rolled back) with the caller's other rows — and returns its id. The worker finds
// it within poll_interval, or at once after outbox::wake(). Nothing is published on Redis for it
// until the worker changes its state. errc::bad_input as for outbox::enqueue; MySQL's errors.
result<std::uint64_t> enqueue_on(storage::mysql_session& db, const outbound_message& m);

// Thread-safe. start() runs the worker on `ex`; stop() must complete before the MySQL pool and
// Redis client stop. `redis` may be null (no publishing).
class outbox {
public:
    outbox(boost::asio::any_io_executor ex, storage::mysql_pool& mysql,
           std::shared_ptr<storage::redis_client> redis, client_lookup clients,
           outbox_options opts = {});
    ~outbox();
    outbox(const outbox&) = delete;
    outbox& operator=(const outbox&) = delete;

    // Stores the message (committed when this returns) and wakes the worker. errc::bad_input for
    // a message without account, openid, kind, /cgi-bin/ path or body; MySQL's errors otherwise
    // (then nothing is stored).
    boost::asio::awaitable<result<std::uint64_t>> enqueue(outbound_message m);

    // Wakes the worker: rows committed with enqueue_on are claimed now rather than at the next
    // poll. Never blocks.
    void wake();

    // The row, or errc::not_found.
    boost::asio::awaitable<result<outbox_entry>> get(std::uint64_t id);

    // A person decided that an uncertain or failed row should be sent again: back to queued with
    // its attempts reset. False when the row is in another state (or does not exist).
    boost::asio::awaitable<result<bool>> requeue(std::uint64_t id);

    // One worker cycle: turns orphaned 'sending' rows into 'uncertain', claims due rows, sends
    // them and records each outcome. Returns how many rows it sent or tried. The worker calls it
    // in a loop; tests call it directly.
    boost::asio::awaitable<result<std::size_t>> run_once();

    void start();
    // Stops claiming; waits (up to `limit`) for the sends in flight to record their outcome.
    boost::asio::awaitable<void> stop(std::chrono::milliseconds limit = std::chrono::seconds(30));

    outbox_stats stats() const;

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace scrm::wechat

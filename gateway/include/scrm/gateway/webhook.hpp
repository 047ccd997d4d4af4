// The WeChat webhook, GET/POST /wx/{appid} (DESIGN.md §4): URL verification; for messages, the
// signature on every POST (and msg_signature in safe mode), plain-mode replay protection,
// decryption and parsing, de-duplication against committed rows, group-committed storage, and the
// hand-off of each newly stored message — once, by the request that inserted it — to the next
// stage. Bodies that are correctly signed but cannot be decrypted or parsed become dead letters.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "scrm/gateway/accounts.hpp"
#include "scrm/gateway/http.hpp"
#include "scrm/gateway/message_store.hpp"
#include "scrm/wechat/message.hpp"
#include "scrm/wechat/reply.hpp"

namespace scrm::storage {
class redis_client;
class mysql_pool;
class spool;
}  // namespace scrm::storage

namespace scrm::gateway {

// A message just committed by the request handling it.
struct stored_message {
    std::uint64_t id = 0;  // inbound_messages.id
    std::shared_ptr<const gateway::account> account;
    wechat::inbound_message message;
    // True while WeChat's request is waiting for the answer, so a passive reply reaches the fan;
    // false when the message is replayed from the spool (it was answered `success` long ago:
    // anything for the fan must go through the outbox).
    bool can_reply = true;
    // The fan's owners as of the commit that stored the message (the message store reads them in
    // its batch); nullopt: the sink reads them itself.
    std::optional<fan_owners> fan;
    // What the sink's before_store() gave for this message, and whether the commit that stored
    // it also wrote its receipt (then the sink only applies the decision).
    std::shared_ptr<routed_in_store> route;
    bool routed = false;
};

// An immediate answer to the fan inside the webhook's HTTP response (DESIGN.md §4 step 6): a
// welcome or auto-reply text, an image, or one news article. It spends no customer-service quota
// and is encrypted in safe mode.
struct passive_reply {
    enum class kind { text, image, news };
    kind type = kind::text;
    std::string content;  // text: the text; image: the media_id
    wechat::news_article article;  // news
};

// The stage after storage (routing, DESIGN.md §5). on_stored is called exactly once per stored
// message, by the request that inserted it, before that request is answered; what it returns is
// that answer (nothing: `success`). Ignored when m.can_reply is false.
class stored_message_sink {
public:
    virtual ~stored_message_sink() = default;
    // Called before a message that WeChat waits for is stored (after the replay and the
    // committed-identity checks; a retry may still get here, and then the row it does not
    // insert ignores its route): the routing to decide inside the store's transaction, or
    // nullptr to route after the commit.
    virtual boost::asio::awaitable<std::shared_ptr<routed_in_store>> before_store(
        const std::shared_ptr<const account>& a, const wechat::inbound_message& m) {
        (void)a;
        (void)m;
        co_return nullptr;
    }
    virtual boost::asio::awaitable<std::optional<passive_reply>> on_stored(stored_message m) = 0;
};

struct webhook_settings {
    std::chrono::seconds timestamp_window{300};          // plain-mode replay window, ±
    std::chrono::milliseconds seen_ttl{10 * 60 * 1000};  // how long committed identities are cached
};

namespace detail {
struct seen_writer;  // webhook.cpp: batches the cache writes of committed identities
}

class webhook {
public:
    using clock_fn = std::function<std::int64_t()>;  // unix seconds; injected in tests

    // `spool` may be null (no fallback: a MySQL outage answers 503 and WeChat retries).
    webhook(account_registry& accounts, message_store& store, storage::redis_client& redis,
            storage::mysql_pool& mysql, stored_message_sink& sink, storage::spool* spool,
            webhook_settings settings, clock_fn now);

    // Registers GET and POST /wx/ on the router.
    void add_routes(router& routes);

    boost::asio::awaitable<http_response> handle(http_request req);

    // Moves spooled messages into MySQL, oldest first, handing on those it inserts — and those
    // the spooled attempt itself committed without learning it (a COMMIT whose answer timed
    // out): each record keeps that attempt's insert token, and the replay takes such a row over.
    // Stops at the first failure (MySQL still away) and goes on from there next time. Returns how
    // many records were replayed. replay_loop calls it every `interval` until stopped.
    boost::asio::awaitable<result<std::size_t>> replay_spool_once();
    boost::asio::awaitable<void> replay_loop(std::chrono::milliseconds interval);
    void stop_replay() { replay_stopped_ = true; }

private:
    // Stores a verified, parsed message and hands it on if this call inserted it (or took it
    // over: inbound_row::takes_over); returns the sink's passive reply (only for the call that
    // hands it on, and only when `can_reply`). `hash`: the message's identity_hash if the caller
    // has it already (empty: computed here).
    boost::asio::awaitable<result<std::optional<passive_reply>>> store_and_hand_on(
        std::shared_ptr<const account> a, wechat::inbound_message message, std::string body_xml,
        std::uint64_t insert_token, std::uint64_t takes_over, bool can_reply, std::string hash);
    boost::asio::awaitable<http_response> verify_url(const account& a, const http_request& req);
    boost::asio::awaitable<http_response> receive(std::shared_ptr<const account> a,
                                                  http_request req);

    account_registry& accounts_;
    message_store& store_;
    storage::redis_client& redis_;
    storage::mysql_pool& mysql_;
    stored_message_sink& sink_;
    storage::spool* spool_;
    webhook_settings settings_;
    clock_fn now_;
    std::atomic<bool> replay_stopped_{false};
    std::shared_ptr<detail::seen_writer> seen_;
};

}  // namespace scrm::gateway

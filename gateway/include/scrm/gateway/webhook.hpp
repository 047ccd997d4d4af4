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

#include "scrm/gateway/accounts.hpp"
#include "scrm/gateway/http.hpp"
#include "scrm/gateway/message_store.hpp"
#include "scrm/wechat/message.hpp"

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
};

// The stage after storage (routing, DESIGN.md §5). on_stored is called exactly once per stored
// message, by the request that inserted it, before that request is answered.
class stored_message_sink {
public:
    virtual ~stored_message_sink() = default;
    virtual boost::asio::awaitable<void> on_stored(stored_message m) = 0;
};

struct webhook_settings {
    std::chrono::seconds timestamp_window{300};          // plain-mode replay window, ±
    std::chrono::milliseconds seen_ttl{10 * 60 * 1000};  // how long committed identities are cached
};

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
    // over: inbound_row::takes_over).
    boost::asio::awaitable<result<void>> store_and_hand_on(std::shared_ptr<const account> a,
                                                           wechat::inbound_message message,
                                                           std::string body_xml,
                                                           std::uint64_t insert_token,
                                                           std::uint64_t takes_over);
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
};

}  // namespace scrm::gateway

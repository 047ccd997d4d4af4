// The WeChat webhook, GET/POST /wx/{appid} (DESIGN.md §4): URL verification; for messages, the
// signature on every POST (and msg_signature in safe mode), plain-mode replay protection,
// decryption and parsing, de-duplication against committed rows, group-committed storage, and the
// hand-off of each newly stored message — once, by the request that inserted it — to the next
// stage. Bodies that are correctly signed but cannot be decrypted or parsed become dead letters.
#pragma once

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

    webhook(account_registry& accounts, message_store& store, storage::redis_client& redis,
            storage::mysql_pool& mysql, stored_message_sink& sink, webhook_settings settings,
            clock_fn now);

    // Registers GET and POST /wx/ on the router.
    void add_routes(router& routes);

    boost::asio::awaitable<http_response> handle(http_request req);

private:
    boost::asio::awaitable<http_response> verify_url(const account& a, const http_request& req);
    boost::asio::awaitable<http_response> receive(std::shared_ptr<const account> a,
                                                  http_request req);

    account_registry& accounts_;
    message_store& store_;
    storage::redis_client& redis_;
    storage::mysql_pool& mysql_;
    stored_message_sink& sink_;
    webhook_settings settings_;
    clock_fn now_;
};

}  // namespace scrm::gateway

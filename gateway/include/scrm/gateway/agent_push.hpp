// Console push (DESIGN.md §4 step 5, §7): one Redis subscriber connection per gateway process,
// fanning each agent channel's messages out to that agent's WebSocket connections on this
// instance. The routing stage (any instance) PUBLISHes on the channel; every instance holding a
// connection of that agent forwards the payload as a text frame, unchanged.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "scrm/common/error.hpp"

namespace scrm::storage {
class redis_subscriber;
struct redis_options;
struct redis_message;
}  // namespace scrm::storage

namespace scrm::gateway {

class ws_session;

// Sent to every connection after the subscriber lost its connection and got it back: pub/sub is
// at most once, so pushes may have been missed — the console reloads what it shows.
inline constexpr std::string_view resync_message = R"({"type":"resync"})";

// Thread-safe. The channel is subscribed while at least one local connection listens on it.
// Delivery calls ws_session::send, which never blocks (a slow connection is dropped by the
// server, not buffered here).
class agent_push {
public:
    agent_push(const boost::asio::any_io_executor& ex, const storage::redis_options& redis);
    ~agent_push();
    agent_push(const agent_push&) = delete;
    agent_push& operator=(const agent_push&) = delete;

    void start();
    void stop();

    // Adds `session` to `channel`'s listeners and makes sure the channel is subscribed. The
    // error when the subscription could not be confirmed (Redis away, timeout): the connection is
    // still registered and the channel is subscribed again on the next (re)connect.
    boost::asio::awaitable<result<void>> attach(std::string channel,
                                                std::shared_ptr<ws_session> session);
    // Removes it; the last listener of a channel unsubscribes it.
    void detach(const std::string& channel, const ws_session* session);

    // Connections registered on this instance (all channels).
    std::size_t listeners() const;
    bool connected() const;

private:
    struct hub;
    std::shared_ptr<hub> hub_;
    std::shared_ptr<storage::redis_subscriber> subscriber_;
};

}  // namespace scrm::gateway

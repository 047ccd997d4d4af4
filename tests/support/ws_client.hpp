// A WebSocket client for tests: connects to 127.0.0.1, runs its own I/O thread, collects the text
// messages it receives; every wait is bounded. Talks to real servers (our gateway) over loopback.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace scrm::test {

class ws_client {
public:
    // Connects and performs the handshake for `target` with extra request headers. With
    // `reading` false nothing is read from the server (a consumer that stalls: the server's
    // messages pile up in the socket buffers, and its pings go unanswered).
    ws_client(std::uint16_t port, std::string target,
              std::vector<std::pair<std::string, std::string>> headers = {}, bool reading = true);
    ~ws_client();
    ws_client(const ws_client&) = delete;
    ws_client& operator=(const ws_client&) = delete;

    // 101 after a successful handshake; otherwise the status the server answered (0: none), with
    // its body in refusal_body().
    int status() const;
    const std::string& refusal_body() const;

    // Sends a text message; false when it could not be written within 5 s.
    bool send(const std::string& text);
    // The next message not yet taken, waiting up to `limit`; nullopt on timeout or once closed
    // and drained.
    std::optional<std::string> next(std::chrono::milliseconds limit = std::chrono::seconds(5));
    // Takes messages until one contains `part`; returns it, or nullopt after `limit`.
    std::optional<std::string> wait_for(const std::string& part,
                                        std::chrono::milliseconds limit = std::chrono::seconds(5));
    // Waits until the server closed the connection; its close code (1006 when it just dropped
    // the TCP connection), or nullopt while still open after `limit`.
    std::optional<int> wait_closed(std::chrono::milliseconds limit = std::chrono::seconds(5));
    // Closes from this side (normal closure) and waits for the end.
    void close();

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace scrm::test

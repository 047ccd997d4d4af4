// A TCP proxy on 127.0.0.1 for fault injection between our code and a real server: it forwards
// bytes both ways and, when told, withholds what the server sends — the client then sees a server
// that does not answer, while the server sees a live client and goes on (e.g. commits). Used to
// lose a COMMIT's answer without losing the COMMIT.
#pragma once

#include <cstdint>
#include <memory>

namespace scrm::test {

class tcp_proxy {
public:
    // Listens on 127.0.0.1 (a free port) and connects each accepted client to
    // 127.0.0.1:upstream_port. Throws std::runtime_error when it cannot listen.
    explicit tcp_proxy(std::uint16_t upstream_port);
    ~tcp_proxy();  // closes every connection and joins its threads
    tcp_proxy(const tcp_proxy&) = delete;
    tcp_proxy& operator=(const tcp_proxy&) = delete;

    std::uint16_t port() const;
    // true: keep the server's bytes (on every connection, new ones too) instead of forwarding
    // them; false: forward them again, those kept first. A client that closes meanwhile loses
    // them, and the proxy then closes its server connection.
    void hold_replies(bool hold);

    struct impl;  // opaque

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace scrm::test

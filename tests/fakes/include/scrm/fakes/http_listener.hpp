// The fake WeChat's HTTP/1.1 server, plain or TLS, behind plain request/response values (Beast
// stays inside http_listener.cpp). Unlike the gateway's http_server it can drop a connection after
// reading a request without answering, and stop and resume listening on the same port — the
// failures a real API host shows its clients.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "scrm/common/error.hpp"

namespace scrm::fakes {

struct listener_request {
    std::string method, target, path, query;                   // query undecoded, without '?'
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
    std::string body;
    std::uint64_t connection = 0;  // which connection it came on (see stop_listening)
    std::string header(std::string_view lower_name) const;  // first value, or ""
};

struct listener_response {
    unsigned status = 200;
    std::string content_type = "application/json; encoding=utf-8";
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    bool drop = false;   // close the connection without answering
    bool close = false;  // close the connection after answering
};

using listener_handler = std::function<boost::asio::awaitable<listener_response>(listener_request)>;

struct listener_options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;  // 0: any free port
    // TLS when both are set (PEM files).
    std::filesystem::path cert_file, key_file;
    std::size_t body_limit = 16 * 1024 * 1024;      // larger bodies get 413
    std::chrono::milliseconds read_timeout{30000};  // handshake, header and body each
    std::chrono::milliseconds idle_timeout{60000};  // keep-alive
};

// Every member function must be called on the executor's thread (the fake runs a one-thread
// io_context; fake_wechat posts there for callers on other threads).
class http_listener {
public:
    http_listener(boost::asio::any_io_executor ex, listener_options opts, listener_handler h);
    ~http_listener();
    http_listener(const http_listener&) = delete;
    http_listener& operator=(const http_listener&) = delete;

    // Binds and starts accepting; returns the bound port. errc::unavailable (with a log line
    // naming the address) if it cannot bind; errc::bad_input for a bad host or TLS files.
    scrm::result<std::uint16_t> start();
    // Closes the acceptor and every open connection (but `spare`, a listener_request::connection
    // whose answer is still to be written; it closes after that answer): new connections are
    // refused.
    void stop_listening(std::uint64_t spare = 0);
    // Binds the same port again.
    scrm::result<void> resume_listening();
    bool listening() const;
    std::uint16_t port() const;
    bool tls() const;

    struct impl;  // opaque: defined in http_listener.cpp

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace scrm::fakes

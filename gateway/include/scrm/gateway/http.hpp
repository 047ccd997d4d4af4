// The HTTP server behind a plain interface: handlers see http_request/http_response values, never
// Beast types, so only http_server.cpp compiles Beast. Routes are matched exactly or by prefix;
// WebSocket routes hand the upgraded connection to the handler as a ws_session.
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
#include <utility>
#include <vector>

#include "scrm/gateway/config.hpp"

namespace scrm::gateway {

class metrics;

struct http_request {
    std::string method;                                        // "GET", "POST", …
    std::string target;                                        // as sent: path and query
    std::string path;                                          // target up to '?'
    std::string query;                                         // after '?', undecoded
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
    std::string body;
    std::string remote;  // peer address

    // First value of a header (name in lower case), or empty.
    std::string header(std::string_view lower_name) const;
};

struct http_response {
    unsigned status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
};

// The first value of `name` in a query string, percent-decoded ('+' reads as a space); nullopt if
// absent or malformed (a bad %-escape).
std::optional<std::string> query_param(std::string_view query, std::string_view name);

// {"error": message} with the given status.
http_response json_error(unsigned status, std::string_view message);
// A JSON-escaped string literal, quotes included.
std::string json_quote(std::string_view text);

using handler = std::function<boost::asio::awaitable<http_response>(http_request)>;

// A WebSocket connection as its handler sees it: text messages in and out, no Beast types.
//
// Threading: send() and close() may be called from any thread (e.g. a pub/sub fan-out); receive()
// must be awaited by the connection's own coroutine (ws_accept::run), one call at a time.
// Messages are written in order, one write in flight; control frames (ping, pong, close) are
// handled while a receive() is pending, so keep one pending for as long as the connection lives.
class ws_session {
public:
    virtual ~ws_session() = default;
    // Queues a text message. False, and nothing queued, once the connection is closing or closed.
    // A consumer too slow to keep up is dropped, not buffered without bound: when the queued bytes
    // would exceed http_settings::ws_queue_limit the connection is closed at once and false is
    // returned.
    virtual bool send(std::string text) = 0;
    // The next message from the peer (text or binary, as bytes); nullopt once the connection has
    // closed — by the peer, an idle timeout, close(), an overflow or the server stopping.
    virtual boost::asio::awaitable<std::optional<std::string>> receive() = 0;
    // Starts the closing handshake after the messages already queued (1000 normal closure; 4000 to
    // 4999 are the application's own codes). Idempotent.
    virtual void close(std::uint16_t code = 1000, std::string reason = {}) = 0;
};

// What a WebSocket route decides about an upgrade request.
struct ws_accept {
    // Set: the upgrade is refused with this answer (401, 403…) and the connection stays HTTP.
    std::optional<http_response> refusal;
    // Otherwise the connection's life, started once the handshake is done; the connection is
    // closed (normal closure) when it returns. Unexpected exceptions are logged and close it.
    std::function<boost::asio::awaitable<void>(std::shared_ptr<ws_session>)> run;
};
using ws_handler = std::function<boost::asio::awaitable<ws_accept>(http_request)>;

// Maps method + path to a handler. `route` is the label used in metrics (bounded cardinality).
class router {
public:
    void exact(std::string method, std::string path, handler h);
    void prefix(std::string method, std::string path_prefix, std::string route, handler h);
    // GET `path` (exact) upgraded to a WebSocket; a GET without the upgrade headers gets 426.
    void websocket(std::string path, ws_handler h);
    // Requests of `method` whose path ends with `path_suffix` may carry bodies up to `limit`
    // bytes (an upload) instead of http_settings::body_limit.
    void large_body(std::string method, std::string path_suffix, std::size_t limit);
    // The body limit of a request (`fallback` unless a large_body rule matches), and the largest
    // limit of any rule (the header parser's, before the path is known).
    std::size_t body_limit_for(const std::string& method, const std::string& path,
                               std::size_t fallback) const;
    std::size_t largest_body_limit(std::size_t fallback) const;

    struct match {
        const handler* h = nullptr;
        const ws_handler* ws = nullptr;  // a WebSocket route
        std::string route;               // metrics label: the pattern, or "unmatched"
        bool path_known = false;         // path exists but not for this method → 405
    };
    match find(const std::string& method, const std::string& path) const;

private:
    struct entry {
        std::string method, path, route;
        bool is_prefix;
        handler h;
        ws_handler ws;  // set for WebSocket routes (then h is empty)
    };
    std::vector<entry> entries_;
    struct body_rule {
        std::string method, suffix;
        std::size_t limit;
    };
    std::vector<body_rule> body_rules_;
};

// Serves a router on one listening socket. Each connection is a coroutine: the header must arrive
// within header_timeout and the body within body_timeout; a body over body_limit gets 413; idle
// keep-alive connections close after idle_timeout. Unexpected exceptions in a handler become 500
// and are logged (without bodies). Thread-safe: may run on a multi-threaded io_context.
// WebSocket connections: messages over ws_message_limit close the connection (1009); the server
// pings a peer that has been silent for half of ws_idle_timeout and drops it after the whole;
// stop() sends them a close frame (1001 going away).
class http_server {
public:
    http_server(boost::asio::any_io_executor ex, http_settings settings, router routes,
                std::shared_ptr<metrics> stats);
    ~http_server();
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    // Binds and starts accepting. Returns the bound port (useful with port 0). Throws on bind
    // failure with a message naming the address.
    std::uint16_t start();

    // Stops accepting, closes idle connections, and lets in-flight requests finish; completes when
    // every connection has closed or `grace` has passed (then the rest are closed).
    boost::asio::awaitable<void> stop(std::chrono::milliseconds grace);

    std::size_t open_connections() const;

    struct impl;  // opaque: defined in http_server.cpp

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace scrm::gateway

// Beast HTTP/1.1 and WebSocket server: one coroutine per connection on its own strand, deadlines on
// every read and write, a body limit on every parser, keep-alive, WebSocket upgrades with a bounded
// outgoing queue, and a graceful stop. The only TU here that includes Beast's HTTP machinery.
#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <list>
#include <mutex>

#include "scrm/common/log.hpp"
#include "scrm/gateway/http.hpp"
#include "scrm/gateway/metrics.hpp"

namespace scrm::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;

constexpr auto tuple_awaitable = asio::as_tuple(use_awaitable);

// ---- plain helpers
// -------------------------------------------------------------------------------

std::string http_request::header(std::string_view lower_name) const {
    for (const auto& [k, v] : headers) {
        if (k == lower_name) return v;
    }
    return {};
}

std::string json_quote(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 2);
    out += '"';
    for (unsigned char c : text) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    static const char* hex = "0123456789abcdef";
                    out += "\\u00";
                    out += hex[c >> 4];
                    out += hex[c & 15];
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    out += '"';
    return out;
}

http_response json_error(unsigned status, std::string_view message) {
    http_response r;
    r.status = status;
    r.body = "{\"error\":" + json_quote(message) + "}";
    return r;
}

void router::exact(std::string method, std::string path, handler h) {
    std::string route = path;
    entries_.push_back(
        {std::move(method), std::move(path), std::move(route), false, std::move(h), {}});
}

void router::prefix(std::string method, std::string path_prefix, std::string route, handler h) {
    entries_.push_back(
        {std::move(method), std::move(path_prefix), std::move(route), true, std::move(h), {}});
}

void router::websocket(std::string path, ws_handler h) {
    std::string route = path;
    entries_.push_back({"GET", std::move(path), std::move(route), false, {}, std::move(h)});
}

void router::large_body(std::string method, std::string path_suffix, std::size_t limit) {
    body_rules_.push_back({std::move(method), std::move(path_suffix), limit});
}

std::size_t router::body_limit_for(const std::string& method, const std::string& path,
                                   std::size_t fallback) const {
    for (const body_rule& r : body_rules_) {
        const bool ends =
            path.size() >= r.suffix.size() &&
            path.compare(path.size() - r.suffix.size(), r.suffix.size(), r.suffix) == 0;
        if (r.method == method && ends) return std::max(fallback, r.limit);
    }
    return fallback;
}

std::size_t router::largest_body_limit(std::size_t fallback) const {
    std::size_t out = fallback;
    for (const body_rule& r : body_rules_) out = std::max(out, r.limit);
    return out;
}

router::match router::find(const std::string& method, const std::string& path) const {
    match m;
    m.route = "unmatched";
    for (const entry& e : entries_) {
        const bool path_ok =
            e.is_prefix ? path.compare(0, e.path.size(), e.path) == 0 : path == e.path;
        if (!path_ok) continue;
        if (e.ws && method == "GET") {
            m.ws = &e.ws;
            m.route = e.route;
            return m;
        }
        if (!e.ws && (e.method == method || (method == "HEAD" && e.method == "GET"))) {
            m.h = &e.h;
            m.route = e.route;
            return m;
        }
        m.path_known = true;
        m.route = e.route;
    }
    return m;
}

// ---- server
// --------------------------------------------------------------------------------------

namespace {

class ws_conn;

struct connection {
    explicit connection(tcp::socket s) : stream(std::move(s)) {}
    beast::tcp_stream stream;
    std::atomic<bool> busy{false};  // a request is being read, handled or written
    std::shared_ptr<ws_conn> ws;    // after a WebSocket upgrade; touched on the strand only
};

// A WebSocket connection over a connection's stream. The queue and the flags are shared with
// send()/close() callers on other threads (mutex); the stream and the timers are used on the
// connection's strand only.
class ws_conn final : public ws_session, public std::enable_shared_from_this<ws_conn> {
public:
    ws_conn(std::shared_ptr<connection> c, std::size_t queue_limit)
        : conn_(std::move(c)),
          ws(conn_->stream),
          wake(conn_->stream.get_executor()),
          writer_done(conn_->stream.get_executor()),
          queue_limit_(queue_limit) {}

    bool send(std::string text) override {
        bool overflow = false;
        std::size_t queued = 0;
        {
            std::lock_guard lock(mutex_);
            if (closing_ || ended_) return false;
            queued = queued_bytes_;
            if (queued_bytes_ + text.size() > queue_limit_) {
                overflow = true;
                closing_ = true;
                ended_ = true;
                queue_.clear();
                queued_bytes_ = 0;
            } else {
                queued_bytes_ += text.size();
                queue_.push_back(std::move(text));
            }
        }
        if (overflow) {
            log::warn("ws.queue_overflow", {{"queued_bytes", static_cast<std::uint64_t>(queued)}});
            abort();
            return false;
        }
        poke();
        return true;
    }

    asio::awaitable<std::optional<std::string>> receive() override {
        // After a failed read the stream must not be read again (Beast's state is spent).
        if (read_ended_) co_return std::nullopt;
        beast::flat_buffer buffer;
        auto [ec, n] = co_await ws.async_read(buffer, tuple_awaitable);
        (void)n;
        if (ec) {
            read_ended_ = true;
            end();
            co_return std::nullopt;
        }
        co_return beast::buffers_to_string(buffer.data());
    }

    void close(std::uint16_t code, std::string reason) override {
        {
            std::lock_guard lock(mutex_);
            if (closing_ || ended_) return;
            closing_ = true;
            close_code_ = code;
            close_reason_ = std::move(reason);
        }
        poke();
    }

    // The writer: one write in flight, in queue order; the closing handshake once the queue is
    // empty and close() was called. Runs on the strand until the connection ends.
    static asio::awaitable<void> write_loop(std::shared_ptr<ws_conn> self) {
        for (;;) {
            std::optional<std::string> next;
            bool send_close = false;
            beast::websocket::close_reason why;
            {
                std::lock_guard lock(self->mutex_);
                if (self->ended_) break;
                if (!self->queue_.empty()) {
                    next = std::move(self->queue_.front());
                    self->queue_.pop_front();
                    self->queued_bytes_ -= next->size();
                } else if (self->closing_) {
                    send_close = true;
                    why.code = self->close_code_;
                    why.reason = self->close_reason_;
                }
            }
            if (next) {
                self->ws.text(true);
                auto [ec, n] = co_await self->ws.async_write(asio::buffer(*next), tuple_awaitable);
                (void)n;
                if (ec) {
                    self->end();
                    break;
                }
                continue;
            }
            if (send_close) {
                auto [ec] = co_await self->ws.async_close(why, tuple_awaitable);
                (void)ec;
                break;
            }
            self->wake.expires_at(asio::steady_timer::time_point::max());
            co_await self->wake.async_wait(tuple_awaitable);
        }
        self->writer_finished_ = true;
        self->writer_done.cancel();
    }

    // Waits (on the strand) until write_loop has returned.
    asio::awaitable<void> writer_finished() {
        while (!writer_finished_) {
            writer_done.expires_at(asio::steady_timer::time_point::max());
            co_await writer_done.async_wait(tuple_awaitable);
        }
    }

private:
    // The writer may be waiting: wake it on the strand (the timer is not thread-safe).
    void poke() {
        asio::post(conn_->stream.get_executor(),
                   [self = shared_from_this()] { self->wake.cancel(); });
    }
    // Drops the connection at once: pending reads and writes fail, the handler's receive() ends.
    void abort() {
        asio::post(conn_->stream.get_executor(), [self = shared_from_this()] {
            beast::error_code ec;
            self->conn_->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
            self->conn_->stream.socket().close(ec);
            self->wake.cancel();
        });
    }
    void end() {
        {
            std::lock_guard lock(mutex_);
            ended_ = true;
            queue_.clear();
            queued_bytes_ = 0;
        }
        wake.cancel();  // called on the strand
    }
    std::shared_ptr<connection> conn_;  // outlives `ws`, which refers to its stream

public:
    beast::websocket::stream<beast::tcp_stream&> ws;
    asio::steady_timer wake;         // the writer waits on it for work
    asio::steady_timer writer_done;  // cancelled when the writer returns

private:
    std::mutex mutex_;
    std::deque<std::string> queue_;
    std::size_t queued_bytes_ = 0;
    const std::size_t queue_limit_;
    bool closing_ = false;  // close() called (or overflow): nothing more is queued
    bool ended_ = false;    // the connection failed or closed: nothing more is written
    std::uint16_t close_code_ = 1000;
    std::string close_reason_;
    bool writer_finished_ = false;  // strand only
    bool read_ended_ = false;       // strand only
};

}  // namespace

struct http_server::impl : std::enable_shared_from_this<impl> {
    impl(asio::any_io_executor e, http_settings s, router r, std::shared_ptr<metrics> m)
        : ex(std::move(e)),
          settings(std::move(s)),
          routes(std::move(r)),
          stats(std::move(m)),
          acceptor(asio::make_strand(ex)) {}

    asio::any_io_executor ex;
    http_settings settings;
    router routes;
    std::shared_ptr<metrics> stats;
    tcp::acceptor acceptor;
    std::atomic<bool> stopping{false};
    mutable std::mutex mutex;
    std::list<std::shared_ptr<connection>> connections;

    // Closes on the connection's strand; with only_if_idle, a request that started meanwhile is
    // spared, and a WebSocket gets a close frame (going away) instead.
    void close_connection(const std::shared_ptr<connection>& c, bool only_if_idle) {
        asio::post(c->stream.get_executor(), [c, only_if_idle] {
            if (only_if_idle && c->ws) {
                c->ws->close(1001, "server stopping");
                return;
            }
            if (only_if_idle && c->busy) return;
            beast::error_code ec;
            c->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
            c->stream.socket().close(ec);
        });
    }
};

namespace {

http_response dispatch_error_404() {
    return json_error(404, "not found");
}

// Builds the plain request value from Beast's.
http_request to_plain(bhttp::request<bhttp::string_body>& req, const std::string& remote) {
    http_request out;
    out.method = std::string(req.method_string());
    out.target = std::string(req.target());
    const auto q = out.target.find('?');
    out.path = out.target.substr(0, q);
    if (q != std::string::npos) out.query = out.target.substr(q + 1);
    for (const auto& f : req) {
        std::string name(f.name_string());
        for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        out.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    out.body = std::move(req.body());  // the handler's now; the parser is not reused
    out.remote = remote;
    return out;
}

awaitable<void> write_response(beast::tcp_stream& stream, const http_response& r, unsigned version,
                               bool keep_alive, bool head, std::chrono::milliseconds timeout,
                               beast::error_code& ec) {
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), version};
    res.set(bhttp::field::server, "scrm-gateway");
    res.set(bhttp::field::content_type, r.content_type);
    for (const auto& [k, v] : r.headers) res.set(k, v);
    res.keep_alive(keep_alive);
    res.body() = head ? std::string() : r.body;
    res.prepare_payload();
    if (head) res.content_length(r.body.size());
    stream.expires_after(timeout);
    auto [wec, n] = co_await bhttp::async_write(stream, res, tuple_awaitable);
    (void)n;
    ec = wec;
}

// Lingering close: after refusing a request whose body is still arriving, stop sending and
// discard what the client sends for a short while, so that closing the socket with unread data
// does not reset the connection and destroy the answer before the client has read it.
awaitable<void> linger(beast::tcp_stream& stream, std::size_t max_bytes) {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.expires_after(std::chrono::seconds(2));
    std::array<char, 16384> sink;
    std::size_t drained = 0;
    while (drained < max_bytes) {
        auto [rec, n] = co_await stream.async_read_some(asio::buffer(sink), tuple_awaitable);
        if (rec) break;
        drained += n;
    }
}

// A GET on a WebSocket route: the handler accepts or refuses the upgrade; an accepted connection
// lives until the handler's run() returns, then closes. The connection is not reused for HTTP.
awaitable<void> serve_websocket(std::shared_ptr<http_server::impl> self,
                                std::shared_ptr<connection> conn,
                                const bhttp::request<bhttp::string_body>& req, http_request plain,
                                const ws_handler& handler, const std::string& route,
                                std::chrono::steady_clock::time_point started) {
    const http_settings& s = self->settings;
    const auto finish = [&](unsigned status) {
        self->stats->observe_request(route, status, std::chrono::steady_clock::now() - started);
    };
    if (!beast::websocket::is_upgrade(req)) {
        http_response res = json_error(426, "WebSocket upgrade required");
        res.headers.emplace_back("Upgrade", "websocket");
        beast::error_code wec;
        co_await write_response(conn->stream, res, req.version(), false, false, s.body_timeout,
                                wec);
        finish(426);
        co_return;
    }
    ws_accept accept;
    try {
        accept = co_await handler(std::move(plain));
    } catch (const std::exception& e) {
        log::error("http.handler_exception", {{"route", route}, {"what", e.what()}});
        accept.refusal = json_error(500, "internal error");
    }
    if (accept.refusal || !accept.run) {
        const http_response res = accept.refusal.value_or(json_error(500, "internal error"));
        beast::error_code wec;
        co_await write_response(conn->stream, res, req.version(), false, false, s.body_timeout,
                                wec);
        finish(res.status);
        co_return;
    }

    conn->stream.expires_never();  // the WebSocket's own timeouts apply from here
    auto session = std::make_shared<ws_conn>(conn, s.ws_queue_limit);
    beast::websocket::stream_base::timeout timeouts;
    timeouts.handshake_timeout = s.header_timeout;
    timeouts.idle_timeout = s.ws_idle_timeout;
    timeouts.keep_alive_pings = true;
    session->ws.set_option(timeouts);
    session->ws.set_option(
        beast::websocket::stream_base::decorator([](beast::websocket::response_type& res) {
            res.set(bhttp::field::server, "scrm-gateway");
        }));
    session->ws.read_message_max(s.ws_message_limit);
    auto [aec] = co_await session->ws.async_accept(req, tuple_awaitable);
    if (aec) {
        log::info("ws.handshake_failed", {{"route", route}, {"reason", aec.message()}});
        finish(400);
        co_return;
    }
    finish(101);
    conn->ws = session;
    if (self->stopping) session->close(1001, "server stopping");
    asio::co_spawn(conn->stream.get_executor(), ws_conn::write_loop(session), asio::detached);
    try {
        co_await accept.run(session);
    } catch (const std::exception& e) {
        log::error("ws.handler_exception", {{"route", route}, {"what", e.what()}});
    }
    session->close(1000, {});
    // The peer answers the close frame; read until the stream reports the end (bounded by the
    // WebSocket timeouts), so that the closing handshake completes.
    while (co_await session->receive()) {
    }
    co_await session->writer_finished();
    conn->ws.reset();
}

awaitable<void> run_session(std::shared_ptr<http_server::impl> self,
                            std::shared_ptr<connection> conn) {
    const http_settings& s = self->settings;
    beast::flat_buffer buffer;
    std::string remote;
    {
        beast::error_code ec;
        auto ep = conn->stream.socket().remote_endpoint(ec);
        if (!ec) remote = ep.address().to_string();
    }
    bool first = true;
    for (;;) {
        conn->busy = false;
        if (self->stopping) break;
        bhttp::request_parser<bhttp::string_body> parser;
        parser.header_limit(16 * 1024);
        // Beast checks Content-Length against the limit while parsing the header, before the
        // path is known: the largest limit first, the request's own once the header is in.
        parser.body_limit(self->routes.largest_body_limit(s.body_limit));

        // Wait for the first byte (idle keep-alive), then the whole header within header_timeout.
        if (buffer.size() == 0) {
            conn->stream.expires_after(first ? s.header_timeout : s.idle_timeout);
            auto [ec, n] =
                co_await conn->stream.async_read_some(buffer.prepare(4096), tuple_awaitable);
            if (ec) break;  // closed, idle timeout or shutdown
            buffer.commit(n);
        }
        first = false;
        conn->busy = true;
        const auto started = std::chrono::steady_clock::now();
        conn->stream.expires_after(s.header_timeout);
        auto [hec, hn] =
            co_await bhttp::async_read_header(conn->stream, buffer, parser, tuple_awaitable);
        (void)hn;
        beast::error_code ec = hec;
        if (!ec) {
            const auto& head = parser.get();
            const std::string target(head.target());
            const std::size_t limit =
                self->routes.body_limit_for(std::string(head.method_string()),
                                            target.substr(0, target.find('?')), s.body_limit);
            parser.body_limit(limit);  // chunked bodies are counted as they come
            if (parser.content_length() && *parser.content_length() > limit) {
                ec = bhttp::error::body_limit;
            }
        }
        if (!ec) {
            auto& req = parser.get();
            if (bhttp::token_list(req[bhttp::field::expect]).exists("100-continue")) {
                bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, req.version()};
                conn->stream.expires_after(s.body_timeout);
                auto [cec, cn] = co_await bhttp::async_write(conn->stream, cont, tuple_awaitable);
                (void)cn;
                ec = cec;
            }
        }
        if (!ec && !parser.is_done()) {
            conn->stream.expires_after(s.body_timeout);
            auto [bec, bn] =
                co_await bhttp::async_read(conn->stream, buffer, parser, tuple_awaitable);
            (void)bn;
            ec = bec;
        }
        if (ec == bhttp::error::body_limit) {
            const unsigned version = parser.is_header_done() ? parser.get().version() : 11;
            log::info("http.refused",
                      {{"status", 413}, {"reason", "body over limit"}, {"remote", remote}});
            beast::error_code wec;
            co_await write_response(conn->stream, json_error(413, "request body too large"),
                                    version, false, false, s.body_timeout, wec);
            self->stats->observe_request("unmatched", 413,
                                         std::chrono::steady_clock::now() - started);
            if (!wec) co_await linger(conn->stream, s.body_limit * 4);
            break;
        }
        if (ec) {
            if (ec == beast::error::timeout) {
                log::info("http.timeout",
                          {{"remote", remote}, {"header_done", parser.is_header_done()}});
            } else if (ec != bhttp::error::end_of_stream && ec != asio::error::operation_aborted &&
                       ec != asio::error::connection_reset && ec != asio::error::eof) {
                // Malformed request: answer 400 once, then close.
                log::info("http.bad_request", {{"remote", remote}, {"reason", ec.message()}});
                beast::error_code wec;
                co_await write_response(conn->stream, json_error(400, "malformed HTTP request"), 11,
                                        false, false, s.body_timeout, wec);
            }
            break;
        }

        auto& req = parser.get();
        http_request plain = to_plain(req, remote);
        const auto match = self->routes.find(plain.method, plain.path);
        if (match.ws) {
            co_await serve_websocket(self, conn, req, std::move(plain), *match.ws, match.route,
                                     started);
            break;
        }
        http_response res;
        if (match.h) {
            try {
                res = co_await (*match.h)(std::move(plain));
            } catch (const std::exception& e) {
                log::error("http.handler_exception", {{"route", match.route}, {"what", e.what()}});
                res = json_error(500, "internal error");
            }
        } else if (match.path_known) {
            res = json_error(405, "method not allowed");
        } else {
            res = dispatch_error_404();
        }
        // Decided after the handler: a stop that began meanwhile closes the connection.
        const bool keep_alive = req.keep_alive() && !self->stopping;
        beast::error_code wec;
        co_await write_response(conn->stream, res, req.version(), keep_alive,
                                req.method() == bhttp::verb::head, s.body_timeout, wec);
        self->stats->observe_request(match.route, res.status,
                                     std::chrono::steady_clock::now() - started);
        if (wec || !keep_alive) break;
    }
    beast::error_code ec;
    conn->stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    conn->stream.socket().close(ec);
    std::lock_guard lock(self->mutex);
    self->connections.remove(conn);
}

awaitable<void> run_listener(std::shared_ptr<http_server::impl> self) {
    for (;;) {
        auto [ec, socket] =
            co_await self->acceptor.async_accept(asio::make_strand(self->ex), tuple_awaitable);
        if (self->stopping) break;
        if (ec) {
            log::warn("http.accept_failed", {{"reason", ec.message()}});
            asio::steady_timer pause(self->acceptor.get_executor(), std::chrono::milliseconds(50));
            co_await pause.async_wait(tuple_awaitable);
            continue;
        }
        auto conn = std::make_shared<connection>(std::move(socket));
        {
            std::lock_guard lock(self->mutex);
            self->connections.push_back(conn);
        }
        asio::co_spawn(conn->stream.get_executor(), run_session(self, conn), asio::detached);
    }
}

}  // namespace

http_server::http_server(asio::any_io_executor ex, http_settings settings, router routes,
                         std::shared_ptr<metrics> stats)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(settings), std::move(routes),
                                   std::move(stats))) {}

http_server::~http_server() {
    beast::error_code ec;
    impl_->stopping = true;
    impl_->acceptor.close(ec);
}

std::uint16_t http_server::start() {
    const auto& s = impl_->settings;
    beast::error_code ec;
    const auto address = asio::ip::make_address(s.listen_host, ec);
    if (ec) throw std::runtime_error("http.listen: \"" + s.listen_host + "\" is not an IP address");
    const tcp::endpoint ep(address, s.listen_port);
    auto& a = impl_->acceptor;
    a.open(ep.protocol());
    a.set_option(asio::socket_base::reuse_address(true));
    a.bind(ep, ec);
    if (ec) {
        throw std::runtime_error("cannot listen on " + s.listen_host + ":" +
                                 std::to_string(s.listen_port) + ": " + ec.message());
    }
    a.listen(asio::socket_base::max_listen_connections);
    const auto port = a.local_endpoint().port();
    asio::co_spawn(a.get_executor(), run_listener(impl_), asio::detached);
    return port;
}

awaitable<void> http_server::stop(std::chrono::milliseconds grace) {
    auto self = impl_;
    self->stopping = true;
    asio::post(self->acceptor.get_executor(), [self] {
        beast::error_code ec;
        self->acceptor.close(ec);
    });
    // Idle connections are closed at once; busy ones finish their request (keep-alive is off now).
    {
        std::lock_guard lock(self->mutex);
        for (const auto& c : self->connections) {
            self->close_connection(c, true);
        }
    }
    const auto deadline = std::chrono::steady_clock::now() + grace;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    while (open_connections() > 0 && std::chrono::steady_clock::now() < deadline) {
        timer.expires_after(std::chrono::milliseconds(10));
        co_await timer.async_wait(tuple_awaitable);
    }
    std::lock_guard lock(self->mutex);
    if (!self->connections.empty()) {
        log::warn("http.shutdown_forced",
                  {{"connections", static_cast<std::uint64_t>(self->connections.size())}});
        for (const auto& c : self->connections) self->close_connection(c, false);
    }
}

std::size_t http_server::open_connections() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->connections.size();
}

}  // namespace scrm::gateway

// Beast server for the fake WeChat: one coroutine per connection (plain or TLS), a deadline on
// every read and write, a body limit, keep-alive; dropping a connection instead of answering, and
// closing/reopening the listening socket on demand.
#include "scrm/fakes/http_listener.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cctype>
#include <map>
#include <optional>
#include <vector>

#include "scrm/common/log.hpp"

namespace scrm::fakes {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;

namespace {
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);
}  // namespace

std::string listener_request::header(std::string_view lower_name) const {
    for (const auto& [k, v] : headers) {
        if (k == lower_name) return v;
    }
    return {};
}

struct http_listener::impl : std::enable_shared_from_this<impl> {
    impl(asio::any_io_executor e, listener_options o, listener_handler h)
        : ex(std::move(e)), opts(std::move(o)), handler(std::move(h)) {}

    asio::any_io_executor ex;
    listener_options opts;
    listener_handler handler;
    std::optional<asio::ssl::context> tls;
    std::optional<tcp::acceptor> acceptor;
    std::uint16_t bound_port = 0;
    std::uint64_t generation = 0;  // bumped by stop_listening: old accept loops end
    std::uint64_t next_conn = 0;
    std::map<std::uint64_t, std::function<void()>> closers;  // open connections

    scrm::result<void> bind(std::uint16_t port);
    void close_all(std::uint64_t spare) {
        std::vector<std::function<void()>> doomed;
        for (auto it = closers.begin(); it != closers.end();) {
            if (it->first == spare) {
                ++it;
                continue;
            }
            doomed.push_back(std::move(it->second));
            it = closers.erase(it);
        }
        for (auto& close : doomed) close();
    }
};

namespace {

listener_request to_plain(const bhttp::request<bhttp::string_body>& req, std::uint64_t conn) {
    listener_request out;
    out.connection = conn;
    out.method = std::string(req.method_string());
    out.target = std::string(req.target());
    const auto q = out.target.find('?');
    out.path = out.target.substr(0, q);
    if (q != std::string::npos) out.query = out.target.substr(q + 1);
    for (const auto& f : req) {
        std::string name(f.name_string());
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        out.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    out.body = req.body();
    return out;
}

template <class Stream>
awaitable<bool> write_response(Stream& stream, const listener_response& r, unsigned version,
                               bool keep_alive, std::chrono::milliseconds timeout) {
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), version};
    res.set(bhttp::field::server, "fake-wechat");
    res.set(bhttp::field::content_type, r.content_type);
    for (const auto& [k, v] : r.headers) res.set(k, v);
    res.keep_alive(keep_alive);
    res.body() = r.body;
    res.prepare_payload();
    beast::get_lowest_layer(stream).expires_after(timeout);
    auto [ec, n] = co_await bhttp::async_write(stream, res, tuple_awaitable);
    (void)n;
    co_return !ec;
}

// Serves requests on one connection until it closes, times out or is dropped.
template <class Stream>
awaitable<void> serve(std::shared_ptr<http_listener::impl> self, Stream& stream,
                      std::uint64_t conn) {
    const auto& o = self->opts;
    beast::flat_buffer buffer;
    bool first = true;
    for (;;) {
        bhttp::request_parser<bhttp::string_body> parser;
        parser.header_limit(16 * 1024);
        parser.body_limit(o.body_limit);
        beast::get_lowest_layer(stream).expires_after(first ? o.read_timeout : o.idle_timeout);
        first = false;
        auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, tuple_awaitable);
        (void)n;
        if (ec == bhttp::error::body_limit) {
            listener_response r;
            r.status = 413;
            r.body = R"({"errcode":-1,"errmsg":"request body too large"})";
            co_await write_response(stream, r, 11, false, o.read_timeout);
            co_return;
        }
        if (ec) co_return;  // closed, timed out, malformed: WeChat's hosts just hang up too
        auto& req = parser.get();
        listener_response res;
        try {
            res = co_await self->handler(to_plain(req, conn));
        } catch (const std::exception& e) {
            log::error("fake_wechat.handler_exception", {{"what", e.what()}});
            res.status = 500;
            res.body = R"({"errcode":-1,"errmsg":"system error"})";
        }
        if (res.drop) co_return;  // the caller closes the socket: no answer at all
        const bool keep_alive = req.keep_alive() && !res.close;
        if (!co_await write_response(stream, res, req.version(), keep_alive, o.read_timeout)) {
            co_return;
        }
        if (!keep_alive) co_return;
    }
}

awaitable<void> run_plain(std::shared_ptr<http_listener::impl> self, tcp::socket socket) {
    auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
    const auto id = ++self->next_conn;
    std::weak_ptr<beast::tcp_stream> weak = stream;
    self->closers[id] = [weak] {
        if (auto s = weak.lock()) s->close();
    };
    co_await serve(self, *stream, id);
    self->closers.erase(id);
    beast::error_code ec;
    stream->socket().shutdown(tcp::socket::shutdown_both, ec);
    stream->close();
}

awaitable<void> run_tls(std::shared_ptr<http_listener::impl> self, tcp::socket socket) {
    auto stream =
        std::make_shared<beast::ssl_stream<beast::tcp_stream>>(std::move(socket), *self->tls);
    const auto id = ++self->next_conn;
    std::weak_ptr<beast::ssl_stream<beast::tcp_stream>> weak = stream;
    self->closers[id] = [weak] {
        if (auto s = weak.lock()) beast::get_lowest_layer(*s).close();
    };
    beast::get_lowest_layer(*stream).expires_after(self->opts.read_timeout);
    auto [hec] = co_await stream->async_handshake(asio::ssl::stream_base::server, tuple_awaitable);
    if (!hec) co_await serve(self, *stream, id);
    self->closers.erase(id);
    beast::get_lowest_layer(*stream).close();  // no close_notify: a dropped answer stays dropped
}

awaitable<void> accept_loop(std::shared_ptr<http_listener::impl> self, std::uint64_t generation) {
    while (self->generation == generation && self->acceptor && self->acceptor->is_open()) {
        auto [ec, socket] = co_await self->acceptor->async_accept(tuple_awaitable);
        if (self->generation != generation) co_return;
        if (ec) {
            if (ec == asio::error::operation_aborted) co_return;
            log::warn("fake_wechat.accept_failed", {{"reason", ec.message()}});
            continue;
        }
        if (self->tls) {
            asio::co_spawn(self->ex, run_tls(self, std::move(socket)), asio::detached);
        } else {
            asio::co_spawn(self->ex, run_plain(self, std::move(socket)), asio::detached);
        }
    }
}

}  // namespace

scrm::result<void> http_listener::impl::bind(std::uint16_t port) {
    beast::error_code ec;
    const auto address = asio::ip::make_address(opts.host, ec);
    if (ec) return make_error_code(errc::bad_input);
    const tcp::endpoint ep(address, port);
    acceptor.emplace(ex);
    acceptor->open(ep.protocol(), ec);
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor->bind(ep, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        log::error("fake_wechat.listen_failed", {{"address", opts.host},
                                                 {"port", static_cast<unsigned>(port)},
                                                 {"reason", ec.message()}});
        acceptor.reset();
        return make_error_code(errc::unavailable);
    }
    bound_port = acceptor->local_endpoint().port();
    asio::co_spawn(ex, accept_loop(shared_from_this(), generation), asio::detached);
    return {};
}

http_listener::http_listener(asio::any_io_executor ex, listener_options opts, listener_handler h)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(opts), std::move(h))) {}

http_listener::~http_listener() {
    stop_listening();
}

scrm::result<std::uint16_t> http_listener::start() {
    auto& o = impl_->opts;
    if (!o.cert_file.empty() || !o.key_file.empty()) {
        impl_->tls.emplace(asio::ssl::context::tls_server);
        beast::error_code ec;
        impl_->tls->set_options(asio::ssl::context::default_workarounds |
                                    asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                                    asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1,
                                ec);
        if (!ec) impl_->tls->use_certificate_chain_file(o.cert_file.string(), ec);
        if (!ec) impl_->tls->use_private_key_file(o.key_file.string(), asio::ssl::context::pem, ec);
        if (ec) {
            log::error("fake_wechat.tls_setup_failed", {{"reason", ec.message()}});
            return make_error_code(errc::bad_input);
        }
    }
    auto bound = impl_->bind(o.port);
    if (!bound) return bound.error();
    return impl_->bound_port;
}

void http_listener::stop_listening(std::uint64_t spare) {
    ++impl_->generation;
    if (impl_->acceptor) {
        beast::error_code ec;
        impl_->acceptor->close(ec);
        impl_->acceptor.reset();
    }
    impl_->close_all(spare);
}

scrm::result<void> http_listener::resume_listening() {
    if (impl_->acceptor) return {};
    return impl_->bind(impl_->bound_port);
}

bool http_listener::listening() const {
    return impl_->acceptor.has_value();
}

std::uint16_t http_listener::port() const {
    return impl_->bound_port;
}

bool http_listener::tls() const {
    return impl_->tls.has_value();
}

}  // namespace scrm::fakes

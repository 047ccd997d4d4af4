// The WeChat client's transport: one HTTP(S) request per connection with Beast, under one deadline,
// reporting whether the request had been written when it failed. The only Beast/SSL TU of wechat/.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <memory>

#include "scrm/wechat/client.hpp"

namespace scrm::wechat {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

struct parsed_url {
    bool https = false;
    std::string host, port, prefix;
};

bool parse_base_url(std::string_view url, parsed_url& out) {
    if (url.rfind("http://", 0) == 0) {
        url.remove_prefix(7);
        out.port = "80";
    } else if (url.rfind("https://", 0) == 0) {
        url.remove_prefix(8);
        out.https = true;
        out.port = "443";
    } else {
        return false;
    }
    const auto slash = url.find('/');
    const std::string_view authority = url.substr(0, slash);
    if (slash != std::string_view::npos) out.prefix = std::string(url.substr(slash));
    while (!out.prefix.empty() && out.prefix.back() == '/') out.prefix.pop_back();
    if (authority.find_first_of("?#@") != std::string_view::npos) return false;
    if (!authority.empty() && authority.front() == '[') {  // [IPv6]:port
        const auto close = authority.find(']');
        if (close == std::string_view::npos) return false;
        out.host = std::string(authority.substr(1, close - 1));
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':') return false;
            out.port = std::string(authority.substr(close + 2));
        }
    } else {
        const auto colon = authority.rfind(':');
        out.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) out.port = std::string(authority.substr(colon + 1));
    }
    return !out.host.empty() && !out.port.empty();
}

boost::system::error_code normalize(const beast::error_code& ec) {
    if (ec == beast::error::timeout || ec == asio::error::operation_aborted) {
        return make_error_code(errc::timeout);
    }
    return ec;
}

template <class Stream>
asio::awaitable<void> exchange(Stream& stream, const parsed_url& url, http_request req,
                               http_outcome& out) {
    const bhttp::verb verb = bhttp::string_to_verb(req.method);
    bhttp::request<bhttp::string_body> msg{verb, url.prefix + req.target, 11};
    msg.set(bhttp::field::host, url.host);
    msg.set(bhttp::field::connection, "close");
    msg.set(bhttp::field::user_agent, "scrm-gateway");
    if (verb != bhttp::verb::get && verb != bhttp::verb::head) {
        if (!req.content_type.empty()) msg.set(bhttp::field::content_type, req.content_type);
        msg.body() = std::move(req.body);
    }
    msg.prepare_payload();
    auto [wec, wn] = co_await bhttp::async_write(stream, msg, tuple_awaitable);
    // Conservative: once any byte left, the server may hold (part of) the request.
    out.written = wn > 0 || !wec;
    if (wec) {
        out.ec = normalize(wec);
        co_return;
    }
    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(req.response_limit);
    auto [rec, rn] = co_await bhttp::async_read(stream, buffer, parser, tuple_awaitable);
    (void)rn;
    if (rec) {
        out.ec = normalize(rec);
        co_return;
    }
    auto& res = parser.get();
    out.status = res.result_int();
    out.content_type = std::string(res[bhttp::field::content_type]);
    out.content_disposition = std::string(res[bhttp::field::content_disposition]);
    out.body = std::move(res.body());
}

// Resolves with the deadline: the resolver has no timeout of its own.
asio::awaitable<tcp::resolver::results_type> resolve(const parsed_url& url,
                                                     std::chrono::steady_clock::time_point deadline,
                                                     boost::system::error_code& ec) {
    auto ex = co_await asio::this_coro::executor;
    // Shared with the timer's handler, which may run after this frame is gone.
    auto resolver = std::make_shared<tcp::resolver>(ex);
    auto expired = std::make_shared<bool>(false);
    asio::steady_timer timer(ex);
    timer.expires_at(deadline);
    auto on_timer = [resolver, expired](const boost::system::error_code& tec) {
        if (!tec) {
            *expired = true;
            resolver->cancel();
        }
    };
    timer.async_wait(on_timer);
    auto [rec, results] = co_await resolver->async_resolve(url.host, url.port, tuple_awaitable);
    timer.cancel();
    ec = *expired ? make_error_code(errc::timeout) : rec;
    co_return results;
}

}  // namespace

asio::awaitable<http_outcome> http_exchange(http_endpoint ep, http_request req) {
    http_outcome out;
    parsed_url url;
    if (!parse_base_url(ep.base_url, url) ||
        bhttp::string_to_verb(req.method) == bhttp::verb::unknown) {
        out.ec = make_error_code(errc::bad_input);
        co_return out;
    }
    auto ex = co_await asio::this_coro::executor;
    const auto deadline = std::chrono::steady_clock::now() + ep.timeout;
    boost::system::error_code rec;
    auto endpoints = co_await resolve(url, deadline, rec);
    if (rec) {
        out.ec = rec;
        co_return out;
    }
    if (!url.https) {
        beast::tcp_stream stream(ex);
        stream.expires_at(deadline);
        auto [cec, cep] = co_await stream.async_connect(endpoints, tuple_awaitable);
        (void)cep;
        if (cec) {
            out.ec = normalize(cec);
            co_return out;
        }
        co_await exchange(stream, url, std::move(req), out);
        beast::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        co_return out;
    }
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    beast::error_code ec;
    ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                        asio::ssl::context::no_tlsv1_1,
                    ec);
    ctx.set_verify_mode(asio::ssl::verify_peer, ec);
    if (ep.ca_file.empty()) {
        ctx.set_default_verify_paths(ec);
    } else {
        ctx.load_verify_file(ep.ca_file, ec);
    }
    if (ec) {
        out.ec = ec;
        co_return out;
    }
    beast::ssl_stream<beast::tcp_stream> stream(ex, ctx);
    stream.set_verify_callback(asio::ssl::host_name_verification(url.host), ec);
    if (ec) {
        out.ec = ec;
        co_return out;
    }
    beast::error_code addr_ec;
    asio::ip::make_address(url.host, addr_ec);
    if (addr_ec) {  // SNI for names only
        SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str());
    }
    beast::get_lowest_layer(stream).expires_at(deadline);
    auto [cec, cep] =
        co_await beast::get_lowest_layer(stream).async_connect(endpoints, tuple_awaitable);
    (void)cep;
    if (cec) {
        out.ec = normalize(cec);
        co_return out;
    }
    auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, tuple_awaitable);
    if (hec) {
        out.ec = normalize(hec);
        co_return out;
    }
    co_await exchange(stream, url, std::move(req), out);
    // No TLS close_notify round trip: the answer is complete and the server closes anyway.
    beast::error_code ignored;
    beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(stream).close();
    co_return out;
}

}  // namespace scrm::wechat

// The fake's HTTP(S) client: resolve, connect, (handshake), write, read — all under one deadline.
#include "scrm/fakes/http_fetch.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cctype>
#include <ostream>

namespace scrm::fakes {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

struct parsed_url {
    bool https = false;
    std::string host, port, target;
};

bool parse_url(std::string_view url, parsed_url& out) {
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
    const auto slash = url.find_first_of("/?");
    std::string_view authority = url.substr(0, slash);
    out.target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
    if (!out.target.empty() && out.target.front() == '?') out.target.insert(0, "/");
    if (!authority.empty() && authority.front() == '[') {  // [IPv6]:port
        const auto close = authority.find(']');
        if (close == std::string_view::npos) return false;
        out.host = std::string(authority.substr(1, close - 1));
        if (close + 1 < authority.size() && authority[close + 1] == ':') {
            out.port = std::string(authority.substr(close + 2));
        }
    } else {
        const auto colon = authority.rfind(':');
        out.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) out.port = std::string(authority.substr(colon + 1));
    }
    return !out.host.empty() && !out.port.empty();
}

scrm::result<fetch_reply> failure(const beast::error_code& ec) {
    if (ec == beast::error::timeout) return make_error_code(errc::timeout);
    return ec;
}

template <class Stream>
asio::awaitable<scrm::result<fetch_reply>> exchange(Stream& stream, const parsed_url& url,
                                                    const fetch_request& req) {
    bhttp::request<bhttp::string_body> msg{bhttp::string_to_verb(req.method), url.target, 11};
    msg.set(bhttp::field::host, url.host);
    msg.set(bhttp::field::connection, "close");
    for (const auto& [k, v] : req.headers) msg.set(k, v);
    msg.body() = req.body;
    if (!req.body.empty() || req.method == "POST" || req.method == "PUT") msg.prepare_payload();
    auto [wec, wn] = co_await bhttp::async_write(stream, msg, tuple_awaitable);
    (void)wn;
    if (wec) co_return failure(wec);
    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    auto [rec, rn] = co_await bhttp::async_read(stream, buffer, parser, tuple_awaitable);
    (void)rn;
    if (rec) co_return failure(rec);
    auto& res = parser.get();
    fetch_reply out;
    out.status = res.result_int();
    for (const auto& f : res) {
        std::string name(f.name_string());
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        out.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    out.body = std::move(res.body());
    co_return out;
}

}  // namespace

std::string fetch_reply::header(std::string_view lower_name) const {
    for (const auto& [k, v] : headers) {
        if (k == lower_name) return v;
    }
    return {};
}

std::ostream& operator<<(std::ostream& os, const fetch_reply& r) {
    return os << "fetch_reply{status: " << r.status << ", body: " << r.body.size() << " bytes}";
}

asio::awaitable<scrm::result<fetch_reply>> fetch(fetch_request req, fetch_options opts) {
    parsed_url url;
    if (!parse_url(req.url, url)) co_return make_error_code(errc::bad_input);
    auto ex = co_await asio::this_coro::executor;
    const auto deadline = std::chrono::steady_clock::now() + opts.timeout;
    tcp::resolver resolver(ex);
    auto [rec, endpoints] = co_await resolver.async_resolve(url.host, url.port, tuple_awaitable);
    if (rec) co_return rec;
    if (!url.https) {
        beast::tcp_stream stream(ex);
        stream.expires_at(deadline);
        auto [cec, ep] = co_await stream.async_connect(endpoints, tuple_awaitable);
        (void)ep;
        if (cec) co_return failure(cec);
        auto out = co_await exchange(stream, url, req);
        beast::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        co_return out;
    }
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    beast::error_code ec;
    ctx.set_verify_mode(asio::ssl::verify_peer);
    if (opts.ca_file.empty()) {
        ctx.set_default_verify_paths(ec);
    } else {
        ctx.load_verify_file(opts.ca_file, ec);
    }
    if (ec) co_return ec;
    beast::ssl_stream<beast::tcp_stream> stream(ex, ctx);
    stream.set_verify_callback(asio::ssl::host_name_verification(url.host));
    beast::error_code addr_ec;
    asio::ip::make_address(url.host, addr_ec);
    if (addr_ec)
        SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str());  // SNI: names only
    beast::get_lowest_layer(stream).expires_at(deadline);
    auto [cec, ep] =
        co_await beast::get_lowest_layer(stream).async_connect(endpoints, tuple_awaitable);
    (void)ep;
    if (cec) co_return failure(cec);
    auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, tuple_awaitable);
    if (hec) co_return failure(hec);
    auto out = co_await exchange(stream, url, req);
    beast::get_lowest_layer(stream).close();
    co_return out;
}

}  // namespace scrm::fakes

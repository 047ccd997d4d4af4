// The HTTP skeleton over real loopback TCP: routing and JSON errors, body limit, timeouts against
// slow clients, keep-alive, readiness with failing and hanging probes, metrics, graceful stop.
#include <catch2/catch.hpp>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <future>
#include <thread>

#include "scrm/gateway/health.hpp"
#include "scrm/gateway/http.hpp"
#include "scrm/gateway/metrics.hpp"

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
using namespace scrm::gateway;
using namespace std::chrono_literals;

namespace {

awaitable<http_response> echo(http_request req) {
    http_response r;
    r.body = "{\"method\":" + json_quote(req.method) +
             ",\"bytes\":" + std::to_string(req.body.size()) + "}";
    co_return r;
}

awaitable<http_response> throws(http_request) {
    throw std::runtime_error("boom");
    co_return http_response{};
}

std::atomic<bool> slow_started{false};

awaitable<http_response> slow(http_request) {
    slow_started = true;
    asio::steady_timer t(co_await asio::this_coro::executor, 300ms);
    co_await t.async_wait(asio::use_awaitable);
    http_response r;
    r.body = "{\"slow\":true}";
    co_return r;
}

awaitable<std::optional<std::string>> probe_ok() {
    co_return std::nullopt;
}
awaitable<std::optional<std::string>> probe_down() {
    co_return std::string("connection refused");
}
awaitable<std::optional<std::string>> probe_hangs() {
    asio::steady_timer t(co_await asio::this_coro::executor, 10s);
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return std::nullopt;
}

// A server on 127.0.0.1:0 with two I/O threads.
struct fixture {
    explicit fixture(std::vector<dependency_check> checks = {{"ok", [] { return probe_ok(); }}}) {
        settings.listen_port = 0;
        settings.body_limit = 4096;
        settings.header_timeout = 400ms;
        settings.body_timeout = 400ms;
        settings.idle_timeout = 2s;
        router routes;
        routes.exact("POST", "/echo", [](http_request r) { return echo(std::move(r)); });
        routes.exact("GET", "/throws", [](http_request r) { return throws(std::move(r)); });
        routes.exact("GET", "/slow", [](http_request r) { return slow(std::move(r)); });
        add_health_routes(routes, std::move(checks), 200ms, stats);
        server =
            std::make_unique<http_server>(io.get_executor(), settings, std::move(routes), stats);
        port = server->start();
        for (int i = 0; i < 2; ++i) threads.emplace_back([this] { io.run(); });
    }
    ~fixture() {
        if (server) stop(100ms);
        work.reset();
        io.stop();
        for (auto& t : threads) t.join();
    }
    void stop(std::chrono::milliseconds grace) {
        auto f = asio::co_spawn(io, server->stop(grace), asio::use_future);
        f.get();
    }

    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    http_settings settings;
    std::shared_ptr<metrics> stats = std::make_shared<metrics>();
    std::unique_ptr<http_server> server;
    std::uint16_t port = 0;
    std::vector<std::thread> threads;
};

// A blocking client socket for the test thread.
struct client {
    explicit client(std::uint16_t port) : socket(io) {
        socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    }
    void send(const std::string& bytes) { asio::write(socket, asio::buffer(bytes)); }
    // Reads one response (headers + Content-Length body). Empty string if the server closed first.
    std::string read_response() {
        std::string out;
        char c;
        boost::system::error_code ec;
        while (out.find("\r\n\r\n") == std::string::npos) {
            if (asio::read(socket, asio::buffer(&c, 1), ec) != 1) return out;
            out += c;
        }
        const auto cl = out.find("Content-Length: ");
        if (cl != std::string::npos) {
            const std::size_t n = std::stoul(out.substr(cl + 16));
            std::string body(n, '\0');
            asio::read(socket, asio::buffer(body), ec);
            out += body;
        }
        return out;
    }
    // True when the server closes the connection (read returns EOF/reset).
    bool closed_by_server() {
        char c;
        boost::system::error_code ec;
        asio::read(socket, asio::buffer(&c, 1), ec);
        return static_cast<bool>(ec);
    }
    asio::io_context io;
    tcp::socket socket;
};

std::string get(std::uint16_t port, const std::string& path) {
    client c(port);
    c.send("GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    return c.read_response();
}

std::string status_line(const std::string& response) {
    return response.substr(0, response.find("\r\n"));
}
std::string body_of(const std::string& response) {
    return response.substr(response.find("\r\n\r\n") + 4);
}

}  // namespace

TEST_CASE("routes, 404 and 405 answer with JSON") {
    fixture f;
    auto r = get(f.port, "/healthz");
    CHECK(status_line(r) == "HTTP/1.1 200 OK");
    CHECK(body_of(r) == "{\"status\":\"alive\"}");

    r = get(f.port, "/no/such/path?x=1");
    CHECK(status_line(r) == "HTTP/1.1 404 Not Found");
    CHECK(r.find("Content-Type: application/json") != std::string::npos);
    CHECK(body_of(r) == "{\"error\":\"not found\"}");

    r = get(f.port, "/echo");
    CHECK(status_line(r) == "HTTP/1.1 405 Method Not Allowed");
    CHECK(body_of(r) == "{\"error\":\"method not allowed\"}");
}

TEST_CASE("a body over the limit is refused with 413 and the server stays healthy") {
    fixture f;
    {
        client c(f.port);
        c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n");
        const auto r = c.read_response();
        CHECK(status_line(r) == "HTTP/1.1 413 Payload Too Large");
        CHECK(body_of(r) == "{\"error\":\"request body too large\"}");
    }
    {
        // Chunked: the size is only known while reading.
        client c(f.port);
        const std::string chunk(3000, 'a');
        c.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nbb8\r\n" +
               chunk + "\r\nbb8\r\n" + chunk + "\r\n0\r\n\r\n");
        CHECK(status_line(c.read_response()) == "HTTP/1.1 413 Payload Too Large");
    }
    {
        client c(f.port);
        c.send(
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\nConnection: close\r\n\r\n" +
            std::string(4096, 'b'));
        const auto r = c.read_response();
        CHECK(status_line(r) == "HTTP/1.1 200 OK");
        CHECK(body_of(r) == "{\"method\":\"POST\",\"bytes\":4096}");
    }
}

TEST_CASE("keep-alive serves several requests on one connection") {
    fixture f;
    client c(f.port);
    for (int i = 0; i < 3; ++i) {
        c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
        CHECK(body_of(c.read_response()) == "{\"method\":\"POST\",\"bytes\":2}");
    }
}

TEST_CASE("slow and incomplete requests hit the read timeouts") {
    fixture f;
    {
        // Header sent byte by byte, slower than the header timeout allows in total.
        client c(f.port);
        const std::string header = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        bool closed = false;
        boost::system::error_code ec;
        for (char ch : header) {
            asio::write(c.socket, asio::buffer(&ch, 1), ec);
            if (ec) {
                closed = true;
                break;
            }
            std::this_thread::sleep_for(
                30ms);  // the slow client under test, not a wait for the server
        }
        // Either the write failed or the server closed without answering.
        CHECK((closed || c.read_response().empty()));
    }
    {
        // Body promised but never sent.
        client c(f.port);
        c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc");
        CHECK(c.closed_by_server());
    }
    CHECK(status_line(get(f.port, "/healthz")) == "HTTP/1.1 200 OK");
}

TEST_CASE("malformed requests get 400 and a handler exception gets 500") {
    fixture f;
    {
        client c(f.port);
        c.send("THIS IS NOT HTTP\r\n\r\n");
        const auto r = c.read_response();
        CHECK(status_line(r) == "HTTP/1.1 400 Bad Request");
        CHECK(body_of(r) == "{\"error\":\"malformed HTTP request\"}");
    }
    const auto r = get(f.port, "/throws");
    CHECK(status_line(r) == "HTTP/1.1 500 Internal Server Error");
    CHECK(body_of(r) == "{\"error\":\"internal error\"}");
}

TEST_CASE("readyz names what is down and bounds hanging probes") {
    SECTION("all up") {
        fixture f({{"redis", [] { return probe_ok(); }}, {"mysql", [] { return probe_ok(); }}});
        const auto r = get(f.port, "/readyz");
        CHECK(status_line(r) == "HTTP/1.1 200 OK");
        CHECK(body_of(r) == R"({"status":"ready","checks":{"redis":"ok","mysql":"ok"}})");
    }
    SECTION("one down, one hanging") {
        fixture f(
            {{"redis", [] { return probe_down(); }}, {"mysql", [] { return probe_hangs(); }}});
        const auto r = get(f.port, "/readyz");
        CHECK(status_line(r) == "HTTP/1.1 503 Service Unavailable");
        CHECK(
            body_of(r) ==
            R"({"error":"not ready: redis, mysql unavailable","checks":{"redis":"connection refused","mysql":"timed out after 200 ms"}})");
    }
}

TEST_CASE("metrics count requests by route and status") {
    fixture f;
    get(f.port, "/healthz");
    get(f.port, "/healthz");
    get(f.port, "/nowhere");
    // A request is counted once its answer is written, which the client may see first: read
    // until the last one is in (bounded).
    std::string text;
    for (int i = 0; i < 100; ++i) {
        text = body_of(get(f.port, "/metrics"));
        if (text.find("route=\"unmatched\",status=\"404\"") != std::string::npos) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(text.find("scrm_http_requests_total{route=\"/healthz\",status=\"200\"} 2") !=
          std::string::npos);
    CHECK(text.find("scrm_http_requests_total{route=\"unmatched\",status=\"404\"} 1") !=
          std::string::npos);
    CHECK(text.find("scrm_http_request_duration_seconds_count{route=\"/healthz\"} 2") !=
          std::string::npos);
    CHECK(text.find("le=\"+Inf\"") != std::string::npos);
}

TEST_CASE("stop lets the in-flight request finish and refuses new connections") {
    slow_started = false;
    fixture f;
    client busy(f.port);
    busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    client idle(f.port);
    // Stop only once the slow request is in flight (its handler has started) and both are open.
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while ((!slow_started || f.server->open_connections() < 2) &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(5ms);
    }
    REQUIRE(slow_started);
    auto stopped = asio::co_spawn(f.io, f.server->stop(5s), asio::use_future);
    const auto r = busy.read_response();
    CHECK(status_line(r) == "HTTP/1.1 200 OK");
    CHECK(r.find("Connection: close") != std::string::npos);
    CHECK(idle.closed_by_server());
    stopped.get();
    CHECK(f.server->open_connections() == 0);
    boost::system::error_code ec;
    asio::io_context io;
    tcp::socket s(io);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), f.port), ec);
    CHECK(ec);
    f.server.reset();
}

// The HTTP server's WebSocket routes over real loopback TCP: refusals answered as HTTP, messages
// both ways, close codes, the message size limit, a stalled consumer dropped once its queue is
// full (not buffered without bound), an idle peer dropped, and stop() sending "going away".
#include <catch2/catch.hpp>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <mutex>
#include <thread>

#include "http_client.hpp"
#include "scrm/gateway/http.hpp"
#include "scrm/gateway/metrics.hpp"
#include "ws_client.hpp"

namespace asio = boost::asio;
using asio::awaitable;
using namespace scrm::gateway;
using namespace scrm::test;
using namespace std::chrono_literals;

namespace {

// What the server side saw, for the test thread.
struct observed {
    std::mutex mutex;
    std::shared_ptr<ws_session> session;
    std::atomic<int> sends_refused{0};
    std::atomic<bool> ended{false};
    std::atomic<std::size_t> bytes_queued{0};
};

// Echoes each message as "echo:<text>"; "bye" makes the server close with 4000.
awaitable<void> echo(std::shared_ptr<observed> seen, std::shared_ptr<ws_session> s) {
    {
        std::lock_guard lock(seen->mutex);
        seen->session = s;
    }
    while (auto text = co_await s->receive()) {
        if (*text == "bye") {
            s->close(4000, "bye");
            continue;
        }
        s->send("echo:" + *text);
    }
    seen->ended = true;
}

// Floods the peer with 64 KiB messages until the server refuses to queue more.
awaitable<void> flood(std::shared_ptr<observed> seen, std::shared_ptr<ws_session> s) {
    const std::string chunk(64 * 1024, 'x');
    for (int i = 0; i < 100000; ++i) {
        if (!s->send(chunk)) {
            ++seen->sends_refused;
            break;
        }
        seen->bytes_queued += chunk.size();
        if (i % 16 == 15) {
            // Let the writer run (it shares the connection's strand).
            asio::steady_timer t(co_await asio::this_coro::executor, 1ms);
            co_await t.async_wait(asio::use_awaitable);
        }
    }
    while (co_await s->receive()) {
    }
    seen->ended = true;
}

awaitable<ws_accept> upgrade(std::shared_ptr<observed> seen, bool flooding, http_request req) {
    ws_accept a;
    if (!req.header("x-deny").empty()) {
        a.refusal = json_error(401, "请先登录");
        co_return a;
    }
    if (flooding) {
        a.run = [seen](std::shared_ptr<ws_session> s) { return flood(seen, std::move(s)); };
    } else {
        a.run = [seen](std::shared_ptr<ws_session> s) { return echo(seen, std::move(s)); };
    }
    co_return a;
}

struct fixture {
    explicit fixture(std::size_t queue_limit = 1024 * 1024,
                     std::chrono::milliseconds idle = std::chrono::seconds(10)) {
        settings.listen_port = 0;
        settings.header_timeout = 2s;
        settings.ws_queue_limit = queue_limit;
        settings.ws_message_limit = 4096;
        settings.ws_idle_timeout = idle;
        router routes;
        auto s = seen;
        routes.websocket("/ws", [s](http_request r) { return upgrade(s, false, std::move(r)); });
        routes.websocket("/flood", [s](http_request r) { return upgrade(s, true, std::move(r)); });
        server =
            std::make_unique<http_server>(io.get_executor(), settings, std::move(routes), stats);
        port = server->start();
        for (int i = 0; i < 2; ++i) threads.emplace_back([this] { io.run(); });
    }
    ~fixture() {
        stop(1s);
        {
            std::lock_guard lock(seen->mutex);
            seen->session.reset();
        }
        work.reset();
        for (auto& t : threads) t.join();
    }
    void stop(std::chrono::milliseconds grace) {
        if (stopped) return;
        stopped = true;
        asio::co_spawn(io, server->stop(grace), asio::use_future).get();
    }
    bool wait_ended(std::chrono::milliseconds limit = 10s) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!seen->ended && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(5ms);  // polling with a deadline
        }
        return seen->ended;
    }

    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    http_settings settings;
    std::shared_ptr<metrics> stats = std::make_shared<metrics>();
    std::shared_ptr<observed> seen = std::make_shared<observed>();
    std::unique_ptr<http_server> server;
    std::uint16_t port = 0;
    std::vector<std::thread> threads;
    bool stopped = false;
};

}  // namespace

TEST_CASE("websocket: messages both ways, and the server's close code reaches the client") {
    fixture f;
    ws_client c(f.port, "/ws");
    REQUIRE(c.status() == 101);
    REQUIRE(c.send("你好"));
    CHECK(c.next() == std::optional<std::string>("echo:你好"));
    REQUIRE(c.send("bye"));
    CHECK(c.wait_closed() == std::optional<int>(4000));
    CHECK(f.wait_ended());
    CHECK(f.stats->render().find("route=\"/ws\",status=\"101\"") != std::string::npos);
}

TEST_CASE(
    "websocket: a send from another thread arrives, and the client's close ends the handler") {
    fixture f;
    ws_client c(f.port, "/ws");
    REQUIRE(c.status() == 101);
    REQUIRE(c.send("ready"));
    REQUIRE(c.next() == std::optional<std::string>("echo:ready"));
    std::shared_ptr<ws_session> s;
    {
        std::lock_guard lock(f.seen->mutex);
        s = f.seen->session;
    }
    REQUIRE(s);
    std::thread other([s] { CHECK(s->send("pushed")); });
    other.join();
    CHECK(c.next() == std::optional<std::string>("pushed"));
    c.close();
    CHECK(f.wait_ended());
    CHECK_FALSE(s->send("too late"));  // closed: refused, nothing queued
}

TEST_CASE("websocket: a refused upgrade is an HTTP answer, and a plain GET gets 426") {
    fixture f;
    ws_client denied(f.port, "/ws", {{"X-Deny", "1"}});
    CHECK(denied.status() == 401);
    CHECK(denied.refusal_body() == R"({"error":"请先登录"})");
    const auto plain = http_call(f.port, "GET", "/ws");
    CHECK(plain.status == 426);
    CHECK(plain.header("upgrade") == "websocket");
    CHECK(http_call(f.port, "POST", "/ws", "{}").status == 405);
}

TEST_CASE("websocket: a message over the limit closes the connection with 1009") {
    fixture f;
    ws_client c(f.port, "/ws");
    REQUIRE(c.status() == 101);
    REQUIRE(c.send(std::string(5000, 'a')));
    CHECK(c.wait_closed() == std::optional<int>(1009));
    CHECK(f.wait_ended());
}

TEST_CASE("websocket: a consumer that stops reading is dropped once its queue is full") {
    // 256 KiB of queue: the kernel's socket buffers fill first, then the queue, then the server
    // refuses the next message and drops the connection — the memory it holds stays bounded.
    fixture f(256 * 1024);
    ws_client c(f.port, "/flood", {}, false);
    REQUIRE(c.status() == 101);
    CHECK(f.wait_ended(30s));
    CHECK(f.seen->sends_refused == 1);
    INFO("bytes accepted before the refusal: " << f.seen->bytes_queued);
    CHECK(f.seen->bytes_queued < 64u * 1024 * 1024);  // bounded: socket buffers plus the queue
}

TEST_CASE("websocket: a peer that answers no ping is dropped after the idle timeout") {
    fixture f(1024 * 1024, 400ms);
    ws_client c(f.port, "/ws", {}, false);  // never reads, so never answers the server's pings
    REQUIRE(c.status() == 101);
    CHECK(f.wait_ended(5s));
}

TEST_CASE("websocket: stop sends going away (1001) and completes") {
    fixture f;
    ws_client c(f.port, "/ws");
    REQUIRE(c.status() == 101);
    REQUIRE(c.send("hi"));
    REQUIRE(c.next() == std::optional<std::string>("echo:hi"));
    const auto started = std::chrono::steady_clock::now();
    f.stop(5s);
    CHECK(std::chrono::steady_clock::now() - started < 4s);
    CHECK(c.wait_closed() == std::optional<int>(1001));
    CHECK(f.wait_ended());
    CHECK(f.server->open_connections() == 0);
}

// Beast's WebSocket client on a private io_context and thread. The handshake is made on the
// test's thread (blocking, loopback); reads, writes and the close run on the I/O thread.
#include "ws_client.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

namespace scrm::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;

struct ws_client::impl : std::enable_shared_from_this<impl> {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    websocket::stream<tcp::socket> ws{io};
    beast::flat_buffer buffer;
    int status = 0;
    std::string refusal;
    std::thread thread;

    std::mutex mutex;
    std::condition_variable cv;
    std::deque<std::string> received;
    bool closed = false;
    int close_code = 0;

    void read_loop() {
        ws.async_read(buffer, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            std::lock_guard lock(self->mutex);
            if (ec) {
                self->closed = true;
                self->close_code = ec == websocket::error::closed ? self->ws.reason().code : 1006;
                self->cv.notify_all();
                return;
            }
            self->received.push_back(beast::buffers_to_string(self->buffer.data()));
            self->buffer.consume(self->buffer.size());
            self->cv.notify_all();
            self->read_loop();
        });
    }
};

ws_client::ws_client(std::uint16_t port, std::string target,
                     std::vector<std::pair<std::string, std::string>> headers, bool reading)
    : impl_(std::make_shared<impl>()) {
    beast::error_code ec;
    impl_->ws.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
    if (ec) return;
    impl_->ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
        for (const auto& [k, v] : headers) req.set(k, v);
    }));
    websocket::response_type res;
    impl_->ws.handshake(res, "127.0.0.1:" + std::to_string(port), target, ec);
    impl_->status = static_cast<int>(res.result_int());
    if (ec) {
        impl_->refusal = res.body();
        if (impl_->status == 101) impl_->status = 0;
        return;
    }
    if (reading) impl_->read_loop();
    impl_->thread = std::thread([i = impl_] { i->io.run(); });
}

ws_client::~ws_client() {
    if (impl_->thread.joinable()) {
        asio::post(impl_->io, [i = impl_] {
            beast::error_code ec;
            i->ws.next_layer().close(ec);
        });
        // The pending read ends (aborted) and the I/O thread runs out of work: no handler is left
        // holding the state.
        impl_->work.reset();
        impl_->thread.join();
    }
}

int ws_client::status() const {
    return impl_->status;
}

const std::string& ws_client::refusal_body() const {
    return impl_->refusal;
}

bool ws_client::send(const std::string& text) {
    if (!impl_->thread.joinable()) return false;
    auto done = std::make_shared<std::promise<bool>>();
    auto result = done->get_future();
    asio::post(impl_->io, [i = impl_, text, done] {
        auto data = std::make_shared<std::string>(text);
        i->ws.text(true);
        i->ws.async_write(asio::buffer(*data), [data, done](beast::error_code ec, std::size_t) {
            done->set_value(!ec);
        });
    });
    return result.wait_for(std::chrono::seconds(5)) == std::future_status::ready && result.get();
}

std::optional<std::string> ws_client::next(std::chrono::milliseconds limit) {
    std::unique_lock lock(impl_->mutex);
    impl_->cv.wait_for(lock, limit, [&] { return !impl_->received.empty() || impl_->closed; });
    if (impl_->received.empty()) return std::nullopt;
    std::string out = std::move(impl_->received.front());
    impl_->received.pop_front();
    return out;
}

std::optional<std::string> ws_client::wait_for(const std::string& part,
                                               std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        auto m = next(left);
        if (!m) return std::nullopt;
        if (m->find(part) != std::string::npos) return m;
    }
}

std::optional<int> ws_client::wait_closed(std::chrono::milliseconds limit) {
    std::unique_lock lock(impl_->mutex);
    if (!impl_->cv.wait_for(lock, limit, [&] { return impl_->closed; })) return std::nullopt;
    return impl_->close_code;
}

void ws_client::close() {
    if (!impl_->thread.joinable()) return;
    asio::post(impl_->io, [i = impl_] {
        i->ws.async_close(websocket::close_code::normal, [](beast::error_code) {});
    });
    (void)wait_closed();
}

}  // namespace scrm::test

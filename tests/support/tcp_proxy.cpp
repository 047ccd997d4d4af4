// One acceptor thread and one thread per proxied connection, each polling its two sockets with a
// short timeout so that the destructor's stop flag is seen promptly.
#include "tcp_proxy.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace scrm::test {

struct tcp_proxy::impl {
    std::uint16_t upstream = 0;
    int listener = -1;
    std::uint16_t port = 0;
    std::atomic<bool> stop{false};
    std::atomic<bool> hold{false};
    std::mutex mutex;
    std::vector<std::thread> threads;

    static int connect_upstream(std::uint16_t port) {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) return -1;
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(port);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            ::close(fd);
            return -1;
        }
        return fd;
    }

    static bool write_all(int fd, const char* data, std::size_t size) {
        while (size > 0) {
            const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
            if (n <= 0) return false;
            data += n;
            size -= static_cast<std::size_t>(n);
        }
        return true;
    }

    void pump(int client, int server) {
        std::string kept;  // the server's bytes withheld from the client
        char buf[16384];
        while (!stop) {
            if (!hold && !kept.empty()) {
                if (!write_all(client, kept.data(), kept.size())) break;
                kept.clear();
            }
            pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
            if (::poll(fds, 2, 20) < 0) break;
            if (fds[0].revents) {
                const ssize_t n = ::recv(client, buf, sizeof buf, 0);
                if (n <= 0 || !write_all(server, buf, static_cast<std::size_t>(n))) break;
            }
            if (fds[1].revents) {
                const ssize_t n = ::recv(server, buf, sizeof buf, 0);
                if (n <= 0) break;
                if (hold) {
                    kept.append(buf, static_cast<std::size_t>(n));
                } else if (!write_all(client, buf, static_cast<std::size_t>(n))) {
                    break;
                }
            }
        }
        ::close(client);
        ::close(server);
    }

    void accept_loop() {
        while (!stop) {
            pollfd p{listener, POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0) continue;
            const int client = ::accept(listener, nullptr, nullptr);
            if (client < 0) continue;
            const int server = connect_upstream(upstream);
            if (server < 0) {
                ::close(client);
                continue;
            }
            std::lock_guard lock(mutex);
            threads.emplace_back([this, client, server] { pump(client, server); });
        }
    }
};

tcp_proxy::tcp_proxy(std::uint16_t upstream_port) : impl_(std::make_shared<impl>()) {
    impl_->upstream = upstream_port;
    impl_->listener = ::socket(AF_INET, SOCK_STREAM, 0);
    if (impl_->listener < 0) throw std::runtime_error("tcp_proxy: socket() failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(impl_->listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(impl_->listener, 64) != 0 ||
        ::getsockname(impl_->listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        ::close(impl_->listener);
        throw std::runtime_error("tcp_proxy: cannot listen on 127.0.0.1");
    }
    impl_->port = ntohs(addr.sin_port);
    std::lock_guard lock(impl_->mutex);
    impl_->threads.emplace_back([self = impl_.get()] { self->accept_loop(); });
}

tcp_proxy::~tcp_proxy() {
    impl_->stop = true;
    // The acceptor may still add a thread until it has seen the flag: join it first.
    std::thread acceptor;
    {
        std::lock_guard lock(impl_->mutex);
        acceptor = std::move(impl_->threads.front());
    }
    acceptor.join();
    for (std::size_t i = 1; i < impl_->threads.size(); ++i) impl_->threads[i].join();
    ::close(impl_->listener);
}

std::uint16_t tcp_proxy::port() const {
    return impl_->port;
}

void tcp_proxy::hold_replies(bool hold) {
    impl_->hold = hold;
}

}  // namespace scrm::test

// Shared test support: where the real servers are, running coroutines to completion, private
// server instances for tests that stop or restart a server, unique names for keys and tables.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

#include "scrm/gateway/config.hpp"

namespace scrm::test {

// The project's source folder (SCRM_SOURCE_DIR).
std::filesystem::path source_dir();

// Settings of the services started by scripts/services: the file named by SCRM_TEST_CONFIG, else
// <source>/.local/config.json. Throws with a clear message when the file is missing or invalid.
const gateway::config& services_config();
// The path of that file.
std::filesystem::path services_config_path();

// A unique name for keys, tables and databases: prefix + pid + counter.
std::string unique_name(const std::string& prefix);

// Whether `part` occurs in `text` (answers, pushes, logs).
inline bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// Polls `done` every 100 ms until it holds or `limit` passes; whether it held.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit);

// A TCP port on 127.0.0.1 that was free a moment ago.
std::uint16_t free_port();

// Runs `aw` on `io` until it completes, rethrowing its exception; fails (throws) after `limit`.
template <class T>
T run_sync(boost::asio::io_context& io, boost::asio::awaitable<T> aw,
           std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    std::optional<T> out;
    std::exception_ptr error;
    bool done = false;
    boost::asio::co_spawn(io, std::move(aw), [&](std::exception_ptr e, T value) {
        error = e;
        if (!e) out.emplace(std::move(value));
        done = true;
    });
    io.restart();
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done && std::chrono::steady_clock::now() < deadline) {
        io.run_one_for(std::chrono::milliseconds(50));
    }
    if (!done) throw std::runtime_error("run_sync: coroutine did not finish in time");
    if (error) std::rethrow_exception(error);
    return std::move(*out);
}

// The same for a coroutine that returns nothing.
inline void run_sync(boost::asio::io_context& io, boost::asio::awaitable<void> aw,
                     std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    std::exception_ptr error;
    bool done = false;
    boost::asio::co_spawn(io, std::move(aw), [&](std::exception_ptr e) {
        error = e;
        done = true;
    });
    io.restart();
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done && std::chrono::steady_clock::now() < deadline) {
        io.run_one_for(std::chrono::milliseconds(50));
    }
    if (!done) throw std::runtime_error("run_sync: coroutine did not finish in time");
    if (error) std::rethrow_exception(error);
}

// A private Redis and MariaDB started with `scripts/services up --dir <tmp>` on free ports, for
// tests that stop, stall (SIGSTOP) or restart a server without disturbing the shared ones. Stopped
// and removed by the destructor. Starting one takes about a second.
class private_services {
public:
    private_services();
    ~private_services();
    private_services(const private_services&) = delete;
    private_services& operator=(const private_services&) = delete;

    const gateway::config& config() const { return cfg_; }
    std::filesystem::path config_path() const { return dir_ / "config.json"; }
    std::filesystem::path dir() const { return dir_; }
    int redis_pid() const;
    int mysql_pid() const;
    void stop_redis();  // SIGTERM, waits for exit
    void stop_mysql();
    void start();  // (re)starts whatever is down, same ports and data
    void pause_redis();
    void resume_redis();  // SIGSTOP / SIGCONT
    void pause_mysql();
    void resume_mysql();

private:
    std::filesystem::path dir_;
    gateway::config cfg_;
    std::string services_args_;
};

}  // namespace scrm::test

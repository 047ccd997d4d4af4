// The webhook, the routing stage and the agent endpoints of one gateway in-process, on a private
// key root in the shared Redis with short presence durations, for the agent and console suites
// (real HTTP and WebSocket, real Redis and MariaDB): signing in, calling endpoints, consoles,
// fans writing through the signed webhook.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "clinic_fixture.hpp"
#include "http_client.hpp"
#include "scrm/gateway/accounts.hpp"
#include "scrm/gateway/message_store.hpp"
#include "scrm/gateway/services.hpp"
#include "scrm/gateway/voice_transcoder.hpp"
#include "scrm/routing/live.hpp"
#include "ws_client.hpp"

namespace scrm::wechat {
class outbox;
}

namespace scrm::gateway {
class agent_api;
class agent_push;
class http_server;
class media_fetcher;
class routing_stage;
class webhook;
class wechat_clients;
}  // namespace scrm::gateway

namespace scrm::test {

// The password fixtures give agents in these suites.
inline const std::string agent_password = "correct-horse-1";

// The value of "name":"…" (or a number) in a flat JSON text; empty when absent.
std::string field(const std::string& json, const std::string& name);

// What a harness talks to outbound. By default nothing: the outbox is not started (its rows stay
// queued) and no media is fetched.
struct harness_wechat {
    // A (fake) WeChat's base URL: the outbox worker (the fixture's account only, delivery ticks
    // pushed to consoles) and the media fetcher (into media_dir) run against it.
    std::string api_base_url;
    gateway::transcode_options transcode;  // GET /api/media/{id}?format=mp3
};

struct agent_harness {
    // `more_clinics`: other clinics whose timers and sweeps the stage may run too.
    explicit agent_harness(clinic_fixture& c, const std::vector<std::uint64_t>& more_clinics = {},
                           harness_wechat wx = {});
    ~agent_harness();
    agent_harness(const agent_harness&) = delete;
    agent_harness& operator=(const agent_harness&) = delete;

    template <class T>
    T sync(boost::asio::awaitable<T> aw) {
        return boost::asio::co_spawn(io, std::move(aw), boost::asio::use_future).get();
    }
    void sync(boost::asio::awaitable<void> aw) {
        boost::asio::co_spawn(io, std::move(aw), boost::asio::use_future).get();
    }

    routing::instant now() const {
        return std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
    }

    http_reply sign_in(const std::string& name, const std::string& pw);
    // Signs in and returns the token (fails the test otherwise).
    std::string token(const std::string& name);
    http_reply call(const std::string& method, const std::string& target, const std::string& tok,
                    const std::string& body = {});
    std::string conversation(const std::string& openid, const std::string& action,
                             std::uint64_t account = 0) const;
    http_reply act(const std::string& tok, const std::string& openid, const std::string& action,
                   const std::string& body = "{}", std::uint64_t account = 0);
    std::unique_ptr<ws_client> connect(const std::string& tok);
    bool online(const std::string& tok);
    // Polls until the agent's presence is `want` (bounded).
    bool wait_online(const std::string& tok, bool want,
                     std::chrono::milliseconds limit = std::chrono::seconds(5));
    http_reply fan_writes(const std::string& openid, std::uint64_t msg_id,
                          const std::string& content = "你好");

    clinic_fixture& fx;
    boost::asio::io_context io;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{
        io.get_executor()};
    gateway::services deps;
    gateway::account_registry accounts;
    gateway::message_store store{io.get_executor(), deps.mysql()};
    // The media directory GET /api/media/{id} serves from (removed at the end).
    std::filesystem::path media_dir;
    std::unique_ptr<routing::live_state> live;
    std::unique_ptr<gateway::wechat_clients> clients;  // with an api_base_url only
    std::unique_ptr<wechat::outbox> outbox;
    std::unique_ptr<gateway::media_fetcher> media;  // with an api_base_url only
    std::unique_ptr<gateway::routing_stage> stage;
    std::unique_ptr<gateway::webhook> hook;
    std::unique_ptr<gateway::agent_push> push;
    std::unique_ptr<gateway::agent_api> api;
    std::unique_ptr<gateway::http_server> server;
    std::uint16_t port = 0;
    std::vector<std::thread> threads;
};

}  // namespace scrm::test

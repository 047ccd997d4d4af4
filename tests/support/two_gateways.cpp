// See two_gateways.hpp.
#include "two_gateways.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <fstream>
#include <sstream>
#include <thread>

#include "scrm/gateway/agent_requests.hpp"
#include "scrm/gateway/http.hpp"
#include "scrm/gateway/services.hpp"
#include "scrm/storage/redis.hpp"
#include "test_env.hpp"

namespace scrm::test {

using namespace std::chrono_literals;

namespace {

// The services' configuration file with an "agents" section added.
std::filesystem::path config_with_agents(const std::filesystem::path& from,
                                         const std::filesystem::path& dir,
                                         const std::string& agents_json) {
    std::ifstream in(from);
    std::stringstream text;
    text << in.rdbuf();
    std::string json = text.str();
    REQUIRE(json.find("\"agents\"") == std::string::npos);
    const auto open = json.find('{');
    REQUIRE(open != std::string::npos);
    json.insert(open + 1, "\"agents\":{" + agents_json + "},");
    const auto path = dir / "config.json";
    std::ofstream out(path);
    out << json;
    REQUIRE(out.good());
    return path;
}

}  // namespace

two_gateways::two_gateways(const clinic_fixture& c, const std::string& gateway_bin,
                           std::vector<std::string> extra_env, const std::string& agents_json,
                           const std::filesystem::path& servers_config)
    : fx(c),
      binary(gateway_bin),
      env(std::move(extra_env)),
      dir(std::filesystem::temp_directory_path() / unique_name("scrm_two_gateways")) {
    std::filesystem::create_directories(dir);
    const auto base = servers_config.empty() ? services_config_path() : servers_config;
    config = agents_json.empty() ? base : config_with_agents(base, dir, agents_json);
    env.insert(env.begin(), "SCRM_MASTER_KEY=" + clinic_fixture::master_hex);
    a = start("a");
    b = start("b");
}

two_gateways::~two_gateways() {
    a.reset();
    b.reset();
    // The clinic's live state and the sessions signed in (the gateways' key root is "scrm").
    namespace asio = boost::asio;
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    std::thread runner([&io] { io.run(); });
    auto redis = storage::redis_client::create(
        io.get_executor(), gateway::redis_options_from(fx.cfg.redis));
    redis->start();
    if (asio::co_spawn(io, redis->wait_connected(5s), asio::use_future).get()) {
        delete_keys_under(io, *redis, "scrm:{c" + std::to_string(fx.clinic) + "}");
        std::vector<std::string> sessions;
        for (const auto& t : tokens) {
            sessions.push_back("scrm:agent_session:" + gateway::token_digest(t));
        }
        if (!sessions.empty()) {
            (void)asio::co_spawn(io, redis->del(std::move(sessions)), asio::use_future).get();
        }
    }
    redis->stop();
    work.reset();
    runner.join();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}

std::unique_ptr<gateway_process> two_gateways::start(const std::string& name) {
    return std::make_unique<gateway_process>(binary, config, dir, name, env);
}

std::string two_gateways::sign_in(std::uint16_t port, const std::string& name,
                                  const std::string& password) {
    const auto r = http_call(port, "POST", "/api/agent/sign-in",
                             "{\"clinic\":" + gateway::json_quote(fx.name) +
                                 ",\"name\":" + gateway::json_quote(name) +
                                 ",\"password\":" + gateway::json_quote(password) + "}");
    INFO(r.body);
    REQUIRE(r.status == 200);
    const auto at = r.body.find("\"token\":\"") + 9;
    tokens.push_back(r.body.substr(at, 64));
    return tokens.back();
}

std::unique_ptr<ws_client> two_gateways::connect(std::uint16_t port, const std::string& token) {
    auto c = std::make_unique<ws_client>(
        port, "/api/agent/ws",
        std::vector<std::pair<std::string, std::string>>{{"Authorization", "Bearer " + token}});
    REQUIRE(c->status() == 101);
    REQUIRE(c->wait_for("\"type\":\"hello\"").has_value());
    return c;
}

http_reply two_gateways::act(std::uint16_t port, const std::string& token,
                             const std::string& openid, const std::string& action,
                             const std::string& body) {
    return http_call(
        port, "POST",
        "/api/conversations/" + std::to_string(fx.account) + "/" + openid + "/" + action, body,
        {{"Authorization", "Bearer " + token}});
}

http_reply two_gateways::get(std::uint16_t port, const std::string& token,
                             const std::string& target) {
    return http_call(port, "GET", target, "", {{"Authorization", "Bearer " + token}});
}

std::string two_gateways::logs() const {
    return (a ? a->proc.output() : std::string()) + (b ? b->proc.output() : std::string());
}

}  // namespace scrm::test

// Two scrm-gateway processes for one clinic on the shared Redis and MariaDB (DESIGN.md §7), each
// with its own log, and the agent calls end-to-end suites make through them: sign-in, the console
// WebSocket, conversation actions. The clinic's live state in Redis and the sessions signed in
// are removed when it ends.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "clinic_fixture.hpp"
#include "gateway_process.hpp"
#include "http_client.hpp"
#include "ws_client.hpp"

namespace scrm::test {

struct two_gateways {
    // `env` ("NAME=value") is given to both instances after gateway_process's defaults (and the
    // master key). `agents_json`: when not empty, the members of an "agents" section (e.g.
    // "\"presence_ttl_ms\":1500") added to a copy of the services' configuration file.
    // `servers_config`: another services' configuration file (private_services::config_path())
    // instead of the shared one; the clinic must then live on those servers too.
    two_gateways(const clinic_fixture& c, const std::string& gateway_bin,
                 std::vector<std::string> env = {}, const std::string& agents_json = "",
                 const std::filesystem::path& servers_config = {});
    ~two_gateways();
    two_gateways(const two_gateways&) = delete;
    two_gateways& operator=(const two_gateways&) = delete;

    std::unique_ptr<gateway_process> start(const std::string& name);

    // Signs in the clinic's agent `name` (password `password`); its token.
    std::string sign_in(std::uint16_t port, const std::string& name, const std::string& password);
    // Opens the console WebSocket with `token` and waits for its hello.
    std::unique_ptr<ws_client> connect(std::uint16_t port, const std::string& token);
    // POST /api/conversations/<account>/<openid>/<action>.
    http_reply act(std::uint16_t port, const std::string& token, const std::string& openid,
                   const std::string& action, const std::string& body = "{}");
    // GET `target` with the token.
    http_reply get(std::uint16_t port, const std::string& token, const std::string& target);
    std::string logs() const;

    const clinic_fixture& fx;
    std::string binary;
    std::vector<std::string> env;
    std::filesystem::path dir;
    std::filesystem::path config;
    std::unique_ptr<gateway_process> a, b;
    std::vector<std::string> tokens;
};

}  // namespace scrm::test

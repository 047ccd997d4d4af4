// See gateway_process.hpp.
#include "gateway_process.hpp"

#include <catch2/catch.hpp>

#include "http_client.hpp"
#include "test_env.hpp"

namespace scrm::test {
namespace {

std::vector<std::string> with_defaults(const std::filesystem::path& dir, const std::string& name,
                                       std::vector<std::string> env) {
    std::vector<std::string> out{"SCRM_SPOOL_DIR=" + (dir / (name + "-spool")).string(),
                                 "SCRM_MEDIA_DIR=" + (dir / (name + "-media")).string(),
                                 "SCRM_BACKGROUND_WORKERS=0"};
    out.insert(out.end(), env.begin(), env.end());  // later entries win
    return out;
}

}  // namespace

gateway_process::gateway_process(const std::string& binary, const std::filesystem::path& config,
                                 const std::filesystem::path& dir, const std::string& name,
                                 std::vector<std::string> env)
    : port(free_port()),
      proc({binary, "--config", config.string(), "--listen", "127.0.0.1:" + std::to_string(port)},
           dir / (name + ".log"), with_defaults(dir, name, std::move(env))) {
    REQUIRE(wait_for_status(port, "/readyz", 200).status == 200);
}

double gateway_process::metric(const std::string& name) const {
    const auto body = http_call(port, "GET", "/metrics").body;
    const auto pos = body.find("\n" + name + " ");
    return pos == std::string::npos ? -1 : std::stod(body.substr(pos + name.size() + 2));
}

}  // namespace scrm::test

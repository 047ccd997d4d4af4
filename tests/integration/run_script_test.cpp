// scripts/run's demo, non-interactively (--check): it starts the services, the fake WeChat and the
// gateway pointed at it, registers the demo account, has the fake deliver the message its printed
// curl command delivers, and stops the gateway and the fake again; a second run reuses it all.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "child_process.hpp"
#include "http_client.hpp"
#include "scrm/gateway/services.hpp"
#include "scrm/storage/mysql.hpp"
#include "test_env.hpp"

using namespace scrm;
using namespace scrm::test;
using namespace std::chrono_literals;

namespace {

const std::string demo_appid = "wx5ca1ab1e00000001";

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream buf;
    buf << in.rdbuf();
    return buf.str();
}

struct scope_exit {
    std::function<void()> f;
    ~scope_exit() { f(); }
};

}  // namespace

TEST_CASE("scripts/run --check: the fake WeChat delivers to the gateway, twice over") {
    const auto dir = std::filesystem::temp_directory_path() / unique_name("scrm_run");
    const auto script = source_dir() / "scripts" / "run";
    const std::uint16_t gateway_port = free_port();
    const std::uint16_t fake_port = free_port();
    const std::vector<std::string> env{
        "SCRM_SERVICES_REDIS_PORT=" + std::to_string(free_port()),
        "SCRM_SERVICES_MYSQL_PORT=" + std::to_string(free_port()),
        "SCRM_LISTEN=127.0.0.1:" + std::to_string(gateway_port),
        "SCRM_FAKE_WECHAT_LISTEN=127.0.0.1:" + std::to_string(fake_port)};
    // The services the script starts are this test's own: stop them however the test ends.
    scope_exit down{[&] {
        child_process p(
            {(source_dir() / "scripts" / "services").string(), "down", "--dir", dir.string()},
            dir.parent_path() / (dir.filename().string() + "-down.out"));
        (void)p.wait(60s);
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
        std::filesystem::remove(dir.parent_path() / (dir.filename().string() + "-down.out"), ec);
    }};

    for (int run = 1; run <= 2; ++run) {
        CAPTURE(run);
        const auto log =
            dir.parent_path() / (dir.filename().string() + "-run" + std::to_string(run) + ".out");
        child_process p({script.string(), "--check", "--no-build", "--dir", dir.string()}, log,
                        env);
        const auto code = p.wait(180s);
        const std::string out = p.output();
        INFO(out);
        REQUIRE(code == std::optional<int>(0));
        CHECK(contains(out, "run: check passed"));
        // What it prints: the URLs and the curl command the check itself used.
        CHECK(contains(out, "http://127.0.0.1:" + std::to_string(gateway_port) + "/readyz"));
        CHECK(contains(out, "curl --cacert " + (dir / "fake-wechat" / "tls" / "ca.pem").string() +
                                " -X POST https://127.0.0.1:" + std::to_string(fake_port) +
                                "/control/deliver"));
        CHECK(contains(out, R"("event":"gateway.wechat_api","base_url":"https://127.0.0.1:)" +
                                std::to_string(fake_port) + "\""));

        // Both stopped when the script ended.
        CHECK(http_call(gateway_port, "GET", "/healthz", {}, {}, 2s).status == 0);
        const std::string state = read_file(dir / "fake-wechat" / "fake-wechat.json");
        const auto pid_at = state.find("\"pid\":");
        REQUIRE(pid_at != std::string::npos);
        const int fake_pid = std::stoi(state.substr(pid_at + 6));
        CHECK_FALSE(std::filesystem::exists("/proc/" + std::to_string(fake_pid)));

        // The account is registered once (idempotent), and each run stored its message.
        gateway::cli_options cli;
        cli.config_path = (dir / "config.json").string();
        auto cfg = gateway::load_config(cli, {});
        REQUIRE(std::holds_alternative<gateway::config>(cfg));
        storage::mysql_session db(
            gateway::mysql_options_from(std::get<gateway::config>(cfg).mysql));
        auto accounts =
            db.query("SELECT COUNT(*) FROM official_accounts WHERE appid = ?", {demo_appid});
        REQUIRE(accounts.has_value());
        CHECK(*accounts->rows.at(0).at(0) == "1");
        auto messages = db.query(
            "SELECT COUNT(*) FROM inbound_messages m JOIN official_accounts a ON a.id = "
            "m.account_id WHERE a.appid = ? AND m.msg_type = 'text'",
            {demo_appid});
        REQUIRE(messages.has_value());
        CHECK(*messages->rows.at(0).at(0) == std::to_string(run));
        std::filesystem::remove(log);
    }
}

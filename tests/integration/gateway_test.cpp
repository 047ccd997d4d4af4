// The scrm-gateway executable against real servers: readiness follows Redis and MariaDB going away
// and coming back, metrics show their state, SIGTERM stops it cleanly, logs hold no secrets, and a
// bad configuration is refused with a clear message.
#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>

#include "child_process.hpp"
#include "http_client.hpp"
#include "test_env.hpp"

using namespace scrm::test;
using namespace std::chrono_literals;

namespace {

const std::string gateway_bin = SCRM_GATEWAY_BIN;

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("readyz follows Redis and MariaDB, and SIGTERM stops the gateway cleanly") {
    private_services services;
    const auto port = free_port();
    child_process gw({gateway_bin, "--config", services.config_path().string(), "--listen",
                      "127.0.0.1:" + std::to_string(port)},
                     services.dir() / "gateway.log", {"SCRM_MASTER_KEY=" + std::string(64, 'e')});

    auto r = wait_for_status(port, "/readyz", 200);
    REQUIRE(r.status == 200);
    CHECK(r.body == R"({"status":"ready","checks":{"redis":"ok","mysql":"ok"}})");
    CHECK(http_call(port, "GET", "/healthz").status == 200);

    SECTION("Redis stopped, then back") {
        services.stop_redis();
        r = wait_for_status(port, "/readyz", 503);
        CHECK(r.status == 503);
        CHECK(contains(r.body, R"("error":"not ready: redis unavailable")"));
        CHECK(contains(r.body, R"("mysql":"ok")"));
        CHECK(http_call(port, "GET", "/healthz").status == 200);  // alive though not ready
        const auto metrics = http_call(port, "GET", "/metrics").body;
        CHECK(contains(metrics, "scrm_redis_connected 0"));

        services.start();
        r = wait_for_status(port, "/readyz", 200);
        CHECK(r.status == 200);
        CHECK(contains(http_call(port, "GET", "/metrics").body, "scrm_redis_connected 1"));
    }
    SECTION("MariaDB stalled (SIGSTOP), then resumed") {
        services.pause_mysql();
        r = wait_for_status(port, "/readyz", 503);
        services.resume_mysql();
        CHECK(r.status == 503);
        CHECK(contains(r.body, R"("error":"not ready: mysql unavailable")"));
        r = wait_for_status(port, "/readyz", 200);
        CHECK(r.status == 200);
    }

    const auto metrics = http_call(port, "GET", "/metrics").body;
    CHECK(contains(metrics, "scrm_http_requests_total{route=\"/readyz\",status=\"200\"}"));
    CHECK(contains(metrics, "scrm_mysql_pool_workers"));

    gw.signal(SIGTERM);
    const auto code = gw.wait(30s);
    REQUIRE(code.has_value());
    CHECK(*code == 0);
    const std::string log = gw.output();
    CHECK(contains(log, "\"event\":\"gateway.stopped\""));
    CHECK_FALSE(services.config().mysql.password.empty());
    CHECK_FALSE(contains(log, services.config().mysql.password));
}

TEST_CASE("a bad configuration is refused at start with every problem named") {
    const auto dir = std::filesystem::temp_directory_path() / unique_name("scrm_badcfg");
    std::filesystem::create_directories(dir);
    {
        std::ofstream out(dir / "config.json");
        out << R"({"redis":{"port":0},"mysql":{"pool_size":"many"},"htp":{}})";
    }
    child_process gw({gateway_bin, "--config", (dir / "config.json").string()}, dir / "out.log",
                     {"SCRM_MASTER_KEY=" + std::string(64, 'e')});
    const auto code = gw.wait(10s);
    REQUIRE(code.has_value());
    CHECK(*code == 2);
    const std::string out = gw.output();
    CHECK(contains(out, "configuration error"));
    CHECK(contains(out, "redis.port: must be an integer 1-65535"));
    CHECK(contains(out, "mysql.pool_size: must be an integer 1-256"));
    CHECK(contains(out, "htp: unknown key"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("the gateway refuses to start without a master key") {
    const auto dir = std::filesystem::temp_directory_path() / unique_name("scrm_nokey");
    std::filesystem::create_directories(dir);
    child_process gw({gateway_bin, "--listen", "127.0.0.1:" + std::to_string(free_port())},
                     dir / "out.log");
    const auto code = gw.wait(10s);
    REQUIRE(code.has_value());
    CHECK(*code == 2);
    CHECK(contains(gw.output(), "SCRM_MASTER_KEY is not set"));
    std::filesystem::remove_all(dir);
}

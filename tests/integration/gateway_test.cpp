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

// Both static folders (docs/api.md "The console page", "The administration pages"): each mount
// serves its own folder only, with the same path rules, and a configured folder that cannot be
// served stops the gateway at start.
TEST_CASE("the console and the administration pages are served from their own folders") {
    const auto dir = std::filesystem::temp_directory_path() / unique_name("scrm_static");
    std::filesystem::create_directories(dir / "admin" / "js");
    std::ofstream(dir / "admin" / "index.html") << "<!doctype html><title>admin-test-page</title>";
    std::ofstream(dir / "admin" / "js" / "app.js") << "export const page = 'admin';";
    std::ofstream(dir / "admin" / "notes.md") << "not served";
    const std::string key = "SCRM_MASTER_KEY=" + std::string(64, 'e');
    const auto port = free_port();
    {
        child_process gw({gateway_bin, "--config", services_config_path().string(), "--listen",
                          "127.0.0.1:" + std::to_string(port)},
                         dir / "gateway.log",
                         {key, "SCRM_ADMIN_DIR=" + (dir / "admin").string(),
                          "SCRM_BACKGROUND_WORKERS=false"});
        REQUIRE(wait_for_status(port, "/healthz", 200).status == 200);

        const auto index = http_call(port, "GET", "/admin/");
        CHECK(index.status == 200);
        CHECK(has(index.body, "admin-test-page"));
        CHECK(index.header("content-type") == "text/html; charset=utf-8");
        CHECK(has(index.header("content-security-policy"), "default-src 'self'"));
        CHECK(has(index.header("content-security-policy"), "frame-ancestors 'none'"));
        CHECK(index.header("referrer-policy") == "no-referrer");
        const auto js = http_call(port, "GET", "/admin/js/app.js");
        CHECK(js.status == 200);
        CHECK(js.body == "export const page = 'admin';");
        CHECK(js.header("content-security-policy").empty());
        CHECK(http_call(port, "GET", "/admin/js/app.js", {}, {{"If-None-Match", js.header("etag")}})
                  .status == 304);
        const auto bare = http_call(port, "GET", "/admin");
        CHECK(bare.status == 301);
        CHECK(bare.header("location") == "/admin/");
        for (const char* target : {"/admin/notes.md", "/admin/nope.html", "/admin/js/",
                                   "/admin/main.js"}) {
            CAPTURE(target);
            const auto r = http_call(port, "GET", target);
            CHECK(r.status == 404);
            CHECK(r.body == R"({"error":"页面不存在"})");
        }
        for (const char* target : {"/admin/../console/index.html", "/admin/%2e%2e/notes.md",
                                   "/admin/js%2fapp.js", "/admin//js/app.js"}) {
            CAPTURE(target);
            CHECK(http_call(port, "GET", target).status == 400);
        }
        // The console keeps its own (built-in) folder: the admin folder is not served there.
        CHECK(http_call(port, "GET", "/console/js/app.js").status == 404);
        CHECK(has(http_call(port, "GET", "/console/").body, "客服工作台"));
        CHECK(http_call(port, "POST", "/admin/", "{}").status == 405);
        gw.signal(SIGTERM);
        CHECK(gw.wait(30s).has_value());
    }
    child_process bad({gateway_bin, "--config", services_config_path().string(), "--listen",
                       "127.0.0.1:" + std::to_string(free_port())},
                      dir / "bad.log", {key, "SCRM_ADMIN_DIR=" + (dir / "missing").string()});
    const auto code = bad.wait(30s);
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    CHECK(has(bad.output(), "admin_dir: " + (dir / "missing").string() + " is not a folder"));
    std::filesystem::remove_all(dir);
}

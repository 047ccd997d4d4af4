// Configuration: defaults, file values, environment and --listen overrides, and clear messages for
// every kind of bad value; the WeChat API base URL and CA file.
#include <catch2/catch.hpp>

#include <unistd.h>
#include <cstdio>
#include <fstream>

#include "scrm/gateway/config.hpp"

using namespace scrm::gateway;

namespace {

std::string problems_of(const std::variant<config, load_error>& r) {
    if (const auto* e = std::get_if<load_error>(&r)) return e->message();
    return "";
}

}  // namespace

TEST_CASE("an empty object gives the documented defaults") {
    auto r = parse_config("{}");
    REQUIRE(std::holds_alternative<config>(r));
    const auto& c = std::get<config>(r);
    CHECK(c.http.listen_host == "127.0.0.1");
    CHECK(c.http.listen_port == 8080);
    CHECK(c.http.body_limit == 1024 * 1024);
    CHECK(c.redis.port == 6379);
    CHECK(c.mysql.database == "scrm");
    CHECK(c.mysql.pool_size == 4);
    CHECK(c.log_level == "info");
    CHECK(c.wechat_api_base_url == "https://api.weixin.qq.com");
    CHECK(c.wechat_ca_file.empty());
}

TEST_CASE("file values are read") {
    auto r =
        parse_config(R"({"http":{"listen":"0.0.0.0:9000","body_limit":2048,"header_timeout_ms":500},
        "redis":{"host":"10.0.0.1","port":7000,"password":"p","command_timeout_ms":250},
        "mysql":{"host":"db","port":3307,"user":"u","password":"pw","database":"d","pool_size":8,
                 "queue_limit":10,"read_timeout_ms":1500},
        "io_threads":3,"log_level":"debug","services":{"dir":"/x"}})");
    REQUIRE(std::holds_alternative<config>(r));
    const auto& c = std::get<config>(r);
    CHECK(c.http.listen_host == "0.0.0.0");
    CHECK(c.http.listen_port == 9000);
    CHECK(c.http.body_limit == 2048);
    CHECK(c.http.header_timeout == std::chrono::milliseconds(500));
    CHECK(c.redis.host == "10.0.0.1");
    CHECK(c.redis.port == 7000);
    CHECK(c.redis.command_timeout == std::chrono::milliseconds(250));
    CHECK(c.mysql.port == 3307);
    CHECK(c.mysql.pool_size == 8);
    CHECK(c.mysql.queue_limit == 10);
    CHECK(c.mysql.read_timeout == std::chrono::milliseconds(1500));
    CHECK(c.io_threads == 3);
    CHECK(c.log_level == "debug");
}

TEST_CASE("bad values give messages naming the key and what is expected") {
    struct row {
        std::string name;
        std::string json;
        std::string expected;  // a fragment of the message
    };
    auto [name, json, expected] = GENERATE(values<row>({
        {"not JSON", "{", "invalid JSON at offset"},
        {"not an object", "[]", "must be a JSON object"},
        {"unknown key", R"({"htpp":{}})", "htpp: unknown key"},
        {"unknown nested key", R"({"redis":{"prot":1}})", "redis.prot: unknown key"},
        {"port out of range", R"({"redis":{"port":70000}})",
         "redis.port: must be an integer 1-65535"},
        {"port as string", R"({"mysql":{"port":"3306"}})",
         "mysql.port: must be an integer 1-65535"},
        {"listen without port", R"({"http":{"listen":"localhost"}})",
         "http.listen: must be HOST:PORT"},
        {"listen bad port", R"({"http":{"listen":"h:abc"}})",
         "port must be an integer 1-65535, got \"abc\""},
        {"section not object", R"({"mysql":3})", "mysql: must be an object"},
        {"empty host", R"({"mysql":{"host":""}})", "mysql.host: must not be empty"},
        {"pool size zero", R"({"mysql":{"pool_size":0}})",
         "mysql.pool_size: must be an integer 1-256"},
        {"negative timeout", R"({"redis":{"command_timeout_ms":-5}})",
         "redis.command_timeout_ms: must be an integer"},
        {"log level", R"({"log_level":"loud"})",
         "log_level: must be one of debug, info, warn, error"},
        {"tiny body limit", R"({"http":{"body_limit":10}})",
         "http.body_limit: must be an integer 1024-"},
        {"API URL without scheme", R"({"wechat_api_base_url":"api.weixin.qq.com"})",
         "wechat_api_base_url: must start with https://"},
        {"API URL plain http to a remote host", R"({"wechat_api_base_url":"http://example.com"})",
         "wechat_api_base_url: plain http is only for a loopback host"},
        {"API URL without host", R"({"wechat_api_base_url":"https:///cgi-bin"})",
         "wechat_api_base_url: must be http(s)://host[:port][/prefix]"},
        {"API URL bad port", R"({"wechat_api_base_url":"https://h:0"})",
         "wechat_api_base_url: port must be an integer 1-65535"},
        {"API URL with a query", R"({"wechat_api_base_url":"https://h/p?x=1"})",
         "wechat_api_base_url: the path prefix must not hold a query"},
        {"API URL empty", R"({"wechat_api_base_url":""})",
         "wechat_api_base_url: must not be empty"},
        {"CA file not a string", R"({"wechat_ca_file":1})", "wechat_ca_file: must be a string"},
        {"public URL without scheme", R"({"public_base_url":"clinic.example"})",
         "public_base_url: must start with https://"},
        {"public URL plain http to a remote host", R"({"public_base_url":"http://clinic.example"})",
         "public_base_url: plain http is only for a loopback host"},
    }));
    CAPTURE(name);
    const std::string message = problems_of(parse_config(json));
    CAPTURE(message);
    CHECK(message.find(expected) != std::string::npos);
}

TEST_CASE("public_base_url: empty by default, a trailing slash dropped, from the environment") {
    auto c = parse_config("{}");
    REQUIRE(std::holds_alternative<config>(c));
    CHECK(std::get<config>(c).public_base_url.empty());
    c = parse_config(R"({"public_base_url":"https://clinic.example/scrm/"})");
    REQUIRE(std::holds_alternative<config>(c));
    CHECK(std::get<config>(c).public_base_url == "https://clinic.example/scrm");
    config cfg;
    CHECK_FALSE(apply_env(cfg, {{"SCRM_PUBLIC_BASE_URL", "http://127.0.0.1:8080"}}).has_value());
    CHECK(cfg.public_base_url == "http://127.0.0.1:8080");
}

TEST_CASE("every problem is reported, not just the first") {
    const std::string message = problems_of(
        parse_config(R"({"redis":{"port":0},"mysql":{"pool_size":-1},"log_level":"x"})"));
    CHECK(message.find("redis.port") != std::string::npos);
    CHECK(message.find("mysql.pool_size") != std::string::npos);
    CHECK(message.find("log_level") != std::string::npos);
}

TEST_CASE("environment overrides the file and --listen overrides both") {
    const std::string path = "/tmp/scrm_config_test_" + std::to_string(::getpid()) + ".json";
    {
        std::ofstream out(path);
        out << R"({"http":{"listen":"127.0.0.1:1111"},"redis":{"port":1234}})";
    }
    cli_options cli{path, std::nullopt};
    auto r = load_config(cli, {{"SCRM_REDIS_PORT", "4321"}, {"SCRM_MYSQL_PASSWORD", "s"}});
    REQUIRE(std::holds_alternative<config>(r));
    CHECK(std::get<config>(r).redis.port == 4321);
    CHECK(std::get<config>(r).mysql.password == "s");
    CHECK(std::get<config>(r).http.listen_port == 1111);

    cli.listen = "127.0.0.1:2222";
    r = load_config(cli, {{"SCRM_LISTEN", "127.0.0.1:3333"}});
    REQUIRE(std::holds_alternative<config>(r));
    CHECK(std::get<config>(r).http.listen_port == 2222);

    r = load_config(cli, {{"SCRM_REDIS_PORT", "x"}, {"SCRM_MYSQL_POOL_SIZE", "0"}});
    CHECK(problems_of(r).find("SCRM_REDIS_PORT: must be an integer 1-65535, got \"x\"") !=
          std::string::npos);
    CHECK(problems_of(r).find("SCRM_MYSQL_POOL_SIZE") != std::string::npos);

    cli.listen = "nonsense";
    CHECK(problems_of(load_config(cli, {})).find("--listen: must be HOST:PORT") !=
          std::string::npos);
    std::remove(path.c_str());

    cli.config_path = "/nonexistent/scrm.json";
    CHECK(problems_of(load_config(cli, {})).find("cannot open") != std::string::npos);
}

TEST_CASE("the WeChat API base URL and CA file: file, environment, and checks at load") {
    struct row {
        std::string name;
        std::string url;
        std::string expected;  // as stored
    };
    auto [name, url, expected] = GENERATE(values<row>({
        {"production", "https://api.weixin.qq.com", "https://api.weixin.qq.com"},
        {"port and prefix", "https://proxy.example:8443/wx", "https://proxy.example:8443/wx"},
        {"trailing slash dropped", "https://api.weixin.qq.com/", "https://api.weixin.qq.com"},
        {"local fake over http", "http://127.0.0.1:9000", "http://127.0.0.1:9000"},
        {"localhost", "http://localhost:9000/", "http://localhost:9000"},
        {"IPv6 loopback", "http://[::1]:9000", "http://[::1]:9000"},
    }));
    CAPTURE(name);
    auto r = parse_config(R"({"wechat_api_base_url":")" + url + R"("})");
    REQUIRE(std::holds_alternative<config>(r));
    CHECK(std::get<config>(r).wechat_api_base_url == expected);

    // The environment overrides the file, with the same checks.
    auto c = std::get<config>(r);
    CHECK_FALSE(apply_env(c, {{"SCRM_WECHAT_API_BASE_URL", "https://other.example"}}).has_value());
    CHECK(c.wechat_api_base_url == "https://other.example");
    const auto bad = apply_env(c, {{"SCRM_WECHAT_API_BASE_URL", "ftp://x"}});
    REQUIRE(bad.has_value());
    CHECK(bad->message().find("wechat_api_base_url: must start with https://") !=
          std::string::npos);
}

TEST_CASE("wechat_ca_file must name a readable file, checked when the configuration is loaded") {
    const std::string ca = "/tmp/scrm_config_ca_" + std::to_string(::getpid()) + ".pem";
    {
        std::ofstream out(ca);
        out << "-----BEGIN CERTIFICATE-----\n";
    }
    cli_options cli;
    auto r = load_config(
        cli, {{"SCRM_WECHAT_CA_FILE", ca}, {"SCRM_WECHAT_API_BASE_URL", "https://127.0.0.1:9443"}});
    REQUIRE(std::holds_alternative<config>(r));
    CHECK(std::get<config>(r).wechat_ca_file == ca);
    CHECK(std::get<config>(r).wechat_api_base_url == "https://127.0.0.1:9443");
    std::remove(ca.c_str());

    CHECK(problems_of(load_config(cli, {{"SCRM_WECHAT_CA_FILE", ca}})) ==
          "wechat_ca_file: cannot read \"" + ca + "\" (No such file or directory)");
    CHECK(problems_of(load_config(cli, {{"SCRM_WECHAT_CA_FILE", "/tmp"}})) ==
          "wechat_ca_file: cannot read \"/tmp\" (not a file)");
    // Empty: the system's trust store.
    r = load_config(cli, {{"SCRM_WECHAT_CA_FILE", ""}});
    REQUIRE(std::holds_alternative<config>(r));
    CHECK(std::get<config>(r).wechat_ca_file.empty());
}

TEST_CASE("media_dir and background_workers: defaults, file, environment, bad values") {
    auto r = parse_config("{}");
    REQUIRE(std::holds_alternative<config>(r));
    CHECK(std::get<config>(r).media_dir == "media");
    CHECK(std::get<config>(r).background_workers);

    r = parse_config(R"({"media_dir":"/var/lib/scrm/media","background_workers":false})");
    REQUIRE(std::holds_alternative<config>(r));
    auto c = std::get<config>(r);
    CHECK(c.media_dir == "/var/lib/scrm/media");
    CHECK_FALSE(c.background_workers);

    CHECK_FALSE(
        apply_env(c, {{"SCRM_BACKGROUND_WORKERS", "1"}, {"SCRM_MEDIA_DIR", "m2"}}).has_value());
    CHECK(c.background_workers);
    CHECK(c.media_dir == "m2");
    CHECK_FALSE(apply_env(c, {{"SCRM_BACKGROUND_WORKERS", "false"}}).has_value());
    CHECK_FALSE(c.background_workers);

    CHECK(problems_of(parse_config(R"({"background_workers":"yes"})")) ==
          "background_workers: must be true or false");
    CHECK(problems_of(parse_config(R"({"media_dir":""})")) == "media_dir: must not be empty");
    const auto bad = apply_env(c, {{"SCRM_BACKGROUND_WORKERS", "maybe"}});
    REQUIRE(bad.has_value());
    CHECK(bad->message() == "SCRM_BACKGROUND_WORKERS: must be 1, 0, true or false, got \"maybe\"");
}

TEST_CASE(
    "workers kept to some clinics and accounts: SCRM_WORKER_CLINICS and SCRM_WORKER_ACCOUNTS") {
    config c;
    CHECK(c.worker_clinics.empty());
    CHECK(c.worker_accounts.empty());
    CHECK_FALSE(
        apply_env(c, {{"SCRM_WORKER_CLINICS", "7"}, {"SCRM_WORKER_ACCOUNTS", "3,12"}}).has_value());
    CHECK(c.worker_clinics == std::vector<std::uint64_t>{7});
    CHECK(c.worker_accounts == std::vector<std::uint64_t>{3, 12});
    for (const std::string v : {"", "1,", "a", "0", "1,,2"}) {
        CAPTURE(v);
        const auto bad = apply_env(c, {{"SCRM_WORKER_CLINICS", v}});
        REQUIRE(bad.has_value());
        CHECK(bad->message() ==
              "SCRM_WORKER_CLINICS: must be ids (positive integers) separated by commas, got \"" +
                  v + "\"");
    }
    CHECK(c.worker_clinics == std::vector<std::uint64_t>{7});
}

TEST_CASE("WebSocket limits and the agents section: defaults, file values, bad values") {
    auto d = parse_config("{}");
    REQUIRE(std::holds_alternative<config>(d));
    const auto& def = std::get<config>(d);
    CHECK(def.http.ws_idle_timeout == std::chrono::milliseconds(30000));
    CHECK(def.http.ws_queue_limit == 1024 * 1024);
    CHECK(def.agents.session_ttl == std::chrono::hours(12));
    CHECK(def.agents.presence_ttl == std::chrono::milliseconds(60000));
    CHECK(def.agents.signin_max_failures == 5);
    CHECK(def.agents.cookie_secure);

    auto r = parse_config(R"({"http":{"ws_idle_timeout_ms":5000,"ws_message_limit":1024,
        "ws_queue_limit":65536},"agents":{"session_ttl_s":600,"presence_ttl_ms":3000,
        "reconnect_grace_ms":0,"signin_max_failures":3,"signin_lockout_s":60,
        "signin_failure_delay_ms":0,"cookie_secure":false}})");
    REQUIRE(std::holds_alternative<config>(r));
    const auto& c = std::get<config>(r);
    CHECK(c.http.ws_idle_timeout == std::chrono::milliseconds(5000));
    CHECK(c.http.ws_message_limit == 1024);
    CHECK(c.http.ws_queue_limit == 65536);
    CHECK(c.agents.session_ttl == std::chrono::seconds(600));
    CHECK(c.agents.presence_ttl == std::chrono::milliseconds(3000));
    CHECK(c.agents.reconnect_grace == std::chrono::milliseconds(0));
    CHECK(c.agents.signin_max_failures == 3);
    CHECK(c.agents.signin_lockout == std::chrono::seconds(60));
    CHECK(c.agents.signin_failure_delay == std::chrono::milliseconds(0));
    CHECK_FALSE(c.agents.cookie_secure);

    const auto bad = problems_of(parse_config(
        R"({"http":{"ws_queue_limit":10},"agents":{"session_ttl_s":1,"signin_max_failures":0,
            "cookie_secure":"yes","tokens":1}})"));
    CHECK(bad.find("http.ws_queue_limit: must be an integer 1024-268435456") != std::string::npos);
    CHECK(bad.find("agents.session_ttl_s: must be an integer 60-2592000") != std::string::npos);
    CHECK(bad.find("agents.signin_max_failures: must be an integer 1-1000") != std::string::npos);
    CHECK(bad.find("agents.cookie_secure: must be true or false") != std::string::npos);
    CHECK(bad.find("agents.tokens: unknown key") != std::string::npos);
}

TEST_CASE("evaluation links' lifetime: default 7 days, file value, bad values") {
    auto r = parse_config("{}");
    REQUIRE(std::holds_alternative<config>(r));
    CHECK(std::get<config>(r).evaluation_link_ttl == std::chrono::seconds(7 * 24 * 3600));
    r = parse_config(R"({"evaluations":{"link_ttl_s":3600}})");
    REQUIRE(std::holds_alternative<config>(r));
    CHECK(std::get<config>(r).evaluation_link_ttl == std::chrono::seconds(3600));
    const auto bad = problems_of(parse_config(R"({"evaluations":{"link_ttl_s":5,"ttl":1}})"));
    CHECK(bad.find("evaluations.link_ttl_s: must be an integer 60-31622400") != std::string::npos);
    CHECK(bad.find("evaluations.ttl: unknown key") != std::string::npos);
}

TEST_CASE("console_dir: empty by default (the built-in folder) and set by file or environment") {
    auto r = parse_config("{}");
    REQUIRE(std::holds_alternative<config>(r));
    auto c = std::get<config>(r);
    CHECK(c.console_dir.empty());
    r = parse_config(R"({"console_dir":"/srv/scrm/console"})");
    REQUIRE(std::holds_alternative<config>(r));
    c = std::get<config>(r);
    CHECK(c.console_dir == "/srv/scrm/console");
    CHECK_FALSE(apply_env(c, {{"SCRM_CONSOLE_DIR", "/opt/console"}}).has_value());
    CHECK(c.console_dir == "/opt/console");
    CHECK(problems_of(parse_config(R"({"console_dir":7})")) == "console_dir: must be a string");
}

TEST_CASE("admin_dir: empty by default (the built-in folder) and set by file or environment") {
    auto r = parse_config("{}");
    REQUIRE(std::holds_alternative<config>(r));
    auto c = std::get<config>(r);
    CHECK(c.admin_dir.empty());
    r = parse_config(R"({"admin_dir":"/srv/scrm/admin"})");
    REQUIRE(std::holds_alternative<config>(r));
    c = std::get<config>(r);
    CHECK(c.admin_dir == "/srv/scrm/admin");
    CHECK(c.console_dir.empty());
    CHECK_FALSE(apply_env(c, {{"SCRM_ADMIN_DIR", "/opt/admin"}}).has_value());
    CHECK(c.admin_dir == "/opt/admin");
    CHECK(problems_of(parse_config(R"({"admin_dir":7})")) == "admin_dir: must be a string");
}

// Gateway configuration: a JSON file, then environment overrides, then command-line flags,
// validated into one value. Pure: no I/O besides reading the file, no Asio.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "scrm/common/error.hpp"

namespace scrm::gateway {

struct redis_settings {
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    std::string password;  // secret: never logged
    std::chrono::milliseconds connect_timeout{1000};
    std::chrono::milliseconds command_timeout{1000};
};

struct mysql_settings {
    std::string host = "127.0.0.1";
    std::uint16_t port = 3306;
    std::string user = "scrm";
    std::string password;  // secret: never logged
    std::string database = "scrm";
    unsigned pool_size = 4;       // worker threads, one connection each
    unsigned queue_limit = 1024;  // queued requests beyond which callers get errc::overloaded
    std::chrono::milliseconds connect_timeout{2000};
    std::chrono::milliseconds read_timeout{
        5000};  // driver-level: a stalled server frees the worker
    std::chrono::milliseconds write_timeout{5000};
};

struct http_settings {
    std::string listen_host = "127.0.0.1";
    std::uint16_t listen_port = 8080;
    std::size_t body_limit = 1024 * 1024;             // bytes; larger bodies get 413
    std::chrono::milliseconds header_timeout{10000};  // whole header must arrive within this
    std::chrono::milliseconds body_timeout{10000};    // whole body must arrive within this
    std::chrono::milliseconds idle_timeout{60000};    // keep-alive idle
    std::chrono::milliseconds shutdown_grace{10000};  // in-flight requests finish within this
    std::chrono::milliseconds ready_timeout{1000};    // /readyz checks
    // WebSocket connections (http.hpp): a peer silent this long is dropped (pinged at half of it);
    // a message from the peer over ws_message_limit bytes closes the connection; more than
    // ws_queue_limit bytes waiting to be written to a slow peer closes it too.
    std::chrono::milliseconds ws_idle_timeout{30000};
    std::size_t ws_message_limit = 64 * 1024;
    std::size_t ws_queue_limit = 1024 * 1024;
};

// Agents' sign-in, sessions and presence (agent_api.hpp).
struct agent_settings {
    std::chrono::seconds session_ttl{12 * 3600};  // a sign-in token is valid this long
    // Presence (routing/live.hpp): a console connection keeps its agent online this long after
    // each heartbeat, and this long after it closed (a page reload re-routes nothing).
    std::chrono::milliseconds presence_ttl{60000};
    std::chrono::milliseconds reconnect_grace{15000};
    // Failed sign-ins of one agent: after signin_max_failures within signin_lockout, sign-in is
    // refused (429) until the window ends; every failure is answered after signin_failure_delay.
    unsigned signin_max_failures = 5;
    std::chrono::seconds signin_lockout{900};
    std::chrono::milliseconds signin_failure_delay{500};
    // The session cookie's Secure attribute (behind the TLS proxy the console is https).
    bool cookie_secure = true;
};

struct config {
    http_settings http;
    agent_settings agents;
    // Evaluation links (/eval/<token>) can be answered this long after the visit's invitation.
    std::chrono::seconds evaluation_link_ttl{7 * 24 * 3600};
    redis_settings redis;
    mysql_settings mysql;
    unsigned io_threads = 0;          // 0 = number of cores
    std::string spool_dir = "spool";  // local durable spool for messages while MySQL is away
    std::string media_dir = "media";  // inbound images, voice and video fetched from WeChat
    // Run the outbox and media workers in this instance. Every instance may (they share the work
    // safely); an operator may keep them to some instances, and tests of the webhook alone that
    // share a database with other suites turn them off.
    bool background_workers = true;
    // Keep those workers to these clinics (routing's timers and sweeper) and these official
    // accounts (outbox, media fetcher); empty: all. For tests sharing a database with other
    // suites (env only: SCRM_WORKER_CLINICS, SCRM_WORKER_ACCOUNTS, comma-separated ids).
    std::vector<std::uint64_t> worker_clinics;
    std::vector<std::uint64_t> worker_accounts;
    std::string log_level = "info";
    // The WeChat API (wechat::http_endpoint): https://host[:port][/prefix], or http:// to a
    // loopback host (a local fake). No trailing slash (one given is dropped).
    std::string wechat_api_base_url = "https://api.weixin.qq.com";
    // PEM CA certificates to trust for it; empty: the system's trust store. Checked readable by
    // load_config.
    std::string wechat_ca_file;
    // The staff console's static files (static_files.hpp), served at /console/; empty: the
    // console/ folder of the source tree the binary was built from.
    std::string console_dir;
    // The administration pages, served at /admin/; empty: the source tree's admin/ folder.
    std::string admin_dir;
    // Where patients' phones reach the gateway (behind the TLS proxy): https://host[/prefix].
    // Template notifications that open the gateway's own pages (the "reply waiting" notice's
    // /reply/<token>, the evaluation invitation's /eval/<token>) carry absolute links made from
    // it. Empty: the reply-waiting notice cannot be sent (agents are told the fan must write
    // first) and the evaluation invitation keeps the template setting's own link.
    std::string public_base_url;
};

// Reads and validates. Every problem found is reported (one per line), naming the key and the
// expected value, e.g. "redis.port: must be an integer 1-65535, got \"abc\"".
struct load_error {
    std::vector<std::string> problems;
    std::string message() const;
};

// Parses the JSON text of a configuration file on top of the defaults.
std::variant<config, load_error> parse_config(const std::string& json_text);

// Applies SCRM_* environment overrides (names in docs: SCRM_LISTEN, SCRM_REDIS_HOST,
// SCRM_REDIS_PORT, SCRM_REDIS_PASSWORD, SCRM_MYSQL_HOST, SCRM_MYSQL_PORT, SCRM_MYSQL_USER,
// SCRM_MYSQL_PASSWORD, SCRM_MYSQL_DATABASE, SCRM_MYSQL_POOL_SIZE, SCRM_IO_THREADS, SCRM_LOG_LEVEL,
// SCRM_SPOOL_DIR, SCRM_WECHAT_API_BASE_URL, SCRM_WECHAT_CA_FILE, SCRM_PUBLIC_BASE_URL) from `env`.
std::optional<load_error> apply_env(config& cfg, const std::map<std::string, std::string>& env);

// "host:port" as given to --listen or SCRM_LISTEN.
std::optional<std::string> apply_listen(config& cfg, const std::string& host_port);

// Checks a WeChat API base URL; returns the problem, or nothing (the URL may lose a trailing /).
std::optional<std::string> check_api_base_url(std::string& url);

// The whole sequence for a command line: --config FILE (optional), environment, --listen; then
// checks that wechat_ca_file, when set, is a readable file.
struct cli_options {
    std::optional<std::string> config_path;
    std::optional<std::string> listen;
};
std::variant<config, load_error> load_config(const cli_options& cli,
                                             const std::map<std::string, std::string>& env);

// The process environment as a map (for load_config).
std::map<std::string, std::string> process_env();

}  // namespace scrm::gateway

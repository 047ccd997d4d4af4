// Configuration loading: JSON file → environment → flags, each value checked with a message that
// names the key, what was expected and what was found. Unknown keys are errors (typos are common).
#include "scrm/gateway/config.hpp"

#include "scrm/common/log.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

extern char** environ;

namespace scrm::gateway {
namespace {

using rapidjson::Value;

// Collects problems while reading one JSON object.
class reader {
public:
    explicit reader(std::vector<std::string>& problems) : problems_(problems) {}

    void problem(const std::string& key, const std::string& text) {
        problems_.push_back(key + ": " + text);
    }

    // Reports members of `obj` not in `known`.
    void check_keys(const Value& obj, const std::string& prefix,
                    std::initializer_list<const char*> known) {
        std::set<std::string> names(known.begin(), known.end());
        for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
            std::string name(it->name.GetString(), it->name.GetStringLength());
            if (!names.count(name)) problem(prefix + name, "unknown key");
        }
    }

    void get_string(const Value& obj, const char* name, const std::string& prefix, std::string& out,
                    bool allow_empty = false) {
        auto it = obj.FindMember(name);
        if (it == obj.MemberEnd()) return;
        if (!it->value.IsString()) {
            problem(prefix + name, "must be a string");
            return;
        }
        std::string v(it->value.GetString(), it->value.GetStringLength());
        if (v.empty() && !allow_empty) {
            problem(prefix + name, "must not be empty");
            return;
        }
        out = std::move(v);
    }

    void get_bool(const Value& obj, const char* name, const std::string& prefix, bool& out) {
        auto it = obj.FindMember(name);
        if (it == obj.MemberEnd()) return;
        if (!it->value.IsBool()) {
            problem(prefix + name, "must be true or false");
            return;
        }
        out = it->value.GetBool();
    }

    template <class Int>
    void get_int(const Value& obj, const char* name, const std::string& prefix, Int& out,
                 std::int64_t lo, std::int64_t hi) {
        auto it = obj.FindMember(name);
        if (it == obj.MemberEnd()) return;
        if (!it->value.IsInt64() || it->value.GetInt64() < lo || it->value.GetInt64() > hi) {
            problem(prefix + name,
                    "must be an integer " + std::to_string(lo) + "-" + std::to_string(hi));
            return;
        }
        out = static_cast<Int>(it->value.GetInt64());
    }

    void get_ms(const Value& obj, const char* name, const std::string& prefix,
                std::chrono::milliseconds& out, std::int64_t lo = 1, std::int64_t hi = 3'600'000) {
        std::int64_t v = out.count();
        get_int(obj, name, prefix, v, lo, hi);
        out = std::chrono::milliseconds(v);
    }

    const Value* section(const Value& root, const char* name) {
        auto it = root.FindMember(name);
        if (it == root.MemberEnd()) return nullptr;
        if (!it->value.IsObject()) {
            problem(name, "must be an object");
            return nullptr;
        }
        return &it->value;
    }

private:
    std::vector<std::string>& problems_;
};

bool parse_port(std::string_view text, std::uint16_t& out) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || p != text.data() + text.size() || v == 0 || v > 65535) return false;
    out = static_cast<std::uint16_t>(v);
    return true;
}

bool parse_uint(std::string_view text, unsigned long long& out) {
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && p == text.data() + text.size() && !text.empty();
}

bool loopback_host(std::string_view host) {
    return host == "127.0.0.1" || host == "localhost" || host == "[::1]";
}

void validate(config& cfg, std::vector<std::string>& problems) {
    log::level lvl;
    if (!log::parse_level(cfg.log_level, lvl)) {
        problems.push_back("log_level: must be one of debug, info, warn, error, got \"" +
                           cfg.log_level + "\"");
    }
    if (cfg.mysql.read_timeout.count() < 100) {
        problems.push_back("mysql.read_timeout_ms: must be at least 100");
    }
    if (cfg.spool_dir.empty()) problems.push_back("spool_dir: must not be empty");
    if (cfg.media_dir.empty()) problems.push_back("media_dir: must not be empty");
    if (auto problem = check_api_base_url(cfg.wechat_api_base_url)) {
        problems.push_back("wechat_api_base_url: " + *problem);
    }
    // The same shape: https://host[:port][/prefix] (http:// for a loopback host, local demos).
    if (!cfg.public_base_url.empty()) {
        if (auto problem = check_api_base_url(cfg.public_base_url)) {
            problems.push_back("public_base_url: " + *problem);
        }
    }
}

}  // namespace

std::string load_error::message() const {
    std::string out;
    for (const auto& p : problems) {
        if (!out.empty()) out += '\n';
        out += p;
    }
    return out;
}

std::optional<std::string> check_api_base_url(std::string& url) {
    const std::string given = url;
    const auto bad = [&](const std::string& why) { return why + ", got \"" + given + "\""; };
    std::string_view rest = url;
    bool tls = true;
    if (rest.substr(0, 8) == "https://") {
        rest.remove_prefix(8);
    } else if (rest.substr(0, 7) == "http://") {
        rest.remove_prefix(7);
        tls = false;
    } else {
        return bad("must start with https:// (or http:// to a loopback host)");
    }
    const std::string_view authority = rest.substr(0, rest.find('/'));
    const std::string_view path = rest.substr(authority.size());
    std::string_view host = authority;
    if (const auto colon = authority.rfind(':');
        colon != std::string_view::npos && authority.find(']', colon) == std::string_view::npos) {
        host = authority.substr(0, colon);
        std::uint16_t port = 0;
        if (!parse_port(authority.substr(colon + 1), port)) {
            return bad("port must be an integer 1-65535");
        }
    }
    // A DNS name or an IPv4 address, or an IPv6 address in brackets.
    const bool ipv6 = host.size() > 2 && host.front() == '[' && host.back() == ']';
    const std::string_view name = ipv6 ? host.substr(1, host.size() - 2) : host;
    const bool host_ok = !name.empty() && std::all_of(name.begin(), name.end(), [&](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ||
               (ipv6 && c == ':');
    });
    if (!host_ok) return bad("must be http(s)://host[:port][/prefix]");
    for (char c : path) {
        if (c == '?' || c == '#' || std::isspace(static_cast<unsigned char>(c)) ||
            !std::isprint(static_cast<unsigned char>(c))) {
            return bad("the path prefix must not hold a query, a fragment or spaces");
        }
    }
    if (!tls && !loopback_host(host)) {
        return bad(
            "plain http is only for a loopback host (127.0.0.1, localhost, [::1]); use "
            "https");
    }
    while (url.size() > 1 && url.back() == '/') url.pop_back();
    return std::nullopt;
}

std::optional<std::string> apply_listen(config& cfg, const std::string& host_port) {
    const auto colon = host_port.rfind(':');
    if (colon == std::string::npos || colon == 0) {
        return "must be HOST:PORT (e.g. 127.0.0.1:8080), got \"" + host_port + "\"";
    }
    std::uint16_t port = 0;
    if (!parse_port(std::string_view(host_port).substr(colon + 1), port)) {
        return "port must be an integer 1-65535, got \"" + host_port.substr(colon + 1) + "\"";
    }
    cfg.http.listen_host = host_port.substr(0, colon);
    cfg.http.listen_port = port;
    return std::nullopt;
}

std::variant<config, load_error> parse_config(const std::string& json_text) {
    config cfg;
    load_error err;
    rapidjson::Document doc;
    doc.Parse(json_text.data(), json_text.size());
    if (doc.HasParseError()) {
        err.problems.push_back(std::string("invalid JSON at offset ") +
                               std::to_string(doc.GetErrorOffset()) + ": " +
                               rapidjson::GetParseError_En(doc.GetParseError()));
        return err;
    }
    if (!doc.IsObject()) {
        err.problems.push_back("the configuration must be a JSON object");
        return err;
    }
    reader r(err.problems);
    r.check_keys(doc, "",
                 {"http", "agents", "evaluations", "redis", "mysql", "io_threads", "log_level",
                  "spool_dir", "media_dir", "background_workers", "wechat_api_base_url",
                  "wechat_ca_file", "console_dir", "admin_dir", "public_base_url", "services"});
    r.get_string(doc, "spool_dir", "", cfg.spool_dir);
    r.get_string(doc, "media_dir", "", cfg.media_dir);
    r.get_bool(doc, "background_workers", "", cfg.background_workers);
    r.get_string(doc, "wechat_api_base_url", "", cfg.wechat_api_base_url);
    r.get_string(doc, "wechat_ca_file", "", cfg.wechat_ca_file, true);
    r.get_string(doc, "console_dir", "", cfg.console_dir, true);
    r.get_string(doc, "admin_dir", "", cfg.admin_dir, true);
    r.get_string(doc, "public_base_url", "", cfg.public_base_url, true);
    r.get_int(doc, "io_threads", "", cfg.io_threads, 0, 256);
    r.get_string(doc, "log_level", "", cfg.log_level);

    if (const Value* h = r.section(doc, "http")) {
        r.check_keys(*h, "http.",
                     {"listen", "body_limit", "header_timeout_ms", "body_timeout_ms",
                      "idle_timeout_ms", "shutdown_grace_ms", "ready_timeout_ms",
                      "ws_idle_timeout_ms", "ws_message_limit", "ws_queue_limit"});
        std::string listen;
        r.get_string(*h, "listen", "http.", listen);
        if (!listen.empty()) {
            if (auto problem = apply_listen(cfg, listen)) r.problem("http.listen", *problem);
        }
        r.get_int(*h, "body_limit", "http.", cfg.http.body_limit, 1024, 64 * 1024 * 1024);
        r.get_ms(*h, "header_timeout_ms", "http.", cfg.http.header_timeout);
        r.get_ms(*h, "body_timeout_ms", "http.", cfg.http.body_timeout);
        r.get_ms(*h, "idle_timeout_ms", "http.", cfg.http.idle_timeout);
        r.get_ms(*h, "shutdown_grace_ms", "http.", cfg.http.shutdown_grace, 0);
        r.get_ms(*h, "ready_timeout_ms", "http.", cfg.http.ready_timeout);
        r.get_ms(*h, "ws_idle_timeout_ms", "http.", cfg.http.ws_idle_timeout, 100);
        r.get_int(*h, "ws_message_limit", "http.", cfg.http.ws_message_limit, 125,
                  16 * 1024 * 1024);
        r.get_int(*h, "ws_queue_limit", "http.", cfg.http.ws_queue_limit, 1024, 256 * 1024 * 1024);
    }
    if (const Value* a = r.section(doc, "agents")) {
        auto& ag = cfg.agents;
        r.check_keys(
            *a, "agents.",
            {"session_ttl_s", "presence_ttl_ms", "reconnect_grace_ms", "signin_max_failures",
             "signin_lockout_s", "signin_failure_delay_ms", "cookie_secure"});
        std::int64_t ttl = ag.session_ttl.count();
        r.get_int(*a, "session_ttl_s", "agents.", ttl, 60, 30 * 24 * 3600);
        ag.session_ttl = std::chrono::seconds(ttl);
        r.get_ms(*a, "presence_ttl_ms", "agents.", ag.presence_ttl, 100);
        r.get_ms(*a, "reconnect_grace_ms", "agents.", ag.reconnect_grace, 0);
        r.get_int(*a, "signin_max_failures", "agents.", ag.signin_max_failures, 1, 1000);
        std::int64_t lockout = ag.signin_lockout.count();
        r.get_int(*a, "signin_lockout_s", "agents.", lockout, 1, 24 * 3600);
        ag.signin_lockout = std::chrono::seconds(lockout);
        r.get_ms(*a, "signin_failure_delay_ms", "agents.", ag.signin_failure_delay, 0, 10000);
        r.get_bool(*a, "cookie_secure", "agents.", ag.cookie_secure);
    }
    if (const Value* ev = r.section(doc, "evaluations")) {
        r.check_keys(*ev, "evaluations.", {"link_ttl_s"});
        std::int64_t ttl = cfg.evaluation_link_ttl.count();
        r.get_int(*ev, "link_ttl_s", "evaluations.", ttl, 60, 366 * 24 * 3600);
        cfg.evaluation_link_ttl = std::chrono::seconds(ttl);
    }
    if (const Value* rs = r.section(doc, "redis")) {
        r.check_keys(*rs, "redis.",
                     {"host", "port", "password", "connect_timeout_ms", "command_timeout_ms"});
        r.get_string(*rs, "host", "redis.", cfg.redis.host);
        r.get_int(*rs, "port", "redis.", cfg.redis.port, 1, 65535);
        r.get_string(*rs, "password", "redis.", cfg.redis.password, true);
        r.get_ms(*rs, "connect_timeout_ms", "redis.", cfg.redis.connect_timeout);
        r.get_ms(*rs, "command_timeout_ms", "redis.", cfg.redis.command_timeout);
    }
    if (const Value* m = r.section(doc, "mysql")) {
        r.check_keys(*m, "mysql.",
                     {"host", "port", "user", "password", "database", "pool_size", "queue_limit",
                      "connect_timeout_ms", "read_timeout_ms", "write_timeout_ms"});
        r.get_string(*m, "host", "mysql.", cfg.mysql.host);
        r.get_int(*m, "port", "mysql.", cfg.mysql.port, 1, 65535);
        r.get_string(*m, "user", "mysql.", cfg.mysql.user);
        r.get_string(*m, "password", "mysql.", cfg.mysql.password, true);
        r.get_string(*m, "database", "mysql.", cfg.mysql.database);
        r.get_int(*m, "pool_size", "mysql.", cfg.mysql.pool_size, 1, 256);
        r.get_int(*m, "queue_limit", "mysql.", cfg.mysql.queue_limit, 1, 1'000'000);
        r.get_ms(*m, "connect_timeout_ms", "mysql.", cfg.mysql.connect_timeout);
        r.get_ms(*m, "read_timeout_ms", "mysql.", cfg.mysql.read_timeout);
        r.get_ms(*m, "write_timeout_ms", "mysql.", cfg.mysql.write_timeout);
    }
    validate(cfg, err.problems);
    if (!err.problems.empty()) return err;
    return cfg;
}

std::optional<load_error> apply_env(config& cfg, const std::map<std::string, std::string>& env) {
    load_error err;
    auto get = [&](const char* name) -> const std::string* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : &it->second;
    };
    auto port = [&](const char* name, std::uint16_t& out) {
        if (const auto* v = get(name)) {
            if (!parse_port(*v, out)) {
                err.problems.push_back(std::string(name) + ": must be an integer 1-65535, got \"" +
                                       *v + "\"");
            }
        }
    };
    auto text = [&](const char* name, std::string& out, bool allow_empty) {
        if (const auto* v = get(name)) {
            if (v->empty() && !allow_empty) {
                err.problems.push_back(std::string(name) + ": must not be empty");
            } else {
                out = *v;
            }
        }
    };
    auto count = [&](const char* name, unsigned& out, unsigned long long lo,
                     unsigned long long hi) {
        if (const auto* v = get(name)) {
            unsigned long long n = 0;
            if (!parse_uint(*v, n) || n < lo || n > hi) {
                err.problems.push_back(std::string(name) + ": must be an integer " +
                                       std::to_string(lo) + "-" + std::to_string(hi) + ", got \"" +
                                       *v + "\"");
            } else {
                out = static_cast<unsigned>(n);
            }
        }
    };
    if (const auto* v = get("SCRM_LISTEN")) {
        if (auto problem = apply_listen(cfg, *v))
            err.problems.push_back("SCRM_LISTEN: " + *problem);
    }
    text("SCRM_REDIS_HOST", cfg.redis.host, false);
    port("SCRM_REDIS_PORT", cfg.redis.port);
    text("SCRM_REDIS_PASSWORD", cfg.redis.password, true);
    text("SCRM_MYSQL_HOST", cfg.mysql.host, false);
    port("SCRM_MYSQL_PORT", cfg.mysql.port);
    text("SCRM_MYSQL_USER", cfg.mysql.user, false);
    text("SCRM_MYSQL_PASSWORD", cfg.mysql.password, true);
    text("SCRM_MYSQL_DATABASE", cfg.mysql.database, false);
    count("SCRM_MYSQL_POOL_SIZE", cfg.mysql.pool_size, 1, 256);
    count("SCRM_IO_THREADS", cfg.io_threads, 0, 256);
    text("SCRM_LOG_LEVEL", cfg.log_level, false);
    text("SCRM_SPOOL_DIR", cfg.spool_dir, false);
    text("SCRM_MEDIA_DIR", cfg.media_dir, false);
    if (const auto* v = get("SCRM_BACKGROUND_WORKERS")) {
        if (*v == "1" || *v == "true") {
            cfg.background_workers = true;
        } else if (*v == "0" || *v == "false") {
            cfg.background_workers = false;
        } else {
            err.problems.push_back("SCRM_BACKGROUND_WORKERS: must be 1, 0, true or false, got \"" +
                                   *v + "\"");
        }
    }
    auto ids = [&](const char* name, std::vector<std::uint64_t>& out) {
        const auto* v = get(name);
        if (!v) return;
        std::vector<std::uint64_t> parsed;
        std::size_t at = 0;
        while (at <= v->size()) {
            const auto comma = std::min(v->find(',', at), v->size());
            unsigned long long n = 0;
            if (!parse_uint(v->substr(at, comma - at), n) || n == 0) {
                err.problems.push_back(
                    std::string(name) +
                    ": must be ids (positive integers) separated by commas, got \"" + *v + "\"");
                return;
            }
            parsed.push_back(n);
            at = comma + 1;
        }
        out = std::move(parsed);
    };
    ids("SCRM_WORKER_CLINICS", cfg.worker_clinics);
    ids("SCRM_WORKER_ACCOUNTS", cfg.worker_accounts);
    text("SCRM_WECHAT_API_BASE_URL", cfg.wechat_api_base_url, false);
    text("SCRM_WECHAT_CA_FILE", cfg.wechat_ca_file, true);
    text("SCRM_CONSOLE_DIR", cfg.console_dir, true);
    text("SCRM_ADMIN_DIR", cfg.admin_dir, true);
    text("SCRM_PUBLIC_BASE_URL", cfg.public_base_url, true);
    validate(cfg, err.problems);
    if (err.problems.empty()) return std::nullopt;
    return err;
}

std::variant<config, load_error> load_config(const cli_options& cli,
                                             const std::map<std::string, std::string>& env) {
    config cfg;
    if (cli.config_path) {
        std::ifstream in(*cli.config_path, std::ios::binary);
        if (!in) {
            return load_error{
                {"--config " + *cli.config_path + ": cannot open (" + std::strerror(errno) + ")"}};
        }
        std::stringstream buf;
        buf << in.rdbuf();
        auto parsed = parse_config(buf.str());
        if (auto* e = std::get_if<load_error>(&parsed)) {
            for (auto& p : e->problems) p = *cli.config_path + ": " + p;
            return *e;
        }
        cfg = std::get<config>(std::move(parsed));
    }
    if (auto e = apply_env(cfg, env)) return *e;
    if (cli.listen) {
        if (auto problem = apply_listen(cfg, *cli.listen)) {
            return load_error{{"--listen: " + *problem}};
        }
    }
    if (!cfg.wechat_ca_file.empty()) {
        // Found at start rather than at the first API call, hours later.
        const std::string problem = "wechat_ca_file: cannot read \"" + cfg.wechat_ca_file + "\"";
        std::error_code ec;
        const auto status = std::filesystem::status(cfg.wechat_ca_file, ec);
        if (ec) return load_error{{problem + " (" + ec.message() + ")"}};
        if (!std::filesystem::is_regular_file(status)) {
            return load_error{{problem + " (not a file)"}};
        }
        if (!std::ifstream(cfg.wechat_ca_file, std::ios::binary)) {
            return load_error{{problem + " (" + std::strerror(errno) + ")"}};
        }
    }
    return cfg;
}

std::map<std::string, std::string> process_env() {
    std::map<std::string, std::string> out;
    for (char** e = environ; e && *e; ++e) {
        std::string_view kv(*e);
        const auto eq = kv.find('=');
        if (eq == std::string_view::npos) continue;
        if (kv.substr(0, 5) != "SCRM_") continue;
        out.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
    }
    return out;
}

}  // namespace scrm::gateway

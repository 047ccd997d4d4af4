// The scrm-gateway executable end to end: two instances sharing Redis and MariaDB store a message
// retried concurrently against both exactly once (and hand it on once in total); kill -9 under
// load loses nothing that was acknowledged; MariaDB stalled under load loses nothing acknowledged
// and hands each message on once.
#include <catch2/catch.hpp>

#include <atomic>
#include <csignal>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "child_process.hpp"
#include "gateway_process.hpp"
#include "http_client.hpp"
#include "scrm/fakes/fake_wechat.hpp"
#include "scrm/gateway/services.hpp"
#include "scrm/storage/mysql.hpp"
#include "scrm/wechat/signature.hpp"
#include "test_env.hpp"

using namespace scrm;
using namespace scrm::test;
using namespace std::chrono_literals;

namespace {

const std::string gateway_bin = SCRM_GATEWAY_BIN;
const std::string admin_bin = SCRM_ADMIN_BIN;
const std::string master_env = "SCRM_MASTER_KEY=" + std::string(64, 'd');
const std::string token = "E2eToken42";
const std::string original_id = "gh_e2e000000001";

std::string new_appid() {
    static std::atomic<unsigned> n{0};
    return "wx" +
           std::to_string(2000000000000000ULL + static_cast<unsigned>(::getpid()) * 100ULL + n++);
}

const std::string aes_key(43, 'Q');

void provision(const std::filesystem::path& config, const std::string& appid,
               bool safe_only = false) {
    std::vector<std::string> argv{admin_bin,
                                  "--config",
                                  config.string(),
                                  "account",
                                  "add",
                                  "--clinic",
                                  unique_name("e2e"),
                                  "--appid",
                                  appid,
                                  "--original-id",
                                  original_id,
                                  "--token",
                                  token,
                                  "--aes-key",
                                  aes_key,
                                  "--secret",
                                  "0123456789abcdef0123456789abcdef"};
    if (safe_only) argv.push_back("--safe-mode-only");
    child_process p(argv,
                    std::filesystem::temp_directory_path() / (unique_name("provision") + ".out"),
                    {master_env});
    REQUIRE(p.wait(60s) == std::optional<int>(0));
}

// This suite's gateway, with its master key.
struct e2e_gateway : gateway_process {
    e2e_gateway(const std::filesystem::path& config, const std::filesystem::path& dir,
                const std::string& name, std::vector<std::string> extra_env = {})
        : gateway_process(gateway_bin, config, dir, name, with_key(std::move(extra_env))) {}
    static std::vector<std::string> with_key(std::vector<std::string> env) {
        env.insert(env.begin(), master_env);
        return env;
    }
    double stored_total() const { return metric("scrm_messages_stored_total"); }
};

std::string text_xml(const std::string& openid, std::uint64_t msg_id, std::int64_t now) {
    return "<xml><ToUserName><![CDATA[" + original_id + "]]></ToUserName><FromUserName><![CDATA[" +
           openid + "]]></FromUserName><CreateTime>" + std::to_string(now) +
           "</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[消息 " +
           std::to_string(msg_id) + "]]></Content><MsgId>" + std::to_string(msg_id) +
           "</MsgId></xml>";
}

http_reply send(std::uint16_t port, const std::string& appid, const std::string& xml,
                const std::string& nonce) {
    const std::string ts = std::to_string(std::time(nullptr));
    const std::string q = "signature=" + wechat::url_signature(token, ts, nonce) +
                          "&timestamp=" + ts + "&nonce=" + nonce + "&openid=x";
    return http_call(port, "POST", "/wx/" + appid + "?" + q, xml, {}, 10s);
}

// A gateway configuration for the servers of `cfg`, with whole-second MySQL driver timeouts so
// that a stalled server is given up on (and the message spooled) within about a second.
std::filesystem::path fast_failover_config(const gateway::config& cfg,
                                           const std::filesystem::path& file) {
    const auto quoted = [](const std::string& v) {
        std::string out = "\"";
        for (char c : v) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        return out + "\"";
    };
    std::ofstream out(file);
    out << "{\"redis\": {\"host\": " << quoted(cfg.redis.host) << ", \"port\": " << cfg.redis.port
        << "},\n \"mysql\": {\"host\": " << quoted(cfg.mysql.host)
        << ", \"port\": " << cfg.mysql.port << ", \"user\": " << quoted(cfg.mysql.user)
        << ", \"password\": " << quoted(cfg.mysql.password)
        << ", \"database\": " << quoted(cfg.mysql.database)
        << ", \"connect_timeout_ms\": 1000, \"read_timeout_ms\": 1000, \"write_timeout_ms\": "
           "1000}}\n";
    REQUIRE(out.good());
    return file;
}

// How many times `needle` occurs in `haystack`.
std::size_t occurrences(const std::string& haystack, const std::string& needle) {
    std::size_t n = 0;
    for (auto pos = haystack.find(needle); pos != std::string::npos;
         pos = haystack.find(needle, pos + needle.size())) {
        ++n;
    }
    return n;
}

// Runs `f` when the scope ends, however it ends (a failed REQUIRE too).
struct scope_exit {
    std::function<void()> f;
    ~scope_exit() { f(); }
};

std::string count_rows(const gateway::config& cfg, const std::string& appid,
                       const std::string& where = "") {
    storage::mysql_session db(gateway::mysql_options_from(cfg.mysql));
    auto r = db.query(
        "SELECT COUNT(*) FROM inbound_messages m JOIN official_accounts a ON a.id = m.account_id "
        "WHERE a.appid = ?" +
            where,
        {appid});
    REQUIRE(r.has_value());
    return *r->rows[0][0];
}

}  // namespace

TEST_CASE("a message retried concurrently against two instances is stored and handed on once") {
    const auto dir = std::filesystem::temp_directory_path() / unique_name("scrm_e2e");
    std::filesystem::create_directories(dir);
    const auto config = services_config_path();
    const std::string appid = new_appid();
    provision(config, appid);
    e2e_gateway a(config, dir, "a");
    e2e_gateway b(config, dir, "b");
    const double before = a.stored_total() + b.stored_total();

    const std::int64_t now = std::time(nullptr);
    constexpr int messages = 20;
    for (int m = 0; m < messages; ++m) {
        const std::string xml = text_xml("oTwo", 7000 + static_cast<std::uint64_t>(m), now);
        std::vector<std::thread> retries;
        std::vector<int> status(3);
        for (int i = 0; i < 3; ++i) {
            retries.emplace_back([&, i] {
                const auto port = i % 2 ? b.port : a.port;
                status[static_cast<std::size_t>(i)] =
                    send(port, appid, xml, "m" + std::to_string(m) + "r" + std::to_string(i))
                        .status;
            });
        }
        for (auto& t : retries) t.join();
        CHECK(status == std::vector<int>{200, 200, 200});
    }
    CHECK(count_rows(services_config(), appid) == std::to_string(messages));
    CHECK(a.stored_total() + b.stored_total() - before == messages);
    // The requests' wait for routing is exported (bench/run reads it for routing's share).
    CHECK(a.metric("scrm_routing_wait_seconds_total") >= 0);
    CHECK(b.metric("scrm_routing_wait_seconds_total") >= 0);
    CHECK(a.metric("scrm_routing_wait_seconds_total") +
              b.metric("scrm_routing_wait_seconds_total") >
          0);
    std::filesystem::remove_all(dir);
}

TEST_CASE("kill -9 under load loses no acknowledged message") {
    const auto dir = std::filesystem::temp_directory_path() / unique_name("scrm_kill");
    std::filesystem::create_directories(dir);
    const auto config = services_config_path();
    const std::string appid = new_appid();
    provision(config, appid);
    auto gw = std::make_unique<e2e_gateway>(config, dir, "k");
    const auto port = gw->port;

    std::mutex mutex;
    std::set<std::uint64_t> acknowledged;
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> next{1};
    const std::int64_t now = std::time(nullptr);
    std::vector<std::thread> senders;
    for (int t = 0; t < 8; ++t) {
        senders.emplace_back([&, t] {
            // Bounded: at most 2,000 messages in all, and it stops when told.
            while (!stop) {
                const auto id = next++;
                if (id > 2000) break;
                const auto r =
                    send(port, appid, text_xml("oKill" + std::to_string(t), 90000 + id, now),
                         "k" + std::to_string(id));
                if (r.status == 200) {
                    std::lock_guard lock(mutex);
                    acknowledged.insert(90000 + id);
                }
            }
        });
    }
    // Kill once a few hundred are acknowledged (bounded wait).
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
        {
            std::lock_guard lock(mutex);
            if (acknowledged.size() >= 300) break;
        }
        std::this_thread::sleep_for(10ms);
    }
    gw->proc.signal(SIGKILL);
    REQUIRE(gw->proc.wait(10s).has_value());
    stop = true;
    for (auto& t : senders) t.join();
    REQUIRE(acknowledged.size() >= 300);

    // Restart on the same spool folder; everything acknowledged must reach MySQL.
    gw = std::make_unique<e2e_gateway>(config, dir, "k");
    storage::mysql_session db(gateway::mysql_options_from(services_config().mysql));
    std::set<std::uint64_t> stored;
    const auto until = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < until) {
        auto rows = db.query(
            "SELECT m.wx_msg_id FROM inbound_messages m JOIN official_accounts a "
            "ON a.id = m.account_id WHERE a.appid = ?",
            {appid});
        REQUIRE(rows.has_value());
        stored.clear();
        for (const auto& r : rows->rows) stored.insert(std::stoull(*r[0]));
        if (std::includes(stored.begin(), stored.end(), acknowledged.begin(), acknowledged.end()))
            break;
        std::this_thread::sleep_for(100ms);
    }
    std::vector<std::uint64_t> lost;
    std::set_difference(acknowledged.begin(), acknowledged.end(), stored.begin(), stored.end(),
                        std::back_inserter(lost));
    INFO("acknowledged " << acknowledged.size() << ", stored " << stored.size());
    CHECK(lost.empty());
    CHECK(count_rows(services_config(), appid) == std::to_string(stored.size()));  // none twice
    std::filesystem::remove_all(dir);
}

TEST_CASE("the fake WeChat delivers every kind of callback to the gateway, plain and safe mode") {
    const auto dir = std::filesystem::temp_directory_path() / unique_name("scrm_fake_e2e");
    std::filesystem::create_directories(dir);
    const auto config = services_config_path();
    e2e_gateway gw(config, dir, "f");
    fakes::fake_wechat fake;
    REQUIRE(fake.start().has_value());

    for (const auto mode : {fakes::encryption_mode::plain, fakes::encryption_mode::safe}) {
        const std::string appid = new_appid();
        provision(config, appid, mode == fakes::encryption_mode::safe);
        REQUIRE(fake.api()
                    .add_account({appid,
                                  "0123456789abcdef0123456789abcdef",
                                  token,
                                  aes_key,
                                  original_id,
                                  mode,
                                  "http://127.0.0.1:" + std::to_string(gw.port) + "/wx/" + appid,
                                  {}})
                    .has_value());
        const std::string fan = fakes::make_openid(appid + "fan");
        const std::vector<fakes::inbound_spec> specs{
            fakes::inbound::subscribe(fan, "store_3"),
            fakes::inbound::text(fan, "医生您好，想预约洗牙 🦷"),
            fakes::inbound::image(fan, "media-1"),
            fakes::inbound::voice(fan, "media-2", "明天上午"),
            fakes::inbound::scan(fan, "store_4"),
            fakes::inbound::unsubscribe(fan),
        };
        // Routing answers too (the clinic has no agents and the default settings): the welcome
        // on subscribe, the no-agent reply to the first message, then nothing — suppressed.
        const auto replied = mode == fakes::encryption_mode::safe
                                 ? fakes::passive_reply::kind::encrypted
                                 : fakes::passive_reply::kind::xml;
        std::size_t i = 0;
        for (const auto& spec : specs) {
            const auto d = fake.deliver(appid, spec);
            CAPTURE(fakes::to_string(mode), d.type);
            CHECK(d.answered);
            CHECK(d.attempts.size() == 1);
            if (i < 2) {
                CHECK(d.reply.k == replied);
                CHECK(d.reply.msg_type == "text");
                CHECK_FALSE(d.reply.content.empty());
            } else {
                CHECK(d.reply.k == fakes::passive_reply::kind::none);
            }
            CHECK_FALSE(d.fan_sees_failure());
            ++i;
        }
        CHECK(count_rows(services_config(), appid) == std::to_string(specs.size()));
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("MariaDB stalled under concurrent load: nothing acknowledged is lost, nothing doubled") {
    // A private MariaDB, so that stopping it disturbs no other test.
    private_services servers;
    const auto dir = servers.dir() / "stall";
    std::filesystem::create_directories(dir);
    const auto config = fast_failover_config(servers.config(), dir / "gateway.json");
    const std::string appid = new_appid();
    provision(servers.config_path(), appid);
    e2e_gateway gw(config, dir, "s");
    const double handed_before = gw.stored_total();

    // 12 senders, 400 unique messages in all; each is sent up to 3 times (new nonce each time)
    // until answered 200, as WeChat does.
    constexpr std::uint64_t total = 400;
    constexpr std::uint64_t first_id = 500000;
    std::mutex mutex;
    std::set<std::uint64_t> acknowledged;
    std::map<int, int> statuses;  // every answer's status (0: no answer), for the failure message
    std::atomic<std::uint64_t> next{0};
    const std::int64_t now = std::time(nullptr);
    std::vector<std::thread> senders;
    for (int t = 0; t < 12; ++t) {
        senders.emplace_back([&, t] {
            for (auto n = next++; n < total; n = next++) {
                const std::uint64_t id = first_id + n;
                const std::string xml = text_xml("oStall" + std::to_string(t), id, now);
                for (int attempt = 0; attempt < 3; ++attempt) {
                    const auto r = send(gw.port, appid, xml,
                                        "s" + std::to_string(id) + "a" + std::to_string(attempt));
                    std::lock_guard lock(mutex);
                    ++statuses[r.status];
                    // 200: "success" or a passive reply (routing's no-agent reply).
                    if (r.status == 200) {
                        acknowledged.insert(id);
                        break;
                    }
                }
            }
        });
    }
    const auto acknowledged_count = [&] {
        std::lock_guard lock(mutex);
        return acknowledged.size();
    };
    const auto wait_until = [](const std::function<bool()>& done, std::chrono::seconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!done()) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            std::this_thread::sleep_for(20ms);  // polling, bounded by the deadline
        }
        return true;
    };
    bool paused = false;
    scope_exit resume{[&] {
        if (paused) servers.resume_mysql();
        for (auto& t : senders) {
            if (t.joinable()) t.join();
        }
    }};

    // Stall MariaDB (SIGSTOP) once the load is flowing, and keep it stalled until the gateway
    // has spooled a good number of acknowledged messages.
    REQUIRE(wait_until([&] { return acknowledged_count() >= 80; }, 60s));
    servers.pause_mysql();
    paused = true;
    const std::size_t acknowledged_at_stall = acknowledged_count();
    const bool spooled = wait_until(
        [&] { return occurrences(gw.proc.output(), "\"event\":\"webhook.spooled\"") >= 20; }, 30s);
    servers.resume_mysql();
    paused = false;
    REQUIRE(spooled);
    for (auto& t : senders) t.join();
    INFO("acknowledged " << acknowledged.size() << " of " << total << " (" << acknowledged_at_stall
                         << " before the stall)");
    CHECK(acknowledged.size() > acknowledged_at_stall);
    CHECK(acknowledged.size() == total);  // spooled while MariaDB was away: still answered

    // Every acknowledged message reaches MySQL (replayed from the spool), and every stored one is
    // handed on exactly once.
    const auto spool_dir = dir / "s-spool";
    const auto spool_drained = [&] {
        for (const auto& f : std::filesystem::directory_iterator(spool_dir)) {
            if (f.path().extension() == ".spool" && f.file_size() > 0) return false;
        }
        return true;
    };
    storage::mysql_session db(gateway::mysql_options_from(servers.config().mysql));
    std::map<std::uint64_t, int> rows_per_msg_id;
    std::size_t missing = acknowledged.size();
    double handed = 0;
    const bool settled = wait_until(
        [&] {
            auto rows = db.query(
                "SELECT m.wx_msg_id, COUNT(*) FROM inbound_messages m JOIN official_accounts a "
                "ON a.id = m.account_id WHERE a.appid = ? GROUP BY m.wx_msg_id",
                {appid});
            if (!rows) return false;  // still reconnecting
            rows_per_msg_id.clear();
            for (const auto& r : rows->rows) {
                rows_per_msg_id[std::stoull(*r[0])] = std::stoi(*r[1]);
            }
            missing = 0;
            for (auto id : acknowledged) missing += rows_per_msg_id.count(id) ? 0 : 1;
            handed = gw.stored_total() - handed_before;
            return missing == 0 && spool_drained() &&
                   handed == static_cast<double>(rows_per_msg_id.size());
        },
        30s);
    INFO("statuses: " << [&] {
        std::string out;
        for (const auto& [status, n] : statuses) {
            out += std::to_string(status) + "×" + std::to_string(n) + " ";
        }
        return out;
    }());
    INFO("stored " << rows_per_msg_id.size() << ", handed on " << handed
                   << ", acknowledged but missing " << missing);
    CHECK(settled);
    CHECK(missing == 0);
    CHECK(handed == static_cast<double>(rows_per_msg_id.size()));
    for (const auto& [id, n] : rows_per_msg_id) {
        if (n != 1) FAIL_CHECK("MsgId " << id << " stored " << n << " times");
    }
    CHECK(rows_per_msg_id.size() <= total);

    // The gateway stayed healthy: still running, ready, and storing new messages directly.
    CHECK_FALSE(gw.proc.wait(0ms).has_value());
    CHECK(wait_for_status(gw.port, "/readyz", 200, 10s).status == 200);
    const auto after = send(gw.port, appid, text_xml("oAfter", first_id + total, now), "after");
    CHECK(after.status == 200);
    CHECK(count_rows(servers.config(), appid,
                     " AND m.wx_msg_id = " + std::to_string(first_id + total)) == "1");
}

TEST_CASE("the gateway's workers send an outbox row and fetch an image, against the fake WeChat") {
    // Private servers: the workers take every account's rows in their database.
    private_services servers;
    const auto dir = servers.dir() / "workers";
    std::filesystem::create_directories(dir);
    const std::string appid = new_appid();
    provision(servers.config_path(), appid);
    fakes::fake_wechat fake;
    REQUIRE(fake.start().has_value());
    e2e_gateway gw(servers.config_path(), dir, "w",
                   {"SCRM_BACKGROUND_WORKERS=1", "SCRM_WECHAT_API_BASE_URL=" + fake.url()});
    REQUIRE(fake.api()
                .add_account({appid, "0123456789abcdef0123456789abcdef", token, aes_key,
                              original_id, fakes::encryption_mode::plain,
                              "http://127.0.0.1:" + std::to_string(gw.port) + "/wx/" + appid, {}})
                .has_value());
    storage::mysql_session db(gateway::mysql_options_from(servers.config().mysql));
    const auto wait_for = [&db](const std::string& sql, const std::vector<storage::sql_value>& p,
                                const std::string& want) {
        const auto deadline = std::chrono::steady_clock::now() + 30s;
        std::string got;
        while (std::chrono::steady_clock::now() < deadline) {
            auto r = db.query(sql, p);
            REQUIRE(r.has_value());
            got = r->rows.empty() || !r->rows[0][0] ? "(none)" : *r->rows[0][0];
            if (got == want) break;
            std::this_thread::sleep_for(100ms);
        }
        return got;
    };

    // The fan sends an image: stored, then fetched into the media directory.
    const std::string fan = fakes::make_openid(appid + "fan");
    const std::string jpeg = std::string("\xFF\xD8\xFF\xE0", 4) + std::string(3000, 'x');
    const auto media_id = fake.api().add_media(appid, "image", "image/jpeg", jpeg);
    const auto d = fake.deliver(appid, fakes::inbound::image(fan, media_id));
    REQUIRE(d.answered);
    CHECK(wait_for("SELECT d.state FROM inbound_media d JOIN official_accounts a "
                   "ON a.id = d.account_id WHERE a.appid = ?",
                   {appid}, "fetched") == "fetched");
    auto path = db.query("SELECT d.path FROM inbound_media d JOIN official_accounts a "
                         "ON a.id = d.account_id WHERE a.appid = ?",
                         {appid});
    REQUIRE(path.has_value());
    REQUIRE(path->rows.size() == 1);
    std::ifstream file(dir / "w-media" / *path->rows[0][0], std::ios::binary);
    const std::string got((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    CHECK(got == jpeg);

    // An agent's reply, enqueued by any instance (here: straight into the table), reaches the fan
    // through the customer-service API — the image opened the 48-hour window.
    const std::string body = R"({"touser":")" + fan +
                             R"(","msgtype":"text","text":{"content":"收到，已为您预约明天上午"}})";
    REQUIRE(db.execute("INSERT INTO outbox (account_id, openid, kind, api_path, body, origin) "
                       "SELECT id, ?, 'text', '/cgi-bin/message/custom/send', ?, 'agent:e2e' "
                       "FROM official_accounts WHERE appid = ?",
                       {fan, body, appid})
                .has_value());
    CHECK(wait_for("SELECT o.state FROM outbox o JOIN official_accounts a "
                   "ON a.id = o.account_id WHERE a.appid = ?",
                   {appid}, "sent") == "sent");
    const auto sent = fake.api().sent(appid);
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].openid == fan);
    CHECK(sent[0].body == body);

    // SIGTERM: the workers stop with the gateway.
    gw.proc.signal(SIGTERM);
    CHECK(gw.proc.wait(20s) == std::optional<int>(0));
}

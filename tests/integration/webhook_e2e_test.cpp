// The scrm-gateway executable end to end: two instances sharing Redis and MariaDB store a message
// retried concurrently against both exactly once (and hand it on once in total); kill -9 under
// load loses nothing that was acknowledged.
#include <catch2/catch.hpp>

#include <atomic>
#include <csignal>
#include <mutex>
#include <set>
#include <thread>

#include "child_process.hpp"
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

struct gateway_process {
    gateway_process(const std::filesystem::path& config, const std::filesystem::path& dir,
                    std::string name)
        : port(free_port()),
          proc({gateway_bin, "--config", config.string(), "--listen",
                "127.0.0.1:" + std::to_string(port)},
               dir / (name + ".log"),
               {master_env, "SCRM_SPOOL_DIR=" + (dir / (name + "-spool")).string()}) {
        REQUIRE(wait_for_status(port, "/readyz", 200).status == 200);
    }
    double stored_total() const {
        const auto body = http_call(port, "GET", "/metrics").body;
        const auto pos = body.find("\nscrm_messages_stored_total ");
        return pos == std::string::npos ? -1 : std::stod(body.substr(pos + 28));
    }
    std::uint16_t port;
    child_process proc;
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
    gateway_process a(config, dir, "a");
    gateway_process b(config, dir, "b");
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
    std::filesystem::remove_all(dir);
}

TEST_CASE("kill -9 under load loses no acknowledged message") {
    const auto dir = std::filesystem::temp_directory_path() / unique_name("scrm_kill");
    std::filesystem::create_directories(dir);
    const auto config = services_config_path();
    const std::string appid = new_appid();
    provision(config, appid);
    auto gw = std::make_unique<gateway_process>(config, dir, "k");
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
    gw = std::make_unique<gateway_process>(config, dir, "k");
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
    gateway_process gw(config, dir, "f");
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
        for (const auto& spec : specs) {
            const auto d = fake.deliver(appid, spec);
            CAPTURE(fakes::to_string(mode), d.type);
            CHECK(d.answered);
            CHECK(d.attempts.size() == 1);
            CHECK(d.reply.k == fakes::passive_reply::kind::none);
            CHECK_FALSE(d.fan_sees_failure());
        }
        CHECK(count_rows(services_config(), appid) == std::to_string(specs.size()));
    }
    std::filesystem::remove_all(dir);
}

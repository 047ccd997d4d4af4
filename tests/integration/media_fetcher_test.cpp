// Inbound media fetched from the fake WeChat into the media directory, with the shared MariaDB and
// Redis: files are written whole with their metadata; WeChat's "no such media" fails for good;
// -1 is retried with backoff; media past its 3 days expires unfetched; a claim left by a dead
// worker is taken again after the lease.
#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "scrm/fakes/fake_wechat.hpp"
#include "scrm/gateway/media_fetcher.hpp"
#include "scrm/gateway/services.hpp"
#include "scrm/storage/mysql.hpp"
#include "scrm/storage/redis.hpp"
#include "scrm/wechat/client.hpp"
#include "test_env.hpp"

namespace asio = boost::asio;
namespace fk = scrm::fakes;
namespace wx = scrm::wechat;
using namespace std::chrono_literals;
using scrm::test::run_sync;

namespace {

constexpr const char* secret = "app-secret-0123456789";

scrm::storage::mysql_options mysql_opts() {
    return scrm::gateway::mysql_options_from(scrm::test::services_config().mysql);
}

scrm::storage::redis_options redis_opts() {
    const auto& s = scrm::test::services_config().redis;
    scrm::storage::redis_options o;
    o.host = s.host;
    o.port = s.port;
    o.password = s.password;
    return o;
}

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

struct fixture {
    fixture() {
        fk::fake_wechat_options fo;
        fo.clock = std::make_shared<fk::fake_clock>(fk::sys_time(std::chrono::seconds(1'795'000'000)));
        fake = std::make_unique<fk::fake_wechat>(fo);
        REQUIRE(fake->start());
        fk::account a;
        a.appid = appid;
        a.secret = secret;
        a.token = "callbacktoken42";
        a.original_id = "gh_0123456789ab";
        REQUIRE(fake->api().add_account(a));

        const std::string clinic = scrm::test::unique_name("media clinic");
        REQUIRE(db.execute("INSERT INTO clinics (name) VALUES (?)", {clinic}).has_value());
        clinic_id = *db.query("SELECT id FROM clinics WHERE name = ?", {clinic})->rows[0][0];
        REQUIRE(db.execute("INSERT INTO official_accounts (clinic_id, appid, original_id, "
                           "token_sealed, aes_key_sealed, secret_sealed) "
                           "VALUES (?, ?, 'gh_0123456789ab', 'x', 'x', 'x')",
                           {clinic_id, appid})
                    .has_value());
        account_id = *db.query("SELECT id FROM official_accounts WHERE appid = ?", {appid})
                          ->rows[0][0];

        redis = scrm::storage::redis_client::create(io.get_executor(), redis_opts());
        redis->start();
        REQUIRE(run_sync(io, redis->wait_connected(5s)));
        wx::client_options co;
        co.endpoint.base_url = fake->url();
        co.endpoint.timeout = 2000ms;
        co.appid = appid;
        co.secret = secret;
        client = std::make_shared<wx::client>(redis, co);
        std::filesystem::create_directories(dir);
    }

    ~fixture() {
        fetcher.reset();
        pool.stop();
        (void)db.execute("DELETE d FROM inbound_media d WHERE d.account_id = ?", {account_id});
        (void)db.execute("DELETE FROM inbound_messages WHERE account_id = ?", {account_id});
        (void)db.execute("DELETE FROM official_accounts WHERE id = ?", {account_id});
        (void)db.execute("DELETE FROM clinics WHERE id = ?", {clinic_id});
        std::vector<std::string> keys{"scrm:wx:token:" + appid};
        (void)run_sync(io, redis->del(std::move(keys)));
        redis->stop();
        std::filesystem::remove_all(dir);
    }

    scrm::gateway::media_fetcher& make(scrm::gateway::media_fetch_options o = fast()) {
        o.dir = dir;
        o.accounts = {std::stoull(account_id)};  // other suites' media on the shared database
        auto c = client;
        wx::client_lookup lookup =
            [c](std::string) -> asio::awaitable<scrm::result<std::shared_ptr<wx::client>>> {
            co_return c;
        };
        fetcher = std::make_unique<scrm::gateway::media_fetcher>(io.get_executor(), pool, lookup,
                                                                 o);
        return *fetcher;
    }

    static scrm::gateway::media_fetch_options fast() {
        scrm::gateway::media_fetch_options o;
        o.backoff_base = 100ms;
        o.backoff_cap = 400ms;
        o.lease = 500ms;
        return o;
    }

    // A stored media message and its pending row, as the commit writes them.
    std::uint64_t message(const std::string& kind, const std::string& media_id,
                          const std::string& expires = "TIMESTAMPADD(DAY, 3, NOW(3))") {
        const std::string hash = scrm::test::unique_name("media-hash") + std::string(32, '#');
        auto ins = db.query(
            "INSERT INTO inbound_messages (account_id, identity_hash, openid, msg_type, "
            "create_time, body_xml, insert_batch) VALUES (?, ?, 'oMediaFan', ?, 0, '<xml/>', 1)",
            {account_id, hash.substr(0, 32), kind});
        REQUIRE(ins.has_value());
        const std::uint64_t id = ins->last_insert_id;
        REQUIRE(db.execute("INSERT INTO inbound_media (message_id, account_id, media_id, kind, "
                           "expires_at) VALUES (?, ?, ?, ?, " + expires + ")",
                           {id, account_id, media_id, kind})
                    .has_value());
        return id;
    }

    scrm::gateway::media_row row(std::uint64_t id) {
        auto r = run_sync(io, fetcher->get(id));
        REQUIRE(r.has_value());
        return *r;
    }

    std::size_t cycle() {
        auto n = run_sync(io, fetcher->run_once());
        REQUIRE(n.has_value());
        return *n;
    }

    std::size_t get_calls() { return fake->api().calls("media_get").size(); }

    std::string appid = scrm::test::unique_name("wxmedia");
    std::unique_ptr<fk::fake_wechat> fake;
    scrm::storage::mysql_session db{mysql_opts()};
    std::string clinic_id, account_id;
    asio::io_context io;
    scrm::storage::mysql_pool pool{mysql_opts()};
    std::shared_ptr<scrm::storage::redis_client> redis;
    std::shared_ptr<wx::client> client;
    std::filesystem::path dir =
        std::filesystem::temp_directory_path() / scrm::test::unique_name("scrm_media");
    std::unique_ptr<scrm::gateway::media_fetcher> fetcher;
};

}  // namespace

TEST_CASE("media: images and voice are fetched whole into the media directory", "[media]") {
    fixture f;
    auto& fetcher = f.make();
    std::string jpeg("\xFF\xD8\xFF\xE0", 4);
    jpeg += std::string("\0\r\n", 3) + std::string(100000, 'j');
    const std::string voice = "#!AMR\n" + std::string(5000, 'v');
    const auto image_id = f.fake->api().add_media(f.appid, "image", "image/jpeg", jpeg);
    const auto voice_id = f.fake->api().add_media(f.appid, "voice", "audio/amr", voice);
    const auto a = f.message("image", image_id);
    const auto b = f.message("voice", voice_id);

    CHECK(f.cycle() == 2);
    auto img = f.row(a);
    CHECK(img.state == "fetched");
    REQUIRE(img.path.has_value());
    CHECK(*img.path == f.appid + "/" + std::to_string(a) + ".jpg");
    CHECK(img.content_type == std::optional<std::string>("image/jpeg"));
    CHECK(img.size == std::optional<std::uint64_t>(jpeg.size()));
    CHECK(read_file(f.dir / *img.path) == jpeg);
    auto v = f.row(b);
    CHECK(v.state == "fetched");
    REQUIRE(v.path.has_value());
    CHECK(v.path->ends_with(".amr"));
    CHECK(read_file(f.dir / *v.path) == voice);
    CHECK_FALSE(std::filesystem::exists(f.dir / (*img.path + ".tmp")));

    CHECK(f.cycle() == 0);  // done: not fetched again
    CHECK(f.get_calls() == 2);
    CHECK(fetcher.stats().fetched == 2);
}

TEST_CASE("media: unknown media fails for good, -1 is retried with backoff", "[media]") {
    fixture f;
    f.make();
    const auto gone = f.message("image", "no-such-media-id");
    const auto image_id = f.fake->api().add_media(f.appid, "image", "image/png",
                                                  std::string("\x89PNG\r\n\x1a\n", 8) + "png");
    const auto busy = f.message("image", image_id);
    CHECK(f.cycle() == 2);
    auto g = f.row(gone);
    CHECK(g.state == "failed");
    CHECK(g.last_errcode == std::optional<int>(40007));
    CHECK(f.row(busy).state == "fetched");

    // A fresh one meets WeChat's -1: pending, retried after its backoff, then fetched.
    fk::fault fault;
    fault.api = "media_get";
    fault.action = fk::fault_action::error;
    fault.errcode = -1;
    fault.times = 1;
    f.fake->api().inject(fault);
    const auto again = f.message("image", image_id);
    CHECK(f.cycle() == 1);
    auto r = f.row(again);
    CHECK(r.state == "pending");
    CHECK(r.attempts == 1);
    CHECK(r.last_errcode == std::optional<int>(-1));
    CHECK(f.cycle() == 0);  // backing off
    std::this_thread::sleep_for(150ms);
    CHECK(f.cycle() == 1);
    CHECK(f.row(again).state == "fetched");
    CHECK(f.row(gone).state == "failed");  // never retried
}

TEST_CASE("media: past its 3 days it expires unfetched", "[media]") {
    fixture f;
    auto& fetcher = f.make();
    const auto image_id = f.fake->api().add_media(f.appid, "image", "image/jpeg", "jpeg");
    const auto old = f.message("image", image_id, "TIMESTAMPADD(SECOND, -1, NOW(3))");
    CHECK(f.cycle() == 0);
    CHECK(f.row(old).state == "expired");
    CHECK(f.get_calls() == 0);
    CHECK(fetcher.stats().expired == 1);
}

TEST_CASE("media: a claim left by a dead worker is taken again after the lease", "[media]") {
    fixture f;
    f.make();
    const auto image_id = f.fake->api().add_media(f.appid, "image", "image/jpeg", "jpeg bytes");
    const auto id = f.message("image", image_id);
    // A worker claimed it and died.
    REQUIRE(f.db.execute("UPDATE inbound_media SET state = 'fetching', claim_token = 42, "
                         "claimed_at = NOW(3), attempts = 1 WHERE message_id = ?",
                         {id})
                .has_value());
    CHECK(f.cycle() == 0);  // within its lease
    std::this_thread::sleep_for(600ms);
    CHECK(f.cycle() == 1);
    auto r = f.row(id);
    CHECK(r.state == "fetched");
    CHECK(r.attempts == 2);
    CHECK(read_file(f.dir / *r.path) == "jpeg bytes");
}

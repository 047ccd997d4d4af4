// scrm-admin account add|list against the real MariaDB: idempotent add/update, key rotation kept as
// "previous", secrets sealed at rest and never printed, bad input refused with nothing stored.
#include <catch2/catch.hpp>

#include "child_process.hpp"
#include "scrm/gateway/services.hpp"
#include "scrm/storage/mysql.hpp"
#include "test_env.hpp"

using namespace scrm;
using namespace scrm::test;
using namespace std::chrono_literals;

namespace {

const std::string admin_bin = SCRM_ADMIN_BIN;
const std::string master_key = "SCRM_MASTER_KEY=" + std::string(64, 'c');

struct run_result {
    int code;
    std::string output;
};

run_result admin(const std::vector<std::string>& args,
                 std::vector<std::string> env = {master_key}) {
    std::vector<std::string> argv{admin_bin, "--config", services_config_path().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto log = std::filesystem::temp_directory_path() / (unique_name("scrm_admin") + ".out");
    child_process p(argv, log, std::move(env));
    const auto code = p.wait(60s);
    REQUIRE(code.has_value());
    run_result r{*code, p.output()};
    std::filesystem::remove(log);
    return r;
}

storage::mysql_options db_options() {
    auto o = gateway::mysql_options_from(services_config().mysql);
    return o;
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// A unique, valid appid: "wx" + 16 alphanumerics.
std::string make_appid() {
    std::string tail = std::to_string(::getpid()) + std::to_string(std::rand());
    while (tail.size() < 16) tail += "0";
    return "wx" + tail.substr(0, 16);
}

}  // namespace

TEST_CASE("account add stores sealed secrets, is idempotent and keeps the previous AES key") {
    REQUIRE(admin({"migrate"}).code == 0);
    const std::string appid = make_appid();
    const std::string clinic = unique_name("诊所");
    const std::string token = "Tok3nValue";
    const std::string aes1 = std::string(42, 'A') + "1";
    const std::string aes2 = std::string(42, 'B') + "2";
    const std::string secret = "0123456789abcdef0123456789abcdef";
    const std::vector<std::string> base{"account", "add", "--clinic",      clinic,
                                        "--appid", appid, "--original-id", "gh_0123456789ab",
                                        "--token", token, "--secret",      secret};

    auto args = base;
    args.insert(args.end(), {"--aes-key", aes1});
    auto r = admin(args);
    CHECK(r.code == 0);
    CHECK(contains(r.output, "added account " + appid));

    r = admin(args);  // the same again: an update, still one row
    CHECK(r.code == 0);
    CHECK(contains(r.output, "updated account " + appid));

    storage::mysql_session db(db_options());
    auto rows = db.query(
        "SELECT token_sealed, aes_key_sealed, aes_key_previous_sealed, secret_sealed, "
        "safe_mode_only "
        "FROM official_accounts WHERE appid = ?",
        {appid});
    REQUIRE(rows.has_value());
    REQUIRE(rows->rows.size() == 1);
    const auto& row = rows->rows[0];
    for (std::size_t i = 0; i < 4; ++i) {
        if (!row[i]) continue;
        CHECK_FALSE(contains(*row[i], token));
        CHECK_FALSE(contains(*row[i], aes1));
        CHECK_FALSE(contains(*row[i], secret));
        CHECK(row[i]->rfind("v1.", 0) == 0);
    }
    CHECK_FALSE(row[2].has_value());  // no rotation yet
    CHECK(*row[4] == "0");

    // A new key: the old one becomes "previous"; --safe-mode-only is recorded.
    args = base;
    args.insert(args.end(), {"--aes-key", aes2, "--safe-mode-only"});
    r = admin(args);
    CHECK(r.code == 0);
    rows = db.query(
        "SELECT aes_key_previous_sealed IS NOT NULL, safe_mode_only FROM official_accounts "
        "WHERE appid = ?",
        {appid});
    REQUIRE(rows.has_value());
    CHECK(*rows->rows[0][0] == "1");
    CHECK(*rows->rows[0][1] == "1");

    r = admin({"account", "list"});
    CHECK(r.code == 0);
    CHECK(contains(r.output, appid + "\tgh_0123456789ab\t" + clinic + "\tyes\tyes"));
    CHECK_FALSE(contains(r.output, secret));
    CHECK_FALSE(contains(r.output, token));
    CHECK_FALSE(contains(r.output, aes2));

    // The same appid under another clinic is refused, not moved.
    args = base;
    args[3] = unique_name("other clinic");
    args.insert(args.end(), {"--aes-key", aes2});
    r = admin(args);
    CHECK(r.code == 1);
    CHECK(contains(r.output, "belongs to another clinic"));
}

TEST_CASE("account add refuses bad values, naming each field, and stores nothing") {
    struct row {
        std::string name;
        std::string flag;
        std::string value;
        std::string expected;
    };
    auto [name, flag, value, expected] = GENERATE(values<row>({
        {"appid prefix", "--appid", "xx0123456789abcdef", "--appid: must be \"wx\""},
        {"appid length", "--appid", "wx0123", "--appid: must be \"wx\""},
        {"original id", "--original-id", "gh_123", "--original-id: must be \"gh_\""},
        {"token short", "--token", "ab", "--token: must be 3-32 letters or digits"},
        {"token symbols", "--token", "abc-def", "--token: must be 3-32 letters or digits"},
        {"aes key length", "--aes-key", std::string(42, 'a'), "--aes-key: must be 43"},
        {"aes key symbols", "--aes-key", std::string(42, 'a') + "+", "--aes-key: must be 43"},
        {"secret", "--secret", "short", "--secret: must be 16-64"},
        {"clinic empty", "--clinic", "", "--clinic: must be 1-128"},
    }));
    CAPTURE(name);
    const std::string appid = make_appid();
    std::vector<std::string> args{"account",       "add",
                                  "--clinic",      unique_name("c"),
                                  "--appid",       appid,
                                  "--original-id", "gh_0123456789ab",
                                  "--token",       "token1",
                                  "--aes-key",     std::string(43, 'k'),
                                  "--secret",      "0123456789abcdef0123456789abcdef"};
    for (std::size_t i = 2; i < args.size(); i += 2) {
        if (args[i] == flag) args[i + 1] = value;
    }
    const auto r = admin(args);
    CHECK(r.code == 2);
    CHECK(contains(r.output, expected));
    CHECK_FALSE(contains(r.output, "0123456789abcdef0123456789abcdef"));  // secrets not echoed
    storage::mysql_session db(db_options());
    auto rows = db.query("SELECT COUNT(*) FROM official_accounts WHERE appid = ?", {appid});
    REQUIRE(rows.has_value());
    CHECK(*rows->rows[0][0] == "0");
}

TEST_CASE("account add without a master key says so and stores nothing") {
    const std::string appid = make_appid();
    const auto r = admin({"account", "add", "--clinic", unique_name("c"), "--appid", appid,
                          "--original-id", "gh_0123456789ab", "--token", "token1", "--aes-key",
                          std::string(43, 'k'), "--secret", "0123456789abcdef0123456789abcdef"},
                         {});
    CHECK(r.code == 1);
    CHECK(contains(r.output, "SCRM_MASTER_KEY is not set"));
    storage::mysql_session db(db_options());
    auto rows = db.query("SELECT COUNT(*) FROM official_accounts WHERE appid = ?", {appid});
    REQUIRE(rows.has_value());
    CHECK(*rows->rows[0][0] == "0");
}

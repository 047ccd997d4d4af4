// scrm-admin clinic, store, agent, fan set-owner and routing against the real MariaDB, running the
// real binary: each success checked in MySQL, idempotent re-runs, every bad value refused with its
// message (exit 2) and nothing stored, passwords stored hashed and never printed.
#include <catch2/catch.hpp>

#include "child_process.hpp"
#include "scrm/gateway/password.hpp"
#include "scrm/gateway/services.hpp"
#include "scrm/storage/mysql.hpp"
#include "test_env.hpp"

using namespace scrm;
using namespace scrm::test;
using namespace std::chrono_literals;

namespace {

const std::string admin_bin = SCRM_ADMIN_BIN;

struct run_result {
    int code;
    std::string output;
};

run_result run(std::vector<std::string> argv, std::vector<std::string> env) {
    const auto log = std::filesystem::temp_directory_path() / (unique_name("scrm_admin") + ".out");
    child_process p(std::move(argv), log, std::move(env));
    const auto code = p.wait(60s);
    REQUIRE(code.has_value());
    run_result r{*code, p.output()};
    std::filesystem::remove(log);
    return r;
}

run_result admin(const std::vector<std::string>& args, std::vector<std::string> env = {}) {
    std::vector<std::string> argv{admin_bin, "--config", services_config_path().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(std::move(argv), std::move(env));
}

storage::mysql_session& db() {
    static storage::mysql_session session(gateway::mysql_options_from(services_config().mysql));
    return session;
}

std::vector<std::vector<std::optional<std::string>>> rows(
    const std::string& sql, const std::vector<storage::sql_value>& p) {
    auto r = db().query(sql, p);
    REQUIRE(r.has_value());
    return r->rows;
}

std::string scalar(const std::string& sql, const std::vector<storage::sql_value>& p) {
    const auto r = rows(sql, p);
    REQUIRE(r.size() == 1);
    REQUIRE(r[0][0].has_value());
    return *r[0][0];
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// Every test case runs in its own process (catch_discover_tests): migrate once per process
// (concurrent runs are serialised by the migration lock).
void migrated() {
    static const int code = admin({"migrate"}).code;
    REQUIRE(code == 0);
}

// A clinic made for one test, with everything hanging off it removed at the end.
struct test_clinic {
    std::string name;
    explicit test_clinic(const std::string& prefix) : name(unique_name(prefix)) { migrated(); }
    // With this exact name: a table test re-enters its body once per row, and the rows (made on
    // the first entry) name the clinic, so it must be the same on every entry.
    struct exact_name {};
    test_clinic(const std::string& exact, exact_name) : name(exact) { migrated(); }
    ~test_clinic() {
        const std::string id = "(SELECT id FROM clinics WHERE name = ?)";
        const std::vector<std::string> deletes = {
            "DELETE FROM fans WHERE account_id IN (SELECT id FROM official_accounts WHERE "
            "clinic_id = " +
                id + ")",
            "DELETE FROM clinic_routing WHERE clinic_id = " + id,
            "DELETE FROM agents WHERE clinic_id = " + id,
            "DELETE FROM stores WHERE clinic_id = " + id,
            "DELETE FROM official_accounts WHERE clinic_id = " + id,
            "DELETE FROM clinics WHERE name = ?"};
        for (const auto& sql : deletes) (void)db().execute(sql, {name});
    }
    test_clinic(const test_clinic&) = delete;
    test_clinic& operator=(const test_clinic&) = delete;
    std::string id() const { return scalar("SELECT id FROM clinics WHERE name = ?", {name}); }
};

}  // namespace

TEST_CASE("clinic add is idempotent and clinic list shows the clinic") {
    test_clinic c("诊所");
    auto r = admin({"clinic", "add", "--name", c.name});
    CHECK(r.code == 0);
    CHECK(contains(r.output, "added clinic \"" + c.name + "\""));
    CHECK(scalar("SELECT COUNT(*) FROM clinics WHERE name = ?", {c.name}) == "1");

    r = admin({"clinic", "add", "--name", c.name});
    CHECK(r.code == 0);
    CHECK(contains(r.output, "clinic \"" + c.name + "\" already exists (id " + c.id() + ")"));
    CHECK(scalar("SELECT COUNT(*) FROM clinics WHERE name = ?", {c.name}) == "1");

    r = admin({"clinic", "list"});
    CHECK(r.code == 0);
    CHECK(contains(r.output, c.id() + "\t" + c.name + "\t0\t0\t0\n"));
}

TEST_CASE("clinic and store add refuse bad names and store nothing") {
    struct row {
        std::string name;
        std::vector<std::string> args;
        std::string expected;
    };
    migrated();
    const std::string fresh = unique_name("never stored");
    auto [name, args, expected] = GENERATE_COPY(values<row>({
        {"clinic name empty",
         {"clinic", "add", "--name", ""},
         "scrm-admin clinic add: --name: must be 1-128 characters of UTF-8 text, without control "
         "characters or leading/trailing spaces\n"},
        {"clinic name too long",
         {"clinic", "add", "--name", std::string(129, 'x')},
         "scrm-admin clinic add: --name: must be 1-128"},
        {"clinic name control",
         {"clinic", "add", "--name", fresh + "\t"},
         "scrm-admin clinic add: --name: must be 1-128"},
        {"clinic name trailing space",
         {"clinic", "add", "--name", fresh + " "},
         "scrm-admin clinic add: --name: must be 1-128"},
        {"clinic name bad utf8",
         {"clinic", "add", "--name", fresh + "\xC3"},
         "scrm-admin clinic add: --name: must be 1-128"},
        {"clinic without name", {"clinic", "add"}, "scrm-admin clinic add: --name is required\n"},
        {"clinic name twice",
         {"clinic", "add", "--name", fresh, "--name", fresh},
         "scrm-admin clinic add: --name given twice\n"},
        {"store of unknown clinic",
         {"store", "add", "--clinic", fresh, "--name", "s"},
         "scrm-admin store add: --clinic: no clinic named \"" + fresh +
             "\" (add it with: scrm-admin clinic add --name \"" + fresh + "\")\n"},
        {"unknown option",
         {"clinic", "add", "--name", fresh, "--color", "red"},
         "scrm-admin clinic add: unexpected argument --color\n"},
    }));
    CAPTURE(name);
    const auto r = admin(args);
    CHECK(r.code == 2);
    CHECK(contains(r.output, expected));
    CHECK(scalar("SELECT COUNT(*) FROM clinics WHERE name LIKE ?", {fresh + "%"}) == "0");
}

TEST_CASE("store add is idempotent per clinic and store list shows the stores") {
    test_clinic c("clinic_s");
    test_clinic other("clinic_o");
    REQUIRE(admin({"clinic", "add", "--name", c.name}).code == 0);
    REQUIRE(admin({"clinic", "add", "--name", other.name}).code == 0);

    auto r = admin({"store", "add", "--clinic", c.name, "--name", "东门店"});
    CHECK(r.code == 0);
    CHECK(contains(r.output, "added store \"东门店\" to clinic \"" + c.name + "\""));
    r = admin({"store", "add", "--clinic", c.name, "--name", "东门店"});
    CHECK(r.code == 0);
    CHECK(contains(r.output, "store \"东门店\" of clinic \"" + c.name + "\" already exists"));
    // The same name in another clinic is another store.
    r = admin({"store", "add", "--clinic", other.name, "--name", "东门店"});
    CHECK(r.code == 0);
    CHECK(contains(r.output, "added store"));
    CHECK(scalar("SELECT COUNT(*) FROM stores WHERE clinic_id = ?", {c.id()}) == "1");
    CHECK(scalar("SELECT COUNT(*) FROM stores WHERE clinic_id = ?", {other.id()}) == "1");

    r = admin({"store", "list", "--clinic", c.name});
    CHECK(r.code == 0);
    const std::string store_id =
        scalar("SELECT id FROM stores WHERE clinic_id = ? AND name = ?", {c.id(), "东门店"});
    CHECK(contains(r.output, store_id + "\t东门店\t0\n"));

    r = admin({"store", "add", "--clinic", c.name, "--name", ""});
    CHECK(r.code == 2);
    CHECK(contains(r.output, "scrm-admin store add: --name: must be 1-128"));
    CHECK(scalar("SELECT COUNT(*) FROM stores WHERE clinic_id = ?", {c.id()}) == "1");
}

// Integration tests of the migration runner: each test migrates a fresh database scrm_test_* on
// the shared MariaDB and drops it afterwards. The statement splitter is tested on its own.
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "scrm/storage/migrations.hpp"
#include "scrm/storage/mysql.hpp"
#include "test_env.hpp"

namespace asio = boost::asio;
using scrm::errc;
using scrm::storage::migrate;
using scrm::storage::migration_report;
using scrm::storage::mysql_options;
using scrm::storage::mysql_pool;
using scrm::storage::mysql_session;
using scrm::storage::split_sql_statements;

namespace {

mysql_options shared_options() {
    const auto& m = scrm::test::services_config().mysql;
    mysql_options o;
    o.host = m.host;
    o.port = m.port;
    o.user = m.user;
    o.password = m.password;
    o.database = m.database;
    o.workers = 1;
    o.connect_timeout = m.connect_timeout;
    o.read_timeout = m.read_timeout;
    o.write_timeout = m.write_timeout;
    return o;
}

// A fresh database and a folder of migration files, both removed at the end of the test.
struct fixture {
    fixture()
        : database(scrm::test::unique_name("scrm_test_mig")),
          dir(std::filesystem::temp_directory_path() / database),
          admin(shared_options()) {
        if (!admin.execute("CREATE DATABASE `" + database +
                           "` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")) {
            throw std::runtime_error("cannot create database: " + admin.last_error().message);
        }
        std::filesystem::create_directories(dir);
        opts = shared_options();
        opts.database = database;
    }
    ~fixture() {
        (void)admin.execute("DROP DATABASE IF EXISTS `" + database + "`");
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }

    void write(const std::string& name, const std::string& text) const {
        std::ofstream(dir / name, std::ios::binary) << text;
    }

    std::vector<std::string> tables() {
        auto r = admin.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
            "ORDER BY table_name",
            {database});
        std::vector<std::string> out;
        if (r) {
            for (const auto& row : r->rows) out.push_back(row[0].value_or(""));
        }
        return out;
    }

    std::string database;
    std::filesystem::path dir;
    mysql_session admin;
    mysql_options opts;
};

using names = std::vector<std::string>;

}  // namespace

TEST_CASE("SQL files are split into statements outside quotes and comments", "[migrations]") {
    struct row {
        const char* name;
        std::string input;
        names expected;
    };
    auto r = GENERATE(values<row>({
        {"one statement, no semicolon", "CREATE TABLE a (x INT)", {"CREATE TABLE a (x INT)"}},
        {"two statements",
         "CREATE TABLE a (x INT);\nCREATE TABLE b (y INT);\n",
         {"CREATE TABLE a (x INT)", "CREATE TABLE b (y INT)"}},
        {"semicolons in strings and identifiers",
         "INSERT INTO t VALUES ('a;b', \"c;d\", 'it''s; ok', 'back\\'slash;');\nSELECT `we;ird`;",
         {"INSERT INTO t VALUES ('a;b', \"c;d\", 'it''s; ok', 'back\\'slash;')",
          "SELECT `we;ird`"}},
        {"comments only are dropped",
         "-- a comment; with a semicolon\n# another;\n/* block; */\n",
         {}},
        {"comments stay inside a statement",
         "-- header\nCREATE TABLE a (\n  x INT -- the x; really\n);\n/* trailing; */",
         {"-- header\nCREATE TABLE a (\n  x INT -- the x; really\n)"}},
        {"empty statements are dropped", ";;\n ; SELECT 1;;", {"SELECT 1"}},
        {"executable comments are code",
         "/*!40101 SET NAMES utf8mb4 */;",
         {"/*!40101 SET NAMES utf8mb4 */"}},
        {"a double dash without a space is not a comment", "SELECT 1--1;", {"SELECT 1--1"}},
    }));
    CAPTURE(r.name);
    CHECK(split_sql_statements(r.input) == r.expected);
}

TEST_CASE("Migration checksums ignore CRLF line endings and see any other change", "[migrations]") {
    using scrm::storage::migration_checksum;
    CHECK(migration_checksum("a;\nb;\n") == migration_checksum("a;\r\nb;\r\n"));
    CHECK(migration_checksum("a;\nb;\n") != migration_checksum("a;\nc;\n"));
    CHECK(migration_checksum("").size() == 16);
}

TEST_CASE("Migrations apply in order, record themselves, and re-running is a no-op",
          "[migrations]") {
    fixture f;
    f.write("002_patients.sql",
            "CREATE TABLE patients (id BIGINT UNSIGNED NOT NULL PRIMARY KEY, "
            "clinic_id BIGINT UNSIGNED NOT NULL, name VARCHAR(64) NOT NULL) "
            "DEFAULT CHARSET=utf8mb4;\n"
            "CREATE INDEX patients_clinic ON patients (clinic_id);\n");
    f.write("001_clinics.sql",
            "-- the first one\nCREATE TABLE clinics (id BIGINT UNSIGNED NOT NULL PRIMARY KEY, "
            "name VARCHAR(128) NOT NULL) DEFAULT CHARSET=utf8mb4;\n");
    f.write("README.md", "not a migration");

    auto first = migrate(f.opts, f.dir);
    INFO(first.message);
    REQUIRE(first.ok());
    CHECK(first.applied == names{"001_clinics.sql", "002_patients.sql"});
    CHECK(first.unchanged.empty());
    CHECK(f.tables() == names{"clinics", "patients", "schema_migrations"});

    auto recorded = f.admin.query("SELECT version, name, checksum, applied_at IS NOT NULL FROM `" +
                                  f.database + "`.schema_migrations ORDER BY version");
    REQUIRE(recorded);
    REQUIRE(recorded->rows.size() == 2);
    CHECK(recorded->rows[0][0] == "1");
    CHECK(recorded->rows[0][1] == "001_clinics.sql");
    CHECK(recorded->rows[0][2].value_or("").size() == 16);
    CHECK(recorded->rows[1][3] == "1");

    auto again = migrate(f.opts, f.dir);
    INFO(again.message);
    REQUIRE(again.ok());
    CHECK(again.applied.empty());
    CHECK(again.unchanged == names{"001_clinics.sql", "002_patients.sql"});

    f.write("010_clinic_phone.sql", "ALTER TABLE clinics ADD COLUMN phone VARCHAR(32) NULL;");
    auto third = migrate(f.opts, f.dir);
    INFO(third.message);
    REQUIRE(third.ok());
    CHECK(third.applied == names{"010_clinic_phone.sql"});
    CHECK(third.unchanged.size() == 2);
}

TEST_CASE("Migrations refuse a changed or missing applied file", "[migrations]") {
    fixture f;
    f.write("001_a.sql", "CREATE TABLE a (x INT);");
    REQUIRE(migrate(f.opts, f.dir).ok());

    SECTION("changed") {
        f.write("001_a.sql", "CREATE TABLE a (x INT, y INT);");
        f.write("002_b.sql", "CREATE TABLE b (x INT);");
        auto r = migrate(f.opts, f.dir);
        CHECK(r.error == errc::conflict);
        CHECK(r.message.find("001_a.sql was changed") != std::string::npos);
        CHECK(r.applied.empty());  // nothing applied after a failed validation
        CHECK(f.tables() == names{"a", "schema_migrations"});
    }
    SECTION("missing") {
        std::filesystem::remove(f.dir / "001_a.sql");
        auto r = migrate(f.opts, f.dir);
        CHECK(r.error == errc::conflict);
        CHECK(r.message.find("001_a.sql") != std::string::npos);
    }
}

TEST_CASE("Migration file names and versions are checked before anything runs", "[migrations]") {
    fixture f;
    SECTION("bad name") {
        f.write("clinics.sql", "CREATE TABLE a (x INT);");
        auto r = migrate(f.opts, f.dir);
        CHECK(r.error == errc::bad_input);
        CHECK(r.message.find("clinics.sql") != std::string::npos);
    }
    SECTION("duplicate version") {
        f.write("001_a.sql", "CREATE TABLE a (x INT);");
        f.write("1_b.sql", "CREATE TABLE b (x INT);");
        auto r = migrate(f.opts, f.dir);
        CHECK(r.error == errc::bad_input);
        CHECK(r.message.find("same version") != std::string::npos);
    }
    SECTION("missing folder") {
        auto r = migrate(f.opts, f.dir / "nope");
        CHECK(r.error == errc::bad_input);
    }
    CHECK(f.tables().empty());
}

TEST_CASE("A failing migration stops the run, earlier ones stay recorded, a fix applies it",
          "[migrations]") {
    fixture f;
    f.write("001_a.sql", "CREATE TABLE a (x INT);");
    f.write("002_b.sql", "CREATE TABLE b (x INT);\nCREATE TABLE b (x INT);");  // second fails
    f.write("003_c.sql", "CREATE TABLE c (x INT);");

    auto r = migrate(f.opts, f.dir);
    CHECK(r.error == errc::server_error);
    CHECK(r.applied == names{"001_a.sql"});
    CHECK(r.message.find("002_b.sql: statement 2 of 2") != std::string::npos);
    CHECK(r.message.find("1050") != std::string::npos);  // table exists
    CHECK(f.tables() == names{"a", "b", "schema_migrations"});

    f.write("002_b.sql", "CREATE TABLE IF NOT EXISTS b (x INT);");
    auto fixed = migrate(f.opts, f.dir);
    INFO(fixed.message);
    REQUIRE(fixed.ok());
    CHECK(fixed.applied == names{"002_b.sql", "003_c.sql"});
    CHECK(fixed.unchanged == names{"001_a.sql"});
}

TEST_CASE("The project's sql folder migrates a fresh database, also through the pool",
          "[migrations]") {
    fixture f;
    const auto sql_dir = scrm::test::source_dir() / "sql";

    asio::io_context io;
    mysql_pool pool(f.opts);
    auto first = scrm::test::run_sync(io, migrate(pool, sql_dir));
    INFO(first.message);
    REQUIRE(first.ok());
    CHECK_FALSE(first.applied.empty());
    CHECK(first.applied.front() == "001_clinics.sql");

    auto ins = scrm::test::run_sync(io, pool.query("INSERT INTO clinics (name) VALUES (?)",
                                                   {std::string("口腔诊所 🦷")}));
    REQUIRE(ins);
    CHECK(ins->last_insert_id == 1);

    auto again = migrate(f.opts, sql_dir);
    INFO(again.message);
    REQUIRE(again.ok());
    CHECK(again.applied.empty());
    CHECK(again.unchanged.size() == first.applied.size());
}

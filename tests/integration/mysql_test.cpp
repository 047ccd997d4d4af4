// Integration tests of the MySQL layer against real MariaDB: the shared server for round trips,
// errors, transactions and admission; a private server for stalls and restarts.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "scrm/storage/mysql.hpp"
#include "test_env.hpp"

namespace asio = boost::asio;
using namespace std::chrono_literals;
using scrm::errc;
using scrm::result;
using scrm::storage::mysql_options;
using scrm::storage::mysql_pool;
using scrm::storage::mysql_session;
using scrm::storage::sql_error;
using scrm::storage::sql_rows;
using scrm::storage::sql_value;

namespace {

using clock_type = std::chrono::steady_clock;

mysql_options options_from(const scrm::gateway::mysql_settings& m) {
    mysql_options o;
    o.host = m.host;
    o.port = m.port;
    o.user = m.user;
    o.password = m.password;
    o.database = m.database;
    o.workers = m.pool_size;
    o.queue_limit = m.queue_limit;
    o.connect_timeout = m.connect_timeout;
    o.read_timeout = m.read_timeout;
    o.write_timeout = m.write_timeout;
    return o;
}

mysql_options shared_options(unsigned workers) {
    auto o = options_from(scrm::test::services_config().mysql);
    o.workers = workers;
    return o;
}

// A table with a unique name in the shared database, dropped at the end of the test.
struct scratch_table {
    explicit scratch_table(const std::string& columns)
        : name(scrm::test::unique_name("t_mysql")), admin(shared_options(1)) {
        auto r = admin.execute("CREATE TABLE `" + name + "` (" + columns +
                               ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 "
                               "COLLATE=utf8mb4_unicode_ci");
        if (!r) throw std::runtime_error("cannot create test table: " + admin.last_error().message);
    }
    ~scratch_table() { (void)admin.execute("DROP TABLE IF EXISTS `" + name + "`"); }

    std::string name;
    mysql_session admin;
};

std::string hex_upper(const std::string& bytes) {
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : bytes) {
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 0xf]);
    }
    return out;
}

std::size_t code_points(const std::string& utf8) {
    std::size_t n = 0;
    for (unsigned char c : utf8) n += (c & 0xC0) != 0x80;
    return n;
}

// Runs the io_context until `done()` or the deadline; returns done().
template <class Pred>
bool poll_until(asio::io_context& io, Pred done, clock_type::duration limit) {
    const auto deadline = clock_type::now() + limit;
    io.restart();
    while (!done() && clock_type::now() < deadline) io.run_one_for(10ms);
    return done();
}

// Retries `query` on the pool until it succeeds or the deadline passes.
result<sql_rows> query_until_ok(asio::io_context& io, mysql_pool& pool, const std::string& sql,
                                clock_type::duration limit) {
    const auto deadline = clock_type::now() + limit;
    for (;;) {
        auto r = scrm::test::run_sync(io, pool.query(sql));
        if (r || clock_type::now() >= deadline) return r;
        io.restart();
        io.run_for(50ms);  // nothing queued: this only paces the polling
    }
}

// SIGSTOP takes effect asynchronously: waits until every thread of `pid` is stopped.
bool wait_stopped(int pid, clock_type::duration limit) {
    const auto deadline = clock_type::now() + limit;
    const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
    for (;;) {
        bool all = true;
        std::error_code ec;
        for (const auto& t : std::filesystem::directory_iterator(tasks, ec)) {
            std::ifstream in(t.path() / "stat");
            std::string stat((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
            const auto close = stat.rfind(')');  // "pid (comm) S ..."
            if (close == std::string::npos || close + 2 >= stat.size() ||
                (stat[close + 2] != 'T' && stat[close + 2] != 't')) {
                all = false;
                break;
            }
        }
        if (!ec && all) return true;
        if (clock_type::now() >= deadline) return false;
        std::this_thread::sleep_for(5ms);  // polling the kernel's view, not waiting for the test
    }
}

}  // namespace

TEST_CASE("MySQL round-trips Chinese text and emoji byte-exact", "[mysql]") {
    scratch_table table(
        "id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, "
        "body VARCHAR(255) NOT NULL");
    asio::io_context io;
    mysql_pool pool(shared_options(2));

    const std::vector<std::string> texts = {
        "患者张三：牙疼三天了，想预约周六上午",
        "emoji 😀🎉🦷 and a family 👨‍👩‍👧‍👦",
        "𠮷野家 (a CJK extension B character, four bytes)",
        "quotes ' \" \\ ; -- and a semicolon",
        "",
    };
    for (const auto& text : texts) {
        CAPTURE(text);
        auto ins = scrm::test::run_sync(
            io, pool.query("INSERT INTO `" + table.name + "` (body) VALUES (?)", {text}));
        REQUIRE(ins);
        CHECK(ins->affected == 1);
        REQUIRE(ins->last_insert_id > 0);

        auto sel = scrm::test::run_sync(
            io, pool.query("SELECT body, HEX(body) AS hex, CHAR_LENGTH(body) AS chars FROM `" +
                               table.name + "` WHERE id = ?",
                           {ins->last_insert_id}));
        REQUIRE(sel);
        REQUIRE(sel->rows.size() == 1);
        CHECK(sel->rows[0][0] == text);
        // The server holds exactly our bytes (no double encoding) and counts code points.
        CHECK(sel->rows[0][1] == hex_upper(text));
        CHECK(sel->rows[0][2] == std::to_string(code_points(text)));

        auto echo = scrm::test::run_sync(io, pool.query("SELECT ? AS echo", {text}));
        REQUIRE(echo);
        CHECK(echo->rows.at(0).at(0) == text);
    }

    auto cs = scrm::test::run_sync(
        io, pool.query("SELECT @@character_set_connection, @@collation_connection, "
                       "@@character_set_results, @@time_zone"));
    REQUIRE(cs);
    CHECK(cs->rows.at(0).at(0) == "utf8mb4");
    CHECK(cs->rows.at(0).at(1) == "utf8mb4_unicode_ci");
    CHECK(cs->rows.at(0).at(2) == "utf8mb4");
    CHECK(cs->rows.at(0).at(3) == "+00:00");
}

TEST_CASE("MySQL parameters and results: NULL, integers, doubles, affected rows", "[mysql]") {
    asio::io_context io;
    mysql_pool pool(shared_options(1));

    auto r = scrm::test::run_sync(
        io, pool.query("SELECT ? AS a, ? AS b, ? AS c, ? AS d, ? AS e, ? AS f",
                       {std::monostate{}, std::int64_t{-42},
                        std::numeric_limits<std::uint64_t>::max(), 1.5, std::string("x"), 1e-10}));
    REQUIRE(r);
    CHECK(r->columns == std::vector<std::string>{"a", "b", "c", "d", "e", "f"});
    REQUIRE(r->rows.size() == 1);
    CHECK_FALSE(r->rows[0][0].has_value());
    CHECK(r->rows[0][1] == "-42");
    CHECK(r->rows[0][2] == "18446744073709551615");
    CHECK(r->rows[0][3].value_or("?") == "1.5");
    CHECK(r->rows[0][4] == "x");
    CHECK(r->rows[0][5].value_or("?") == "1e-10");  // no digits lost
    CHECK(r->column("c") == 2u);
    CHECK_FALSE(r->column("z").has_value());

    scratch_table table(
        "id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, "
        "n INT NOT NULL, at TIMESTAMP(3) NULL");
    for (std::int64_t n : {1, 2, 3}) {
        auto ins = scrm::test::run_sync(
            io, pool.execute("INSERT INTO `" + table.name + "` (n, at) VALUES (?, ?)",
                             {n, std::string("2024-05-06 07:08:09.123")}));
        REQUIRE(ins);
        CHECK(*ins == 1);
    }
    auto upd = scrm::test::run_sync(
        io,
        pool.execute("UPDATE `" + table.name + "` SET n = n + 10 WHERE n >= ?", {std::int64_t{2}}));
    REQUIRE(upd);
    CHECK(*upd == 2);

    auto rows =
        scrm::test::run_sync(io, pool.query("SELECT n, at FROM `" + table.name + "` ORDER BY id"));
    REQUIRE(rows);
    REQUIRE(rows->rows.size() == 3);
    CHECK(rows->rows[0][0] == "1");
    CHECK(rows->rows[2][0] == "13");
    // Stored as given: the session time zone is UTC, so no conversion happens.
    // Fractional seconds come back with six digits (the driver's format).
    CHECK(rows->rows[0][1].value_or("?") == "2024-05-06 07:08:09.123000");
    auto whole = scrm::test::run_sync(
        io,
        pool.query("SELECT CAST('2024-05-06 07:08:09' AS DATETIME), CAST('2024-05-06' AS DATE)"));
    REQUIRE(whole);
    CHECK(whole->rows.at(0).at(0).value_or("?") == "2024-05-06 07:08:09");
    CHECK(whole->rows.at(0).at(1).value_or("?") == "2024-05-06");
    auto zero_fraction = scrm::test::run_sync(
        io, pool.query("SELECT CAST('2024-05-06 07:08:09.000' AS DATETIME(3))"));
    REQUIRE(zero_fraction);
    CHECK(zero_fraction->rows.at(0).at(0).value_or("?") == "2024-05-06 07:08:09");
}

TEST_CASE("MySQL errors are values: duplicate key is a conflict, the server's code is kept",
          "[mysql]") {
    scratch_table table("id BIGINT UNSIGNED NOT NULL PRIMARY KEY, v VARCHAR(16)");
    asio::io_context io;
    mysql_pool pool(shared_options(1));

    struct outcome {
        boost::system::error_code ec;
        sql_error detail;
    };
    auto attempt = [&](std::string sql, std::vector<sql_value> params) {
        auto fn = [&sql, &params](mysql_session& s) -> result<outcome> {
            auto r = s.query(sql, params);
            if (r) return outcome{};
            return outcome{r.error(), s.last_error()};
        };
        return scrm::test::run_sync(io, pool.run(std::move(fn))).value();
    };

    const std::string insert = "INSERT INTO `" + table.name + "` (id, v) VALUES (?, ?)";
    CHECK_FALSE(attempt(insert, {std::int64_t{1}, std::string("a")}).ec);

    auto dup = attempt(insert, {std::int64_t{1}, std::string("b")});
    CHECK(dup.ec == errc::conflict);
    CHECK(dup.detail.code == 1062);
    CHECK(dup.detail.sqlstate == "23000");

    auto syntax = attempt("SELEC 1", {});
    CHECK(syntax.ec == errc::server_error);
    CHECK(syntax.detail.code == 1064);

    auto missing = attempt("SELECT * FROM no_such_table_here", {});
    CHECK(missing.ec == errc::server_error);
    CHECK(missing.detail.code == 1146);

    auto too_few = attempt(insert, {std::int64_t{2}});
    CHECK(too_few.ec == errc::bad_input);

    auto too_long = attempt(insert, {std::int64_t{3}, std::string(40, 'x')});  // strict mode
    CHECK(too_long.ec == errc::server_error);
    CHECK(too_long.detail.code == 1406);

    // The session is still usable after each error.
    auto ok = scrm::test::run_sync(io, pool.query("SELECT COUNT(*) FROM `" + table.name + "`"));
    REQUIRE(ok);
    CHECK(ok->rows.at(0).at(0) == "1");
}

TEST_CASE("MySQL transactions commit, roll back, and are rolled back when left open", "[mysql]") {
    scratch_table table("id BIGINT UNSIGNED NOT NULL PRIMARY KEY");
    asio::io_context io;
    mysql_pool pool(shared_options(1));
    const std::string insert = "INSERT INTO `" + table.name + "` (id) VALUES (?)";
    const std::string count = "SELECT COUNT(*) FROM `" + table.name + "`";

    auto rolled_back = [&](mysql_session& s) -> result<void> {
        if (auto r = s.begin(); !r) return r;
        if (auto r = s.execute(insert, {std::int64_t{1}}); !r) return r.error();
        return s.rollback();
    };
    REQUIRE(scrm::test::run_sync(io, pool.run(rolled_back)));
    CHECK(scrm::test::run_sync(io, pool.query(count))->rows[0][0] == "0");

    auto committed = [&](mysql_session& s) -> result<void> {
        if (auto r = s.begin(); !r) return r;
        if (auto r = s.execute(insert, {std::int64_t{2}}); !r) return r.error();
        if (auto r = s.execute(insert, {std::int64_t{3}}); !r) return r.error();
        return s.commit();
    };
    REQUIRE(scrm::test::run_sync(io, pool.run(committed)));
    CHECK(scrm::test::run_sync(io, pool.query(count))->rows[0][0] == "2");

    auto left_open = [&](mysql_session& s) -> result<int> {
        if (auto r = s.begin(); !r) return r.error();
        if (auto r = s.execute(insert, {std::int64_t{4}}); !r) return r.error();
        return s.in_transaction() ? 1 : 0;
    };
    auto open = scrm::test::run_sync(io, pool.run(left_open));
    REQUIRE(open);
    CHECK(*open == 1);
    CHECK(scrm::test::run_sync(io, pool.query(count))->rows[0][0] == "2");
}

TEST_CASE("MySQL pool runs work on its own threads and resumes the caller on its executor",
          "[mysql]") {
    asio::io_context io;
    mysql_pool pool(shared_options(2));
    const auto io_thread = std::this_thread::get_id();

    std::thread::id worker_thread;
    auto fn = [&worker_thread](mysql_session& s) -> result<std::string> {
        worker_thread = std::this_thread::get_id();
        auto r = s.query("SELECT 'hello'");
        if (!r) return r.error();
        return *r->rows.at(0).at(0);
    };
    auto check = [&]() -> asio::awaitable<std::thread::id> {
        auto r = co_await pool.run(fn);
        if (!r || *r != "hello") throw std::runtime_error("query failed");
        co_return std::this_thread::get_id();
    };
    const auto resumed_on = scrm::test::run_sync(io, check());
    CHECK(resumed_on == io_thread);
    CHECK(worker_thread != io_thread);

    // An exception thrown by the function reaches the caller; the pool keeps working.
    auto throws = [](mysql_session&) -> result<void> { throw std::runtime_error("boom"); };
    CHECK_THROWS_WITH(scrm::test::run_sync(io, pool.run(throws)), "boom");
    CHECK(scrm::test::run_sync(io, pool.ping()));
}

TEST_CASE("MySQL pool refuses a request as overloaded while every worker is busy", "[mysql]") {
    asio::io_context io;
    auto opts = shared_options(2);
    opts.queue_limit = 1;
    mysql_pool pool(opts);

    // Two sleeps occupy both workers and a third waits in the queue.
    int finished = 0;
    int succeeded = 0;
    for (int i = 0; i < 3; ++i) {
        asio::co_spawn(io, pool.query("SELECT SLEEP(2)"),
                       [&](std::exception_ptr e, result<sql_rows> r) {
                           ++finished;
                           if (!e && r) ++succeeded;
                       });
    }
    REQUIRE(poll_until(
        io, [&] { return pool.stats().busy == 2 && pool.stats().queued == 1; }, 5s));

    const auto t0 = clock_type::now();
    auto refused = scrm::test::run_sync(io, pool.query("SELECT 1"));
    const auto waited = clock_type::now() - t0;
    REQUIRE_FALSE(refused);
    CHECK(refused.error() == errc::overloaded);
    CHECK(waited < 500ms);
    CHECK(finished == 0);  // refused before the busy ones finished
    CHECK(pool.stats().overloaded_total == 1);

    REQUIRE(poll_until(
        io, [&] { return finished == 3; }, 15s));
    CHECK(succeeded == 3);
    CHECK(scrm::test::run_sync(io, pool.ping()));
}

TEST_CASE("MySQL pool that cannot connect answers unavailable quickly", "[mysql]") {
    asio::io_context io;
    auto opts = shared_options(2);
    opts.port = scrm::test::free_port();  // nothing listens there
    mysql_pool pool(opts);

    for (int i = 0; i < 3; ++i) {
        const auto t0 = clock_type::now();
        auto r = scrm::test::run_sync(io, pool.query("SELECT 1"));
        REQUIRE_FALSE(r);
        CHECK(r.error() == errc::unavailable);
        CHECK(clock_type::now() - t0 < 1s);
    }
    CHECK(pool.stats().connected == 0);
    CHECK(pool.stats().connect_failures >= 1);

    // Bad credentials: unavailable, with the server's code kept.
    auto bad = shared_options(1);
    bad.password = "not-the-password";
    mysql_session s(bad);
    auto r = s.connect();
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::unavailable);
    CHECK(s.last_error().code == 1045);
}

TEST_CASE("MySQL pool stop fails waiting and new requests with shutting_down", "[mysql]") {
    asio::io_context io;
    mysql_pool pool(shared_options(1));
    REQUIRE(scrm::test::run_sync(io, pool.ping()));
    pool.stop();
    auto r = scrm::test::run_sync(io, pool.query("SELECT 1"));
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::shutting_down);
    pool.stop();  // idempotent
}

TEST_CASE("MySQL connection killed by the server is replaced with the session restored",
          "[mysql]") {
    asio::io_context io;
    mysql_session admin(shared_options(1));
    const std::string probe =
        "SELECT CONNECTION_ID(), @@character_set_connection, @@time_zone, @@sql_mode, ? AS v";

    auto kill = [&](const std::string& id) {
        // KILL takes no placeholder; the id is a number the server gave us.
        auto r = admin.execute("KILL CONNECTION " + std::to_string(std::stoull(id)));
        REQUIRE(r);
    };
    auto check_session = [](const sql_rows& rows) {
        CHECK(rows.rows.at(0).at(1) == "utf8mb4");
        CHECK(rows.rows.at(0).at(2) == "+00:00");
        CHECK(rows.rows.at(0).at(3).value_or("").find("STRICT_ALL_TABLES") != std::string::npos);
        CHECK(rows.rows.at(0).at(4) == "v");
    };

    SECTION("with validation before use, the next statement runs on a new connection") {
        auto opts = shared_options(1);
        opts.validate_after_idle = 0ms;  // ping before every use
        mysql_pool pool(opts);
        auto before = scrm::test::run_sync(io, pool.query(probe, {std::string("v")}));
        REQUIRE(before);
        kill(*before->rows[0][0]);

        auto after = scrm::test::run_sync(io, pool.query(probe, {std::string("v")}));
        REQUIRE(after);
        CHECK(after->rows[0][0] != before->rows[0][0]);
        check_session(*after);
        CHECK(pool.stats().reconnects == 1);
    }

    SECTION("without validation, a statement sent on the dead connection is not retried") {
        auto opts = shared_options(1);
        opts.validate_after_idle = std::chrono::hours(1);
        mysql_pool pool(opts);
        auto before = scrm::test::run_sync(io, pool.query(probe, {std::string("v")}));
        REQUIRE(before);
        kill(*before->rows[0][0]);

        // Sent, then lost: it may have run, so the caller decides (here: unavailable).
        auto lost = scrm::test::run_sync(io, pool.query(probe, {std::string("v")}));
        if (!lost) {
            CHECK(lost.error() == errc::unavailable);
        }
        // The same prepared statement text works again on the new connection.
        auto after = scrm::test::run_sync(io, pool.query(probe, {std::string("v")}));
        REQUIRE(after);
        CHECK(after->rows[0][0] != before->rows[0][0]);
        check_session(*after);
        CHECK(pool.stats().reconnects == 1);
    }
}

TEST_CASE(
    "MySQL query against a stalled MariaDB fails by its timeout and the pool recovers "
    "after a restart",
    "[mysql][private]") {
    scrm::test::private_services svc;
    asio::io_context io;
    auto opts = options_from(svc.config().mysql);
    opts.workers = 2;
    opts.queue_limit = 16;
    opts.connect_timeout = 1s;
    opts.read_timeout = 1s;
    opts.write_timeout = 1s;
    opts.validate_after_idle =
        std::chrono::hours(1);  // send straight away: measure the read timeout
    opts.reconnect_backoff = 100ms;
    mysql_pool pool(opts);
    const std::string probe =
        "SELECT CONNECTION_ID(), @@character_set_connection, @@collation_connection, "
        "@@time_zone, @@sql_mode, SLEEP(0.2)";
    REQUIRE(query_until_ok(io, pool, probe, 10s));

    // Stalled (SIGSTOP): both workers' statements fail by the read timeout, not later.
    svc.pause_mysql();
    REQUIRE(wait_stopped(svc.mysql_pid(), 5s));
    int done = 0;
    std::vector<result<sql_rows>> stalled;
    std::vector<clock_type::duration> took;
    const auto t0 = clock_type::now();
    for (int i = 0; i < 2; ++i) {
        asio::co_spawn(io, pool.query("SELECT 1"), [&](std::exception_ptr, result<sql_rows> r) {
            stalled.push_back(std::move(r));
            took.push_back(clock_type::now() - t0);
            ++done;
        });
    }
    REQUIRE(poll_until(
        io, [&] { return done == 2; }, 10s));
    for (std::size_t i = 0; i < stalled.size(); ++i) {
        REQUIRE_FALSE(stalled[i]);
        CHECK(stalled[i].error() == errc::timeout);
        CHECK(took[i] >= 900ms);
        CHECK(took[i] < 3s);
    }
    // The workers are free again: a stalled server does not pin them.
    REQUIRE(poll_until(
        io, [&] { return pool.stats().busy == 0; }, 2s));

    // Down: answered quickly.
    svc.resume_mysql();
    svc.stop_mysql();
    {
        const auto t1 = clock_type::now();
        auto r = scrm::test::run_sync(io, pool.query("SELECT 1"));
        REQUIRE_FALSE(r);
        CHECK(r.error() == errc::unavailable);
        CHECK(clock_type::now() - t1 < 1500ms);
    }

    // Restarted: both workers reconnect, with the session settings restored.
    svc.start();
    REQUIRE(query_until_ok(io, pool, "SELECT 1", 30s));
    std::vector<result<sql_rows>> pair;
    const auto deadline = clock_type::now() + 30s;
    for (;;) {
        pair.clear();
        int n = 0;
        for (int i = 0; i < 2; ++i) {
            asio::co_spawn(io, pool.query(probe), [&](std::exception_ptr, result<sql_rows> r) {
                pair.push_back(std::move(r));
                ++n;
            });
        }
        REQUIRE(poll_until(
            io, [&] { return n == 2; }, 10s));
        if ((pair[0] && pair[1]) || clock_type::now() > deadline) break;
    }
    REQUIRE(pair[0]);
    REQUIRE(pair[1]);
    CHECK(pair[0]->rows[0][0] != pair[1]->rows[0][0]);  // two workers, two connections
    for (const auto& r : pair) {
        CHECK(r->rows[0][1] == "utf8mb4");
        CHECK(r->rows[0][2] == "utf8mb4_unicode_ci");
        CHECK(r->rows[0][3] == "+00:00");
        CHECK(r->rows[0][4].value_or("").find("STRICT_ALL_TABLES") != std::string::npos);
    }
    const auto st = pool.stats();
    CHECK(st.connected == 2);
    CHECK(st.reconnects >= 2);
}

// No blocking call on an I/O thread: MySQL work awaited from an I/O thread runs on the pool's
// workers, and a blocking MySQL call made directly on an I/O thread aborts the process loudly.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include "scrm/common/thread_role.hpp"
#include "scrm/gateway/services.hpp"
#include "scrm/storage/mysql.hpp"
#include "test_env.hpp"

using namespace scrm;

namespace {

storage::mysql_options options() {
    auto o = gateway::mysql_options_from(test::services_config().mysql);
    o.workers = 2;
    return o;
}

}  // namespace

TEST_CASE("MySQL work awaited on an I/O thread runs on a worker thread") {
    storage::mysql_pool pool(options());
    boost::asio::io_context io;
    mark_io_thread();  // this test thread now runs the I/O loop
    REQUIRE(on_io_thread());
    auto rows = test::run_sync(io, pool.query("SELECT 1"));
    REQUIRE(rows);
    CHECK(rows->rows.size() == 1);
    auto run_where = [](storage::mysql_session&) -> result<bool> { return on_io_thread(); };
    auto where = test::run_sync(io, pool.run(run_where));
    REQUIRE(where);
    CHECK_FALSE(*where);  // ...and the statement ran where blocking is allowed
    mark_io_thread(false);
    pool.stop();
}

TEST_CASE("a blocking MySQL call made directly on an I/O thread aborts") {
    const auto opts = options();
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        mark_io_thread();
        storage::mysql_session session(opts);
        (void)session.query("SELECT 1");
        ::_exit(0);  // reached only if the guard failed
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGABRT);
}

// scripts/services: a taken port is named in the error and nothing is started; status reports what
// runs; down stops only the processes this instance started.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "child_process.hpp"
#include "test_env.hpp"

using namespace scrm::test;
using namespace std::chrono_literals;

namespace {

// Holds a listening socket on 127.0.0.1:port for the test's duration.
struct port_holder {
    port_holder() {
        fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(fd, 4) == 0);
        REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
        port = ntohs(addr.sin_port);
    }
    ~port_holder() { ::close(fd); }
    int fd = -1;
    std::uint16_t port = 0;
};

struct run_result {
    int code;
    std::string output;
};

run_result services(const std::filesystem::path& dir, const std::vector<std::string>& args) {
    std::vector<std::string> argv{(source_dir() / "scripts" / "services").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--dir");
    argv.push_back(dir.string());
    child_process p(argv, dir.parent_path() / (dir.filename().string() + ".out"));
    const auto code = p.wait(120s);
    REQUIRE(code.has_value());
    return {*code, p.output()};
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("services up names a port that is taken and starts nothing") {
    const auto dir = std::filesystem::temp_directory_path() / unique_name("scrm_services");
    std::filesystem::create_directories(dir);
    port_holder taken;
    const auto mysql_port = std::to_string(free_port());

    auto r = services(
        dir, {"up", "--redis-port", std::to_string(taken.port), "--mysql-port", mysql_port});
    CHECK(r.code != 0);
    CHECK(contains(r.output, "port " + std::to_string(taken.port) + " (Redis) is already in use"));
    r = services(dir, {"status"});
    CHECK(r.code != 0);
    CHECK(contains(r.output, "redis: stopped"));
    CHECK(contains(r.output, "mariadb: stopped"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("services down stops only the processes its own pid files name") {
    private_services mine;
    const auto dir = std::filesystem::temp_directory_path() / unique_name("scrm_services");
    std::filesystem::create_directories(dir);
    // Pid files naming processes that are not ours to stop: this test process (not a mariadbd).
    std::ofstream(dir / "mysql.pid") << ::getpid() << "\n";
    std::ofstream(dir / "redis.pid") << ::getpid() << "\n";

    auto r = services(dir, {"status"});
    CHECK(contains(r.output, "redis: stopped"));
    CHECK(contains(r.output, "mariadb: stopped"));
    r = services(dir, {"down"});
    CHECK(r.code == 0);
    CHECK(std::filesystem::exists("/proc/" + std::to_string(::getpid())));
    // The other instance's servers are untouched.
    CHECK(std::filesystem::exists("/proc/" + std::to_string(mine.redis_pid())));
    CHECK(std::filesystem::exists("/proc/" + std::to_string(mine.mysql_pid())));
    std::filesystem::remove_all(dir);
}

TEST_CASE("private services of a test process that was killed are stopped by the next one") {
    // A test process killed by ctest's timeout never runs its destructors: its Redis and MariaDB
    // would run on. The child starts private services and is killed; the next private_services
    // stops them and removes their folder.
    int report[2];
    REQUIRE(::pipe(report) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(report[0]);
        try {
            private_services services;
            const std::string line = services.dir().string() + " " +
                                     std::to_string(services.redis_pid()) + " " +
                                     std::to_string(services.mysql_pid()) + "\n";
            if (::write(report[1], line.data(), line.size()) < 0) ::_exit(2);
            for (;;) ::pause();
        } catch (...) {
            ::_exit(1);
        }
    }
    ::close(report[1]);
    std::string line;
    char buf[512];
    // One line; the child keeps its end open (it waits to be killed), so read up to the newline.
    for (ssize_t n; line.find('\n') == std::string::npos && (n = ::read(report[0], buf, sizeof buf)) > 0;) {
        line.append(buf, static_cast<std::size_t>(n));
    }
    ::close(report[0]);
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    std::istringstream in(line);
    std::string dir;
    int redis = 0, mysql = 0;
    in >> dir >> redis >> mysql;
    REQUIRE(!dir.empty());
    REQUIRE(redis > 0);
    REQUIRE(mysql > 0);
    CHECK(::kill(redis, 0) == 0);  // orphaned, still running
    CHECK(::kill(mysql, 0) == 0);

    private_services next;
    CHECK_FALSE(std::filesystem::exists(dir));
    CHECK(eventually([&] { return ::kill(redis, 0) != 0 && ::kill(mysql, 0) != 0; }, 10s));
    CHECK(std::filesystem::exists(next.dir() / "owner.pid"));
}

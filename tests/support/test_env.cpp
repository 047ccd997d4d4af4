// Test support: the shared services' settings and private server instances (see test_env.hpp).
#include "test_env.hpp"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

namespace scrm::test {
namespace {

gateway::config read_config_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) {
        throw std::runtime_error("cannot read " + path.string() +
                                 ": start the services first (scripts/services up)");
    }
    std::stringstream buf;
    buf << in.rdbuf();
    auto parsed = gateway::parse_config(buf.str());
    if (auto* err = std::get_if<gateway::load_error>(&parsed)) {
        throw std::runtime_error(path.string() + ": " + err->message());
    }
    return std::get<gateway::config>(parsed);
}

int read_pid(const std::filesystem::path& file) {
    std::ifstream in(file);
    int pid = 0;
    in >> pid;
    return pid;
}

void run_or_throw(const std::string& command) {
    if (std::system(command.c_str()) != 0) throw std::runtime_error("command failed: " + command);
}

void signal_and_wait(int pid, int sig, bool wait_exit) {
    if (pid <= 0) throw std::runtime_error("no pid to signal");
    ::kill(pid, sig);
    if (!wait_exit) return;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::filesystem::exists("/proc/" + std::to_string(pid))) {
        if (std::chrono::steady_clock::now() > deadline) {
            throw std::runtime_error("process " + std::to_string(pid) + " did not exit");
        }
        std::this_thread::sleep_for(
            std::chrono::milliseconds(20));  // polling a process, not a test wait
    }
}

// SIGSTOP is asynchronous: waits until every thread of `pid` is in the stopped state ('T').
void wait_all_threads_stopped(int pid) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
    for (;;) {
        bool all_stopped = true;
        std::error_code ec;
        for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
            std::ifstream in(task.path() / "stat");
            std::string stat((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
            const auto paren = stat.rfind(')');
            if (paren == std::string::npos || paren + 2 >= stat.size()) continue;
            const char state = stat[paren + 2];
            if (state != 'T' && state != 't') all_stopped = false;
        }
        if (all_stopped) return;
        if (std::chrono::steady_clock::now() > deadline) {
            throw std::runtime_error("process " + std::to_string(pid) + " did not stop");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

// Services left behind by a test process that died (a ctest timeout kills it with SIGKILL, so its
// destructors never ran): each private folder names its owner in owner.pid; a folder whose owner
// is gone is brought down and removed. Folders without the file are left alone.
void reap_orphaned_services() {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/tmp", ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("scrm-services-", 0) != 0) continue;
        const int owner = read_pid(entry.path() / "owner.pid");
        if (owner <= 0 || ::kill(owner, 0) == 0 || errno != ESRCH) continue;
        for (const char* pid_file : {"redis.pid", "mysql.pid"}) {
            if (const int pid = read_pid(entry.path() / pid_file); pid > 0) ::kill(pid, SIGCONT);
        }
        const std::string down = (source_dir() / "scripts" / "services").string() + " down --dir " +
                                 entry.path().string() + " >/dev/null 2>&1";
        if (std::system(down.c_str()) == 0) std::filesystem::remove_all(entry.path(), ec);
    }
}

}  // namespace

std::filesystem::path source_dir() {
    if (const char* env = std::getenv("SCRM_SOURCE_DIR")) return env;
    return SCRM_SOURCE_DIR;
}

std::filesystem::path services_config_path() {
    if (const char* env = std::getenv("SCRM_TEST_CONFIG")) return env;
    return source_dir() / ".local" / "config.json";
}

const gateway::config& services_config() {
    static const gateway::config cfg = read_config_file(services_config_path());
    return cfg;
}

std::string unique_name(const std::string& prefix) {
    static std::atomic<unsigned> counter{0};
    return prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
}

std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error("socket() failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        ::close(fd);
        throw std::runtime_error("bind() to 127.0.0.1:0 failed");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
}

private_services::private_services() {
    reap_orphaned_services();
    char tmpl[] = "/tmp/scrm-services-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    std::ofstream(dir_ / "owner.pid") << ::getpid() << "\n";
    services_args_ = " --dir " + dir_.string() + " --redis-port " + std::to_string(free_port()) +
                     " --mysql-port " + std::to_string(free_port());
    try {
        start();
        cfg_ = read_config_file(dir_ / "config.json");
    } catch (...) {
        // The destructor will not run: stop whatever did start.
        const std::string down = (source_dir() / "scripts" / "services").string() + " down" +
                                 services_args_ + " >/dev/null 2>&1";
        if (std::system(down.c_str()) != 0) {
            // Nothing more to do: the original error is the one worth reporting.
        }
        throw;
    }
}

private_services::~private_services() {
    for (const char* name : {"redis.pid", "mysql.pid"}) {
        if (const int pid = read_pid(dir_ / name); pid > 0) ::kill(pid, SIGCONT);
    }
    const std::string cmd =
        (source_dir() / "scripts" / "services").string() + " down" + services_args_ + " >/dev/null";
    if (std::system(cmd.c_str()) == 0) {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
}

void private_services::start() {
    run_or_throw((source_dir() / "scripts" / "services").string() + " up" + services_args_ +
                 " >/dev/null");
}

int private_services::redis_pid() const {
    return read_pid(dir_ / "redis.pid");
}
int private_services::mysql_pid() const {
    return read_pid(dir_ / "mysql.pid");
}
void private_services::stop_redis() {
    signal_and_wait(redis_pid(), SIGTERM, true);
}
void private_services::stop_mysql() {
    signal_and_wait(mysql_pid(), SIGTERM, true);
}
void private_services::pause_redis() {
    signal_and_wait(redis_pid(), SIGSTOP, false);
    wait_all_threads_stopped(redis_pid());
}
void private_services::resume_redis() {
    signal_and_wait(redis_pid(), SIGCONT, false);
}
void private_services::pause_mysql() {
    signal_and_wait(mysql_pid(), SIGSTOP, false);
    wait_all_threads_stopped(mysql_pid());
}
void private_services::resume_mysql() {
    signal_and_wait(mysql_pid(), SIGCONT, false);
}

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return true;
}

}  // namespace scrm::test

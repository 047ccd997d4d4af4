// fork/exec with output redirected to a file, and a bounded wait for the exit.
#include "child_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>

extern char** environ;

namespace scrm::test {

child_process::child_process(std::vector<std::string> argv, std::filesystem::path log_file,
                             std::vector<std::string> env)
    : log_(std::move(log_file)) {
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    const int out = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    if (out < 0) throw std::runtime_error("cannot create " + log_.string());
    pid_ = ::fork();
    if (pid_ < 0) {
        ::close(out);
        throw std::runtime_error("fork failed");
    }
    if (pid_ == 0) {
        // The child reads its settings from its own --config: drop the caller's SCRM_* overrides.
        for (char** e = environ; *e;) {
            const std::string_view kv(*e);
            if (kv.rfind("SCRM_", 0) == 0 && kv.rfind("SCRM_SOURCE_DIR=", 0) != 0) {
                ::unsetenv(std::string(kv.substr(0, kv.find('='))).c_str());
            } else {
                ++e;
            }
        }
        for (auto& kv : env) ::putenv(kv.data());
        ::dup2(out, STDOUT_FILENO);
        ::dup2(out, STDERR_FILENO);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    ::close(out);
}

child_process::~child_process() {
    if (!reaped_ && pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
}

void child_process::signal(int sig) const {
    ::kill(pid_, sig);
}

std::optional<int> child_process::wait(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        int status = 0;
        const int r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            reaped_ = true;
            if (WIFEXITED(status)) return WEXITSTATUS(status);
            if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
            return -1;
        }
        if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

std::string child_process::output() const {
    std::ifstream in(log_);
    std::stringstream buf;
    buf << in.rdbuf();
    return buf.str();
}

}  // namespace scrm::test

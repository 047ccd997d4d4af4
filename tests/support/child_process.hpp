// Runs one of our executables as a child process for tests: stdout and stderr go to a file the test
// can read (e.g. to check logs hold no secrets); the destructor kills it if it is still running.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace scrm::test {

class child_process {
public:
    // Starts `argv[0]` with the given arguments; output to `log_file`. The caller's SCRM_*
    // variables are dropped (the child reads its own --config); `env` adds variables
    // ("NAME=value"). Throws if fork/exec fails.
    child_process(std::vector<std::string> argv, std::filesystem::path log_file,
                  std::vector<std::string> env = {});
    ~child_process();
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    int pid() const { return pid_; }
    void signal(int sig) const;
    // Waits for the exit; returns the exit code (128+signal if killed), or nullopt on timeout.
    std::optional<int> wait(std::chrono::milliseconds limit);
    std::string output() const;  // everything written so far

private:
    int pid_ = -1;
    bool reaped_ = false;
    std::filesystem::path log_;
};

}  // namespace scrm::test

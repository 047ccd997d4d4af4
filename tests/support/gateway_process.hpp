// The scrm-gateway executable as a child process for end-to-end tests: on a free port, ready
// (/readyz 200) once constructed, its own spool and media folders, its log in a file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "child_process.hpp"

namespace scrm::test {

struct gateway_process {
    // `env` ("NAME=value") comes after the defaults and wins over them: spool and media folders
    // <dir>/<name>-spool and -media, and SCRM_BACKGROUND_WORKERS=0 — the outbox and media workers
    // stay off unless a test asks for them: on the shared database they would take other suites'
    // rows (each of those suites scopes its own workers to its accounts). The log goes to
    // <dir>/<name>.log. The master key (SCRM_MASTER_KEY) is the caller's to give.
    gateway_process(const std::string& binary, const std::filesystem::path& config,
                    const std::filesystem::path& dir, const std::string& name,
                    std::vector<std::string> env);

    // A value from /metrics (a gauge or a counter without labels); -1 when it is absent.
    double metric(const std::string& name) const;

    std::uint16_t port;
    child_process proc;
};

}  // namespace scrm::test

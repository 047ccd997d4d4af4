// Command-line parsing shared by scrm-gateway and scrm-admin: --config FILE, --listen HOST:PORT,
// --help, then positional arguments (scrm-admin's command and its options).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "scrm/gateway/config.hpp"

namespace scrm::gateway {

struct cli_result {
    std::optional<config> cfg;      // set when the program should go on
    std::vector<std::string> rest;  // arguments after the global options
    int exit_code = 0;              // when cfg is empty: 0 after --help, 2 after an error
};

// Parses argv and loads the configuration (file → SCRM_* environment → flags). Prints `usage` for
// --help, and errors (every configuration problem, one per line) to stderr.
cli_result parse_cli(int argc, char** argv, const char* usage);

}  // namespace scrm::gateway

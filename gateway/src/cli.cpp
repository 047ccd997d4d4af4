// Global options of our executables. Anything after them (e.g. scrm-admin's "migrate") is returned
// untouched for the program to interpret.
#include "scrm/gateway/cli.hpp"

#include <iostream>

namespace scrm::gateway {

cli_result parse_cli(int argc, char** argv, const char* usage) {
    cli_result out;
    cli_options opts;
    const std::string program = argc > 0 ? argv[0] : "scrm";
    int i = 1;
    for (; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&](const char* name) -> std::optional<std::string> {
            if (i + 1 >= argc) {
                std::cerr << program << ": " << name << " needs a value\n" << usage;
                return std::nullopt;
            }
            return std::string(argv[++i]);
        };
        if (arg == "--help" || arg == "-h") {
            std::cout << usage;
            return out;
        } else if (arg == "--config") {
            if (!(opts.config_path = value("--config"))) return out.exit_code = 2, out;
        } else if (arg == "--listen") {
            if (!(opts.listen = value("--listen"))) return out.exit_code = 2, out;
        } else if (arg.rfind("--", 0) == 0 && out.rest.empty()) {
            std::cerr << program << ": unknown option " << arg << "\n" << usage;
            out.exit_code = 2;
            return out;
        } else {
            break;
        }
    }
    for (; i < argc; ++i) out.rest.emplace_back(argv[i]);
    auto loaded = load_config(opts, process_env());
    if (auto* err = std::get_if<load_error>(&loaded)) {
        std::cerr << program << ": configuration error:\n";
        for (const auto& p : err->problems) std::cerr << "  " << p << "\n";
        out.exit_code = 2;
        return out;
    }
    out.cfg = std::get<config>(std::move(loaded));
    return out;
}

}  // namespace scrm::gateway

// scrm-admin: the operator's command line. Each command is a small function over the configured
// stores; later issues add accounts, clinics, agents and templates.
#include <iostream>
#include <string>
#include <vector>

#include "scrm/gateway/cli.hpp"
#include "scrm/storage/migrations.hpp"

using namespace scrm;

namespace {

constexpr const char* usage =
    "usage: scrm-admin [--config FILE] COMMAND [OPTIONS]\n"
    "  Settings: JSON file, then SCRM_* environment variables (see README.md).\n"
    "commands:\n"
    "  migrate [--dir DIR]   apply the missing schema migrations from DIR (default: the sql/ "
    "folder\n"
    "                        of the source tree this binary was built from); re-running is a "
    "no-op\n"
    "  help                  this text\n";

storage::mysql_options mysql_options_from(const gateway::mysql_settings& s) {
    storage::mysql_options o;
    o.host = s.host;
    o.port = s.port;
    o.user = s.user;
    o.password = s.password;
    o.database = s.database;
    o.connect_timeout = s.connect_timeout;
    o.read_timeout = s.read_timeout;
    o.write_timeout = s.write_timeout;
    return o;
}

int cmd_migrate(const gateway::config& cfg, const std::vector<std::string>& args) {
    std::string dir = SCRM_DEFAULT_SQL_DIR;
    for (std::size_t i = 1; i < args.size(); ++i) {
        if (args[i] == "--dir" && i + 1 < args.size()) {
            dir = args[++i];
        } else {
            std::cerr << "scrm-admin migrate: unexpected argument " << args[i] << "\n" << usage;
            return 2;
        }
    }
    const auto report = storage::migrate(mysql_options_from(cfg.mysql), dir);
    for (const auto& name : report.applied) std::cout << "applied   " << name << "\n";
    if (!report.ok()) {
        std::cerr << "scrm-admin migrate: " << report.message << "\n";
        return 1;
    }
    std::cout << "migrations: " << report.applied.size() << " applied, " << report.unchanged.size()
              << " already applied\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    auto cli = gateway::parse_cli(argc, argv, usage);
    if (!cli.cfg) return cli.exit_code;
    if (cli.rest.empty()) {
        std::cerr << "scrm-admin: missing command\n" << usage;
        return 2;
    }
    const std::string& command = cli.rest.front();
    if (command == "help") {
        std::cout << usage;
        return 0;
    }
    if (command == "migrate") return cmd_migrate(*cli.cfg, cli.rest);
    std::cerr << "scrm-admin: unknown command " << command << "\n" << usage;
    return 2;
}

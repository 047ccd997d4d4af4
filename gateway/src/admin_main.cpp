// scrm-admin: the operator's command line. Each command is a small function over the configured
// stores: schema migrations, official accounts, clinics, stores, agents, fan owners, routing
// settings, template notifications, API keys and evaluation invitations.
#include <iostream>
#include <string>
#include <vector>

#include "admin_commands.hpp"
#include "scrm/gateway/cli.hpp"
#include "scrm/storage/migrations.hpp"

using namespace scrm;

namespace {

constexpr const char* usage =
    "usage: scrm-admin [--config FILE] COMMAND [OPTIONS]\n"
    "  Settings: JSON file, then SCRM_* environment variables (see README.md).\n"
    "commands:\n"
    "  migrate [--dir DIR]   apply the missing schema migrations from DIR (default: the\n"
    "                        sql/ folder of the source tree this binary was built from);\n"
    "                        re-running is a no-op\n"
    "  account add --clinic NAME --appid wx… --original-id gh_… --token T --aes-key KEY\n"
    "              --secret S [--aes-key-previous KEY] [--safe-mode-only]\n"
    "                        add or update a clinic's official account (idempotent; a new\n"
    "                        --aes-key keeps the old one as previous). Needs SCRM_MASTER_KEY.\n"
    "  account list          the accounts, without secrets\n"
    "  clinic add --name NAME    add a clinic (exists already: said so, nothing changed)\n"
    "  clinic list               clinics with their numbers of stores, agents and accounts\n"
    "  store add --clinic NAME --name STORE   add a store (门店) to a clinic (idempotent)\n"
    "  store list --clinic NAME\n"
    "  agent add --clinic NAME --name NAME --role admin|front_desk|consultant|service\n"
    "            [--store STORE] [--no-consultation]\n"
    "            [--password P | --password-stdin]   (or SCRM_AGENT_PASSWORD)\n"
    "                        add an agent, or set an existing one's role, store and online-\n"
    "                        consultation permission to exactly these (no --store: no store)\n"
    "                        and reactivate it; the password (8-128 bytes) is required for a\n"
    "                        new agent and changed only when given. Prefer --password-stdin or\n"
    "                        SCRM_AGENT_PASSWORD: a command line is visible to every local\n"
    "                        user (ps) and kept in shell history. Passwords are stored hashed.\n"
    "  agent list --clinic NAME          the agents (no password hashes)\n"
    "  agent deactivate --clinic NAME --name NAME   mark the agent inactive (sign-in and\n"
    "                        routing skip it); the row, its history and its fans stay\n"
    "  fan set-owner --appid wx… --openid OPENID [--consultant AGENT | --no-consultant]\n"
    "            [--exclusive AGENT | --no-exclusive] [--store STORE | --no-store]\n"
    "                        set a fan's consultant, exclusive agent and store (agents: active\n"
    "                        agents of the account's clinic); creates the fan row if missing\n"
    "  routing show --clinic NAME        the clinic's routing settings (defaults if never set)\n"
    "  routing set --clinic NAME [SETTING VALUE]…   change only the settings given:\n"
    "      --consultant-mode, --exclusive-mode, --chain-store-mode, --auto-reply (master\n"
    "        switch), --welcome-reply, --consultant-offline-reply, --after-hours-reply,\n"
    "        --no-agent-reply, --timeout-reply: on|off\n"
    "      --welcome, --consultant-offline, --after-hours, --no-agent, --timeout: the reply\n"
    "        text for patients, 1-600 characters\n"
    "      --utc-offset +08:00   the clinic's time zone as a fixed offset\n"
    "      --hours JSON   [{\"weekdays\":[1,2,3,4,5],\"start\":\"09:00\",\"end\":\"18:00\"}]\n"
    "        (1 = Monday; end not after start = overnight; [] = always open)\n"
    "      --closed-dates JSON   [\"2027-01-01\"]\n"
    "      --timeout-after, --suppression-window, --lock-ttl: seconds\n"
    "  template kinds        the notification kinds and the fields their events carry\n"
    "  template list --clinic NAME       the clinic's template notifications\n"
    "  template set --clinic NAME --kind KIND [--template-id ID] [--keywords JSON]\n"
    "            [--url URL | --no-url] [--miniprogram wx… --page PATH | --no-miniprogram]\n"
    "            [--enabled on|off]\n"
    "                        add or change one kind's setting (only what is given; a new one\n"
    "                        needs --template-id and --keywords). JSON maps the template's\n"
    "                        keywords to short texts with {{field}} placeholders:\n"
    "                        '{\"time1\":\"{{appointment_time}}\",\"thing2\":\"{{doctor}}\"}'\n"
    "                        (first/remark are refused: WeChat ignores them since 2023)\n"
    "  apikey add --clinic NAME --name NAME   a key for the clinic's own system; printed once\n"
    "                        (stdout), stored hashed. An existing name: nothing changed\n"
    "  apikey list --clinic NAME        names and prefixes, never keys\n"
    "  apikey revoke --clinic NAME --name NAME   the key stops working at once\n"
    "  evaluation invite --appid wx… --openid OPENID --visit REF\n"
    "                        an evaluation invitation for the fan's visit (one per visit: the\n"
    "                        same visit again prints the same link); prints its /eval/ link and\n"
    "                        sends nothing. Needs SCRM_MASTER_KEY (it signs the link)\n"
    "  help                  this text\n"
    "Exit status: 0 done (or already so), 1 the operation failed, 2 bad input (nothing changed).\n";

}  // namespace

namespace scrm::gateway {

int cmd_migrate(const config& cfg, const std::vector<std::string>& args) {
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

}  // namespace scrm::gateway

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
    if (command == "migrate") return gateway::cmd_migrate(*cli.cfg, cli.rest);
    if (command == "account") return gateway::cmd_account(*cli.cfg, cli.rest);
    if (command == "clinic") return gateway::cmd_clinic(*cli.cfg, cli.rest);
    if (command == "store") return gateway::cmd_store(*cli.cfg, cli.rest);
    if (command == "agent") return gateway::cmd_agent(*cli.cfg, cli.rest);
    if (command == "fan") return gateway::cmd_fan(*cli.cfg, cli.rest);
    if (command == "routing") return gateway::cmd_routing(*cli.cfg, cli.rest);
    if (command == "template") return gateway::cmd_template(*cli.cfg, cli.rest);
    if (command == "apikey") return gateway::cmd_apikey(*cli.cfg, cli.rest);
    if (command == "evaluation") return gateway::cmd_evaluation(*cli.cfg, cli.rest);
    std::cerr << "scrm-admin: unknown command " << command << "\n" << usage;
    return 2;
}

// scrm-admin agent add|list|deactivate: the clinic's staff who sign in to the console. Passwords
// are hashed (gateway/password.hpp) before they reach MySQL and are never printed; they may come
// from --password, from stdin (--password-stdin) or from SCRM_AGENT_PASSWORD, because a command
// line is visible to every local user (ps, /proc/<pid>/cmdline) and lands in shell history.
#include <cstdlib>
#include <iostream>
#include <iterator>

#include "admin_commands.hpp"
#include "scrm/gateway/admin_requests.hpp"
#include "scrm/gateway/password.hpp"

namespace scrm::gateway {
namespace {

struct password_input {
    std::string source;  // the flag or variable it came from, for messages
    std::string value;
};

// The password from exactly one source, or nullopt when none was given. --password and
// --password-stdin exclude each other; SCRM_AGENT_PASSWORD is used only when neither is given.
// On a problem, `error` is set.
std::optional<password_input> read_password(std::map<std::string, std::string>& o,
                                            std::string& error) {
    if (o.count("--password") && o.count("--password-stdin")) {
        error = "--password and --password-stdin exclude each other: give the password one way";
        return std::nullopt;
    }
    if (o.count("--password")) return password_input{"--password", o["--password"]};
    if (o.count("--password-stdin")) {
        std::string text((std::istreambuf_iterator<char>(std::cin)),
                         std::istreambuf_iterator<char>());
        // One trailing line break is the end of the line, not part of the password.
        if (!text.empty() && text.back() == '\n') text.pop_back();
        if (!text.empty() && text.back() == '\r') text.pop_back();
        return password_input{"--password-stdin", std::move(text)};
    }
    if (const char* env = std::getenv("SCRM_AGENT_PASSWORD")) {
        return password_input{"SCRM_AGENT_PASSWORD", env};
    }
    return std::nullopt;
}

std::string store_text(const std::optional<std::string>& store) {
    return store ? quoted(*store) : "(none)";
}

int agent_add(const config& cfg, const std::vector<std::string>& args) {
    const char* what = "agent add";
    std::map<std::string, std::string> o;
    std::string error;
    if (!parse_options(args, 2, {"--clinic", "--name", "--role", "--store", "--password"},
                       {"--no-consultation", "--password-stdin"}, o, error)) {
        return complain(what, error, 2);
    }
    for (const char* required : {"--clinic", "--name", "--role"}) {
        if (!o.count(required)) return complain(what, std::string(required) + " is required", 2);
    }
    const std::string clinic = o["--clinic"];
    const std::string name = o["--name"];
    const std::string role = o["--role"];
    const std::optional<std::string> store =
        o.count("--store") ? std::optional<std::string>(o["--store"]) : std::nullopt;
    const bool can_receive = o.count("--no-consultation") == 0;
    if (auto p = name_problem("--clinic", clinic, 128)) return complain(what, *p, 2);
    if (auto p = name_problem("--name", name, agent_name_max)) return complain(what, *p, 2);
    if (!valid_agent_role(role)) {
        return complain(what, "--role: must be one of admin, front_desk, consultant, service", 2);
    }
    if (store) {
        if (auto p = name_problem("--store", *store, store_name_max)) return complain(what, *p, 2);
    }
    const auto password = read_password(o, error);
    if (!error.empty()) return complain(what, error, 2);
    if (password && password_problem(password->value)) {
        return complain(what, password->source + ": must be 8-128 bytes", 2);
    }

    storage::mysql_session db(mysql_options_from(cfg.mysql));
    if (auto r = begin_transaction(db); !r)
        return complain(what, "cannot reach MySQL: " + why(db, r.error()), 1);
    auto clinic_id = find_clinic(db, clinic, true);
    if (!clinic_id) return complain(what, "cannot read clinics: " + why(db, clinic_id.error()), 1);
    if (!*clinic_id) return complain(what, no_such_clinic("--clinic", clinic), 2);
    storage::sql_value store_id = std::monostate{};
    if (store) {
        auto s =
            db.query("SELECT id FROM stores WHERE clinic_id = ? AND name = ? LOCK IN SHARE MODE",
                     {**clinic_id, *store});
        if (!s) return complain(what, "cannot read stores: " + why(db, s.error()), 1);
        if (s->rows.empty()) {
            return complain(what,
                            "--store: no store named " + quoted(*store) + " in clinic " +
                                quoted(clinic) + " (add it with: scrm-admin store add --clinic " +
                                quoted(clinic) + " --name " + quoted(*store) + ")",
                            2);
        }
        store_id = *s->rows[0][0];
    }
    auto existing = db.query(
        "SELECT a.id, a.role, s.name, a.can_receive, a.password_hash, a.active, a.store_id "
        "FROM agents a LEFT JOIN stores s ON s.id = a.store_id "
        "WHERE a.clinic_id = ? AND a.name = ? FOR UPDATE",
        {**clinic_id, name});
    if (!existing) return complain(what, "cannot read agents: " + why(db, existing.error()), 1);

    if (existing->rows.empty()) {
        if (!password) {
            return complain(what,
                            "--password: a new agent needs a password (--password, "
                            "--password-stdin or SCRM_AGENT_PASSWORD)",
                            2);
        }
        const auto hash = hash_password(password->value);
        if (!hash) return complain(what, "cannot hash the password (no random source)", 1);
        auto added = db.execute(
            "INSERT INTO agents (clinic_id, store_id, name, role, can_receive, password_hash) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            {**clinic_id, store_id, name, role, std::int64_t{can_receive ? 1 : 0}, *hash});
        if (!added) return complain(what, "cannot store the agent: " + why(db, added.error()), 1);
        if (auto r = db.commit(); !r)
            return complain(what, "cannot commit: " + why(db, r.error()), 1);
        std::cout << "added agent " << quoted(name) << " to clinic " << quoted(clinic) << ": role "
                  << role << ", store " << store_text(store) << ", online consultation "
                  << (can_receive ? "yes" : "no") << "\n";
        return 0;
    }

    const auto& row = existing->rows[0];
    std::vector<std::string> changes;
    if (*row[1] != role) changes.push_back("role " + *row[1] + " -> " + role);
    const std::optional<std::string> old_store = row[2];
    const std::string old_store_id = row[6] ? *row[6] : "";
    const std::string new_store_id = store ? std::get<std::string>(store_id) : "";
    const bool store_changed = old_store_id != new_store_id;
    if (store_changed)
        changes.push_back("store " + store_text(old_store) + " -> " + store_text(store));
    const bool old_receive = *row[3] == "1";
    if (old_receive != can_receive) {
        changes.push_back(std::string("online consultation ") + (old_receive ? "yes" : "no") +
                          " -> " + (can_receive ? "yes" : "no"));
    }
    std::string hash = *row[4];
    if (password && !verify_password(password->value, hash)) {
        const auto fresh = hash_password(password->value);
        if (!fresh) return complain(what, "cannot hash the password (no random source)", 1);
        hash = *fresh;
        changes.emplace_back("password changed");
    }
    if (*row[5] != "1") changes.emplace_back("reactivated");
    if (changes.empty()) {
        db.rollback();
        std::cout << "agent " << quoted(name) << " of clinic " << quoted(clinic) << " unchanged\n";
        return 0;
    }
    auto updated = db.execute(
        "UPDATE agents SET role = ?, store_id = ?, can_receive = ?, password_hash = ?, active = 1 "
        "WHERE id = ?",
        {role, store_id, std::int64_t{can_receive ? 1 : 0}, hash, *row[0]});
    if (!updated) return complain(what, "cannot update the agent: " + why(db, updated.error()), 1);
    if (auto r = db.commit(); !r) return complain(what, "cannot commit: " + why(db, r.error()), 1);
    std::cout << "updated agent " << quoted(name) << " of clinic " << quoted(clinic) << ":";
    for (std::size_t i = 0; i < changes.size(); ++i) std::cout << (i ? ", " : " ") << changes[i];
    std::cout << "\n";
    return 0;
}

int agent_list(const config& cfg, const std::vector<std::string>& args) {
    const char* what = "agent list";
    std::map<std::string, std::string> o;
    std::string error;
    if (!parse_options(args, 2, {"--clinic"}, {}, o, error)) return complain(what, error, 2);
    if (!o.count("--clinic")) return complain(what, "--clinic is required", 2);
    const std::string clinic = o["--clinic"];
    storage::mysql_session db(mysql_options_from(cfg.mysql));
    auto clinic_id = find_clinic(db, clinic);
    if (!clinic_id) return complain(what, "cannot read clinics: " + why(db, clinic_id.error()), 1);
    if (!*clinic_id) return complain(what, no_such_clinic("--clinic", clinic), 2);
    auto rows = db.query(
        "SELECT a.id, a.name, a.role, s.name, a.can_receive, a.active FROM agents a "
        "LEFT JOIN stores s ON s.id = a.store_id WHERE a.clinic_id = ? ORDER BY a.name",
        {**clinic_id});
    if (!rows) return complain(what, "cannot read agents: " + why(db, rows.error()), 1);
    std::cout << "id\tname\trole\tstore\tonline_consultation\tactive\n";
    for (const auto& r : rows->rows) {
        std::cout << *r[0] << "\t" << *r[1] << "\t" << *r[2] << "\t" << (r[3] ? *r[3] : "-") << "\t"
                  << (*r[4] == "1" ? "yes" : "no") << "\t" << (*r[5] == "1" ? "yes" : "no") << "\n";
    }
    return 0;
}

int agent_deactivate(const config& cfg, const std::vector<std::string>& args) {
    const char* what = "agent deactivate";
    std::map<std::string, std::string> o;
    std::string error;
    if (!parse_options(args, 2, {"--clinic", "--name"}, {}, o, error))
        return complain(what, error, 2);
    for (const char* required : {"--clinic", "--name"}) {
        if (!o.count(required)) return complain(what, std::string(required) + " is required", 2);
    }
    const std::string clinic = o["--clinic"];
    const std::string name = o["--name"];
    storage::mysql_session db(mysql_options_from(cfg.mysql));
    auto clinic_id = find_clinic(db, clinic);
    if (!clinic_id) return complain(what, "cannot read clinics: " + why(db, clinic_id.error()), 1);
    if (!*clinic_id) return complain(what, no_such_clinic("--clinic", clinic), 2);
    auto agent = db.query("SELECT id, active FROM agents WHERE clinic_id = ? AND name = ?",
                          {**clinic_id, name});
    if (!agent) return complain(what, "cannot read agents: " + why(db, agent.error()), 1);
    if (agent->rows.empty()) {
        return complain(
            what, "--name: no agent named " + quoted(name) + " in clinic " + quoted(clinic), 2);
    }
    const std::string id = *agent->rows[0][0];
    if (*agent->rows[0][1] == "1") {
        auto r = db.execute("UPDATE agents SET active = 0 WHERE id = ?", {id});
        if (!r) return complain(what, "cannot update the agent: " + why(db, r.error()), 1);
        std::cout << "deactivated agent " << quoted(name) << " of clinic " << quoted(clinic);
    } else {
        std::cout << "agent " << quoted(name) << " of clinic " << quoted(clinic)
                  << " is already deactivated";
    }
    // Their fans keep them as owners until someone moves them: say how many.
    auto fans = db.query(
        "SELECT (SELECT COUNT(*) FROM fans WHERE consultant_agent_id = ?), "
        "(SELECT COUNT(*) FROM fans WHERE exclusive_agent_id = ?)",
        {id, id});
    if (fans && !fans->rows.empty() && (*fans->rows[0][0] != "0" || *fans->rows[0][1] != "0")) {
        std::cout << "; still named by " << *fans->rows[0][0] << " fan(s) as consultant and "
                  << *fans->rows[0][1]
                  << " as exclusive agent (move them with scrm-admin fan set-owner)";
    }
    std::cout << "\n";
    return 0;
}

}  // namespace

int cmd_agent(const config& cfg, const std::vector<std::string>& args) {
    const std::string sub = args.size() > 1 ? args[1] : "";
    if (sub == "add") return agent_add(cfg, args);
    if (sub == "list") return agent_list(cfg, args);
    if (sub == "deactivate") return agent_deactivate(cfg, args);
    return complain("agent", "expected \"add …\", \"list --clinic NAME\" or \"deactivate …\"", 2);
}

}  // namespace scrm::gateway

// scrm-admin clinic add|list and store add|list: the tenants and their stores (门店). Adding is
// idempotent: a name that exists is reported and left as it is.
#include <iostream>

#include "admin_commands.hpp"
#include "scrm/gateway/admin_requests.hpp"

namespace scrm::gateway {
namespace {

int clinic_add(const config& cfg, const std::vector<std::string>& args) {
    std::map<std::string, std::string> o;
    std::string error;
    if (!parse_options(args, 2, {"--name"}, {}, o, error)) return complain("clinic add", error, 2);
    if (!o.count("--name")) return complain("clinic add", "--name is required", 2);
    const std::string name = o["--name"];
    if (auto p = name_problem("--name", name, 128)) return complain("clinic add", *p, 2);

    storage::mysql_session db(mysql_options_from(cfg.mysql));
    auto added = db.execute("INSERT IGNORE INTO clinics (name) VALUES (?)", {name});
    if (!added)
        return complain("clinic add", "cannot store the clinic: " + why(db, added.error()), 1);
    // The collation compares names case-insensitively: report the name as stored.
    auto row = db.query("SELECT id, name FROM clinics WHERE name = ?", {name});
    if (!row || row->rows.empty()) return complain("clinic add", "cannot read the clinic back", 1);
    if (*added == 0) {
        std::cout << "clinic " << quoted(*row->rows[0][1]) << " already exists (id "
                  << *row->rows[0][0] << ")\n";
    } else {
        std::cout << "added clinic " << quoted(name) << " (id " << *row->rows[0][0] << ")\n";
    }
    return 0;
}

int clinic_list(const config& cfg) {
    storage::mysql_session db(mysql_options_from(cfg.mysql));
    auto rows = db.query(
        "SELECT c.id, c.name, "
        "(SELECT COUNT(*) FROM stores s WHERE s.clinic_id = c.id), "
        "(SELECT COUNT(*) FROM agents a WHERE a.clinic_id = c.id AND a.active = 1), "
        "(SELECT COUNT(*) FROM official_accounts o WHERE o.clinic_id = c.id) "
        "FROM clinics c ORDER BY c.name");
    if (!rows) return complain("clinic list", "cannot read clinics: " + why(db, rows.error()), 1);
    std::cout << "id\tname\tstores\tactive_agents\taccounts\n";
    for (const auto& r : rows->rows) {
        std::cout << *r[0] << "\t" << *r[1] << "\t" << *r[2] << "\t" << *r[3] << "\t" << *r[4]
                  << "\n";
    }
    return 0;
}

int store_add(const config& cfg, const std::vector<std::string>& args) {
    std::map<std::string, std::string> o;
    std::string error;
    if (!parse_options(args, 2, {"--clinic", "--name"}, {}, o, error)) {
        return complain("store add", error, 2);
    }
    for (const char* required : {"--clinic", "--name"}) {
        if (!o.count(required))
            return complain("store add", std::string(required) + " is required", 2);
    }
    const std::string clinic = o["--clinic"];
    const std::string name = o["--name"];
    if (auto p = name_problem("--clinic", clinic, 128)) return complain("store add", *p, 2);
    if (auto p = name_problem("--name", name, store_name_max)) return complain("store add", *p, 2);

    storage::mysql_session db(mysql_options_from(cfg.mysql));
    auto clinic_id = find_clinic(db, clinic);
    if (!clinic_id)
        return complain("store add", "cannot read clinics: " + why(db, clinic_id.error()), 1);
    if (!*clinic_id) return complain("store add", no_such_clinic("--clinic", clinic), 2);
    auto added = db.execute("INSERT IGNORE INTO stores (clinic_id, name) VALUES (?, ?)",
                            {**clinic_id, name});
    if (!added)
        return complain("store add", "cannot store the store: " + why(db, added.error()), 1);
    auto row = db.query("SELECT id, name FROM stores WHERE clinic_id = ? AND name = ?",
                        {**clinic_id, name});
    if (!row || row->rows.empty()) return complain("store add", "cannot read the store back", 1);
    if (*added == 0) {
        std::cout << "store " << quoted(*row->rows[0][1]) << " of clinic " << quoted(clinic)
                  << " already exists (id " << *row->rows[0][0] << ")\n";
    } else {
        std::cout << "added store " << quoted(name) << " to clinic " << quoted(clinic) << " (id "
                  << *row->rows[0][0] << ")\n";
    }
    return 0;
}

int store_list(const config& cfg, const std::vector<std::string>& args) {
    std::map<std::string, std::string> o;
    std::string error;
    if (!parse_options(args, 2, {"--clinic"}, {}, o, error))
        return complain("store list", error, 2);
    if (!o.count("--clinic")) return complain("store list", "--clinic is required", 2);
    const std::string clinic = o["--clinic"];
    storage::mysql_session db(mysql_options_from(cfg.mysql));
    auto clinic_id = find_clinic(db, clinic);
    if (!clinic_id)
        return complain("store list", "cannot read clinics: " + why(db, clinic_id.error()), 1);
    if (!*clinic_id) return complain("store list", no_such_clinic("--clinic", clinic), 2);
    auto rows = db.query(
        "SELECT s.id, s.name, "
        "(SELECT COUNT(*) FROM agents a WHERE a.store_id = s.id AND a.active = 1) "
        "FROM stores s WHERE s.clinic_id = ? ORDER BY s.name",
        {**clinic_id});
    if (!rows) return complain("store list", "cannot read stores: " + why(db, rows.error()), 1);
    std::cout << "id\tname\tactive_agents\n";
    for (const auto& r : rows->rows) std::cout << *r[0] << "\t" << *r[1] << "\t" << *r[2] << "\n";
    return 0;
}

}  // namespace

int cmd_clinic(const config& cfg, const std::vector<std::string>& args) {
    const std::string sub = args.size() > 1 ? args[1] : "";
    if (sub == "add") return clinic_add(cfg, args);
    if (sub == "list" && args.size() == 2) return clinic_list(cfg);
    return complain("clinic", "expected \"add --name NAME\" or \"list\"", 2);
}

int cmd_store(const config& cfg, const std::vector<std::string>& args) {
    const std::string sub = args.size() > 1 ? args[1] : "";
    if (sub == "add") return store_add(cfg, args);
    if (sub == "list") return store_list(cfg, args);
    return complain("store",
                    "expected \"add --clinic NAME --name STORE\" or \"list --clinic NAME\"", 2);
}

}  // namespace scrm::gateway

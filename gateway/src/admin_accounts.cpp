// scrm-admin account add|list: provisioning official accounts. Secrets are sealed with the master
// key (SCRM_MASTER_KEY) before they reach MySQL and are never printed.
#include <iostream>
#include <map>

#include "admin_commands.hpp"
#include "scrm/gateway/account.hpp"
#include "scrm/gateway/account_writer.hpp"
#include "scrm/gateway/secret_box.hpp"
#include "scrm/storage/mysql.hpp"

namespace scrm::gateway {
namespace {

int fail(const std::string& message) {
    std::cerr << "scrm-admin account: " << message << "\n";
    return 1;
}

int account_add(const config& cfg, const std::vector<std::string>& args) {
    std::map<std::string, std::string> o;
    std::string error;
    if (!parse_options(args, 2,
                       {"--clinic", "--appid", "--original-id", "--token", "--aes-key",
                        "--aes-key-previous", "--secret"},
                       {"--safe-mode-only"}, o, error)) {
        std::cerr << "scrm-admin account add: " << error << "\n";
        return 2;
    }
    account_input in;
    in.clinic = o["--clinic"];
    in.appid = o["--appid"];
    in.original_id = o["--original-id"];
    in.token = o["--token"];
    in.aes_key = o["--aes-key"];
    if (o.count("--aes-key-previous")) in.aes_key_previous = o["--aes-key-previous"];
    in.secret = o["--secret"];
    in.safe_mode_only = o.count("--safe-mode-only") > 0;
    const auto problems = validate_account(in);
    if (!problems.empty()) {
        std::cerr << "scrm-admin account add: invalid input:\n";
        for (const auto& p : problems) std::cerr << "  " << p << "\n";
        return 2;
    }
    auto box = secret_box::from_env();
    if (!box) {
        return fail(
            box.error() == errc::not_found
                ? "SCRM_MASTER_KEY is not set (64 hex digits; it seals the account's secrets)"
                : "SCRM_MASTER_KEY must be 64 hex digits");
    }

    storage::mysql_session db(mysql_options_from(cfg.mysql));
    // READ COMMITTED (begin_transaction): the FOR UPDATE below on an appid not stored yet would
    // otherwise lock the gap, and two accounts added at once then deadlock on their inserts.
    if (auto r = begin_transaction(db); !r)
        return fail("cannot reach MySQL: " + why(db, r.error()));
    if (auto r = db.execute("INSERT IGNORE INTO clinics (name) VALUES (?)", {in.clinic}); !r) {
        return fail("cannot store the clinic: " + r.error().message());
    }
    auto clinic = db.query("SELECT id FROM clinics WHERE name = ?", {in.clinic});
    if (!clinic || clinic->rows.empty()) return fail("cannot find the clinic just stored");

    auto written = write_account(db, *box, storage::sql_u64(clinic->rows[0][0]), in);
    if (!written) return fail("cannot store the account: " + why(db, written.error()));
    if (written->result == account_written::outcome::other_clinic) {
        db.rollback();
        return fail("appid " + in.appid + " belongs to another clinic; it is not moved");
    }
    if (auto r = db.commit(); !r) return fail("cannot commit: " + r.error().message());
    std::cout << (written->result == account_written::outcome::added ? "added" : "updated")
              << " account " << in.appid << " for clinic \"" << in.clinic << "\""
              << (in.safe_mode_only ? " (safe mode only)" : "") << "\n";
    return 0;
}

int account_list(const config& cfg) {
    storage::mysql_session db(mysql_options_from(cfg.mysql));
    auto rows = db.query(
        "SELECT a.appid, a.original_id, c.name, a.safe_mode_only, "
        "a.aes_key_previous_sealed IS NOT NULL, a.updated_at "
        "FROM official_accounts a JOIN clinics c ON c.id = a.clinic_id ORDER BY c.name, a.appid");
    if (!rows) return fail("cannot read accounts: " + rows.error().message());
    std::cout << "appid\toriginal_id\tclinic\tsafe_mode_only\tprevious_aes_key\tupdated_at\n";
    for (const auto& r : rows->rows) {
        std::cout << *r[0] << "\t" << *r[1] << "\t" << *r[2] << "\t"
                  << (*r[3] == "1" ? "yes" : "no") << "\t" << (*r[4] == "1" ? "yes" : "no") << "\t"
                  << *r[5] << "\n";
    }
    return 0;
}

}  // namespace

int cmd_account(const config& cfg, const std::vector<std::string>& args) {
    const std::string sub = args.size() > 1 ? args[1] : "";
    if (sub == "add") return account_add(cfg, args);
    if (sub == "list" && args.size() == 2) return account_list(cfg);
    std::cerr << "scrm-admin account: expected \"add …\" or \"list\"\n";
    return 2;
}

}  // namespace scrm::gateway

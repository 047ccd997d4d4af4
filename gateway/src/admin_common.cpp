// Helpers shared by scrm-admin's commands: option parsing, the rule for names, lookups by name.
#include <algorithm>
#include <iostream>

#include "admin_commands.hpp"

namespace scrm::gateway {

bool parse_options(const std::vector<std::string>& args, std::size_t first,
                   const std::vector<std::string>& with_value,
                   const std::vector<std::string>& flags, std::map<std::string, std::string>& out,
                   std::string& error) {
    for (std::size_t i = first; i < args.size(); ++i) {
        const std::string& a = args[i];
        const bool is_flag = std::find(flags.begin(), flags.end(), a) != flags.end();
        const bool takes_value =
            std::find(with_value.begin(), with_value.end(), a) != with_value.end();
        if (!is_flag && !takes_value) {
            error = "unexpected argument " + a;
            return false;
        }
        if (out.count(a) != 0) {
            error = a + " given twice";
            return false;
        }
        if (is_flag) {
            out[a] = "1";
        } else if (i + 1 >= args.size()) {
            error = a + " needs a value";
            return false;
        } else {
            out[a] = args[++i];
        }
    }
    return true;
}

std::string quoted(std::string_view text) {
    return "\"" + std::string(text) + "\"";
}

result<std::optional<std::string>> find_clinic(storage::mysql_session& db, const std::string& name,
                                               bool lock) {
    auto rows = db.query(lock ? "SELECT id FROM clinics WHERE name = ? FOR UPDATE"
                              : "SELECT id FROM clinics WHERE name = ?",
                         {name});
    if (!rows) return rows.error();
    if (rows->rows.empty()) return std::optional<std::string>();
    return std::optional<std::string>(*rows->rows[0][0]);
}

result<void> begin_transaction(storage::mysql_session& db) {
    if (auto r = db.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"); !r) {
        return r.error();
    }
    return db.begin();
}

std::string why(const storage::mysql_session& db, const boost::system::error_code& ec) {
    std::string text = ec.message();
    if (ec == errc::server_error && db.last_error().code != 0) {
        text += " (MySQL error " + std::to_string(db.last_error().code) + ")";
    }
    return text;
}

std::string no_such_clinic(std::string_view flag, const std::string& name) {
    return std::string(flag) + ": no clinic named " + quoted(name) +
           " (add it with: scrm-admin clinic add --name " + quoted(name) + ")";
}

int complain(std::string_view what, const std::string& message, int code) {
    std::cerr << "scrm-admin " << what << ": " << message << "\n";
    return code;
}

}  // namespace scrm::gateway

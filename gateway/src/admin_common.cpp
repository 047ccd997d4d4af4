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

std::optional<std::size_t> utf8_chars(std::string_view s) {
    std::size_t chars = 0;
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t len = 0;
        unsigned cp = 0;
        if (c < 0x80) {
            len = 1;
            cp = c;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1Fu;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0Fu;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07u;
        } else {
            return std::nullopt;
        }
        if (i + len > s.size()) return std::nullopt;
        for (std::size_t k = 1; k < len; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return std::nullopt;
            cp = (cp << 6) | (cc & 0x3Fu);
        }
        // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
        static constexpr unsigned min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_for_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return std::nullopt;
        }
        i += len;
        ++chars;
    }
    return chars;
}

std::optional<std::string> name_problem(std::string_view flag, std::string_view value,
                                        std::size_t max_chars) {
    const auto chars = utf8_chars(value);
    bool ok =
        chars && *chars >= 1 && *chars <= max_chars && value.front() != ' ' && value.back() != ' ';
    for (unsigned char c : value) {
        if (c < 0x20 || c == 0x7F) ok = false;
    }
    if (ok) return std::nullopt;
    return std::string(flag) + ": must be 1-" + std::to_string(max_chars) +
           " characters of UTF-8 text, without control characters or leading/trailing spaces";
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

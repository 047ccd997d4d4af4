// The migration runner: reads sql/NNN_name.sql, compares with schema_migrations, applies what is
// missing through a mysql_session (so it shares the connection and error handling of the pool).
#include "scrm/storage/migrations.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "scrm/common/log.hpp"

namespace scrm::storage {
namespace {

constexpr std::string_view create_table_sql =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version BIGINT UNSIGNED NOT NULL PRIMARY KEY,"
    " name VARCHAR(255) NOT NULL,"
    " checksum CHAR(16) NOT NULL,"
    " applied_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci";

constexpr int lock_wait_seconds = 60;

struct migration_file {
    std::uint64_t version = 0;
    std::string file_name;
    std::string text;
    std::string checksum;
};

struct recorded {
    std::string name;
    std::string checksum;
};

migration_report failed(migration_report rep, errc code, std::string message) {
    rep.error = make_error_code(code);
    rep.message = std::move(message);
    return rep;
}

std::string describe(const mysql_session& s) {
    const auto& e = s.last_error();
    std::string out = "MySQL error " + std::to_string(e.code);
    if (!e.message.empty()) out += ": " + e.message;
    return out;
}

bool is_space(char c) {
    return std::isspace(static_cast<unsigned char>(c)) != 0;
}

std::string trim(std::string_view s) {
    std::size_t b = 0, e = s.size();
    while (b < e && is_space(s[b])) ++b;
    while (e > b && is_space(s[e - 1])) --e;
    return std::string(s.substr(b, e - b));
}

// Parses "<digits>_<name>.sql"; nullopt if the name does not fit.
std::optional<std::uint64_t> parse_version(const std::string& name) {
    const auto underscore = name.find('_');
    if (underscore == 0 || underscore == std::string::npos) return std::nullopt;
    if (name.size() <= 4 || name.compare(name.size() - 4, 4, ".sql") != 0) return std::nullopt;
    if (underscore + 1 >= name.size() - 4) return std::nullopt;  // empty name part
    std::uint64_t v = 0;
    const char* first = name.data();
    const char* last = name.data() + underscore;
    auto [ptr, ec] = std::from_chars(first, last, v);
    if (ec != std::errc{} || ptr != last) return std::nullopt;
    return v;
}

// Reads the directory's migration files in version order, or says what is wrong.
std::optional<std::string> read_files(const std::filesystem::path& dir,
                                      std::vector<migration_file>& out) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
        return "migrations folder " + dir.string() + " does not exist";
    }
    std::map<std::uint64_t, migration_file> by_version;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        if (!entry.is_regular_file()) continue;
        const std::string name = entry.path().filename().string();
        if (entry.path().extension() != ".sql") continue;
        const auto version = parse_version(name);
        if (!version) {
            return name + ": migration files are named <version>_<name>.sql, e.g. 001_clinics.sql";
        }
        std::ifstream in(entry.path(), std::ios::binary);
        if (!in) return name + ": cannot be read";
        std::stringstream buf;
        buf << in.rdbuf();
        migration_file f;
        f.version = *version;
        f.file_name = name;
        f.text = buf.str();
        f.checksum = migration_checksum(f.text);
        if (auto [it, inserted] = by_version.emplace(*version, f); !inserted) {
            return name + " and " + it->second.file_name + " have the same version " +
                   std::to_string(*version);
        }
    }
    if (ec) return "cannot list " + dir.string() + ": " + ec.message();
    for (auto& [v, f] : by_version) out.push_back(std::move(f));
    return std::nullopt;
}

// Applies the files. The caller holds the migration lock.
migration_report apply_missing(mysql_session& s, const std::vector<migration_file>& files) {
    migration_report rep;
    if (auto r = s.execute(create_table_sql); !r) {
        return failed(std::move(rep), static_cast<errc>(r.error().value()),
                      "cannot create schema_migrations: " + describe(s));
    }
    auto rows = s.query("SELECT version, name, checksum FROM schema_migrations ORDER BY version");
    if (!rows) {
        return failed(std::move(rep), static_cast<errc>(rows.error().value()),
                      "cannot read schema_migrations: " + describe(s));
    }
    std::map<std::uint64_t, recorded> done;
    for (const auto& row : rows->rows) {
        std::uint64_t v = 0;
        const std::string& text = row[0].value_or("");
        std::from_chars(text.data(), text.data() + text.size(), v);
        done[v] = recorded{row[1].value_or(""), row[2].value_or("")};
    }

    // Validate everything before applying anything.
    for (const auto& [version, rec] : done) {
        const auto it =
            std::find_if(files.begin(), files.end(),
                         [v = version](const migration_file& f) { return f.version == v; });
        if (it == files.end()) {
            return failed(std::move(rep), errc::conflict,
                          "migration " + rec.name + " (version " + std::to_string(version) +
                              ") is recorded in the database but its file is missing: the "
                              "database is newer than this sql folder");
        }
        if (it->file_name != rec.name) {
            return failed(std::move(rep), errc::conflict,
                          it->file_name + ": version " + std::to_string(version) +
                              " was applied as " + rec.name);
        }
        if (it->checksum != rec.checksum) {
            return failed(std::move(rep), errc::conflict,
                          it->file_name + " was changed after it was applied (checksum " +
                              it->checksum + ", recorded " + rec.checksum +
                              "); add a new migration instead");
        }
    }

    const std::uint64_t highest = done.empty() ? 0 : done.rbegin()->first;
    for (const auto& f : files) {
        if (done.count(f.version)) {
            rep.unchanged.push_back(f.file_name);
            continue;
        }
        if (f.version < highest) {
            log::warn("migrations.out_of_order", {{"file", f.file_name}});
        }
        const auto statements = split_sql_statements(f.text);
        for (std::size_t i = 0; i < statements.size(); ++i) {
            if (auto r = s.execute(statements[i]); !r) {
                return failed(std::move(rep), static_cast<errc>(r.error().value()),
                              f.file_name + ": statement " + std::to_string(i + 1) + " of " +
                                  std::to_string(statements.size()) + " failed: " + describe(s));
            }
        }
        auto r =
            s.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)",
                      {f.version, f.file_name, f.checksum});
        if (!r) {
            return failed(std::move(rep), static_cast<errc>(r.error().value()),
                          f.file_name + " was applied but could not be recorded: " + describe(s));
        }
        log::info("migrations.applied", {{"file", f.file_name}});
        rep.applied.push_back(f.file_name);
    }
    return rep;
}

}  // namespace

std::string migration_checksum(std::string_view text) {
    std::uint64_t h = 1469598103934665603ULL;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
        h ^= static_cast<unsigned char>(text[i]);
        h *= 1099511628211ULL;
    }
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(16, '0');
    for (int i = 15; i >= 0; --i) {
        out[static_cast<std::size_t>(i)] = digits[h & 0xf];
        h >>= 4;
    }
    return out;
}

std::vector<std::string> split_sql_statements(std::string_view text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    bool has_code = false;  // the current piece holds something besides comments and spaces
    const std::size_t n = text.size();
    auto flush = [&](std::size_t end) {
        if (has_code) out.push_back(trim(text.substr(start, end - start)));
        has_code = false;
    };
    std::size_t i = 0;
    while (i < n) {
        const char c = text[i];
        if (c == '\'' || c == '"' || c == '`') {
            has_code = true;
            ++i;
            while (i < n) {
                if (text[i] == '\\' && c != '`' && i + 1 < n) {
                    i += 2;
                } else if (text[i] == c) {
                    if (i + 1 < n && text[i + 1] == c) {
                        i += 2;  // doubled quote
                    } else {
                        ++i;
                        break;
                    }
                } else {
                    ++i;
                }
            }
        } else if (c == '#' || (c == '-' && i + 1 < n && text[i + 1] == '-' &&
                                (i + 2 >= n || is_space(text[i + 2])))) {
            while (i < n && text[i] != '\n') ++i;
        } else if (c == '/' && i + 1 < n && text[i + 1] == '*') {
            // /*! … */ is executable in MariaDB: it counts as code.
            if (text.substr(i + 2, 1) == "!" || text.substr(i + 2, 2) == "M!") has_code = true;
            i += 2;
            while (i + 1 < n && !(text[i] == '*' && text[i + 1] == '/')) ++i;
            i = std::min(n, i + 2);
        } else if (c == ';') {
            flush(i);
            start = ++i;
        } else {
            if (!is_space(c)) has_code = true;
            ++i;
        }
    }
    flush(n);
    return out;
}

migration_report migrate(mysql_session& s, const std::filesystem::path& sql_dir) {
    std::vector<migration_file> files;
    if (auto problem = read_files(sql_dir, files)) {
        return failed({}, errc::bad_input, *problem);
    }
    auto lock = s.query("SELECT GET_LOCK('scrm.migrations', ?)",
                        {static_cast<std::int64_t>(lock_wait_seconds)});
    if (!lock) {
        return failed({}, static_cast<errc>(lock.error().value()),
                      "cannot reach MySQL: " + describe(s));
    }
    if (lock->rows.empty() || lock->rows[0][0].value_or("0") != "1") {
        return failed({}, errc::timeout,
                      "another migration run holds the lock 'scrm.migrations' (waited " +
                          std::to_string(lock_wait_seconds) + " s)");
    }
    migration_report rep = apply_missing(s, files);
    (void)s.query("SELECT RELEASE_LOCK('scrm.migrations')");
    if (rep.ok()) {
        log::info("migrations.done",
                  {{"applied", static_cast<std::uint64_t>(rep.applied.size())},
                   {"unchanged", static_cast<std::uint64_t>(rep.unchanged.size())}});
    } else {
        log::error("migrations.failed",
                   {{"applied", static_cast<std::uint64_t>(rep.applied.size())},
                    {"error", rep.error.message()}});
    }
    return rep;
}

migration_report migrate(const mysql_options& opts, const std::filesystem::path& sql_dir) {
    mysql_options o = opts;
    o.read_timeout = std::max<std::chrono::milliseconds>(o.read_timeout, std::chrono::minutes(10));
    mysql_session s(std::move(o));
    return migrate(s, sql_dir);
}

boost::asio::awaitable<migration_report> migrate(mysql_pool& pool, std::filesystem::path sql_dir) {
    auto fn = [dir = std::move(sql_dir)](mysql_session& s) -> result<migration_report> {
        return migrate(s, dir);
    };
    auto r = co_await pool.run(std::move(fn));
    if (!r) {
        migration_report rep;
        rep.error = r.error();
        rep.message = "the MySQL pool refused the request: " + r.error().message();
        co_return rep;
    }
    co_return std::move(*r);
}

}  // namespace scrm::storage

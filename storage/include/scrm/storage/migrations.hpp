// The schema migration runner: applies sql/NNN_name.sql files in numeric order, each recorded in
// the schema_migrations table, so that running it again is a no-op. Used by `scrm-admin migrate`
// (and through it by scripts/services up).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "scrm/storage/mysql.hpp"

namespace scrm::storage {

// The outcome of a run. On failure, `applied` still lists what this run applied before the
// failing file (MariaDB DDL commits at once, so each migration is recorded right after it ran).
struct migration_report {
    std::vector<std::string> applied;    // file names applied by this run, in order
    std::vector<std::string> unchanged;  // file names applied by an earlier run
    boost::system::error_code error;     // empty on success
    std::string message;                 // for the operator: names the file and the cause

    bool ok() const { return !error; }
};

// Rules:
// - Files are named <version>_<name>.sql, version decimal digits (e.g. 001_clinics.sql); other
//   *.sql names, and two files with the same version, are errors (errc::bad_input). Files not
//   ending in .sql are ignored.
// - A file already applied must be unchanged (FNV-1a 64 checksum of its text, CRLF read as LF);
//   a changed one, or a recorded version whose file is gone, is errc::conflict and nothing is
//   applied.
// - A file holds one or more statements separated by `;` (outside quotes and comments); each runs
//   as a prepared statement, so no DELIMITER / stored-program bodies. A file that fails midway is
//   not recorded and its earlier statements stay applied: prefer one DDL statement per file, or
//   idempotent forms (CREATE TABLE IF NOT EXISTS, ADD COLUMN IF NOT EXISTS).
// - Runs hold GET_LOCK('scrm.migrations') so that concurrent runners apply each file once.
// Errors: errc::unavailable / timeout (server), errc::server_error (a statement failed; the
// message quotes the server's message — migration SQL carries no patient data).
migration_report migrate(mysql_session& session, const std::filesystem::path& sql_dir);

// Synchronous entry point for CLIs: connects on the calling thread (blocking). The read timeout is
// raised to at least 10 minutes: DDL on a large table is slow, and a timed-out DDL would go on
// running on the server anyway.
migration_report migrate(const mysql_options& opts, const std::filesystem::path& sql_dir);

// The same on one of the pool's workers.
boost::asio::awaitable<migration_report> migrate(mysql_pool& pool, std::filesystem::path sql_dir);

// Pure helpers, exposed for tests.
// Splits a file's text into statements at `;` outside '…', "…", `…`, -- / # line comments and
// /* */ comments; drops empty and comment-only pieces; trims whitespace.
std::vector<std::string> split_sql_statements(std::string_view text);
// 16 lowercase hex digits.
std::string migration_checksum(std::string_view text);

}  // namespace scrm::storage

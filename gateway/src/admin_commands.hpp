// scrm-admin's commands, one function each; admin_main.cpp dispatches on the first argument. Also
// the small helpers they share (admin_common.cpp): option parsing, input rules, lookups by name.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scrm/gateway/config.hpp"
#include "scrm/gateway/services.hpp"
#include "scrm/gateway/text_rules.hpp"
#include "scrm/storage/mysql.hpp"

namespace scrm::gateway {

// args[0] is the command name. Exit codes: 0 done (or already so), 1 the operation failed (MySQL
// unreachable, a secret missing), 2 bad input — with nothing changed.
int cmd_migrate(const config& cfg, const std::vector<std::string>& args);
int cmd_account(const config& cfg, const std::vector<std::string>& args);
int cmd_clinic(const config& cfg, const std::vector<std::string>& args);
int cmd_store(const config& cfg, const std::vector<std::string>& args);
int cmd_agent(const config& cfg, const std::vector<std::string>& args);
int cmd_fan(const config& cfg, const std::vector<std::string>& args);
int cmd_routing(const config& cfg, const std::vector<std::string>& args);
int cmd_template(const config& cfg, const std::vector<std::string>& args);
int cmd_apikey(const config& cfg, const std::vector<std::string>& args);
int cmd_evaluation(const config& cfg, const std::vector<std::string>& args);

// Parses "--name value" pairs and bare flags from args[first…] into `out` (a flag's value is
// "1"). An unknown name, a missing value or a name given twice is an error (false, `error` set).
bool parse_options(const std::vector<std::string>& args, std::size_t first,
                   const std::vector<std::string>& with_value,
                   const std::vector<std::string>& flags, std::map<std::string, std::string>& out,
                   std::string& error);

// `"text"` with quotes, for messages.
std::string quoted(std::string_view text);

// The id of the clinic named `name` (the collation compares case-insensitively), nullopt if none.
// With `lock`, the clinic's row is locked until the transaction ends: scrm-admin's writes to one
// clinic's agents, fans and routing take this lock first, so they run one at a time.
result<std::optional<std::string>> find_clinic(storage::mysql_session& db, const std::string& name,
                                               bool lock = false);

// Starts a READ COMMITTED transaction. Under InnoDB's default REPEATABLE READ, a locking read of
// a row that does not exist yet locks the gap, and two sessions adding rows to different clinics
// then deadlock on their inserts; READ COMMITTED takes no gap locks, and the clinic lock above
// gives the order that matters.
result<void> begin_transaction(storage::mysql_session& db);

// An error for operators: the errc's text and, for SQL errors, the server's error number (not its
// message, which may quote data).
std::string why(const storage::mysql_session& db, const boost::system::error_code& ec);

// "--clinic: no clinic named "X" (add it with scrm-admin clinic add --name …)".
std::string no_such_clinic(std::string_view flag, const std::string& name);

// Prints "scrm-admin <what>: <message>" to stderr and returns `code`.
int complain(std::string_view what, const std::string& message, int code);

}  // namespace scrm::gateway

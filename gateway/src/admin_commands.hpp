// scrm-admin's commands, one function each; admin_main.cpp dispatches on the first argument.
#pragma once

#include <string>
#include <vector>

#include "scrm/gateway/config.hpp"
#include "scrm/gateway/services.hpp"
#include "scrm/storage/mysql.hpp"

namespace scrm::gateway {

// args[0] is the command name.
int cmd_migrate(const config& cfg, const std::vector<std::string>& args);
int cmd_account(const config& cfg, const std::vector<std::string>& args);

}  // namespace scrm::gateway

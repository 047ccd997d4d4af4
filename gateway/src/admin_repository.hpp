// The SQL of the admin endpoints, one function per step, each on a MySQL session inside the
// caller's transaction (they run inside mysql_pool::run, on its workers): the clinic's lock,
// agents and fans of a reassignment, fan owner updates, the audit log's pages. HTTP never
// touches SQL; this never touches HTTP.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "scrm/common/error.hpp"
#include "scrm/gateway/admin_requests.hpp"

namespace scrm::storage {
class mysql_session;
}

namespace scrm::gateway {

// Rolls back what is still open when a step fails or refuses (the pool would too, with a
// warning in the log).
struct rollback_guard {
    storage::mysql_session& db;
    ~rollback_guard();
};

// Starts a READ COMMITTED transaction (locking reads then lock only the rows they return, and
// take no gap locks) and locks the clinic's row: the admin API's and scrm-admin's writes to one
// clinic run one at a time. errc::not_found when the clinic does not exist.
result<void> begin_clinic_change(storage::mysql_session& db, std::uint64_t clinic);

struct admin_agent {
    std::uint64_t id = 0;
    std::string name;
    bool active = false;
    bool can_receive = false;
};
// The clinic's agents among `ids` (others are missing from the map), locked in share mode: a
// concurrent change of one waits for this transaction.
result<std::map<std::uint64_t, admin_agent>> agents_of(storage::mysql_session& db,
                                                       std::uint64_t clinic,
                                                       const std::vector<std::uint64_t>& ids);

// The fans of the clinic whose `role` belongs to one of `from`, by fans.id (the documented
// order), locked for update when `lock`.
result<std::vector<reassign_fan>> fans_of(storage::mysql_session& db, std::uint64_t clinic,
                                          owner_role role, const std::vector<std::uint64_t>& from,
                                          bool lock);

// Sets the role's owner of each fan to its plan entry (nullopt clears), and appends one audit row
// per fan whose owner changed ("fan.owner", subject "<account>/<openid>"). How many changed.
result<std::size_t> write_owners(storage::mysql_session& db, std::uint64_t clinic,
                                 std::uint64_t admin, owner_role role,
                                 const std::vector<reassign_fan>& fans,
                                 const std::vector<std::optional<std::uint64_t>>& plan);

struct audit_row {
    std::uint64_t id = 0;
    std::string at;  // UTC "YYYY-MM-DD hh:mm:ss[.ffffff]"
    std::string actor;
    std::optional<std::uint64_t> agent;
    std::optional<std::string> agent_name;
    std::string action, subject;
    std::optional<std::string> detail;
};
// A page of the clinic's audit log, newest first.
result<std::vector<audit_row>> audit_page(storage::mysql_session& db, std::uint64_t clinic,
                                          const audit_query& q);

}  // namespace scrm::gateway

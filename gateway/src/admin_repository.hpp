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

// ---- people and places ---------------------------------------------------------------------

// A failed statement's error is a duplicate key (errc::conflict): a unique name already taken.
bool duplicate_key(const boost::system::error_code& ec);

struct agent_listing {
    std::uint64_t id = 0;
    std::string name, role;
    std::optional<std::uint64_t> store;
    bool can_receive = false;
    bool active = false;
};
// The clinic's agents by name (only `only` when given), locked for update when `lock`.
result<std::vector<agent_listing>> clinic_agents(storage::mysql_session& db, std::uint64_t clinic,
                                                 std::optional<std::uint64_t> only = std::nullopt,
                                                 bool lock = false);
// Whether `store` is one of the clinic's stores (locked in share mode: it cannot go meanwhile).
result<bool> clinic_has_store(storage::mysql_session& db, std::uint64_t clinic,
                              std::uint64_t store);
// A new agent with the password's stored form: its id, or nullopt when the name is taken.
result<std::optional<std::uint64_t>> insert_agent(storage::mysql_session& db, std::uint64_t clinic,
                                                  const agent_create& a,
                                                  const std::string& password_hash);
// Writes role, store and permission of `a` (an agent of the clinic).
result<void> update_agent(storage::mysql_session& db, std::uint64_t clinic, const agent_listing& a);
result<void> set_agent_password(storage::mysql_session& db, std::uint64_t clinic,
                                std::uint64_t agent, const std::string& password_hash);

struct store_qr {
    std::uint64_t account_id = 0;
    std::string appid, scene, ticket, url;
};
struct store_listing {
    std::uint64_t id = 0;
    std::string name;
    std::uint64_t active_agents = 0;
    std::vector<store_qr> qr_codes;  // by account id
};
// The clinic's stores by name (only `only` when given; locked for update when `lock`), each with
// its QR codes.
result<std::vector<store_listing>> clinic_stores(storage::mysql_session& db, std::uint64_t clinic,
                                                 std::optional<std::uint64_t> only = std::nullopt,
                                                 bool lock = false);
// A new store: its id, or nullopt when the name is taken.
result<std::optional<std::uint64_t>> insert_store(storage::mysql_session& db, std::uint64_t clinic,
                                                  const std::string& name);
// Renames the clinic's store: false when the name is taken by another.
result<bool> rename_store(storage::mysql_session& db, std::uint64_t clinic, std::uint64_t store,
                          const std::string& name);
// The clinic's official account's appid, nullopt when `account` is not the clinic's.
result<std::optional<std::string>> clinic_account_appid(storage::mysql_session& db,
                                                        std::uint64_t clinic,
                                                        std::uint64_t account);
result<void> save_store_qr(storage::mysql_session& db, std::uint64_t store, const store_qr& qr);

struct account_listing {
    std::uint64_t id = 0;
    std::string appid, original_id;
    bool safe_mode_only = false;
    bool previous_aes_key = false;  // a rotation's previous EncodingAESKey is kept
    std::string updated_at;         // UTC "YYYY-MM-DD hh:mm:ss[.ffffff]"
};
// The clinic's official accounts by appid (only `only` when given) — never their secrets.
result<std::vector<account_listing>> clinic_accounts(
    storage::mysql_session& db, std::uint64_t clinic,
    std::optional<std::uint64_t> only = std::nullopt);

struct health_row {
    std::uint64_t account_id = 0;
    int errcode = 0;
    std::uint64_t count = 0;  // outbox rows whose last attempt ended with it
    std::string last_at;      // UTC "YYYY-MM-DD hh:mm:ss[.ffffff]"
    std::string last_error;   // the latest such row's reason (WeChat's errmsg; no message text)
};
// The errcodes of person_needed_errors() the clinic's outbox rows ended their last attempt with
// in the last `days` days, per account, newest first.
result<std::vector<health_row>> account_health(storage::mysql_session& db, std::uint64_t clinic,
                                               std::uint32_t days);

// The clinic's message retention in days (nullopt: for ever), locked for update when `lock`.
result<std::optional<std::uint32_t>> clinic_retention(storage::mysql_session& db,
                                                      std::uint64_t clinic, bool lock = false);
result<void> set_clinic_retention(storage::mysql_session& db, std::uint64_t clinic,
                                  std::optional<std::uint32_t> days);

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

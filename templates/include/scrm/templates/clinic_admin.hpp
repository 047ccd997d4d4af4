// What scrm-admin (`template set`, `apikey add|list|revoke`) and the admin API
// (/api/admin/templates, /api/admin/api-keys) both do to a clinic's template settings and API keys:
// one implementation of the SQL, on the caller's session and inside the caller's transaction (the
// callers take the clinic's row lock first and write the audit row before committing).
// Synchronous (Connector/C++): call it on the MySQL pool's workers or in scrm-admin.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scrm/common/error.hpp"
#include "scrm/templates/setting.hpp"

namespace scrm::storage {
class mysql_session;
}

namespace scrm::templates {

// Inserts or replaces the clinic's setting of `s.kind`. `s` must be valid (validate() found
// nothing): this stores it as given.
result<void> store_setting(storage::mysql_session& db, std::uint64_t clinic,
                           const template_setting& s);

// An API key as people see it; never the key itself nor its hash.
struct api_key_info {
    std::uint64_t id = 0;
    std::string name;
    std::string prefix;      // the key's first 10 characters ("sk_…")
    std::string created_at;  // UTC "YYYY-MM-DD hh:mm:ss.fff"
    std::optional<std::string> revoked_at;
};

// The clinic's keys by name.
result<std::vector<api_key_info>> list_api_keys(storage::mysql_session& db, std::uint64_t clinic);

// The clinic's key named `name` / with id `id`; nullopt when none. With `lock`, the row is locked
// (FOR UPDATE) until the transaction ends.
result<std::optional<api_key_info>> find_api_key(storage::mysql_session& db, std::uint64_t clinic,
                                                 std::string_view name, bool lock);
result<std::optional<api_key_info>> find_api_key_by_id(storage::mysql_session& db,
                                                       std::uint64_t clinic, std::uint64_t id,
                                                       bool lock);

struct added_api_key {
    api_key_info info;
    std::string key;  // shown once, to whoever asked; only its SHA-256 is stored
};
// A new key named `name` (a valid name: text_rules' valid_name, at most 64 characters) for the
// clinic. errc::conflict when the clinic has a key of that name (revoked or not), errc::unavailable
// when the random source fails.
result<added_api_key> add_api_key(storage::mysql_session& db, std::uint64_t clinic,
                                  const std::string& name);

// Revokes the clinic's key `id` (it stops working at once); false when it was revoked already.
result<bool> revoke_api_key(storage::mysql_session& db, std::uint64_t clinic, std::uint64_t id);

}  // namespace scrm::templates

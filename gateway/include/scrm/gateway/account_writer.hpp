// Storing official accounts: scrm-admin account add and the admin API both write through here,
// inside a transaction the caller holds (READ COMMITTED, so the locking read of an appid not
// stored yet takes no gap lock). Secrets are sealed with the master key before they reach MySQL
// (context "official_accounts.<field>:<appid>") and opened only to carry them over.
#pragma once

#include <cstdint>
#include <optional>

#include "scrm/common/error.hpp"
#include "scrm/gateway/account.hpp"

namespace scrm::storage {
class mysql_session;
}

namespace scrm::gateway {

class secret_box;

struct account_written {
    enum class outcome { added, updated, other_clinic };
    outcome result = outcome::added;
    std::uint64_t id = 0;  // official_accounts.id (0 for other_clinic)
};

// Adds `in` (already validated) to clinic `clinic`, or updates the clinic's account with that
// appid; an appid of another clinic is left alone (other_clinic). A new EncodingAESKey keeps the
// one it replaces as "previous" unless in.aes_key_previous says otherwise, so messages WeChat
// encrypted before the switch still open (key rotation). Does not commit. errc::conflict when the
// appid was stored by another transaction meanwhile (nothing written: the caller may retry).
result<account_written> write_account(storage::mysql_session& db, const secret_box& box,
                                      std::uint64_t clinic, const account_input& in);

// The clinic's account `id` with its secrets opened (clinic left empty), locked for update:
// the base that a partial update changes. nullopt when it is not the clinic's; errc::conflict
// when a secret does not open (another master key).
result<std::optional<account_input>> read_account(storage::mysql_session& db, const secret_box& box,
                                                  std::uint64_t clinic, std::uint64_t id);

}  // namespace scrm::gateway

// The audit log (sql/007_audit_and_patients.sql, DESIGN.md §6): one append-only table for who
// changed an owner or a setting and who read which conversation. Appends run on a session the
// caller holds, so a change and its audit row commit (or roll back) together.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "scrm/common/error.hpp"

namespace scrm::storage {
class mysql_session;
}

namespace scrm::gateway {

struct audit_entry {
    std::uint64_t clinic = 0;
    std::optional<std::uint64_t> agent;  // the agent who acted; nullopt: an operator or a system
    std::string actor = "agent";         // 'agent', 'scrm-admin', 'integration', 'system'
    std::string action;                  // dotted, e.g. "conversation.read", "fan.owner"
    std::string subject;                 // e.g. "<account>/<openid>"; at most 191 characters
    std::string detail_json;             // a JSON object (before/after); empty: none. No secrets.
};

// Appends `e` on `db` (inside the caller's transaction, if one is open).
result<void> append_audit(storage::mysql_session& db, const audit_entry& e);

}  // namespace scrm::gateway

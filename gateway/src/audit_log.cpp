// See audit_log.hpp.
#include "scrm/gateway/audit_log.hpp"

#include <vector>

#include "scrm/storage/mysql.hpp"

namespace scrm::gateway {

result<void> append_audit(storage::mysql_session& db, const audit_entry& e) {
    std::vector<storage::sql_value> p{e.clinic};
    if (e.agent) {
        p.emplace_back(*e.agent);
    } else {
        p.emplace_back(std::monostate{});
    }
    p.emplace_back(e.actor);
    p.emplace_back(e.action);
    p.emplace_back(e.subject);
    if (e.detail_json.empty()) {
        p.emplace_back(std::monostate{});
    } else {
        p.emplace_back(e.detail_json);
    }
    auto r = db.execute(
        "INSERT INTO audit_log (clinic_id, actor_agent_id, actor, action, subject, detail) VALUES "
        "(?, ?, ?, ?, ?, ?)",
        p);
    if (!r) return r.error();
    return {};
}

}  // namespace scrm::gateway

// See admin_repository.hpp. Prepared statements with bound parameters; the only text spliced
// into SQL is fixed fragments chosen here and integer ids (storage::and_in).
#include "admin_repository.hpp"

#include "scrm/gateway/audit_log.hpp"
#include "scrm/gateway/http.hpp"
#include "scrm/storage/mysql.hpp"

namespace scrm::gateway {

using storage::sql_u64;
using storage::sql_value;

namespace {

std::string id_or_null(const std::optional<std::uint64_t>& id) {
    return id ? std::to_string(*id) : "null";
}

}  // namespace

rollback_guard::~rollback_guard() {
    if (db.in_transaction()) (void)db.rollback();
}

result<void> begin_clinic_change(storage::mysql_session& db, std::uint64_t clinic) {
    // Without SESSION: this transaction only; the pooled connection keeps its default after.
    if (auto r = db.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED"); !r) return r.error();
    if (auto r = db.begin(); !r) return r.error();
    std::vector<sql_value> p{clinic};
    auto rows = db.query("SELECT id FROM clinics WHERE id = ? FOR UPDATE", p);
    if (!rows) return rows.error();
    if (rows->rows.empty()) return make_error_code(errc::not_found);
    return {};
}

result<std::map<std::uint64_t, admin_agent>> agents_of(storage::mysql_session& db,
                                                       std::uint64_t clinic,
                                                       const std::vector<std::uint64_t>& ids) {
    std::map<std::uint64_t, admin_agent> out;
    if (ids.empty()) return out;
    std::vector<sql_value> p{clinic};
    auto rows = db.query("SELECT id, name, active, can_receive FROM agents WHERE clinic_id = ?" +
                             storage::and_in("id", ids) + " LOCK IN SHARE MODE",
                         p);
    if (!rows) return rows.error();
    for (const auto& r : rows->rows) {
        admin_agent a{sql_u64(r[0]), r[1].value_or(""), sql_u64(r[2]) != 0, sql_u64(r[3]) != 0};
        out.emplace(a.id, std::move(a));
    }
    return out;
}

result<std::vector<reassign_fan>> fans_of(storage::mysql_session& db, std::uint64_t clinic,
                                          owner_role role, const std::vector<std::uint64_t>& from,
                                          bool lock) {
    std::vector<reassign_fan> out;
    if (from.empty()) return out;
    const std::string column = std::string("f.") + owner_column(role);
    std::vector<sql_value> p{clinic};
    auto rows =
        db.query("SELECT f.id, f.account_id, f.openid, " + column +
                     " FROM fans f JOIN official_accounts a ON a.id = f.account_id "
                     "WHERE a.clinic_id = ?" +
                     storage::and_in(column, from) + " ORDER BY f.id" + (lock ? " FOR UPDATE" : ""),
                 p);
    if (!rows) return rows.error();
    out.reserve(rows->rows.size());
    for (const auto& r : rows->rows) {
        out.push_back({sql_u64(r[0]), sql_u64(r[1]), r[2].value_or(""), sql_u64(r[3])});
    }
    return out;
}

result<std::size_t> write_owners(storage::mysql_session& db, std::uint64_t clinic,
                                 std::uint64_t admin, owner_role role,
                                 const std::vector<reassign_fan>& fans,
                                 const std::vector<std::optional<std::uint64_t>>& plan) {
    // One UPDATE per receiver (and one for the cleared): the ids are integers, spliced.
    std::map<std::optional<std::uint64_t>, std::vector<std::uint64_t>> by_receiver;
    std::size_t changed = 0;
    for (std::size_t i = 0; i < fans.size() && i < plan.size(); ++i) {
        if (plan[i] == fans[i].owner) continue;
        by_receiver[plan[i]].push_back(fans[i].id);
        ++changed;
    }
    for (const auto& [to, ids] : by_receiver) {
        std::vector<sql_value> p;
        if (to) {
            p.emplace_back(*to);
        } else {
            p.emplace_back(std::monostate{});
        }
        auto r = db.execute(std::string("UPDATE fans SET ") + owner_column(role) + " = ? WHERE " +
                                storage::and_in("id", ids).substr(5),
                            p);
        if (!r) return r.error();
    }
    for (std::size_t i = 0; i < fans.size() && i < plan.size(); ++i) {
        if (plan[i] == fans[i].owner) continue;
        audit_entry e;
        e.clinic = clinic;
        e.agent = admin;
        e.action = "fan.owner";
        e.subject = std::to_string(fans[i].account_id) + "/" + fans[i].openid;
        e.detail_json = std::string("{\"role\":\"") + to_string(role) +
                        "\",\"before\":" + std::to_string(fans[i].owner) +
                        ",\"after\":" + id_or_null(plan[i]) + ",\"by\":\"reassign\"}";
        if (auto r = append_audit(db, e); !r) return r.error();
    }
    return changed;
}

result<std::vector<audit_row>> audit_page(storage::mysql_session& db, std::uint64_t clinic,
                                          const audit_query& q) {
    std::string sql =
        "SELECT l.id, l.created_at, l.actor, l.actor_agent_id, a.name, l.action, l.subject, "
        "l.detail FROM audit_log l LEFT JOIN agents a ON a.id = l.actor_agent_id "
        "WHERE l.clinic_id = ?";
    std::vector<sql_value> p{clinic};
    if (q.action) {
        if (!q.action->empty() && q.action->back() == '.') {
            // A prefix: '_' is a LIKE wildcard, so escaped ('.' and the rest are literal).
            std::string like;
            for (char c : *q.action) {
                if (c == '_') like += '\\';
                like += c;
            }
            sql += " AND l.action LIKE ?";
            p.emplace_back(like + "%");
        } else {
            sql += " AND l.action = ?";
            p.emplace_back(*q.action);
        }
    }
    if (q.before) {
        sql += " AND l.id < ?";
        p.emplace_back(*q.before);
    }
    sql += " ORDER BY l.id DESC LIMIT ?";
    p.emplace_back(static_cast<std::int64_t>(q.limit));
    auto rows = db.query(sql, p);
    if (!rows) return rows.error();
    std::vector<audit_row> out;
    out.reserve(rows->rows.size());
    for (const auto& r : rows->rows) {
        audit_row a;
        a.id = sql_u64(r[0]);
        a.at = r[1].value_or("");
        a.actor = r[2].value_or("");
        if (r[3]) a.agent = sql_u64(r[3]);
        a.agent_name = r[4];
        a.action = r[5].value_or("");
        a.subject = r[6].value_or("");
        a.detail = r[7];
        out.push_back(std::move(a));
    }
    return out;
}

}  // namespace scrm::gateway

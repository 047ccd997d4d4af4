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

bool duplicate_key(const boost::system::error_code& ec) {
    return ec == errc::conflict;  // the session's mapping of 1062 / 1586
}

namespace {

std::optional<std::uint64_t> optional_id(const std::optional<std::string>& v) {
    if (!v) return std::nullopt;
    return sql_u64(v);
}

sql_value id_or_sql_null(const std::optional<std::uint64_t>& id) {
    return id ? sql_value(*id) : sql_value(std::monostate{});
}

}  // namespace

result<std::vector<agent_listing>> clinic_agents(storage::mysql_session& db, std::uint64_t clinic,
                                                 std::optional<std::uint64_t> only, bool lock) {
    std::vector<sql_value> p{clinic};
    std::string sql =
        "SELECT id, name, role, store_id, can_receive, active FROM agents WHERE clinic_id = ?";
    if (only) {
        sql += " AND id = ?";
        p.emplace_back(*only);
    }
    sql += lock ? " FOR UPDATE" : " ORDER BY name, id";
    auto rows = db.query(sql, p);
    if (!rows) return rows.error();
    std::vector<agent_listing> out;
    for (const auto& r : rows->rows) {
        out.push_back({sql_u64(r[0]), r[1].value_or(""), r[2].value_or(""), optional_id(r[3]),
                       sql_u64(r[4]) != 0, sql_u64(r[5]) != 0});
    }
    return out;
}

result<bool> clinic_has_store(storage::mysql_session& db, std::uint64_t clinic,
                              std::uint64_t store) {
    std::vector<sql_value> p{store, clinic};
    auto rows =
        db.query("SELECT id FROM stores WHERE id = ? AND clinic_id = ? LOCK IN SHARE MODE", p);
    if (!rows) return result<bool>(boost::system::in_place_error, rows.error());
    return !rows->rows.empty();
}

result<std::optional<std::uint64_t>> insert_agent(storage::mysql_session& db, std::uint64_t clinic,
                                                  const agent_create& a,
                                                  const std::string& password_hash) {
    std::vector<sql_value> p{
        clinic,       id_or_sql_null(a.store), a.name, a.role, std::int64_t{a.can_receive ? 1 : 0},
        password_hash};
    auto r = db.query(
        "INSERT INTO agents (clinic_id, store_id, name, role, can_receive, password_hash) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        p);
    if (!r) {
        if (duplicate_key(r.error())) return std::optional<std::uint64_t>();
        return r.error();
    }
    return std::optional<std::uint64_t>(r->last_insert_id);
}

result<void> update_agent(storage::mysql_session& db, std::uint64_t clinic,
                          const agent_listing& a) {
    std::vector<sql_value> p{a.role, id_or_sql_null(a.store), std::int64_t{a.can_receive ? 1 : 0},
                             a.id, clinic};
    auto r = db.execute(
        "UPDATE agents SET role = ?, store_id = ?, can_receive = ? WHERE id = ? AND clinic_id = ?",
        p);
    if (!r) return r.error();
    return {};
}

result<void> set_agent_password(storage::mysql_session& db, std::uint64_t clinic,
                                std::uint64_t agent, const std::string& password_hash) {
    std::vector<sql_value> p{password_hash, agent, clinic};
    auto r = db.execute("UPDATE agents SET password_hash = ? WHERE id = ? AND clinic_id = ?", p);
    if (!r) return r.error();
    return {};
}

result<std::vector<store_listing>> clinic_stores(storage::mysql_session& db, std::uint64_t clinic,
                                                 std::optional<std::uint64_t> only, bool lock) {
    std::vector<sql_value> p{clinic};
    std::string where = "s.clinic_id = ?";
    if (only) {
        where += " AND s.id = ?";
        p.emplace_back(*only);
    }
    auto rows = db.query(
        "SELECT s.id, s.name, (SELECT COUNT(*) FROM agents a WHERE a.store_id = s.id AND "
        "a.active = 1) FROM stores s WHERE " +
            where + (lock ? " FOR UPDATE" : " ORDER BY s.name, s.id"),
        p);
    if (!rows) return rows.error();
    std::vector<store_listing> out;
    std::map<std::uint64_t, std::size_t> at;
    for (const auto& r : rows->rows) {
        at[sql_u64(r[0])] = out.size();
        out.push_back({sql_u64(r[0]), r[1].value_or(""), sql_u64(r[2]), {}});
    }
    auto codes = db.query(
        "SELECT q.store_id, q.account_id, o.appid, q.scene, q.ticket, q.url FROM store_qr_codes q "
        "JOIN stores s ON s.id = q.store_id JOIN official_accounts o ON o.id = q.account_id "
        "WHERE " +
            where + " ORDER BY q.store_id, q.account_id",
        p);
    if (!codes) return codes.error();
    for (const auto& r : codes->rows) {
        const auto it = at.find(sql_u64(r[0]));
        if (it == at.end()) continue;
        out[it->second].qr_codes.push_back({sql_u64(r[1]), r[2].value_or(""), r[3].value_or(""),
                                            r[4].value_or(""), r[5].value_or("")});
    }
    return out;
}

result<std::optional<std::uint64_t>> insert_store(storage::mysql_session& db, std::uint64_t clinic,
                                                  const std::string& name) {
    std::vector<sql_value> p{clinic, name};
    auto r = db.query("INSERT INTO stores (clinic_id, name) VALUES (?, ?)", p);
    if (!r) {
        if (duplicate_key(r.error())) return std::optional<std::uint64_t>();
        return r.error();
    }
    return std::optional<std::uint64_t>(r->last_insert_id);
}

result<bool> rename_store(storage::mysql_session& db, std::uint64_t clinic, std::uint64_t store,
                          const std::string& name) {
    std::vector<sql_value> p{name, store, clinic};
    auto r = db.execute("UPDATE stores SET name = ? WHERE id = ? AND clinic_id = ?", p);
    if (!r) {
        if (duplicate_key(r.error())) return false;
        return result<bool>(boost::system::in_place_error, r.error());
    }
    return true;
}

result<std::optional<std::string>> clinic_account_appid(storage::mysql_session& db,
                                                        std::uint64_t clinic,
                                                        std::uint64_t account) {
    std::vector<sql_value> p{account, clinic};
    auto rows = db.query("SELECT appid FROM official_accounts WHERE id = ? AND clinic_id = ?", p);
    if (!rows) return rows.error();
    if (rows->rows.empty()) return std::optional<std::string>();
    return std::optional<std::string>(rows->rows[0][0].value_or(""));
}

result<void> save_store_qr(storage::mysql_session& db, std::uint64_t store, const store_qr& qr) {
    // A code made meanwhile by another request stays: WeChat returns the same permanent code for
    // the same scene, so either row is right.
    std::vector<sql_value> p{store, qr.account_id, qr.scene, qr.ticket, qr.url};
    auto r = db.execute(
        "INSERT IGNORE INTO store_qr_codes (store_id, account_id, scene, ticket, url) "
        "VALUES (?, ?, ?, ?, ?)",
        p);
    if (!r) return r.error();
    return {};
}

result<std::vector<account_listing>> clinic_accounts(storage::mysql_session& db,
                                                     std::uint64_t clinic,
                                                     std::optional<std::uint64_t> only) {
    std::vector<sql_value> p{clinic};
    std::string sql =
        "SELECT id, appid, original_id, safe_mode_only, aes_key_previous_sealed IS NOT NULL, "
        "updated_at FROM official_accounts WHERE clinic_id = ?";
    if (only) {
        sql += " AND id = ?";
        p.emplace_back(*only);
    }
    auto rows = db.query(sql + " ORDER BY appid", p);
    if (!rows) return rows.error();
    std::vector<account_listing> out;
    for (const auto& r : rows->rows) {
        out.push_back({sql_u64(r[0]), r[1].value_or(""), r[2].value_or(""), sql_u64(r[3]) != 0,
                       sql_u64(r[4]) != 0, r[5].value_or("")});
    }
    return out;
}

result<std::vector<health_row>> account_health(storage::mysql_session& db, std::uint64_t clinic,
                                               std::uint32_t days) {
    std::string codes;
    for (const auto& e : person_needed_errors()) {
        codes += (codes.empty() ? "" : ",") + std::to_string(e.errcode);  // integers only
    }
    std::vector<sql_value> p{clinic, std::int64_t{days}};
    auto rows = db.query(
        "SELECT o.account_id, o.last_errcode, COUNT(*), MAX(o.updated_at), "
        "SUBSTRING_INDEX(GROUP_CONCAT(IFNULL(o.last_error, '') ORDER BY o.updated_at DESC, o.id "
        "DESC SEPARATOR '\\n'), '\\n', 1) "
        "FROM outbox o JOIN official_accounts a ON a.id = o.account_id "
        "WHERE a.clinic_id = ? AND o.last_errcode IN (" +
            codes +
            ") AND o.updated_at >= NOW(3) - INTERVAL ? DAY "
            "GROUP BY o.account_id, o.last_errcode ORDER BY o.account_id, MAX(o.updated_at) DESC",
        p);
    if (!rows) return rows.error();
    std::vector<health_row> out;
    for (const auto& r : rows->rows) {
        out.push_back({sql_u64(r[0]), static_cast<int>(sql_u64(r[1])), sql_u64(r[2]),
                       r[3].value_or(""), r[4].value_or("")});
    }
    return out;
}

result<std::optional<std::uint32_t>> clinic_retention(storage::mysql_session& db,
                                                      std::uint64_t clinic, bool lock) {
    std::vector<sql_value> p{clinic};
    auto rows = db.query(std::string("SELECT message_retention_days FROM clinics WHERE id = ?") +
                             (lock ? " FOR UPDATE" : ""),
                         p);
    if (!rows) return rows.error();
    if (rows->rows.empty()) return make_error_code(errc::not_found);
    if (!rows->rows[0][0]) return std::optional<std::uint32_t>();
    return std::optional<std::uint32_t>(static_cast<std::uint32_t>(sql_u64(rows->rows[0][0])));
}

result<void> set_clinic_retention(storage::mysql_session& db, std::uint64_t clinic,
                                  std::optional<std::uint32_t> days) {
    std::vector<sql_value> p{days ? sql_value(std::uint64_t{*days}) : sql_value(std::monostate{}),
                             clinic};
    auto r = db.execute("UPDATE clinics SET message_retention_days = ? WHERE id = ?", p);
    if (!r) return r.error();
    return {};
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

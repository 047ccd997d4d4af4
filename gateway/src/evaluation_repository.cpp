// See evaluation_repository.hpp. Prepared statements with bound parameters; the only text spliced
// into SQL is fixed fragments chosen here and integers.
#include "evaluation_repository.hpp"

#include <algorithm>
#include <map>

#include "admin_repository.hpp"
#include "scrm/gateway/audit_log.hpp"
#include "scrm/gateway/http.hpp"
#include "scrm/storage/mysql.hpp"

namespace scrm::gateway {

using storage::sql_u64;
using storage::sql_value;

result<std::vector<std::string>> custom_attributes(storage::mysql_session& db,
                                                   std::uint64_t clinic) {
    std::vector<sql_value> p{clinic};
    auto rows =
        db.query("SELECT name FROM evaluation_attributes WHERE clinic_id = ? ORDER BY position", p);
    if (!rows) return rows.error();
    std::vector<std::string> out;
    for (const auto& r : rows->rows) out.push_back(r[0].value_or(""));
    return out;
}

result<void> write_custom_attributes(storage::mysql_session& db, std::uint64_t clinic,
                                     const std::vector<std::string>& names) {
    std::vector<sql_value> p{clinic};
    if (auto r = db.execute("DELETE FROM evaluation_attributes WHERE clinic_id = ?", p); !r) {
        return r.error();
    }
    for (std::size_t i = 0; i < names.size(); ++i) {
        std::vector<sql_value> row{clinic, static_cast<std::uint64_t>(i), names[i]};
        if (auto r = db.execute(
                "INSERT INTO evaluation_attributes (clinic_id, position, name) VALUES (?, ?, ?)",
                row);
            !r) {
            return r.error();
        }
    }
    return {};
}

namespace {

constexpr const char* row_columns =
    "e.id, e.clinic_id, e.account_id, c.name, e.openid, e.visit_ref, e.state, p.name, e.overall, "
    "e.comment, e.reply, e.reply_delivery, e.attributes, e.created_at, e.expires_at, "
    "e.submitted_at, e.replied_at, e.expires_at <= CURRENT_TIMESTAMP(3) ";
constexpr const char* row_from =
    "FROM evaluations e JOIN clinics c ON c.id = e.clinic_id "
    "LEFT JOIN patients p ON p.id = e.patient_id ";

evaluation_row read_row(const std::vector<std::optional<std::string>>& r) {
    evaluation_row e;
    e.id = sql_u64(r[0]);
    e.clinic = sql_u64(r[1]);
    e.account = sql_u64(r[2]);
    e.clinic_name = r[3].value_or("");
    e.openid = r[4].value_or("");
    e.visit_ref = r[5].value_or("");
    e.state = r[6].value_or("");
    e.patient_name = r[7];
    e.overall = r[8];
    e.comment = r[9];
    e.reply = r[10];
    e.reply_delivery = r[11];
    e.attributes = split_attributes(r[12].value_or(""));
    e.ratings.resize(e.attributes.size());
    e.created_at = r[13].value_or("");
    e.expires_at = r[14].value_or("");
    e.submitted_at = r[15];
    e.replied_at = r[16];
    e.expired = sql_u64(r[17]) != 0;
    return e;
}

// Fills each row's ratings (one query for all of them).
result<void> load_ratings(storage::mysql_session& db, std::vector<evaluation_row>& rows) {
    if (rows.empty()) return {};
    std::vector<std::uint64_t> ids;
    std::map<std::uint64_t, evaluation_row*> by_id;
    for (auto& e : rows) {
        ids.push_back(e.id);
        by_id[e.id] = &e;
    }
    auto got = db.query("SELECT evaluation_id, position, rating FROM evaluation_ratings WHERE 1" +
                        storage::and_in("evaluation_id", ids));
    if (!got) return got.error();
    for (const auto& r : got->rows) {
        auto* e = by_id[sql_u64(r[0])];
        const auto pos = sql_u64(r[1]);
        if (e && pos < e->ratings.size()) e->ratings[pos] = parse_rating(r[2].value_or(""));
    }
    return {};
}

}  // namespace

result<std::optional<evaluation_row>> evaluation_by_id(storage::mysql_session& db,
                                                       std::uint64_t id) {
    std::vector<sql_value> p{id};
    auto rows = db.query(std::string("SELECT ") + row_columns + row_from + "WHERE e.id = ?", p);
    if (!rows) return rows.error();
    if (rows->rows.empty()) return std::optional<evaluation_row>();
    std::vector<evaluation_row> one{read_row(rows->rows[0])};
    if (auto r = load_ratings(db, one); !r) return r.error();
    return std::optional<evaluation_row>(std::move(one[0]));
}

result<submit_outcome> submit_evaluation(storage::mysql_session& db, std::uint64_t id,
                                         const std::vector<std::string>& attributes,
                                         const evaluation_submission& s) {
    if (auto b = db.begin(); !b) return b.error();
    rollback_guard undo{db};
    std::vector<sql_value> p{id};
    auto rows = db.query(
        "SELECT state, expires_at <= CURRENT_TIMESTAMP(3) FROM evaluations WHERE id = ? FOR UPDATE",
        p);
    if (!rows) return rows.error();
    if (rows->rows.empty()) return submit_outcome::not_found;
    if (rows->rows[0][0].value_or("") != "awaiting") return submit_outcome::already_submitted;
    if (sql_u64(rows->rows[0][1]) != 0) return submit_outcome::expired;
    std::vector<sql_value> upd{std::string(to_string(overall_rating(s.ratings))),
                               s.comment.empty() ? sql_value{} : sql_value{s.comment}, id};
    if (auto r = db.execute("UPDATE evaluations SET state = 'submitted', overall = ?, comment = ?, "
                            "submitted_at = CURRENT_TIMESTAMP(3) WHERE id = ?",
                            upd);
        !r) {
        return r.error();
    }
    std::string insert =
        "INSERT INTO evaluation_ratings (evaluation_id, position, attribute, rating) VALUES ";
    for (std::size_t i = 0; i < attributes.size() && i < s.ratings.size(); ++i) {
        if (i) insert += ',';
        insert += '(';
        storage::sql_lit(insert, id);
        insert += ',';
        storage::sql_lit(insert, static_cast<std::uint64_t>(i));
        insert += ',';
        storage::sql_lit(insert, attributes[i]);
        insert += ',';
        storage::sql_lit(insert, std::string_view(to_string(s.ratings[i])));
        insert += ')';
    }
    if (!attributes.empty()) {
        if (auto r = db.query_inline(insert); !r) return r.error();
    }
    if (auto c = db.commit(); !c) return c.error();
    return submit_outcome::submitted;
}

result<evaluation_page> list_evaluations(storage::mysql_session& db, std::uint64_t clinic,
                                         const evaluation_query& q, bool all, std::size_t limit) {
    std::string where = "WHERE e.clinic_id = ?";
    std::vector<sql_value> p{clinic};
    if (q.state) {
        where += " AND e.state = ?";
        p.emplace_back(*q.state);
    }
    if (q.overall) {
        where += " AND e.overall = ?";
        p.emplace_back(std::string(to_string(*q.overall)));
    }
    evaluation_page out;
    auto count = db.query("SELECT COUNT(*) FROM evaluations e " + where, p);
    if (!count) return count.error();
    out.total = count->rows.empty() ? 0 : sql_u64(count->rows[0][0]);
    const std::size_t n = all ? limit : q.page_size;
    const std::size_t offset = all ? 0 : (q.page - 1) * q.page_size;
    auto rows = db.query(std::string("SELECT ") + row_columns + row_from + where +
                             " ORDER BY e.id DESC LIMIT " + std::to_string(n) + " OFFSET " +
                             std::to_string(offset),
                         p);
    if (!rows) return rows.error();
    for (const auto& r : rows->rows) out.rows.push_back(read_row(r));
    if (auto r = load_ratings(db, out.rows); !r) return r.error();
    return out;
}

result<reply_claim> claim_reply(storage::mysql_session& db, std::uint64_t clinic,
                                std::uint64_t evaluation, std::uint64_t admin,
                                const std::string& text) {
    if (auto b = db.begin(); !b) return b.error();
    rollback_guard undo{db};
    reply_claim out;
    std::vector<sql_value> p{evaluation, clinic};
    auto rows = db.query(
        "SELECT state, account_id, openid FROM evaluations WHERE id = ? AND clinic_id = ? "
        "FOR UPDATE",
        p);
    if (!rows) return rows.error();
    if (rows->rows.empty()) return out;
    const std::string state = rows->rows[0][0].value_or("");
    if (state == "awaiting") {
        out.status = reply_claim_status::not_submitted;
        return out;
    }
    if (state == "replied") {
        out.status = reply_claim_status::already_replied;
        return out;
    }
    out.account = sql_u64(rows->rows[0][1]);
    out.openid = rows->rows[0][2].value_or("");
    std::vector<sql_value> upd{text, admin, evaluation};
    if (auto r = db.execute("UPDATE evaluations SET state = 'replied', reply = ?, replied_by = ?, "
                            "replied_at = CURRENT_TIMESTAMP(3) WHERE id = ?",
                            upd);
        !r) {
        return r.error();
    }
    // The reply's text is the clinic's, not the patient's: it may be audited.
    audit_entry e{clinic,
                  admin,
                  "agent",
                  "evaluation.reply",
                  "evaluation/" + std::to_string(evaluation),
                  "{\"reply\":" + json_quote(text) + "}"};
    if (auto r = append_audit(db, e); !r) return r.error();
    if (auto c = db.commit(); !c) return c.error();
    out.status = reply_claim_status::claimed;
    return out;
}

result<void> record_reply_delivery(storage::mysql_session& db, std::uint64_t evaluation,
                                   const std::string& delivery,
                                   std::optional<std::uint64_t> outbox_id) {
    std::vector<sql_value> p{delivery, outbox_id ? sql_value{*outbox_id} : sql_value{}, evaluation};
    if (auto r = db.execute(
            "UPDATE evaluations SET reply_delivery = ?, reply_outbox_id = ? WHERE id = ?", p);
        !r) {
        return r.error();
    }
    return {};
}

result<std::vector<attribute_stats>> evaluation_stats(storage::mysql_session& db,
                                                      std::uint64_t clinic) {
    std::vector<sql_value> p{clinic};
    auto rows = db.query(
        "SELECT r.attribute, r.rating, COUNT(*), MIN(e.id) FROM evaluation_ratings r "
        "JOIN evaluations e ON e.id = r.evaluation_id WHERE e.clinic_id = ? "
        "GROUP BY r.attribute, r.rating",
        p);
    if (!rows) return rows.error();
    std::vector<attribute_stats> out;
    for (const auto& name : default_evaluation_attributes()) out.push_back({name});
    std::map<std::string, std::uint64_t> first_seen;
    for (const auto& r : rows->rows) {
        const std::string name = r[0].value_or("");
        auto& seen = first_seen[name];
        seen = seen ? std::min(seen, sql_u64(r[3])) : sql_u64(r[3]);
    }
    std::vector<std::pair<std::uint64_t, std::string>> others;
    for (const auto& [name, first] : first_seen) {
        const auto& d = default_evaluation_attributes();
        if (std::find(d.begin(), d.end(), name) == d.end()) others.emplace_back(first, name);
    }
    std::sort(others.begin(), others.end());
    for (auto& o : others) out.push_back({o.second});
    for (const auto& r : rows->rows) {
        const std::string name = r[0].value_or("");
        auto it = std::find_if(out.begin(), out.end(),
                               [&](const attribute_stats& s) { return s.name == name; });
        const auto n = sql_u64(r[2]);
        switch (parse_rating(r[1].value_or("")).value_or(rating::good)) {
            case rating::good: it->good += n; break;
            case rating::average: it->average += n; break;
            case rating::poor: it->poor += n; break;
        }
    }
    return out;
}

result<invitation_row> insert_invitation(storage::mysql_session& db, const evaluation_invite& in,
                                         std::chrono::seconds ttl) {
    const bool own = !db.in_transaction();
    if (own) {
        if (auto b = db.begin(); !b) return b.error();
    }
    std::optional<rollback_guard> undo;
    if (own) undo.emplace(db);
    std::vector<sql_value> acc{in.account_id, in.clinic};
    auto account = db.query("SELECT id FROM official_accounts WHERE id = ? AND clinic_id = ?", acc);
    if (!account) return account.error();
    if (account->rows.empty()) return make_error_code(errc::not_found);
    std::vector<sql_value> key{in.clinic, in.visit_ref};
    // A plain read first: a locking read of a missing row would take a gap lock, and two
    // concurrent invitations of one visit would then deadlock on their inserts.
    const std::string find =
        "SELECT id, expires_at FROM evaluations WHERE clinic_id = ? AND visit_ref = ?";
    auto existing = db.query(find, key);
    if (!existing) return existing.error();
    invitation_row out;
    if (existing->rows.empty()) {
        auto names = custom_attributes(db, in.clinic);
        if (!names) return names.error();
        std::vector<std::string> asked = default_evaluation_attributes();
        asked.insert(asked.end(), names->begin(), names->end());
        std::vector<sql_value> row{in.clinic,
                                   in.account_id,
                                   in.openid,
                                   in.patient_id ? sql_value{*in.patient_id} : sql_value{},
                                   in.visit_ref,
                                   join_attributes(asked),
                                   static_cast<std::int64_t>(ttl.count())};
        auto ins = db.query(
            "INSERT INTO evaluations (clinic_id, account_id, openid, patient_id, visit_ref, "
            "attributes, expires_at) VALUES (?, ?, ?, ?, ?, ?, "
            "CURRENT_TIMESTAMP(3) + INTERVAL ? SECOND)",
            row);
        // A concurrent invitation of the same visit inserted first (the duplicate key waited
        // for its commit): the read below sees its row.
        if (!ins && ins.error() != make_error_code(errc::conflict)) return ins.error();
        out.created = ins.has_value();
        // Latest committed data, with a shared lock: the losers of a race already hold one on
        // the winner's row from their duplicate-key check (an exclusive one would deadlock).
        existing = db.query(find + " LOCK IN SHARE MODE", key);
        if (!existing) return existing.error();
        if (existing->rows.empty()) return make_error_code(errc::not_found);
    }
    out.id = sql_u64(existing->rows[0][0]);
    out.expires_at = existing->rows[0][1].value_or("");
    if (own) {
        if (auto c = db.commit(); !c) return c.error();
    }
    return out;
}

}  // namespace scrm::gateway

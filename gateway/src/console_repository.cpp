// See console_repository.hpp. Every query is a prepared statement with bound parameters; the only
// text spliced into SQL is fixed fragments chosen here.
#include "scrm/gateway/console_repository.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>

#include "scrm/common/thread_role.hpp"
#include "scrm/gateway/audit_log.hpp"
#include "scrm/gateway/http.hpp"
#include "scrm/storage/mysql.hpp"

namespace scrm::gateway {

namespace asio = boost::asio;
using storage::mysql_session;
using storage::sql_rows;
using storage::sql_u64;
using storage::sql_value;

namespace {

// A fan's activity: its last message, else when it was first seen (set up before writing).
constexpr const char* activity_expr = "COALESCE(f.last_message_at, f.first_seen_at)";
constexpr const char* activity_ms_expr =
    "CAST(FLOOR(UNIX_TIMESTAMP(COALESCE(f.last_message_at, f.first_seen_at)) * 1000) AS SIGNED)";

// The first agent reply (an outbox row of origin agent:…) to the fan: inbound messages before it
// are answered.
constexpr const char* last_agent_reply =
    "(SELECT MAX(o.created_at) FROM outbox o WHERE o.account_id = f.account_id AND "
    "o.openid = f.openid AND o.origin LIKE 'agent:%')";

std::optional<std::uint64_t> optional_id(const std::optional<std::string>& v) {
    const auto id = sql_u64(v);
    return id ? std::optional<std::uint64_t>(id) : std::nullopt;
}

sql_value nullable(const std::optional<std::uint64_t>& v) {
    return v ? sql_value{*v} : sql_value{};
}

std::string id_or_null(const std::optional<std::uint64_t>& v) {
    return v ? std::to_string(*v) : "null";
}

std::string subject_of(const fan_key& fan) {
    return std::to_string(fan.first) + "/" + fan.second;
}

result<void> audit(mysql_session& db, std::uint64_t clinic, std::uint64_t agent, std::string action,
                   const fan_key& fan, std::string detail) {
    audit_entry e;
    e.clinic = clinic;
    e.agent = agent;
    e.action = std::move(action);
    e.subject = subject_of(fan);
    e.detail_json = std::move(detail);
    return append_audit(db, e);
}

// Last messages of the page's fans (one statement per direction), by fan.
result<void> fill_last_messages(mysql_session& db, std::vector<conversation_summary>& page,
                                const std::vector<std::uint64_t>& inbound_ids,
                                const std::vector<std::uint64_t>& outbound_ids) {
    std::map<fan_key, conversation_summary*> by_fan;
    for (auto& c : page) by_fan[{c.account_id, c.openid}] = &c;
    const auto take = [&](const fan_key& k, last_message m) {
        auto it = by_fan.find(k);
        if (it == by_fan.end()) return;
        auto& slot = it->second->last;
        if (!slot || slot->at < m.at) slot = std::move(m);
    };
    if (!inbound_ids.empty()) {
        // The id lists change with every page: inline, not prepared (and_in splices integers).
        auto rows = db.query_inline(
            "SELECT m.account_id, m.openid, m.msg_type, m.event, LEFT(m.content, 200), "
            "m.received_at FROM inbound_messages m WHERE TRUE" +
            storage::and_in("m.id", inbound_ids));
        if (!rows) return rows.error();
        for (const auto& r : rows->rows) {
            take({sql_u64(r[0]), r[1].value_or("")},
                 last_message{true, r[2].value_or(""), r[3].value_or(""), r[4].value_or(""),
                              r[5].value_or("")});
        }
    }
    if (!outbound_ids.empty()) {
        auto rows = db.query_inline(
            "SELECT o.account_id, o.openid, o.kind, LEFT(JSON_VALUE(CONVERT(o.body USING utf8mb4), "
            "'$.text.content'), 200), o.created_at FROM outbox o WHERE TRUE" +
            storage::and_in("o.id", outbound_ids));
        if (!rows) return rows.error();
        for (const auto& r : rows->rows) {
            take({sql_u64(r[0]), r[1].value_or("")},
                 last_message{false, r[2].value_or(""), "", r[3].value_or(""), r[4].value_or("")});
        }
    }
    return {};
}

// Agent `id` of the clinic, locked against a concurrent deactivation: none, inactive or fine.
result<panel_outcome> check_agent(mysql_session& db, std::uint64_t clinic, std::uint64_t id) {
    std::vector<sql_value> p{id, clinic};
    auto r =
        db.query("SELECT active FROM agents WHERE id = ? AND clinic_id = ? LOCK IN SHARE MODE", p);
    if (!r) return r.error();
    if (r->rows.empty()) return panel_outcome::no_agent;
    if (sql_u64(r->rows[0][0]) == 0) return panel_outcome::agent_inactive;
    return panel_outcome::done;
}

// The fan's newest `limit` rows of `select` (whose table is aliased `alias`, with account_id,
// openid and id columns), below id `below` when it is not 0.
result<sql_rows> newest_of_fan(mysql_session& db, std::string select, const std::string& alias,
                               const fan_key& fan, std::uint64_t below, std::uint64_t limit) {
    std::vector<sql_value> p{fan.first, fan.second};
    select += " WHERE " + alias + ".account_id = ? AND " + alias + ".openid = ?";
    if (below) {
        select += " AND " + alias + ".id < ?";
        p.emplace_back(below);
    }
    select += " ORDER BY " + alias + ".id DESC LIMIT ?";
    p.emplace_back(limit);
    return db.query(select, p);
}

// A refusal found inside a transaction: nothing was written, roll it back and answer `v`.
template <class T>
T abandon(mysql_session& db, T v) {
    (void)db.rollback();
    return v;
}

// Locks the fan's row; false when it does not exist.
result<bool> lock_fan(mysql_session& db, const fan_key& fan, sql_rows* out, const char* columns) {
    std::vector<sql_value> p{fan.first, fan.second};
    auto r = db.query(std::string("SELECT ") + columns +
                          " FROM fans WHERE account_id = ? AND openid = ? FOR UPDATE",
                      p);
    if (!r) return result<bool>(boost::system::in_place_error, r.error());
    const bool found = !r->rows.empty();
    if (out) *out = std::move(*r);
    return found;
}

}  // namespace

asio::awaitable<result<std::vector<conversation_summary>>> console_repository::conversations(
    conversation_list_request req) {
    std::string sql = std::string("SELECT f.id, f.account_id, f.openid, f.remark, f.tags, ") +
                      "f.store_id, f.consultant_agent_id, f.exclusive_agent_id, f.subscribed, " +
                      activity_ms_expr + ", " + activity_expr +
                      ", (SELECT p.name FROM fan_patients fp JOIN patients p ON p.id = "
                      "fp.patient_id WHERE fp.account_id = f.account_id AND fp.openid = f.openid "
                      "ORDER BY fp.bound_at, p.id LIMIT 1), "
                      "(SELECT COUNT(*) FROM inbound_messages m WHERE m.account_id = f.account_id "
                      "AND m.openid = f.openid AND m.msg_type <> 'event' AND "
                      "m.id > f.read_upto_message_id AND m.received_at > COALESCE(" +
                      last_agent_reply +
                      ", TIMESTAMP'1970-01-02 00:00:00')), "
                      "(SELECT MAX(m.id) FROM inbound_messages m WHERE m.account_id = f.account_id "
                      "AND m.openid = f.openid), "
                      "(SELECT MAX(o.id) FROM outbox o WHERE o.account_id = f.account_id AND "
                      "o.openid = f.openid) "
                      "FROM fans f JOIN official_accounts a ON a.id = f.account_id "
                      "WHERE a.clinic_id = ?";
    std::vector<sql_value> p{req.scope.clinic};
    if (req.scope.store_scope) {
        sql += " AND (f.store_id IS NULL OR f.store_id = ?)";
        p.emplace_back(*req.scope.store_scope);
    }
    if (req.store) {
        sql += " AND f.store_id = ?";
        p.emplace_back(*req.store);
    }
    if (req.mine) {
        sql +=
            " AND (f.consultant_agent_id = ? OR f.exclusive_agent_id = ? OR EXISTS (SELECT 1 FROM "
            "chat_sessions s WHERE s.account_id = f.account_id AND s.openid = f.openid AND "
            "s.agent_id = ? AND s.ended_at IS NULL))";
        p.insert(p.end(), {*req.mine, *req.mine, *req.mine});
    }
    if (req.only) {
        if (req.only->empty()) co_return std::vector<conversation_summary>{};
        sql += " AND (f.account_id, f.openid) IN (";
        for (std::size_t i = 0; i < req.only->size(); ++i) {
            sql += i ? ",(?,?)" : "(?,?)";
            p.emplace_back((*req.only)[i].first);
            p.emplace_back((*req.only)[i].second);
        }
        sql += ")";
    }
    if (req.search) {
        const std::string like = like_anywhere(*req.search);
        sql +=
            " AND (f.remark LIKE ? OR EXISTS (SELECT 1 FROM fan_patients fp JOIN patients p ON "
            "p.id = fp.patient_id WHERE fp.account_id = f.account_id AND fp.openid = f.openid AND "
            "(p.name LIKE ? OR p.phone LIKE ? OR p.record_no LIKE ?)) OR EXISTS (SELECT 1 FROM "
            "inbound_messages m WHERE m.account_id = f.account_id AND m.openid = f.openid AND "
            "m.content LIKE ?))";
        for (int i = 0; i < 5; ++i) p.emplace_back(like);
    }
    if (req.cursor) {
        sql += std::string(" AND (") + activity_ms_expr + " < ? OR (" + activity_ms_expr +
               " = ? AND f.id < ?))";
        p.emplace_back(req.cursor->activity_ms);
        p.emplace_back(req.cursor->activity_ms);
        p.emplace_back(req.cursor->fan_id);
    }
    sql += std::string(" ORDER BY ") + activity_ms_expr + " DESC, f.id DESC LIMIT ?";
    p.emplace_back(static_cast<std::uint64_t>(req.limit));

    auto fn = [&sql, &p](mysql_session& db) -> result<std::vector<conversation_summary>> {
        auto rows = db.query(sql, p);
        if (!rows) return rows.error();
        std::vector<conversation_summary> out;
        std::vector<std::uint64_t> inbound_ids, outbound_ids;
        out.reserve(rows->rows.size());
        for (const auto& r : rows->rows) {
            conversation_summary c;
            c.fan_id = sql_u64(r[0]);
            c.account_id = sql_u64(r[1]);
            c.openid = r[2].value_or("");
            c.remark = r[3];
            c.tags_json = r[4].value_or("[]");
            c.store = optional_id(r[5]);
            c.consultant = optional_id(r[6]);
            c.exclusive = optional_id(r[7]);
            c.subscribed = sql_u64(r[8]) != 0;
            c.position = list_cursor{std::stoll(r[9].value_or("0")), c.fan_id};
            c.activity = r[10].value_or("");
            c.patient_name = r[11];
            c.unread = sql_u64(r[12]);
            if (const auto id = sql_u64(r[13])) inbound_ids.push_back(id);
            if (const auto id = sql_u64(r[14])) outbound_ids.push_back(id);
            out.push_back(std::move(c));
        }
        if (auto f = fill_last_messages(db, out, inbound_ids, outbound_ids); !f) return f.error();
        return out;
    };
    co_return co_await mysql_.run(fn);
}

asio::awaitable<result<std::vector<consultant_wait>>> console_repository::consultant_waits(
    std::uint64_t clinic, std::uint64_t max_age_s) {
    std::vector<sql_value> p{clinic, static_cast<std::int64_t>(max_age_s)};
    auto rows = co_await mysql_.query(
        "SELECT m.account_id, m.openid, f.consultant_agent_id, MIN(m.received_at) "
        "FROM routing_receipts r JOIN inbound_messages m ON m.id = r.message_id "
        "JOIN fans f ON f.account_id = m.account_id AND f.openid = m.openid "
        "WHERE r.clinic_id = ? AND r.decided_at >= CURRENT_TIMESTAMP(3) - INTERVAL ? SECOND "
        "AND r.rule = 'consultant' AND f.consultant_agent_id = r.owner_agent_id "
        "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.account_id = m.account_id AND "
        "o.openid = m.openid AND o.origin LIKE 'agent:%' AND o.created_at >= m.received_at) "
        "GROUP BY m.account_id, m.openid, f.consultant_agent_id ORDER BY 4, 1, 2 LIMIT 500",
        std::move(p));
    if (!rows) co_return rows.error();
    std::vector<consultant_wait> out;
    for (const auto& r : rows->rows) {
        out.push_back(consultant_wait{{sql_u64(r[0]), r[1].value_or("")}, sql_u64(r[2])});
    }
    co_return out;
}

asio::awaitable<result<history_page>> console_repository::history(std::uint64_t clinic,
                                                                  std::uint64_t agent, fan_key fan,
                                                                  history_query q) {
    auto fn = [&](mysql_session& db) -> result<history_page> {
        if (auto b = db.begin(); !b) return b.error();
        std::string detail;
        if (q.before) detail = "{\"before\":" + json_quote(to_string(*q.before)) + "}";
        if (auto a = audit(db, clinic, agent, "conversation.read", fan, detail); !a) {
            return a.error();
        }
        // One more than a page from each side: the merge takes the newest `limit` of both.
        const auto fetch = static_cast<std::uint64_t>(q.limit + 1);
        auto in = newest_of_fan(
            db,
            "SELECT m.id, m.received_at, m.msg_type, m.event, m.event_key, m.content, r.rule, "
            "r.owner_agent_id, r.targets, r.auto_reply, r.receipt, im.state, im.kind, "
            "im.content_type, im.source_url, im.path IS NOT NULL FROM inbound_messages m "
            "LEFT JOIN routing_receipts r ON r.message_id = m.id "
            "LEFT JOIN inbound_media im ON im.message_id = m.id",
            "m", fan, q.before ? q.before->inbound : 0, fetch);
        if (!in) return in.error();
        auto out = newest_of_fan(
            db,
            "SELECT o.id, o.created_at, o.kind, o.origin, o.state, o.last_errcode, o.last_error, "
            "o.sent_at, JSON_VALUE(CONVERT(o.body USING utf8mb4), '$.text.content') FROM outbox o",
            "o", fan, q.before ? q.before->outbound : 0, fetch);
        if (!out) return out.error();
        if (auto c = db.commit(); !c) return c.error();

        std::vector<history_entry> all;
        for (const auto& r : in->rows) {
            history_entry e;
            e.inbound = true;
            e.id = sql_u64(r[0]);
            e.at = r[1].value_or("");
            e.type = r[2].value_or("");
            e.event = r[3];
            e.event_key = r[4];
            e.text = r[5];
            e.rule = r[6];
            e.owner = optional_id(r[7]);
            e.targets_json = r[8];
            e.auto_reply = r[9];
            e.receipt_json = r[10];
            e.media_state = r[11];
            e.media_type = r[13];
            e.media_url_external = r[14];
            e.media_file = sql_u64(r[15]) != 0 && r[11] == std::optional<std::string>("fetched");
            all.push_back(std::move(e));
        }
        for (const auto& r : out->rows) {
            history_entry e;
            e.inbound = false;
            e.id = sql_u64(r[0]);
            e.at = r[1].value_or("");
            e.type = r[2].value_or("");
            e.origin = r[3].value_or("");
            e.state = r[4].value_or("");
            if (r[5]) e.errcode = std::stoll(*r[5]);
            e.error = r[6];
            e.sent_at = r[7];
            e.text = r[8];
            all.push_back(std::move(e));
        }
        // Newest first; at one instant the outbound (a reply) after the inbound it answers.
        std::sort(all.begin(), all.end(), [](const history_entry& a, const history_entry& b) {
            if (a.at != b.at) return a.at > b.at;
            if (a.inbound != b.inbound) return !a.inbound;
            return a.id > b.id;
        });
        history_page page;
        const bool more = all.size() > q.limit;
        if (more) all.resize(q.limit);
        // Where the next page starts: below the oldest entry taken of each kind (or the previous
        // bound, for a kind this page took none of).
        history_cursor next = q.before.value_or(history_cursor{});
        for (const auto& e : all) {
            auto& bound = e.inbound ? next.inbound : next.outbound;
            if (bound == 0 || e.id < bound) bound = e.id;
        }
        if (more) page.next = next;
        page.entries = std::move(all);
        return page;
    };
    co_return co_await mysql_.run(fn);
}

asio::awaitable<result<std::optional<media_file>>> console_repository::media(
    fan_scope scope, std::uint64_t agent, std::uint64_t message_id, std::filesystem::path dir) {
    auto fn = [&](mysql_session& db) -> result<std::optional<media_file>> {
        std::vector<sql_value> p{message_id, scope.clinic};
        auto rows = db.query(
            "SELECT m.account_id, m.openid, im.path, im.content_type, f.store_id "
            "FROM inbound_media im JOIN inbound_messages m ON m.id = im.message_id "
            "JOIN official_accounts a ON a.id = m.account_id "
            "LEFT JOIN fans f ON f.account_id = m.account_id AND f.openid = m.openid "
            "WHERE im.message_id = ? AND a.clinic_id = ? AND im.state = 'fetched' AND "
            "im.path IS NOT NULL",
            p);
        if (!rows) return rows.error();
        if (rows->rows.empty()) return std::optional<media_file>{};
        const auto& r = rows->rows[0];
        const auto store = optional_id(r[4]);
        if (scope.store_scope && store && *store != *scope.store_scope) {
            return std::optional<media_file>{};
        }
        // The fetcher writes "<appid>/<id>.<ext>": nothing that climbs out of the directory.
        const std::filesystem::path relative(r[2].value_or(""));
        if (relative.empty() || relative.is_absolute() ||
            std::any_of(relative.begin(), relative.end(),
                        [](const std::filesystem::path& part) { return part == ".."; })) {
            return std::optional<media_file>{};
        }
        media_file out;
        out.fan = {sql_u64(r[0]), r[1].value_or("")};
        out.content_type = r[3].value_or("application/octet-stream");
        expect_blocking_allowed("console: reading a media file");
        std::ifstream file(dir / relative, std::ios::binary);
        if (!file) return std::optional<media_file>{};
        out.bytes.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
        out.path = dir / relative;
        auto a = audit(db, scope.clinic, agent, "media.read", out.fan,
                       "{\"message_id\":" + std::to_string(message_id) + "}");
        if (!a) return a.error();
        return std::optional<media_file>(std::move(out));
    };
    co_return co_await mysql_.run(fn);
}

asio::awaitable<result<void>> console_repository::ignore_unread(fan_key fan) {
    std::vector<sql_value> p{fan.first, fan.second, fan.first, fan.second};
    auto n = co_await mysql_.execute(
        "UPDATE fans SET read_upto_message_id = GREATEST(read_upto_message_id, COALESCE((SELECT "
        "MAX(m.id) FROM inbound_messages m WHERE m.account_id = ? AND m.openid = ?), 0)) "
        "WHERE account_id = ? AND openid = ?",
        std::move(p));
    if (!n) co_return n.error();
    co_return result<void>{};
}

asio::awaitable<result<std::optional<fan_panel>>> console_repository::panel(std::uint64_t clinic,
                                                                            fan_key fan) {
    auto fn = [&](mysql_session& db) -> result<std::optional<fan_panel>> {
        std::vector<sql_value> p{fan.first, fan.second, clinic};
        auto rows = db.query(
            "SELECT f.remark, f.tags, f.store_id, f.consultant_agent_id, f.exclusive_agent_id, "
            "f.subscribed, f.first_seen_at, f.last_message_at FROM fans f JOIN official_accounts "
            "a ON a.id = f.account_id WHERE f.account_id = ? AND f.openid = ? AND a.clinic_id = ?",
            p);
        if (!rows) return rows.error();
        if (rows->rows.empty()) return std::optional<fan_panel>{};
        const auto& r = rows->rows[0];
        fan_panel out;
        out.account_id = fan.first;
        out.openid = fan.second;
        out.remark = r[0];
        out.tags_json = r[1].value_or("[]");
        out.store = optional_id(r[2]);
        out.consultant = optional_id(r[3]);
        out.exclusive = optional_id(r[4]);
        out.subscribed = sql_u64(r[5]) != 0;
        out.first_seen_at = r[6].value_or("");
        out.last_message_at = r[7];
        std::vector<sql_value> pp{fan.first, fan.second};
        auto patients = db.query(
            "SELECT p.id, p.name, p.phone, p.record_no FROM fan_patients fp JOIN patients p ON "
            "p.id = fp.patient_id WHERE fp.account_id = ? AND fp.openid = ? "
            "ORDER BY fp.bound_at, p.id",
            pp);
        if (!patients) return patients.error();
        for (const auto& pr : patients->rows) {
            out.patients.push_back(patient_row{sql_u64(pr[0]), pr[1].value_or(""), pr[2], pr[3]});
        }
        return std::optional<fan_panel>(std::move(out));
    };
    co_return co_await mysql_.run(fn);
}

asio::awaitable<result<panel_outcome>> console_repository::set_profile(std::uint64_t clinic,
                                                                       std::uint64_t agent,
                                                                       fan_key fan,
                                                                       fan_profile_request r) {
    auto fn = [&](mysql_session& db) -> result<panel_outcome> {
        if (auto b = db.begin(); !b) return b.error();
        sql_rows before;
        auto found = lock_fan(db, fan, &before, "remark, tags");
        if (!found) return found.error();
        if (!*found) return abandon(db, panel_outcome::no_fan);
        const auto& old = before.rows[0];
        std::string sql = "UPDATE fans SET ";
        std::vector<sql_value> p;
        std::string detail_before = "{", detail_after = "{";
        const auto quoted_or_null = [](const std::optional<std::string>& v) {
            return v ? json_quote(*v) : std::string("null");
        };
        if (r.set_remark) {
            sql += "remark = ?";
            p.emplace_back(r.remark ? sql_value{*r.remark} : sql_value{});
            detail_before += "\"remark\":" + quoted_or_null(old[0]);
            detail_after += "\"remark\":" + quoted_or_null(r.remark);
        }
        if (r.tags) {
            const std::string tags = tags_json(*r.tags);
            sql += r.set_remark ? ", tags = ?" : "tags = ?";
            p.emplace_back(tags);
            const char* sep = r.set_remark ? "," : "";
            detail_before += std::string(sep) + "\"tags\":" + old[1].value_or("[]");
            detail_after += std::string(sep) + "\"tags\":" + tags;
        }
        sql += " WHERE account_id = ? AND openid = ?";
        p.emplace_back(fan.first);
        p.emplace_back(fan.second);
        if (auto u = db.execute(sql, p); !u) return u.error();
        auto a = audit(db, clinic, agent, "fan.profile", fan,
                       "{\"before\":" + detail_before + "},\"after\":" + detail_after + "}}");
        if (!a) return a.error();
        if (auto c = db.commit(); !c) return c.error();
        return panel_outcome::done;
    };
    co_return co_await mysql_.run(fn);
}

asio::awaitable<result<owner_change_result>> console_repository::set_owners(
    std::uint64_t clinic, std::uint64_t agent, fan_key fan, owner_request r,
    std::optional<std::uint64_t> exclusive_live_before) {
    auto fn = [&](mysql_session& db) -> result<owner_change_result> {
        owner_change_result out;
        if (auto b = db.begin(); !b) return b.error();
        // Agents first (shared locks: a deactivation waits for this commit), then the fan.
        for (const auto* id : {r.set_consultant ? &r.consultant : nullptr,
                               r.set_exclusive ? &r.exclusive : nullptr}) {
            if (!id || !*id) continue;
            auto ok = check_agent(db, clinic, **id);
            if (!ok) return ok.error();
            if (*ok != panel_outcome::done) {
                out.outcome = *ok;
                return abandon(db, out);
            }
        }
        sql_rows before;
        auto found = lock_fan(db, fan, &before, "consultant_agent_id, exclusive_agent_id");
        if (!found) return found.error();
        if (!*found) {
            out.outcome = panel_outcome::no_fan;
            return abandon(db, out);
        }
        out.consultant_before = optional_id(before.rows[0][0]);
        out.exclusive_before = optional_id(before.rows[0][1]);
        if (exclusive_live_before) out.exclusive_before = exclusive_live_before;
        std::string sql = "UPDATE fans SET ";
        std::vector<sql_value> p;
        std::string b = "{", a = "{";
        if (r.set_consultant) {
            sql += "consultant_agent_id = ?";
            p.push_back(nullable(r.consultant));
            b += "\"consultant\":" + id_or_null(out.consultant_before);
            a += "\"consultant\":" + id_or_null(r.consultant);
        }
        if (r.set_exclusive) {
            sql += r.set_consultant ? ", exclusive_agent_id = ?" : "exclusive_agent_id = ?";
            p.push_back(nullable(r.exclusive));
            const char* sep = r.set_consultant ? "," : "";
            b += std::string(sep) + "\"exclusive\":" + id_or_null(out.exclusive_before);
            a += std::string(sep) + "\"exclusive\":" + id_or_null(r.exclusive);
        }
        sql += " WHERE account_id = ? AND openid = ?";
        p.emplace_back(fan.first);
        p.emplace_back(fan.second);
        if (auto u = db.execute(sql, p); !u) return u.error();
        auto logged = audit(db, clinic, agent, "fan.owner", fan,
                            "{\"before\":" + b + "},\"after\":" + a + "}}");
        if (!logged) return logged.error();
        if (auto c = db.commit(); !c) return c.error();
        return out;
    };
    co_return co_await mysql_.run(fn);
}

asio::awaitable<result<std::pair<panel_outcome, std::uint64_t>>> console_repository::bind_patient(
    std::uint64_t clinic, std::uint64_t agent, fan_key fan, bind_patient_request r) {
    using answer = std::pair<panel_outcome, std::uint64_t>;
    auto fn = [&](mysql_session& db) -> result<answer> {
        if (auto b = db.begin(); !b) return b.error();
        auto found = lock_fan(db, fan, nullptr, "id");
        if (!found) return found.error();
        if (!*found) return abandon(db, answer{panel_outcome::no_fan, 0});
        std::uint64_t patient = 0;
        bool created = false;
        if (r.patient_id) {
            std::vector<sql_value> p{*r.patient_id, clinic};
            auto row = db.query("SELECT id FROM patients WHERE id = ? AND clinic_id = ?", p);
            if (!row) return row.error();
            if (row->rows.empty()) return abandon(db, answer{panel_outcome::no_patient, 0});
            patient = *r.patient_id;
        } else {
            if (r.record_no) {
                std::vector<sql_value> p{clinic, *r.record_no};
                auto row = db.query(
                    "SELECT id FROM patients WHERE clinic_id = ? AND record_no = ? FOR UPDATE", p);
                if (!row) return row.error();
                if (!row->rows.empty()) patient = sql_u64(row->rows[0][0]);
            }
            if (patient == 0) {
                std::vector<sql_value> p{clinic, r.name,
                                         r.phone ? sql_value{*r.phone} : sql_value{},
                                         r.record_no ? sql_value{*r.record_no} : sql_value{}};
                auto ins = db.query(
                    "INSERT INTO patients (clinic_id, name, phone, record_no) VALUES (?, ?, ?, ?)",
                    p);
                if (!ins) return ins.error();
                patient = ins->last_insert_id;
                created = true;
            }
        }
        std::vector<sql_value> bp{fan.first, fan.second, patient};
        auto bound = db.execute(
            "INSERT IGNORE INTO fan_patients (account_id, openid, patient_id) VALUES (?, ?, ?)",
            bp);
        if (!bound) return bound.error();
        auto a = audit(db, clinic, agent, "fan.patient_bound", fan,
                       "{\"patient_id\":" + std::to_string(patient) +
                           ",\"created\":" + (created ? "true" : "false") + "}");
        if (!a) return a.error();
        if (auto c = db.commit(); !c) return c.error();
        return answer{panel_outcome::done, patient};
    };
    co_return co_await mysql_.run(fn);
}

asio::awaitable<result<panel_outcome>> console_repository::unbind_patient(std::uint64_t clinic,
                                                                          std::uint64_t agent,
                                                                          fan_key fan,
                                                                          std::uint64_t patient) {
    auto fn = [&](mysql_session& db) -> result<panel_outcome> {
        if (auto b = db.begin(); !b) return b.error();
        std::vector<sql_value> p{fan.first, fan.second, patient};
        auto n = db.execute(
            "DELETE FROM fan_patients WHERE account_id = ? AND openid = ? AND patient_id = ?", p);
        if (!n) return n.error();
        if (*n == 0) return abandon(db, panel_outcome::no_patient);
        auto a = audit(db, clinic, agent, "fan.patient_unbound", fan,
                       "{\"patient_id\":" + std::to_string(patient) + "}");
        if (!a) return a.error();
        if (auto c = db.commit(); !c) return c.error();
        return panel_outcome::done;
    };
    co_return co_await mysql_.run(fn);
}

asio::awaitable<result<std::vector<agent_row>>> console_repository::agents(std::uint64_t clinic) {
    std::vector<sql_value> p{clinic};
    auto rows = co_await mysql_.query(
        "SELECT id, name, role, store_id, can_receive FROM agents WHERE clinic_id = ? AND "
        "active = 1 ORDER BY store_id IS NULL, store_id, name",
        std::move(p));
    if (!rows) co_return rows.error();
    std::vector<agent_row> out;
    for (const auto& r : rows->rows) {
        agent_row a;
        a.id = sql_u64(r[0]);
        a.clinic = clinic;
        a.name = r[1].value_or("");
        a.role = r[2].value_or("");
        a.store = optional_id(r[3]);
        a.can_receive = sql_u64(r[4]) != 0;
        a.active = true;
        out.push_back(std::move(a));
    }
    co_return out;
}

asio::awaitable<result<std::vector<std::pair<std::uint64_t, std::string>>>>
console_repository::stores(std::uint64_t clinic) {
    std::vector<sql_value> p{clinic};
    auto rows = co_await mysql_.query(
        "SELECT id, name FROM stores WHERE clinic_id = ? ORDER BY name", std::move(p));
    if (!rows) co_return rows.error();
    std::vector<std::pair<std::uint64_t, std::string>> out;
    for (const auto& r : rows->rows) out.emplace_back(sql_u64(r[0]), r[1].value_or(""));
    co_return out;
}

asio::awaitable<result<void>> console_repository::set_password(std::uint64_t clinic,
                                                               std::uint64_t agent,
                                                               std::string hash) {
    auto fn = [&](mysql_session& db) -> result<void> {
        if (auto b = db.begin(); !b) return b.error();
        std::vector<sql_value> p{hash, agent, clinic};
        auto n =
            db.execute("UPDATE agents SET password_hash = ? WHERE id = ? AND clinic_id = ?", p);
        if (!n) return n.error();
        audit_entry e;
        e.clinic = clinic;
        e.agent = agent;
        e.action = "agent.password";
        e.subject = "agent/" + std::to_string(agent);
        if (auto a = append_audit(db, e); !a) return a.error();
        return db.commit();
    };
    co_return co_await mysql_.run(fn);
}

}  // namespace scrm::gateway

// See agent_repository.hpp. Every query is a prepared statement with bound parameters; the only
// text spliced into SQL is fixed fragments chosen here.
#include "scrm/gateway/agent_repository.hpp"

#include "scrm/storage/mysql.hpp"

namespace scrm::gateway {

namespace asio = boost::asio;
using storage::mysql_session;
using storage::sql_rows;
using storage::sql_u64;
using storage::sql_value;

namespace {

constexpr const char* agent_columns =
    "a.id, a.clinic_id, a.name, a.role, a.store_id, a.can_receive, a.active, a.password_hash";

std::optional<std::uint64_t> optional_id(const std::optional<std::string>& v) {
    const auto id = sql_u64(v);
    return id ? std::optional<std::uint64_t>(id) : std::nullopt;
}

std::optional<agent_row> first_agent(const sql_rows& rows, bool with_hash) {
    if (rows.rows.empty()) return std::nullopt;
    const auto& r = rows.rows[0];
    agent_row a;
    a.id = sql_u64(r[0]);
    a.clinic = sql_u64(r[1]);
    a.name = r[2].value_or("");
    a.role = r[3].value_or("");
    a.store = optional_id(r[4]);
    a.can_receive = sql_u64(r[5]) != 0;
    a.active = sql_u64(r[6]) != 0;
    if (with_hash) a.password_hash = r[7].value_or("");
    return a;
}

}  // namespace

asio::awaitable<result<std::optional<agent_row>>> agent_repository::find_for_sign_in(
    std::optional<std::string> clinic_name, std::optional<std::uint64_t> clinic_id,
    std::optional<std::string> agent_name, std::optional<std::uint64_t> agent_id) {
    std::string sql = std::string("SELECT ") + agent_columns +
                      " FROM agents a JOIN clinics c ON c.id = a.clinic_id WHERE ";
    std::vector<sql_value> p;
    if (clinic_id) {
        sql += "c.id = ?";
        p.emplace_back(*clinic_id);
    } else {
        sql += "c.name = ?";
        p.emplace_back(clinic_name.value_or(""));
    }
    if (agent_id) {
        sql += " AND a.id = ?";
        p.emplace_back(*agent_id);
    } else {
        sql += " AND a.name = ?";
        p.emplace_back(agent_name.value_or(""));
    }
    auto rows = co_await mysql_.query(std::move(sql), std::move(p));
    if (!rows) co_return rows.error();
    co_return first_agent(*rows, true);
}

asio::awaitable<result<std::optional<agent_row>>> agent_repository::agent(std::uint64_t clinic,
                                                                          std::uint64_t id) {
    std::vector<sql_value> p{id, clinic};
    auto rows = co_await mysql_.query(std::string("SELECT ") + agent_columns +
                                          " FROM agents a WHERE a.id = ? AND a.clinic_id = ?",
                                      std::move(p));
    if (!rows) co_return rows.error();
    co_return first_agent(*rows, false);
}

asio::awaitable<result<std::optional<conversation_row>>> agent_repository::conversation(
    std::uint64_t account_id, std::string openid) {
    std::vector<sql_value> p{std::move(openid), account_id};
    auto rows = co_await mysql_.query(
        "SELECT a.clinic_id, f.id, f.store_id, f.exclusive_agent_id, f.consultant_agent_id "
        "FROM official_accounts a LEFT JOIN fans f ON f.account_id = a.id AND f.openid = ? "
        "WHERE a.id = ?",
        std::move(p));
    if (!rows) co_return rows.error();
    if (rows->rows.empty()) co_return std::optional<conversation_row>{};
    const auto& r = rows->rows[0];
    conversation_row c;
    c.clinic = sql_u64(r[0]);
    c.fan_known = r[1].has_value();
    c.store = optional_id(r[2]);
    c.exclusive_agent = optional_id(r[3]);
    c.consultant = optional_id(r[4]);
    co_return c;
}

asio::awaitable<result<bool>> agent_repository::store_in_clinic(std::uint64_t clinic,
                                                                std::uint64_t store) {
    std::vector<sql_value> p{store, clinic};
    auto rows =
        co_await mysql_.query("SELECT 1 FROM stores WHERE id = ? AND clinic_id = ?", std::move(p));
    if (!rows) co_return result<bool>(boost::system::in_place_error, rows.error());
    co_return !rows->rows.empty();
}

asio::awaitable<result<bool>> agent_repository::set_exclusive_if_none(std::uint64_t account_id,
                                                                      std::string openid,
                                                                      std::uint64_t agent) {
    std::vector<sql_value> p{agent, account_id, std::move(openid)};
    auto n = co_await mysql_.execute(
        "UPDATE fans SET exclusive_agent_id = ? WHERE account_id = ? AND openid = ? AND "
        "exclusive_agent_id IS NULL",
        std::move(p));
    if (!n) co_return result<bool>(boost::system::in_place_error, n.error());
    co_return *n > 0;
}

asio::awaitable<result<void>> agent_repository::set_store(std::uint64_t account_id,
                                                          std::string openid, std::uint64_t store) {
    std::vector<sql_value> p{store, account_id, std::move(openid)};
    auto n = co_await mysql_.execute(
        "UPDATE fans SET store_id = ? WHERE account_id = ? AND openid = ?", std::move(p));
    if (!n) co_return n.error();
    co_return result<void>{};
}

namespace {
constexpr const char* end_open_session =
    "UPDATE chat_sessions SET ended_at = CURRENT_TIMESTAMP(3), end_reason = ? "
    "WHERE account_id = ? AND openid = ? AND ended_at IS NULL";
}  // namespace

asio::awaitable<result<void>> agent_repository::session_started(std::uint64_t account_id,
                                                                std::string openid,
                                                                std::uint64_t agent,
                                                                std::string previous_reason) {
    auto fn = [&](storage::mysql_session& db) -> result<void> {
        if (auto b = db.begin(); !b) return b.error();
        std::vector<sql_value> ended{previous_reason, account_id, openid};
        if (auto r = db.execute(end_open_session, ended); !r) return r.error();
        std::vector<sql_value> started{account_id, openid, agent};
        auto r = db.execute(
            "INSERT INTO chat_sessions (account_id, openid, agent_id) VALUES (?, ?, ?)", started);
        if (!r) return r.error();
        return db.commit();
    };
    co_return co_await mysql_.run(fn);
}

asio::awaitable<result<void>> agent_repository::session_ended(std::uint64_t account_id,
                                                              std::string openid,
                                                              std::string reason) {
    std::vector<sql_value> p{std::move(reason), account_id, std::move(openid)};
    auto n = co_await mysql_.execute(end_open_session, std::move(p));
    if (!n) co_return n.error();
    co_return result<void>{};
}

asio::awaitable<result<void>> agent_repository::agent_sessions_ended(std::uint64_t clinic,
                                                                     std::uint64_t agent,
                                                                     std::string reason) {
    std::vector<sql_value> p{std::move(reason), clinic, agent};
    auto n = co_await mysql_.execute(
        "UPDATE chat_sessions s JOIN official_accounts a ON a.id = s.account_id "
        "SET s.ended_at = CURRENT_TIMESTAMP(3), s.end_reason = ? "
        "WHERE a.clinic_id = ? AND s.agent_id = ? AND s.ended_at IS NULL",
        std::move(p));
    if (!n) co_return n.error();
    co_return result<void>{};
}

asio::awaitable<result<std::optional<std::uint64_t>>> agent_repository::silent_session_ended(
    std::uint64_t clinic, std::string openid, std::uint64_t agent, std::int64_t due_ms) {
    auto fn = [&](storage::mysql_session& db) -> result<std::optional<std::uint64_t>> {
        std::vector<sql_value> fp{clinic, openid};
        auto rows = db.query(
            "SELECT f.account_id FROM fans f JOIN official_accounts a ON a.id = f.account_id "
            "WHERE a.clinic_id = ? AND f.openid = ? ORDER BY f.account_id LIMIT 1",
            fp);
        if (!rows) return rows.error();
        if (rows->rows.empty()) return std::optional<std::uint64_t>{};
        const std::uint64_t account = sql_u64(rows->rows[0][0]);
        std::vector<sql_value> p{account, openid, agent, due_ms};
        auto n = db.execute(
            "UPDATE chat_sessions SET ended_at = CURRENT_TIMESTAMP(3), end_reason = 'silence' "
            "WHERE account_id = ? AND openid = ? AND agent_id = ? AND ended_at IS NULL "
            "AND started_at < FROM_UNIXTIME(? / 1000)",
            p);
        if (!n) return n.error();
        return std::optional<std::uint64_t>(account);
    };
    co_return co_await mysql_.run(fn);
}

asio::awaitable<result<std::vector<std::pair<std::uint64_t, std::string>>>>
agent_repository::fan_accounts(std::uint64_t clinic, std::vector<std::string> openids) {
    using out_t = std::vector<std::pair<std::uint64_t, std::string>>;
    if (openids.empty()) co_return out_t{};
    std::string sql =
        "SELECT f.account_id, f.openid FROM fans f JOIN official_accounts a "
        "ON a.id = f.account_id WHERE a.clinic_id = ? AND f.openid IN (";
    std::vector<sql_value> p{clinic};
    for (auto& o : openids) {
        sql += p.size() > 1 ? ",?" : "?";
        p.emplace_back(std::move(o));
    }
    sql += ") ORDER BY f.openid, f.account_id";
    auto rows = co_await mysql_.query(std::move(sql), std::move(p));
    if (!rows) co_return rows.error();
    out_t out;
    for (const auto& r : rows->rows) out.emplace_back(sql_u64(r[0]), r[1].value_or(""));
    co_return out;
}

asio::awaitable<result<std::vector<backlog_entry>>> agent_repository::backlog(backlog_query q) {
    // A message is waiting while no agent reply (an outbox row of origin agent:…) to its fan was
    // created after it. Receipts name the clinic and the rule; the fan row names store and
    // consultant. ix_routing_receipts_clinic bounds the scan to the window; ix_outbox_fan serves
    // the NOT EXISTS.
    std::string waiting_for_anyone = "FALSE";
    std::vector<sql_value> p{q.clinic, static_cast<std::int64_t>(q.max_age_s)};
    if (q.candidate) {
        waiting_for_anyone = "(r.rule = 'none'";
        if (q.store_scope) {
            waiting_for_anyone += " AND (f.store_id IS NULL OR f.store_id = ?)";
            p.emplace_back(*q.store_scope);
        }
        if (q.consultant_mode) {
            waiting_for_anyone +=
                " AND (f.consultant_agent_id IS NULL OR f.consultant_agent_id = ?)";
            p.emplace_back(q.agent);
        }
        waiting_for_anyone += ")";
    }
    p.emplace_back(q.agent);
    p.emplace_back(static_cast<std::int64_t>(q.limit));
    std::string sql =
        "SELECT m.account_id, m.openid, MIN(m.received_at), MAX(m.received_at), COUNT(*), "
        "MAX(r.rule = 'consultant') FROM routing_receipts r "
        "JOIN inbound_messages m ON m.id = r.message_id "
        "LEFT JOIN fans f ON f.account_id = m.account_id AND f.openid = m.openid "
        "WHERE r.clinic_id = ? AND r.decided_at >= CURRENT_TIMESTAMP(3) - INTERVAL ? SECOND "
        "AND (" +
        waiting_for_anyone +
        " OR (r.rule = 'consultant' AND r.owner_agent_id = ?)) "
        "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.account_id = m.account_id AND "
        "o.openid = m.openid AND o.origin LIKE 'agent:%' AND o.created_at >= m.received_at) "
        "GROUP BY m.account_id, m.openid ORDER BY 3, 1, 2 LIMIT ?";
    auto rows = co_await mysql_.query(std::move(sql), std::move(p));
    if (!rows) co_return rows.error();
    std::vector<backlog_entry> out;
    out.reserve(rows->rows.size());
    for (const auto& r : rows->rows) {
        backlog_entry e;
        e.account_id = sql_u64(r[0]);
        e.openid = r[1].value_or("");
        e.waiting_since = r[2].value_or("");
        e.last_message_at = r[3].value_or("");
        e.messages = sql_u64(r[4]);
        e.for_consultant = sql_u64(r[5]) != 0;
        out.push_back(std::move(e));
    }
    co_return out;
}

}  // namespace scrm::gateway

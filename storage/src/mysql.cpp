// The MySQL layer's implementation: the only file that includes Connector/C++. A session owns one
// connection and its prepared-statement cache; the pool runs jobs on worker threads.
#include "scrm/storage/mysql.hpp"

#include <openssl/rand.h>

#include <cppconn/connection.h>
#include <cppconn/datatype.h>
#include <cppconn/exception.h>
#include <cppconn/parameter_metadata.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/resultset_metadata.h>
#include <cppconn/statement.h>
#include <mysql_driver.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <list>
#include <ostream>
#include <unordered_map>

#include "scrm/common/log.hpp"
#include "scrm/common/thread_role.hpp"

namespace scrm::storage {

namespace detail {

// Shared by a pool's sessions; read by mysql_pool::stats().
struct session_counters {
    std::atomic<unsigned> connected{0};
    std::atomic<std::uint64_t> reconnects{0};
    std::atomic<std::uint64_t> connect_failures{0};
};

}  // namespace detail

namespace {

using clock_type = std::chrono::steady_clock;

// Client error numbers (libmariadb errmsg.h) and server error numbers we act on.
constexpr int cr_connection_error = 2002;
constexpr int cr_conn_host_error = 2003;
constexpr int cr_unknown_host = 2005;
constexpr int cr_server_gone = 2006;  // the command could not be sent
constexpr int cr_server_lost = 2013;  // the answer did not come (may have executed)
constexpr int cr_server_lost_extended = 2055;
constexpr int er_server_shutdown = 1053;
constexpr int er_connection_killed = 1927;
constexpr int er_client_interaction_timeout = 4031;
constexpr int er_dup_entry = 1062;
constexpr int er_dup_entry_with_key_name = 1586;
constexpr int er_lock_wait_timeout = 1205;
constexpr int er_unknown_stmt_handler = 1243;
constexpr int er_unsupported_ps = 1295;

bool is_connection_error(int code) {
    switch (code) {
        case cr_connection_error:
        case cr_conn_host_error:
        case cr_unknown_host:
        case cr_server_gone:
        case cr_server_lost:
        case cr_server_lost_extended:
        case er_server_shutdown:
        case er_connection_killed:
        case er_client_interaction_timeout: return true;
        default: return false;
    }
}

// The server's settings every connection starts with (re-applied after each reconnect).
constexpr std::string_view session_setup[] = {
    "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci",
    "SET SESSION time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,"
    "NO_ZERO_DATE,NO_ZERO_IN_DATE,NO_ENGINE_SUBSTITUTION'",
};

int whole_seconds_up(std::chrono::milliseconds ms) {
    const auto s = (ms.count() + 999) / 1000;
    return static_cast<int>(std::clamp<long long>(s, 1, 24 * 3600));
}

sql::mysql::MySQL_Driver* driver() {
    // The first call initialises the client library; a function-local static makes it thread-safe.
    static sql::mysql::MySQL_Driver* const instance = sql::mysql::get_mysql_driver_instance();
    return instance;
}

// Connector/C++ wants threadInit()/threadEnd() around a thread's use of the client library.
thread_local int thread_users = 0;

void thread_enter() {
    if (thread_users++ == 0) driver()->threadInit();
}

void thread_leave() {
    if (--thread_users == 0) driver()->threadEnd();
}

bool starts_with_word(std::string_view sql, std::string_view word) {
    std::size_t i = 0;
    while (i < sql.size() && std::isspace(static_cast<unsigned char>(sql[i]))) ++i;
    if (sql.size() - i < word.size()) return false;
    for (std::size_t k = 0; k < word.size(); ++k) {
        if (std::toupper(static_cast<unsigned char>(sql[i + k])) != word[k]) return false;
    }
    const std::size_t end = i + word.size();
    return end == sql.size() || !std::isalnum(static_cast<unsigned char>(sql[end]));
}

}  // namespace

std::uint64_t random_row_token() {
    std::uint64_t token = 0;
    while (token == 0) {
        if (RAND_bytes(reinterpret_cast<unsigned char*>(&token), sizeof token) != 1) token = 0;
        token &= 0x7fffffffffffffffULL;  // fits BIGINT either way
    }
    return token;
}

std::uint64_t sql_u64(const std::optional<std::string>& v) {
    std::uint64_t out = 0;
    if (v) std::from_chars(v->data(), v->data() + v->size(), out);
    return out;
}

std::string and_in(std::string_view column, const std::vector<std::uint64_t>& ids) {
    if (ids.empty()) return {};
    std::string out = " AND " + std::string(column) + " IN (";
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (i) out += ',';
        out += std::to_string(ids[i]);
    }
    return out + ")";
}

void append_sql_literal(std::string& out, const sql_value& v) {
    char buf[32];
    if (std::holds_alternative<std::monostate>(v)) {
        out += "NULL";
    } else if (const auto* i64 = std::get_if<std::int64_t>(&v)) {
        out.append(buf, std::to_chars(buf, buf + sizeof buf, *i64).ptr);
    } else if (const auto* u64 = std::get_if<std::uint64_t>(&v)) {
        out.append(buf, std::to_chars(buf, buf + sizeof buf, *u64).ptr);
    } else if (const auto* d = std::get_if<double>(&v)) {
        out.append(buf, std::to_chars(buf, buf + sizeof buf, *d).ptr);
    } else {
        append_sql_string(out, std::get<std::string>(v));
    }
}

void append_sql_string(std::string& out, std::string_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    const std::size_t at = out.size();
    out.resize(at + 3 + 2 * bytes.size());
    char* p = out.data() + at;
    *p++ = 'X';
    *p++ = '\'';
    for (unsigned char c : bytes) {
        *p++ = digits[c >> 4];
        *p++ = digits[c & 15];
    }
    *p = '\'';
}

void sql_lit(std::string& out, std::uint64_t v) {
    char buf[24];
    out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

void sql_lit(std::string& out, std::int64_t v) {
    char buf[24];
    out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

std::optional<std::size_t> sql_rows::column(std::string_view name) const {
    for (std::size_t i = 0; i < columns.size(); ++i) {
        if (columns[i] == name) return i;
    }
    return std::nullopt;
}

std::ostream& operator<<(std::ostream& os, const sql_rows& r) {
    os << "sql_rows{columns=[";
    for (std::size_t i = 0; i < r.columns.size(); ++i) os << (i ? "," : "") << r.columns[i];
    return os << "], rows=" << r.rows.size() << ", affected=" << r.affected
              << ", last_insert_id=" << r.last_insert_id << "}";
}

std::ostream& operator<<(std::ostream& os, const sql_error& e) {
    return os << "sql_error{" << e.code << ", " << e.sqlstate << ", " << e.message << "}";
}

// ---------------------------------------------------------------------------------------------
// mysql_session::impl

struct mysql_session::impl {
    explicit impl(mysql_options o) : opts(std::move(o)) {
        driver();  // initialise the library before the thread registration
        thread_enter();
    }
    ~impl() {
        drop_connection();
        thread_leave();
    }

    impl(const impl&) = delete;
    impl& operator=(const impl&) = delete;

    // What went wrong in one attempt, before mapping to an errc.
    enum class outcome { ok, retry, fail };

    struct cached_statement {
        std::unique_ptr<sql::PreparedStatement> stmt;
        std::list<std::string>::iterator lru_pos;
    };

    mysql_options opts;
    detail::session_counters* counters = nullptr;
    std::unique_ptr<sql::Connection> conn;
    // Most recently used first. Statements are destroyed before the connection.
    std::list<std::string> lru;
    std::unordered_map<std::string, cached_statement> statements;
    std::unique_ptr<sql::Statement> text_statement;  // query_inline's, reused
    clock_type::time_point last_used{};
    clock_type::time_point next_connect_attempt{};
    bool ever_connected = false;
    bool connect_failing = false;  // the last connect attempt failed
    bool in_tx = false;
    bool tx_broken = false;
    sql_error last_error;

    void set_error(int code, std::string sqlstate, std::string message) {
        last_error.code = code;
        last_error.sqlstate = std::move(sqlstate);
        last_error.message = std::move(message);
    }

    void set_error(const sql::SQLException& e) {
        set_error(e.getErrorCode(), e.getSQLState(), e.what());
    }

    void drop_connection() {
        // Statements first: they refer to the connection.
        statements.clear();
        lru.clear();
        text_statement.reset();
        if (conn) {
            try {
                conn->close();
            } catch (...) {
                // Closing a broken connection may complain; it is being discarded anyway.
            }
            conn.reset();
            if (counters) counters->connected.fetch_sub(1);
        }
    }

    result<void> connect() {
        if (conn) return {};
        const auto now = clock_type::now();
        if (now < next_connect_attempt) {
            set_error(cr_conn_host_error, "HY000", "not connected (waiting before reconnecting)");
            return errc::unavailable;
        }
        sql::ConnectOptionsMap o;
        o["hostName"] = sql::SQLString(opts.host);
        o["port"] = static_cast<int>(opts.port);
        o["userName"] = sql::SQLString(opts.user);
        o["password"] = sql::SQLString(opts.password);
        if (!opts.database.empty()) o["schema"] = sql::SQLString(opts.database);
        o["OPT_CONNECT_TIMEOUT"] = whole_seconds_up(opts.connect_timeout);
        o["OPT_READ_TIMEOUT"] = whole_seconds_up(opts.read_timeout);
        o["OPT_WRITE_TIMEOUT"] = whole_seconds_up(opts.write_timeout);
        // A silent driver reconnect would lose the session settings: we reconnect ourselves.
        o["OPT_RECONNECT"] = false;
        o["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
        try {
            conn.reset(driver()->connect(o));
            if (counters) counters->connected.fetch_add(1);
            for (const auto text : session_setup) {
                std::unique_ptr<sql::PreparedStatement> st(
                    conn->prepareStatement(sql::SQLString(text.data(), text.size())));
                st->executeUpdate();
            }
        } catch (const sql::SQLException& e) {
            set_error(e);
            // Warn once per outage; the retries that follow are debug lines.
            log::write(connect_failing ? log::level::debug : log::level::warn,
                       "mysql.connect_failed",
                       {{"host", opts.host},
                        {"port", static_cast<unsigned>(opts.port)},
                        {"code", e.getErrorCode()},
                        {"sqlstate", e.getSQLState()}});
            connect_failing = true;
            drop_connection();
            next_connect_attempt = clock_type::now() + opts.reconnect_backoff;
            if (counters) counters->connect_failures.fetch_add(1);
            return errc::unavailable;
        } catch (const std::exception& e) {
            set_error(0, "HY000", e.what());
            log::write(connect_failing ? log::level::debug : log::level::warn,
                       "mysql.connect_failed",
                       {{"host", opts.host}, {"error", "driver exception"}});
            connect_failing = true;
            drop_connection();
            next_connect_attempt = clock_type::now() + opts.reconnect_backoff;
            if (counters) counters->connect_failures.fetch_add(1);
            return errc::unavailable;
        }
        if (ever_connected) {
            if (counters) counters->reconnects.fetch_add(1);
            log::info("mysql.reconnected",
                      {{"host", opts.host}, {"port", static_cast<unsigned>(opts.port)}});
        }
        ever_connected = true;
        connect_failing = false;
        last_used = clock_type::now();
        return {};
    }

    // Makes sure a connection is there, pinging one that has been idle (nothing has been sent yet,
    // so replacing a dead one here is always safe). Inside a transaction a broken connection is
    // not replaced: the transaction is gone.
    result<void> ready() {
        if (tx_broken) {
            set_error(cr_server_lost, "HY000", "the transaction's connection was lost");
            return errc::unavailable;
        }
        if (conn && !in_tx && clock_type::now() - last_used >= opts.validate_after_idle) {
            bool alive = false;
            try {
                alive = conn->isValid();
            } catch (...) {
                alive = false;
            }
            if (!alive) {
                log::info("mysql.connection_lost", {{"when", "idle ping"}});
                drop_connection();
            } else {
                last_used = clock_type::now();
            }
        }
        if (!conn) {
            if (in_tx) {
                tx_broken = true;
                set_error(cr_server_lost, "HY000", "the transaction's connection was lost");
                return errc::unavailable;
            }
            return connect();
        }
        return {};
    }

    sql::PreparedStatement& prepared(std::string_view text) {
        std::string key(text);
        if (auto it = statements.find(key); it != statements.end()) {
            lru.splice(lru.begin(), lru, it->second.lru_pos);
            return *it->second.stmt;
        }
        std::unique_ptr<sql::PreparedStatement> st(
            conn->prepareStatement(sql::SQLString(text.data(), text.size())));
        if (statements.size() >= std::max<std::size_t>(opts.statement_cache, 1)) {
            statements.erase(lru.back());
            lru.pop_back();
        }
        lru.push_front(key);
        auto& slot = statements[key];
        slot.stmt = std::move(st);
        slot.lru_pos = lru.begin();
        return *slot.stmt;
    }

    void forget_statement(std::string_view text) {
        if (auto it = statements.find(std::string(text)); it != statements.end()) {
            lru.erase(it->second.lru_pos);
            statements.erase(it);
        }
    }

    static void bind(sql::PreparedStatement& st, const std::vector<sql_value>& params) {
        for (std::size_t i = 0; i < params.size(); ++i) {
            const auto pos = static_cast<unsigned>(i + 1);
            const sql_value& v = params[i];
            if (std::holds_alternative<std::monostate>(v)) {
                st.setNull(pos, sql::DataType::SQLNULL);
            } else if (const auto* i64 = std::get_if<std::int64_t>(&v)) {
                st.setInt64(pos, *i64);
            } else if (const auto* u64 = std::get_if<std::uint64_t>(&v)) {
                st.setUInt64(pos, *u64);
            } else if (const auto* d = std::get_if<double>(&v)) {
                st.setDouble(pos, *d);
            } else {
                const auto& s = std::get<std::string>(v);
                st.setString(pos, sql::SQLString(s));
            }
        }
    }

    template <class Float>
    static std::string shortest(Float v) {
        char buf[64];
        const auto res = std::to_chars(buf, buf + sizeof buf, v);
        return std::string(buf, res.ptr);
    }

    static sql_rows read_rows(sql::ResultSet& rs) {
        sql_rows out;
        sql::ResultSetMetaData* md = rs.getMetaData();  // owned by the result set
        const unsigned n = md->getColumnCount();
        out.columns.reserve(n);
        std::vector<int> types(n + 1);
        for (unsigned c = 1; c <= n; ++c) {
            out.columns.emplace_back(md->getColumnLabel(c).asStdString());
            types[c] = md->getColumnType(c);
        }
        while (rs.next()) {
            auto& row = out.rows.emplace_back();
            row.reserve(n);
            for (unsigned c = 1; c <= n; ++c) {
                if (rs.isNull(c)) {
                    row.emplace_back(std::nullopt);
                } else if (types[c] == sql::DataType::DOUBLE) {
                    // The driver's text form of binary floats is printf("%f"): it drops digits.
                    row.emplace_back(shortest(static_cast<double>(rs.getDouble(c))));
                } else if (types[c] == sql::DataType::REAL) {
                    row.emplace_back(shortest(static_cast<float>(rs.getDouble(c))));
                } else {
                    row.emplace_back(rs.getString(c).asStdString());
                }
            }
        }
        return out;
    }

    // One attempt at a statement. `sent` tells whether it may have reached the server.
    sql_rows run_statement(std::string_view text, const std::vector<sql_value>& params,
                           bool inline_text, bool& sent) {
        if (inline_text) return run_inline(text, sent);
        sql::PreparedStatement& st = prepared(text);
        const int expected = st.getParameterMetaData()->getParameterCount();
        if (expected < 0 || static_cast<std::size_t>(expected) != params.size()) {
            throw sql::InvalidArgumentException("wrong number of parameters");
        }
        st.clearParameters();
        bind(st, params);
        sent = true;
        sql_rows out;
        if (st.getMetaData()->getColumnCount() > 0) {
            std::unique_ptr<sql::ResultSet> rs(st.executeQuery());
            out = read_rows(*rs);
        } else {
            const int affected = st.executeUpdate();
            out.affected = affected < 0 ? 0 : static_cast<std::uint64_t>(affected);
            if (out.affected > 0 &&
                (starts_with_word(text, "INSERT") || starts_with_word(text, "REPLACE"))) {
                sql::PreparedStatement& id = prepared("SELECT LAST_INSERT_ID()");
                std::unique_ptr<sql::ResultSet> rs(id.executeQuery());
                if (rs->next()) out.last_insert_id = rs->getUInt64(1);
            }
        }
        last_used = clock_type::now();
        return out;
    }

    sql_rows run_inline(std::string_view text, bool& sent) {
        if (!text_statement) text_statement.reset(conn->createStatement());
        sent = true;
        sql_rows out;
        if (text_statement->execute(sql::SQLString(text.data(), text.size()))) {
            std::unique_ptr<sql::ResultSet> rs(text_statement->getResultSet());
            out = read_rows(*rs);
        } else {
            out.affected = static_cast<std::uint64_t>(text_statement->getUpdateCount());
        }
        last_used = clock_type::now();
        return out;
    }

    errc classify_server_error(int code) const {
        switch (code) {
            case er_dup_entry:
            case er_dup_entry_with_key_name: return errc::conflict;
            case er_lock_wait_timeout: return errc::timeout;
            case er_unsupported_ps: return errc::bad_input;
            default: return errc::server_error;
        }
    }

    result<sql_rows> query(std::string_view text, const std::vector<sql_value>& params,
                           bool inline_text = false) {
        last_error = {};
        for (int attempt = 0;; ++attempt) {
            if (auto r = ready(); !r) return r.error();
            bool sent = false;
            const auto started = clock_type::now();
            try {
                return run_statement(text, params, inline_text, sent);
            } catch (const sql::InvalidArgumentException& e) {
                set_error(e);
                return errc::bad_input;
            } catch (const sql::SQLException& e) {
                set_error(e);
                const int code = e.getErrorCode();
                if (code == er_unknown_stmt_handler && attempt == 0) {
                    // The server forgot the statement (cannot happen without a silent reconnect,
                    // but cheap to survive): prepare it again; it did not execute.
                    forget_statement(text);
                    continue;
                }
                if (!is_connection_error(code)) return classify_server_error(code);
                const auto elapsed = clock_type::now() - started;
                drop_connection();
                if (in_tx) {
                    tx_broken = true;
                    log::warn("mysql.connection_lost",
                              {{"when", "in transaction"}, {"code", code}});
                    return errc::unavailable;
                }
                // The driver reports a read timeout as a lost connection (2013): tell them apart
                // by the time spent. A timeout is never retried: the server is stalled, and a
                // second attempt would only double the wait.
                const bool timed_out =
                    code == cr_server_lost &&
                    elapsed >= std::chrono::seconds(whole_seconds_up(opts.read_timeout)) -
                                   std::chrono::milliseconds(100);
                const bool not_executed = !sent || code == cr_server_gone;
                const bool retry = not_executed && !timed_out && attempt == 0;
                log::warn("mysql.connection_lost", {{"when", sent ? "executing" : "preparing"},
                                                    {"code", code},
                                                    {"timed_out", timed_out},
                                                    {"retry", retry}});
                if (retry) continue;
                return timed_out ? errc::timeout : errc::unavailable;
            } catch (const std::exception& e) {
                // Connector/C++ may throw plain std exceptions (e.g. bad_alloc); the connection
                // state is unknown: start over.
                set_error(0, "HY000", e.what());
                drop_connection();
                if (in_tx) tx_broken = true;
                return errc::server_error;
            }
        }
    }

    result<void> simple(std::string_view text) {
        auto r = query(text, {});
        if (!r) return r.error();
        return {};
    }

    result<void> begin() {
        if (in_tx) {
            set_error(0, "25000", "a transaction is already open");
            return errc::bad_input;
        }
        if (auto r = simple("START TRANSACTION"); !r) return r;
        in_tx = true;
        tx_broken = false;
        return {};
    }

    result<void> commit() {
        if (!in_tx) {
            set_error(0, "25000", "no transaction is open");
            return errc::bad_input;
        }
        if (tx_broken) {
            in_tx = tx_broken = false;
            set_error(cr_server_lost, "HY000", "the transaction's connection was lost");
            return errc::unavailable;
        }
        auto r = simple("COMMIT");
        // Whatever happened, the transaction is over: committed, or rolled back by the server
        // when the connection broke (the outcome of a COMMIT lost in flight is unknown).
        in_tx = tx_broken = false;
        return r;
    }

    result<void> rollback() {
        if (!in_tx) return {};
        if (tx_broken) {
            in_tx = tx_broken = false;
            return {};  // the server rolled it back when the connection went
        }
        auto r = simple("ROLLBACK");
        in_tx = tx_broken = false;
        if (!r && !conn) return {};  // connection lost: the server rolls back on its own
        return r;
    }
};

// ---------------------------------------------------------------------------------------------
// mysql_session

mysql_session::mysql_session(mysql_options opts) : impl_(std::make_unique<impl>(std::move(opts))) {}
mysql_session::~mysql_session() = default;

result<sql_rows> mysql_session::query(std::string_view sql, const std::vector<sql_value>& params) {
    expect_blocking_allowed("mysql_session::query");
    return impl_->query(sql, params);
}

result<sql_rows> mysql_session::query_inline(std::string_view sql) {
    expect_blocking_allowed("mysql_session::query_inline");
    return impl_->query(sql, {}, true);
}

result<std::uint64_t> mysql_session::execute(std::string_view sql,
                                             const std::vector<sql_value>& params) {
    expect_blocking_allowed("mysql_session::execute");
    auto r = impl_->query(sql, params);
    if (!r) return r.error();
    return r->affected;
}

result<void> mysql_session::begin() {
    expect_blocking_allowed("mysql_session::begin");
    return impl_->begin();
}
result<void> mysql_session::commit() {
    expect_blocking_allowed("mysql_session::commit");
    return impl_->commit();
}
result<void> mysql_session::rollback() {
    expect_blocking_allowed("mysql_session::rollback");
    return impl_->rollback();
}
bool mysql_session::in_transaction() const {
    return impl_->in_tx;
}

result<void> mysql_session::connect() {
    expect_blocking_allowed("mysql_session::connect");
    impl_->last_error = {};
    return impl_->ready();
}

result<void> mysql_session::ping() {
    expect_blocking_allowed("mysql_session::ping");
    auto r = impl_->query("SELECT 1", {});
    if (!r) return r.error();
    return {};
}

bool mysql_session::connected() const {
    return impl_->conn != nullptr;
}
const sql_error& mysql_session::last_error() const {
    return impl_->last_error;
}

void mysql_session::set_counters(detail::session_counters* counters) {
    impl_->counters = counters;
    if (impl_->conn && counters) counters->connected.fetch_add(1);
}

void mysql_session::finish_job() {
    if (impl_->in_tx) {
        log::warn("mysql.transaction_left_open", {{"action", "rollback"}});
        (void)impl_->rollback();
    }
}

// ---------------------------------------------------------------------------------------------
// mysql_pool

mysql_pool::mysql_pool(mysql_options opts)
    : opts_(std::move(opts)), counters_(std::make_unique<detail::session_counters>()) {
    if (opts_.workers == 0) opts_.workers = 1;
    driver();  // initialise the client library on this thread, before the workers start
    threads_.reserve(opts_.workers);
    for (unsigned i = 0; i < opts_.workers; ++i) {
        threads_.emplace_back([this, i] { worker_main(i); });
    }
    log::info("mysql.pool_started", {{"workers", opts_.workers},
                                     {"queue_limit", static_cast<std::uint64_t>(opts_.queue_limit)},
                                     {"host", opts_.host},
                                     {"port", static_cast<unsigned>(opts_.port)},
                                     {"database", opts_.database}});
}

mysql_pool::~mysql_pool() {
    stop();
}

void mysql_pool::stop() {
    std::deque<std::unique_ptr<detail::mysql_job>> waiting;
    {
        std::lock_guard lk(mu_);
        if (!stopping_) {
            stopping_ = true;
            waiting.swap(queue_);
            in_flight_ -= waiting.size();
        }
    }
    cv_.notify_all();
    for (auto& job : waiting) job->reject(errc::shutting_down);
    waiting.clear();
    std::lock_guard join_lk(
        join_mu_);  // two concurrent stop() calls must not join one thread twice
    for (auto& t : threads_) {
        if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
    }
}

void mysql_pool::submit(std::unique_ptr<detail::mysql_job> job) {
    errc refused = errc::ok;
    {
        std::lock_guard lk(mu_);
        if (stopping_) {
            refused = errc::shutting_down;
        } else if (in_flight_ >= opts_.workers + opts_.queue_limit) {
            refused = errc::overloaded;
            ++overloaded_total_;
        } else {
            ++in_flight_;
            queue_.push_back(std::move(job));
        }
    }
    if (refused == errc::ok) {
        cv_.notify_one();
        return;
    }
    if (refused == errc::overloaded) log::debug("mysql.overloaded");
    job->reject(refused);
}

void mysql_pool::worker_main(unsigned index) {
    mysql_session session(opts_);
    session.set_counters(counters_.get());
    // Connect ahead of the first request; a failure here is logged and retried on demand.
    (void)session.connect();
    std::unique_lock lk(mu_);
    for (;;) {
        cv_.wait(lk, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) break;  // stopping, nothing left
        auto job = std::move(queue_.front());
        queue_.pop_front();
        ++busy_;
        lk.unlock();
        job->execute(session);
        session.finish_job();
        job.reset();
        lk.lock();
        --busy_;
        --in_flight_;
    }
    lk.unlock();
    log::debug("mysql.worker_stopped", {{"worker", index}});
}

mysql_pool::stats_t mysql_pool::stats() const {
    stats_t s;
    {
        std::lock_guard lk(mu_);
        s.busy = busy_;
        s.queued = queue_.size();
        s.overloaded_total = overloaded_total_;
    }
    s.workers = opts_.workers;
    s.queue_limit = opts_.queue_limit;
    s.connected = counters_->connected.load();
    s.reconnects = counters_->reconnects.load();
    s.connect_failures = counters_->connect_failures.load();
    return s;
}

boost::asio::awaitable<result<sql_rows>> mysql_pool::query(std::string sql,
                                                           std::vector<sql_value> params) {
    auto fn = [sql = std::move(sql), params = std::move(params)](mysql_session& s) {
        return s.query(sql, params);
    };
    co_return co_await run(std::move(fn));
}

boost::asio::awaitable<result<std::uint64_t>> mysql_pool::execute(std::string sql,
                                                                  std::vector<sql_value> params) {
    auto fn = [sql = std::move(sql), params = std::move(params)](mysql_session& s) {
        return s.execute(sql, params);
    };
    co_return co_await run(std::move(fn));
}

boost::asio::awaitable<result<void>> mysql_pool::ping() {
    auto fn = [](mysql_session& s) { return s.ping(); };
    co_return co_await run(std::move(fn));
}

}  // namespace scrm::storage

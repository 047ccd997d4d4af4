// See clinic_fixture.hpp. Rows are written with the same sealing the gateway opens (secret_box).
#include "clinic_fixture.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <ctime>

#include "scrm/gateway/password.hpp"
#include "scrm/gateway/secret_box.hpp"
#include "scrm/gateway/services.hpp"
#include "scrm/storage/redis.hpp"
#include "scrm/wechat/signature.hpp"
#include "test_env.hpp"

namespace scrm::test {

const std::string clinic_fixture::master_hex(64, 'e');
const std::string clinic_fixture::token = "FixtureToken1";
const std::string clinic_fixture::original_id = "gh_fixture00001";

namespace {

const std::string aes_text = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

storage::sql_value optional_value(const std::optional<std::uint64_t>& v) {
    return v ? storage::sql_value{*v} : storage::sql_value{};
}

}  // namespace

void delete_keys_under(boost::asio::io_context& io, storage::redis_client& redis,
                       const std::string& root) {
    const auto run = [&io](auto aw) {
        return boost::asio::co_spawn(io, std::move(aw), boost::asio::use_future).get();
    };
    try {
        std::vector<std::string> keys;
        std::string cursor = "0";
        do {
            std::vector<std::string> cmd{"SCAN", cursor, "MATCH", root + ":*", "COUNT", "1000"};
            auto r = run(redis.command(std::move(cmd)));
            if (!r || r->elements.size() != 2) break;
            cursor = r->elements[0].str;
            for (const auto& e : r->elements[1].elements) keys.push_back(e.str);
        } while (cursor != "0");
        if (!keys.empty()) (void)run(redis.del(std::move(keys)));
    } catch (...) {
    }
}

clinic_fixture::clinic_fixture(const std::string& routing_columns,
                               const std::string& routing_values, const gateway::config& servers)
    : cfg(servers) {
    static std::atomic<unsigned> counter{0};
    appid = "wx" + std::to_string(3000000000000000ULL +
                                  static_cast<unsigned>(::getpid()) * 1000ULL + counter++);
    name = unique_name("fixture clinic");
    execute("INSERT INTO clinics (name) VALUES (?)", {name});
    clinic = std::stoull(value("SELECT id FROM clinics WHERE name = ?", {name}));
    auto box = *gateway::secret_box::from_hex(master_hex);
    auto seal = [&](const std::string& v, const char* field) {
        return *box.seal(v, std::string("official_accounts.") + field + ":" + appid);
    };
    execute(
        "INSERT INTO official_accounts (clinic_id, appid, original_id, token_sealed, "
        "aes_key_sealed, secret_sealed) VALUES (?,?,?,?,?,?)",
        {clinic, appid, original_id, seal(token, "token"), seal(aes_text, "aes_key"),
         seal("0123456789abcdef0123456789abcdef", "secret")});
    account = std::stoull(value("SELECT id FROM official_accounts WHERE appid = ?", {appid}));
    const std::string cols = routing_columns.empty() ? "" : ", " + routing_columns;
    const std::string vals = routing_values.empty() ? "" : ", " + routing_values;
    execute("INSERT INTO clinic_routing (clinic_id" + cols + ") VALUES (?" + vals + ")", {clinic});
}

clinic_fixture::~clinic_fixture() {
    storage::mysql_session db(gateway::mysql_options_from(cfg.mysql));
    const std::vector<storage::sql_value> a{account};
    const std::vector<storage::sql_value> c{clinic};
    (void)db.execute("DELETE FROM routing_receipts WHERE clinic_id = ?", c);
    (void)db.execute(
        "DELETE r FROM evaluation_ratings r JOIN evaluations e ON e.id = r.evaluation_id "
        "WHERE e.clinic_id = ?",
        c);
    (void)db.execute("DELETE FROM waiting_replies WHERE clinic_id = ?", c);
    (void)db.execute("DELETE FROM evaluations WHERE clinic_id = ?", c);
    (void)db.execute("DELETE FROM evaluation_attributes WHERE clinic_id = ?", c);
    for (const char* table : {"fan_patients", "inbound_media", "outbox", "inbound_messages",
                              "dead_letters", "fans", "chat_sessions"}) {
        (void)db.execute(std::string("DELETE FROM ") + table + " WHERE account_id = ?", a);
    }
    (void)db.execute(
        "DELETE q FROM store_qr_codes q JOIN stores s ON s.id = q.store_id WHERE s.clinic_id = ?",
        c);
    (void)db.execute("DELETE FROM official_accounts WHERE id = ?", a);
    (void)db.execute("DELETE FROM official_accounts WHERE clinic_id = ?", c);  // added by tests
    for (const char* table : {"snippets", "snippet_groups", "template_settings", "api_keys",
                              "integration_events", "template_log", "audit_log"}) {
        (void)db.execute(std::string("DELETE FROM ") + table + " WHERE clinic_id = ?", c);
    }
    (void)db.execute("DELETE FROM patients WHERE clinic_id = ?", c);
    (void)db.execute("DELETE FROM agents WHERE clinic_id = ?", c);
    (void)db.execute("DELETE FROM stores WHERE clinic_id = ?", c);
    (void)db.execute("DELETE FROM clinic_routing WHERE clinic_id = ?", c);
    (void)db.execute("DELETE FROM clinics WHERE id = ?", c);
}

std::uint64_t clinic_fixture::add_store(const std::string& store_name) {
    execute("INSERT INTO stores (clinic_id, name) VALUES (?, ?)", {clinic, store_name});
    return std::stoull(
        value("SELECT id FROM stores WHERE clinic_id = ? AND name = ?", {clinic, store_name}));
}

std::uint64_t clinic_fixture::add_agent(const std::string& agent_name, const std::string& password,
                                        bool can_receive, std::optional<std::uint64_t> store,
                                        bool active, const std::string& role) {
    const std::string hash =
        password.empty() ? "x" : gateway::hash_password(password, 1000).value_or("x");
    execute(
        "INSERT INTO agents (clinic_id, store_id, name, role, can_receive, password_hash, active) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        {clinic, optional_value(store), agent_name, role, std::int64_t{can_receive ? 1 : 0}, hash,
         std::int64_t{active ? 1 : 0}});
    return std::stoull(
        value("SELECT id FROM agents WHERE clinic_id = ? AND name = ?", {clinic, agent_name}));
}

void clinic_fixture::set_fan(const std::string& openid, std::optional<std::uint64_t> store,
                             std::optional<std::uint64_t> consultant,
                             std::optional<std::uint64_t> exclusive) {
    execute(
        "INSERT INTO fans (account_id, openid, store_id, consultant_agent_id, exclusive_agent_id) "
        "VALUES (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE store_id = VALUES(store_id), "
        "consultant_agent_id = VALUES(consultant_agent_id), "
        "exclusive_agent_id = VALUES(exclusive_agent_id)",
        {account, openid, optional_value(store), optional_value(consultant),
         optional_value(exclusive)});
}

std::string clinic_fixture::value(const std::string& sql,
                                  const std::vector<storage::sql_value>& p) const {
    storage::mysql_session db(gateway::mysql_options_from(cfg.mysql));
    auto r = db.query(sql, p);
    REQUIRE(r.has_value());
    REQUIRE(r->rows.size() == 1);
    return r->rows[0][0].value_or("NULL");
}

void clinic_fixture::execute(const std::string& sql,
                             const std::vector<storage::sql_value>& p) const {
    storage::mysql_session db(gateway::mysql_options_from(cfg.mysql));
    auto r = db.execute(sql, p);
    INFO(sql << ": " << db.last_error());
    REQUIRE(r.has_value());
}

std::string clinic_fixture::text_xml(const std::string& openid, std::uint64_t msg_id,
                                     const std::string& content) const {
    return "<xml><ToUserName><![CDATA[" + original_id + "]]></ToUserName><FromUserName><![CDATA[" +
           openid + "]]></FromUserName><CreateTime>" + std::to_string(std::time(nullptr)) +
           "</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[" + content +
           "]]></Content><MsgId>" + std::to_string(msg_id) + "</MsgId></xml>";
}

http_reply clinic_fixture::deliver(std::uint16_t port, const std::string& xml) const {
    const std::string ts = std::to_string(std::time(nullptr));
    const std::string nonce = unique_name("n");
    const std::string query = "signature=" + wechat::url_signature(token, ts, nonce) +
                              "&timestamp=" + ts + "&nonce=" + nonce + "&openid=x";
    return http_call(port, "POST", "/wx/" + appid + "?" + query, xml);
}

}  // namespace scrm::test

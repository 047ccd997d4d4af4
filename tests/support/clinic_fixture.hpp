// A clinic straight in MySQL for integration tests: one official account (plain mode), its routing
// settings, stores, agents with passwords, fans — all removed when the fixture ends — and signed
// webhook calls for its account.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "http_client.hpp"
#include "scrm/gateway/config.hpp"
#include "scrm/storage/mysql.hpp"
#include "test_env.hpp"

namespace scrm::storage {
class redis_client;
}

namespace scrm::test {

// Deletes every key under "<root>:" (SCAN, then DEL), running the commands on `io` (which other
// threads are running). Best effort: for a test's cleanup.
void delete_keys_under(boost::asio::io_context& io, storage::redis_client& redis,
                       const std::string& root);

class clinic_fixture {
public:
    // `routing_columns`/`routing_values`: extra clinic_routing columns and their SQL values
    // ("exclusive_mode, no_agent_text" / "1, 'x'").
    explicit clinic_fixture(const std::string& routing_columns = "",
                            const std::string& routing_values = "",
                            const gateway::config& servers = services_config());
    ~clinic_fixture();
    clinic_fixture(const clinic_fixture&) = delete;
    clinic_fixture& operator=(const clinic_fixture&) = delete;

    std::uint64_t add_store(const std::string& store_name);
    // The password is hashed with few iterations (tests only); empty: a hash nobody matches.
    std::uint64_t add_agent(const std::string& agent_name, const std::string& password,
                            bool can_receive = true,
                            std::optional<std::uint64_t> store = std::nullopt, bool active = true,
                            const std::string& role = "service");
    // The fan's row with its owners (created or replaced).
    void set_fan(const std::string& openid, std::optional<std::uint64_t> store = std::nullopt,
                 std::optional<std::uint64_t> consultant = std::nullopt,
                 std::optional<std::uint64_t> exclusive = std::nullopt);

    // One cell of a query ("NULL" for SQL NULL); fails the test unless there is exactly one row.
    std::string value(const std::string& sql, const std::vector<storage::sql_value>& p = {}) const;
    void execute(const std::string& sql, const std::vector<storage::sql_value>& p = {}) const;

    // A text message from `openid` as WeChat sends it, and its delivery to /wx/<appid> on `port`
    // with a valid plain-mode signature.
    std::string text_xml(const std::string& openid, std::uint64_t msg_id,
                         const std::string& content = "你好") const;
    http_reply deliver(std::uint16_t port, const std::string& xml) const;

    static const std::string master_hex;   // the master key the sealed secrets open with
    static const std::string token;        // the account's webhook Token
    static const std::string original_id;  // the account's gh_… id (ToUserName)

    gateway::config cfg;
    std::string name;  // clinics.name
    std::string appid;
    std::uint64_t clinic = 0, account = 0;
};

}  // namespace scrm::test

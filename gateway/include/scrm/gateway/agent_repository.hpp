// The SQL the agent endpoints need, one method per use case (sql/006_people_and_routing.sql):
// agents for sign-in and authentication, the conversation an agent acts on, fans' exclusive agent
// and store, and the backlog. HTTP never touches SQL; this never touches HTTP. Every statement
// runs on the MySQL pool's workers.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "scrm/common/error.hpp"

namespace scrm::storage {
class mysql_pool;
}

namespace scrm::gateway {

struct agent_row {
    std::uint64_t id = 0;
    std::uint64_t clinic = 0;
    std::string name;
    std::string role;  // admin, front_desk, consultant, service
    std::optional<std::uint64_t> store;
    bool can_receive = false;  // the "receive online consultation" permission
    bool active = false;
    std::string password_hash;  // only from find_for_sign_in; secret: never logged
};

// A fan of an official account, as the conversation endpoints see it.
struct conversation_row {
    std::uint64_t clinic = 0;  // the account's clinic
    bool fan_known = false;    // the fan has a row (it wrote, followed or was set up)
    std::optional<std::uint64_t> store, exclusive_agent, consultant;
};

// A fan in an agent's backlog (DESIGN.md §5): it wrote and no agent has replied since.
struct backlog_entry {
    std::uint64_t account_id = 0;
    std::string openid;
    std::string waiting_since;  // the oldest unanswered message, UTC "YYYY-MM-DD hh:mm:ss[.ffffff]"
    std::string last_message_at;
    std::uint64_t messages = 0;   // unanswered messages in the backlog
    bool for_consultant = false;  // waiting on this agent as the fan's consultant (else: nobody
                                  // could be notified)
};

struct backlog_query {
    std::uint64_t clinic = 0;
    std::uint64_t agent = 0;
    bool candidate = false;  // the agent holds the permission: it sees fans nobody was notified of
    // Chain-store mode and the agent belongs to a store: only that store's fans and fans without a
    // store (agents without a store see every fan).
    std::optional<std::uint64_t> store_scope;
    bool consultant_mode = false;  // then fans with another consultant stay with that consultant
    std::uint64_t max_age_s = 48 * 3600;  // older messages can no longer be answered by API
    std::uint64_t limit = 200;
};

// Thread-safe; the pool must outlive it. Errors: the pool's (unavailable, timeout, overloaded).
class agent_repository {
public:
    explicit agent_repository(storage::mysql_pool& mysql) : mysql_(mysql) {}

    // The agent named by clinic (name or id) and agent (name or id), with its password hash;
    // nullopt when there is none.
    boost::asio::awaitable<result<std::optional<agent_row>>> find_for_sign_in(
        std::optional<std::string> clinic_name, std::optional<std::uint64_t> clinic_id,
        std::optional<std::string> agent_name, std::optional<std::uint64_t> agent_id);
    // Agent `id` of `clinic` (active or not); nullopt when there is none.
    boost::asio::awaitable<result<std::optional<agent_row>>> agent(std::uint64_t clinic,
                                                                   std::uint64_t id);
    // Account `account_id`'s fan `openid`; nullopt when the account does not exist.
    boost::asio::awaitable<result<std::optional<conversation_row>>> conversation(
        std::uint64_t account_id, std::string openid);
    // Whether store `store` belongs to `clinic`.
    boost::asio::awaitable<result<bool>> store_in_clinic(std::uint64_t clinic, std::uint64_t store);
    // Session history (chat_sessions; the live lock itself is in Redis). A new holding of the
    // fan's lock by `agent`: the fan's open session, if any, ends with `previous_reason` (silence:
    // its lock ran out; offline: it was taken over from an offline holder; transferred), and
    // `agent`'s starts — one transaction.
    boost::asio::awaitable<result<void>> session_started(std::uint64_t account_id,
                                                         std::string openid, std::uint64_t agent,
                                                         std::string previous_reason);
    // The fan's open session ends with `reason` (ended, transferred, unsubscribed).
    boost::asio::awaitable<result<void>> session_ended(std::uint64_t account_id, std::string openid,
                                                       std::string reason);
    // Every open session of agent `agent` of `clinic` ends with `reason` (offline).
    boost::asio::awaitable<result<void>> agent_sessions_ended(std::uint64_t clinic,
                                                              std::uint64_t agent,
                                                              std::string reason);
    // A lock held by `agent` ran out by silence at `due_ms` (ms since the epoch): the fan's open
    // session of that agent, started before then, ends with `silence` (a holding begun after
    // the expiry is another session). The fan's account, nullopt when `clinic` has no such fan.
    boost::asio::awaitable<result<std::optional<std::uint64_t>>> silent_session_ended(
        std::uint64_t clinic, std::string openid, std::uint64_t agent, std::int64_t due_ms);
    // The accounts of `clinic`'s fans named by `openids`: (account id, openid) pairs, by openid.
    boost::asio::awaitable<result<std::vector<std::pair<std::uint64_t, std::string>>>>
    fan_accounts(std::uint64_t clinic, std::vector<std::string> openids);
    // fans.exclusive_agent_id = agent where it is still NULL; true when this call set it.
    boost::asio::awaitable<result<bool>> set_exclusive_if_none(std::uint64_t account_id,
                                                               std::string openid,
                                                               std::uint64_t agent);
    // fans.store_id = store.
    boost::asio::awaitable<result<void>> set_store(std::uint64_t account_id, std::string openid,
                                                   std::uint64_t store);
    // The backlog, oldest first.
    boost::asio::awaitable<result<std::vector<backlog_entry>>> backlog(backlog_query q);

private:
    storage::mysql_pool& mysql_;
};

}  // namespace scrm::gateway

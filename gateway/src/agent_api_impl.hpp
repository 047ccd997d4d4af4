// agent_api's shared state and helpers, for its two files: agent_api.cpp (sign-in, sessions, the
// WebSocket, the switch and the backlog) and conversation_api.cpp (accept, send, end, transfer).
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <optional>
#include <string>

#include "scrm/gateway/agent_api.hpp"
#include "scrm/gateway/agent_repository.hpp"
#include "scrm/gateway/agent_requests.hpp"

namespace scrm::gateway {

// A request's authenticated agent.
struct authed_agent {
    agent_row row;
    std::string token_digest;  // the session's key part
    std::string id_text() const { return std::to_string(row.id); }
};

// authenticate()'s outcome: the agent, or the answer that refuses the request.
struct auth_result {
    std::optional<authed_agent> agent;
    http_response refusal;
};

struct agent_api::impl {
    impl(boost::asio::any_io_executor e, storage::mysql_pool& m,
         std::shared_ptr<storage::redis_client> r, routing::live_state& l, wechat::outbox& o,
         routing_stage& s, agent_push& p, agent_api_options op);

    boost::asio::any_io_executor ex;
    agent_repository repo;
    std::shared_ptr<storage::redis_client> redis;
    routing::live_state& live;
    wechat::outbox& outbox;
    routing_stage& stage;
    agent_push& push;
    agent_api_options opts;
    // PBKDF2 checks (~50 ms of CPU each) run here, never on an I/O thread; one thread also bounds
    // how fast passwords can be tried through one gateway.
    boost::asio::thread_pool hash_pool{1};

    routing::instant now() const;
    std::string session_key(const std::string& digest) const;
    std::string channel(std::uint64_t clinic, std::uint64_t agent) const;

    // The session behind the request's bearer token or cookie, and its agent (active): or 401
    // (none, expired, signed out, agent deactivated), 403 (cookie from another origin), 503.
    boost::asio::awaitable<auth_result> authenticate(const http_request& req);
};

// 503 with a generic text; the reason is logged under `event`.
http_response unavailable(std::string_view event, const boost::system::error_code& ec);
// "YYYY-MM-DD hh:mm:ss[.ffffff]" (UTC, as MySQL returns it) as ISO 8601 with a Z.
std::string iso_utc(std::string sql_time);
// The agent as JSON: {"id":…,"name":…,"clinic_id":…,"role":…,"store_id":…,"can_receive":…}.
std::string agent_json(const agent_row& a);

// The conversation endpoints (conversation_api.cpp).
boost::asio::awaitable<http_response> handle_conversation(std::shared_ptr<agent_api::impl> self,
                                                          http_request req);

}  // namespace scrm::gateway

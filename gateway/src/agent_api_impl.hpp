// agent_api's shared state and helpers, for its files: agent_api.cpp (sign-in, sessions, the
// WebSocket, the switch and the backlog), conversation_api.cpp (accept, send, end, transfer),
// console_api.cpp (the console's list, history, media, ignore-unread, agents, password) and
// fan_panel_api.cpp (remark, tags, owners, patients).
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <optional>
#include <string>

#include "scrm/gateway/agent_api.hpp"
#include "scrm/gateway/agent_repository.hpp"
#include "scrm/gateway/agent_requests.hpp"
#include "scrm/gateway/console_repository.hpp"

namespace scrm::gateway {

struct clinic_settings;

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
    storage::mysql_pool& mysql;
    agent_repository repo;
    console_repository console;
    std::shared_ptr<storage::redis_client> redis;
    routing::live_state& live;
    wechat::outbox& outbox;
    routing_stage& stage;
    agent_push& push;
    agent_api_options opts;
    // PBKDF2 checks (~50 ms of CPU each) run here, never on an I/O thread; one thread also bounds
    // how fast passwords can be tried through one gateway.
    boost::asio::thread_pool hash_pool{1};
    // Voice for the browser (GET /api/media/{id}?format=mp3): ffmpeg on its own threads.
    voice_transcoder transcoder;

    routing::instant now() const;
    std::string session_key(const std::string& digest) const;
    // The set of an agent's session digests (every sign-in adds its own), so that a password
    // change or reset can end the agent's other sessions.
    std::string sessions_key(std::uint64_t agent) const;
    std::string channel(std::uint64_t clinic, std::uint64_t agent) const;

    // The session behind the request's bearer token or cookie, and its agent (active): or 401
    // (none, expired, signed out, agent deactivated), 403 (cookie from another origin), 503.
    boost::asio::awaitable<auth_result> authenticate(const http_request& req);

    // Ends every session of `agent` but the one whose digest is `keep` ("" for none): after a
    // password change (the caller's own session stays) or an admin's reset. Consoles of the ended
    // sessions get `signed_out` at their next heartbeat. The number of sessions ended.
    boost::asio::awaitable<result<long long>> end_sessions(std::uint64_t agent, std::string keep);

    // The backlog query of `a` under the clinic's settings (GET /api/agent/backlog, and the
    // console list's "waiting" filter).
    backlog_query backlog_for(const agent_row& a, const clinic_settings& s) const;
};

// Which fans `a` may read (docs/api.md "Roles"): in chain-store mode an agent of a store who is
// not an admin sees its store's fans and fans without a store; everyone else every fan of the
// clinic.
fan_scope scope_of(const agent_row& a, const clinic_settings& s);

// Publishes `payload` to the consoles of every agent of `clinic` online now (any instance).
// Failures are logged: a push is a hint, the page reloads what it shows on "resync".
boost::asio::awaitable<void> notify_clinic(std::shared_ptr<agent_api::impl> self,
                                           std::uint64_t clinic, std::string payload);

// 503 with a generic text; the reason is logged under `event`.
http_response unavailable(std::string_view event, const boost::system::error_code& ec);
// "YYYY-MM-DD hh:mm:ss[.ffffff]" (UTC, as MySQL returns it) as ISO 8601 with a Z.
std::string iso_utc(std::string sql_time);
// The agent as JSON: {"id":…,"name":…,"clinic_id":…,"role":…,"store_id":…,"can_receive":…}.
std::string agent_json(const agent_row& a);

// The conversation endpoints (conversation_api.cpp).
boost::asio::awaitable<http_response> handle_conversation(std::shared_ptr<agent_api::impl> self,
                                                          http_request req);

// The console's endpoints (console_api.cpp): GET /api/conversations, GET /api/media/{id},
// GET /api/agents, POST /api/agent/password, and the conversation actions messages and
// ignore-unread; the fan panel's actions (fan, owner, bind-patient, unbind-patient) go on to
// handle_fan_panel (fan_panel_api.cpp).
bool is_console_action(const std::string& action);
boost::asio::awaitable<http_response> handle_console_action(std::shared_ptr<agent_api::impl> self,
                                                            http_request req, authed_agent agent,
                                                            conversation_path path);
boost::asio::awaitable<http_response> list_conversations(std::shared_ptr<agent_api::impl> self,
                                                         http_request req);
boost::asio::awaitable<http_response> serve_media(std::shared_ptr<agent_api::impl> self,
                                                  http_request req);
boost::asio::awaitable<http_response> list_agents(std::shared_ptr<agent_api::impl> self,
                                                  http_request req);
boost::asio::awaitable<http_response> change_password(std::shared_ptr<agent_api::impl> self,
                                                      http_request req);

// A fan the caller may read, with the clinic's settings; or the refusal (404 another clinic's or
// unknown, 403 another store's in chain-store mode, 503).
struct readable_fan {
    conversation_row fan;
    std::shared_ptr<const clinic_settings> settings;
    std::optional<http_response> refusal;
};
boost::asio::awaitable<readable_fan> open_fan(std::shared_ptr<agent_api::impl> self,
                                              const authed_agent& agent,
                                              const conversation_path& path);

boost::asio::awaitable<http_response> handle_fan_panel(std::shared_ptr<agent_api::impl> self,
                                                       http_request req, authed_agent agent,
                                                       conversation_path path, readable_fan fan);

// {"id":…,"name":…} of agent `id` (name null when it is not an active agent of `names`), or null.
std::string agent_ref(const std::optional<std::uint64_t>& id, const std::vector<agent_row>& names);

}  // namespace scrm::gateway

// The agent endpoints (docs/api.md; issue 4): sign-in with a session token, the console's
// WebSocket whose heartbeat is the agent's presence and which carries pushes, the "accepting
// chats" switch, the backlog, and the conversation actions accept, send (through the outbox), end
// and transfer — the routing behaviour of DESIGN.md §5 driven by people. The console issue builds
// the full API and page on them.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "scrm/gateway/agent_repository.hpp"
#include "scrm/gateway/config.hpp"
#include "scrm/gateway/http.hpp"
#include "scrm/gateway/voice_transcoder.hpp"
#include "scrm/routing/live.hpp"

namespace scrm::storage {
class mysql_pool;
class redis_client;
}  // namespace scrm::storage

namespace scrm::wechat {
class outbox;
}

namespace scrm::gateway {

class agent_push;
class routing_stage;
class reply_notices;

struct agent_api_options {
    agent_settings settings;  // config "agents": session TTL, sign-in throttling, cookie
    // Redis keys of sessions and sign-in failures: "<key_root>:agent_session:<sha-256 of token>",
    // "<key_root>:signin_failures:<agent>". The live state's key_root (tests use their own).
    std::string key_root = "scrm";
    // Backlog: messages older than this are left out (WeChat's 48-hour window has closed: they
    // can no longer be answered through the customer-service API).
    std::chrono::seconds backlog_max_age{48 * 3600};
    // Where the media fetcher keeps inbound media (config media_dir): GET /api/media/{id}
    // serves files from it.
    std::string media_dir = "media";
    // GET /api/media/{id}?format=mp3: voice through ffmpeg (voice_transcoder.hpp).
    transcode_options transcode;
    // The clock (injected in tests); the system clock when empty.
    std::function<routing::instant()> now;
    // The "reply waiting" notices (a text sent with no window slot); null: none can be sent, the
    // agent is told the fan must write first. Not owned; must outlive the routes.
    reply_notices* notices = nullptr;
};

// The agent a request is signed in as (for other endpoint groups: the template log, admin
// pages), or the answer that refuses it.
struct signed_in_agent {
    std::optional<agent_row> agent;  // active; password_hash empty
    http_response refusal;           // 401, 403 or 503 as for the agent endpoints
};

// Thread-safe. Every dependency must outlive the routes it added (the router holds the state).
// Presence heartbeats go to `live` with its own presence_ttl/reconnect_grace: build it from the
// same agent_settings. Pushes reach this instance's WebSockets through `push`. Errors of Redis or
// MySQL answer 503 (logged with the reason, never with tokens, passwords or message text).
class agent_api {
public:
    agent_api(boost::asio::any_io_executor ex, storage::mysql_pool& mysql,
              std::shared_ptr<storage::redis_client> redis, routing::live_state& live,
              wechat::outbox& outbox, routing_stage& stage, agent_push& push,
              agent_api_options opts);
    ~agent_api();
    agent_api(const agent_api&) = delete;
    agent_api& operator=(const agent_api&) = delete;

    // POST /api/agent/sign-in, /api/agent/sign-out, /api/agent/accepting, /api/agent/password;
    // GET /api/agent/me, /api/agent/backlog, /api/agents, /api/conversations, /api/media/{id};
    // WebSocket /api/agent/ws; POST /api/conversations/{account}/{openid}/
    // accept|send|end|transfer|ignore-unread|fan|owner|bind-patient|unbind-patient; GET
    // /api/conversations/{account}/{openid}/messages|fan.
    void add_routes(router& routes);

    // The session behind the request's bearer token or cookie, checked as for the agent
    // endpoints (docs/api.md "Authentication"). The agent_api must outlive the call.
    boost::asio::awaitable<signed_in_agent> authenticate(http_request req);

    struct impl;
    // The sessions and the state behind them, for endpoint families built on the agents'
    // sign-in (the admin API: admin_api.cpp).
    std::shared_ptr<impl> state() const noexcept { return impl_; }

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace scrm::gateway

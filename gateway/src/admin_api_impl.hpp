// admin_api's shared state for its two files: admin_api.cpp (authentication, routing settings,
// route preview, the audit log) and admin_reassign.cpp (owner reassignment and deactivation).
#pragma once

#include <memory>

#include "agent_api_impl.hpp"
#include "scrm/gateway/admin_api.hpp"

namespace scrm::gateway {

struct admin_api::impl {
    std::shared_ptr<agent_api::impl> agents;  // sessions, live state, routing stage
    storage::mysql_pool& mysql;

    // The request's agent if it is an admin; else the refusal (401 as agent_api's, 403 for other
    // roles, 503).
    boost::asio::awaitable<auth_result> admin(const http_request& req);
};

using admin_ptr = std::shared_ptr<admin_api::impl>;

// {"id":…,"name":…} of an agent.
std::string agent_ref_json(std::uint64_t id, const std::string& name);

// admin_reassign.cpp
boost::asio::awaitable<http_response> reassign(admin_ptr self, http_request req, bool apply);
boost::asio::awaitable<http_response> deactivate_agent(admin_ptr self, http_request req);

}  // namespace scrm::gateway

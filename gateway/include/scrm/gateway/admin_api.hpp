// The clinic administration endpoints (docs/api.md "Administration"; issue 6): routing settings,
// owner reassignment with a preview that equals what is applied, deactivating agents (and where
// their fans go), "who would get this now?" and the audit log. Admins only: an agent signed in
// through agent_api's sessions whose role is admin, checked on every call. Every change is
// written to the audit log in the transaction that makes it.
#pragma once

#include <memory>

#include "scrm/gateway/http.hpp"

namespace scrm::storage {
class mysql_pool;
}

namespace scrm::gateway {

class agent_api;

// Thread-safe. `agents` (its sessions, live state and routing stage) and `mysql` must outlive the
// routes added. Errors of Redis or MySQL answer 503 (logged with the reason).
class admin_api {
public:
    admin_api(agent_api& agents, storage::mysql_pool& mysql);
    ~admin_api();
    admin_api(const admin_api&) = delete;
    admin_api& operator=(const admin_api&) = delete;

    // GET|PUT /api/admin/routing; POST /api/admin/reassign/preview|apply; POST
    // /api/admin/agents/{id}/deactivate; GET /api/admin/route-preview; GET /api/admin/audit.
    void add_routes(router& routes);

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace scrm::gateway

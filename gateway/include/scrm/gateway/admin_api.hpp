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
class wechat_clients;

// Thread-safe. `agents` (its sessions, live state and routing stage), `mysql` and `clients` (the
// accounts' WeChat clients, for stores' QR codes) must outlive the routes added. Errors of Redis or
// MySQL answer 503 (logged with the reason).
class admin_api {
public:
    admin_api(agent_api& agents, storage::mysql_pool& mysql, wechat_clients& clients);
    ~admin_api();
    admin_api(const admin_api&) = delete;
    admin_api& operator=(const admin_api&) = delete;

    // GET|PUT /api/admin/routing; POST /api/admin/reassign/preview|apply; GET|POST
    // /api/admin/agents, PUT /api/admin/agents/{id}, POST /api/admin/agents/{id}/deactivate and
    // /password; GET|POST /api/admin/stores, PUT /api/admin/stores/{id}, POST …/{id}/qr; GET
    // /api/admin/route-preview; GET /api/admin/audit.
    void add_routes(router& routes);

    struct impl;
    // The shared state, for endpoints elsewhere that authenticate admins the same way.
    std::shared_ptr<impl> state() const { return impl_; }

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace scrm::gateway

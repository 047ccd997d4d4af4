// Template notifications over HTTP (issue 6): the integration API the clinic's own systems call
// with their API key (POST /api/integration/events, docs/integration.md), and the send log for
// admins (GET /api/admin/template-log, docs/api.md), authenticated like the agent endpoints. The
// work and its SQL are in templates/notifier.hpp; this is only HTTP ↔ values.
#pragma once

#include <memory>

#include "scrm/gateway/http.hpp"

namespace scrm::templates {
class notifier;
}

namespace scrm::gateway {

class admin_api;

// Thread-safe. `notifier` and `admin` (whose admin authentication the send log uses) must
// outlive the routes it added.
class integration_api {
public:
    integration_api(templates::notifier& notifier, admin_api& admin);
    ~integration_api();
    integration_api(const integration_api&) = delete;
    integration_api& operator=(const integration_api&) = delete;

    // POST /api/integration/events; GET /api/admin/template-log.
    void add_routes(router& routes);

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace scrm::gateway

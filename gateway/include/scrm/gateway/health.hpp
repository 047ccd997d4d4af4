// Liveness, readiness and metrics endpoints: GET /healthz (the process answers), GET /readyz (every
// dependency answers within the ready timeout; 503 naming what is down), GET /metrics (Prometheus).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "scrm/gateway/http.hpp"

namespace scrm::gateway {

// A named dependency probe: resolves to std::nullopt when healthy, else a short reason.
struct dependency_check {
    std::string name;
    std::function<boost::asio::awaitable<std::optional<std::string>>()> probe;
};

void add_health_routes(router& routes, std::vector<dependency_check> checks,
                       std::chrono::milliseconds timeout, std::shared_ptr<metrics> stats);

}  // namespace scrm::gateway

// /healthz, /readyz and /metrics. Readiness probes run one after another, each bounded by the ready
// timeout, so a stalled server makes /readyz answer 503 in bounded time instead of hanging.
#include "scrm/gateway/health.hpp"

#include "scrm/common/deadline.hpp"
#include "scrm/gateway/metrics.hpp"

namespace scrm::gateway {
namespace {

using boost::asio::awaitable;

awaitable<http_response> readyz(std::shared_ptr<const std::vector<dependency_check>> checks,
                                std::chrono::milliseconds timeout) {
    std::string details;
    std::string down;
    for (const auto& c : *checks) {
        auto outcome = co_await with_deadline(c.probe(), timeout);
        std::string state;
        if (!outcome) {
            state = "timed out after " + std::to_string(timeout.count()) + " ms";
        } else if (*outcome) {
            state = **outcome;
        } else {
            state = "ok";
        }
        if (state != "ok") down += (down.empty() ? "" : ", ") + c.name;
        details += (details.empty() ? "" : ",") + json_quote(c.name) + ":" + json_quote(state);
    }
    http_response r;
    if (down.empty()) {
        r.body = "{\"status\":\"ready\",\"checks\":{" + details + "}}";
    } else {
        r.status = 503;
        r.body = "{\"error\":" + json_quote("not ready: " + down + " unavailable") +
                 ",\"checks\":{" + details + "}}";
    }
    co_return r;
}

awaitable<http_response> healthz() {
    http_response r;
    r.body = "{\"status\":\"alive\"}";
    co_return r;
}

awaitable<http_response> metrics_text(std::shared_ptr<metrics> stats) {
    http_response r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = stats->render();
    co_return r;
}

}  // namespace

void add_health_routes(router& routes, std::vector<dependency_check> checks,
                       std::chrono::milliseconds timeout, std::shared_ptr<metrics> stats) {
    // Handlers are plain functions taking their state by value: a coroutine lambda's captures
    // would dangle if the lambda object went away first.
    routes.exact("GET", "/healthz", [](http_request) { return healthz(); });
    auto shared = std::make_shared<const std::vector<dependency_check>>(std::move(checks));
    routes.exact("GET", "/readyz",
                 [shared, timeout](http_request) { return readyz(shared, timeout); });
    routes.exact("GET", "/metrics", [stats](http_request) { return metrics_text(stats); });
}

}  // namespace scrm::gateway

// Prometheus text rendering. Counters and histograms are kept under one mutex: a scrape is rare and
// an observation is a few map operations, far below the cost of the request it measures.
#include "scrm/gateway/metrics.hpp"

#include <cstdio>

namespace scrm::gateway {
namespace {

std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

}  // namespace

void metrics::observe_request(const std::string& route, unsigned status,
                              std::chrono::nanoseconds latency) {
    const double seconds = std::chrono::duration<double>(latency).count();
    std::lock_guard lock(mutex_);
    ++requests_[{route, status}];
    histogram& h = latency_[route];
    std::size_t i = 0;
    while (i < buckets.size() && seconds > buckets[i]) ++i;
    if (i < buckets.size()) ++h.counts[i];
    ++h.count;
    h.sum += seconds;
}

void metrics::add_gauge(std::string name, std::string help, std::string labels,
                        std::function<double()> read) {
    std::lock_guard lock(mutex_);
    gauges_.push_back({std::move(name), std::move(help), std::move(labels), std::move(read)});
}

std::string metrics::render() const {
    std::string out;
    std::lock_guard lock(mutex_);
    out += "# HELP scrm_http_requests_total HTTP requests by route and status.\n";
    out += "# TYPE scrm_http_requests_total counter\n";
    for (const auto& [key, n] : requests_) {
        out += "scrm_http_requests_total{route=\"" + key.first + "\",status=\"" +
               std::to_string(key.second) + "\"} " + std::to_string(n) + "\n";
    }
    out +=
        "# HELP scrm_http_request_duration_seconds Time from request read to response written.\n";
    out += "# TYPE scrm_http_request_duration_seconds histogram\n";
    for (const auto& [route, h] : latency_) {
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < buckets.size(); ++i) {
            cumulative += h.counts[i];
            out += "scrm_http_request_duration_seconds_bucket{route=\"" + route + "\",le=\"" +
                   number(buckets[i]) + "\"} " + std::to_string(cumulative) + "\n";
        }
        out += "scrm_http_request_duration_seconds_bucket{route=\"" + route + "\",le=\"+Inf\"} " +
               std::to_string(h.count) + "\n";
        out += "scrm_http_request_duration_seconds_sum{route=\"" + route + "\"} " + number(h.sum) +
               "\n";
        out += "scrm_http_request_duration_seconds_count{route=\"" + route + "\"} " +
               std::to_string(h.count) + "\n";
    }
    std::string last_name;
    for (const gauge& g : gauges_) {
        if (g.name != last_name) {
            out += "# HELP " + g.name + " " + g.help + "\n# TYPE " + g.name + " gauge\n";
            last_name = g.name;
        }
        out += g.name;
        if (!g.labels.empty()) out += "{" + g.labels + "}";
        out += " " + number(g.read()) + "\n";
    }
    return out;
}

}  // namespace scrm::gateway

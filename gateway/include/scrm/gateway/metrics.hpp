// Process metrics in the Prometheus text format: HTTP requests by route and status, a latency
// histogram per route, and gauges read from callbacks (Redis and MySQL pool state) at scrape time.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace scrm::gateway {

class metrics {
public:
    // Upper bounds of the latency buckets, in seconds (+Inf is implicit).
    static constexpr std::array<double, 12> buckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                    0.05,   0.1,   0.25,   0.5,   1.0,  5.0};

    // Thread-safe. `route` must come from a bounded set (route patterns, not raw paths).
    void observe_request(const std::string& route, unsigned status,
                         std::chrono::nanoseconds latency);

    // A gauge sampled at render time; `labels` is the Prometheus label set without braces, or
    // empty. Register before serving; the callback must be thread-safe.
    void add_gauge(std::string name, std::string help, std::string labels,
                   std::function<double()> read);

    // The text exposition (version 0.0.4).
    std::string render() const;

private:
    struct histogram {
        std::array<std::uint64_t, buckets.size()> counts{};  // non-cumulative
        std::uint64_t count = 0;
        double sum = 0;
    };
    struct gauge {
        std::string name, help, labels;
        std::function<double()> read;
    };
    mutable std::mutex mutex_;
    std::map<std::pair<std::string, unsigned>, std::uint64_t> requests_;
    std::map<std::string, histogram> latency_;
    std::vector<gauge> gauges_;
};

}  // namespace scrm::gateway

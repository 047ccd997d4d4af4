// The gateway's connections to its stores, built from configuration: the Redis client and the MySQL
// pool, their readiness probes and their metrics. Later issues add the services built on them.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <vector>

#include "scrm/gateway/config.hpp"
#include "scrm/gateway/health.hpp"

namespace scrm::storage {
class redis_client;
class mysql_pool;
struct redis_options;
struct mysql_options;
}  // namespace scrm::storage

namespace scrm::gateway {

class metrics;

// The storage clients' options from the configuration.
storage::redis_options redis_options_from(const redis_settings& s);
storage::mysql_options mysql_options_from(const mysql_settings& s);

class services {
public:
    // Starts connecting to Redis in the background and starts the MySQL workers; never blocks on
    // either server (both may be down at start and come up later).
    services(boost::asio::any_io_executor ex, const config& cfg);
    // Joins the MySQL workers (each finishes its current statement, bounded by the driver
    // timeouts): destroy it from the main thread after the io_context has stopped.
    ~services();
    services(const services&) = delete;
    services& operator=(const services&) = delete;

    storage::redis_client& redis() { return *redis_; }
    std::shared_ptr<storage::redis_client> redis_ptr() { return redis_; }
    storage::mysql_pool& mysql() { return *mysql_; }

    // /readyz probes: Redis PING and MySQL SELECT 1.
    std::vector<dependency_check> readiness_checks();
    // Redis connection state and MySQL pool state as gauges.
    void register_metrics(metrics& m);
    // Disconnects Redis and refuses new MySQL work; never blocks (safe on an I/O thread).
    void stop();

private:
    std::shared_ptr<storage::redis_client> redis_;
    std::shared_ptr<storage::mysql_pool> mysql_;
};

}  // namespace scrm::gateway

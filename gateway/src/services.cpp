// Builds the store clients from configuration and exposes their probes and gauges.
#include "scrm/gateway/services.hpp"

#include "scrm/gateway/metrics.hpp"
#include "scrm/storage/mysql.hpp"
#include "scrm/storage/redis.hpp"

namespace scrm::gateway {

storage::redis_options redis_options_from(const redis_settings& s) {
    storage::redis_options o;
    o.host = s.host;
    o.port = s.port;
    o.password = s.password;
    o.connect_timeout = s.connect_timeout;
    o.command_timeout = s.command_timeout;
    return o;
}

storage::mysql_options mysql_options_from(const mysql_settings& s) {
    storage::mysql_options o;
    o.host = s.host;
    o.port = s.port;
    o.user = s.user;
    o.password = s.password;
    o.database = s.database;
    o.workers = s.pool_size;
    o.queue_limit = s.queue_limit;
    o.connect_timeout = s.connect_timeout;
    o.read_timeout = s.read_timeout;
    o.write_timeout = s.write_timeout;
    return o;
}

namespace {

using boost::asio::awaitable;

std::optional<std::string> describe(const boost::system::error_code& ec) {
    if (!ec) return std::nullopt;
    return ec.message();
}

awaitable<std::optional<std::string>> probe_redis(std::shared_ptr<storage::redis_client> redis) {
    auto r = co_await redis->ping();
    co_return r ? std::nullopt : describe(r.error());
}

awaitable<std::optional<std::string>> probe_mysql(std::shared_ptr<storage::mysql_pool> mysql) {
    auto r = co_await mysql->ping();
    co_return r ? std::nullopt : describe(r.error());
}

}  // namespace

services::services(boost::asio::any_io_executor ex, const config& cfg)
    : redis_(storage::redis_client::create(ex, redis_options_from(cfg.redis))),
      mysql_(std::make_shared<storage::mysql_pool>(mysql_options_from(cfg.mysql))) {
    redis_->start();
}

services::~services() {
    redis_->stop();
    mysql_->stop();
}

void services::stop() {
    redis_->stop();
}

std::vector<dependency_check> services::readiness_checks() {
    auto redis = redis_;
    auto mysql = mysql_;
    return {
        {"redis", [redis] { return probe_redis(redis); }},
        {"mysql", [mysql] { return probe_mysql(mysql); }},
    };
}

void services::register_metrics(metrics& m) {
    auto redis = redis_;
    auto mysql = mysql_;
    m.add_gauge("scrm_redis_connected", "1 when the Redis connection is up.", "",
                [redis] { return redis->connected() ? 1.0 : 0.0; });
    m.add_gauge("scrm_redis_in_flight", "Redis commands sent and not yet answered.", "",
                [redis] { return static_cast<double>(redis->stats().in_flight); });
    m.add_gauge("scrm_redis_reconnects", "Redis reconnections since start.", "",
                [redis] { return static_cast<double>(redis->stats().reconnects); });
    m.add_gauge("scrm_redis_timeouts", "Redis commands that timed out since start.", "",
                [redis] { return static_cast<double>(redis->stats().timeouts); });
    m.add_gauge("scrm_mysql_pool_workers", "MySQL worker threads.", "",
                [mysql] { return static_cast<double>(mysql->stats().workers); });
    m.add_gauge("scrm_mysql_pool_busy", "MySQL workers running a statement.", "",
                [mysql] { return static_cast<double>(mysql->stats().busy); });
    m.add_gauge("scrm_mysql_pool_connected", "MySQL workers holding a live connection.", "",
                [mysql] { return static_cast<double>(mysql->stats().connected); });
    m.add_gauge("scrm_mysql_pool_queued", "MySQL requests waiting for a worker.", "",
                [mysql] { return static_cast<double>(mysql->stats().queued); });
    m.add_gauge("scrm_mysql_pool_overloaded", "MySQL requests refused as overloaded since start.",
                "", [mysql] { return static_cast<double>(mysql->stats().overloaded_total); });
}

}  // namespace scrm::gateway

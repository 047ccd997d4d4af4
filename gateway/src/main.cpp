// scrm-gateway's composition root: configuration → io_context → Redis → MySQL pool → routes →
// HTTP server → signal handling. No logic lives here.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <thread>

#include "scrm/common/log.hpp"
#include "scrm/common/thread_role.hpp"
#include "scrm/gateway/admin_api.hpp"
#include "scrm/gateway/agent_api.hpp"
#include "scrm/gateway/agent_push.hpp"
#include "scrm/gateway/cli.hpp"
#include "scrm/gateway/delivery_push.hpp"
#include "scrm/gateway/evaluations.hpp"
#include "scrm/gateway/health.hpp"
#include "scrm/gateway/http.hpp"
#include "scrm/gateway/integration_api.hpp"
#include "scrm/gateway/media_fetcher.hpp"
#include "scrm/gateway/metrics.hpp"
#include "scrm/gateway/reply_notices.hpp"
#include "scrm/gateway/retention.hpp"
#include "scrm/gateway/routing_stage.hpp"
#include "scrm/gateway/secret_box.hpp"
#include "scrm/gateway/services.hpp"
#include "scrm/gateway/static_files.hpp"
#include "scrm/gateway/webhook.hpp"
#include "scrm/gateway/wechat_clients.hpp"
#include "scrm/storage/redis.hpp"
#include "scrm/storage/spool.hpp"
#include "scrm/templates/notifier.hpp"
#include "scrm/wechat/outbox.hpp"

namespace asio = boost::asio;
using namespace scrm;

namespace {

constexpr const char* usage =
    "usage: scrm-gateway [--config FILE] [--listen HOST:PORT]\n"
    "  Serves the WeChat webhook, the console API and health endpoints.\n"
    "  Settings: JSON file, then SCRM_* environment variables, then flags (see README.md).\n";

// The background workers that talk to WeChat, and the console push.
struct workers {
    gateway::routing_stage& routing;
    wechat::outbox& outbox;
    gateway::media_fetcher& media;
    gateway::agent_push& push;
    gateway::retention_worker& retention;
};

asio::awaitable<void> shutdown(gateway::http_server& server, gateway::webhook& hook,
                               gateway::message_store& store, workers w, gateway::services& deps,
                               std::chrono::milliseconds grace,
                               asio::executor_work_guard<asio::io_context::executor_type>& work) {
    log::info("gateway.stopping", {{"grace_ms", static_cast<std::int64_t>(grace.count())}});
    co_await server.stop(grace);  // consoles' WebSockets get a close frame (going away)
    w.push.stop();
    hook.stop_replay();
    store.stop();
    co_await w.routing.stop(grace);  // it enqueues timeout auto-replies: before the outbox
    // Sends in flight record their outcome first (a row left 'sending' would turn uncertain).
    co_await w.outbox.stop(grace);
    co_await w.media.stop(grace);
    co_await w.retention.stop();
    deps.stop();
    work.reset();
    log::info("gateway.stopped");
}

}  // namespace

int main(int argc, char** argv) {
    auto cli = gateway::parse_cli(argc, argv, usage);
    if (!cli.cfg) return cli.exit_code;
    if (!cli.rest.empty()) {
        std::cerr << "scrm-gateway: unexpected argument " << cli.rest.front() << "\n" << usage;
        return 2;
    }
    const gateway::config cfg = std::move(*cli.cfg);
    log::level lvl = log::level::info;
    log::parse_level(cfg.log_level, lvl);
    log::set_min_level(lvl);

    auto box = gateway::secret_box::from_env();
    if (!box) {
        std::cerr << "scrm-gateway: SCRM_MASTER_KEY "
                  << (box.error() == errc::not_found ? "is not set" : "must be 64 hex digits")
                  << " (it opens the accounts' sealed secrets)\n";
        return 2;
    }

    const unsigned threads =
        cfg.io_threads ? cfg.io_threads : std::max(1u, std::thread::hardware_concurrency());
    asio::io_context io(static_cast<int>(threads));
    auto work = asio::make_work_guard(io);

    // Destroyed after io.run() returns: it joins the MySQL workers on this (main) thread.
    gateway::services deps(io.get_executor(), cfg);
    auto stats = std::make_shared<gateway::metrics>();
    deps.register_metrics(*stats);

    gateway::account_registry accounts(deps.mysql(), *box);
    gateway::message_store store(io.get_executor(), deps.mysql());
    stats->add_gauge("scrm_message_store_batches_total", "Group commits of inbound messages.", "",
                     [&store] { return static_cast<double>(store.stats().batches); });
    std::unique_ptr<storage::spool> spool;
    try {
        spool = std::make_unique<storage::spool>(cfg.spool_dir);
    } catch (const std::exception& e) {
        std::cerr << "scrm-gateway: spool_dir: " << e.what() << "\n";
        return 1;
    }
    // Outbound: one WeChat client per account, the durable outbox and the media fetcher.
    wechat::http_endpoint endpoint;
    endpoint.base_url = cfg.wechat_api_base_url;
    endpoint.ca_file = cfg.wechat_ca_file;
    gateway::wechat_clients clients(accounts, deps.redis_ptr(), endpoint);
    // Routing's live state (DESIGN.md §5), shared by the outbox's delivery ticks.
    routing::live_options live_opts;
    live_opts.presence_ttl = cfg.agents.presence_ttl;
    live_opts.reconnect_grace = cfg.agents.reconnect_grace;
    routing::live_state live(deps.redis_ptr(), live_opts);
    wechat::outbox_options outbox_opts;
    outbox_opts.accounts = cfg.worker_accounts;
    outbox_opts.on_change = gateway::delivery_push(live);
    wechat::outbox outbox(io.get_executor(), deps.mysql(), deps.redis_ptr(), clients.lookup(),
                          outbox_opts);
    gateway::media_fetch_options media_opts;
    media_opts.dir = cfg.media_dir;
    media_opts.accounts = cfg.worker_accounts;
    std::error_code media_ec;
    std::filesystem::create_directories(media_opts.dir, media_ec);
    if (media_ec) {
        std::cerr << "scrm-gateway: media_dir: cannot create " << cfg.media_dir << ": "
                  << media_ec.message() << "\n";
        return 1;
    }
    gateway::media_fetcher media(io.get_executor(), deps.mysql(), clients.lookup(), media_opts);
    // Routing (DESIGN.md §5): the stage after storage, with its timer worker and sweeper.
    // Template notifications: events of the clinics' systems, their sends and the send log,
    // whose delivery reports (TEMPLATESENDJOBFINISH) the routing stage hands over.
    templates::notifier notifier(deps.mysql(), outbox);
    gateway::routing_stage_options stage_opts;
    stage_opts.clinics = cfg.worker_clinics;
    stage_opts.on_template_finished = [&notifier](std::uint64_t account, std::string openid,
                                                  std::uint64_t msgid, std::string status) {
        return notifier.record_delivery(account, std::move(openid), msgid, std::move(status));
    };
    gateway::routing_stage stage(io.get_executor(), deps.mysql(), deps.redis_ptr(), live, outbox,
                                 stage_opts);
    stats->add_gauge("scrm_messages_stored_total", "Inbound messages stored and handed on.", "",
                     [&stage] { return static_cast<double>(stage.stats().stored); });
    stats->add_gauge(
        "scrm_routing_wait_seconds_total",
        "Time webhook requests spent waiting for routing (passive reply), summed.", "",
        [&stage] { return std::chrono::duration<double>(stage.stats().waited).count(); });
    gateway::webhook hook(accounts, store, deps.redis(), deps.mysql(), stage, spool.get(), {},
                          [] { return static_cast<std::int64_t>(std::time(nullptr)); });
    // Retention: removes unfollowed fans' data once their clinic's period has passed.
    gateway::retention_options retention_opts;
    retention_opts.clinics = cfg.worker_clinics;
    retention_opts.media_dir = media_opts.dir;
    gateway::retention_worker retention(io.get_executor(), deps.mysql(), retention_opts);
    if (cfg.background_workers) {
        outbox.start();
        media.start();
        stage.start_workers();
        retention.start();
    } else {
        log::info("gateway.workers_off");
    }
    stats->add_gauge("scrm_outbox_sent_total", "Outbound messages WeChat accepted.", "",
                     [&outbox] { return static_cast<double>(outbox.stats().sent); });
    stats->add_gauge("scrm_outbox_failed_total", "Outbound messages WeChat refused.", "",
                     [&outbox] { return static_cast<double>(outbox.stats().failed); });
    stats->add_gauge("scrm_outbox_uncertain_total",
                     "Outbound messages that may or may not have reached the fan.", "",
                     [&outbox] { return static_cast<double>(outbox.stats().uncertain); });
    stats->add_gauge("scrm_media_fetched_total", "Inbound media files fetched from WeChat.", "",
                     [&media] { return static_cast<double>(media.stats().fetched); });

    gateway::router routes;
    gateway::add_health_routes(routes, deps.readiness_checks(), cfg.http.ready_timeout, stats);
    hook.add_routes(routes);
    // The agents' endpoints and their console push (one Redis subscriber for this instance).
    gateway::agent_push push(io.get_executor(), gateway::redis_options_from(cfg.redis));
    push.start();
    // The "reply waiting" notices and their page (/reply/<token>).
    gateway::reply_notice_options notice_opts;
    notice_opts.token_key = box->derive_key(gateway::reply_key_label);
    notice_opts.public_base_url = cfg.public_base_url;
    gateway::reply_notices notices(deps.mysql(), outbox, notice_opts);
    notices.add_routes(routes);
    if (cfg.public_base_url.empty()) log::warn("gateway.no_public_base_url");
    gateway::agent_api_options agent_opts;
    agent_opts.notices = &notices;
    agent_opts.settings = cfg.agents;
    agent_opts.media_dir = cfg.media_dir;
    gateway::agent_api agents(io.get_executor(), deps.mysql(), deps.redis_ptr(), live, outbox,
                              stage, push, agent_opts);
    agents.add_routes(routes);
    // The clinic administration endpoints, on the agents' sessions (admin role).
    gateway::admin_api admin(agents, deps.mysql(), clients);
    admin.add_routes(routes);
    gateway::integration_api integration(notifier, admin);
    integration.add_routes(routes);
    // Patient evaluations: the signed links' page and API, and their admin endpoints.
    gateway::evaluation_options eval_opts;
    eval_opts.token_key = box->derive_key(gateway::evaluation_key_label);
    eval_opts.link_ttl = cfg.evaluation_link_ttl;
    gateway::evaluation_api evaluations(admin, eval_opts);
    evaluations.add_routes(routes);
    // A "visit finished" event creates the evaluation its invitation links to.
    notifier.set_link_provider("evaluation_invitation",
                               evaluations.invitation_links(cfg.public_base_url));
    // The staff console (/console/) and the administration pages (/admin/), read into memory
    // now: requests never touch the disk.
    for (const auto& m : {gateway::static_mount{"/console", "console_dir", cfg.console_dir,
                                                SCRM_DEFAULT_CONSOLE_DIR},
                          gateway::static_mount{"/admin", "admin_dir", cfg.admin_dir,
                                                SCRM_DEFAULT_ADMIN_DIR}}) {
        if (auto problem = gateway::mount_static_site(routes, m)) {
            std::cerr << "scrm-gateway: " << *problem << "\n";
            return 1;
        }
    }
    asio::co_spawn(io, hook.replay_loop(std::chrono::seconds(1)), asio::detached);

    gateway::http_server server(io.get_executor(), cfg.http, std::move(routes), stats);
    std::uint16_t port = 0;
    try {
        port = server.start();
    } catch (const std::exception& e) {
        std::cerr << "scrm-gateway: " << e.what() << "\n";
        return 1;
    }
    log::info("gateway.listening", {{"address", cfg.http.listen_host},
                                    {"port", static_cast<unsigned>(port)},
                                    {"io_threads", threads}});
    // Which WeChat the outbox and the media fetcher talk to.
    log::info("gateway.wechat_api",
              {{"base_url", cfg.wechat_api_base_url},
               {"ca_file", cfg.wechat_ca_file.empty() ? "system" : cfg.wechat_ca_file}});

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int) {
        if (ec) return;
        workers w{stage, outbox, media, push, retention};
        asio::co_spawn(io, shutdown(server, hook, store, w, deps, cfg.http.shutdown_grace, work),
                       asio::detached);
    });

    std::vector<std::thread> pool;
    for (unsigned i = 1; i < threads; ++i) {
        pool.emplace_back([&io] {
            mark_io_thread();
            io.run();
        });
    }
    mark_io_thread();
    io.run();
    for (auto& t : pool) t.join();
    return 0;
}

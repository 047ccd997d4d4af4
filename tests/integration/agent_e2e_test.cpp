// Two scrm-gateway processes on one Redis and MariaDB (DESIGN.md §7): an agent whose console is
// connected to instance A receives a message the webhook delivered to instance B; two agents on
// different instances racing to accept (or to answer) one fan — exactly one wins, the other is
// told who; the logs hold no password, token or message text; SIGTERM closes consoles cleanly.
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <csignal>
#include <thread>

#include "clinic_fixture.hpp"
#include "gateway_process.hpp"
#include "http_client.hpp"
#include "scrm/gateway/agent_requests.hpp"
#include "scrm/gateway/http.hpp"
#include "scrm/gateway/services.hpp"
#include "scrm/storage/redis.hpp"
#include "test_env.hpp"
#include "ws_client.hpp"

using namespace scrm;
using namespace scrm::test;
using namespace std::chrono_literals;

namespace {

const std::string gateway_bin = SCRM_GATEWAY_BIN;
const std::string password = "two-instances-1";

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// Two instances of the gateway for one clinic, each with its own log.
struct two_gateways {
    explicit two_gateways(const clinic_fixture& c)
        : fx(c),
          dir(std::filesystem::temp_directory_path() / unique_name("scrm_agents_e2e")),
          a(start("a")),
          b(start("b")) {}
    ~two_gateways() {
        // The clinic's live state and the sessions signed in (the gateways' key root is "scrm").
        namespace asio = boost::asio;
        asio::io_context io;
        auto work = asio::make_work_guard(io);
        std::thread runner([&io] { io.run(); });
        auto redis = storage::redis_client::create(
            io.get_executor(), gateway::redis_options_from(services_config().redis));
        redis->start();
        if (asio::co_spawn(io, redis->wait_connected(5s), asio::use_future).get()) {
            delete_keys_under(io, *redis, "scrm:{c" + std::to_string(fx.clinic) + "}");
            std::vector<std::string> sessions;
            for (const auto& t : tokens) {
                sessions.push_back("scrm:agent_session:" + gateway::token_digest(t));
            }
            if (!sessions.empty()) {
                (void)asio::co_spawn(io, redis->del(std::move(sessions)), asio::use_future).get();
            }
        }
        redis->stop();
        work.reset();
        runner.join();
        std::filesystem::remove_all(dir);
    }
    std::unique_ptr<gateway_process> start(const std::string& name) {
        std::filesystem::create_directories(dir);
        return std::make_unique<gateway_process>(
            gateway_bin, services_config_path(), dir, name,
            std::vector<std::string>{"SCRM_MASTER_KEY=" + clinic_fixture::master_hex});
    }

    std::string sign_in(std::uint16_t port, const std::string& name) {
        const auto r = http_call(port, "POST", "/api/agent/sign-in",
                                 "{\"clinic\":" + gateway::json_quote(fx.name) +
                                     ",\"name\":" + gateway::json_quote(name) + ",\"password\":\"" +
                                     password + "\"}");
        INFO(r.body);
        REQUIRE(r.status == 200);
        const auto at = r.body.find("\"token\":\"") + 9;
        tokens.push_back(r.body.substr(at, 64));
        return tokens.back();
    }
    std::unique_ptr<ws_client> connect(std::uint16_t port, const std::string& token) {
        auto c = std::make_unique<ws_client>(
            port, "/api/agent/ws",
            std::vector<std::pair<std::string, std::string>>{{"Authorization", "Bearer " + token}});
        REQUIRE(c->status() == 101);
        REQUIRE(c->wait_for("\"type\":\"hello\"").has_value());
        return c;
    }
    http_reply act(std::uint16_t port, const std::string& token, const std::string& openid,
                   const std::string& action, const std::string& body = "{}") {
        return http_call(
            port, "POST",
            "/api/conversations/" + std::to_string(fx.account) + "/" + openid + "/" + action, body,
            {{"Authorization", "Bearer " + token}});
    }
    std::string logs() const { return a->proc.output() + b->proc.output(); }

    const clinic_fixture& fx;
    std::filesystem::path dir;
    std::unique_ptr<gateway_process> a, b;
    std::vector<std::string> tokens;
};

}  // namespace

TEST_CASE("an agent connected to one instance receives what the webhook delivered to the other") {
    clinic_fixture c;
    c.add_agent("张顾问", password);
    two_gateways g(c);
    const std::string token = g.sign_in(g.a->port, "张顾问");
    auto console = g.connect(g.a->port, token);

    const std::string secret_text = "我的牙龈出血三天了";
    const auto r = c.deliver(g.b->port, c.text_xml("oAcross1", 51001, secret_text));
    REQUIRE(r.status == 200);
    const auto pushed = console->wait_for("\"type\":\"message\"", 10s);
    REQUIRE(pushed.has_value());
    CHECK(has(*pushed, "\"openid\":\"oAcross1\""));
    CHECK(has(*pushed, secret_text));
    CHECK(has(*pushed, "\"rule\":\"shared\""));

    // The agent answers through instance B: the reply is queued for the fan.
    const auto sent = g.act(g.b->port, token, "oAcross1", "send", R"({"text":"请尽快来院检查"})");
    CHECK(sent.status == 200);

    // SIGTERM: the console gets "going away" and the instance exits cleanly.
    g.a->proc.signal(SIGTERM);
    CHECK(console->wait_closed(10s) == std::optional<int>(1001));
    CHECK(g.a->proc.wait(20s) == std::optional<int>(0));

    // Nothing secret in either log: no password, no token (nor its digest), no message text.
    const std::string logs = g.logs();
    CHECK(has(logs, "\"event\":\"agent.signed_in\""));
    CHECK_FALSE(has(logs, password));
    CHECK_FALSE(has(logs, token));
    CHECK_FALSE(has(logs, gateway::token_digest(token)));
    CHECK_FALSE(has(logs, secret_text));
    CHECK_FALSE(has(logs, "请尽快来院检查"));
}

TEST_CASE("two agents on two instances race for one fan: exactly one wins, the other is told who") {
    clinic_fixture c;
    const auto x = c.add_agent("甲", password);
    const auto y = c.add_agent("乙", password);
    two_gateways g(c);
    const std::string tx = g.sign_in(g.a->port, "甲");
    const std::string ty = g.sign_in(g.b->port, "乙");
    auto cx = g.connect(g.a->port, tx);
    auto cy = g.connect(g.b->port, ty);

    const auto race = [&](const std::string& openid, const std::string& action,
                          const std::string& body) {
        http_reply rx, ry;
        std::thread tx_thread([&] { rx = g.act(g.a->port, tx, openid, action, body); });
        std::thread ty_thread([&] { ry = g.act(g.b->port, ty, openid, action, body); });
        tx_thread.join();
        ty_thread.join();
        CAPTURE(openid, action, rx.status, rx.body, ry.status, ry.body);
        const bool x_won = rx.status == 200;
        CHECK(x_won != (ry.status == 200));
        const http_reply& loser = x_won ? ry : rx;
        CHECK(loser.status == 409);
        const std::string winner_id = std::to_string(x_won ? x : y);
        const std::string winner_name = x_won ? "甲" : "乙";
        CHECK(has(loser.body,
                  "\"holder\":{\"id\":" + winner_id + ",\"name\":\"" + winner_name + "\"}"));
        CHECK(has(loser.body, "「" + winner_name + "」"));
    };
    for (int i = 0; i < 6; ++i) {
        const std::string fan = "oRace" + std::to_string(i);
        REQUIRE(c.deliver(i % 2 ? g.b->port : g.a->port,
                          c.text_xml(fan, 52000 + static_cast<std::uint64_t>(i)))
                    .status == 200);
        if (i % 2) {
            race(fan, "send", R"({"text":"您好"})");
        } else {
            race(fan, "accept", "{}");
        }
    }
    // Exactly one queued reply per fan raced with send.
    CHECK(c.value("SELECT COUNT(*) FROM outbox WHERE account_id = ? AND origin LIKE 'agent:%'",
                  {c.account}) == "3");
}

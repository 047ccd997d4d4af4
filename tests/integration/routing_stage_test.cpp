// The routing stage behind the webhook, in-process over real HTTP, Redis and MariaDB: who is
// notified (agents' pub/sub channels), what the fan is answered (passive replies), what is
// persisted (receipts, exclusive agents, stores), the sweeper and the no-answer timer.
#include <catch2/catch.hpp>

#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <ctime>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "clinic_fixture.hpp"
#include "http_client.hpp"
#include "scrm/common/thread_role.hpp"
#include "scrm/gateway/metrics.hpp"
#include "scrm/gateway/routing_stage.hpp"
#include "scrm/gateway/services.hpp"
#include "scrm/gateway/webhook.hpp"
#include "scrm/routing/hours.hpp"
#include "scrm/routing/time_text.hpp"
#include "scrm/storage/mysql.hpp"
#include "scrm/storage/redis.hpp"
#include "scrm/wechat/outbox.hpp"
#include "scrm/wechat/signature.hpp"
#include "test_env.hpp"

namespace asio = boost::asio;
using namespace scrm;
using namespace scrm::gateway;
using namespace scrm::test;
using namespace std::chrono_literals;

namespace {

const std::string& master_hex = clinic_fixture::master_hex;
const std::string& original_id = clinic_fixture::original_id;
const std::string& token = clinic_fixture::token;

storage::mysql_options db_options(const config& cfg) {
    return mysql_options_from(cfg.mysql);
}

// The shared clinic fixture with ids as text, as these tests compare them with query results.
struct stage_clinic : clinic_fixture {
    using clinic_fixture::clinic_fixture;

    std::string add_store(const std::string& store_name) {
        return std::to_string(clinic_fixture::add_store(store_name));
    }
    std::string add_agent(const std::string& agent_name, bool can_receive = true,
                          std::optional<std::string> store = std::nullopt) {
        const auto in = store ? std::optional<std::uint64_t>(std::stoull(*store)) : std::nullopt;
        return std::to_string(clinic_fixture::add_agent(agent_name, "", can_receive, in));
    }
    std::string query(const std::string& sql, const std::vector<storage::sql_value>& p) const {
        return value(sql, p);
    }
};

// The webhook and the routing stage in-process, on a private key root in the shared Redis, with
// a subscriber on the agents' channels and an injected clock (real time + an offset).
struct harness {
    explicit harness(stage_clinic& c, std::function<void(routing_stage_options&)> tweak = {})
        : fx(c), tweak_(std::move(tweak)), deps(io.get_executor(), c.cfg) {
        routing::live_options lo;
        lo.key_root = unique_name("scrm_test_stage");
        live = std::make_unique<routing::live_state>(deps.redis_ptr(), lo);
        outbox = std::make_unique<wechat::outbox>(
            io.get_executor(), deps.mysql(), deps.redis_ptr(),
            [](std::string) -> asio::awaitable<result<std::shared_ptr<wechat::client>>> {
                co_return make_error_code(errc::not_found);
            });
        stage = make_stage();
        hook = std::make_unique<webhook>(
            accounts, store, deps.redis(), deps.mysql(), *stage, nullptr, webhook_settings{},
            [] { return static_cast<std::int64_t>(std::time(nullptr)); });
        router routes;
        hook->add_routes(routes);
        http_settings hs;
        hs.listen_port = 0;
        server = std::make_unique<http_server>(io.get_executor(), hs, std::move(routes),
                                               std::make_shared<metrics>());
        port = server->start();
        subscriber = storage::redis_subscriber::create(
            io.get_executor(), redis_options_from(fx.cfg.redis), [this](storage::redis_message m) {
                std::lock_guard lock(mutex);
                received[m.channel].push_back(m.payload);
            });
        subscriber->start();
        for (int i = 0; i < 2; ++i) {
            threads.emplace_back([this] {
                mark_io_thread();
                io.run();
            });
        }
        REQUIRE(sync(deps.redis().wait_connected(5s)).has_value());
        REQUIRE(sync(subscriber->wait_connected(5s)).has_value());
    }
    ~harness() {
        asio::co_spawn(io, server->stop(1s), asio::use_future).get();
        asio::co_spawn(io, stage->stop(1s), asio::use_future).get();
        for (auto& s : extra) asio::co_spawn(io, s->stop(1s), asio::use_future).get();
        delete_keys_under(io, deps.redis(), live->options().key_root);
        subscriber->stop();
        store.stop();
        deps.stop();
        work.reset();
        for (auto& t : threads) t.join();
    }

    std::unique_ptr<routing_stage> make_stage() {
        routing_stage_options o;
        o.clinics = {fx.clinic};
        o.cache_max_age = 0ms;
        o.sweep_min_age = 2s;
        o.now = [this] { return clock(); };
        if (tweak_) tweak_(o);
        return std::make_unique<routing_stage>(io.get_executor(), deps.mysql(), deps.redis_ptr(),
                                               *live, *outbox, o);
    }

    routing::instant clock() const {
        return std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now()) +
               std::chrono::milliseconds(offset_ms.load());
    }

    template <class T>
    T sync(asio::awaitable<T> aw) {
        return asio::co_spawn(io, std::move(aw), asio::use_future).get();
    }

    // Agents come online (heartbeat at the injected clock).
    void online(const std::string& agent) {
        REQUIRE(sync(live->heartbeat(fx.clinic, agent, "tab1", clock())).has_value());
    }

    std::string channel(const std::string& agent) const {
        return live->key_prefix(fx.clinic) + "agent:" + agent;
    }
    void listen(const std::vector<std::string>& agents) {
        std::vector<std::string> channels;
        for (const auto& a : agents) channels.push_back(channel(a));
        REQUIRE(sync(subscriber->subscribe(std::move(channels))).has_value());
    }
    // What each agent's channel received so far: publishes a marker on each channel and waits
    // for all of them, so everything published before has arrived (one connection, in order).
    std::map<std::string, std::vector<std::string>> pushes(const std::vector<std::string>& agents) {
        const std::string marker = unique_name("marker");
        for (const auto& a : agents) {
            REQUIRE(sync(deps.redis().publish(channel(a), marker)).has_value());
        }
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        for (;;) {
            std::map<std::string, std::vector<std::string>> out;
            bool all = true;
            {
                std::lock_guard lock(mutex);
                for (const auto& a : agents) {
                    auto& got = received[channel(a)];
                    auto it = std::find(got.begin(), got.end(), marker);
                    if (it == got.end()) {
                        all = false;
                        break;
                    }
                    for (auto m = got.begin(); m != it; ++m) {
                        if (m->rfind("marker", 0) != 0) out[a].push_back(*m);
                    }
                }
            }
            if (all) return out;
            REQUIRE(std::chrono::steady_clock::now() < deadline);
            std::this_thread::sleep_for(10ms);  // waiting on another connection, bounded
        }
    }

    // Posts the message and waits until routing has finished with it (a request past its reply
    // budget is answered before).
    http_reply post(const std::string& xml) {
        const std::string ts = std::to_string(std::time(nullptr));
        const std::string nonce = unique_name("n");
        const std::string query = "signature=" + wechat::url_signature(token, ts, nonce) +
                                  "&timestamp=" + ts + "&nonce=" + nonce + "&openid=x";
        auto r = http_call(port, "POST", "/wx/" + fx.appid + "?" + query, xml);
        settle();
        return r;
    }
    void settle() {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (stage->stats().in_flight > 0) {
            REQUIRE(std::chrono::steady_clock::now() < deadline);
            std::this_thread::sleep_for(2ms);  // routing on the io threads, bounded
        }
    }
    http_reply text(const std::string& openid, std::uint64_t msg_id,
                    const std::string& content = "你好") {
        return post(text_xml(openid, msg_id, content));
    }
    static std::string text_xml(const std::string& openid, std::uint64_t msg_id,
                                const std::string& content) {
        return "<xml><ToUserName><![CDATA[" + original_id +
               "]]></ToUserName><FromUserName><![CDATA[" + openid +
               "]]></FromUserName><CreateTime>" + std::to_string(std::time(nullptr)) +
               "</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[" + content +
               "]]></Content><MsgId>" + std::to_string(msg_id) + "</MsgId></xml>";
    }
    http_reply event(const std::string& openid, const std::string& name, const std::string& key) {
        return post("<xml><ToUserName><![CDATA[" + original_id +
                    "]]></ToUserName><FromUserName><![CDATA[" + openid +
                    "]]></FromUserName><CreateTime>" + std::to_string(std::time(nullptr)) +
                    "</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[" + name +
                    "]]></Event><EventKey><![CDATA[" + key + "]]></EventKey></xml>");
    }

    stage_clinic& fx;
    std::function<void(routing_stage_options&)> tweak_;
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    services deps;
    account_registry accounts{deps.mysql(), *secret_box::from_hex(master_hex), 0ms};
    message_store store{io.get_executor(), deps.mysql()};
    std::unique_ptr<routing::live_state> live;
    std::unique_ptr<wechat::outbox> outbox;
    std::unique_ptr<routing_stage> stage;
    std::vector<std::unique_ptr<routing_stage>> extra;
    std::unique_ptr<webhook> hook;
    std::unique_ptr<http_server> server;
    std::shared_ptr<storage::redis_subscriber> subscriber;
    std::mutex mutex;
    std::map<std::string, std::vector<std::string>> received;
    std::atomic<std::int64_t> offset_ms{0};
    std::uint16_t port = 0;
    std::vector<std::thread> threads;
};

const std::string no_agent_text = "NO-AGENT-REPLY";
const std::string after_hours_text = "AFTER-HOURS-REPLY";
const std::string offline_text = "CONSULTANT-OFFLINE-REPLY";
const std::string welcome_text = "WELCOME-REPLY";
const std::string timeout_text = "TIMEOUT-REPLY";
const std::string texts_columns =
    "no_agent_text, after_hours_text, consultant_offline_text, welcome_text, timeout_text";
const std::string texts_values = "'" + no_agent_text + "', '" + after_hours_text + "', '" +
                                 offline_text + "', '" + welcome_text + "', '" + timeout_text + "'";

}  // namespace

TEST_CASE("shared mode notifies every online candidate and nobody else") {
    stage_clinic c(texts_columns, texts_values);
    const auto a1 = c.add_agent("a1");
    const auto a2 = c.add_agent("a2");
    const auto no_perm = c.add_agent("no permission", false);
    const auto away = c.add_agent("offline");
    harness h(c);
    h.listen({a1, a2, no_perm, away});
    h.online(a1);
    h.online(a2);
    h.online(no_perm);

    auto r = h.text("oShared1", 1, "牙疼");
    REQUIRE(r.status == 200);
    CHECK(r.body == "success");  // someone is there: no auto-reply
    auto got = h.pushes({a1, a2, no_perm, away});
    REQUIRE(got[a1].size() == 1);
    CHECK(got[a2].size() == 1);
    CHECK(got[no_perm].empty());
    CHECK(got[away].empty());
    CHECK(has(got[a1][0], "\"rule\":\"shared\""));
    CHECK(has(got[a1][0], "\"openid\":\"oShared1\""));
    CHECK(has(got[a1][0], "\"content\":\"牙疼\""));
    CHECK(c.query("SELECT CONCAT(rule, ' ', targets, ' ', IFNULL(owner_agent_id, '-')) FROM "
                  "routing_receipts WHERE clinic_id = ?",
                  {c.clinic}) == "shared [" + a1 + "," + a2 + "] -");
    CHECK(c.query("SELECT COUNT(*) FROM inbound_messages WHERE account_id = ? AND routed_at IS "
                  "NOT NULL",
                  {c.account}) == "1");
    CHECK(h.stage->stats().stored == 1);
    CHECK(h.stage->stats().with_row == 1);  // decided in the store's transaction
    CHECK(h.stage->stats().waited > 0ns);  // the request's wait for routing is measured
}

TEST_CASE("a fan message is routed by the commit that stores it: receipt with the row, once") {
    stage_clinic c(texts_columns, texts_values);
    const auto a1 = c.add_agent("a1");
    const auto a2 = c.add_agent("a2");
    harness h(c);
    h.listen({a1, a2});
    h.online(a1);
    h.online(a2);

    // WeChat's retries of one message, all at once: each reads the live state before the store,
    // one inserts the row — with its receipt — and only that one applies the decision.
    const std::string xml = harness::text_xml("oWithRow", 77, "约明天上午");
    std::vector<std::thread> posts;
    std::atomic<int> ok{0};
    for (int i = 0; i < 6; ++i) {
        posts.emplace_back([&] {
            if (h.post(xml).status == 200) ++ok;
        });
    }
    for (auto& t : posts) t.join();
    CHECK(ok == 6);
    CHECK(c.query("SELECT COUNT(*) FROM routing_receipts WHERE clinic_id = ?", {c.clinic}) == "1");
    // Marked routed by the INSERT itself: the same statement's timestamp.
    CHECK(c.query("SELECT CONCAT(COUNT(*), ' ', SUM(routed_at = received_at)) FROM "
                  "inbound_messages WHERE account_id = ?",
                  {c.account}) == "1 1");
    CHECK(h.stage->stats().routed == 1);
    CHECK(h.stage->stats().with_row == 1);
    auto got = h.pushes({a1, a2});
    CHECK(got[a1].size() == 1);
    CHECK(got[a2].size() == 1);
}

TEST_CASE("with decide_in_store off every message is routed after its commit") {
    stage_clinic c(texts_columns, texts_values);
    const auto a1 = c.add_agent("a1");
    harness h(c, [](routing_stage_options& o) { o.decide_in_store = false; });
    h.listen({a1});
    h.online(a1);

    REQUIRE(h.text("oAfterCommit", 1).status == 200);
    CHECK(h.stage->stats().routed == 1);
    CHECK(h.stage->stats().with_row == 0);
    CHECK(c.query("SELECT CONCAT(rule, ' ', targets) FROM routing_receipts WHERE clinic_id = ?",
                  {c.clinic}) == "shared [" + a1 + "]");
    CHECK(h.pushes({a1})[a1].size() == 1);
}

TEST_CASE("exclusive mode makes the first pick the fan's exclusive agent and keeps it") {
    stage_clinic c("exclusive_mode, " + texts_columns, "1, " + texts_values);
    const auto a1 = c.add_agent("a1");
    const auto a2 = c.add_agent("a2");
    harness h(c);
    h.listen({a1, a2});
    h.online(a1);
    h.online(a2);

    REQUIRE(h.text("oExcl1", 1).status == 200);
    const std::string owner = c.query(
        "SELECT IFNULL(exclusive_agent_id, 'none') FROM fans WHERE account_id = ? AND openid = ?",
        {c.account, std::string("oExcl1")});
    REQUIRE((owner == a1 || owner == a2));
    const std::string other = owner == a1 ? a2 : a1;
    CHECK(c.query("SELECT CONCAT(rule, ' ', targets, ' ', owner_agent_id) FROM routing_receipts "
                  "WHERE clinic_id = ?",
                  {c.clinic}) == "assigned [" + owner + "] " + owner);
    REQUIRE(h.text("oExcl1", 2).status == 200);
    REQUIRE(h.text("oExcl1", 3).status == 200);
    // The pick was committed in Redis after the store; the two messages after it were routed by
    // the commits that stored them.
    CHECK(h.stage->stats().with_row == 2);
    auto got = h.pushes({a1, a2});
    CHECK(got[owner].size() == 3);
    CHECK(got[other].empty());
    CHECK(c.query("SELECT COUNT(*) FROM routing_receipts WHERE clinic_id = ? AND rule = "
                  "'exclusive' AND owner_agent_id = ?",
                  {c.clinic, owner}) == "2");
    // A second fan goes to the other agent (lower load).
    REQUIRE(h.text("oExcl2", 4).status == 200);
    CHECK(c.query("SELECT IFNULL(exclusive_agent_id, 'none') FROM fans WHERE account_id = ? AND "
                  "openid = ?",
                  {c.account, std::string("oExcl2")}) == other);
}

TEST_CASE("50 simultaneous first messages from one new fan yield one exclusive agent") {
    stage_clinic c("exclusive_mode", "1");
    std::vector<std::string> agents;
    for (int i = 0; i < 4; ++i) agents.push_back(c.add_agent("agent " + std::to_string(i)));
    harness h(c);
    for (const auto& a : agents) h.online(a);

    std::vector<std::thread> posts;
    std::atomic<int> ok{0};
    for (int i = 0; i < 50; ++i) {
        posts.emplace_back([&, i] {
            if (h.text("oBurst", 100 + static_cast<std::uint64_t>(i)).status == 200) ++ok;
        });
    }
    for (auto& t : posts) t.join();
    CHECK(ok == 50);
    CHECK(c.query("SELECT COUNT(*) FROM routing_receipts WHERE clinic_id = ?", {c.clinic}) == "50");
    CHECK(c.query("SELECT COUNT(DISTINCT owner_agent_id) FROM routing_receipts WHERE clinic_id = ?",
                  {c.clinic}) == "1");
    const std::string owner =
        c.query("SELECT MIN(owner_agent_id) FROM routing_receipts WHERE clinic_id = ?", {c.clinic});
    CHECK(c.query("SELECT IFNULL(exclusive_agent_id, 'none') FROM fans WHERE account_id = ? AND "
                  "openid = 'oBurst'",
                  {c.account}) == owner);
    auto in_redis = h.sync(h.live->exclusive_agent(c.clinic, "oBurst"));
    REQUIRE(in_redis.has_value());
    CHECK(*in_redis == std::optional<std::string>(owner));
    // Only the owner carries the fan in its load.
    auto loads = h.sync(h.live->read_loads(c.clinic, agents));
    REQUIRE(loads.has_value());
    std::int64_t total = 0;
    for (const auto& l : *loads) total += l.load;
    CHECK(total == 1);
}

TEST_CASE("exclusive picks committed by repick keep loads even and receipts true to the pick") {
    stage_clinic c("exclusive_mode", "1");
    std::vector<std::string> agents;
    for (int i = 0; i < 4; ++i) agents.push_back(c.add_agent("agent " + std::to_string(i)));
    // No second decision: every pick is committed in repick mode, which picks again in Redis
    // whenever concurrent commits changed the loads.
    harness h(c, [](routing_stage_options& o) { o.max_redecide = 0; });
    for (const auto& a : agents) h.online(a);

    std::vector<std::thread> posts;
    std::atomic<int> ok{0};
    for (int t = 0; t < 20; ++t) {
        posts.emplace_back([&, t] {
            for (int i = t; i < 100; i += 20) {
                const std::string fan = "oRepick" + std::to_string(i);
                if (h.text(fan, 400 + static_cast<std::uint64_t>(i)).status == 200) ++ok;
            }
        });
    }
    for (auto& t : posts) t.join();
    CHECK(ok == 100);
    auto loads = h.sync(h.live->read_loads(c.clinic, agents));
    REQUIRE(loads.has_value());
    for (const auto& l : *loads) {
        CAPTURE(l.agent);
        CHECK(l.load == 25);
    }
    // Each receipt names the agent that was committed: owner, only target and exclusive agent.
    CHECK(c.query("SELECT COUNT(*) FROM routing_receipts r JOIN inbound_messages m ON m.id = "
                  "r.message_id JOIN fans f ON f.account_id = m.account_id AND f.openid = "
                  "m.openid WHERE r.clinic_id = ? AND r.rule = 'assigned' AND r.targets = "
                  "CONCAT('[', r.owner_agent_id, ']') AND f.exclusive_agent_id = r.owner_agent_id "
                  "AND JSON_VALUE(r.receipt, '$.assign_exclusive') = r.owner_agent_id AND "
                  "JSON_SEARCH(r.receipt, 'one', CAST(r.owner_agent_id AS CHAR), NULL, "
                  "'$.receipt.excluded[*].agent') IS NULL",
                  {c.clinic}) == "100");
}

TEST_CASE("consultant offline: the consultant-offline prompt, and only the consultant notified") {
    stage_clinic c("consultant_mode, " + texts_columns, "1, " + texts_values);
    const auto consultant = c.add_agent("consultant");
    const auto desk = c.add_agent("front desk");
    {
        storage::mysql_session db(db_options(c.cfg));
        REQUIRE(db.execute("INSERT INTO fans (account_id, openid, consultant_agent_id) VALUES "
                           "(?, 'oPatient', ?)",
                           {c.account, consultant})
                    .has_value());
    }
    harness h(c);
    h.listen({consultant, desk});
    h.online(desk);

    auto r = h.text("oPatient", 1);
    REQUIRE(r.status == 200);
    CHECK(has(r.body, offline_text));
    CHECK_FALSE(has(r.body, no_agent_text));
    auto got = h.pushes({consultant, desk});
    CHECK(got[consultant].size() == 1);
    CHECK(got[desk].empty());
    CHECK(c.query("SELECT CONCAT(rule, ' ', owner_agent_id, ' ', auto_reply) FROM "
                  "routing_receipts WHERE clinic_id = ?",
                  {c.clinic}) == "consultant " + consultant + " consultant_offline");
}

TEST_CASE("after hours: the after-hours reply, under any rule") {
    // Closed yesterday, today and tomorrow (clinic time): whatever the time, it is after hours.
    const auto local = routing::to_local(
        std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()), 480min);
    const auto today = std::chrono::sys_days(local.date);
    const std::string closed = "[\"" + routing::format_date(today - std::chrono::days(1)) +
                               "\",\"" + routing::format_date(today) + "\",\"" +
                               routing::format_date(today + std::chrono::days(1)) + "\"]";
    stage_clinic c("closed_dates, " + texts_columns, "'" + closed + "', " + texts_values);
    const auto a1 = c.add_agent("a1");
    harness h(c);
    h.listen({a1});
    h.online(a1);

    auto r = h.text("oLate", 1);
    REQUIRE(r.status == 200);
    CHECK(has(r.body, after_hours_text));
    CHECK(h.pushes({a1})[a1].size() == 1);  // still shown to the agent on duty
    CHECK(c.query("SELECT CONCAT(rule, ' ', auto_reply) FROM routing_receipts WHERE clinic_id = ?",
                  {c.clinic}) == "shared after_hours");
}

TEST_CASE("nobody online: the no-agent reply once, then silence for the next 20 messages") {
    stage_clinic c(texts_columns, texts_values);
    const auto a1 = c.add_agent("a1");
    harness h(c);
    h.listen({a1});

    auto first = h.text("oAlone", 1);
    REQUIRE(first.status == 200);
    CHECK(has(first.body, no_agent_text));
    int replies = 0;
    for (std::uint64_t i = 2; i <= 21; ++i) {
        auto r = h.text("oAlone", i);
        REQUIRE(r.status == 200);
        if (r.body != "success") ++replies;
    }
    CHECK(replies == 0);
    CHECK(c.query("SELECT COUNT(*) FROM routing_receipts WHERE clinic_id = ? AND rule = 'none'",
                  {c.clinic}) == "21");
    CHECK(c.query("SELECT COUNT(*) FROM routing_receipts WHERE clinic_id = ? AND auto_reply = "
                  "'no_agent'",
                  {c.clinic}) == "1");
    CHECK(h.pushes({a1})[a1].empty());
    // Once the window has passed, the next message gets it again.
    h.offset_ms = 601'000;
    CHECK(has(h.text("oAlone", 22).body, no_agent_text));
}

TEST_CASE("nobody online: a burst of 20 simultaneous messages from one fan gets one auto-reply") {
    stage_clinic c(texts_columns, texts_values);
    const auto a1 = c.add_agent("a1");
    harness h(c);
    h.listen({a1});

    std::vector<std::thread> posts;
    std::atomic<int> ok{0}, replies{0};
    for (int i = 0; i < 20; ++i) {
        posts.emplace_back([&, i] {
            auto r = h.text("oBurstAlone", 300 + static_cast<std::uint64_t>(i));
            if (r.status == 200) ++ok;
            if (has(r.body, no_agent_text)) ++replies;
        });
    }
    for (auto& t : posts) t.join();
    CHECK(ok == 20);
    CHECK(replies == 1);  // claimed atomically: never one per message
    CHECK(c.query("SELECT COUNT(*) FROM routing_receipts WHERE clinic_id = ?", {c.clinic}) == "20");
}

TEST_CASE("subscribe: the welcome text; a store's QR scene binds the fan to that store") {
    stage_clinic c(texts_columns, texts_values);
    stage_clinic other;
    const auto store = c.add_store("east");
    const auto foreign = other.add_store("elsewhere");
    const auto a1 = c.add_agent("a1");
    harness h(c);
    h.online(a1);

    auto r = h.event("oNew", "subscribe", "qrscene_store_" + store);
    REQUIRE(r.status == 200);
    CHECK(has(r.body, welcome_text));
    CHECK(c.query("SELECT IFNULL(store_id, 'none') FROM fans WHERE account_id = ? AND openid = "
                  "'oNew'",
                  {c.account}) == store);
    CHECK(c.query("SELECT CONCAT(rule, ' ', auto_reply) FROM routing_receipts WHERE clinic_id = ?",
                  {c.clinic}) == "event welcome");
    // Another clinic's store is not bound; a SCAN of this clinic's store re-binds.
    REQUIRE(h.event("oOther", "subscribe", "qrscene_store_" + foreign).status == 200);
    CHECK(c.query("SELECT IFNULL(store_id, 'none') FROM fans WHERE account_id = ? AND openid = "
                  "'oOther'",
                  {c.account}) == "none");
    const auto west = c.add_store("west");
    REQUIRE(h.event("oNew", "SCAN", "store_" + west).status == 200);
    CHECK(c.query("SELECT IFNULL(store_id, 'none') FROM fans WHERE account_id = ? AND openid = "
                  "'oNew'",
                  {c.account}) == west);
    // The welcome opened the event window; a plain follow with the welcome off gets nothing.
    auto windows = h.sync(h.live->windows_of(c.clinic, "oNew", h.clock()));
    REQUIRE(windows.has_value());
    REQUIRE(windows->size() == 2);
    CHECK((*windows)[1].open);
}

TEST_CASE("unsubscribe ends the fan's session: lock released, timer cancelled, load dropped") {
    stage_clinic c("exclusive_mode, " + texts_columns, "1, " + texts_values);
    const auto a1 = c.add_agent("a1");
    harness h(c);
    h.online(a1);
    REQUIRE(h.text("oLeaving", 1).status == 200);  // a1 becomes the exclusive agent, owes a reply
    REQUIRE(h.sync(h.live->acquire_lock(c.clinic, "oLeaving", a1, h.clock())).has_value());
    REQUIRE(h.sync(h.live->timer_of(c.clinic, "oLeaving")).value().has_value());
    REQUIRE(h.sync(h.live->read_loads(c.clinic, {a1})).value()[0].load == 1);

    {
        storage::mysql_session db(db_options(c.cfg));
        REQUIRE(db.execute("INSERT INTO chat_sessions (account_id, openid, agent_id) VALUES "
                           "(?, 'oLeaving', ?)",
                           {c.account, a1})
                    .has_value());
    }
    REQUIRE(h.event("oLeaving", "unsubscribe", "").status == 200);
    CHECK(c.query("SELECT IFNULL(end_reason, 'open') FROM chat_sessions WHERE account_id = ?",
                  {c.account}) == "unsubscribed");
    CHECK_FALSE(h.sync(h.live->lock_of(c.clinic, "oLeaving")).value().has_value());
    CHECK_FALSE(h.sync(h.live->timer_of(c.clinic, "oLeaving")).value().has_value());
    CHECK(h.sync(h.live->read_loads(c.clinic, {a1})).value()[0].load == 0);
}

TEST_CASE(
    "the timer worker takes agents offline once their presence runs out, ending their locks") {
    stage_clinic c(texts_columns, texts_values);
    const auto a1 = c.add_agent("a1");
    harness h(c);
    h.online(a1);  // presence for the live state's TTL (60 s) from now
    REQUIRE(h.sync(h.live->acquire_lock(c.clinic, "oHeld", a1, h.clock())).value().status ==
            routing::lock_status::acquired);
    REQUIRE(h.sync(h.stage->run_timers_once()).has_value());
    CHECK(h.sync(h.live->lock_of(c.clinic, "oHeld")).value().has_value());  // still online

    {
        storage::mysql_session db(db_options(c.cfg));
        REQUIRE(db.execute("INSERT INTO chat_sessions (account_id, openid, agent_id) VALUES "
                           "(?, 'oHeld', ?)",
                           {c.account, a1})
                    .has_value());
    }

    h.offset_ms = 61'000;  // no heartbeat for longer than the TTL
    REQUIRE(h.sync(h.stage->run_timers_once()).has_value());
    CHECK_FALSE(h.sync(h.live->lock_of(c.clinic, "oHeld")).value().has_value());
    CHECK(c.query("SELECT IFNULL(end_reason, 'open') FROM chat_sessions WHERE account_id = ?",
                  {c.account}) == "offline");
    CHECK(h.sync(h.live->online_agents(c.clinic, h.clock())).value().empty());
}

TEST_CASE("a fan message renews the session lock for the clinic's own lock TTL") {
    stage_clinic c("lock_ttl_s, " + texts_columns, "30, " + texts_values);
    const auto a1 = c.add_agent("a1");
    harness h(c);
    h.online(a1);
    // Taken with the live state's default (10 minutes), then renewed by the fan's message.
    REQUIRE(h.sync(h.live->acquire_lock(c.clinic, "oTtl", a1, h.clock())).has_value());
    REQUIRE(h.sync(h.live->lock_of(c.clinic, "oTtl")).value()->ttl > 60s);
    REQUIRE(h.text("oTtl", 1).status == 200);
    const auto lock = h.sync(h.live->lock_of(c.clinic, "oTtl")).value();
    REQUIRE(lock.has_value());
    CHECK(lock->ttl <= 30s);
    CHECK(lock->ttl > 20s);
}

TEST_CASE("changed settings reach routing within the cache age, reloaded in the background") {
    stage_clinic c(texts_columns, texts_values);
    harness h(c, [](routing_stage_options& o) { o.cache_max_age = 300ms; });
    REQUIRE(has(h.event("oW1", "subscribe", "").body, welcome_text));
    {
        storage::mysql_session db(db_options(c.cfg));
        REQUIRE(db.execute("UPDATE clinic_routing SET welcome_text = 'WELCOME-V2' WHERE "
                           "clinic_id = ?",
                           {c.clinic})
                    .value() == 1);
    }
    // Until a reload lands the old text is used, without waiting; within a few cache ages the
    // new one is.
    int n = 0;
    bool changed = false;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!changed && std::chrono::steady_clock::now() < deadline) {
        const auto r = h.event("oW" + std::to_string(++n + 1), "subscribe", "");
        REQUIRE(r.status == 200);
        changed = has(r.body, "WELCOME-V2");
        if (!changed) {
            CHECK(has(r.body, welcome_text));
            std::this_thread::sleep_for(50ms);
        }
    }
    CHECK(changed);
}

TEST_CASE("the sweeper routes a stored but unrouted message exactly once") {
    stage_clinic c(texts_columns, texts_values);
    const auto a1 = c.add_agent("a1");
    harness h(c);
    h.listen({a1});
    h.online(a1);
    {
        // As if the gateway had crashed between the commit and routing.
        storage::mysql_session db(db_options(c.cfg));
        REQUIRE(db.execute("INSERT INTO fans (account_id, openid) VALUES (?, 'oLost')", {c.account})
                    .has_value());
        REQUIRE(
            db.execute("INSERT INTO inbound_messages (account_id, identity_hash, openid, msg_type, "
                       "create_time, content, body_xml, insert_batch, received_at) VALUES (?, "
                       "UNHEX(SHA2(UUID(), 256)), 'oLost', 'text', ?, 'x', ?, 0, "
                       "CURRENT_TIMESTAMP(3) - INTERVAL 10 SECOND)",
                       {c.account, static_cast<std::int64_t>(std::time(nullptr)),
                        harness::text_xml("oLost", 77, "还在吗")})
                .has_value());
    }
    // Two sweeps racing, then another: one receipt, one push.
    auto f1 = asio::co_spawn(h.io, h.stage->sweep_once(), asio::use_future);
    auto f2 = asio::co_spawn(h.io, h.stage->sweep_once(), asio::use_future);
    auto r1 = f1.get();
    auto r2 = f2.get();
    REQUIRE(r1.has_value());
    REQUIRE(r2.has_value());
    CHECK(*r1 + *r2 >= 1);
    auto r3 = h.sync(h.stage->sweep_once());
    REQUIRE(r3.has_value());
    CHECK(*r3 == 0);
    CHECK(c.query("SELECT COUNT(*) FROM routing_receipts WHERE clinic_id = ?", {c.clinic}) == "1");
    CHECK(c.query("SELECT COUNT(*) FROM inbound_messages WHERE account_id = ? AND routed_at IS "
                  "NULL",
                  {c.account}) == "0");
    auto got = h.pushes({a1});
    REQUIRE(got[a1].size() == 1);
    CHECK(has(got[a1][0], "\"content\":\"还在吗\""));
    CHECK(h.stage->stats().swept == 1);
}

TEST_CASE("two instances sweeping the same 20 messages at once route each exactly once") {
    stage_clinic c(texts_columns, texts_values);
    const auto a1 = c.add_agent("a1");
    harness h(c);
    h.listen({a1});
    h.online(a1);
    {
        storage::mysql_session db(db_options(c.cfg));
        for (int i = 0; i < 20; ++i) {
            const std::string fan = "oLost" + std::to_string(i);
            REQUIRE(
                db.execute("INSERT INTO fans (account_id, openid) VALUES (?, ?)", {c.account, fan})
                    .has_value());
            REQUIRE(
                db.execute("INSERT INTO inbound_messages (account_id, identity_hash, openid, "
                           "msg_type, create_time, content, body_xml, insert_batch, received_at) "
                           "VALUES (?, UNHEX(SHA2(UUID(), 256)), ?, 'text', ?, 'x', ?, 0, "
                           "CURRENT_TIMESTAMP(3) - INTERVAL 10 SECOND)",
                           {c.account, fan, static_cast<std::int64_t>(std::time(nullptr)),
                            harness::text_xml(fan, 100 + static_cast<std::uint64_t>(i), "在吗")})
                    .has_value());
        }
    }
    // A second instance's stage on the same databases: each receipt batch is its own
    // transaction, so the two meet on the messages' rows.
    auto other = h.make_stage();
    auto f1 = asio::co_spawn(h.io, h.stage->sweep_once(), asio::use_future);
    auto f2 = asio::co_spawn(h.io, other->sweep_once(), asio::use_future);
    auto r1 = f1.get();
    auto r2 = f2.get();
    REQUIRE(r1.has_value());
    REQUIRE(r2.has_value());
    CHECK(h.stage->stats().routed + other->stats().routed == 20);
    CHECK(c.query("SELECT COUNT(*) FROM routing_receipts WHERE clinic_id = ?", {c.clinic}) == "20");
    CHECK(c.query("SELECT COUNT(*) FROM inbound_messages WHERE account_id = ? AND routed_at IS "
                  "NULL",
                  {c.account}) == "0");
    CHECK(h.pushes({a1})[a1].size() == 20);
    asio::co_spawn(h.io, other->stop(1s), asio::use_future).get();
}

TEST_CASE("the timeout auto-reply goes out once through the outbox when nobody answers") {
    stage_clinic c(texts_columns, texts_values);
    const auto a1 = c.add_agent("a1");
    harness h(c);
    h.online(a1);
    h.extra.push_back(h.make_stage());

    REQUIRE(h.text("oWaiting", 1).status == 200);
    auto timer = h.sync(h.live->timer_of(c.clinic, "oWaiting"));
    REQUIRE(timer.has_value());
    REQUIRE(timer->has_value());
    const auto count = [&] {
        return c.query(
            "SELECT COUNT(*) FROM outbox WHERE account_id = ? AND origin = "
            "'auto:timeout'",
            {c.account});
    };
    // Not due yet.
    CHECK(*h.sync(h.stage->run_timers_once()) == 0);
    CHECK(count() == "0");
    // Five minutes later nobody has answered: two workers race for it, several rounds.
    h.offset_ms = 301'000;
    std::size_t claimed = 0;
    for (int round = 0; round < 3; ++round) {
        auto f1 = asio::co_spawn(h.io, h.stage->run_timers_once(), asio::use_future);
        auto f2 = asio::co_spawn(h.io, h.extra[0]->run_timers_once(), asio::use_future);
        auto r1 = f1.get();
        auto r2 = f2.get();
        REQUIRE(r1.has_value());
        REQUIRE(r2.has_value());
        claimed += *r1 + *r2;
    }
    CHECK(claimed == 1);
    CHECK(count() == "1");
    CHECK(c.query("SELECT body FROM outbox WHERE account_id = ? AND origin = 'auto:timeout'",
                  {c.account})
              .find(timeout_text) != std::string::npos);
    auto after = h.sync(h.live->timer_of(c.clinic, "oWaiting"));
    REQUIRE(after.has_value());
    CHECK_FALSE(after->has_value());
}

TEST_CASE("routing slower than the reply budget: answered at once, the auto-reply via the outbox") {
    stage_clinic c(texts_columns, texts_values);
    c.add_agent("a1");
    // All of the routing after the commit (decided in the store, only its effects would be left
    // to race the budget).
    harness h(c, [](routing_stage_options& o) {
        o.reply_budget = 1ms;
        o.decide_in_store = false;
    });

    auto r = h.text("oHurry", 1);
    REQUIRE(r.status == 200);
    CHECK(r.body == "success");
    // Routing finished in the background: the no-agent reply went to the outbox instead.
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    std::string queued;
    for (;;) {
        queued = c.query(
            "SELECT COUNT(*) FROM outbox WHERE account_id = ? AND origin = "
            "'auto:no_agent'",
            {c.account});
        if (queued != "0" || std::chrono::steady_clock::now() > deadline) break;
        std::this_thread::sleep_for(10ms);  // polling the background routing, bounded
    }
    CHECK(queued == "1");
    CHECK(c.query("SELECT body FROM outbox WHERE account_id = ? AND origin = 'auto:no_agent'",
                  {c.account})
              .find(no_agent_text) != std::string::npos);
    CHECK(c.query("SELECT COUNT(*) FROM routing_receipts WHERE clinic_id = ?", {c.clinic}) == "1");
}

TEST_CASE("chain-store mode: a fan bound by a store's QR code reaches only that store's agents") {
    stage_clinic c("chain_store_mode, " + texts_columns, "1, " + texts_values);
    const auto east = c.add_store("east");
    const auto west = c.add_store("west");
    const auto e1 = c.add_agent("e1", true, east);
    const auto w1 = c.add_agent("w1", true, west);
    const auto hq = c.add_agent("head office");
    harness h(c);
    h.listen({e1, w1, hq});
    h.online(e1);
    h.online(w1);
    h.online(hq);

    REQUIRE(h.event("oChain", "subscribe", "qrscene_store_" + east).status == 200);
    REQUIRE(h.text("oChain", 1).status == 200);
    auto got = h.pushes({e1, w1, hq});
    CHECK(got[e1].size() == 1);
    CHECK(got[w1].empty());
    CHECK(got[hq].empty());
    // Re-bound by a scan of the west store's code: now only west.
    REQUIRE(h.event("oChain", "SCAN", "store_" + west).status == 200);
    REQUIRE(h.text("oChain", 2).status == 200);
    got = h.pushes({e1, w1, hq});
    CHECK(got[e1].size() == 1);
    CHECK(got[w1].size() == 1);
    CHECK(got[hq].empty());
}

TEST_CASE("a message stored while Redis is down is routed by the sweeper once Redis is back") {
    private_services servers;  // its own Redis, so stopping it disturbs no other test
    stage_clinic c(texts_columns, texts_values, servers.config());
    const auto a1 = c.add_agent("a1");
    harness h(c, [](routing_stage_options& o) { o.sweep_min_age = 0ms; });

    servers.stop_redis();
    auto r = h.text("oOutage", 1, "有人吗");
    REQUIRE(r.status == 200);
    CHECK(r.body == "success");  // stored; routing could not run
    CHECK(c.query("SELECT COUNT(*) FROM inbound_messages WHERE account_id = ? AND routed_at IS "
                  "NULL",
                  {c.account}) == "1");
    CHECK(c.query("SELECT COUNT(*) FROM routing_receipts WHERE clinic_id = ?", {c.clinic}) == "0");
    CHECK(h.stage->stats().failures == 1);
    auto early = h.sync(h.stage->sweep_once());  // still down: nothing routed, nothing lost
    CHECK_FALSE(early.has_value());

    servers.start();
    REQUIRE(h.sync(h.deps.redis().wait_connected(10s)).has_value());
    REQUIRE(h.sync(h.subscriber->wait_connected(10s)).has_value());
    h.listen({a1});
    h.online(a1);
    auto swept = h.sync(h.stage->sweep_once());
    REQUIRE(swept.has_value());
    CHECK(*swept == 1);
    auto again = h.sync(h.stage->sweep_once());
    REQUIRE(again.has_value());
    CHECK(*again == 0);
    CHECK(c.query("SELECT CONCAT(rule, ' ', targets) FROM routing_receipts WHERE clinic_id = ?",
                  {c.clinic}) == "shared [" + a1 + "]");
    auto got = h.pushes({a1});
    REQUIRE(got[a1].size() == 1);
    CHECK(has(got[a1][0], "\"content\":\"有人吗\""));
}

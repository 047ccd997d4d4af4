// The durable outbox against the fake WeChat, the shared MariaDB and Redis: a message is stored
// before it is sent and sent once; -1 and refused connections are retried with backoff (and a
// restarted outbox picks the retry up); WeChat's refusals fail with a readable reason; a send
// whose answer was lost, or a row orphaned by a crashed worker, becomes uncertain and is never
// resent unless a person requeues it; a fan gets its messages in order; two workers racing send
// each row once; every state change is published.
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>
#include <thread>

#include "scrm/fakes/fake_wechat.hpp"
#include "scrm/gateway/services.hpp"
#include "scrm/storage/mysql.hpp"
#include "scrm/storage/redis.hpp"
#include "scrm/wechat/client.hpp"
#include "scrm/wechat/outbound.hpp"
#include "scrm/wechat/outbox.hpp"
#include "test_env.hpp"

namespace asio = boost::asio;
namespace fk = scrm::fakes;
namespace wx = scrm::wechat;
using namespace std::chrono_literals;
using scrm::test::run_sync;
using wx::outbox_state;

namespace {

constexpr const char* secret = "app-secret-0123456789";

scrm::storage::redis_options redis_opts() {
    const auto& s = scrm::test::services_config().redis;
    scrm::storage::redis_options o;
    o.host = s.host;
    o.port = s.port;
    o.password = s.password;
    o.command_timeout = 2000ms;
    return o;
}

scrm::storage::mysql_options mysql_opts() {
    auto o = scrm::gateway::mysql_options_from(scrm::test::services_config().mysql);
    o.workers = 4;
    return o;
}

// A customer-service text body, as the console and the auto-replies build them.
std::string text_body(const std::string& openid, const std::string& content) {
    return wx::custom_text_body(openid, content);
}

// Every lookup hands out the one client.
wx::client_lookup lookup_for(std::shared_ptr<wx::client> c) {
    return [c](std::string) -> asio::awaitable<scrm::result<std::shared_ptr<wx::client>>> {
        co_return c;
    };
}

// One gateway instance's outbox parts: its own io_context, MySQL pool, Redis client, WeChat
// client and outbox.
struct instance {
    instance(wx::client_options copts, wx::outbox_options opts)
        : mysql(mysql_opts()),
          redis(scrm::storage::redis_client::create(io.get_executor(), redis_opts())),
          client(std::make_shared<wx::client>(redis, std::move(copts))),
          box(io.get_executor(), mysql, redis, lookup_for(client), std::move(opts)) {
        redis->start();
        REQUIRE(run_sync(io, redis->wait_connected(5s)));
    }
    ~instance() {
        mysql.stop();
        redis->stop();
    }

    asio::io_context io;
    scrm::storage::mysql_pool mysql;
    std::shared_ptr<scrm::storage::redis_client> redis;
    std::shared_ptr<wx::client> client;
    wx::outbox box;
};

struct fixture {
    fixture() : fake(fake_options()) {
        REQUIRE(fake.start());
        fk::account a;
        a.appid = appid;
        a.secret = secret;
        a.token = "callbacktoken42";
        a.original_id = "gh_0123456789ab";
        REQUIRE(fake.api().add_account(a));

        redis = scrm::storage::redis_client::create(io.get_executor(), redis_opts());
        redis->start();
        REQUIRE(run_sync(io, redis->wait_connected(5s)));

        scrm::storage::mysql_session db(mysql_opts());
        const std::string clinic = scrm::test::unique_name("outbox clinic");
        REQUIRE(db.execute("INSERT INTO clinics (name) VALUES (?)", {clinic}).has_value());
        clinic_id = *db.query("SELECT id FROM clinics WHERE name = ?", {clinic})->rows[0][0];
        // The outbox reads only the appid; the sealed columns are not opened here.
        REQUIRE(db.execute("INSERT INTO official_accounts (clinic_id, appid, original_id, "
                           "token_sealed, aes_key_sealed, secret_sealed) "
                           "VALUES (?, ?, 'gh_0123456789ab', 'x', 'x', 'x')",
                           {clinic_id, appid})
                    .has_value());
        account_id = std::stoull(
            *db.query("SELECT id FROM official_accounts WHERE appid = ?", {appid})->rows[0][0]);
    }

    ~fixture() {
        scrm::storage::mysql_session db(mysql_opts());
        (void)db.execute("DELETE FROM outbox WHERE account_id = ?", {account_id});
        (void)db.execute("DELETE FROM official_accounts WHERE id = ?", {account_id});
        (void)db.execute("DELETE FROM clinics WHERE id = ?", {clinic_id});
        std::vector<std::string> keys{"scrm:wx:token:" + appid, "scrm:wx:token-lock:" + appid,
                                      "scrm:wx:token-forced:" + appid};
        (void)run_sync(io, redis->del(std::move(keys)));
        redis->stop();
    }

    static fk::fake_wechat_options fake_options() {
        fk::fake_wechat_options o;
        o.clock = std::make_shared<fk::fake_clock>(fk::sys_time(std::chrono::seconds(1'795'000'000)));
        return o;
    }

    wx::client_options client_options(const std::string& base_url) const {
        wx::client_options o;
        o.endpoint.base_url = base_url;
        o.endpoint.timeout = 2000ms;
        o.appid = appid;
        o.secret = secret;
        return o;
    }

    static wx::outbox_options fast() {
        wx::outbox_options o;
        o.backoff_base = 100ms;
        o.backoff_cap = 400ms;
        o.max_attempts = 4;
        o.poll_interval = 50ms;
        return o;
    }

    std::unique_ptr<instance> make_instance(wx::outbox_options o = fast()) {
        return make_instance(fake.url(), std::move(o));
    }
    std::unique_ptr<instance> make_instance(const std::string& base_url, wx::outbox_options o) {
        o.accounts = {account_id};  // other suites' rows on the shared database are not ours
        return std::make_unique<instance>(client_options(base_url), std::move(o));
    }

    // A following fan with an open message window.
    std::string fan(const std::string& seed, bool window = true) {
        std::string openid = fk::make_openid(seed + appid);
        fk::fan f;
        f.appid = appid;
        f.openid = openid;
        fake.api().set_fan(f);
        if (window) fake.api().record_interaction(appid, openid, fk::window_kind::message);
        return openid;
    }

    wx::outbound_message text(const std::string& openid, const std::string& content) const {
        wx::outbound_message m;
        m.account_id = account_id;
        m.openid = openid;
        m.kind = "text";
        m.body = text_body(openid, content);
        m.origin = "agent:test";
        return m;
    }

    std::uint64_t enqueue(instance& in, const std::string& openid, const std::string& content) {
        auto id = run_sync(in.io, in.box.enqueue(text(openid, content)));
        REQUIRE(id.has_value());
        return *id;
    }

    wx::outbox_entry entry(instance& in, std::uint64_t id) {
        auto e = run_sync(in.io, in.box.get(id));
        REQUIRE(e.has_value());
        return *e;
    }

    std::size_t cycle(instance& in) {
        auto n = run_sync(in.io, in.box.run_once());
        REQUIRE(n.has_value());
        return *n;
    }

    // Runs cycles until the row leaves queued/sending (bounded).
    wx::outbox_entry settle(instance& in, std::uint64_t id) {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        for (;;) {
            auto e = entry(in, id);
            if (e.state != outbox_state::queued && e.state != outbox_state::sending) return e;
            REQUIRE(std::chrono::steady_clock::now() < deadline);
            cycle(in);
            std::this_thread::sleep_for(20ms);
        }
    }

    std::vector<fk::sent_message> sent_to(const std::string& openid) {
        std::vector<fk::sent_message> out;
        for (auto& m : fake.api().sent(appid)) {
            if (m.openid == openid) out.push_back(m);
        }
        return out;
    }

    std::size_t send_calls() { return fake.api().calls("custom_send").size(); }

    void inject(fk::fault_action action, int errcode, int times,
                std::chrono::milliseconds delay = 0ms) {
        fk::fault f;
        f.api = "custom_send";
        f.action = action;
        f.errcode = errcode;
        f.times = times;
        f.delay = delay;
        fake.api().inject(f);
    }

    std::string appid = scrm::test::unique_name("wxoutbox");
    fk::fake_wechat fake;
    asio::io_context io;
    std::shared_ptr<scrm::storage::redis_client> redis;
    std::string clinic_id;
    std::uint64_t account_id = 0;
};

}  // namespace

TEST_CASE("outbox: a message is stored, sent once and published as it changes", "[outbox]") {
    fixture f;
    std::vector<scrm::storage::redis_message> events;
    auto sub = scrm::storage::redis_subscriber::create(
        f.io.get_executor(), redis_opts(),
        [&events](scrm::storage::redis_message m) { events.push_back(std::move(m)); });
    sub->start();
    REQUIRE(run_sync(f.io, sub->wait_connected(5s)));
    const std::string channel = "scrm:outbox:" + std::to_string(f.account_id);
    REQUIRE(run_sync(f.io, sub->subscribe({channel})));

    auto in = f.make_instance();
    const auto openid = f.fan("sent-once");
    const auto id = f.enqueue(*in, openid, "您好，明天上午十点见 😀");
    auto queued = f.entry(*in, id);
    CHECK(queued.state == outbox_state::queued);
    CHECK(queued.attempts == 0);
    CHECK(queued.kind == "text");
    CHECK(queued.origin == "agent:test");
    CHECK(f.send_calls() == 0);  // stored, not yet sent

    CHECK(f.cycle(*in) == 1);
    auto sent = f.entry(*in, id);
    CHECK(sent.state == outbox_state::sent);
    CHECK(sent.attempts == 1);
    CHECK_FALSE(sent.last_errcode.has_value());
    auto got = f.sent_to(openid);
    REQUIRE(got.size() == 1);
    CHECK(got[0].body == text_body(openid, "您好，明天上午十点见 😀"));

    CHECK(f.cycle(*in) == 0);  // nothing left: not sent twice
    CHECK(f.sent_to(openid).size() == 1);

    // queued, then sent, on the account's channel (drained from f.io by the polls above).
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (events.size() < 2 && std::chrono::steady_clock::now() < deadline) {
        f.io.restart();
        f.io.run_for(20ms);
    }
    REQUIRE(events.size() == 2);
    CHECK(events[0].channel == channel);
    CHECK(events[0].payload.find("\"state\":\"queued\"") != std::string::npos);
    CHECK(events[1].payload.find("\"state\":\"sent\"") != std::string::npos);
    CHECK(events[1].payload.find("\"id\":" + std::to_string(id)) != std::string::npos);
    CHECK(events[1].payload.find("明天") == std::string::npos);  // never the message text
    sub->stop();
}

TEST_CASE("outbox: bad messages are refused and nothing is stored", "[outbox]") {
    fixture f;
    auto in = f.make_instance();
    const auto openid = f.fan("refused");
    auto count = [&] {
        scrm::storage::mysql_session db(mysql_opts());
        return *db.query("SELECT COUNT(*) FROM outbox WHERE account_id = ?", {f.account_id})
                    ->rows[0][0];
    };
    const auto before = count();
    std::vector<wx::outbound_message> bad(5, f.text(openid, "x"));
    bad[0].account_id = 0;
    bad[1].openid.clear();
    bad[2].kind.clear();
    bad[3].api_path = "/not-wechat";
    bad[4].body.clear();
    for (auto& m : bad) {
        auto r = run_sync(in->io, in->box.enqueue(m));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == scrm::errc::bad_input);
    }
    CHECK(count() == before);
    CHECK(f.cycle(*in) == 0);
    CHECK(f.send_calls() == 0);
}

TEST_CASE("outbox: -1 and a refused connection are retried with backoff, across a restart",
          "[outbox]") {
    fixture f;
    const auto openid = f.fan("retried");
    std::uint64_t id = 0;
    {
        // First instance: WeChat's API is not reachable at all (nothing listens on the port).
        const std::string dead = "http://127.0.0.1:" + std::to_string(scrm::test::free_port());
        auto in = f.make_instance(dead, fixture::fast());
        id = f.enqueue(*in, openid, "复诊提醒");
        CHECK(f.cycle(*in) == 1);
        auto e = f.entry(*in, id);
        CHECK(e.state == outbox_state::queued);  // known not delivered: retried
        CHECK(e.attempts == 1);
        CHECK(e.last_error == "无法连接微信服务器");
        CHECK(f.cycle(*in) == 0);  // not before its backoff
        CHECK(in->box.stats().retried == 1);
    }  // the instance is gone: a restart

    // WeChat is busy twice, then answers.
    f.inject(fk::fault_action::error, -1, 2);
    auto in = f.make_instance();
    std::this_thread::sleep_for(150ms);
    CHECK(f.cycle(*in) == 1);
    auto busy = f.entry(*in, id);
    CHECK(busy.state == outbox_state::queued);
    CHECK(busy.attempts == 2);
    CHECK(busy.last_errcode == -1);
    CHECK(busy.last_error == "微信系统繁忙");
    CHECK(f.cycle(*in) == 0);  // backing off (200 ms after the second attempt)

    auto done = f.settle(*in, id);
    CHECK(done.state == outbox_state::sent);
    CHECK(done.attempts == 4);
    CHECK(f.send_calls() == 3);  // two refused by -1, one accepted (the first never connected)
    CHECK(f.sent_to(openid).size() == 1);
}

TEST_CASE("outbox: retries run out into failed", "[outbox]") {
    fixture f;
    const auto openid = f.fan("exhausted");
    f.inject(fk::fault_action::error, -1, -1);
    auto in = f.make_instance();
    const auto id = f.enqueue(*in, openid, "x");
    auto e = f.settle(*in, id);
    CHECK(e.state == outbox_state::failed);
    CHECK(e.attempts == fixture::fast().max_attempts);
    CHECK(e.last_errcode == -1);
    CHECK(e.last_error == "微信系统繁忙，已重试4次");
    CHECK(f.send_calls() == fixture::fast().max_attempts);
    CHECK(f.sent_to(openid).empty());
}

TEST_CASE("outbox: WeChat's refusals fail at once with a readable reason", "[outbox]") {
    fixture f;
    auto in = f.make_instance();
    // No window: the fan has not written within 48 hours.
    const auto closed = f.fan("no-window", false);
    const auto a = f.enqueue(*in, closed, "x");
    // An unfollowed fan.
    const auto gone = f.fan("unfollowed");
    fk::fan unfollowed;
    unfollowed.appid = f.appid;
    unfollowed.openid = gone;
    unfollowed.following = false;
    f.fake.api().set_fan(unfollowed);
    const auto b = f.enqueue(*in, gone, "x");

    CHECK(f.cycle(*in) == 2);
    auto ea = f.entry(*in, a);
    CHECK(ea.state == outbox_state::failed);
    CHECK(ea.last_errcode == 45015);
    CHECK(ea.last_error == "粉丝48小时内没有互动，客服消息窗口已关闭");
    auto eb = f.entry(*in, b);
    CHECK(eb.state == outbox_state::failed);
    CHECK(eb.last_errcode == 43004);
    CHECK(eb.last_error == "粉丝已取消关注公众号");
    CHECK(f.cycle(*in) == 0);  // not retried
    CHECK(f.send_calls() == 2);
    CHECK(in->box.stats().failed == 2);
}

TEST_CASE("outbox: a send whose answer was lost is uncertain and only a person resends it",
          "[outbox]") {
    fixture f;
    auto in = f.make_instance();
    const auto openid = f.fan("uncertain");
    f.inject(fk::fault_action::drop_after_processing, 0, 1);
    const auto id = f.enqueue(*in, openid, "x");
    CHECK(f.cycle(*in) == 1);
    auto e = f.entry(*in, id);
    CHECK(e.state == outbox_state::uncertain);
    CHECK(e.last_error.find("发送结果未知") == 0);
    CHECK(f.sent_to(openid).size() == 1);  // it did reach the fan

    std::this_thread::sleep_for(150ms);
    CHECK(f.cycle(*in) == 0);
    CHECK(f.send_calls() == 1);  // never resent on its own

    // Requeue only applies to uncertain or failed rows.
    auto again = run_sync(in->io, in->box.requeue(id));
    REQUIRE(again.has_value());
    CHECK(*again);
    auto twice = run_sync(in->io, in->box.requeue(id));
    REQUIRE(twice.has_value());
    CHECK_FALSE(*twice);  // already queued
    CHECK(f.settle(*in, id).state == outbox_state::sent);
    CHECK(f.sent_to(openid).size() == 2);  // the person chose to send it again
}

TEST_CASE("outbox: a row orphaned by a crashed worker becomes uncertain, not resent",
          "[outbox]") {
    fixture f;
    const auto openid = f.fan("orphan");
    // WeChat answers slowly; the worker "crashes" (its io_context, pool and outbox vanish) while
    // the request is in flight.
    f.inject(fk::fault_action::none, 0, 1, 1500ms);
    std::uint64_t id = 0;
    {
        auto crashed = f.make_instance();
        id = f.enqueue(*crashed, openid, "x");
        asio::co_spawn(crashed->io, crashed->box.run_once(), asio::detached);
        crashed->io.restart();
        // Run the worker until the row is claimed, then a little longer so the request is out.
        scrm::storage::mysql_session db(mysql_opts());
        auto state = [&] {
            return *db.query("SELECT state FROM outbox WHERE id = ?", {id})->rows[0][0];
        };
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while (state() != "sending" && std::chrono::steady_clock::now() < deadline) {
            crashed->io.run_for(5ms);
        }
        REQUIRE(state() == "sending");
        crashed->io.run_for(300ms);
        REQUIRE(state() == "sending");  // WeChat has not answered yet
        crashed->io.stop();
    }

    auto opts = fixture::fast();
    opts.lease = 1000ms;
    auto in = f.make_instance(opts);
    CHECK(f.cycle(*in) == 0);  // still within its lease: left alone
    CHECK(f.entry(*in, id).state == outbox_state::sending);
    std::this_thread::sleep_for(1000ms);
    CHECK(f.cycle(*in) == 0);
    auto e = f.entry(*in, id);
    CHECK(e.state == outbox_state::uncertain);
    CHECK(e.last_error.find("发送结果未知") == 0);
    CHECK(in->box.stats().orphans == 1);
    std::this_thread::sleep_for(1500ms);  // the slow call is long over: it reached the fan
    CHECK(f.cycle(*in) == 0);
    CHECK(f.send_calls() == 1);
    CHECK(f.sent_to(openid).size() == 1);
}

TEST_CASE("outbox: a fan gets its messages in order even when one is retried", "[outbox]") {
    fixture f;
    auto in = f.make_instance();
    const auto first = f.fan("ordered");
    const auto other = f.fan("other");
    f.inject(fk::fault_action::error, -1, 1);
    const auto m1 = f.enqueue(*in, first, "one");
    f.enqueue(*in, first, "two");
    f.enqueue(*in, first, "three");
    f.enqueue(*in, other, "elsewhere");

    CHECK(f.cycle(*in) == 2);  // "one" (refused by -1) and "elsewhere"; not "two"
    CHECK(f.entry(*in, m1).state == outbox_state::queued);
    CHECK(f.sent_to(other).size() == 1);
    CHECK(f.cycle(*in) == 0);  // "two" waits behind "one", which is backing off
    CHECK(f.sent_to(first).empty());

    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (f.sent_to(first).size() < 3 && std::chrono::steady_clock::now() < deadline) {
        f.cycle(*in);
        std::this_thread::sleep_for(20ms);
    }
    auto got = f.sent_to(first);
    REQUIRE(got.size() == 3);
    CHECK(got[0].body == text_body(first, "one"));
    CHECK(got[1].body == text_body(first, "two"));
    CHECK(got[2].body == text_body(first, "three"));
}

TEST_CASE("outbox: two workers racing over the same rows send each once", "[outbox]") {
    fixture f;
    auto small = fixture::fast();
    small.batch = 4;  // many small claims, so the two workers' claims interleave
    auto a = f.make_instance(small);
    auto b = f.make_instance(small);
    std::vector<std::string> fans;
    for (int i = 0; i < 24; ++i) {
        fans.push_back(f.fan("race" + std::to_string(i)));
        f.enqueue(*a, fans.back(), "m" + std::to_string(i));
    }
    // Both instances' cycles run at the same time, each on its own thread.
    auto drive = [&f](instance& in) {
        for (int i = 0; i < 20; ++i) {
            auto n = run_sync(in.io, in.box.run_once());
            if (!n.has_value()) return;
        }
    };
    std::thread ta([&] { drive(*a); });
    std::thread tb([&] { drive(*b); });
    ta.join();
    tb.join();
    CHECK(f.send_calls() == 24);
    for (const auto& openid : fans) CHECK(f.sent_to(openid).size() == 1);
    CHECK(a->box.stats().sent + b->box.stats().sent == 24);
}

TEST_CASE("outbox: the worker sends without being polled and stops cleanly", "[outbox]") {
    fixture f;
    auto opts = fixture::fast();
    opts.poll_interval = 10s;  // the wake-up on enqueue, not the poll, must send it
    auto in = f.make_instance(opts);
    const auto openid = f.fan("worker");
    in->box.start();
    const auto id = f.enqueue(*in, openid, "x");
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (f.entry(*in, id).state != outbox_state::sent &&
           std::chrono::steady_clock::now() < deadline) {
        in->io.restart();
        in->io.run_for(20ms);
    }
    CHECK(f.entry(*in, id).state == outbox_state::sent);
    run_sync(in->io, in->box.stop(5s), 6s);
    CHECK(f.sent_to(openid).size() == 1);
}

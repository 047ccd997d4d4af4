// Template notifications end to end, in-process over real HTTP with Redis, MariaDB and the fake
// WeChat: a clinic system's event (API key) → the template message with the clinic's mapping as
// the fake received it → TEMPLATESENDJOBFINISH posted by the fake to the webhook updates the send
// log → the admin's log search finds it; the same event twice (also an hour apart) sends once; a
// switched-off kind is skipped; unknown patients, ambiguous phones, missing fields and bad input
// are refused with nothing recorded.
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <ctime>
#include <future>
#include <thread>

#include "clinic_fixture.hpp"
#include "http_client.hpp"
#include "scrm/common/thread_role.hpp"
#include "scrm/fakes/fake_wechat.hpp"
#include "scrm/gateway/accounts.hpp"
#include "scrm/gateway/admin_api.hpp"
#include "scrm/gateway/agent_api.hpp"
#include "scrm/gateway/agent_push.hpp"
#include "scrm/gateway/integration_api.hpp"
#include "scrm/gateway/metrics.hpp"
#include "scrm/gateway/routing_stage.hpp"
#include "scrm/gateway/secret_box.hpp"
#include "scrm/gateway/services.hpp"
#include "scrm/gateway/webhook.hpp"
#include "scrm/gateway/wechat_clients.hpp"
#include "scrm/storage/redis.hpp"
#include "scrm/templates/notifier.hpp"
#include "scrm/wechat/outbox.hpp"
#include "test_env.hpp"

namespace asio = boost::asio;
namespace fk = scrm::fakes;
using namespace scrm;
using namespace scrm::gateway;
using namespace scrm::test;
using namespace std::chrono_literals;

namespace {

const std::string password = "correct-horse-1";

// The value of the first "name":… in a JSON text (a string without its quotes, or a number /
// literal); empty when absent.
std::string field(const std::string& json, const std::string& name) {
    const std::string key = "\"" + name + "\":";
    const auto at = json.find(key);
    if (at == std::string::npos) return {};
    const auto start = at + key.size();
    if (json[start] == '"') {
        const auto end = json.find('"', start + 1);
        return json.substr(start + 1, end - start - 1);
    }
    const auto end = json.find_first_of(",}]", start);
    return json.substr(start, end - start);
}

// A gateway's webhook, routing stage (with the delivery report hook), outbox worker (this
// clinic's account only) talking to the fake WeChat, agent endpoints and integration endpoints.
struct harness {
    explicit harness(clinic_fixture& c) : fx(c), deps(io.get_executor(), c.cfg) {
        REQUIRE(fake.start());
        routing::live_options lo;
        lo.key_root = unique_name("scrm_test_templates");
        live = std::make_unique<routing::live_state>(deps.redis_ptr(), lo);
        wechat::http_endpoint endpoint;
        endpoint.base_url = fake.url();
        endpoint.timeout = 3000ms;
        clients = std::make_unique<wechat_clients>(accounts, deps.redis_ptr(), endpoint);
        wechat::outbox_options oo;
        oo.accounts = {fx.account};
        oo.poll_interval = 100ms;
        outbox = std::make_unique<wechat::outbox>(io.get_executor(), deps.mysql(), deps.redis_ptr(),
                                                  clients->lookup(), oo);
        notifier = std::make_unique<templates::notifier>(deps.mysql(), *outbox);
        routing_stage_options so;
        so.clinics = {fx.clinic};
        so.cache_max_age = 0ms;
        so.sweep_min_age = 500ms;
        so.sweep_interval = 200ms;
        auto* n = notifier.get();
        so.on_template_finished = [n](std::uint64_t account, std::string openid,
                                      std::uint64_t msgid, std::string status) {
            return n->record_delivery(account, std::move(openid), msgid, std::move(status));
        };
        stage = std::make_unique<routing_stage>(io.get_executor(), deps.mysql(), deps.redis_ptr(),
                                                *live, *outbox, so);
        hook = std::make_unique<webhook>(
            accounts, store, deps.redis(), deps.mysql(), *stage, nullptr, webhook_settings{},
            [] { return static_cast<std::int64_t>(std::time(nullptr)); });
        push = std::make_unique<agent_push>(io.get_executor(), redis_options_from(fx.cfg.redis));
        push->start();
        agent_api_options ao;
        ao.key_root = lo.key_root;
        ao.settings.signin_failure_delay = 0ms;
        ao.settings.cookie_secure = false;
        agents = std::make_unique<agent_api>(io.get_executor(), deps.mysql(), deps.redis_ptr(),
                                             *live, *outbox, *stage, *push, ao);
        admin = std::make_unique<admin_api>(*agents, deps.mysql(), *clients);
        integration = std::make_unique<integration_api>(*notifier, *admin);
        router routes;
        hook->add_routes(routes);
        agents->add_routes(routes);
        integration->add_routes(routes);
        http_settings hs;
        hs.listen_port = 0;
        server = std::make_unique<http_server>(io.get_executor(), hs, std::move(routes),
                                               std::make_shared<metrics>());
        port = server->start();
        store.start();
        outbox->start();
        stage->start_workers();
        for (int i = 0; i < 2; ++i) {
            threads.emplace_back([this] {
                mark_io_thread();
                io.run();
            });
        }
        REQUIRE(sync(deps.redis().wait_connected(5s)).has_value());

        fk::account a;
        a.appid = fx.appid;
        a.secret = "0123456789abcdef0123456789abcdef";
        a.token = clinic_fixture::token;
        a.original_id = "gh_fixture00001";
        a.mode = fk::encryption_mode::plain;
        a.callback_url = "http://127.0.0.1:" + std::to_string(port) + "/wx/" + fx.appid;
        REQUIRE(fake.api().add_account(a));

        key = *templates::new_api_key();
        fx.execute("INSERT INTO api_keys (clinic_id, name, prefix, key_hash) VALUES (?, ?, ?, ?)",
                   {fx.clinic, std::string("pms"), templates::api_key_prefix(key),
                    templates::api_key_hash(key)});
        fx.add_agent("管理员", password, false, std::nullopt, true, "admin");
        fx.add_agent("客服", password, true, std::nullopt, true, "service");
        admin_token = token("管理员");
    }
    ~harness() {
        sync(server->stop(1s));
        sync(stage->stop(1s));
        sync(outbox->stop(2s));
        delete_keys_under(io, deps.redis(), live->options().key_root);
        std::vector<std::string> keys{"scrm:wx:token:" + fx.appid};
        (void)sync(deps.redis().del(std::move(keys)));
        push->stop();
        store.stop();
        deps.stop();
        work.reset();
        for (auto& t : threads) t.join();
        // This suite's tables first: they refer to the clinic the fixture removes.
        for (const char* table :
             {"template_log", "integration_events", "template_settings", "api_keys"}) {
            fx.execute(std::string("DELETE FROM ") + table + " WHERE clinic_id = ?", {fx.clinic});
        }
    }

    template <class T>
    T sync(asio::awaitable<T> aw) {
        return asio::co_spawn(io, std::move(aw), asio::use_future).get();
    }
    void sync(asio::awaitable<void> aw) {
        asio::co_spawn(io, std::move(aw), asio::use_future).get();
    }

    std::string token(const std::string& name) {
        const auto r =
            http_call(port, "POST", "/api/agent/sign-in",
                      "{\"clinic\":" + json_quote(fx.name) + ",\"name\":" + json_quote(name) +
                          ",\"password\":" + json_quote(password) + "}");
        INFO(r.body);
        REQUIRE(r.status == 200);
        return field(r.body, "token");
    }

    // A patient with a record number, and (optionally) a fan bound to them who follows.
    std::uint64_t patient(const std::string& name, const std::string& record_no,
                          const std::string& phone = "") {
        fx.execute("INSERT INTO patients (clinic_id, name, phone, record_no) VALUES (?, ?, ?, ?)",
                   {fx.clinic, name,
                    phone.empty() ? storage::sql_value() : storage::sql_value(phone), record_no});
        return std::stoull(fx.value("SELECT id FROM patients WHERE clinic_id = ? AND record_no = ?",
                                    {fx.clinic, record_no}));
    }
    std::string bind_fan(std::uint64_t patient_id, const std::string& seed) {
        const std::string openid = fk::make_openid(seed + fx.appid);
        fx.set_fan(openid);
        fx.execute("INSERT INTO fan_patients (account_id, openid, patient_id) VALUES (?, ?, ?)",
                   {fx.account, openid, patient_id});
        fk::fan f;
        f.appid = fx.appid;
        f.openid = openid;
        fake.api().set_fan(f);
        return openid;
    }
    void set_template(const std::string& kind, const std::string& keywords_json, bool enabled,
                      const std::string& url = "") {
        fx.execute(
            "REPLACE INTO template_settings (clinic_id, kind, template_id, keywords, url, enabled) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            {fx.clinic, kind, std::string("TPL_") + kind, keywords_json,
             url.empty() ? storage::sql_value() : storage::sql_value(url),
             std::int64_t{enabled ? 1 : 0}});
    }

    http_reply post_event(const std::string& body, const std::string& with_key = "") {
        return http_call(port, "POST", "/api/integration/events", body,
                         {{"Authorization", "Bearer " + (with_key.empty() ? key : with_key)}});
    }
    http_reply log(const std::string& query, const std::string& tok = "") {
        return http_call(port, "GET", "/api/admin/template-log" + query, "",
                         {{"Authorization", "Bearer " + (tok.empty() ? admin_token : tok)}});
    }

    // Template messages the fake delivered to `openid`.
    std::vector<fk::sent_message> templates_to(const std::string& openid) {
        std::vector<fk::sent_message> out;
        for (auto& m : fake.api().sent(fx.appid, openid)) {
            if (m.api == "template_send") out.push_back(std::move(m));
        }
        return out;
    }
    // Polls until `pred` holds (bounded).
    template <class Pred>
    bool eventually(Pred pred, std::chrono::milliseconds limit = 10s) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!pred()) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            std::this_thread::sleep_for(25ms);
        }
        return true;
    }
    std::string count(const std::string& table) {
        return fx.value("SELECT COUNT(*) FROM " + table + " WHERE clinic_id = ?", {fx.clinic});
    }
    std::string outbox_rows() {
        return fx.value("SELECT COUNT(*) FROM outbox WHERE account_id = ?", {fx.account});
    }

    clinic_fixture& fx;
    fk::fake_wechat fake;
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    services deps;
    account_registry accounts{deps.mysql(), *secret_box::from_hex(clinic_fixture::master_hex), 0ms};
    message_store store{io.get_executor(), deps.mysql()};
    std::unique_ptr<routing::live_state> live;
    std::unique_ptr<wechat_clients> clients;
    std::unique_ptr<wechat::outbox> outbox;
    std::unique_ptr<templates::notifier> notifier;
    std::unique_ptr<routing_stage> stage;
    std::unique_ptr<webhook> hook;
    std::unique_ptr<agent_push> push;
    std::unique_ptr<agent_api> agents;
    std::unique_ptr<admin_api> admin;
    std::unique_ptr<integration_api> integration;
    std::unique_ptr<http_server> server;
    std::uint16_t port = 0;
    std::vector<std::thread> threads;
    std::string key, admin_token;
};

const std::string appointment_keywords =
    R"([{"keyword":"time1","value":"{{appointment_time}}"},)"
    R"({"keyword":"thing2","value":"{{doctor}}（{{store}}）"},)"
    R"({"keyword":"name3","value":"{{patient_name}}"}])";

std::string appointment_event(const std::string& idem, const std::string& record_no,
                              const std::string& doctor = "王医生") {
    return R"({"kind":"appointment_created","idempotency_key":")" + idem +
           R"(","patient":{"record_no":")" + record_no +
           R"("},"data":{"appointment_time":"2026-11-23 10:00","doctor":")" + doctor +
           R"(","store":"东门店","appointment_id":"A-77"}})";
}

}  // namespace

TEST_CASE("an event reaches the fan with the clinic's mapping and delivery updates the log") {
    clinic_fixture c;
    harness h(c);
    const std::string name = unique_name("张三");
    const auto pid = h.patient(name, "R-" + name);
    const std::string openid = h.bind_fan(pid, "delivered");
    h.set_template("appointment_created", appointment_keywords, true,
                   "https://clinic.example/a?id={{appointment_id}}");

    const auto r = h.post_event(appointment_event("pms:1", "R-" + name));
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(field(r.body, "duplicate") == "false");
    CHECK(field(r.body, "state") == "queued");
    CHECK(field(r.body, "openid") == openid);

    REQUIRE(h.eventually([&] { return h.templates_to(openid).size() == 1; }));
    const auto sent = h.templates_to(openid).front();
    CHECK(has(sent.body, R"("template_id":"TPL_appointment_created")"));
    CHECK(has(sent.body, R"("url":"https://clinic.example/a?id=A-77")"));
    CHECK(has(sent.body, R"("time1":{"value":"2026-11-23 10:00"})"));
    CHECK(has(sent.body, R"("thing2":{"value":"王医生（东门店）"})"));
    CHECK(has(sent.body, R"("name3":{"value":")" + name + "\"}"));
    CHECK_FALSE(has(sent.body, "\"first\""));
    CHECK(!sent.client_msg_id.empty());

    // The outbox recorded the send: the log says sent, then the fake's TEMPLATESENDJOBFINISH
    // (through the webhook and the routing stage) makes it delivered.
    const std::string by_patient = "?patient=" + name.substr(name.size() - 6);
    REQUIRE(h.eventually([&] { return field(h.log(by_patient).body, "state") == "sent"; }));
    const auto finish = h.fake.deliver_template_finish(sent.msgid);
    REQUIRE(finish.answered);
    REQUIRE(h.eventually([&] { return field(h.log(by_patient).body, "state") == "delivered"; }));
    const auto found = h.log(by_patient);
    INFO(found.body);
    CHECK(found.status == 200);
    CHECK(field(found.body, "total") == "1");
    CHECK(field(found.body, "kind") == "appointment_created");
    CHECK(field(found.body, "kind_label") == "预约创建提醒");
    CHECK(field(found.body, "patient_name") == name);
    CHECK(field(found.body, "openid") == openid);
    CHECK(field(found.body, "delivery_status") == "success");
    CHECK(field(found.body, "delivered_at") != "null");

    // A second event whose fan refuses templates: WeChat reports it refused, verbatim.
    fk::fan blocking;
    blocking.appid = c.appid;
    blocking.openid = openid;
    blocking.blocks_templates = true;
    h.fake.api().set_fan(blocking);
    REQUIRE(h.post_event(appointment_event("pms:2", "R-" + name, "李医生")).status == 200);
    REQUIRE(h.eventually([&] { return h.templates_to(openid).size() == 2; }));
    REQUIRE(h.fake.deliver_template_finish(h.templates_to(openid).back().msgid).answered);
    REQUIRE(h.eventually([&] { return field(h.log(by_patient).body, "state") == "refused"; }));
    CHECK(field(h.log(by_patient).body, "delivery_status") == "failed:user block");

    // Searching: by fan, kind, time range and page.
    CHECK(field(h.log("?openid=" + openid).body, "total") == "2");
    CHECK(field(h.log("?kind=electronic_bill").body, "total") == "0");
    CHECK(field(h.log("?kind=appointment_created&page_size=1").body, "total") == "2");
    const auto page2 = h.log("?kind=appointment_created&page_size=1&page=2");
    CHECK(field(page2.body, "state") == "delivered");  // newest first: page 2 is the first event
    CHECK(field(h.log("?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00%2B08:00").body, "total") ==
          "0");
    CHECK(field(h.log("?from=2000-01-01T00:00:00Z").body, "total") == "2");
    CHECK(field(h.log("?patient=nobody-like-this").body, "total") == "0");
}

TEST_CASE("the template log is for admins of the clinic and refuses bad queries") {
    clinic_fixture c;
    harness h(c);
    CHECK(http_call(h.port, "GET", "/api/admin/template-log").status == 401);
    const auto service = h.log("", h.token("客服"));
    CHECK(service.status == 403);
    CHECK(has(service.body, "管理员"));
    struct row {
        std::string name, query, text;
    };
    auto r = GENERATE(values<row>({
        {"unknown kind", "?kind=birthday", "未知的通知类型"},
        {"bad time", "?from=yesterday", "时间格式不正确"},
        {"from after to", "?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "早于"},
        {"page 0", "?page=0", "页码"},
        {"page size 101", "?page_size=101", "每页条数"},
        {"bad escape", "?patient=%zz", "查询参数"},
    }));
    CAPTURE(r.name);
    const auto reply = h.log(r.query);
    CHECK(reply.status == 400);
    CHECK(has(reply.body, r.text));
}

TEST_CASE("the same event posted twice sends once - also an hour later") {
    clinic_fixture c;
    harness h(c);
    const std::string name = unique_name("李四");
    const auto pid = h.patient(name, "R-" + name);
    const std::string openid = h.bind_fan(pid, "twice");
    h.set_template("appointment_created", appointment_keywords, true);

    const std::string event = appointment_event("pms:twice", "R-" + name);
    const auto first = h.post_event(event);
    REQUIRE(first.status == 200);
    CHECK(field(first.body, "duplicate") == "false");
    const auto again = h.post_event(event);
    REQUIRE(again.status == 200);
    CHECK(field(again.body, "duplicate") == "true");
    CHECK(field(again.body, "event_id") == field(first.body, "event_id"));
    CHECK(field(again.body, "log_id") == field(first.body, "log_id"));

    // An hour later (the first one's record dated back): still the same event.
    h.fx.execute(
        "UPDATE integration_events SET created_at = TIMESTAMPADD(HOUR, -1, created_at) "
        "WHERE clinic_id = ?",
        {c.clinic});
    const auto later = h.post_event(event);
    REQUIRE(later.status == 200);
    CHECK(field(later.body, "duplicate") == "true");

    // The same key with another event is refused.
    const auto other = h.post_event(appointment_event("pms:twice", "R-" + name, "别的医生"));
    CHECK(other.status == 409);
    CHECK(has(other.body, "幂等键"));

    // Two posts of a new key at once: one is the event, the other its duplicate.
    const std::string racing = appointment_event("pms:race", "R-" + name);
    auto a = std::async(std::launch::async, [&] { return h.post_event(racing); });
    auto b = std::async(std::launch::async, [&] { return h.post_event(racing); });
    const auto ra = a.get(), rb = b.get();
    REQUIRE(ra.status == 200);
    REQUIRE(rb.status == 200);
    CHECK(field(ra.body, "duplicate") != field(rb.body, "duplicate"));

    REQUIRE(h.eventually([&] { return h.templates_to(openid).size() == 2; }));
    REQUIRE(h.eventually([&] {
        return h.fx.value("SELECT COUNT(*) FROM outbox WHERE account_id = ? AND state <> 'sent'",
                          {c.account}) == "0";
    }));
    CHECK(h.templates_to(openid).size() == 2);  // pms:twice once, pms:race once
    CHECK(h.outbox_rows() == "2");
    CHECK(h.count("integration_events") == "2");
    CHECK(h.count("template_log") == "2");
}

TEST_CASE("a switched-off kind is skipped and logged") {
    clinic_fixture c;
    harness h(c);
    const std::string name = unique_name("王五");
    const auto pid = h.patient(name, "R-" + name);
    const std::string openid = h.bind_fan(pid, "off");
    h.set_template("appointment_created", appointment_keywords, false);

    const auto r = h.post_event(appointment_event("pms:off", "R-" + name));
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(field(r.body, "state") == "skipped");
    CHECK(h.outbox_rows() == "0");
    const auto found = h.log("?kind=appointment_created");
    CHECK(field(found.body, "total") == "1");
    CHECK(field(found.body, "state") == "skipped");
    CHECK(field(found.body, "reason") == "该通知已关闭");
    CHECK(field(found.body, "patient_name") == name);

    // A kind never configured is skipped too.
    const auto bill = h.post_event(
        R"({"kind":"electronic_bill","idempotency_key":"bill-1","patient":{"record_no":"R-)" +
        name + R"("},"data":{"amount":"¥120.00","bill_time":"2026-11-23 11:00"}})");
    REQUIRE(bill.status == 200);
    CHECK(field(bill.body, "state") == "skipped");
    CHECK(field(bill.body, "reason") == "该通知未配置模板");
    CHECK(h.outbox_rows() == "0");
    std::this_thread::sleep_for(300ms);  // the outbox worker polls every 100 ms: give it a chance
    CHECK(h.templates_to(openid).empty());
}

TEST_CASE("a patient without a bound fan is logged as no recipient") {
    clinic_fixture c;
    harness h(c);
    const std::string name = unique_name("赵六");
    h.patient(name, "R-" + name, "13800000001");
    h.set_template("appointment_created", appointment_keywords, true);

    SECTION("no bound fan: logged as no recipient") {
        const auto r = h.post_event(appointment_event("nr-1", "R-" + name));
        REQUIRE(r.status == 200);
        CHECK(field(r.body, "state") == "no_recipient");
        CHECK(field(h.log("?patient=" + name.substr(name.size() - 6)).body, "state") ==
              "no_recipient");
        CHECK(h.outbox_rows() == "0");
    }
    SECTION("found by phone when there is no record number") {
        const auto r = h.post_event(
            R"({"kind":"appointment_created","idempotency_key":"ph-1","patient":{"phone":"13800000001"},)"
            R"("data":{"appointment_time":"明天","doctor":"王","store":"东"}})");
        REQUIRE(r.status == 200);
        CHECK(field(r.body, "state") == "no_recipient");
    }
}

TEST_CASE("refused events change nothing") {
    clinic_fixture c;
    harness h(c);
    const std::string name = unique_name("钱七");
    // Record numbers are per clinic: fixed ones do (the generated rows below outlive `name`).
    const auto twin1 = h.patient(name + "甲", "R1", "13800000002");
    h.patient(name + "乙", "R2", "13800000002");
    h.bind_fan(twin1, "twin");
    h.set_template("appointment_created", appointment_keywords, true);
    {
        struct row {
            std::string name, body;
            int status;
            std::string text;
        };
        auto r = GENERATE(values<row>({
            {"unknown patient", appointment_event("u-1", "R-nobody"), 404, "找不到该患者"},
            {"ambiguous phone",
             R"({"kind":"appointment_created","idempotency_key":"a-1","patient":{"phone":"13800000002"},)"
             R"("data":{"appointment_time":"明天","doctor":"王","store":"东"}})",
             409, "多位患者"},
            {"field the mapping needs",
             R"({"kind":"appointment_created","idempotency_key":"m-1","patient":{"record_no":"R1"},)"
             R"("data":{"appointment_time":"明天"}})",
             422, "doctor"},
            {"not json", "{", 400, "JSON"},
            {"unknown kind",
             R"({"kind":"birthday","idempotency_key":"k","patient":{"record_no":"x"}})", 400,
             "未知的通知类型"},
            {"missing required field",
             R"({"kind":"appointment_created","idempotency_key":"k","patient":{"record_no":"x"}})",
             400, R"("field":"data.appointment_time")"},
        }));
        CAPTURE(r.name);
        const auto reply = h.post_event(r.body);
        CHECK(reply.status == r.status);
        CHECK(has(reply.body, r.text));
        CHECK(has(reply.body, "\"error\":"));
        CHECK(h.count("integration_events") == "0");
        CHECK(h.count("template_log") == "0");
        CHECK(h.outbox_rows() == "0");
    }
}

TEST_CASE("integration keys: missing, malformed, unknown and revoked") {
    clinic_fixture c;
    harness h(c);
    const std::string name = unique_name("孙八");
    h.patient(name, "R1-" + name);
    {
        const std::string body = appointment_event("key-1", "R1-" + name);
        CHECK(http_call(h.port, "POST", "/api/integration/events", body).status == 401);
        CHECK(h.post_event(body, "sk_short").status == 401);
        CHECK(h.post_event(body, *templates::new_api_key()).status == 401);
        h.fx.execute("UPDATE api_keys SET revoked_at = NOW(3) WHERE clinic_id = ?", {c.clinic});
        const auto revoked = h.post_event(body);
        CHECK(revoked.status == 401);
        CHECK(has(revoked.body, "API密钥无效或已停用"));
        CHECK(h.count("integration_events") == "0");
    }
}

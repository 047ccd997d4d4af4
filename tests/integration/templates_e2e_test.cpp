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
#include "scrm/gateway/evaluation_rules.hpp"
#include "scrm/gateway/evaluations.hpp"
#include "scrm/gateway/integration_api.hpp"
#include "scrm/gateway/metrics.hpp"
#include "scrm/gateway/reply_notices.hpp"
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
        // The "reply waiting" notices (a fast verdict poll) and evaluations with their invitation
        // links, as main.cpp wires them.
        reply_notice_options no;
        no.token_key = box.derive_key(reply_key_label);
        no.public_base_url = std::string(public_base) + "/";
        no.verdict_poll = 20ms;
        notices = std::make_unique<reply_notices>(deps.mysql(), *outbox, no);
        agent_api_options ao;
        ao.notices = notices.get();
        ao.key_root = lo.key_root;
        ao.settings.signin_failure_delay = 0ms;
        ao.settings.cookie_secure = false;
        agents = std::make_unique<agent_api>(io.get_executor(), deps.mysql(), deps.redis_ptr(),
                                             *live, *outbox, *stage, *push, ao);
        admin = std::make_unique<admin_api>(*agents, deps.mysql(), *clients);
        integration = std::make_unique<integration_api>(*notifier, *admin);
        evaluation_options eo;
        eo.token_key = box.derive_key(evaluation_key_label);
        evaluations = std::make_unique<evaluation_api>(*admin, eo);
        notifier->set_link_provider("evaluation_invitation",
                                    evaluations->invitation_links(public_base));
        router routes;
        hook->add_routes(routes);
        agents->add_routes(routes);
        integration->add_routes(routes);
        notices->add_routes(routes);
        evaluations->add_routes(routes);
        http_settings hs;
        hs.listen_port = 0;
        server = std::make_unique<http_server>(io.get_executor(), hs, std::move(routes),
                                               std::make_shared<metrics>());
        port = server->start();
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
        for (const char* table : {"waiting_replies", "template_log", "integration_events",
                                  "template_settings", "api_keys"}) {
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

    static constexpr const char* public_base = "https://clinic.example";

    clinic_fixture& fx;
    secret_box box = *secret_box::from_hex(clinic_fixture::master_hex);
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
    std::unique_ptr<reply_notices> notices;
    std::unique_ptr<evaluation_api> evaluations;
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

// ---- the "reply waiting" notice (DESIGN.md §5) and the visit-finished evaluation invitation ----

namespace {

const std::string reply_keywords =
    R"([{"keyword":"time1","value":"{{reply_time}}"},{"keyword":"thing2","value":"{{agent_name}}"}])";

// A fan of the clinic's account, known to the gateway and the fake, who has not written: no
// customer-service window is open.
std::string quiet_fan(harness& h, const std::string& seed) {
    const std::string openid = fk::make_openid(unique_name(seed) + h.fx.appid);
    h.fx.set_fan(openid);
    fk::fan f;
    f.appid = h.fx.appid;
    f.openid = openid;
    h.fake.api().set_fan(f);
    return openid;
}

http_reply agent_send(harness& h, const std::string& tok, const std::string& openid,
                      const std::string& text) {
    return http_call(h.port, "POST",
                     "/api/conversations/" + std::to_string(h.fx.account) + "/" + openid + "/send",
                     "{\"text\":" + json_quote(text) + "}", {{"Authorization", "Bearer " + tok}});
}

// The link's path on the gateway ("/reply/…", "/eval/…") from a template message's body.
std::string link_path(const std::string& body) {
    const std::string url = field(body, "url");
    const std::string base = harness::public_base;
    return url.rfind(base, 0) == 0 ? url.substr(base.size()) : std::string();
}

std::string waiting_count(harness& h) {
    return h.count("waiting_replies");
}

}  // namespace

TEST_CASE("an out-of-window text waits behind the reply_waiting notice whose page shows it") {
    clinic_fixture c;
    harness h(c);
    h.set_template("reply_waiting", reply_keywords, true, "https://elsewhere.example/x");
    const std::string tok = h.token("客服");
    const std::string openid = quiet_fan(h, "waiting");
    const std::string text = "请明天<b>上午</b>复诊 & 空腹\n勿饮酒";

    const auto r = agent_send(h, tok, openid, text);
    INFO(r.body);
    REQUIRE(r.status == 200);
    const std::string delivery = field(r.body, "delivery");
    CHECK((delivery == "notice_sent" || delivery == "notice_queued"));
    CHECK(field(r.body, "status") == "closed");
    const std::string reply_id = field(r.body, "reply_id");
    CHECK(c.value("SELECT openid FROM waiting_replies WHERE id = ?", {std::stoull(reply_id)}) ==
          openid);

    // The fake got the clinic's template with the keywords filled and the gateway's link.
    REQUIRE(h.eventually([&] { return h.templates_to(openid).size() == 1; }));
    const auto sent = h.templates_to(openid).front();
    INFO(sent.body);
    CHECK(has(sent.body, R"("template_id":"TPL_reply_waiting")"));
    CHECK(has(sent.body, R"("thing2":{"value":"客服"})"));
    CHECK(has(sent.body, R"("time1":{"value":"20)"));
    CHECK_FALSE(has(sent.body, "elsewhere.example"));
    CHECK_FALSE(has(sent.body, "复诊"));  // the text itself never goes into the template
    const std::string path = link_path(sent.body);
    REQUIRE(path.rfind("/reply/" + reply_id + ".", 0) == 0);
    // No customer-service message was attempted, and the send log has the notice.
    CHECK(h.fake.api().sent(c.appid, openid).size() == 1);
    CHECK(field(h.log("?kind=reply_waiting").body, "openid") == openid);

    // The agent replied: it holds the conversation now, as after any reply.
    const auto lock = h.sync(h.live->lock_of(c.clinic, openid));
    REQUIRE(lock.has_value());
    REQUIRE(lock->has_value());
    CHECK((*lock)->holder ==
          c.value("SELECT id FROM agents WHERE clinic_id = ? AND name = '客服'", {c.clinic}));

    // The page shows the whole text, escaped, and marks it read.
    CHECK(c.value("SELECT read_at IS NULL FROM waiting_replies WHERE id = ?",
                  {std::stoull(reply_id)}) == "1");
    const auto page = http_call(h.port, "GET", path);
    INFO(page.body);
    CHECK(page.status == 200);
    CHECK(page.header("content-type") == "text/html; charset=utf-8");
    CHECK(has(page.header("content-security-policy"), "default-src 'none'"));
    CHECK(has(page.body, "请明天&lt;b&gt;上午&lt;/b&gt;复诊 &amp; 空腹\n勿饮酒"));
    CHECK_FALSE(has(page.body, "<b>上午"));
    CHECK(has(page.body, "width=device-width"));
    CHECK_FALSE(has(page.body, "src="));
    CHECK(c.value("SELECT read_at IS NULL FROM waiting_replies WHERE id = ?",
                  {std::stoull(reply_id)}) == "0");
    const auto json = http_call(h.port, "GET", "/api" + path);
    CHECK(json.status == 200);
    CHECK(has(json.body, "\"text\":" + json_quote(text)));
    CHECK(field(json.body, "read_at") != "");
}

TEST_CASE("with no reply_waiting template the agent is told the fan must write first") {
    clinic_fixture c;
    harness h(c);
    const std::string tok = h.token("客服");
    const std::string openid = quiet_fan(h, "unset");
    const std::string before = h.outbox_rows();

    auto r = agent_send(h, tok, openid, "您好");
    INFO(r.body);
    CHECK(r.status == 422);
    CHECK(field(r.body, "reason") == "fan_must_write");
    CHECK(field(r.body, "window") == "closed");
    CHECK(field(r.body, "notice") == "not_configured");
    CHECK(has(r.body, "需等顾客先发消息后才能回复"));
    // Nothing kept, nothing queued, no lock left behind.
    CHECK(waiting_count(h) == "0");
    CHECK(h.outbox_rows() == before);
    CHECK(h.count("template_log") == "0");
    CHECK_FALSE(h.sync(h.live->lock_of(c.clinic, openid)).value().has_value());

    // Switched off: the same.
    h.set_template("reply_waiting", reply_keywords, false);
    r = agent_send(h, tok, openid, "您好");
    CHECK(r.status == 422);
    CHECK(field(r.body, "notice") == "disabled");
    CHECK(waiting_count(h) == "0");
    CHECK(h.outbox_rows() == before);
}

TEST_CASE("an account without template rights makes the fan write first and keeps nothing") {
    clinic_fixture c;
    harness h(c);
    h.set_template("reply_waiting", reply_keywords, true);
    const std::string tok = h.token("客服");
    const std::string openid = quiet_fan(h, "rights");
    fk::fault f;
    f.api = "template_send";
    f.errcode = 48001;
    h.fake.api().inject(f);

    auto r = agent_send(h, tok, openid, "您好，检查结果已出");
    INFO(r.body);
    CHECK(r.status == 422);
    CHECK(field(r.body, "reason") == "fan_must_write");
    CHECK(field(r.body, "notice") == "no_template_rights");
    CHECK(has(r.body, "模板消息"));
    CHECK(waiting_count(h) == "0");
    CHECK_FALSE(h.sync(h.live->lock_of(c.clinic, openid)).value().has_value());

    // Known now: the next reply is refused before anything is queued (the fault is gone).
    const std::string before = h.outbox_rows();
    r = agent_send(h, tok, openid, "您好");
    CHECK(r.status == 422);
    CHECK(field(r.body, "notice") == "no_template_rights");
    CHECK(h.outbox_rows() == before);
    CHECK(h.templates_to(openid).empty());
}

TEST_CASE("reply links: tampered, foreign and expired tokens open nothing") {
    clinic_fixture c;
    harness h(c);
    h.set_template("reply_waiting", reply_keywords, true);
    const std::string tok = h.token("客服");
    const std::string first = quiet_fan(h, "links1");
    const std::string second = quiet_fan(h, "links2");
    const auto a = agent_send(h, tok, first, "第一位顾客的回复");
    const auto b = agent_send(h, tok, second, "第二位顾客的回复");
    REQUIRE(a.status == 200);
    REQUIRE(b.status == 200);
    REQUIRE(h.eventually([&] { return h.templates_to(second).size() == 1; }));
    const std::string path = link_path(h.templates_to(second).front().body);
    const std::string token = path.substr(std::string("/reply/").size());
    const std::string mac = token.substr(token.find('.'));

    const auto refused = [&](const std::string& t) {
        const auto r = http_call(h.port, "GET", "/reply/" + t);
        INFO(t << " " << r.body);
        CHECK(r.status == 404);
        CHECK(has(r.body, "链接无效"));
        CHECK(http_call(h.port, "GET", "/api/reply/" + t).status == 404);
    };
    std::string tampered = token;
    tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
    refused(tampered);
    refused(field(a.body, "reply_id") + mac);  // another fan's reply under this one's signature
    refused(field(b.body, "reply_id"));
    // Signed for another purpose (an evaluation link) or with another deployment's key.
    refused(evaluation_tokens(h.box.derive_key(evaluation_key_label))
                .token_for(std::stoull(field(b.body, "reply_id"))));
    const auto other = secret_box::from_hex(std::string(64, '7'));
    refused(link_signer("waiting_reply", other->derive_key(reply_key_label))
                .token_for(std::stoull(field(b.body, "reply_id"))));
    CHECK(c.value("SELECT COUNT(*) FROM waiting_replies WHERE clinic_id = ? AND read_at IS NOT "
                  "NULL",
                  {c.clinic}) == "0");

    // Expired: 410 and still unread.
    c.execute("UPDATE waiting_replies SET expires_at = NOW(3) - INTERVAL 1 SECOND WHERE id = ?",
              {std::stoull(field(b.body, "reply_id"))});
    const auto gone = http_call(h.port, "GET", path);
    CHECK(gone.status == 410);
    CHECK(has(gone.body, "已过"));
    CHECK(http_call(h.port, "GET", "/api" + path).status == 410);
    CHECK(c.value("SELECT read_at IS NULL FROM waiting_replies WHERE id = ?",
                  {std::stoull(field(b.body, "reply_id"))}) == "1");
}

TEST_CASE("an evaluation reply with no window sends the notice that opens the evaluation") {
    clinic_fixture c;
    harness h(c);
    h.set_template("reply_waiting", reply_keywords, true);
    const std::string openid = quiet_fan(h, "evalreply");
    evaluation_invite in;
    in.clinic = c.clinic;
    in.account_id = c.account;
    in.openid = openid;
    in.visit_ref = unique_name("visit");
    const auto inv = h.sync(h.evaluations->invite(in));
    REQUIRE(inv.has_value());
    const auto submitted = http_call(
        h.port, "POST", "/api/eval/" + inv->token,
        R"({"ratings":{"服务态度":"good","专业水平":"good","环境卫生":"average","等候时间":"poor"},"comment":"等太久"})");
    REQUIRE(submitted.status == 200);

    const auto r =
        http_call(h.port, "POST", "/api/admin/evaluations/" + std::to_string(inv->id) + "/reply",
                  R"({"text":"抱歉让您久等，我们会改进预约安排"})",
                  {{"Authorization", "Bearer " + h.admin_token}});
    INFO(r.body);
    REQUIRE(r.status == 200);
    const std::string delivery = field(r.body, "delivery");
    CHECK((delivery == "notice_sent" || delivery == "notice_queued"));
    CHECK(field(r.body, "outbox_id") != "null");
    REQUIRE(h.eventually([&] { return h.templates_to(openid).size() == 1; }));
    const auto sent = h.templates_to(openid).front();
    CHECK(has(sent.body, R"("template_id":"TPL_reply_waiting")"));
    CHECK(has(sent.body, R"("thing2":{"value":"管理员"})"));
    CHECK(link_path(sent.body) == "/eval/" + inv->token);
    const auto page = http_call(h.port, "GET", "/api/eval/" + inv->token);
    CHECK(has(page.body, "抱歉让您久等"));
    CHECK(waiting_count(h) == "0");  // the evaluation's page holds the reply
}

TEST_CASE("a visit finished event creates the evaluation its invitation links to - once") {
    clinic_fixture c;
    harness h(c);
    const std::string name = unique_name("李四");
    const auto pid = h.patient(name, "R-" + name);
    const std::string openid = h.bind_fan(pid, "visit");
    h.set_template("evaluation_invitation",
                   R"([{"keyword":"time1","value":"{{visit_time}}"},)"
                   R"({"keyword":"thing2","value":"{{doctor}}"}])",
                   true, "https://elsewhere.example/eval");
    const std::string event =
        R"({"kind":"evaluation_invitation","idempotency_key":"visit:V-9","patient":{"record_no":"R-)" +
        name + R"("},"data":{"visit_time":"2026-11-23 10:00","doctor":"王医生","visit_id":"V-9"}})";

    const auto r = h.post_event(event);
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(field(r.body, "state") == "queued");
    CHECK(c.value("SELECT COUNT(*) FROM evaluations WHERE clinic_id = ? AND visit_ref = 'V-9' AND "
                  "openid = ? AND patient_id = ?",
                  {c.clinic, openid, pid}) == "1");
    REQUIRE(h.eventually([&] { return h.templates_to(openid).size() == 1; }));
    const auto sent = h.templates_to(openid).front();
    INFO(sent.body);
    CHECK(has(sent.body, R"("template_id":"TPL_evaluation_invitation")"));
    CHECK(has(sent.body, R"("thing2":{"value":"王医生"})"));
    const std::string path = link_path(sent.body);
    REQUIRE(path.rfind("/eval/", 0) == 0);
    const auto opened = http_call(h.port, "GET", "/api" + path);
    CHECK(opened.status == 200);
    CHECK(field(opened.body, "state") == "awaiting");

    // The same event again: the first answer, no second evaluation or message.
    const std::string rows = h.outbox_rows();
    const auto again = h.post_event(event);
    CHECK(again.status == 200);
    CHECK(field(again.body, "duplicate") == "true");
    CHECK(h.outbox_rows() == rows);
    CHECK(c.value("SELECT COUNT(*) FROM evaluations WHERE clinic_id = ?", {c.clinic}) == "1");
}

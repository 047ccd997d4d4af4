// See agent_harness.hpp.
#include "agent_harness.hpp"

#include <catch2/catch.hpp>

#include <ctime>

#include "scrm/common/thread_role.hpp"
#include "scrm/gateway/agent_api.hpp"
#include "scrm/gateway/agent_push.hpp"
#include "scrm/gateway/delivery_push.hpp"
#include "scrm/gateway/http.hpp"
#include "scrm/gateway/media_fetcher.hpp"
#include "scrm/gateway/metrics.hpp"
#include "scrm/gateway/routing_stage.hpp"
#include "scrm/gateway/secret_box.hpp"
#include "scrm/gateway/webhook.hpp"
#include "scrm/gateway/wechat_clients.hpp"
#include "scrm/storage/redis.hpp"
#include "scrm/wechat/outbox.hpp"
#include "test_env.hpp"

namespace scrm::test {

namespace asio = boost::asio;
using namespace scrm::gateway;
using namespace std::chrono_literals;

std::string field(const std::string& json, const std::string& name) {
    const std::string key = "\"" + name + "\":";
    const auto at = json.find(key);
    if (at == std::string::npos) return {};
    auto start = at + key.size();
    if (json[start] == '"') {
        const auto end = json.find('"', start + 1);
        return json.substr(start + 1, end - start - 1);
    }
    const auto end = json.find_first_of(",}", start);
    return json.substr(start, end - start);
}

agent_harness::agent_harness(clinic_fixture& c, const std::vector<std::uint64_t>& more_clinics,
                             harness_wechat wx)
    : fx(c),
      deps(io.get_executor(), c.cfg),
      accounts(deps.mysql(), *secret_box::from_hex(clinic_fixture::master_hex), 0ms) {
    media_dir = std::filesystem::temp_directory_path() / unique_name("scrm_test_media");
    std::filesystem::create_directories(media_dir);
    routing::live_options lo;
    lo.key_root = unique_name("scrm_test_agents");
    lo.presence_ttl = 3s;
    lo.reconnect_grace = 300ms;
    live = std::make_unique<routing::live_state>(deps.redis_ptr(), lo);
    if (wx.api_base_url.empty()) {
        outbox = std::make_unique<wechat::outbox>(
            io.get_executor(), deps.mysql(), deps.redis_ptr(),
            [](std::string) -> asio::awaitable<result<std::shared_ptr<wechat::client>>> {
                co_return make_error_code(errc::not_found);
            });
    } else {
        wechat::http_endpoint endpoint;
        endpoint.base_url = wx.api_base_url;
        endpoint.timeout = 3000ms;
        clients = std::make_unique<wechat_clients>(accounts, deps.redis_ptr(), endpoint);
        wechat::outbox_options oo;
        oo.accounts = {fx.account};  // other suites' rows on the shared database stay theirs
        oo.poll_interval = 100ms;
        oo.backoff_base = 100ms;
        oo.backoff_cap = 400ms;
        oo.on_change = delivery_push(*live);
        outbox = std::make_unique<wechat::outbox>(io.get_executor(), deps.mysql(), deps.redis_ptr(),
                                                  clients->lookup(), oo);
        media_fetch_options mo;
        mo.dir = media_dir;
        mo.accounts = {fx.account};
        mo.poll_interval = 100ms;
        mo.backoff_base = 100ms;
        mo.backoff_cap = 400ms;
        media =
            std::make_unique<media_fetcher>(io.get_executor(), deps.mysql(), clients->lookup(), mo);
    }
    routing_stage_options so;
    so.clinics = {fx.clinic};
    so.clinics.insert(so.clinics.end(), more_clinics.begin(), more_clinics.end());
    so.cache_max_age = 0ms;
    stage = std::make_unique<routing_stage>(io.get_executor(), deps.mysql(), deps.redis_ptr(),
                                            *live, *outbox, so);
    hook = std::make_unique<webhook>(accounts, store, deps.redis(), deps.mysql(), *stage, nullptr,
                                     webhook_settings{},
                                     [] { return static_cast<std::int64_t>(std::time(nullptr)); });
    push = std::make_unique<agent_push>(io.get_executor(), redis_options_from(fx.cfg.redis));
    push->start();
    agent_api_options ao;
    ao.key_root = lo.key_root;
    ao.settings.presence_ttl = lo.presence_ttl;
    ao.settings.reconnect_grace = lo.reconnect_grace;
    ao.settings.signin_max_failures = 3;
    ao.settings.signin_lockout = 60s;
    ao.settings.signin_failure_delay = 0ms;
    ao.settings.cookie_secure = false;
    ao.media_dir = media_dir.string();
    ao.transcode = wx.transcode;
    api = std::make_unique<agent_api>(io.get_executor(), deps.mysql(), deps.redis_ptr(), *live,
                                      *outbox, *stage, *push, ao);
    router routes;
    hook->add_routes(routes);
    api->add_routes(routes);
    http_settings hs;
    hs.listen_port = 0;
    server = std::make_unique<http_server>(io.get_executor(), hs, std::move(routes),
                                           std::make_shared<metrics>());
    port = server->start();
    if (media) {
        outbox->start();
        media->start();
    }
    for (int i = 0; i < 2; ++i) {
        threads.emplace_back([this] {
            mark_io_thread();
            io.run();
        });
    }
    REQUIRE(sync(deps.redis().wait_connected(5s)).has_value());
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!push->connected() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);  // the subscriber connects in the background
    }
    REQUIRE(push->connected());
}

agent_harness::~agent_harness() {
    sync(server->stop(1s));
    sync(stage->stop(1s));
    if (media) {
        sync(media->stop(2s));
        sync(outbox->stop(2s));
    }
    delete_keys_under(io, deps.redis(), live->options().key_root);
    push->stop();
    store.stop();
    deps.stop();
    work.reset();
    for (auto& t : threads) t.join();
    std::error_code ec;
    std::filesystem::remove_all(media_dir, ec);
}

http_reply agent_harness::sign_in(const std::string& name, const std::string& pw) {
    return http_call(port, "POST", "/api/agent/sign-in",
                     "{\"clinic\":" + json_quote(fx.name) + ",\"name\":" + json_quote(name) +
                         ",\"password\":" + json_quote(pw) + "}");
}

std::string agent_harness::token(const std::string& name) {
    const auto r = sign_in(name, agent_password);
    INFO(r.body);
    REQUIRE(r.status == 200);
    return field(r.body, "token");
}

http_reply agent_harness::call(const std::string& method, const std::string& target,
                               const std::string& tok, const std::string& body) {
    return http_call(port, method, target, body, {{"Authorization", "Bearer " + tok}});
}

std::string agent_harness::conversation(const std::string& openid, const std::string& action,
                                        std::uint64_t account) const {
    return "/api/conversations/" + std::to_string(account ? account : fx.account) + "/" + openid +
           "/" + action;
}

http_reply agent_harness::act(const std::string& tok, const std::string& openid,
                              const std::string& action, const std::string& body,
                              std::uint64_t account) {
    return call("POST", conversation(openid, action, account), tok, body);
}

std::unique_ptr<ws_client> agent_harness::connect(const std::string& tok) {
    auto c = std::make_unique<ws_client>(
        port, "/api/agent/ws",
        std::vector<std::pair<std::string, std::string>>{{"Authorization", "Bearer " + tok}});
    REQUIRE(c->status() == 101);
    REQUIRE(c->wait_for("\"type\":\"hello\"").has_value());
    return c;
}

bool agent_harness::online(const std::string& tok) {
    return field(call("GET", "/api/agent/me", tok).body, "online") == "true";
}

bool agent_harness::wait_online(const std::string& tok, bool want,
                                std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (online(tok) != want) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

http_reply agent_harness::fan_writes(const std::string& openid, std::uint64_t msg_id,
                                     const std::string& content) {
    auto r = fx.deliver(port, fx.text_xml(openid, msg_id, content));
    REQUIRE(r.status == 200);
    return r;
}

}  // namespace scrm::test

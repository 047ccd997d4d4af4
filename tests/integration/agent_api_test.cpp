// The agent endpoints in-process over real HTTP and WebSocket, Redis and MariaDB, behind the real
// webhook and routing stage: sign-in and its throttling, the WebSocket whose heartbeat is
// presence and which carries routing's pushes, the accepting switch, accept/send/end/transfer
// with one holder at a time, the clinic and store boundaries, and the backlog.
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <ctime>
#include <thread>

#include "agent_harness.hpp"
#include "clinic_fixture.hpp"
#include "http_client.hpp"
#include "scrm/common/thread_role.hpp"
#include "scrm/gateway/agent_api.hpp"
#include "scrm/gateway/agent_push.hpp"
#include "scrm/gateway/agent_requests.hpp"
#include "scrm/gateway/metrics.hpp"
#include "scrm/gateway/routing_stage.hpp"
#include "scrm/gateway/secret_box.hpp"
#include "scrm/gateway/services.hpp"
#include "scrm/gateway/webhook.hpp"
#include "scrm/storage/redis.hpp"
#include "scrm/wechat/outbox.hpp"
#include "test_env.hpp"
#include "ws_client.hpp"

namespace asio = boost::asio;
using namespace scrm;
using namespace scrm::gateway;
using namespace scrm::test;
using namespace std::chrono_literals;

namespace {

const std::string& password = agent_password;
using harness = agent_harness;

}  // namespace

TEST_CASE("agents sign in with the clinic's name and their own, get a token, and sign out") {
    clinic_fixture c;
    const auto a = c.add_agent("张顾问", password);
    c.add_agent("停用的", password, true, std::nullopt, false);
    harness h(c);

    const auto r = h.sign_in("张顾问", password);
    REQUIRE(r.status == 200);
    const std::string tok = field(r.body, "token");
    CHECK(token_well_formed(tok));
    CHECK(field(r.body, "expires_in") == "43200");
    CHECK(has(r.body, "\"name\":\"张顾问\""));
    const std::string cookie = r.header("set-cookie");
    CHECK(has(cookie, "scrm_agent=" + tok));
    CHECK(has(cookie, "HttpOnly"));
    CHECK(has(cookie, "SameSite=Strict"));

    // Redis holds the token's SHA-256, never the token.
    const auto stored = h.sync(
        h.deps.redis().get(h.live->options().key_root + ":agent_session:" + token_digest(tok)));
    REQUIRE(stored.has_value());
    CHECK(*stored ==
          std::optional<std::string>(std::to_string(c.clinic) + ":" + std::to_string(a)));
    const auto plain_key =
        h.sync(h.deps.redis().exists({h.live->options().key_root + ":agent_session:" + tok}));
    CHECK(plain_key.value() == 0);

    // Bearer, or the cookie from the page's own origin.
    CHECK(h.call("GET", "/api/agent/me", tok).status == 200);
    const auto by_cookie = http_call(h.port, "GET", "/api/agent/me", {},
                                     {{"Cookie", "theme=dark; scrm_agent=" + tok}});
    CHECK(by_cookie.status == 200);
    CHECK(has(by_cookie.body, "\"id\":" + std::to_string(a)));
    const auto cross_site =
        http_call(h.port, "GET", "/api/agent/me", {},
                  {{"Cookie", "scrm_agent=" + tok}, {"Origin", "https://evil.example"}});
    CHECK(cross_site.status == 403);
    const auto behind_proxy = http_call(h.port, "GET", "/api/agent/me", {},
                                        {{"Cookie", "scrm_agent=" + tok},
                                         {"Origin", "https://console.example"},
                                         {"X-Forwarded-Host", "console.example"}});
    CHECK(behind_proxy.status == 200);
    CHECK(http_call(h.port, "GET", "/api/agent/me").body == R"({"error":"请先登录"})");
    CHECK(h.call("GET", "/api/agent/me", std::string(64, '0')).status == 401);
    CHECK(h.call("GET", "/api/agent/me", "not-a-token").status == 401);

    // By ids too.
    const auto by_ids = http_call(h.port, "POST", "/api/agent/sign-in",
                                  "{\"clinic_id\":" + std::to_string(c.clinic) + ",\"agent_id\":" +
                                      std::to_string(a) + ",\"password\":\"" + password + "\"}");
    CHECK(by_ids.status == 200);

    // An inactive agent cannot sign in, even with the right password.
    const auto inactive = h.sign_in("停用的", password);
    CHECK(inactive.status == 403);
    CHECK(inactive.body == R"({"error":"该账号已停用，请联系管理员"})");
    CHECK(http_call(h.port, "POST", "/api/agent/sign-in", "{\"clinic\":\"x\"}").status == 400);

    // Signing out ends the token (and clears the cookie).
    const auto out = h.call("POST", "/api/agent/sign-out", tok);
    CHECK(out.status == 200);
    CHECK(has(out.header("set-cookie"), "Max-Age=0"));
    const auto after = h.call("GET", "/api/agent/me", tok);
    CHECK(after.status == 401);
    CHECK(after.body == R"({"error":"登录已过期，请重新登录"})");

    // Deactivated after signing in: the session ends with the next request.
    const std::string second = field(by_ids.body, "token");
    c.execute("UPDATE agents SET active = 0 WHERE id = ?", {a});
    CHECK(h.call("GET", "/api/agent/me", second).status == 401);
}

TEST_CASE("wrong passwords are refused alike, and repeated failures lock the agent out") {
    clinic_fixture c;
    c.add_agent("李客服", password);
    c.add_agent("王客服", password);
    harness h(c);

    const auto wrong = h.sign_in("李客服", "wrong-password");
    CHECK(wrong.status == 401);
    CHECK(wrong.body == R"({"error":"诊所、姓名或密码不正确"})");
    const auto unknown = h.sign_in("没有这个人", password);
    CHECK(unknown.status == 401);
    CHECK(unknown.body == wrong.body);  // nothing tells which names exist

    CHECK(h.sign_in("李客服", "wrong-again").status == 401);
    const auto third = h.sign_in("李客服", "wrong-3");
    CHECK(third.status == 429);  // the third failure within the window locks
    CHECK(third.header("retry-after") == "60");
    const auto locked = h.sign_in("李客服", password);
    CHECK(locked.status == 429);
    CHECK(has(locked.body, "登录失败次数过多"));
    CHECK(h.sign_in("王客服", password).status == 200);  // per agent
}

TEST_CASE("the WebSocket heartbeat is presence, and routing's pushes reach it") {
    clinic_fixture c;
    c.add_agent("a1", password);
    harness h(c);
    const std::string tok = h.token("a1");

    ws_client refused(h.port, "/api/agent/ws");
    CHECK(refused.status() == 401);
    CHECK(refused.refusal_body() == R"({"error":"请先登录"})");
    CHECK_FALSE(h.online(tok));

    auto ws = h.connect(tok);
    CHECK(h.online(tok));
    // A fan writes (shared mode, a1 the only candidate): the push arrives on the socket.
    h.fan_writes("oWsFan1", 41001, "想预约洗牙");
    const auto pushed = ws->wait_for("\"type\":\"message\"");
    REQUIRE(pushed.has_value());
    CHECK(has(*pushed, "\"openid\":\"oWsFan1\""));
    CHECK(has(*pushed, "\"content\":\"想预约洗牙\""));
    REQUIRE(ws->send(R"({"type":"ping"})"));
    CHECK(ws->wait_for("\"type\":\"pong\"").has_value());

    // The accepting switch: off counts as offline while connected.
    const auto off = h.call("POST", "/api/agent/accepting", tok, R"({"accepting":false})");
    CHECK(off.status == 200);
    CHECK_FALSE(h.online(tok));
    CHECK(h.call("POST", "/api/agent/accepting", tok, R"({"accepting":true})").status == 200);
    CHECK(h.online(tok));
    CHECK(h.call("POST", "/api/agent/accepting", tok, R"({"accepting":1})").status == 400);

    // Closing: online through the reconnect grace, then offline.
    ws->close();
    CHECK(h.wait_online(tok, false));

    // Signing out elsewhere closes the socket at its next heartbeat (4001).
    auto again = h.connect(tok);
    CHECK(h.call("POST", "/api/agent/sign-out", tok).status == 200);
    CHECK(again->wait_for("\"type\":\"signed_out\"", 5s).has_value());
    CHECK(again->wait_closed() == std::optional<int>(4001));
}

TEST_CASE("accept, send, end and transfer: one holder at a time, named in every refusal") {
    clinic_fixture c;
    const auto a = c.add_agent("甲", password);
    const auto b = c.add_agent("乙", password);
    c.add_agent("前台", password, false);
    harness h(c);
    const auto ta = h.token("甲");
    const auto tb = h.token("乙");
    auto wa = h.connect(ta);
    auto wb = h.connect(tb);
    const std::string fan = "oLockFan1";
    h.fan_writes(fan, 42001);

    auto r = h.act(ta, fan, "accept");
    CHECK(r.status == 200);
    CHECK(field(r.body, "status") == "acquired");
    r = h.act(tb, fan, "accept");
    CHECK(r.status == 409);
    CHECK(r.body == "{\"error\":\"该顾客正在由「甲」接待\",\"holder\":{\"id\":" +
                        std::to_string(a) + ",\"name\":\"甲\"}}");
    r = h.act(tb, fan, "send", R"({"text":"我来回复"})");
    CHECK(r.status == 409);
    CHECK(has(r.body, "\"holder\":{\"id\":" + std::to_string(a)));

    r = h.act(ta, fan, "send", R"({"text":"您好，请问有什么可以帮您？"})");
    REQUIRE(r.status == 200);
    CHECK(field(r.body, "lock") == "renewed");
    CHECK(field(r.body, "remaining") == "4");
    const std::string outbox_id = field(r.body, "outbox_id");
    CHECK(c.value("SELECT origin FROM outbox WHERE id = ?", {outbox_id}) ==
          "agent:" + std::to_string(a));
    CHECK(has(c.value("SELECT body FROM outbox WHERE id = ?", {outbox_id}),
              "您好，请问有什么可以帮您？"));
    CHECK(h.act(ta, fan, "send", R"({"text":"  "})").status == 400);

    // Only the holder ends it.
    r = h.act(tb, fan, "end");
    CHECK(r.status == 409);
    CHECK(has(r.body, "只有接待人可以结束会话"));
    CHECK(h.act(ta, fan, "end").status == 200);
    r = h.act(ta, fan, "end");
    CHECK(r.status == 409);
    CHECK(has(r.body, "\"holder\":null"));

    // Unlocked: any agent who can see the conversation replies and so takes the lock.
    r = h.act(tb, fan, "send", R"({"text":"乙来回复"})");
    CHECK(r.status == 200);
    CHECK(field(r.body, "lock") == "acquired");

    // Transfer: to self, to an agent without the permission, then to 甲 (notified at once).
    CHECK(h.act(tb, fan, "transfer", "{\"to_agent\":" + std::to_string(b) + "}").status == 400);
    const auto desk =
        c.value("SELECT id FROM agents WHERE clinic_id = ? AND name = '前台'", {c.clinic});
    CHECK(h.act(tb, fan, "transfer", "{\"to_agent\":" + desk + "}").status == 422);
    CHECK(h.act(tb, fan, "transfer", R"({"to_agent":999999999})").status == 404);
    r = h.act(tb, fan, "transfer", "{\"to_agent\":" + std::to_string(a) + "}");
    CHECK(r.status == 200);
    const auto note = wa->wait_for("\"type\":\"transfer\"");
    REQUIRE(note.has_value());
    CHECK(has(*note, "\"openid\":\"" + fan + "\""));
    CHECK(has(*note, "\"name\":\"乙\""));
    r = h.act(tb, fan, "send", R"({"text":"还在吗"})");
    CHECK(r.status == 409);
    CHECK(has(r.body, "\"name\":\"甲\""));
    CHECK(h.act(ta, fan, "send", R"({"text":"甲接手了"})").status == 200);

    // A transfer to an agent who is offline is refused.
    wb->close();
    REQUIRE(h.wait_online(tb, false));
    r = h.act(ta, fan, "transfer", "{\"to_agent\":" + std::to_string(b) + "}");
    CHECK(r.status == 409);
    CHECK(has(r.body, "当前不在线"));

    // The session history (chat_sessions): 甲 accepted and ended; 乙 took it by replying and
    // transferred it to 甲, whose session is still open.
    CHECK(c.value("SELECT GROUP_CONCAT(CONCAT(a.name, ':', IFNULL(s.end_reason, 'open')) ORDER BY "
                  "s.id SEPARATOR ' ') FROM chat_sessions s JOIN agents a ON a.id = s.agent_id "
                  "WHERE s.account_id = ? AND s.openid = ?",
                  {c.account, fan}) == "甲:ended 乙:transferred 甲:open");
}

TEST_CASE("send: a closed window is refused with its reason, an agent's reply counts as one") {
    clinic_fixture c("exclusive_mode", "1");
    const auto a = c.add_agent("甲", password);
    c.add_agent("乙", password);
    harness h(c);
    const auto ta = h.token("甲");
    const auto tb = h.token("乙");

    // A fan who never wrote: no window, so nothing may be sent — and no lock is left behind.
    c.set_fan("oQuiet1");
    auto r = h.act(ta, "oQuiet1", "send", R"({"text":"在吗"})");
    CHECK(r.status == 422);
    CHECK(field(r.body, "reason") == "fan_must_write");  // no reply_waiting notice here
    CHECK(field(r.body, "window") == "closed");
    CHECK(has(r.body, "48小时"));
    CHECK(h.act(tb, "oQuiet1", "accept").status == 200);  // the lock was given back

    // Exclusive mode: a fan who wrote while nobody was online has no exclusive agent; the first
    // agent to reply becomes it (Redis and MySQL), and the backlog no longer lists the fan.
    h.fan_writes("oNew1", 43001);
    CHECK(c.value("SELECT rule FROM routing_receipts r JOIN inbound_messages m ON m.id = "
                  "r.message_id WHERE m.account_id = ? AND m.openid = 'oNew1'",
                  {c.account}) == "none");
    CHECK(has(h.call("GET", "/api/agent/backlog", tb).body, "\"openid\":\"oNew1\""));
    CHECK(h.act(ta, "oNew1", "send", R"({"text":"您好"})").status == 200);
    CHECK(c.value("SELECT exclusive_agent_id FROM fans WHERE account_id = ? AND openid = 'oNew1'",
                  {c.account}) == std::to_string(a));
    CHECK(h.sync(h.live->exclusive_agent(c.clinic, "oNew1")).value() ==
          std::optional<std::string>(std::to_string(a)));
    CHECK_FALSE(has(h.call("GET", "/api/agent/backlog", tb).body, "oNew1"));

    // Five messages per fan message and 48 hours: the quota runs out.
    CHECK(h.act(ta, "oNew1", "end").status == 200);
    for (int i = 0; i < 4; ++i) {
        CHECK(h.act(ta, "oNew1", "send", "{\"text\":\"第" + std::to_string(i) + "条\"}").status ==
              200);
    }
    r = h.act(ta, "oNew1", "send", R"({"text":"第六条"})");
    CHECK(r.status == 422);
    CHECK(field(r.body, "reason") == "fan_must_write");  // no reply_waiting notice here
    CHECK(field(r.body, "window") == "exhausted");
}

TEST_CASE("an agent acts only on its own clinic's fans, and in chain-store mode within its store") {
    clinic_fixture c("chain_store_mode", "1");
    clinic_fixture other;
    const auto s1 = c.add_store("东门店");
    const auto s2 = c.add_store("西门店");
    c.add_agent("东店客服", password, true, s1);
    c.add_agent("总部客服", password);
    c.add_agent("无权限", password, false);
    harness h(c, {other.clinic});
    const auto east = h.token("东店客服");
    const auto head = h.token("总部客服");
    const auto none = h.token("无权限");
    h.fan_writes("oWestFan", 44001);
    c.execute("UPDATE fans SET store_id = ? WHERE account_id = ? AND openid = 'oWestFan'",
              {s2, c.account});
    other.set_fan("oOtherClinic");

    auto r = h.act(east, "oOtherClinic", "accept", "{}", other.account);
    CHECK(r.status == 404);
    CHECK(r.body == R"({"error":"会话不存在"})");
    CHECK(h.act(east, "oNobody", "accept").status == 404);
    CHECK(h.act(east, "oWestFan", "accept", "{}", 999999999).status == 404);
    CHECK(http_call(h.port, "POST", h.conversation("oWestFan", "accept")).status == 401);
    CHECK(h.act(none, "oWestFan", "accept").status == 403);
    r = h.act(east, "oWestFan", "accept");
    CHECK(r.status == 403);
    CHECK(r.body == R"({"error":"该顾客属于其他门店"})");

    // An agent without a store acts on every fan; chain-store mode transfers to a store: the lock
    // ends and the fan is bound to it.
    CHECK(h.act(head, "oWestFan", "accept").status == 200);
    r = h.act(head, "oWestFan", "transfer", "{\"to_store\":" + std::to_string(s1) + "}");
    CHECK(r.status == 200);
    CHECK(c.value("SELECT store_id FROM fans WHERE account_id = ? AND openid = 'oWestFan'",
                  {c.account}) == std::to_string(s1));
    CHECK_FALSE(h.sync(h.live->lock_of(c.clinic, "oWestFan")).value().has_value());
    CHECK(h.act(east, "oWestFan", "accept").status == 200);  // now the east store's fan
    CHECK(h.act(east, "oWestFan", "transfer", R"({"to_store":999999999})").status == 404);
    CHECK(h.act(east, "oWestFan", "transfer", R"({"to_agent":1,"to_store":1})").status == 400);
}

TEST_CASE("transfer to a store is for chain-store mode only") {
    clinic_fixture c;
    const auto s1 = c.add_store("东门店");
    c.add_agent("甲", password);
    harness h(c);
    const auto ta = h.token("甲");
    h.fan_writes("oStoreFan", 45001);
    CHECK(h.act(ta, "oStoreFan", "accept").status == 200);
    const auto r = h.act(ta, "oStoreFan", "transfer", "{\"to_store\":" + std::to_string(s1) + "}");
    CHECK(r.status == 422);
    CHECK(r.body == R"({"error":"仅在连锁门店模式下可以转接到门店"})");
}

TEST_CASE(
    "the backlog: fans nobody could be notified of, oldest first, by store, and a consultant's "
    "fans stay with the consultant") {
    clinic_fixture c("chain_store_mode, consultant_mode", "1, 1");
    const auto s1 = c.add_store("东门店");
    const auto s2 = c.add_store("西门店");
    c.add_agent("east", password, true, s1);
    c.add_agent("west", password, true, s2);
    c.add_agent("hq", password);
    const auto consultant = c.add_agent("consultant", password, true, s1, true, "consultant");
    c.add_agent("desk", password, false);
    harness h(c);
    c.set_fan("oF1", s1);
    c.set_fan("oF2", s2);
    c.set_fan("oF3");
    c.set_fan("oF4", std::nullopt, consultant);
    // Everyone is offline: F1–F3 reach nobody (rule none), F4 waits on its consultant.
    h.fan_writes("oF1", 46001);
    h.fan_writes("oF2", 46002);
    h.fan_writes("oF3", 46003);
    h.fan_writes("oF4", 46004);
    h.fan_writes("oF1", 46005);  // a second message: F1 stays first, by its oldest

    const auto openids = [&](const std::string& agent_token) {
        const auto r = h.call("GET", "/api/agent/backlog", agent_token);
        REQUIRE(r.status == 200);
        std::vector<std::string> out;
        for (auto at = r.body.find("\"openid\":\""); at != std::string::npos;
             at = r.body.find("\"openid\":\"", at + 1)) {
            out.push_back(r.body.substr(at + 10, r.body.find('"', at + 10) - at - 10));
        }
        return out;
    };
    using list = std::vector<std::string>;
    const auto east = h.token("east");
    const auto hq = h.token("hq");
    const auto con = h.token("consultant");
    CHECK(openids(east) == list{"oF1", "oF3"});
    CHECK(openids(h.token("west")) == list{"oF2", "oF3"});
    CHECK(openids(hq) == list{"oF1", "oF2", "oF3"});
    CHECK(openids(con) == list{"oF1", "oF3", "oF4"});
    CHECK(openids(h.token("desk")).empty());  // no permission: not a candidate
    const auto body = h.call("GET", "/api/agent/backlog", con).body;
    CHECK(has(body, "\"openid\":\"oF4\",\"waiting_since\":"));
    CHECK(has(body, "\"messages\":1,\"reason\":\"consultant\""));
    CHECK(
        has(h.call("GET", "/api/agent/backlog", hq).body, "\"openid\":\"oF1\",\"waiting_since\":"));

    // A reply takes the fan out of everyone's backlog.
    CHECK(h.act(east, "oF1", "send", R"({"text":"您好"})").status == 200);
    CHECK(openids(east) == list{"oF3"});
    CHECK(openids(hq) == list{"oF2", "oF3"});
}

// The fake WeChat behaves as the protocol sheet says: tokens (stable and legacy, expiry, forced
// refresh and its limits), every error code it implements, customer-service windows and quotas per
// kind under a manual clock, media, templates, QR codes, user info, injected faults (errors,
// latency, dropped connections, refused connections), TLS verification with the test CA, and the
// sender — signatures checked independently with wechat_core, safe-mode round trip, retries.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <mutex>
#include <thread>

#include "http_client.hpp"
#include "scrm/fakes/fake_wechat.hpp"
#include "scrm/fakes/http_fetch.hpp"
#include "scrm/fakes/test_pki.hpp"
#include "scrm/gateway/http.hpp"
#include "scrm/gateway/metrics.hpp"
#include "scrm/wechat/envelope.hpp"
#include "scrm/wechat/parse.hpp"
#include "scrm/wechat/reply.hpp"
#include "scrm/wechat/signature.hpp"
#include "test_env.hpp"

namespace asio = boost::asio;
namespace fk = scrm::fakes;
namespace wx = scrm::wechat;
using namespace std::chrono_literals;
using scrm::test::http_call;
using scrm::test::http_reply;

namespace {

constexpr const char* appid = "wx0123456789abcdef";
constexpr const char* secret = "app-secret-0123456789";
constexpr const char* cb_token = "callbacktoken42";
constexpr const char* aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
constexpr const char* original_id = "gh_0123456789ab";
const fk::sys_time start_time{std::chrono::seconds(1'795'000'000)};

fk::account test_account(fk::encryption_mode mode = fk::encryption_mode::plain) {
    fk::account a;
    a.appid = appid;
    a.secret = secret;
    a.token = cb_token;
    a.encoding_aes_key = aes_key;
    a.original_id = original_id;
    a.mode = mode;
    return a;
}

// A started fake on 127.0.0.1:0 with a manual clock and the test account.
struct fixture {
    explicit fixture(fk::api_limits limits = {}, bool tls = false) : fake(options(limits, tls)) {
        REQUIRE(fake.start());
        REQUIRE(fake.api().add_account(test_account()));
    }

    fk::fake_wechat_options options(fk::api_limits limits, bool tls) const {
        fk::fake_wechat_options o;
        o.clock = clock;
        o.limits = limits;
        o.tls = tls;
        return o;
    }

    http_reply get(const std::string& target) const {
        return http_call(fake.port(), "GET", target);
    }
    http_reply post(const std::string& target, const std::string& body,
                    const std::string& content_type = "application/json") const {
        return http_call(fake.port(), "POST", target, body, {{"Content-Type", content_type}});
    }

    std::string stable_token(bool force = false) {
        auto r = post("/cgi-bin/stable_token",
                      std::string(R"({"grant_type":"client_credential","appid":")") + appid +
                          R"(","secret":")" + secret + R"(","force_refresh":)" +
                          (force ? "true" : "false") + "}");
        return member(r.body, "access_token");
    }

    // POST /cgi-bin/message/custom/send with a text message to `openid`.
    int send_text(const std::string& token, const std::string& openid,
                  const std::string& text = "hello") {
        return errcode(post("/cgi-bin/message/custom/send?access_token=" + token,
                            R"({"touser":")" + openid +
                                R"(","msgtype":"text","text":{"content":")" + text + R"("}})"));
    }

    void follower(const std::string& openid) {
        fk::fan f;
        f.appid = appid;
        f.openid = openid;
        fake.api().set_fan(f);
    }

    static std::string member(const std::string& body, const char* name) {
        rapidjson::Document d;
        d.Parse(body.c_str());
        if (d.HasParseError() || !d.IsObject() || !d.HasMember(name)) return {};
        const auto& v = d[name];
        if (v.IsString()) return v.GetString();
        if (v.IsUint64()) return std::to_string(v.GetUint64());
        if (v.IsInt64()) return std::to_string(v.GetInt64());
        return {};
    }

    static int errcode(const http_reply& r) {
        rapidjson::Document d;
        d.Parse(r.body.c_str());
        if (r.status != 200 || d.HasParseError() || !d.IsObject()) return 99999;  // not an answer
        if (!d.HasMember("errcode")) return 0;
        return d["errcode"].GetInt();
    }

    std::shared_ptr<fk::fake_clock> clock = std::make_shared<fk::fake_clock>(start_time);
    fk::fake_wechat fake;
};

std::string multipart(const std::string& field, const std::string& filename,
                      const std::string& data) {
    return "--XyZ\r\nContent-Disposition: form-data; name=\"" + field + "\"; filename=\"" +
           filename + "\"\r\nContent-Type: application/octet-stream\r\n\r\n" + data +
           "\r\n--XyZ--\r\n";
}

const std::string jpeg = std::string("\xFF\xD8\xFF\xE0", 4) + std::string(100, 'j');
const std::string png = std::string("\x89PNG\r\n\x1A\n", 8) + std::string(100, 'p');

// ---- a tiny callback receiver built on the project's own HTTP server --------------------------

struct received {
    std::string target, query, body;
};

struct receiver_state {
    std::mutex mutex;
    std::vector<received> requests;
    std::atomic<int> count{0};
    std::chrono::milliseconds delay{0};  // applied to the first `slow` requests
    int slow = 0;
    std::function<scrm::gateway::http_response(const scrm::gateway::http_request&)> respond =
        [](const scrm::gateway::http_request&) {
            scrm::gateway::http_response r;
            r.content_type = "text/plain";
            r.body = "success";
            return r;
        };
};

asio::awaitable<scrm::gateway::http_response> receive(std::shared_ptr<receiver_state> st,
                                                      scrm::gateway::http_request req) {
    const int n = ++st->count;
    {
        std::lock_guard lock(st->mutex);
        st->requests.push_back({req.target, req.query, req.body});
    }
    if (n <= st->slow) {
        asio::steady_timer t(co_await asio::this_coro::executor, st->delay);
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    co_return st->respond(req);
}

struct receiver {
    receiver() {
        scrm::gateway::http_settings s;
        s.listen_port = 0;
        scrm::gateway::router routes;
        auto st = state;
        routes.prefix("POST", "/wx/", "wx",
                      [st](scrm::gateway::http_request r) { return receive(st, std::move(r)); });
        server = std::make_unique<scrm::gateway::http_server>(
            io.get_executor(), s, std::move(routes), std::make_shared<scrm::gateway::metrics>());
        port = server->start();
        thread = std::thread([this] { io.run(); });
    }
    ~receiver() {
        work.reset();
        io.stop();
        thread.join();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/wx/" + appid; }
    std::vector<received> requests() {
        std::lock_guard lock(state->mutex);
        return state->requests;
    }

    std::shared_ptr<receiver_state> state = std::make_shared<receiver_state>();
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    std::unique_ptr<scrm::gateway::http_server> server;
    std::uint16_t port = 0;
    std::thread thread;
};

std::string query_value(const std::string& query, const std::string& name) {
    std::size_t pos = 0;
    while (pos <= query.size()) {
        const auto amp = query.find('&', pos);
        const std::string pair = query.substr(pos, amp - pos);
        const auto eq = pair.find('=');
        if (pair.substr(0, eq) == name) return eq == std::string::npos ? "" : pair.substr(eq + 1);
        if (amp == std::string::npos) break;
        pos = amp + 1;
    }
    return {};
}

scrm::result<fk::fetch_reply> fetch_sync(fk::fetch_request req, fk::fetch_options opts) {
    asio::io_context io;
    return scrm::test::run_sync(io, fk::fetch(std::move(req), std::move(opts)));
}

}  // namespace

// ---- tokens -----------------------------------------------------------------------------------

TEST_CASE("stable_token: the same token while valid, renewed 5 minutes before expiry",
          "[fake_wechat]") {
    fixture fx;
    const auto t1 = fx.stable_token();
    REQUIRE(t1.size() >= 100);
    fx.clock->advance(100s);
    auto again = fx.post("/cgi-bin/stable_token",
                         std::string(R"({"grant_type":"client_credential","appid":")") + appid +
                             R"(","secret":")" + secret + R"("})");
    CHECK(fixture::member(again.body, "access_token") == t1);
    CHECK(fixture::member(again.body, "expires_in") == "7100");
    CHECK(fixture::errcode(fx.get("/cgi-bin/getcallbackip?access_token=" + t1)) == 0);

    // Within the last 300 s a new token comes out; the old one stays valid until it expires.
    fx.clock->advance(std::chrono::seconds(7200 - 100 - 299));
    const auto t2 = fx.stable_token();
    CHECK(t2 != t1);
    CHECK(fixture::errcode(fx.get("/cgi-bin/getcallbackip?access_token=" + t1)) == 0);
    fx.clock->advance(300s);
    CHECK(fixture::errcode(fx.get("/cgi-bin/getcallbackip?access_token=" + t1)) == 42001);
    CHECK(fixture::errcode(fx.get("/cgi-bin/getcallbackip?access_token=" + t2)) == 0);
}

TEST_CASE("tokens expire after their configured lifetime, or when told to", "[fake_wechat]") {
    fk::api_limits limits;
    limits.token_lifetime = 60s;
    fixture fx(limits);
    auto legacy = fx.get(std::string("/cgi-bin/token?grant_type=client_credential&appid=") + appid +
                         "&secret=" + secret);
    const auto t = fixture::member(legacy.body, "access_token");
    CHECK(fixture::member(legacy.body, "expires_in") == "60");
    CHECK(fixture::errcode(fx.get("/cgi-bin/getcallbackip?access_token=" + t)) == 0);
    fx.clock->advance(59s);
    CHECK(fixture::errcode(fx.get("/cgi-bin/getcallbackip?access_token=" + t)) == 0);
    fx.clock->advance(1s);
    CHECK(fixture::errcode(fx.get("/cgi-bin/getcallbackip?access_token=" + t)) == 42001);

    const auto s = fx.stable_token();
    CHECK(fixture::errcode(fx.get("/cgi-bin/getcallbackip?access_token=" + s)) == 0);
    CHECK(fx.post("/control/tokens/expire", std::string(R"({"appid":")") + appid + "\"}").status ==
          200);
    CHECK(fixture::errcode(fx.get("/cgi-bin/getcallbackip?access_token=" + s)) == 42001);
    const auto s2 = fx.stable_token();  // a fresh one is issued
    CHECK(s2 != s);
    fx.fake.api().invalidate_tokens(appid);
    CHECK(fixture::errcode(fx.get("/cgi-bin/getcallbackip?access_token=" + s2)) == 40001);
}

TEST_CASE("/cgi-bin/token: each call supersedes the previous token after the overlap",
          "[fake_wechat]") {
    fk::api_limits limits;
    limits.token_daily = 3;
    fixture fx(limits);
    const std::string target = std::string("/cgi-bin/token?grant_type=client_credential&appid=") +
                               appid + "&secret=" + secret;
    const auto t1 = fixture::member(fx.get(target).body, "access_token");
    const auto t2 = fixture::member(fx.get(target).body, "access_token");
    REQUIRE(t1 != t2);
    CHECK(fixture::errcode(fx.get("/cgi-bin/getcallbackip?access_token=" + t1)) == 0);
    fx.clock->advance(300s);
    CHECK(fixture::errcode(fx.get("/cgi-bin/getcallbackip?access_token=" + t1)) == 40001);
    CHECK(fixture::errcode(fx.get("/cgi-bin/getcallbackip?access_token=" + t2)) == 0);
    // The stable token is isolated from /cgi-bin/token (§5.1).
    const auto s = fx.stable_token();
    CHECK(fixture::errcode(fx.get(target)) == 0);  // the 3rd /cgi-bin/token call today
    fx.clock->advance(301s);
    CHECK(fixture::errcode(fx.get("/cgi-bin/getcallbackip?access_token=" + s)) == 0);
    CHECK(fixture::errcode(fx.get(target)) == 45009);  // over the daily count
}

TEST_CASE("stable_token force_refresh invalidates the old token and is rate-limited",
          "[fake_wechat]") {
    fk::api_limits limits;
    limits.force_refresh_daily = 3;
    fixture fx(limits);
    const auto t1 = fx.stable_token();
    const auto t2 = fx.stable_token(true);
    REQUIRE(!t2.empty());
    CHECK(t2 != t1);
    CHECK(fixture::errcode(fx.get("/cgi-bin/getcallbackip?access_token=" + t1)) == 40001);
    CHECK(fixture::errcode(fx.get("/cgi-bin/getcallbackip?access_token=" + t2)) == 0);

    const std::string force = std::string(R"({"grant_type":"client_credential","appid":")") +
                              appid + R"(","secret":")" + secret + R"(","force_refresh":true})";
    fx.clock->advance(29s);
    CHECK(fixture::errcode(fx.post("/cgi-bin/stable_token", force)) == 45011);  // < 30 s apart
    CHECK(fixture::errcode(fx.get("/cgi-bin/getcallbackip?access_token=" + t2)) == 0);
    fx.clock->advance(1s);
    const auto t3 = fixture::member(fx.post("/cgi-bin/stable_token", force).body, "access_token");
    CHECK(!t3.empty());
    fx.clock->advance(30s);
    CHECK(fixture::errcode(fx.post("/cgi-bin/stable_token", force)) == 0);  // 3rd today
    fx.clock->advance(30s);
    CHECK(fixture::errcode(fx.post("/cgi-bin/stable_token", force)) == 45009);  // daily count
    fx.clock->advance(24h);
    CHECK(fixture::errcode(fx.post("/cgi-bin/stable_token", force)) == 0);
}

TEST_CASE("credential and access_token errors", "[fake_wechat]") {
    struct row {
        std::string name, method, target, body;
        int expected;
    };
    const std::string ok_secret = secret;
    const auto r = GENERATE_COPY(values<row>({
        {"unknown appid (stable)", "POST", "/cgi-bin/stable_token",
         R"({"grant_type":"client_credential","appid":"wxffffffffffffffff","secret":"x"})", 40013},
        {"wrong secret (stable)", "POST", "/cgi-bin/stable_token",
         std::string(R"({"grant_type":"client_credential","appid":")") + appid +
             R"(","secret":"wrong"})",
         40125},
        {"wrong secret (legacy)", "GET",
         std::string("/cgi-bin/token?grant_type=client_credential&appid=") + appid +
             "&secret=wrong",
         "", 40001},
        {"unknown appid (legacy)", "GET",
         "/cgi-bin/token?grant_type=client_credential&appid=wxffffffffffffffff&secret=x", "",
         40013},
        {"bad grant_type", "GET",
         std::string("/cgi-bin/token?grant_type=password&appid=") + appid + "&secret=" + ok_secret,
         "", 40002},
        {"appid missing", "GET", "/cgi-bin/token?grant_type=client_credential&secret=x", "", 41002},
        {"secret missing", "POST", "/cgi-bin/stable_token",
         std::string(R"({"grant_type":"client_credential","appid":")") + appid + "\"}", 41004},
        {"stable_token body not JSON", "POST", "/cgi-bin/stable_token", "appid=x", 47001},
        {"token API with POST", "POST", "/cgi-bin/token", "", 43001},
        {"access_token missing", "GET", "/cgi-bin/user/info?openid=x", "", 41001},
        {"access_token malformed", "GET", "/cgi-bin/user/info?access_token=a%20b", "", 40014},
        {"access_token unknown", "GET", "/cgi-bin/user/info?access_token=" + std::string(136, 'A'),
         "", 40001},
    }));
    CAPTURE(r.name);
    fixture fx;
    const auto reply =
        r.method == "GET" ? fx.get(r.target) : fx.post(r.target, r.body, "application/json");
    CHECK(fixture::errcode(reply) == r.expected);
    CHECK(reply.header("content-type") == "application/json; encoding=utf-8");
}

// ---- customer-service window and quota --------------------------------------------------------

TEST_CASE("custom/send: 5 messages within 48 h after a fan message", "[fake_wechat]") {
    fixture fx;
    const auto token = fx.stable_token();
    const auto fan = fk::make_openid("fan-48h");
    CHECK(fx.send_text(token, fan) == 43004);              // unknown fan
    CHECK(fx.send_text(token, "not-an-openid") == 40003);  // bad format
    fx.follower(fan);
    CHECK(fx.send_text(token, fan) == 45015);  // following, but no window
    fx.fake.api().record_interaction(appid, fan, fk::window_kind::message);
    for (int i = 0; i < 5; ++i) CHECK(fx.send_text(token, fan) == 0);
    CHECK(fx.send_text(token, fan) == 45047);
    CHECK(fx.fake.api().window(appid, fan, fk::window_kind::message).used == 5);
    fx.clock->advance(47h);
    CHECK(fx.send_text(token, fan) == 42001);  // the token lived 2 h
    const auto later = fx.stable_token();
    CHECK(fx.send_text(later, fan) == 45047);  // still open, quota used
    fx.fake.api().record_interaction(appid, fan, fk::window_kind::message);  // the fan writes again
    CHECK(fx.send_text(later, fan) == 0);
    fx.clock->advance(48h);
    CHECK(fx.send_text(fx.stable_token(), fan) == 45015);
    CHECK(fx.fake.api().sent(appid, fan).size() == 6);
}

TEST_CASE("custom/send: 3 messages within a minute after a follow, scan or click",
          "[fake_wechat]") {
    fixture fx;
    const auto token = fx.stable_token();
    const auto fan = fk::make_openid("fan-1min");
    fx.fake.api().record_interaction(appid, fan, fk::window_kind::event);
    for (int i = 0; i < 3; ++i) CHECK(fx.send_text(token, fan) == 0);
    CHECK(fx.send_text(token, fan) == 45047);
    fx.fake.api().record_interaction(appid, fan, fk::window_kind::event);
    CHECK(fx.send_text(token, fan) == 0);
    fx.clock->advance(60s);
    CHECK(fx.send_text(token, fan) == 45015);

    SECTION("both windows: the 1-minute one is spent first") {
        fx.fake.api().record_interaction(appid, fan, fk::window_kind::message);
        fx.fake.api().record_interaction(appid, fan, fk::window_kind::event);
        for (int i = 0; i < 3 + 5; ++i) CHECK(fx.send_text(token, fan) == 0);
        CHECK(fx.send_text(token, fan) == 45047);
        CHECK(fx.fake.api().window(appid, fan, fk::window_kind::event).used == 3);
        CHECK(fx.fake.api().window(appid, fan, fk::window_kind::message).used == 5);
    }
    SECTION("configurable numbers, through the control endpoint") {
        auto r = fx.post("/control/limits", R"({"event_quota":1,"event_window_s":10})");
        REQUIRE(r.status == 200);
        auto opened =
            fx.post("/control/interactions", R"({"appid":")" + std::string(appid) +
                                                 R"(","openid":")" + fan + R"(","kind":"event"})");
        REQUIRE(opened.status == 200);
        CHECK(fx.send_text(token, fan) == 0);
        CHECK(fx.send_text(token, fan) == 45047);
        fx.clock->advance(10s);
        CHECK(fx.send_text(token, fan) == 45015);
    }
}

TEST_CASE("custom/send: content checks and message kinds", "[fake_wechat]") {
    fk::api_limits limits;
    limits.message_quota = 100;
    fixture fx(limits);
    const auto token = fx.stable_token();
    const auto fan = fk::make_openid("fan-content");
    fx.fake.api().record_interaction(appid, fan, fk::window_kind::message);
    // A fixed id: the generator below keeps the values of its first run.
    const auto image = fx.fake.api().add_media(appid, "image", "image/jpeg", jpeg, "MEDIA_IMG_1");
    const std::string to = R"({"touser":")" + fan + R"(",)";
    struct row {
        std::string name, body;
        int expected;
    };
    const auto r = GENERATE_COPY(values<row>({
        {"text", to + R"("msgtype":"text","text":{"content":"hi\nthere"}})", 0},
        {"empty text", to + R"("msgtype":"text","text":{"content":""}})", 44004},
        {"text too long",
         to + R"("msgtype":"text","text":{"content":")" + std::string(2049, 'a') + "\"}}", 45002},
        {"image", to + R"("msgtype":"image","image":{"media_id":")" + image + "\"}}", 0},
        {"image, unknown media", to + R"("msgtype":"image","image":{"media_id":"nope"}})", 40007},
        {"news, one article",
         to + R"("msgtype":"news","news":{"articles":[{"title":"t","url":"http://x"}]}})", 0},
        {"news, two articles",
         to + R"("msgtype":"news","news":{"articles":[{"title":"a"},{"title":"b"}]}})", 45008},
        {"news, no article", to + R"("msgtype":"news","news":{"articles":[]}})", 44003},
        {"mpnewsarticle", to + R"("msgtype":"mpnewsarticle","mpnewsarticle":{"article_id":"A1"}})",
         0},
        {"mpnews (replaced)", to + R"("msgtype":"mpnews","mpnews":{"media_id":"x"}})", 40008},
        {"miniprogrampage",
         to +
             R"("msgtype":"miniprogrampage","miniprogrampage":{"title":"t","appid":"wxa","pagepath":"p","thumb_media_id":")" +
             image + "\"}}",
         0},
        {"miniprogrampage, unknown thumb",
         to +
             R"("msgtype":"miniprogrampage","miniprogrampage":{"title":"t","appid":"wxa","pagepath":"p","thumb_media_id":"zz"}})",
         40007},
        {"msgmenu",
         to +
             R"("msgtype":"msgmenu","msgmenu":{"head_content":"h","list":[{"id":"101","content":"yes"}],"tail_content":"t"}})",
         0},
        {"msgmenu, empty list", to + R"("msgtype":"msgmenu","msgmenu":{"list":[]}})", 47001},
        {"unknown msgtype", to + R"("msgtype":"hologram"})", 40008},
        {"not JSON", "touser=x", 47001},
    }));
    CAPTURE(r.name);
    const auto before = fx.fake.api().window(appid, fan, fk::window_kind::message).used;
    CHECK(fixture::errcode(fx.post("/cgi-bin/message/custom/send?access_token=" + token, r.body)) ==
          r.expected);
    // Only accepted messages spend quota and reach the fan.
    CHECK(fx.fake.api().window(appid, fan, fk::window_kind::message).used ==
          before + (r.expected == 0 ? 1 : 0));
}

TEST_CASE("custom/typing needs an interaction within 30 s; a send cancels it", "[fake_wechat]") {
    fixture fx;
    const auto token = fx.stable_token();
    const auto fan = fk::make_openid("fan-typing");
    const std::string typing = R"({"touser":")" + fan + R"(","command":"Typing"})";
    const std::string target = "/cgi-bin/message/custom/typing?access_token=" + token;
    CHECK(fixture::errcode(fx.post(target, typing)) == 43004);
    fx.fake.api().record_interaction(appid, fan, fk::window_kind::message);
    CHECK(fixture::errcode(fx.post(target, typing)) == 0);
    CHECK(fx.fake.api().typing(appid, fan));
    CHECK(fx.send_text(token, fan) == 0);
    CHECK_FALSE(fx.fake.api().typing(appid, fan));
    CHECK(fixture::errcode(fx.post(target, R"({"touser":")" + fan + R"(","command":"Dance"})")) ==
          47001);
    fx.clock->advance(30s);
    CHECK(fixture::errcode(fx.post(target, typing)) == 45015);
}

// ---- media, templates, QR codes, user info -----------------------------------------------------

TEST_CASE("media/upload and media/get", "[fake_wechat]") {
    fixture fx;
    const auto token = fx.stable_token();
    const std::string ct = "multipart/form-data; boundary=XyZ";
    const std::string upload = "/cgi-bin/media/upload?access_token=" + token + "&type=image";
    auto up = fx.post(upload, multipart("media", "a.jpg", jpeg), ct);
    REQUIRE(fixture::errcode(up) == 0);
    const auto id = fixture::member(up.body, "media_id");
    CHECK(fixture::member(up.body, "type") == "image");
    CHECK(fixture::member(up.body, "created_at") == std::to_string(fx.clock->unix_now()));
    auto got = fx.get("/cgi-bin/media/get?access_token=" + token + "&media_id=" + id);
    CHECK(got.status == 200);
    CHECK(got.body == jpeg);
    CHECK(got.header("content-type") == "image/jpeg");

    CHECK(fixture::errcode(fx.post(upload, multipart("media", "a.png", png), ct)) == 0);
    CHECK(fixture::errcode(fx.post(upload, multipart("media", "a.gif", "GIF89a......"), ct)) ==
          40005);
    CHECK(fixture::errcode(fx.post(
              upload,
              multipart("media", "big.jpg", jpeg + std::string(std::size_t{2} * 1024 * 1024, 'x')),
              ct)) == 40009);
    CHECK(fixture::errcode(fx.post(upload, multipart("file", "a.jpg", jpeg), ct)) == 41005);
    CHECK(fixture::errcode(fx.post("/cgi-bin/media/upload?access_token=" + token + "&type=doc",
                                   multipart("media", "a.jpg", jpeg), ct)) == 40004);
    CHECK(fixture::errcode(
              fx.get("/cgi-bin/media/get?access_token=" + token + "&media_id=unknown")) == 40007);

    // Media registered through control is served too; temporary media expire after 3 days.
    const auto voice = fx.fake.api().add_media(appid, "voice", "audio/amr", "#!AMR\n....");
    auto v = fx.get("/cgi-bin/media/get?access_token=" + token + "&media_id=" + voice);
    CHECK(v.body == "#!AMR\n....");
    fx.clock->advance(72h);
    const auto fresh = fx.stable_token();
    CHECK(fixture::errcode(
              fx.get("/cgi-bin/media/get?access_token=" + fresh + "&media_id=" + id)) == 40007);
}

TEST_CASE("template/send: msgid, client_msg_id de-duplication for 10 minutes", "[fake_wechat]") {
    fixture fx;
    const auto token = fx.stable_token();
    const auto fan = fk::make_openid("fan-template");
    fx.follower(fan);
    const std::string target = "/cgi-bin/message/template/send?access_token=" + token;
    const std::string body =
        R"({"touser":")" + fan +
        R"(","template_id":"TPL1","client_msg_id":"reply-42","data":{"thing1":{"value":"x"}}})";
    auto first = fx.post(target, body);
    REQUIRE(fixture::errcode(first) == 0);
    const auto msgid = fixture::member(first.body, "msgid");
    CHECK(std::stoull(msgid) > (1ULL << 53));  // 64-bit ids: never parse them as doubles
    fx.clock->advance(9min);
    CHECK(fixture::member(fx.post(target, body).body, "msgid") == msgid);
    CHECK(fx.fake.api().sent(appid, fan).size() == 1);
    fx.clock->advance(1min);
    CHECK(fixture::member(fx.post(target, body).body, "msgid") != msgid);
    CHECK(fx.fake.api().sent(appid, fan).size() == 2);

    CHECK(fixture::errcode(fx.post(target, R"({"touser":")" + fan + R"(","template_id":""})")) ==
          40037);
    fk::account restricted = test_account();
    restricted.template_ids = {"TPL1"};
    REQUIRE(fx.fake.api().add_account(restricted));
    CHECK(fixture::errcode(
              fx.post(target, R"({"touser":")" + fan + R"(","template_id":"TPL2"})")) == 40037);
    const auto stranger = fk::make_openid("stranger");
    CHECK(fixture::errcode(fx.post(
              target, R"({"touser":")" + stranger + R"(","template_id":"TPL1"})")) == 43004);
}

TEST_CASE("qrcode/create and user/info", "[fake_wechat]") {
    fixture fx;
    const auto token = fx.stable_token();
    const std::string target = "/cgi-bin/qrcode/create?access_token=" + token;
    auto qr = fx.post(
        target,
        R"({"action_name":"QR_LIMIT_STR_SCENE","action_info":{"scene":{"scene_str":"store_7"}}})");
    REQUIRE(fixture::errcode(qr) == 0);
    CHECK(!fixture::member(qr.body, "ticket").empty());
    CHECK(fixture::member(qr.body, "url").rfind("http://weixin.qq.com/q/", 0) == 0);
    CHECK(qr.body.find("expire_seconds") == std::string::npos);  // permanent
    auto temp = fx.post(
        target,
        R"({"expire_seconds":604800,"action_name":"QR_SCENE","action_info":{"scene":{"scene_id":123}}})");
    CHECK(fixture::member(temp.body, "expire_seconds") == "604800");
    CHECK(fixture::errcode(fx.post(target, R"({"action_name":"QR_FOREVER"})")) == 40052);
    CHECK(fixture::errcode(fx.post(
              target,
              R"({"action_name":"QR_LIMIT_SCENE","action_info":{"scene":{"scene_id":100001}}})")) ==
          40053);
    CHECK(
        fixture::errcode(fx.post(
            target, R"({"action_name":"QR_LIMIT_STR_SCENE","action_info":{"scene":{"scene_str":")" +
                        std::string(65, 's') + "\"}}}")) == 40053);

    const auto fan = fk::make_openid("fan-info");
    const std::string info = "/cgi-bin/user/info?access_token=" + token + "&lang=zh_CN&openid=";
    CHECK(fixture::errcode(fx.get(info + fan)) == 40003);  // unknown
    CHECK(fixture::errcode(fx.get(info + "bad")) == 40003);
    fx.follower(fan);
    auto u = fx.get(info + fan);
    CHECK(fixture::member(u.body, "subscribe") == "1");
    CHECK(fixture::member(u.body, "openid") == fan);
    CHECK(u.body.find("nickname") == std::string::npos);  // gone since 2021-12-27 (§7)
    CHECK(u.body.find(R"("tagid_list":[])") != std::string::npos);
    fk::fan tagged = *fx.fake.api().find_fan(appid, fan);
    tagged.tagid_list = {2, 107};
    fx.fake.api().set_fan(tagged);
    CHECK(fx.get(info + fan).body.find(R"("tagid_list":[2,107])") != std::string::npos);
    fk::fan gone;
    gone.appid = appid;
    gone.openid = fan;
    gone.following = false;
    fx.fake.api().set_fan(gone);
    CHECK(fixture::member(fx.get(info + fan).body, "subscribe") == "0");
}

// ---- faults and records -----------------------------------------------------------------------

TEST_CASE("injected faults: error codes for the next N calls, latency, dropped connections",
          "[fake_wechat]") {
    fixture fx;
    const auto token = fx.stable_token();
    const auto fan = fk::make_openid("fan-faults");
    fx.fake.api().record_interaction(appid, fan, fk::window_kind::message);

    SECTION("error codes, then normal service") {
        for (int code : {-1, 40164, 48001, 45009}) {
            CAPTURE(code);
            fk::fault f;
            f.api = "custom_send";
            f.errcode = code;
            f.times = 2;
            fx.fake.api().inject(f);
            CHECK(fx.send_text(token, fan) == code);
            CHECK(fx.send_text(token, fan) == code);
        }
        CHECK(fx.send_text(token, fan) == 0);
        CHECK(fx.fake.api().window(appid, fan, fk::window_kind::message).used == 1);
        // Through the control endpoint, on the token API, for every call until cleared.
        REQUIRE(fx.post("/control/faults", R"({"api":"stable_token","errcode":40164,"times":-1})")
                    .status == 200);
        CHECK(fx.stable_token().empty());
        CHECK(fx.stable_token().empty());
        REQUIRE(http_call(fx.fake.port(), "DELETE", "/control/faults").status == 200);
        CHECK(!fx.stable_token().empty());
        CHECK(fx.post("/control/faults", R"({"api":"nonsense"})").status == 400);
    }
    SECTION("latency: the answer is late, and a client with a shorter deadline gives up") {
        fk::fault f;
        f.api = "*";
        f.action = fk::fault_action::none;
        f.delay = 300ms;
        f.times = 2;
        fx.fake.api().inject(f);
        const auto t0 = std::chrono::steady_clock::now();
        CHECK(fx.send_text(token, fan) == 0);
        CHECK(std::chrono::steady_clock::now() - t0 >= 300ms);
        fk::fetch_request req;
        req.url = fx.fake.url() + "/cgi-bin/getcallbackip?access_token=" + token;
        fk::fetch_options opts;
        opts.timeout = 100ms;
        auto r = fetch_sync(req, opts);
        REQUIRE_FALSE(r);
        CHECK(r.error() == scrm::errc::timeout);
    }
    SECTION("drop: the request is read, not processed, and never answered") {
        fk::fault f;
        f.api = "custom_send";
        f.action = fk::fault_action::drop;
        fx.fake.api().inject(f);
        CHECK(fx.send_text(token, fan) == 99999);  // no answer at all
        CHECK(fx.fake.api().sent(appid, fan).empty());
        const auto calls = fx.fake.api().calls("custom_send");
        REQUIRE(calls.size() == 1);
        CHECK(calls[0].fault == "drop");
        CHECK(calls[0].status == 0);
    }
    SECTION("drop after processing: the message went out, the answer is lost") {
        fk::fault f;
        f.api = "custom_send";
        f.action = fk::fault_action::drop_after_processing;
        fx.fake.api().inject(f);
        CHECK(fx.send_text(token, fan) == 99999);  // no answer at all
        CHECK(fx.fake.api().sent(appid, fan).size() == 1);
        CHECK(fx.fake.api().window(appid, fan, fk::window_kind::message).used == 1);
    }
    SECTION("an HTTP error from a proxy") {
        fk::fault f;
        f.api = "custom_send";
        f.action = fk::fault_action::http_status;
        f.http_status = 502;
        fx.fake.api().inject(f);
        auto r = fx.post("/cgi-bin/message/custom/send?access_token=" + token,
                         R"({"touser":")" + fan + R"(","msgtype":"text","text":{"content":"x"}})");
        CHECK(r.status == 502);
        CHECK(fx.fake.api().sent(appid, fan).empty());
    }
}

TEST_CASE("refusing connections, and resuming on the same port", "[fake_wechat]") {
    fixture fx;
    const auto port = fx.fake.port();
    CHECK(fx.get("/control/health").status == 200);
    fx.fake.stop_listening();
    CHECK(fx.get("/control/health").status == 0);
    REQUIRE(fx.fake.resume_listening());
    CHECK(fx.fake.port() == port);
    CHECK(fx.get("/control/health").status == 200);

    // Through control: refused for a while, then back by itself.
    auto r = fx.post("/control/listening", R"({"refuse_ms":1500})");
    CHECK(r.status == 200);
    CHECK(fx.get("/control/health").status == 0);
    CHECK(scrm::test::wait_for_status(port, "/control/health", 200, 10s).status == 200);
}

TEST_CASE("every call is recorded with its body, readable through control", "[fake_wechat]") {
    fixture fx;
    const auto token = fx.stable_token();
    const auto fan = fk::make_openid("fan-records");
    fx.fake.api().record_interaction(appid, fan, fk::window_kind::event);
    CHECK(fx.send_text(token, fan, "recorded") == 0);
    const auto calls = fx.fake.api().calls();
    REQUIRE(calls.size() == 2);
    CHECK(calls[0].api == "stable_token");
    CHECK(calls[0].appid == appid);
    CHECK(calls[1].api == "custom_send");
    CHECK(calls[1].body.find("recorded") != std::string::npos);
    CHECK(calls[1].errcode == 0);
    auto json = fx.get("/control/calls?api=custom_send");
    rapidjson::Document d;
    d.Parse(json.body.c_str());
    REQUIRE(d.IsObject());
    REQUIRE(d["calls"].Size() == 1);
    CHECK(std::string(d["calls"][0]["body"].GetString()).find("recorded") != std::string::npos);
    auto sent = fx.get("/control/sent?openid=" + fan);
    CHECK(sent.body.find("\"msgtype\":\"text\"") != std::string::npos);
    fx.post("/control/reset", "");
    CHECK(fx.fake.api().calls().empty());
    CHECK_FALSE(fx.fake.api().find_account(appid));
}

// ---- TLS ------------------------------------------------------------------------------------

TEST_CASE("TLS: the certificate verifies with the test CA and not without it", "[fake_wechat]") {
    fixture fx({}, true);
    REQUIRE(std::filesystem::exists(fx.fake.ca_file()));
    CHECK(fx.fake.url().rfind("https://127.0.0.1:", 0) == 0);
    fk::fetch_request req;
    req.url = fx.fake.url() + "/cgi-bin/token?grant_type=client_credential&appid=" + appid +
              "&secret=" + secret;
    fk::fetch_options trusted;
    trusted.ca_file = fx.fake.ca_file().string();
    auto ok = fetch_sync(req, trusted);
    REQUIRE(ok);
    CHECK(ok->status == 200);
    CHECK(!fixture::member(ok->body, "access_token").empty());

    // By name too: the certificate names localhost.
    fk::fetch_request by_name = req;
    by_name.url = "https://localhost:" + std::to_string(fx.fake.port()) + "/control/health";
    auto named = fetch_sync(by_name, trusted);
    REQUIRE(named);
    CHECK(named->status == 200);

    // The system trust store does not know the test CA.
    auto system = fetch_sync(req, fk::fetch_options{});
    REQUIRE_FALSE(system);
    CHECK_THAT(system.error().message(), Catch::Contains("certificate verify failed"));

    // Nor does another CA.
    const auto other_dir =
        std::filesystem::temp_directory_path() / scrm::test::unique_name("other-ca");
    auto other = fk::generate_test_pki(other_dir, "some other CA");
    REQUIRE(other);
    fk::fetch_options wrong;
    wrong.ca_file = other->ca_cert.string();
    auto refused = fetch_sync(req, wrong);
    REQUIRE_FALSE(refused);
    CHECK_THAT(refused.error().message(), Catch::Contains("certificate verify failed"));
    std::filesystem::remove_all(other_dir);

    // Plain HTTP to the TLS port gets no HTTP answer.
    CHECK(fx.get("/control/health").status == 0);
}

// ---- the sender -------------------------------------------------------------------------------

TEST_CASE("sender, plain mode: signed as WeChat signs, window opened by the delivery",
          "[fake_wechat]") {
    fixture fx;
    receiver rx;
    const auto fan = fk::make_openid("fan-sender");
    const auto token = fx.stable_token();
    CHECK(fx.send_text(token, fan) == 43004);
    rx.state->respond = [](const scrm::gateway::http_request& req) {
        auto in = wx::parse_message(req.body);
        scrm::gateway::http_response r;
        r.content_type = "application/xml";
        r.body = in ? wx::text_reply(*in, "welcome back", 1'795'000'000) : "not parsed";
        return r;
    };
    fk::delivery_options opts;
    opts.url = rx.url();
    auto d = fx.fake.deliver(appid, fk::inbound::text(fan, "你好 <b>&]]>"), opts);
    REQUIRE(d.error.empty());
    REQUIRE(d.answered);
    CHECK(d.attempts.size() == 1);
    CHECK(d.reply.k == fk::passive_reply::kind::xml);
    CHECK(d.reply.content == "welcome back");
    CHECK_FALSE(d.fan_sees_failure());

    const auto reqs = rx.requests();
    REQUIRE(reqs.size() == 1);
    const auto& q = reqs[0].query;
    // Independent check with wechat_core: signature over token, timestamp, nonce.
    CHECK(wx::verify_url_signature(cb_token, query_value(q, "timestamp"), query_value(q, "nonce"),
                                   query_value(q, "signature")));
    CHECK_FALSE(wx::verify_url_signature("another-token", query_value(q, "timestamp"),
                                         query_value(q, "nonce"), query_value(q, "signature")));
    CHECK(query_value(q, "openid") == fan);
    CHECK(query_value(q, "encrypt_type").empty());
    auto msg = wx::parse_message(reqs[0].body);
    REQUIRE(msg);
    CHECK(msg->to_user_name == original_id);
    CHECK(msg->from_user_name == fan);
    REQUIRE(msg->msg_id);
    CHECK(*msg->msg_id == d.msg_id);
    CHECK(std::get<wx::text_message>(msg->body).content == "你好 <b>&]]>");

    // The fan wrote: the 48 h window is open for custom/send.
    CHECK(fx.send_text(token, fan) == 0);
    CHECK(fx.fake.api().window(appid, fan, fk::window_kind::message).used == 1);
}

TEST_CASE("sender, safe mode: encrypted body and msg_signature, encrypted reply decrypted",
          "[fake_wechat]") {
    fixture fx;
    REQUIRE(fx.fake.api().add_account(test_account(fk::encryption_mode::safe)));
    receiver rx;
    const auto fan = fk::make_openid("fan-safe");
    auto key = wx::aes_key::from_encoding_aes_key(aes_key);
    REQUIRE(key);
    std::atomic<bool> opened{false};
    rx.state->respond = [&](const scrm::gateway::http_request& req) {
        const std::string q = req.query;
        const auto ts = query_value(q, "timestamp"), nonce = query_value(q, "nonce");
        const auto msig = query_value(q, "msg_signature");
        scrm::gateway::http_response r;
        r.content_type = "application/xml";
        auto env = wx::open_envelope(cb_token, wx::key_ring{*key, std::nullopt}, appid,
                                     wx::safe_mode_query{ts, nonce, msig}, req.body);
        if (!env) {
            r.status = 401;
            return r;
        }
        opened = true;
        auto in = wx::parse_message(env->decrypted.message);
        if (!in) return r;
        const auto reply = wx::text_reply(*in, "加密回复", std::stoll(ts));
        auto sealed = wx::seal_reply(cb_token, *key, appid, reply, std::stoll(ts), nonce,
                                     wx::system_random());
        if (sealed) r.body = wx::to_xml(*sealed);
        return r;
    };
    fk::delivery_options opts;
    opts.url = rx.url();
    auto d = fx.fake.deliver(appid, fk::inbound::text(fan, "secret symptoms"), opts);
    REQUIRE(d.answered);
    CHECK(opened);
    CHECK(d.reply.k == fk::passive_reply::kind::encrypted);
    CHECK(d.reply.content == "加密回复");
    const auto reqs = rx.requests();
    REQUIRE(reqs.size() == 1);
    CHECK(query_value(reqs[0].query, "encrypt_type") == "aes");
    CHECK(wx::verify_url_signature(cb_token, query_value(reqs[0].query, "timestamp"),
                                   query_value(reqs[0].query, "nonce"),
                                   query_value(reqs[0].query, "signature")));
    CHECK(reqs[0].body.find("secret symptoms") == std::string::npos);  // only ciphertext
    CHECK(reqs[0].body.find("<Encrypt>") != std::string::npos);

    SECTION("a plaintext reply in safe mode is what the fan sees as a failure") {
        rx.state->respond = [fan](const scrm::gateway::http_request&) {
            scrm::gateway::http_response r;
            r.body = "<xml><ToUserName><![CDATA[" + fan +
                     "]]></ToUserName><FromUserName><![CDATA[gh_0123456789ab]]></FromUserName>"
                     "<CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType>"
                     "<Content><![CDATA[x]]></Content></xml>";
            return r;
        };
        auto bad = fx.fake.deliver(appid, fk::inbound::text(fan, "again"), opts);
        CHECK(bad.reply.k == fk::passive_reply::kind::invalid);
        CHECK(bad.fan_sees_failure());
        CHECK(bad.attempts.size() == 1);  // an answer, even a bad one, is not retried
    }
    SECTION("compatible mode carries both the plaintext and <Encrypt>") {
        REQUIRE(fx.fake.api().add_account(test_account(fk::encryption_mode::compatible)));
        auto c = fx.fake.deliver(appid, fk::inbound::click(fan, "MENU_BOOK"), opts);
        CHECK(c.answered);
        const auto all = rx.requests();
        CHECK(all.back().body.find("MENU_BOOK") != std::string::npos);
        CHECK(all.back().body.find("<Encrypt>") != std::string::npos);
        CHECK(c.reply.k == fk::passive_reply::kind::encrypted);
    }
}

TEST_CASE("judge_reply: what WeChat accepts as a passive reply", "[fake_wechat]") {
    using kind = fk::passive_reply::kind;
    const auto fan = fk::make_openid("fan-judge");
    auto in = wx::parse_message(fk::inbound_xml(original_id, fk::inbound::text(fan, "q"), 1, 7));
    REQUIRE(in);
    const std::string text = wx::text_reply(*in, "answer", 2);
    const std::string head = "<xml><ToUserName><![CDATA[" + fan +
                             "]]></ToUserName><FromUserName><![CDATA[" + original_id +
                             "]]></FromUserName><CreateTime>2</CreateTime>";
    struct row {
        std::string name;
        unsigned status;
        std::string body;
        kind expected;
    };
    const auto r = GENERATE_COPY(values<row>({
        {"success", 200, "success", kind::none},
        {"empty body", 200, "", kind::none},
        {"text reply", 200, text, kind::xml},
        {"news, one article", 200,
         head + "<MsgType><![CDATA[news]]></MsgType><ArticleCount>1</ArticleCount><Articles>"
                "<item><Title><![CDATA[t]]></Title></item></Articles></xml>",
         kind::xml},
        {"HTTP 500", 500, "success", kind::invalid},
        {"JSON", 200, R"({"reply":"x"})", kind::invalid},
        {"XML declaration", 200, "<?xml version=\"1.0\"?>" + text, kind::invalid},
        {"nested <xml>", 200, "<xml>" + text + "</xml>", kind::invalid},
        {"empty Content", 200,
         head + "<MsgType><![CDATA[text]]></MsgType><Content></Content></xml>", kind::invalid},
        {"to another fan", 200,
         "<xml><ToUserName><![CDATA[" + fk::make_openid("someone else") +
             "]]></ToUserName><FromUserName><![CDATA[" + original_id +
             "]]></FromUserName><CreateTime>2</CreateTime><MsgType><![CDATA[text]]></MsgType>"
             "<Content><![CDATA[x]]></Content></xml>",
         kind::invalid},
        {"image without MediaId", 200, head + "<MsgType><![CDATA[image]]></MsgType></xml>",
         kind::invalid},
        {"ArticleCount wrong", 200,
         head + "<MsgType><![CDATA[news]]></MsgType><ArticleCount>2</ArticleCount><Articles>"
                "<item><Title>t</Title></item></Articles></xml>",
         kind::invalid},
        {"encrypted in plain mode", 200,
         "<xml><Encrypt>abc</Encrypt><MsgSignature>x</MsgSignature><TimeStamp>1</TimeStamp>"
         "<Nonce>n</Nonce></xml>",
         kind::invalid},
    }));
    CAPTURE(r.name);
    const auto judged = fk::judge_reply(test_account(), fan, r.status, r.body);
    CAPTURE(judged);
    CHECK(judged.k == r.expected);
}

TEST_CASE("sender retries when the receiver does not answer in time", "[fake_wechat]") {
    fixture fx;
    receiver rx;
    const auto fan = fk::make_openid("fan-retry");
    fk::delivery_options opts;
    opts.url = rx.url();
    opts.timeout = 300ms;  // WeChat: 5 s

    SECTION("two slow answers, then a quick one: three identical requests") {
        rx.state->slow = 2;
        rx.state->delay = 1500ms;
        auto d = fx.fake.deliver(appid, fk::inbound::text(fan, "are you there"), opts);
        REQUIRE(d.attempts.size() == 3);
        CHECK(d.attempts[0].status == 0);
        CHECK(d.attempts[1].status == 0);
        CHECK(d.attempts[0].elapsed >= 300ms);
        CHECK(d.attempts[2].status == 200);
        CHECK(d.answered);
        CHECK(d.reply.k == fk::passive_reply::kind::none);
        CHECK(rx.state->count == 3);
        const auto reqs = rx.requests();
        REQUIRE(reqs.size() == 3);
        CHECK(reqs[1].query == reqs[0].query);  // a retry is the same delivery: same MsgId,
        CHECK(reqs[2].body == reqs[0].body);    // timestamp, nonce and signature
    }
    SECTION("never answered in time: 3 attempts in total, then the fan sees the failure") {
        rx.state->slow = 100;
        rx.state->delay = 1500ms;
        auto d = fx.fake.deliver(appid, fk::inbound::text(fan, "hello?"), opts);
        CHECK(d.attempts.size() == 3);
        CHECK_FALSE(d.answered);
        CHECK(d.fan_sees_failure());
        CHECK(rx.state->count == 3);
    }
    SECTION("the count is configurable; a quick answer is not retried") {
        opts.attempts = 5;
        rx.state->slow = 4;
        rx.state->delay = 1500ms;
        auto d = fx.fake.deliver(appid, fk::inbound::text(fan, "five"), opts);
        CHECK(d.attempts.size() == 5);
        CHECK(d.answered);
        auto quick = fx.fake.deliver(appid, fk::inbound::text(fan, "one"), opts);
        CHECK(quick.attempts.size() == 1);
    }
}

TEST_CASE("sender: follow state, event windows, QR scenes, template results", "[fake_wechat]") {
    fixture fx;
    receiver rx;
    auto with_callback = test_account();
    with_callback.callback_url = rx.url();
    REQUIRE(fx.fake.api().add_account(with_callback));
    const auto token = fx.stable_token();
    const auto fan = fk::make_openid("fan-events");

    auto d = fx.fake.deliver(appid, fk::inbound::view(fan, "http://clinic.example/menu"));
    CHECK(d.answered);
    CHECK(fx.send_text(token, fan) == 43004);  // VIEW opens nothing, nor makes a follower

    const std::string create = "/cgi-bin/qrcode/create?access_token=" + token;
    const auto ticket = fixture::member(
        fx.post(
              create,
              R"({"action_name":"QR_LIMIT_STR_SCENE","action_info":{"scene":{"scene_str":"store_7"}}})")
            .body,
        "ticket");
    auto sub = fx.fake.deliver(appid, fk::inbound::qr(fan, ticket));
    CHECK(sub.type == "subscribe");
    auto sub_msg = wx::parse_message(rx.requests().back().body);
    REQUIRE(sub_msg);
    CHECK(sub_msg->event_key == "qrscene_store_7");
    CHECK(wx::qr_scene(*sub_msg) == std::optional<std::string_view>("store_7"));
    auto info = fx.get("/cgi-bin/user/info?access_token=" + token + "&openid=" + fan);
    CHECK(fixture::member(info.body, "subscribe_scene") == "ADD_SCENE_QR_CODE");
    CHECK(fixture::member(info.body, "qr_scene_str") == "store_7");
    for (int i = 0; i < 3; ++i) CHECK(fx.send_text(token, fan) == 0);  // 3 after a follow
    CHECK(fx.send_text(token, fan) == 45047);

    auto scan = fx.fake.deliver(appid, fk::inbound::qr(fan, ticket));  // already following
    CHECK(scan.type == "SCAN");
    auto scan_msg = wx::parse_message(rx.requests().back().body);
    REQUIRE(scan_msg);
    CHECK(scan_msg->event_key == "store_7");
    CHECK(fx.send_text(token, fan) == 0);

    // Template results: a fan who blocks the account's templates.
    fk::fan blocking = *fx.fake.api().find_fan(appid, fan);
    blocking.blocks_templates = true;
    fx.fake.api().set_fan(blocking);
    auto sent = fx.post("/cgi-bin/message/template/send?access_token=" + token,
                        R"({"touser":")" + fan + R"(","template_id":"T"})");
    const auto msgid = std::stoull(fixture::member(sent.body, "msgid"));
    auto finish = fx.fake.deliver_template_finish(msgid);
    CHECK(finish.answered);
    auto job = wx::parse_message(rx.requests().back().body);
    REQUIRE(job);
    const auto& ev = std::get<wx::template_send_job_finish_event>(job->body);
    CHECK(ev.msg_id == msgid);
    CHECK(ev.status == "failed:user block");

    auto unsub = fx.fake.deliver(appid, fk::inbound::unsubscribe(fan));
    CHECK(unsub.answered);
    CHECK(fx.send_text(token, fan) == 43004);
    CHECK(fx.fake.deliveries().size() == 5);
}

TEST_CASE("sender through the control endpoint", "[fake_wechat]") {
    fixture fx;
    receiver rx;
    const auto fan = fk::make_openid("fan-control");
    auto r =
        fx.post("/control/deliver", R"({"appid":")" + std::string(appid) + R"(","url":")" +
                                        rx.url() + R"(","message":{"type":"subscribe","from":")" +
                                        fan + R"(","scene":"store_3"}})");
    REQUIRE(r.status == 200);
    rapidjson::Document d;
    d.Parse(r.body.c_str());
    REQUIRE(d.IsObject());
    CHECK(d["answered"].GetBool());
    CHECK(std::string(d["reply"]["kind"].GetString()) == "none");
    CHECK(d["attempts"].Size() == 1);
    auto msg = wx::parse_message(rx.requests().at(0).body);
    REQUIRE(msg);
    CHECK(msg->event_key == "qrscene_store_3");
    auto fan_state = fx.get("/control/fans?appid=" + std::string(appid) + "&openid=" + fan);
    rapidjson::Document f;
    f.Parse(fan_state.body.c_str());
    REQUIRE(f.IsObject());
    CHECK(f["fan"]["following"].GetBool());
    CHECK(f["windows"]["event"]["remaining"].GetUint() == 3);
    CHECK(fx.post("/control/deliver", R"({"appid":"x"})").status == 400);
}

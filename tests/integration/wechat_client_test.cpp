// The WeChat API client against the fake WeChat over TLS (its test CA) with the shared Redis:
// sends reach the fan, tokens are cached and shared, token errors recover with one refresh (one
// forced refresh across racing instances), every errcode becomes its typed error, failures after
// the request was written are maybe_delivered and failures before it are not, and TLS refuses a
// certificate from an untrusted CA. The wrappers (typing, image upload, media download, template
// send, permanent QR, user info) are checked against what the fake recorded, with their errors,
// local refusals that send nothing, and token retries on GET and multipart calls.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <optional>

#include "scrm/fakes/fake_wechat.hpp"
#include "scrm/fakes/test_pki.hpp"
#include "scrm/storage/redis.hpp"
#include "scrm/wechat/client.hpp"
#include "test_env.hpp"

namespace asio = boost::asio;
namespace fk = scrm::fakes;
namespace wx = scrm::wechat;
using namespace std::chrono_literals;
using scrm::test::run_sync;
using wx::api_error;

namespace {

constexpr const char* secret = "app-secret-0123456789";
const fk::sys_time start_time{std::chrono::seconds(1'795'000'000)};

scrm::storage::redis_options redis_opts() {
    const auto& s = scrm::test::services_config().redis;
    scrm::storage::redis_options o;
    o.host = s.host;
    o.port = s.port;
    o.password = s.password;
    o.command_timeout = 2000ms;
    return o;
}

struct fixture {
    explicit fixture(fk::api_limits limits = {}) : fake(fake_options(limits)) {
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
    }

    ~fixture() {
        std::vector<std::string> keys{"scrm:wx:token:" + appid, "scrm:wx:token-lock:" + appid,
                                      "scrm:wx:token-forced:" + appid};
        (void)run_sync(io, redis->del(std::move(keys)));
        redis->stop();
    }

    fk::fake_wechat_options fake_options(fk::api_limits limits) const {
        fk::fake_wechat_options o;
        o.clock = clock;
        o.limits = limits;
        o.tls = true;
        return o;
    }

    wx::client_options client_options() const {
        wx::client_options o;
        o.endpoint.base_url = fake.url();
        o.endpoint.ca_file = fake.ca_file().string();
        o.endpoint.timeout = 3000ms;
        o.appid = appid;
        o.secret = secret;
        return o;
    }

    std::unique_ptr<wx::client> make_client() {
        return std::make_unique<wx::client>(redis, client_options());
    }

    // A following fan with an open message window (5 sends within 48 h).
    std::string fan(const std::string& seed, bool window = true) {
        std::string openid = fk::make_openid(seed + appid);
        fk::fan f;
        f.appid = appid;
        f.openid = openid;
        fake.api().set_fan(f);
        if (window) fake.api().record_interaction(appid, openid, fk::window_kind::message);
        return openid;
    }

    wx::api_result<void> send(wx::client& c, const std::string& openid,
                              const std::string& text = "hello") {
        return run_sync(io, c.send_text(openid, text));
    }

    std::size_t stable_calls(bool forced) {
        std::size_t n = 0;
        for (const auto& r : fake.api().calls("stable_token")) {
            const bool f = r.body.find("\"force_refresh\":true") != std::string::npos;
            if (f == forced) ++n;
        }
        return n;
    }

    void inject(const std::string& api, fk::fault_action action, int errcode = 0, int times = 1) {
        fk::fault f;
        f.api = api;
        f.action = action;
        f.errcode = errcode;
        f.times = times;
        fake.api().inject(f);
    }

    std::string appid = scrm::test::unique_name("wxclient");
    std::shared_ptr<fk::fake_clock> clock = std::make_shared<fk::fake_clock>(start_time);
    fk::fake_wechat fake;
    asio::io_context io;
    std::shared_ptr<scrm::storage::redis_client> redis;
};

}  // namespace

TEST_CASE("wechat client: a text send reaches the fan over TLS; the token is cached and shared",
          "[wechat_client]") {
    fixture fx;
    auto c = fx.make_client();
    const auto openid = fx.fan("a");
    auto r = fx.send(*c, openid, "hello \"fan\"\n你好");
    REQUIRE(r.has_value());
    auto sent = fx.fake.api().sent(fx.appid, openid);
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].msgtype == "text");
    CHECK(sent[0].body.find(R"("content":"hello \"fan\"\n你好")") != std::string::npos);

    REQUIRE(fx.send(*c, openid, "second").has_value());
    CHECK(fx.stable_calls(false) == 1);
    CHECK(fx.stable_calls(true) == 0);
    CHECK(c->stats().token_fetches == 1);

    // The token is in Redis under the account's appid; a second instance uses it as is.
    auto cached = run_sync(fx.io, fx.redis->get("scrm:wx:token:" + fx.appid));
    REQUIRE(cached.has_value());
    REQUIRE(cached->has_value());
    auto ttl = run_sync(fx.io, fx.redis->pttl("scrm:wx:token:" + fx.appid));
    REQUIRE(ttl.has_value());
    REQUIRE(ttl->has_value());
    CHECK(**ttl < 7200s);
    CHECK(**ttl > 7000s);
    auto other = fx.make_client();
    REQUIRE(fx.send(*other, openid, "third").has_value());
    CHECK(fx.stable_calls(false) == 1);
    CHECK(fx.fake.api().sent(fx.appid, openid).size() == 3);

    // Image and news shapes.
    const auto media = fx.fake.api().add_media(fx.appid, "image", "image/jpeg", "\xFF\xD8\xFFjpeg");
    REQUIRE(run_sync(fx.io, c->send_image(openid, media)).has_value());
    wx::news_article art;
    art.title = "Clinic hours";
    art.description = "Open 9-17";
    art.url = "https://example.com/h";
    art.pic_url = "https://example.com/p.jpg";
    REQUIRE(run_sync(fx.io, c->send_news(openid, art, "kf1@clinic")).has_value());
    sent = fx.fake.api().sent(fx.appid, openid);
    REQUIRE(sent.size() == 5);
    CHECK(sent[3].msgtype == "image");
    CHECK(sent[4].msgtype == "news");
    CHECK(sent[4].kf_account == "kf1@clinic");
}

TEST_CASE("wechat client: an expired or invalidated token recovers with one normal refresh",
          "[wechat_client]") {
    fixture fx;
    auto c = fx.make_client();
    const auto openid = fx.fan("b");
    REQUIRE(fx.send(*c, openid).has_value());

    fx.fake.api().expire_tokens(fx.appid);  // 42001
    REQUIRE(fx.send(*c, openid).has_value());
    CHECK(fx.stable_calls(false) == 2);
    CHECK(fx.stable_calls(true) == 0);  // normal mode already handed out a new token

    fx.fake.api().invalidate_tokens(fx.appid);  // 40001
    REQUIRE(fx.send(*c, openid).has_value());
    CHECK(fx.stable_calls(false) == 3);
    CHECK(fx.stable_calls(true) == 0);
    CHECK(c->stats().token_retries == 2);
    CHECK(fx.fake.api().sent(fx.appid, openid).size() == 3);
}

TEST_CASE(
    "wechat client: a 40001 for a token WeChat still hands out forces one refresh, "
    "then not again within 30 s",
    "[wechat_client]") {
    fixture fx;
    auto c = fx.make_client();
    const auto openid = fx.fan("c");
    REQUIRE(fx.send(*c, openid).has_value());
    fx.inject("custom_send", fk::fault_action::error, 40001);
    REQUIRE(fx.send(*c, openid).has_value());
    CHECK(fx.stable_calls(true) == 1);
    CHECK(c->stats().forced_refreshes == 1);
    CHECK(fx.fake.api().sent(fx.appid, openid).size() == 2);

    // The new token is cached: the next send fetches nothing.
    const auto before = fx.fake.api().calls("stable_token").size();
    REQUIRE(fx.send(*c, openid).has_value());
    CHECK(fx.fake.api().calls("stable_token").size() == before);

    // Another refusal right away: forcing again is not allowed yet.
    fx.inject("custom_send", fk::fault_action::error, 40014);
    auto r = fx.send(*c, openid);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == api_error::token_refresh_throttled);
    CHECK_FALSE(r.error().maybe_delivered);
    CHECK(fx.stable_calls(true) == 1);

    // Token errors on the retry too: reported, not retried again.
    run_sync(fx.io, fx.redis->del(std::vector<std::string>{"scrm:wx:token-forced:" + fx.appid}));
    fx.clock->advance(31s);  // WeChat's own 30 s spacing, on the fake's clock
    fx.inject("custom_send", fk::fault_action::error, 42001, 2);
    r = fx.send(*c, openid);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == api_error::token_invalid);
    CHECK(r.error().errcode == 42001);
    CHECK(fx.stable_calls(true) == 2);  // refreshed once, retried once, then given up
}

TEST_CASE("wechat client: WeChat's forced-refresh limits come back typed", "[wechat_client]") {
    SECTION("45009: the 20 a day are used") {
        fk::api_limits limits;
        limits.force_refresh_daily = 0;
        fixture fx(limits);
        auto c = fx.make_client();
        const auto openid = fx.fan("d");
        REQUIRE(fx.send(*c, openid).has_value());
        fx.inject("custom_send", fk::fault_action::error, 40001);
        auto r = fx.send(*c, openid);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == api_error::daily_quota);
        CHECK(r.error().errcode == 45009);
    }
    SECTION("45011: 30 s apart (our own guard shortened to show WeChat's)") {
        fixture fx;
        auto o = fx.client_options();
        o.force_min_interval = 1ms;
        wx::client c(fx.redis, o);
        const auto openid = fx.fan("e");
        REQUIRE(fx.send(c, openid).has_value());
        fx.inject("custom_send", fk::fault_action::error, 40001);
        REQUIRE(fx.send(c, openid).has_value());
        fx.inject("custom_send", fk::fault_action::error, 40001);
        auto r = fx.send(c, openid);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == api_error::minute_quota);
        CHECK(r.error().errcode == 45011);
        CHECK(fx.stable_calls(true) == 2);
    }
}

TEST_CASE("wechat client: two instances racing on a refused token force one refresh",
          "[wechat_client]") {
    fixture fx;
    auto a = fx.make_client();
    auto b = fx.make_client();
    const auto openid = fx.fan("f");
    REQUIRE(fx.send(*a, openid).has_value());  // both now share the cached token
    fx.inject("custom_send", fk::fault_action::error, 40001, 2);

    std::optional<wx::api_result<void>> ra, rb;
    auto done_a = [&ra](std::exception_ptr, wx::api_result<void> r) { ra.emplace(std::move(r)); };
    auto done_b = [&rb](std::exception_ptr, wx::api_result<void> r) { rb.emplace(std::move(r)); };
    asio::co_spawn(fx.io, a->send_text(openid, "from a"), done_a);
    asio::co_spawn(fx.io, b->send_text(openid, "from b"), done_b);
    fx.io.restart();
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while ((!ra || !rb) && std::chrono::steady_clock::now() < deadline) {
        fx.io.run_one_for(50ms);
    }
    REQUIRE(ra);
    REQUIRE(rb);
    CHECK(ra->has_value());
    CHECK(rb->has_value());
    CHECK(fx.stable_calls(true) == 1);
    CHECK(a->stats().forced_refreshes + b->stats().forced_refreshes == 1);
    CHECK(a->stats().token_retries == 1);  // both were refused, both retried once
    CHECK(b->stats().token_retries == 1);
    CHECK(fx.fake.api().sent(fx.appid, openid).size() == 3);
}

TEST_CASE("wechat client: each errcode becomes its typed error", "[wechat_client]") {
    fixture fx;
    auto c = fx.make_client();
    const auto openid = fx.fan("g");

    SECTION("45015: no window open") {
        const auto closed = fx.fan("g-closed", false);
        auto r = fx.send(*c, closed);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == api_error::window_closed);
        CHECK(r.error().errcode == 45015);
        CHECK_FALSE(r.error().maybe_delivered);
    }
    SECTION("45047: the window's quota is used") {
        for (int i = 0; i < 5; ++i) REQUIRE(fx.send(*c, openid).has_value());
        auto r = fx.send(*c, openid);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == api_error::quota_used);
    }
    SECTION("43004: not following") {
        auto r = fx.send(*c, fk::make_openid("stranger" + fx.appid));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == api_error::not_following);
    }
    SECTION("40003: not an OpenID") {
        auto r = fx.send(*c, "not-an-openid");
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == api_error::invalid_openid);
    }
    SECTION("44004: empty text") {
        auto r = fx.send(*c, openid, "");
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == api_error::rejected_content);
        CHECK(r.error().errcode == 44004);
    }
    SECTION("injected codes") {
        struct row {
            int errcode;
            api_error kind;
        };
        auto x = GENERATE(values<row>({{40164, api_error::ip_not_allowlisted},
                                       {48001, api_error::unauthorized},
                                       {-1, api_error::system_busy},
                                       {45009, api_error::daily_quota},
                                       {12345, api_error::other}}));
        CAPTURE(x.errcode);
        fx.inject("custom_send", fk::fault_action::error, x.errcode);
        auto r = fx.send(*c, openid);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == x.kind);
        CHECK(r.error().errcode == x.errcode);
        CHECK_FALSE(r.error().errmsg.empty());
        CHECK_FALSE(r.error().maybe_delivered);
        CHECK(fx.fake.api().sent(fx.appid, openid).empty());
    }
    SECTION("40164 on the token endpoint") {
        auto fresh = fx.make_client();
        run_sync(fx.io, fx.redis->del(std::vector<std::string>{"scrm:wx:token:" + fx.appid}));
        fx.inject("stable_token", fk::fault_action::error, 40164);
        auto r = fx.send(*fresh, openid);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == api_error::ip_not_allowlisted);
        CHECK(fx.fake.api().calls("custom_send").empty());
    }
    SECTION("a wrong AppSecret") {
        auto o = fx.client_options();
        o.secret = "wrong";
        wx::client bad(fx.redis, o);
        auto r = fx.send(bad, openid);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == api_error::bad_credentials);
    }
    SECTION("an HTTP 503 from a proxy") {
        fk::fault f;
        f.api = "custom_send";
        f.action = fk::fault_action::http_status;
        f.http_status = 503;
        fx.fake.api().inject(f);
        auto r = fx.send(*c, openid);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == api_error::http_status);
        CHECK(r.error().http_status == 503);
    }
}

TEST_CASE("wechat client: failures after the request was written are maybe_delivered",
          "[wechat_client]") {
    fixture fx;
    auto c = fx.make_client();
    const auto openid = fx.fan("h");
    REQUIRE(fx.send(*c, openid).has_value());  // the token is cached

    SECTION("dropped after processing: the fan got it") {
        fx.inject("custom_send", fk::fault_action::drop_after_processing);
        auto r = fx.send(*c, openid);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == api_error::transport);
        CHECK(r.error().maybe_delivered);
        CHECK(fx.fake.api().sent(fx.appid, openid).size() == 2);
    }
    SECTION("dropped without processing: still unknowable to the client") {
        fx.inject("custom_send", fk::fault_action::drop);
        auto r = fx.send(*c, openid);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == api_error::transport);
        CHECK(r.error().maybe_delivered);
    }
    SECTION("no answer within the timeout") {
        auto o = fx.client_options();
        o.endpoint.timeout = 300ms;
        wx::client slow(fx.redis, o);
        fk::fault f;
        f.api = "custom_send";
        f.action = fk::fault_action::none;
        f.delay = 1500ms;
        fx.fake.api().inject(f);
        auto r = fx.send(slow, openid);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == api_error::transport);
        CHECK(r.error().transport == scrm::errc::timeout);
        CHECK(r.error().maybe_delivered);
    }
    SECTION("connection refused: not delivered") {
        fx.fake.stop_listening();
        auto r = fx.send(*c, openid);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == api_error::transport);
        CHECK(r.error().transport == boost::asio::error::connection_refused);
        CHECK_FALSE(r.error().maybe_delivered);
        REQUIRE(fx.fake.resume_listening());
    }
}

TEST_CASE("wechat client: TLS verifies the certificate and host name", "[wechat_client]") {
    fixture fx;
    const auto openid = fx.fan("i");

    // By name: the certificate names localhost.
    auto by_name = fx.client_options();
    by_name.endpoint.base_url = "https://localhost:" + std::to_string(fx.fake.port());
    wx::client named(fx.redis, by_name);
    REQUIRE(fx.send(named, openid).has_value());

    run_sync(fx.io, fx.redis->del(std::vector<std::string>{"scrm:wx:token:" + fx.appid}));
    const auto calls_before = fx.fake.api().calls().size();
    const auto other_dir =
        std::filesystem::temp_directory_path() / scrm::test::unique_name("wxclient-ca");
    auto other = fk::generate_test_pki(other_dir, "an untrusted CA");
    REQUIRE(other);
    auto o = fx.client_options();
    o.endpoint.ca_file = other->ca_cert.string();
    wx::client untrusting(fx.redis, o);
    auto r = fx.send(untrusting, openid);
    std::filesystem::remove_all(other_dir);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == api_error::transport);
    CHECK_FALSE(r.error().maybe_delivered);
    CHECK_THAT(r.error().transport.message(), Catch::Contains("certificate verify failed"));
    CHECK(fx.fake.api().calls().size() == calls_before);  // nothing reached the API

    // Plain HTTP is only what the base URL says: http:// to the TLS port gets no answer.
    auto plain = fx.client_options();
    plain.endpoint.base_url = "http://127.0.0.1:" + std::to_string(fx.fake.port());
    plain.endpoint.timeout = 1000ms;
    wx::client p(fx.redis, plain);
    auto pr = fx.send(p, openid);
    REQUIRE_FALSE(pr.has_value());
    CHECK(pr.error().kind == api_error::transport);

    // A base URL that is not http(s).
    auto bad = fx.client_options();
    bad.endpoint.base_url = "ftp://127.0.0.1";
    wx::client b(fx.redis, bad);
    auto br = fx.send(b, openid);
    REQUIRE_FALSE(br.has_value());
    CHECK(br.error().transport == scrm::errc::bad_input);
}

TEST_CASE("wechat client: with Redis down, tokens are fetched directly and sends still work",
          "[wechat_client]") {
    fixture fx;
    auto o = redis_opts();
    o.port = scrm::test::free_port();  // nothing listens there
    auto down = scrm::storage::redis_client::create(fx.io.get_executor(), o);
    down->start();
    wx::client c(down, fx.client_options());
    const auto openid = fx.fan("j");
    REQUIRE(fx.send(c, openid).has_value());
    REQUIRE(fx.send(c, openid).has_value());
    CHECK(fx.stable_calls(false) == 2);  // nothing cached
    // A token error without Redis: normal mode only, never a blind forced refresh.
    fx.inject("custom_send", fk::fault_action::error, 40001);
    auto r = fx.send(c, openid);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == api_error::token_invalid);
    CHECK(fx.stable_calls(true) == 0);
    down->stop();
}

namespace {

std::string jpeg_bytes(std::size_t size) {
    std::string b("\xFF\xD8\xFF\xE0", 4);
    // Binary content: NULs, CR LF and a would-be multipart delimiter must survive the upload.
    b += std::string("\0\r\n--x\r\n\x80\xFF", 10);
    while (b.size() < size) b.push_back(static_cast<char>(b.size() * 31 % 251));
    b.resize(size);
    return b;
}

const std::string png_bytes = std::string("\x89PNG\r\n\x1A\n\0\0\0\rIHDR\0", 17);

std::string json_member(const std::string& body, const char* name) {
    rapidjson::Document d;
    d.Parse(body.data(), body.size());
    if (d.HasParseError() || !d.IsObject() || !d.HasMember(name) || !d[name].IsString()) return {};
    return d[name].GetString();
}

}  // namespace

TEST_CASE("wechat client: typing on and off", "[wechat_client]") {
    fixture fx;
    auto c = fx.make_client();
    const auto openid = fx.fan("typing");  // wrote just now

    REQUIRE(run_sync(fx.io, c->typing(openid, true)).has_value());
    CHECK(fx.fake.api().typing(fx.appid, openid));
    auto calls = fx.fake.api().calls("custom_typing");
    REQUIRE(calls.size() == 1);
    CHECK(calls[0].method == "POST");
    CHECK(calls[0].body == wx::typing_body(openid, true));
    CHECK(calls[0].content_type == "application/json; charset=utf-8");

    REQUIRE(run_sync(fx.io, c->typing(openid, false)).has_value());
    CHECK_FALSE(fx.fake.api().typing(fx.appid, openid));
    calls = fx.fake.api().calls("custom_typing");
    REQUIRE(calls.size() == 2);
    CHECK(json_member(calls[1].body, "command") == "CancelTyping");

    // No interaction in the last 30 s: WeChat refuses.
    fx.clock->advance(31s);
    auto r = run_sync(fx.io, c->typing(openid, true));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == api_error::window_closed);
    CHECK(r.error().errcode == 45015);
    CHECK_FALSE(fx.fake.api().typing(fx.appid, openid));
}

TEST_CASE("wechat client: image upload", "[wechat_client]") {
    fixture fx;
    auto c = fx.make_client();

    SECTION("a JPEG up to 2 MB is uploaded as multipart and usable in a send") {
        const std::string bytes = jpeg_bytes(wx::image_upload_max_bytes);
        auto r = run_sync(fx.io, c->upload_image(bytes, "photo.jpg"));
        REQUIRE(r.has_value());
        const auto media = fx.fake.api().find_media(*r);
        REQUIRE(media);
        CHECK(media->appid == fx.appid);
        CHECK(media->type == "image");
        CHECK(media->content_type == "image/jpeg");
        CHECK(media->bytes == bytes);  // byte for byte, NULs and CR LF included
        const auto calls = fx.fake.api().calls("media_upload");
        REQUIRE(calls.size() == 1);
        CHECK(calls[0].method == "POST");
        CHECK_THAT(calls[0].target, Catch::StartsWith("/cgi-bin/media/upload?type=image&"));
        CHECK_THAT(calls[0].content_type, Catch::StartsWith("multipart/form-data; boundary="));
        CHECK_THAT(calls[0].body, Catch::Contains(R"(name="media"; filename="photo.jpg")"
                                                  "\r\n"
                                                  "Content-Type: image/jpeg\r\n\r\n"));
        const auto openid = fx.fan("upload");
        REQUIRE(run_sync(fx.io, c->send_image(openid, *r)).has_value());
        const auto sent = fx.fake.api().sent(fx.appid, openid);
        REQUIRE(sent.size() == 1);
        CHECK(sent[0].body == wx::custom_image_body(openid, *r));
    }
    SECTION("a PNG gets a safe filename with its extension") {
        auto r = run_sync(fx.io, c->upload_image(png_bytes, "../病历 \"scan\".txt"));
        REQUIRE(r.has_value());
        const auto media = fx.fake.api().find_media(*r);
        REQUIRE(media);
        CHECK(media->content_type == "image/png");
        CHECK(media->bytes == png_bytes);
        const auto calls = fx.fake.api().calls("media_upload");
        REQUIRE(calls.size() == 1);
        CHECK_THAT(calls[0].body, Catch::Contains(R"(filename="________scan_.txt.png")"
                                                  "\r\nContent-Type: image/png\r\n"));
    }
    SECTION("over 2 MB: refused locally, nothing sent") {
        const auto before = fx.fake.api().calls().size();
        auto r = run_sync(fx.io, c->upload_image(jpeg_bytes(3 * 1024 * 1024), "big.jpg"));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == api_error::invalid_request);
        CHECK(r.error().errcode == 0);
        CHECK_FALSE(r.error().maybe_delivered);
        auto one_more =
            run_sync(fx.io, c->upload_image(jpeg_bytes(wx::image_upload_max_bytes + 1), "big.jpg"));
        REQUIRE_FALSE(one_more.has_value());
        CHECK(one_more.error().kind == api_error::invalid_request);
        CHECK(fx.fake.api().calls().size() == before);  // not even a token fetch
    }
    SECTION("not JPEG or PNG by its magic bytes: refused locally") {
        for (const std::string& bytes : {std::string("GIF89a\x01\x00"), std::string(),
                                         std::string("\xFF\xD8", 2), std::string("<svg/>")}) {
            CAPTURE(bytes.size());
            auto r = run_sync(fx.io, c->upload_image(bytes, "photo.jpg"));
            REQUIRE_FALSE(r.has_value());
            CHECK(r.error().kind == api_error::invalid_request);
        }
        CHECK(fx.fake.api().calls().empty());
    }
    SECTION("an expired token is refreshed and the upload retried once") {
        REQUIRE(run_sync(fx.io, c->access_token()).has_value());
        fx.fake.api().expire_tokens(fx.appid);
        auto r = run_sync(fx.io, c->upload_image(png_bytes, "a.png"));
        REQUIRE(r.has_value());
        CHECK(c->stats().token_retries == 1);
        const auto calls = fx.fake.api().calls("media_upload");
        REQUIRE(calls.size() == 2);
        CHECK(calls[0].errcode == 42001);
        CHECK(calls[1].errcode == 0);
        CHECK(calls[1].body == calls[0].body);  // the same request again
        CHECK(fx.fake.api().find_media(*r)->bytes == png_bytes);
    }
    SECTION("WeChat's own refusal comes back typed") {
        fx.inject("media_upload", fk::fault_action::error, 40009);
        auto r = run_sync(fx.io, c->upload_image(png_bytes, "a.png"));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == api_error::rejected_content);
        CHECK(r.error().errcode == 40009);
    }
}

TEST_CASE("wechat client: media download", "[wechat_client]") {
    fixture fx;
    auto c = fx.make_client();
    const std::string png = png_bytes + std::string("\0\xFF\r\n", 4);
    const auto id = fx.fake.api().add_media(fx.appid, "image", "image/png", png);

    SECTION("the bytes, their Content-Type and the filename") {
        auto r = run_sync(fx.io, c->download_media(id));
        REQUIRE(r.has_value());
        CHECK(r->bytes == png);
        CHECK(r->content_type == "image/png");
        CHECK(r->filename == id + ".png");
        CHECK(r->video_url.empty());
        const auto calls = fx.fake.api().calls("media_get");
        REQUIRE(calls.size() == 1);
        CHECK(calls[0].method == "GET");
        CHECK_THAT(calls[0].target, Catch::StartsWith("/cgi-bin/media/get?media_id=" + id + "&"));
        CHECK(calls[0].body.empty());
    }
    SECTION("an uploaded image comes back byte for byte") {
        const std::string bytes = jpeg_bytes(100 * 1024);
        auto up = run_sync(fx.io, c->upload_image(bytes, "x.jpg"));
        REQUIRE(up.has_value());
        auto r = run_sync(fx.io, c->download_media(*up));
        REQUIRE(r.has_value());
        CHECK(r->bytes == bytes);
        CHECK(r->content_type == "image/jpeg");
    }
    SECTION("an unknown media_id: WeChat's JSON error, typed") {
        auto r = run_sync(fx.io, c->download_media("no-such-media"));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == api_error::rejected_content);
        CHECK(r.error().errcode == 40007);
        CHECK_FALSE(r.error().errmsg.empty());
    }
    SECTION("expired after 3 days") {
        fx.clock->advance(std::chrono::hours(72) + 1s);
        auto r = run_sync(fx.io, c->download_media(id));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().errcode == 40007);
    }
    SECTION("an expired token is refreshed and the GET retried once") {
        REQUIRE(run_sync(fx.io, c->access_token()).has_value());
        fx.fake.api().expire_tokens(fx.appid);
        auto r = run_sync(fx.io, c->download_media(id));
        REQUIRE(r.has_value());
        CHECK(r->bytes == png);
        CHECK(c->stats().token_retries == 1);
        CHECK(fx.fake.api().calls("media_get").size() == 2);
    }
    SECTION("larger than the download limit: a transport failure") {
        auto o = fx.client_options();
        o.media_download_limit = png.size() - 1;
        wx::client small(fx.redis, o);
        auto r = run_sync(fx.io, small.download_media(id));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == api_error::transport);
    }
}

TEST_CASE("wechat client: template messages", "[wechat_client]") {
    fixture fx;
    auto c = fx.make_client();
    const auto openid = fx.fan("template", false);  // no window needed
    wx::template_message m;
    m.touser = openid;
    m.template_id = "TPL_visit_reminder";
    m.url = "https://clinic.example/visit?id=7";
    m.miniprogram = wx::template_miniprogram{"wxmini0123456789", "pages/visit?id=7"};
    m.data = {{"thing1", "复诊提醒 😀", ""}, {"time2", "2026-03-01 09:00", "#173177"}};
    m.client_msg_id = "outbox-1";

    auto r = run_sync(fx.io, c->send_template(m));
    REQUIRE(r.has_value());
    auto sent = fx.fake.api().sent(fx.appid, openid);
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].api == "template_send");
    CHECK(sent[0].msgid == *r);
    CHECK(sent[0].client_msg_id == "outbox-1");
    CHECK(sent[0].body == wx::template_send_body(m));
    const auto t = fx.fake.api().find_template(*r);
    REQUIRE(t);
    CHECK(t->template_id == "TPL_visit_reminder");
    CHECK(t->openid == openid);

    // A retry with the same client_msg_id: the first msgid, no second message.
    auto again = run_sync(fx.io, c->send_template(m));
    REQUIRE(again.has_value());
    CHECK(*again == *r);
    CHECK(fx.fake.api().sent(fx.appid, openid).size() == 1);

    // A fan who does not follow.
    auto stranger = m;
    stranger.touser = fk::make_openid("template-stranger" + fx.appid);
    auto refused = run_sync(fx.io, c->send_template(stranger));
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind == api_error::not_following);
    CHECK(refused.error().errcode == 43004);
    CHECK_FALSE(refused.error().maybe_delivered);
    CHECK(fx.fake.api().sent(fx.appid, stranger.touser).empty());

    // Answered ok but without a msgid: the message may be out, say so.
    fx.inject("template_send", fk::fault_action::error, 0);
    auto odd = m;
    odd.client_msg_id = "outbox-2";
    auto unreadable = run_sync(fx.io, c->send_template(odd));
    REQUIRE_FALSE(unreadable.has_value());
    CHECK(unreadable.error().kind == api_error::bad_response);
    CHECK(unreadable.error().maybe_delivered);
}

TEST_CASE("wechat client: permanent string-scene QR codes", "[wechat_client]") {
    fixture fx;
    auto c = fx.make_client();

    for (const std::string& scene :
         {std::string("clinic-7:spring"), std::string(64, 's'), std::string("门诊7号")}) {
        CAPTURE(scene);
        auto r = run_sync(fx.io, c->create_permanent_qr(scene));
        REQUIRE(r.has_value());
        CHECK_THAT(r->url, Catch::StartsWith("http://weixin.qq.com/q/"));
        CHECK(r->expire_seconds == 0);
        const auto q = fx.fake.api().find_qr(r->ticket);
        REQUIRE(q);
        CHECK(q->appid == fx.appid);
        CHECK(q->permanent);
        CHECK_FALSE(q->numeric);
        CHECK(q->scene == scene);
    }
    const auto calls = fx.fake.api().calls("qrcode_create");
    REQUIRE(calls.size() == 3);
    CHECK(calls[0].body == *wx::permanent_qr_body("clinic-7:spring"));

    // Too long, empty or with a control character: refused locally, nothing sent.
    for (const std::string& scene : {std::string(65, 's'), std::string(), std::string("a\nb")}) {
        CAPTURE(scene);
        auto r = run_sync(fx.io, c->create_permanent_qr(scene));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == api_error::invalid_request);
        CHECK_FALSE(r.error().maybe_delivered);
    }
    CHECK(fx.fake.api().calls("qrcode_create").size() == 3);
}

TEST_CASE("wechat client: user info", "[wechat_client]") {
    fixture fx;
    auto c = fx.make_client();
    fk::fan f;
    f.appid = fx.appid;
    f.openid = fk::make_openid("info" + fx.appid);
    f.subscribe_time = 1'790'000'000;
    f.subscribe_scene = "ADD_SCENE_QR_CODE";
    f.qr_scene_str = "clinic-7:spring";
    f.unionid = "o6_bmasdasdsad6_2sgVt7hMZOPfL";
    f.remark = "张三 \"VIP\"";
    f.tagid_list = {2, 107};
    fx.fake.api().set_fan(f);

    SECTION("a follower") {
        auto r = run_sync(fx.io, c->user_info(f.openid));
        REQUIRE(r.has_value());
        wx::fan_info expected;
        expected.openid = f.openid;
        expected.subscribed = true;
        expected.subscribe_time = 1'790'000'000;
        expected.language = "zh_CN";
        expected.remark = f.remark;
        expected.unionid = f.unionid;
        expected.subscribe_scene = "ADD_SCENE_QR_CODE";
        expected.qr_scene_str = "clinic-7:spring";
        expected.tagid_list = {2, 107};
        CHECK(*r == expected);
        const auto calls = fx.fake.api().calls("user_info");
        REQUIRE(calls.size() == 1);
        CHECK(calls[0].method == "GET");
        CHECK_THAT(calls[0].target, Catch::StartsWith("/cgi-bin/user/info?openid=" + f.openid +
                                                      "&lang=zh_CN&access_token="));
    }
    SECTION("a fan who unfollowed: not an error") {
        f.following = false;
        fx.fake.api().set_fan(f);
        auto r = run_sync(fx.io, c->user_info(f.openid));
        REQUIRE(r.has_value());
        CHECK_FALSE(r->subscribed);
        CHECK(r->openid == f.openid);
        CHECK(r->subscribe_time == 0);
        CHECK(r->remark.empty());
        CHECK(r->unionid == f.unionid);
        CHECK(r->tagid_list.empty());
    }
    SECTION("not an OpenID of this account") {
        auto r = run_sync(fx.io, c->user_info(fk::make_openid("nobody" + fx.appid)));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == api_error::invalid_openid);
        CHECK(r.error().errcode == 40003);
        auto odd = run_sync(fx.io, c->user_info("a b&c=d"));  // percent-encoded, still 40003
        REQUIRE_FALSE(odd.has_value());
        CHECK(odd.error().errcode == 40003);
        CHECK_THAT(fx.fake.api().calls("user_info").back().target,
                   Catch::Contains("openid=a%20b%26c%3Dd&"));
    }
    SECTION("an invalidated token is refreshed and the GET retried once") {
        REQUIRE(run_sync(fx.io, c->access_token()).has_value());
        fx.fake.api().invalidate_tokens(fx.appid);
        auto r = run_sync(fx.io, c->user_info(f.openid));
        REQUIRE(r.has_value());
        CHECK(r->subscribed);
        CHECK(c->stats().token_retries == 1);
        const auto calls = fx.fake.api().calls("user_info");
        REQUIRE(calls.size() == 2);
        CHECK(calls[0].errcode == 40001);
        CHECK(calls[1].errcode == 0);
    }
}

TEST_CASE("classify_errcode", "[wechat_client]") {
    struct row {
        int errcode;
        api_error kind;
    };
    auto x = GENERATE(values<row>({{0, api_error::ok},
                                   {-1, api_error::system_busy},
                                   {45015, api_error::window_closed},
                                   {45047, api_error::quota_used},
                                   {43004, api_error::not_following},
                                   {40003, api_error::invalid_openid},
                                   {40164, api_error::ip_not_allowlisted},
                                   {48001, api_error::unauthorized},
                                   {45009, api_error::daily_quota},
                                   {45011, api_error::minute_quota},
                                   {40001, api_error::token_invalid},
                                   {40014, api_error::token_invalid},
                                   {42001, api_error::token_invalid},
                                   {40125, api_error::bad_credentials},
                                   {45002, api_error::rejected_content},
                                   {40007, api_error::rejected_content},
                                   {40009, api_error::rejected_content},
                                   {43019, api_error::other}}));
    CAPTURE(x.errcode);
    CHECK(wx::classify_errcode(x.errcode) == x.kind);
}

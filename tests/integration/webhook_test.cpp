// The webhook in-process over real HTTP, Redis and MariaDB: every message type lands once and is
// handed on once — also when WeChat's retries arrive concurrently, while the first attempt's
// commit is still held, or after a commit whose answer was lost; bad input gets the right status
// and stores nothing (or a dead letter when correctly signed).
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <cstdlib>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "http_client.hpp"
#include "scrm/common/thread_role.hpp"
#include "scrm/gateway/metrics.hpp"
#include "scrm/gateway/services.hpp"
#include "scrm/gateway/webhook.hpp"
#include "scrm/storage/mysql.hpp"
#include "scrm/storage/spool.hpp"
#include "scrm/wechat/crypto.hpp"
#include "scrm/wechat/envelope.hpp"
#include "scrm/wechat/reply.hpp"
#include "scrm/wechat/signature.hpp"
#include "tcp_proxy.hpp"
#include "test_env.hpp"

namespace asio = boost::asio;
using namespace scrm;
using namespace scrm::gateway;
using namespace scrm::test;
using namespace std::chrono_literals;

namespace {

const std::string master_hex(64, 'f');
const std::string aes_text = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const std::string original_id = "gh_0123456789ab";
constexpr std::int64_t now_s = 1'800'000'000;

class counting_sink final : public stored_message_sink {
public:
    asio::awaitable<std::optional<passive_reply>> on_stored(stored_message m) override {
        std::lock_guard lock(mutex_);
        ids_.push_back(m.id);
        types_.push_back(m.message.msg_type + "/" + m.message.event);
        fans_.push_back(m.fan);
        if (m.message.event == "subscribe") co_return welcome;
        co_return std::nullopt;
    }
    // What a subscribe is answered with (routing's welcome): none unless a test sets it.
    std::optional<passive_reply> welcome;
    std::vector<std::uint64_t> ids() const {
        std::lock_guard lock(mutex_);
        return ids_;
    }
    std::vector<std::string> types() const {
        std::lock_guard lock(mutex_);
        return types_;
    }
    std::vector<std::optional<fan_owners>> fans() const {
        std::lock_guard lock(mutex_);
        return fans_;
    }

private:
    mutable std::mutex mutex_;
    std::vector<std::optional<fan_owners>> fans_;
    std::vector<std::uint64_t> ids_;
    std::vector<std::string> types_;
};

storage::mysql_options db_options(const config& cfg = services_config()) {
    return mysql_options_from(cfg.mysql);
}

std::string to_s(const std::optional<std::string>& v) {
    return v ? *v : "NULL";
}

// An account provisioned straight into MySQL with the test's master key.
struct test_account {
    explicit test_account(bool safe_only, const config& cfg = services_config()) : cfg_(cfg) {
        appid = "wx" + std::to_string(1000000000000000ULL +
                                      static_cast<unsigned>(::getpid()) * 1000ULL + counter++);
        auto box = *secret_box::from_hex(master_hex);
        storage::mysql_session db(db_options(cfg_));
        const std::string clinic = unique_name("webhook clinic");
        REQUIRE(db.execute("INSERT INTO clinics (name) VALUES (?)", {clinic}).has_value());
        clinic_id = *db.query("SELECT id FROM clinics WHERE name = ?", {clinic})->rows[0][0];
        auto seal = [&](const std::string& v, const char* field) {
            return *box.seal(v, std::string("official_accounts.") + field + ":" + appid);
        };
        REQUIRE(
            db.execute(
                  "INSERT INTO official_accounts (clinic_id, appid, original_id, token_sealed, "
                  "aes_key_sealed, secret_sealed, safe_mode_only) VALUES (?,?,?,?,?,?,?)",
                  {clinic_id, appid, original_id, seal(token, "token"), seal(aes_text, "aes_key"),
                   seal("0123456789abcdef0123456789abcdef", "secret"),
                   std::int64_t{safe_only ? 1 : 0}})
                .has_value());
        id = *db.query("SELECT id FROM official_accounts WHERE appid = ?", {appid})->rows[0][0];
    }
    ~test_account() {
        storage::mysql_session db(db_options(cfg_));
        for (const char* table : {"inbound_media", "outbox", "inbound_messages", "dead_letters", "fans"}) {
            (void)db.execute(std::string("DELETE FROM ") + table + " WHERE account_id = ?", {id});
        }
        (void)db.execute("DELETE FROM official_accounts WHERE id = ?", {id});
        (void)db.execute("DELETE FROM clinics WHERE id = ?", {clinic_id});
    }
    std::string count(const std::string& table) const {
        storage::mysql_session db(db_options(cfg_));
        return *db.query("SELECT COUNT(*) FROM " + table + " WHERE account_id = ?", {id})
                    ->rows[0][0];
    }
    static inline unsigned counter = 0;
    config cfg_;
    std::string appid, id, clinic_id;
    std::string token = "TestToken123";
};

struct harness {
    explicit harness(const config& cfg = services_config(), storage::spool* spool = nullptr)
        : deps(io.get_executor(), cfg) {
        hook = std::make_unique<webhook>(accounts, store, deps.redis(), deps.mysql(), sink, spool,
                                         webhook_settings{}, [] { return now_s; });
        router routes;
        hook->add_routes(routes);
        http_settings hs;
        hs.listen_port = 0;
        server = std::make_unique<http_server>(io.get_executor(), hs, std::move(routes),
                                               std::make_shared<metrics>());
        port = server->start();
        for (int i = 0; i < 2; ++i) {
            threads.emplace_back([this] {
                mark_io_thread();
                io.run();
            });
        }
    }
    ~harness() {
        asio::co_spawn(io, server->stop(1s), asio::use_future).get();
        store.stop();
        deps.stop();
        work.reset();
        for (auto& t : threads) t.join();
    }

    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    services deps;
    account_registry accounts{deps.mysql(), *secret_box::from_hex(master_hex), 0ms};
    message_store store{io.get_executor(), deps.mysql()};
    counting_sink sink;
    std::unique_ptr<webhook> hook;
    std::unique_ptr<http_server> server;
    std::uint16_t port = 0;
    std::vector<std::thread> threads;
};

std::string signed_query(const std::string& token, std::int64_t ts, const std::string& nonce) {
    const std::string t = std::to_string(ts);
    return "signature=" + wechat::url_signature(token, t, nonce) + "&timestamp=" + t +
           "&nonce=" + nonce + "&openid=o1";
}

std::string text_xml(const std::string& openid, std::uint64_t msg_id, const std::string& content) {
    return "<xml><ToUserName><![CDATA[" + original_id + "]]></ToUserName><FromUserName><![CDATA[" +
           openid + "]]></FromUserName><CreateTime>" + std::to_string(now_s) +
           "</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[" + content +
           "]]></Content><MsgId>" + std::to_string(msg_id) + "</MsgId></xml>";
}

std::string event_xml(const std::string& openid, const std::string& event,
                      const std::string& extra) {
    return "<xml><ToUserName><![CDATA[" + original_id + "]]></ToUserName><FromUserName><![CDATA[" +
           openid + "]]></FromUserName><CreateTime>" + std::to_string(now_s) +
           "</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[" + event +
           "]]></Event>" + extra + "</xml>";
}

// A safe-mode POST: query and encrypted body.
std::pair<std::string, std::string> safe_post(const test_account& a, const std::string& xml,
                                              const std::string& nonce) {
    auto key = *wechat::aes_key::from_encoding_aes_key(aes_text);
    wechat::random16 random{};
    random.fill(7);
    const std::string encrypted = *wechat::encrypt(key, a.appid, xml, random);
    const std::string ts = std::to_string(now_s);
    return {signed_query(a.token, now_s, nonce) + "&encrypt_type=aes&msg_signature=" +
                wechat::msg_signature(a.token, ts, nonce, encrypted),
            "<xml><ToUserName><![CDATA[" + original_id + "]]></ToUserName><Encrypt><![CDATA[" +
                encrypted + "]]></Encrypt></xml>"};
}

http_reply post(const harness& h, const test_account& a, const std::string& query,
                const std::string& body) {
    return http_call(h.port, "POST", "/wx/" + a.appid + "?" + query, body);
}

// Runs `f` when the scope ends, however it ends (a failed REQUIRE too).
struct scope_exit {
    std::function<void()> f;
    ~scope_exit() { f(); }
};

// Polls `done` every 10 ms until it holds or `limit` passes; returns its last value.
bool poll_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        if (done()) return true;
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(10ms);  // polling another connection's state, bounded
    }
}

// How many statements of this database's other connections are executing now and begin with
// `prefix` (the application user sees its own connections in the process list).
int statements_in_progress(storage::mysql_session& db, const std::string& prefix) {
    auto r = db.query(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND "
        "DB = DATABASE() AND COMMAND <> 'Sleep' AND INFO LIKE CONCAT(?, '%')",
        {prefix});
    REQUIRE(r.has_value());
    return std::stoi(*r->rows.at(0).at(0));
}

}  // namespace

TEST_CASE("URL verification echoes echostr only for a correct signature") {
    harness h;
    test_account a(false);
    auto r = http_call(
        h.port, "GET",
        "/wx/" + a.appid + "?" + signed_query(a.token, now_s, "n1") + "&echostr=hello%20back");
    CHECK(r.status == 200);
    CHECK(r.body == "hello back");
    r = http_call(h.port, "GET",
                  "/wx/" + a.appid + "?" + signed_query("wrong", now_s, "n1") + "&echostr=x");
    CHECK(r.status == 401);
    CHECK(r.body == R"({"error":"signature mismatch"})");
    r = http_call(h.port, "GET",
                  "/wx/wx0000000000000000?" + signed_query(a.token, now_s, "n1") + "&echostr=x");
    CHECK(r.status == 404);
    CHECK(r.body == R"({"error":"unknown account"})");
}

TEST_CASE("every message type is stored once and handed on once, plain and safe mode") {
    harness h;
    test_account a(false);
    const std::vector<std::string> messages{
        text_xml("oFan1", 6054768590064713728ULL, "牙疼，请问今天能挂号吗？😣"),
        "<xml><ToUserName><![CDATA[" + original_id +
            "]]></ToUserName><FromUserName><![CDATA[oFan1]]></FromUserName><CreateTime>" +
            std::to_string(now_s) +
            "</CreateTime><MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[http://x/p.jpg]]></"
            "PicUrl><MediaId><![CDATA[m1]]></MediaId><MsgId>2</MsgId></xml>",
        "<xml><ToUserName><![CDATA[" + original_id +
            "]]></ToUserName><FromUserName><![CDATA[oFan1]]></FromUserName><CreateTime>" +
            std::to_string(now_s) +
            "</CreateTime><MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[m2]]></"
            "MediaId><Format><![CDATA[amr]]></Format><Recognition><![CDATA[你好]]></"
            "Recognition><MsgId>3</MsgId></xml>",
        "<xml><ToUserName><![CDATA[" + original_id +
            "]]></ToUserName><FromUserName><![CDATA[oFan1]]></FromUserName><CreateTime>" +
            std::to_string(now_s) +
            "</CreateTime><MsgType><![CDATA[video]]></MsgType><MediaId><![CDATA[m3]]></"
            "MediaId><ThumbMediaId><![CDATA[t3]]></ThumbMediaId><MsgId>4</MsgId></xml>",
        "<xml><ToUserName><![CDATA[" + original_id +
            "]]></ToUserName><FromUserName><![CDATA[oFan1]]></FromUserName><CreateTime>" +
            std::to_string(now_s) +
            "</CreateTime><MsgType><![CDATA[location]]></MsgType><Location_X>23.13</"
            "Location_X><Location_Y>113.26</Location_Y><Scale>20</Scale><Label><![CDATA[广州]]></"
            "Label><MsgId>5</MsgId></xml>",
        "<xml><ToUserName><![CDATA[" + original_id +
            "]]></ToUserName><FromUserName><![CDATA[oFan1]]></FromUserName><CreateTime>" +
            std::to_string(now_s) +
            "</CreateTime><MsgType><![CDATA[link]]></MsgType><Title><![CDATA[t]]></"
            "Title><Description><![CDATA[d]]></Description><Url><![CDATA[http://x]]></"
            "Url><MsgId>6</MsgId></xml>",
        event_xml(
            "oFan2", "subscribe",
            "<EventKey><![CDATA[qrscene_store_7]]></EventKey><Ticket><![CDATA[tk]]></Ticket>"),
        event_xml("oFan1", "SCAN",
                  "<EventKey><![CDATA[store_8]]></EventKey><Ticket><![CDATA[tk]]></Ticket>"),
        event_xml("oFan1", "CLICK", "<EventKey><![CDATA[menu_1]]></EventKey>"),
        event_xml("oFan1", "VIEW", "<EventKey><![CDATA[https://clinic.example/a]]></EventKey>"),
        event_xml("oFan1", "TEMPLATESENDJOBFINISH",
                  "<MsgID>200163836</MsgID><Status><![CDATA[success]]></Status>"),
        event_xml("oFan1", "TEMPLATESENDJOBFINISH",
                  "<MsgID>200163837</MsgID><Status><![CDATA[success]]></Status>"),
        event_xml("oFan3", "unsubscribe", "<EventKey><![CDATA[]]></EventKey>"),
    };
    const bool safe = GENERATE(false, true);
    CAPTURE(safe);
    int n = 0;
    for (const auto& xml : messages) {
        for (int attempt = 0; attempt < 2; ++attempt) {  // WeChat's retry: same message, new nonce
            const std::string nonce = "n" + std::to_string(n) + "_" + std::to_string(attempt);
            auto [query, body] = safe ? safe_post(a, xml, nonce)
                                      : std::make_pair(signed_query(a.token, now_s, nonce), xml);
            const auto r = post(h, a, query, body);
            CAPTURE(xml, attempt);
            CHECK(r.status == 200);
            CHECK(r.body == "success");
        }
        ++n;
    }
    CHECK(a.count("inbound_messages") == std::to_string(messages.size()));
    const auto handed = h.sink.ids();
    CHECK(handed.size() == messages.size());
    CHECK(std::set<std::uint64_t>(handed.begin(), handed.end()).size() == messages.size());
    CHECK(a.count("dead_letters") == "0");

    storage::mysql_session db(db_options());
    auto text = db.query(
        "SELECT content, wx_msg_id FROM inbound_messages WHERE account_id = ? AND msg_type = "
        "'text'",
        {a.id});
    REQUIRE(text.has_value());
    CHECK(to_s(text->rows.at(0)[0]) == "牙疼，请问今天能挂号吗？😣");
    CHECK(to_s(text->rows.at(0)[1]) == "6054768590064713728");
    // Image, voice and video each leave a media row to fetch, expiring 3 days after sending.
    auto media = db.query(
        "SELECT d.media_id, d.kind, d.state, UNIX_TIMESTAMP(d.expires_at) - m.create_time "
        "FROM inbound_media d JOIN inbound_messages m ON m.id = d.message_id "
        "WHERE d.account_id = ? ORDER BY d.media_id",
        {a.id});
    REQUIRE(media.has_value());
    REQUIRE(media->rows.size() == 3);
    CHECK(to_s(media->rows[0][0]) == "m1");
    CHECK(to_s(media->rows[0][1]) == "image");
    CHECK(to_s(media->rows[1][1]) == "voice");
    CHECK(to_s(media->rows[2][1]) == "video");
    CHECK(to_s(media->rows[2][2]) == "pending");
    CHECK(to_s(media->rows[0][3]).rfind("259200", 0) == 0);
    auto fans = db.query(
        "SELECT openid, subscribed, COALESCE(subscribe_scene, '') FROM fans WHERE account_id = ? "
        "ORDER BY openid",
        {a.id});
    REQUIRE(fans.has_value());
    REQUIRE(fans->rows.size() == 3);
    CHECK(to_s(fans->rows[0][0]) == "oFan1");
    CHECK(to_s(fans->rows[0][2]) == "store_8");  // SCAN re-binds the scene
    CHECK(to_s(fans->rows[1][2]) == "store_7");  // subscribe with qrscene_ recorded without prefix
    CHECK(to_s(fans->rows[2][1]) == "0");        // unsubscribed
}

TEST_CASE("the next stage's passive reply answers the inserting request, sealed in safe mode") {
    harness h;
    test_account a(false);
    passive_reply welcome;
    welcome.content = "欢迎关注！回复 1 预约 ]]> <b>";
    h.sink.welcome = welcome;
    wechat::inbound_message fan;  // what the reply answers: the fan and the account
    fan.from_user_name = "oFanWelcome";
    fan.to_user_name = original_id;
    const std::string expected = wechat::text_reply(fan, welcome.content, now_s);

    // Plain mode: the reply XML itself.
    const std::string subscribe = event_xml("oFanWelcome", "subscribe", "");
    auto r = post(h, a, signed_query(a.token, now_s, "w1"), subscribe);
    CHECK(r.status == 200);
    CHECK(r.body == expected);
    // WeChat's retry of the same event is found stored: `success`, the fan is not welcomed twice.
    r = post(h, a, signed_query(a.token, now_s, "w2"), subscribe);
    CHECK(r.body == "success");

    // Safe mode: an envelope signed with the account's token that decrypts to the reply.
    const std::string again = event_xml("oFanWelcome2", "subscribe", "");
    auto [query, body] = safe_post(a, again, "w3");
    r = post(h, a, query, body);
    REQUIRE(r.status == 200);
    auto field = [&r](const std::string& name) {
        const auto open = r.body.find("<" + name + ">");
        const auto close = r.body.find("</" + name + ">");
        REQUIRE(open != std::string::npos);
        REQUIRE(close != std::string::npos);
        std::string v = r.body.substr(open + name.size() + 2, close - open - name.size() - 2);
        if (v.rfind("<![CDATA[", 0) == 0) v = v.substr(9, v.size() - 12);
        return v;
    };
    const std::string ts = field("TimeStamp"), nonce = field("Nonce"), sig = field("MsgSignature");
    CHECK(ts == std::to_string(now_s));
    wechat::key_ring keys{*wechat::aes_key::from_encoding_aes_key(aes_text), std::nullopt};
    auto opened = wechat::open_envelope(a.token, keys, a.appid, {ts, nonce, sig}, r.body);
    REQUIRE(opened.has_value());
    wechat::inbound_message fan2 = fan;
    fan2.from_user_name = "oFanWelcome2";
    CHECK(opened->decrypted.message == wechat::text_reply(fan2, welcome.content, now_s));
    CHECK(r.body.find("欢迎") == std::string::npos);  // not in clear

    // Other messages still get `success`.
    r = post(h, a, signed_query(a.token, now_s, "w4"), text_xml("oFanWelcome", 91, "hi"));
    CHECK(r.body == "success");
    CHECK(h.sink.ids().size() == 3);
}

TEST_CASE("concurrent retries of one message store one row and hand it on once") {
    harness h;
    test_account a(false);
    for (int round = 0; round < 5; ++round) {
        const std::string xml =
            text_xml("oRace", 900 + static_cast<std::uint64_t>(round), "同时重试");
        std::vector<std::thread> senders;
        std::vector<int> statuses(6);
        for (int i = 0; i < 6; ++i) {
            senders.emplace_back([&, i] {
                statuses[static_cast<std::size_t>(i)] =
                    post(h, a,
                         signed_query(a.token, now_s,
                                      "r" + std::to_string(round) + "_" + std::to_string(i)),
                         xml)
                        .status;
            });
        }
        for (auto& t : senders) t.join();
        CHECK(statuses == std::vector<int>(6, 200));
    }
    CHECK(a.count("inbound_messages") == "5");
    CHECK(h.sink.ids().size() == 5);
}

TEST_CASE("the fan's owners reach the next stage with the message, as of its commit") {
    harness h;
    test_account a(false);
    auto send = [&](std::uint64_t msgid) {
        const auto nonce = "o" + std::to_string(msgid);
        return post(h, a, signed_query(a.token, now_s, nonce), text_xml("oOwned", msgid, "你好"))
            .status;
    };
    REQUIRE(send(31) == 200);  // a new fan: nobody owns it
    {
        storage::mysql_session db(db_options());
        REQUIRE(db.execute("UPDATE fans SET consultant_agent_id = 11, exclusive_agent_id = 12, "
                           "store_id = 13 WHERE account_id = ? AND openid = 'oOwned'",
                           {a.id})
                    .has_value());
    }
    REQUIRE(send(32) == 200);
    REQUIRE(send(32) == 200);  // a retry is not handed on again
    CHECK(h.sink.fans() == std::vector<std::optional<fan_owners>>{
                               fan_owners{}, fan_owners{"11", "12", "13"}});
}

TEST_CASE("bad requests get the right status and store nothing") {
    harness h;
    test_account plain(false);
    test_account safe_only(true);
    const std::string xml = text_xml("oBad", 1, "hello");
    const std::string good = signed_query(plain.token, now_s, "b1");

    CHECK(post(h, plain, "timestamp=1&nonce=2", xml).status == 401);  // missing signature
    CHECK(post(h, plain, signed_query("nottoken", now_s, "b1"), xml).body ==
          R"({"error":"signature mismatch"})");
    auto r = post(h, plain, signed_query(plain.token, now_s - 301, "b2"), xml);
    CHECK(r.status == 401);
    CHECK(r.body == R"({"error":"timestamp outside the allowed window"})");
    r = post(h, safe_only, signed_query(safe_only.token, now_s, "b3"), xml);
    CHECK(r.status == 403);
    CHECK(r.body == R"({"error":"this account accepts safe mode only"})");

    // A captured signature replayed with another body.
    CHECK(post(h, plain, good, xml).status == 200);
    r = post(h, plain, good, text_xml("oBad", 2, "forged"));
    CHECK(r.status == 401);
    CHECK(r.body == R"({"error":"signature already used for another message"})");

    // Safe mode: wrong msg_signature is refused.
    auto [q, body] = safe_post(safe_only, xml, "b4");
    const auto pos = q.find("msg_signature=") + 14;
    q[pos] = q[pos] == 'a' ? 'b' : 'a';
    CHECK(post(h, safe_only, q, body).status == 401);

    CHECK(http_call(h.port, "POST",
                    "/wx/" + plain.appid + "?" + signed_query(plain.token, now_s, "b5"),
                    std::string(2 * 1024 * 1024, 'x'))
              .status == 413);

    CHECK(plain.count("inbound_messages") == "1");
    CHECK(safe_only.count("inbound_messages") == "0");
    CHECK(h.sink.ids().size() == 1);
    CHECK(plain.count("dead_letters") == "0");
}

TEST_CASE("correctly signed bodies that cannot be decrypted or parsed become dead letters") {
    harness h;
    test_account a(false);
    const std::vector<std::string> bodies{
        "<xml><ToUserName>",  // malformed XML
        "<!DOCTYPE xml [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><xml>&e;</xml>",  // DTD
        "not xml at all \x01\x02\xff",
        text_xml("oX", 1, "x")
            .replace(text_xml("oX", 1, "x").find(original_id), original_id.size(),
                     "gh_ffffffffffff"),
    };
    int n = 0;
    for (const auto& body : bodies) {
        const auto r = post(h, a, signed_query(a.token, now_s, "d" + std::to_string(n++)), body);
        CHECK(r.status == 200);
        CHECK(r.body == "success");
    }
    // Safe mode with a correct msg_signature over a ciphertext that does not decrypt.
    const std::string ts = std::to_string(now_s);
    const std::string bogus =
        "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB";
    const auto r = post(h, a,
                        signed_query(a.token, now_s, "d9") + "&encrypt_type=aes&msg_signature=" +
                            wechat::msg_signature(a.token, ts, "d9", bogus),
                        "<xml><ToUserName><![CDATA[" + original_id +
                            "]]></ToUserName><Encrypt><![CDATA[" + bogus + "]]></Encrypt></xml>");
    CHECK(r.status == 200);
    CHECK(a.count("dead_letters") == std::to_string(bodies.size() + 1));
    CHECK(a.count("inbound_messages") == "0");
    CHECK(h.sink.ids().empty());
}

TEST_CASE("with MariaDB stopped, verified messages are spooled, acknowledged, and replayed once") {
    private_services servers;
    const auto spool_dir = servers.dir() / "spool";
    storage::spool spool(spool_dir);
    harness h(servers.config(), &spool);
    test_account a(false, servers.config());
    // One message while MySQL is up (it also caches the account, as a running gateway has it).
    REQUIRE(
        post(h, a, signed_query(a.token, now_s, "s0"), text_xml("oSpool", 1, "before")).status ==
        200);

    servers.stop_mysql();
    std::vector<std::string> sent;
    for (std::uint64_t i = 2; i <= 6; ++i) {
        const std::string xml = text_xml("oSpool", i, "停机期间 " + std::to_string(i));
        for (int attempt = 0; attempt < 2; ++attempt) {  // WeChat retries too: spooled twice
            const auto r =
                post(h, a,
                     signed_query(a.token, now_s,
                                  "s" + std::to_string(i) + "_" + std::to_string(attempt)),
                     xml);
            CHECK(r.status == 200);
            CHECK(r.body == "success");
        }
    }
    CHECK(h.sink.ids().size() == 1);  // nothing handed on while not in MySQL
    auto still_down = run_sync(h.io, h.hook->replay_spool_once());
    CHECK_FALSE(still_down.has_value());  // MySQL is away: the spool is kept

    servers.start();
    std::size_t replayed = 0;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
        auto r = run_sync(h.io, h.hook->replay_spool_once());
        if (r) {
            replayed = *r;
            break;
        }
        std::this_thread::sleep_for(
            100ms);  // polling the pool's reconnect, bounded by the deadline
    }
    CHECK(replayed == 10);                      // every spooled delivery went through the store...
    CHECK(a.count("inbound_messages") == "6");  // ...and each message is in MySQL once
    CHECK(h.sink.ids().size() == 6);            // and was handed on once
    storage::mysql_session db(db_options(servers.config()));
    auto rows =
        db.query("SELECT content FROM inbound_messages WHERE account_id = ? ORDER BY id", {a.id});
    REQUIRE(rows.has_value());
    REQUIRE(rows->rows.size() == 6);
    CHECK(*rows->rows[1][0] == "停机期间 2");  // replayed in arrival order
    CHECK(*rows->rows[5][0] == "停机期间 6");
    auto again = run_sync(h.io, h.hook->replay_spool_once());
    REQUIRE(again.has_value());
    CHECK(*again == 0);
}

TEST_CASE("a retry arriving while the first attempt's commit is held is answered after it") {
    // A second connection holds the fan's row lock, which the first attempt's batch needs for its
    // fan upsert: that batch cannot commit until the lock is released. The driver's read timeout
    // is well above the hold, so the batch waits rather than failing over.
    config cfg = services_config();
    cfg.mysql.read_timeout = 60s;
    const bool retry_elsewhere = GENERATE(false, true);  // the retry reaches another instance
    CAPTURE(retry_elsewhere);
    harness first(cfg);
    std::unique_ptr<harness> second;
    if (retry_elsewhere) second = std::make_unique<harness>(cfg);
    const harness& retry_target = retry_elsewhere ? *second : first;
    test_account a(false);
    const std::string fan = "oHeldCommit";
    const std::string xml = text_xml(fan, 4242, "提交未完成时的重试");

    storage::mysql_session holder(db_options());
    storage::mysql_session probe(db_options());
    REQUIRE(holder.execute("INSERT INTO fans (account_id, openid) VALUES (?, ?)", {a.id, fan})
                .has_value());
    REQUIRE(holder.begin().has_value());
    REQUIRE(holder
                .query("SELECT id FROM fans WHERE account_id = ? AND openid = ? FOR UPDATE",
                       {a.id, fan})
                .has_value());
    std::future<http_reply> first_reply, retry_reply;
    bool released = false;
    // Declared after the futures, so it runs first: a failed REQUIRE below releases the lock
    // before the futures' destructors wait for their requests.
    scope_exit release_lock{[&] {
        if (!released) (void)holder.rollback();
    }};

    first_reply = std::async(std::launch::async, [&] {
        return http_call(first.port, "POST",
                         "/wx/" + a.appid + "?" + signed_query(a.token, now_s, "held1"), xml, {},
                         60s);
    });
    // The first attempt's batch is inside MariaDB, waiting for the lock.
    REQUIRE(poll_until([&] { return statements_in_progress(probe, "INSERT INTO fans") == 1; }));

    retry_reply = std::async(std::launch::async, [&] {
        return http_call(retry_target.port, "POST",
                         "/wx/" + a.appid + "?" + signed_query(a.token, now_s, "held2"), xml, {},
                         60s);
    });
    // Until the retry is seen waiting (or, wrongly, answered).
    const auto retry_waits = [&] {
        // The other instance's batch waits on the same lock; on the same instance the retry
        // waits in the store for the next batch, behind the held one.
        return retry_elsewhere ? statements_in_progress(probe, "INSERT INTO fans") == 2
                               : first.store.stats().pending == 1;
    };
    REQUIRE(poll_until(
        [&] { return retry_waits() || retry_reply.wait_for(0ms) == std::future_status::ready; }));

    {
        // While the commit is held: nothing is answered, committed or handed on.
        INFO("answered before the first attempt's row was committed");
        CHECK(retry_reply.wait_for(500ms) == std::future_status::timeout);
        CHECK(first_reply.wait_for(0ms) == std::future_status::timeout);
        CHECK(a.count("inbound_messages") == "0");
        CHECK(first.sink.ids().empty());
    }

    REQUIRE(holder.rollback().has_value());
    released = true;
    REQUIRE(first_reply.wait_for(30s) == std::future_status::ready);
    REQUIRE(retry_reply.wait_for(30s) == std::future_status::ready);
    const auto r1 = first_reply.get();
    const auto r2 = retry_reply.get();
    CHECK(r1.status == 200);
    CHECK(r1.body == "success");
    CHECK(r2.status == 200);
    CHECK(r2.body == "success");
    CHECK(a.count("inbound_messages") == "1");
    const std::size_t handed_on =
        first.sink.ids().size() + (second ? second->sink.ids().size() : 0);
    CHECK(handed_on == 1);
}

TEST_CASE("a commit whose answer is lost is handed on once, by the spool replay") {
    // The batch's COMMIT reaches MariaDB and commits, but its answer never reaches the gateway:
    // the driver's read timeout (1 s) gives up and the request spools the message. The row is then
    // stored by a request that never learned it — the replay must hand it on, once.
    // How: MariaDB's BACKUP STAGE BLOCK_COMMIT holds the COMMIT until the proxy between gateway
    // and MariaDB withholds the server's answers; then the block is lifted and the COMMIT lands.
    private_services servers;
    const std::string grant =
        "mariadb --no-defaults --socket=" + (servers.dir() / "mysql.sock").string() +
        " -uroot -e \"GRANT RELOAD ON *.* TO 'scrm'@'127.0.0.1'\"";
    REQUIRE(std::system(grant.c_str()) == 0);  // BACKUP STAGE needs RELOAD
    tcp_proxy proxy(servers.config().mysql.port);
    config cfg = servers.config();
    cfg.mysql.port = proxy.port();
    cfg.mysql.read_timeout = 1s;
    storage::spool spool(servers.dir() / "spool");
    harness h(cfg, &spool);
    test_account a(false, servers.config());
    const std::string xml = text_xml("oLostAnswer", 77, "应答丢失");

    storage::mysql_session blocker(db_options(servers.config()));
    storage::mysql_session probe(db_options(servers.config()));
    REQUIRE(blocker.execute("BACKUP STAGE START").has_value());
    REQUIRE(blocker.execute("BACKUP STAGE BLOCK_COMMIT").has_value());
    std::future<http_reply> first;
    bool blocked = true;
    scope_exit unblock{[&] {
        proxy.hold_replies(false);
        if (blocked) (void)blocker.execute("BACKUP STAGE END");
    }};
    first = std::async(std::launch::async,
                       [&] { return post(h, a, signed_query(a.token, now_s, "lost1"), xml); });
    REQUIRE(poll_until([&] { return statements_in_progress(probe, "COMMIT") == 1; }));
    proxy.hold_replies(true);
    REQUIRE(blocker.execute("BACKUP STAGE END").has_value());
    blocked = false;
    // The COMMIT lands on the server while its answer is withheld.
    REQUIRE(poll_until([&] { return a.count("inbound_messages") == "1"; }));
    REQUIRE(first.wait_for(30s) == std::future_status::ready);
    const auto r1 = first.get();
    CHECK(r1.status == 200);  // spooled when the store gave up waiting for the answer
    CHECK(r1.body == "success");
    CHECK(h.sink.ids().empty());
    proxy.hold_replies(false);

    // WeChat's retry finds the row committed: answered, but not handed on — it did not insert it.
    const auto retry = post(h, a, signed_query(a.token, now_s, "lost2"), xml);
    CHECK(retry.status == 200);
    CHECK(retry.body == "success");
    CHECK(h.sink.ids().empty());

    // The replay of the spooled attempt takes the row over and hands it on.
    result<std::size_t> replayed = errc::unavailable;
    REQUIRE(poll_until(
        [&] {
            replayed = run_sync(h.io, h.hook->replay_spool_once());
            return replayed.has_value();
        },
        30s));
    CHECK(*replayed == 1);
    CHECK(a.count("inbound_messages") == "1");
    CHECK(h.sink.ids().size() == 1);
    auto again = run_sync(h.io, h.hook->replay_spool_once());
    REQUIRE(again.has_value());
    CHECK(*again == 0);
    CHECK(h.sink.ids().size() == 1);
}

TEST_CASE("spool records written without an insert token are still replayed and handed on") {
    // Records spooled before the insert token was kept: "appid\nxml".
    const auto dir = std::filesystem::temp_directory_path() / unique_name("scrm_old_spool");
    storage::spool spool(dir);
    harness h(services_config(), &spool);
    test_account a(false);
    std::string record = a.appid + "\n" + text_xml("oOldSpool", 31, "旧格式");
    REQUIRE(run_sync(h.io, spool.append(std::move(record))).has_value());
    auto replayed = run_sync(h.io, h.hook->replay_spool_once());
    REQUIRE(replayed.has_value());
    CHECK(*replayed == 1);
    CHECK(a.count("inbound_messages") == "1");
    CHECK(h.sink.ids().size() == 1);
    std::filesystem::remove_all(dir);
}

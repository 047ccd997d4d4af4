// The console's media through the gateway's endpoints (in-process, real HTTP and WebSocket, real
// Redis and MariaDB) and the fake WeChat: inbound voice (AMR fetched through media/get) played
// as MP3 by Debian's ffmpeg, a hanging or failing ffmpeg, images uploaded as temporary media and
// sent through the outbox (token errors and -1 retried), one-article news, the window refusing
// both, delivery ticks pushed to the sender's console, emoji and WeChat's /::) codes in text.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <cstdio>
#include <fstream>
#include <functional>

#include "agent_harness.hpp"
#include "clinic_fixture.hpp"
#include "scrm/fakes/fake_wechat.hpp"
#include "scrm/gateway/media_requests.hpp"
#include "scrm/gateway/voice_transcoder.hpp"
#include "scrm/wechat/outbox.hpp"
#include "test_env.hpp"

namespace asio = boost::asio;
namespace fk = scrm::fakes;
using namespace scrm;
using namespace scrm::test;
using namespace std::chrono_literals;

namespace {

// An AMR-NB file as WeChat stores voice: the "#!AMR\n" magic and `frames` 12.2 kbit/s frames
// (20 ms each; any payload decodes to some sound).
std::string amr_file(int frames) {
    std::string out = "#!AMR\n";
    for (int i = 0; i < frames; ++i) {
        out.push_back('\x3C');
        for (int k = 1; k < 32; ++k) out.push_back(static_cast<char>((i * 7 + k) & 0xFF));
    }
    return out;
}

const std::string jpeg_bytes = std::string("\xFF\xD8\xFF\xE0", 4) + "JFIF-test-picture";

// A program's standard output (the test's own tools: ffprobe).
std::string output_of(const std::string& command) {
    std::string out;
    FILE* p = ::popen(command.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[512];
    while (const auto n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    ::pclose(p);
    return out;
}

// What ffprobe makes of `bytes`: "<format_name> <duration seconds>".
std::pair<std::string, double> probe(const std::string& bytes) {
    const auto file = std::filesystem::temp_directory_path() / unique_name("scrm_probe");
    std::ofstream(file, std::ios::binary) << bytes;
    const std::string out = output_of(
        "ffprobe -v error -show_entries format=format_name,duration -of "
        "default=noprint_wrappers=1:nokey=1 " +
        file.string());
    std::filesystem::remove(file);
    const auto nl = out.find('\n');
    if (nl == std::string::npos) return {"", 0};
    return {out.substr(0, nl), std::atof(out.c_str() + nl + 1)};
}

// A shell script standing in for ffmpeg (executable; removed with the directory).
std::filesystem::path script(const std::filesystem::path& dir, const std::string& name,
                             const std::string& body) {
    const auto p = dir / name;
    std::ofstream(p) << "#!/bin/sh\n" << body << "\n";
    std::filesystem::permissions(p, std::filesystem::perms::owner_all);
    return p;
}

// The fake WeChat with the fixture's account, a gateway harness working against it, one agent.
struct media_setup {
    explicit media_setup(gateway::transcode_options t = {}) {
        REQUIRE(fake.start().has_value());
        h = std::make_unique<agent_harness>(c, std::vector<std::uint64_t>{},
                                            harness_wechat{fake.url(), std::move(t)});
        fk::account a;
        a.appid = c.appid;
        a.secret = "0123456789abcdef0123456789abcdef";  // the fixture's sealed AppSecret
        a.token = clinic_fixture::token;
        a.original_id = clinic_fixture::original_id;
        a.mode = fk::encryption_mode::plain;
        a.callback_url = "http://127.0.0.1:" + std::to_string(h->port) + "/wx/" + c.appid;
        REQUIRE(fake.api().add_account(a));
        agent = c.add_agent("媒体客服", agent_password);
        tok = h->token("媒体客服");
    }

    // A fan (unique to this test) who writes through the fake (a text unless `message` says
    // otherwise): the window opens.
    std::string fan_writes(const std::string& seed,
                           const std::function<fk::inbound_spec(std::string)>& message = {}) {
        const std::string openid = fk::make_openid(seed + c.appid);
        const auto d =
            fake.deliver(c.appid, message ? message(openid) : fk::inbound::text(openid, "你好"));
        REQUIRE_FALSE(d.fan_sees_failure());
        REQUIRE(eventually(
            [&] {
                return c.value(
                           "SELECT COUNT(*) FROM inbound_messages WHERE account_id = ? AND "
                           "openid = ?",
                           {c.account, openid}) != "0";
            },
            5s));
        return openid;
    }

    // What reached the fan, once `n` messages have.
    std::vector<fk::sent_message> sent_to(const std::string& openid, std::size_t n) {
        std::vector<fk::sent_message> out;
        eventually([&] { return (out = fake.api().sent(c.appid, openid)).size() >= n; }, 10s);
        return out;
    }

    std::string outbox_state(const std::string& outbox_id) {
        return c.value("SELECT state FROM outbox WHERE id = ?", {std::stoull(outbox_id)});
    }

    std::string outbox_rows() {
        return c.value("SELECT COUNT(*) FROM outbox WHERE account_id = ?", {c.account});
    }

    http_reply send(const std::string& openid, const std::string& action, const std::string& body) {
        return h->act(tok, openid, action, body);
    }

    fk::fake_wechat fake;
    clinic_fixture c;
    std::unique_ptr<agent_harness> h;
    std::uint64_t agent = 0;
    std::string tok;
};

std::string json_string(const std::string& json, const char* object, const char* name) {
    rapidjson::Document d;
    d.Parse(json.data(), json.size());
    if (d.HasParseError() || !d.IsObject() || !d.HasMember(object)) return {};
    const auto& o = d[object];
    if (!o.IsObject() || !o.HasMember(name) || !o[name].IsString()) return {};
    return {o[name].GetString(), o[name].GetStringLength()};
}

}  // namespace

TEST_CASE("voice fetched through media/get plays as mp3 and its recognition text shows",
          "[console_media]") {
    media_setup s;
    const std::string amr = amr_file(100);  // 2 seconds
    const std::string media_id = s.fake.api().add_media(s.c.appid, "voice", "audio/amr", amr);
    const std::string openid = s.fan_writes("voice-fan", [&](std::string fan) {
        return fk::inbound::voice(std::move(fan), media_id, "我想挂号");
    });
    const std::string id =
        s.c.value("SELECT id FROM inbound_messages WHERE account_id = ? AND openid = ?",
                  {s.c.account, openid});
    REQUIRE(eventually(
        [&] {
            return s.c.value("SELECT state FROM inbound_media WHERE message_id = ?",
                             {std::stoull(id)}) == "fetched";
        },
        10s));

    // As stored: the AMR itself.
    const auto original = s.h->call("GET", "/api/media/" + id, s.tok);
    CHECK(original.status == 200);
    CHECK(original.body == amr);

    // For the browser: MP3 that ffprobe reads as about two seconds of audio.
    const auto mp3 = s.h->call("GET", "/api/media/" + id + "?format=mp3", s.tok);
    REQUIRE(mp3.status == 200);
    CHECK(mp3.header("content-type") == "audio/mpeg");
    const auto [format, seconds] = probe(mp3.body);
    CHECK(format == "mp3");
    CHECK(seconds > 1.5);
    CHECK(seconds < 3.0);
    // Kept beside the original: the second answer is the same file.
    const std::string relative =
        s.c.value("SELECT path FROM inbound_media WHERE message_id = ?", {std::stoull(id)});
    CHECK(std::filesystem::exists(s.h->media_dir / (relative + ".mp3")));
    CHECK(s.h->call("GET", "/api/media/" + id + "?format=mp3", s.tok).body == mp3.body);

    CHECK(s.h->call("GET", "/api/media/" + id + "?format=ogg", s.tok).status == 400);
    CHECK(http_call(s.h->port, "GET", "/api/media/" + id + "?format=mp3").status == 401);

    // The history shows the recognition text and where the audio is.
    const auto history = s.h->call("GET", s.h->conversation(openid, "messages"), s.tok);
    REQUIRE(history.status == 200);
    CHECK(has(history.body, "\"type\":\"voice\",\"text\":\"我想挂号\""));
    CHECK(has(history.body, "\"url\":\"/api/media/" + id + "\""));
}

TEST_CASE("a hanging or failing ffmpeg gives a clear error and blocks nothing", "[console_media]") {
    const auto dir = std::filesystem::temp_directory_path() / unique_name("scrm_ffmpeg");
    std::filesystem::create_directories(dir);
    const auto source = dir / "1.amr";
    std::ofstream(source, std::ios::binary) << amr_file(50);
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    std::thread runner([&] { io.run(); });
    const auto mp3 = [&](gateway::voice_transcoder& t) {
        return asio::co_spawn(io, t.mp3(source), asio::use_future);
    };

    SECTION("hanging: killed at the timeout, and a second run is refused while it runs") {
        gateway::transcode_options o;
        o.ffmpeg = script(dir, "hang", "exec sleep 30").string();
        o.timeout = 1500ms;
        o.workers = 1;
        o.queue_limit = 1;
        gateway::voice_transcoder t(o);
        auto first = mp3(t);
        // The I/O thread is free meanwhile: a second request is answered at once.
        REQUIRE(eventually(
            [&] {
                auto second = mp3(t).get();
                return !second && second.error() == errc::overloaded;
            },
            1s));
        const auto r = first.get();
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == errc::timeout);
    }
    SECTION("failing: an error, nothing kept") {
        gateway::transcode_options o;
        o.ffmpeg = script(dir, "fail", "echo broken >&2; exit 1").string();
        gateway::voice_transcoder t(o);
        const auto r = mp3(t).get();
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == errc::server_error);
    }
    SECTION("missing program: an error") {
        gateway::transcode_options o;
        o.ffmpeg = (dir / "no-such-ffmpeg").string();
        gateway::voice_transcoder t(o);
        const auto r = mp3(t).get();
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == errc::server_error);
    }
    SECTION("not audio: ffmpeg refuses it, nothing kept") {
        std::ofstream(source, std::ios::binary | std::ios::trunc) << "not a voice file";
        gateway::voice_transcoder t(gateway::transcode_options{});
        const auto r = mp3(t).get();
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == errc::server_error);
    }
    CHECK_FALSE(std::filesystem::exists(gateway::mp3_cache_path(source)));
    work.reset();
    runner.join();
    std::filesystem::remove_all(dir);
}

TEST_CASE("an image is uploaded as temporary media and sent through the outbox with ticks",
          "[console_media]") {
    media_setup s;
    const std::string openid = s.fan_writes("image-fan");
    auto console = s.h->connect(s.tok);

    // A stale token on the upload: the client refreshes it and the upload goes through.
    fk::fault stale;
    stale.api = "media_upload";
    stale.errcode = 40001;
    s.fake.api().inject(stale);
    const auto r = s.send(openid, "send-image", jpeg_bytes);
    REQUIRE(r.status == 200);
    const std::string outbox_id = field(r.body, "outbox_id");
    const auto sent = s.sent_to(openid, 1);
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].msgtype == "image");
    const auto media = s.fake.api().find_media(json_string(sent[0].body, "image", "media_id"));
    REQUIRE(media.has_value());
    CHECK(media->bytes == jpeg_bytes);

    // The sender's console hears of the delivery, through its event stream (an event_id first).
    const auto tick = console->wait_for("\"type\":\"delivery\",\"outbox_id\":" + outbox_id, 10s);
    REQUIRE(tick.has_value());
    CHECK(tick->rfind("{\"event_id\":\"", 0) == 0);
    CHECK(has(*tick, "\"kind\":\"image\",\"state\":\"sent\",\"errcode\":null"));
    CHECK(s.outbox_state(outbox_id) == "sent");

    // WeChat busy (-1) on the upload: the outbox tries again and it goes out once.
    fk::fault busy;
    busy.api = "media_upload";
    busy.errcode = -1;
    s.fake.api().inject(busy);
    const auto again = s.send(openid, "send-image", std::string("\x89PNG\r\n\x1A\n", 8) + "png");
    REQUIRE(again.status == 200);
    const std::string again_id = field(again.body, "outbox_id");
    CHECK(console->wait_for("\"outbox_id\":" + again_id + ",\"account_id\"", 10s).has_value());
    REQUIRE(s.sent_to(openid, 2).size() == 2);
    CHECK(eventually([&] { return s.outbox_state(again_id) == "sent"; }, 10s));
    CHECK(s.c.value("SELECT attempts FROM outbox WHERE id = ?", {std::stoull(again_id)}) == "2");

    // The history shows both as delivered images.
    const auto history = s.h->call("GET", s.h->conversation(openid, "messages"), s.tok);
    CHECK(has(history.body, "\"direction\":\"out\",\"id\":" + again_id));
    CHECK(has(history.body, "\"type\":\"image\""));

    // Refused uploads store nothing.
    const std::string rows = s.outbox_rows();
    const auto big =
        s.send(openid, "send-image", jpeg_bytes + std::string(gateway::max_image_bytes, 'x'));
    CHECK(big.status == 413);
    CHECK(has(big.body, "图片过大"));
    const auto huge = s.send(openid, "send-image", std::string(4 * 1024 * 1024, '\xFF'));
    CHECK(huge.status == 413);
    const auto gif = s.send(openid, "send-image", "GIF89a-picture");
    CHECK(gif.status == 400);
    CHECK(has(gif.body, "JPEG 或 PNG"));
    CHECK(s.send(openid, "send-image", "").status == 400);
    CHECK(s.outbox_rows() == rows);
    CHECK(s.fake.api().sent(s.c.appid, openid).size() == 2);
}

TEST_CASE("news is checked and sent as one article and a refusal reaches the console",
          "[console_media]") {
    media_setup s;
    const std::string openid = s.fan_writes("news-fan");
    auto console = s.h->connect(s.tok);
    const std::string rows = s.outbox_rows();

    struct row {
        std::string name, body, problem;
    };
    const std::vector<row> bad_bodies{
        {"no title", R"({"url":"https://clinic.example/a"})", "标题"},
        {"blank title", R"({"title":"  ","url":"https://clinic.example/a"})", "标题"},
        {"no url", R"({"title":"洗牙须知"})", "链接"},
        {"not http", R"j({"title":"洗牙须知","url":"javascript:alert(1)"})j", "链接"},
        {"bad picurl", R"({"title":"洗牙须知","url":"https://a.example/","picurl":"ftp://x"})",
         "picurl"},
        {"title too long", "{\"title\":\"" + std::string(65, 'a') + "\",\"url\":\"https://a.b/\"}",
         "标题过长"},
        {"not text", R"({"title":1,"url":"https://a.b/"})", "必须是文字"},
        {"not an object", "[]", "JSON"},
    };
    for (const auto& bad : bad_bodies) {
        CAPTURE(bad.name);
        const auto refused = s.send(openid, "send-news", bad.body);
        CHECK(refused.status == 400);
        CHECK(has(refused.body, bad.problem));
    }
    CHECK(s.outbox_rows() == rows);

    const auto ok = s.send(
        openid, "send-news",
        R"({"title":"洗牙前须知 🦷","description":"请提前30分钟到院",)"
        R"("url":"https://clinic.example/notes/1","picurl":"https://clinic.example/p.jpg"})");
    REQUIRE(ok.status == 200);
    const auto sent = s.sent_to(openid, 1);
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].msgtype == "news");
    CHECK(has(sent[0].body, "\"title\":\"洗牙前须知 🦷\""));
    CHECK(has(sent[0].body, "\"url\":\"https://clinic.example/notes/1\""));
    CHECK(has(sent[0].body, "\"picurl\":\"https://clinic.example/p.jpg\""));

    // WeChat refuses the next one (45015: the window closed on its side): failed, with the
    // reason, on the console and in the history.
    fk::fault closed;
    closed.api = "custom_send";
    closed.errcode = 45015;
    s.fake.api().inject(closed);
    const auto refused_by_wechat =
        s.send(openid, "send-news", R"({"title":"复诊提醒","url":"https://clinic.example/r"})");
    REQUIRE(refused_by_wechat.status == 200);
    const std::string id = field(refused_by_wechat.body, "outbox_id");
    const auto tick = console->wait_for("\"outbox_id\":" + id + ",", 10s);
    REQUIRE(tick.has_value());
    CHECK(has(*tick, "\"state\":\"failed\",\"errcode\":45015"));
    CHECK(has(*tick, "窗口已关闭"));
    const auto history = s.h->call("GET", s.h->conversation(openid, "messages"), s.tok);
    CHECK(has(history.body, "\"state\":\"failed\",\"errcode\":45015"));
}

TEST_CASE("with no window open images and news are refused with the reason and nothing is queued",
          "[console_media]") {
    media_setup s;
    const std::string openid = fk::make_openid("silent-fan" + s.c.appid);
    s.c.set_fan(openid);  // known, but never wrote: no customer-service window
    const std::string rows = s.outbox_rows();
    const auto image = s.send(openid, "send-image", jpeg_bytes);
    CHECK(image.status == 422);
    CHECK(has(image.body, "\"reason\":\"closed\""));
    CHECK(has(image.body, "48小时"));
    const auto news =
        s.send(openid, "send-news", R"({"title":"复诊提醒","url":"https://clinic.example/r"})");
    CHECK(news.status == 422);
    CHECK(has(news.body, "\"reason\":\"closed\""));
    CHECK(s.outbox_rows() == rows);
    // The lock taken for the refused send was given back.
    const auto list = s.h->call("GET", "/api/conversations", s.tok);
    CHECK_FALSE(has(list.body, "\"holder\":{\"id\":" + std::to_string(s.agent)));
}

TEST_CASE("text with emoji and WeChat's face codes reaches the fan byte for byte",
          "[console_media]") {
    media_setup s;
    const std::string openid = s.fan_writes("emoji-fan");
    // 4-byte UTF-8 (😀 U+1F600, 🦷 U+1F9B7), a flag (two code points), WeChat's /::) and
    // [微笑].
    const std::string text = "您好😀🦷🇨🇳 /::) /:B-) [微笑] 见到您很高兴";
    const auto r = s.send(openid, "send", "{\"text\":\"" + text + "\"}");
    REQUIRE(r.status == 200);
    const auto sent = s.sent_to(openid, 1);
    REQUIRE(sent.size() == 1);
    CHECK(json_string(sent[0].body, "text", "content") == text);
    const auto history = s.h->call("GET", s.h->conversation(openid, "messages"), s.tok);
    CHECK(has(history.body, text));
}

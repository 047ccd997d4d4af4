// Outbound API request bodies (wechat-protocol.md §5.3, §5.4, §6): each customer-service kind,
// typing, template send and the permanent string-scene QR code, parsed back with RapidJSON and
// compared field by field; UTF-8 stays raw, quotes and backslashes are escaped, dirty text becomes
// U+FFFD, and the QR scene limits are enforced.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <string>
#include <vector>

#include "scrm/wechat/outbound.hpp"
#include "scrm/wechat/xml_text.hpp"

using namespace scrm::wechat;

namespace {

const std::string openid = "oFan0123456789012345678901ab";
const std::string fffd(replacement_char);

std::string repeat(std::string_view s, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += s;
    return out;
}

rapidjson::Document parse(const std::string& body) {
    rapidjson::Document d;
    d.Parse<rapidjson::kParseValidateEncodingFlag>(body.data(), body.size());
    INFO(body);
    REQUIRE_FALSE(d.HasParseError());
    REQUIRE(d.IsObject());
    return d;
}

std::string str(const rapidjson::Value& v, const char* key) {
    REQUIRE(v.IsObject());
    auto it = v.FindMember(key);
    INFO(key);
    REQUIRE(it != v.MemberEnd());
    REQUIRE(it->value.IsString());
    return {it->value.GetString(), it->value.GetStringLength()};
}

const rapidjson::Value& obj(const rapidjson::Value& v, const char* key) {
    REQUIRE(v.IsObject());
    auto it = v.FindMember(key);
    INFO(key);
    REQUIRE(it != v.MemberEnd());
    REQUIRE(it->value.IsObject());
    return it->value;
}

std::vector<std::string> keys(const rapidjson::Value& v) {
    std::vector<std::string> out;
    for (const auto& m : v.GetObject()) out.emplace_back(m.name.GetString());
    return out;
}

// The text a custom text body carries, read back.
std::string content_of(const std::string& body) {
    const auto d = parse(body);
    return str(obj(d, "text"), "content");
}

}  // namespace

TEST_CASE("outbound: a text body is exactly WeChat's shape", "[wechat_outbound]") {
    CHECK(custom_text_body("o1", "hi") ==
          R"({"touser":"o1","msgtype":"text","text":{"content":"hi"}})");
    CHECK(custom_text_body("o1", "hi", "kf1@clinic") ==
          R"({"touser":"o1","msgtype":"text","text":{"content":"hi"},)"
          R"("customservice":{"kf_account":"kf1@clinic"}})");
    CHECK(custom_send_path == "/cgi-bin/message/custom/send");
}

TEST_CASE("outbound: text round-trips through JSON", "[wechat_outbound]") {
    struct row {
        const char* name;
        std::string input;
        std::string expected;
    };
    auto x = GENERATE(values<row>({
        {"ascii", "hello", "hello"},
        {"Chinese", "你好，预约明天上午9点", "你好，预约明天上午9点"},
        {"emoji (4-byte UTF-8)", "谢谢 😀👍🏻", "谢谢 😀👍🏻"},
        {"quotes and backslashes", R"(say "hi" \ C:\path\n)", R"(say "hi" \ C:\path\n)"},
        {"newlines and tabs", "line1\nline2\r\n\tend", "line1\nline2\r\n\tend"},
        {"XML-looking text", "<a href=\"x\">]]></a>&amp;", "<a href=\"x\">]]></a>&amp;"},
        {"slash stays", "https://example.com/a?b=1&c=2", "https://example.com/a?b=1&c=2"},
        {"control character", std::string("a") + '\x01' + "b", "a" + fffd + "b"},
        {"NUL", std::string("a\0b", 3), "a" + fffd + "b"},
        {"truncated UTF-8", "好\xE4\xBD", "好" + fffd},
        {"invalid byte", "a\xFF", "a" + fffd},
        {"empty", "", ""},
    }));
    CAPTURE(x.name);
    const std::string body = custom_text_body(openid, x.input);
    CHECK(content_of(body) == x.expected);
}

TEST_CASE("outbound: non-ASCII is written as raw UTF-8, only JSON's escapes are used",
          "[wechat_outbound]") {
    const std::string body = custom_text_body(openid, "你好 😀 \"q\" \\ \n");
    CHECK(body.find("你好 😀") != std::string::npos);
    CHECK(body.find("\\u") == std::string::npos);
    CHECK(body.find(R"(\"q\" \\ \n)") != std::string::npos);
    // A control character is replaced, never emitted as an escape WeChat would show.
    CHECK(custom_text_body(openid, "\x1F").find("\\u001F") == std::string::npos);
}

TEST_CASE("outbound: every customer-service kind has its shape", "[wechat_outbound]") {
    SECTION("text") {
        const auto d = parse(custom_text_body(openid, "预约"));
        CHECK(keys(d) == std::vector<std::string>{"touser", "msgtype", "text"});
        CHECK(str(d, "touser") == openid);
        CHECK(str(d, "msgtype") == "text");
        CHECK(str(obj(d, "text"), "content") == "预约");
    }
    SECTION("image") {
        const auto d = parse(custom_image_body(openid, "MEDIA_ID_1"));
        CHECK(keys(d) == std::vector<std::string>{"touser", "msgtype", "image"});
        CHECK(str(d, "msgtype") == "image");
        CHECK(keys(obj(d, "image")) == std::vector<std::string>{"media_id"});
        CHECK(str(obj(d, "image"), "media_id") == "MEDIA_ID_1");
    }
    SECTION("news: exactly one article") {
        news_article a;
        a.title = "门诊时间";
        a.description = "周一至周五 \"9-17\"";
        a.url = "https://example.com/h?x=1&y=2";
        a.pic_url = "https://example.com/p.jpg";
        const auto d = parse(custom_news_body(openid, a, "kf2@clinic"));
        CHECK(str(d, "msgtype") == "news");
        const auto& articles = obj(d, "news")["articles"];
        REQUIRE(articles.IsArray());
        REQUIRE(articles.Size() == 1);
        CHECK(keys(articles[0]) ==
              std::vector<std::string>{"title", "description", "url", "picurl"});
        CHECK(str(articles[0], "title") == a.title);
        CHECK(str(articles[0], "description") == a.description);
        CHECK(str(articles[0], "url") == a.url);
        CHECK(str(articles[0], "picurl") == a.pic_url);
        CHECK(str(obj(d, "customservice"), "kf_account") == "kf2@clinic");
    }
    SECTION("mpnewsarticle") {
        const auto d = parse(custom_mpnewsarticle_body(openid, "ARTICLE_ID_9"));
        CHECK(str(d, "msgtype") == "mpnewsarticle");
        CHECK(str(obj(d, "mpnewsarticle"), "article_id") == "ARTICLE_ID_9");
        CHECK_FALSE(d.HasMember("customservice"));
    }
    SECTION("miniprogrampage") {
        miniprogram_page p;
        p.title = "预约挂号";
        p.appid = "wxmini0123456789";
        p.pagepath = "pages/book?dept=3";
        p.thumb_media_id = "THUMB_1";
        const auto d = parse(custom_miniprogrampage_body(openid, p));
        CHECK(str(d, "msgtype") == "miniprogrampage");
        const auto& m = obj(d, "miniprogrampage");
        CHECK(keys(m) == std::vector<std::string>{"title", "appid", "pagepath", "thumb_media_id"});
        CHECK(str(m, "title") == p.title);
        CHECK(str(m, "appid") == p.appid);
        CHECK(str(m, "pagepath") == p.pagepath);
        CHECK(str(m, "thumb_media_id") == p.thumb_media_id);
    }
    SECTION("msgmenu: options in order") {
        msg_menu menu;
        menu.head_content = "您对本次服务是否满意？";
        menu.options = {{"101", "满意"}, {"102", "不满意"}};
        menu.tail_content = "欢迎再次光临";
        const auto d = parse(custom_msgmenu_body(openid, menu, "kf1@clinic"));
        CHECK(str(d, "msgtype") == "msgmenu");
        const auto& m = obj(d, "msgmenu");
        CHECK(keys(m) == std::vector<std::string>{"head_content", "list", "tail_content"});
        CHECK(str(m, "head_content") == menu.head_content);
        CHECK(str(m, "tail_content") == menu.tail_content);
        const auto& list = m["list"];
        REQUIRE(list.IsArray());
        REQUIRE(list.Size() == 2);
        CHECK(str(list[0], "id") == "101");
        CHECK(str(list[0], "content") == "满意");
        CHECK(str(list[1], "id") == "102");
        CHECK(str(list[1], "content") == "不满意");
        CHECK(str(obj(d, "customservice"), "kf_account") == "kf1@clinic");
    }
}

TEST_CASE("outbound: typing and cancel typing", "[wechat_outbound]") {
    CHECK(typing_body("o1", true) == R"({"touser":"o1","command":"Typing"})");
    CHECK(typing_body("o1", false) == R"({"touser":"o1","command":"CancelTyping"})");
    CHECK(custom_typing_path == "/cgi-bin/message/custom/typing");
}

TEST_CASE("outbound: template send body", "[wechat_outbound]") {
    template_message m;
    m.touser = openid;
    m.template_id = "TPL_abc";
    m.data = {{"thing1", "复诊提醒 \"张三\"", ""}, {"time2", "2026-03-01 09:00", "#173177"}};

    SECTION("all fields, in WxJava's order") {
        m.url = "https://example.com/visit?id=1";
        m.miniprogram = template_miniprogram{"wxmini0123456789", "index?foo=bar"};
        m.client_msg_id = "outbox-42";
        const auto d = parse(template_send_body(m));
        CHECK(keys(d) == std::vector<std::string>{"touser", "template_id", "client_msg_id", "url",
                                                  "miniprogram", "data"});
        CHECK(str(d, "touser") == openid);
        CHECK(str(d, "template_id") == "TPL_abc");
        CHECK(str(d, "client_msg_id") == "outbox-42");
        CHECK(str(d, "url") == m.url);
        CHECK(str(obj(d, "miniprogram"), "appid") == "wxmini0123456789");
        CHECK(str(obj(d, "miniprogram"), "pagepath") == "index?foo=bar");
        const auto& data = obj(d, "data");
        CHECK(keys(data) == std::vector<std::string>{"thing1", "time2"});
        CHECK(keys(obj(data, "thing1")) == std::vector<std::string>{"value"});
        CHECK(str(obj(data, "thing1"), "value") == "复诊提醒 \"张三\"");
        CHECK(str(obj(data, "time2"), "value") == "2026-03-01 09:00");
        CHECK(str(obj(data, "time2"), "color") == "#173177");
    }
    SECTION("optional fields are omitted, not empty") {
        const auto d = parse(template_send_body(m));
        CHECK(keys(d) == std::vector<std::string>{"touser", "template_id", "data"});
    }
    SECTION("no keywords: an empty data object") {
        m.data.clear();
        const auto d = parse(template_send_body(m));
        CHECK(obj(d, "data").ObjectEmpty());
    }
    CHECK(template_send_path == "/cgi-bin/message/template/send");
}

TEST_CASE("outbound: permanent string-scene QR body", "[wechat_outbound]") {
    auto body = permanent_qr_body("clinic-7:campaign");
    REQUIRE(body.has_value());
    CHECK(*body == R"({"action_name":"QR_LIMIT_STR_SCENE",)"
                   R"("action_info":{"scene":{"scene_str":"clinic-7:campaign"}}})");
    const auto d = parse(*body);
    CHECK_FALSE(d.HasMember("expire_seconds"));
    CHECK(qrcode_create_path == "/cgi-bin/qrcode/create");

    struct row {
        const char* name;
        std::string scene;
        bool ok;
    };
    auto x = GENERATE(values<row>({
        {"one byte", "a", true},
        {"64 bytes", std::string(64, 'x'), true},
        {"Chinese, 63 bytes", repeat("诊", 21), true},
        {"quotes are fine", R"(a"b\c)", true},
        {"empty", "", false},
        {"65 bytes", std::string(65, 'x'), false},
        {"Chinese, 66 bytes", repeat("诊", 22), false},
        {"newline", "a\nb", false},
        {"DEL", "a\x7F", false},
        {"invalid UTF-8", "a\xFF", false},
    }));
    CAPTURE(x.name);
    CHECK(valid_qr_scene_str(x.scene) == x.ok);
    const auto r = permanent_qr_body(x.scene);
    CHECK(r.has_value() == x.ok);
    if (r) {
        CHECK(str(obj(obj(parse(*r), "action_info"), "scene"), "scene_str") == x.scene);
    } else {
        CHECK(r.error() == scrm::errc::bad_input);
    }
}

TEST_CASE("outbound: image sniffing by magic bytes", "[wechat_outbound]") {
    CHECK(sniff_image(std::string("\xFF\xD8\xFF\xE0", 4)) == image_format::jpeg);
    CHECK(sniff_image(std::string("\x89PNG\r\n\x1A\n", 8)) == image_format::png);
    CHECK(sniff_image(std::string("\x89PNG\r\n\x1A", 7)) == image_format::unknown);
    CHECK(sniff_image(std::string("\xFF\xD8", 2)) == image_format::unknown);
    CHECK(sniff_image("GIF89a") == image_format::unknown);
    CHECK(sniff_image("") == image_format::unknown);
    CHECK(std::string(mime_type(image_format::jpeg)) == "image/jpeg");
    CHECK(std::string(mime_type(image_format::png)) == "image/png");
}

TEST_CASE("outbound: upload filenames are safe and carry the format's extension",
          "[wechat_outbound]") {
    struct row {
        const char* name;
        std::string requested;
        image_format format;
        std::string expected;
    };
    auto x = GENERATE(values<row>({
        {"kept", "photo.jpg", image_format::jpeg, "photo.jpg"},
        {"jpeg kept", "Photo.JPEG", image_format::jpeg, "Photo.JPEG"},
        {"png kept", "a-b_c.1.PNG", image_format::png, "a-b_c.1.PNG"},
        {"wrong extension", "photo.jpg", image_format::png, "photo.jpg.png"},
        {"no extension", "scan", image_format::jpeg, "scan.jpg"},
        {"empty", "", image_format::png, "image.png"},
        {"directory removed", "/tmp/../x/y.png", image_format::png, "y.png"},
        {"Windows directory removed", "C:\\Users\\a\\y.png", image_format::png, "y.png"},
        {"header-breaking bytes", "a\"b\r\nc;d.jpg", image_format::jpeg, "a_b__c_d.jpg"},
        {"non-ASCII", "图.png", image_format::png, "___.png"},
        {"too long, extension kept", std::string(100, 'a') + ".jpeg", image_format::jpeg,
         std::string(59, 'a') + ".jpeg"},
        {"too long, extension added", std::string(100, 'a'), image_format::png,
         std::string(60, 'a') + ".png"},
    }));
    CAPTURE(x.name);
    CHECK(upload_filename(x.requested, x.format) == x.expected);
}

TEST_CASE("outbound: a multipart body with one file part", "[wechat_outbound]") {
    const std::string bytes("\xFF\xD8\xFF\0\r\n--", 8);
    CHECK(multipart_file_body("B0", "media", "a.jpg", "image/jpeg", bytes) ==
          "--B0\r\nContent-Disposition: form-data; name=\"media\"; filename=\"a.jpg\"\r\n"
          "Content-Type: image/jpeg\r\n\r\n" +
              bytes + "\r\n--B0--\r\n");
    CHECK(boundary_fits("scrm-123-4", bytes));
    CHECK_FALSE(boundary_fits("", bytes));
    CHECK_FALSE(boundary_fits(std::string(71, 'a'), ""));
    CHECK_FALSE(boundary_fits("a b", ""));
    CHECK_FALSE(boundary_fits("a\"b", ""));
    CHECK_FALSE(boundary_fits("xyz", "..xyz.."));
    CHECK(media_upload_path == "/cgi-bin/media/upload");
}

// Passive replies (wechat-protocol.md §3.2): exact XML for text, image and news, the swapped
// addresses, caller-given CreateTime, "]]>" escaping and sanitising; and the text helpers
// (sanitize_text, append_cdata) with a seeded property test that any content parses back.
#include <catch2/catch.hpp>

#include <random>

#include "scrm/wechat/parse.hpp"
#include "scrm/wechat/reply.hpp"
#include "scrm/wechat/xml_text.hpp"

using namespace scrm::wechat;

namespace {

const std::string fffd(replacement_char);

inbound_message from_fan() {
    inbound_message m;
    m.to_user_name = "gh_10f6c3c3ac5a";
    m.from_user_name = "oFan123";
    m.create_time = 1409735668;
    m.msg_type = "text";
    m.msg_id = 1;
    m.body = text_message{"hello", ""};
    return m;
}

// The Content a text reply carries, read back with the inbound parser (a reply has no MsgId,
// which the parser requires of a text message, so one is added).
std::string content_of(const std::string& reply) {
    const auto body = reply.substr(0, reply.size() - 6) + "<MsgId>1</MsgId></xml>";
    const auto m = parse_message(body);
    REQUIRE(m.has_value());
    const auto* t = std::get_if<text_message>(&m->body);
    REQUIRE(t != nullptr);
    return t->content;
}

}  // namespace

TEST_CASE("reply builders produce the exact §3.2 XML") {
    struct row {
        std::string name;
        std::string actual;
        std::string expected;
    };
    const auto in = from_fan();
    const auto r = GENERATE_COPY(values<row>({
        {"text", text_reply(in, "您好，已为您预约", 1700000001),
         "<xml><ToUserName><![CDATA[oFan123]]></"
         "ToUserName><FromUserName><![CDATA[gh_10f6c3c3ac5a]]>"
         "</FromUserName><CreateTime>1700000001</CreateTime><MsgType><![CDATA[text]]></MsgType>"
         "<Content><![CDATA[您好，已为您预约]]></Content></xml>"},
        {"text with newlines", text_reply(in, "line 1\nline 2", 5),
         "<xml><ToUserName><![CDATA[oFan123]]></"
         "ToUserName><FromUserName><![CDATA[gh_10f6c3c3ac5a]]>"
         "</FromUserName><CreateTime>5</CreateTime><MsgType><![CDATA[text]]></MsgType>"
         "<Content><![CDATA[line 1\nline 2]]></Content></xml>"},
        {"text containing ]]>", text_reply(in, "a]]>b", 5),
         "<xml><ToUserName><![CDATA[oFan123]]></"
         "ToUserName><FromUserName><![CDATA[gh_10f6c3c3ac5a]]>"
         "</FromUserName><CreateTime>5</CreateTime><MsgType><![CDATA[text]]></MsgType>"
         "<Content><![CDATA[a]]]]><![CDATA[>b]]></Content></xml>"},
        {"image", image_reply(in, "MEDIA_ID", 1700000001),
         "<xml><ToUserName><![CDATA[oFan123]]></"
         "ToUserName><FromUserName><![CDATA[gh_10f6c3c3ac5a]]>"
         "</FromUserName><CreateTime>1700000001</CreateTime><MsgType><![CDATA[image]]></MsgType>"
         "<Image><MediaId><![CDATA[MEDIA_ID]]></MediaId></Image></xml>"},
        {"news with one article",
         news_reply(in, {"评价邀请", "请为本次就诊打分", "https://x/p.jpg", "https://x/e?id=1&t=2"},
                    1700000001),
         "<xml><ToUserName><![CDATA[oFan123]]></"
         "ToUserName><FromUserName><![CDATA[gh_10f6c3c3ac5a]]>"
         "</FromUserName><CreateTime>1700000001</CreateTime><MsgType><![CDATA[news]]></MsgType>"
         "<ArticleCount>1</ArticleCount><Articles><item><Title><![CDATA[评价邀请]]></Title>"
         "<Description><![CDATA[请为本次就诊打分]]></Description><PicUrl><![CDATA[https://x/"
         "p.jpg]]>"
         "</PicUrl><Url><![CDATA[https://x/e?id=1&t=2]]></Url></item></Articles></xml>"},
        {"news with empty optional fields", news_reply(in, {"T", "", "", ""}, 0),
         "<xml><ToUserName><![CDATA[oFan123]]></"
         "ToUserName><FromUserName><![CDATA[gh_10f6c3c3ac5a]]>"
         "</FromUserName><CreateTime>0</CreateTime><MsgType><![CDATA[news]]></MsgType>"
         "<ArticleCount>1</ArticleCount><Articles><item><Title><![CDATA[T]]></Title>"
         "<Description><![CDATA[]]></Description><PicUrl><![CDATA[]]></PicUrl><Url><![CDATA[]]>"
         "</Url></item></Articles></xml>"},
    }));
    CAPTURE(r.name);
    CHECK(r.actual == r.expected);
}

TEST_CASE("append_cdata splits every CDATA terminator and sanitises") {
    struct row {
        std::string name;
        std::string input;
        std::string expected;
    };
    const auto r = GENERATE(values<row>({
        {"plain", "abc", "<![CDATA[abc]]>"},
        {"empty", "", "<![CDATA[]]>"},
        {"one ]]>", "]]>", "<![CDATA[]]]]><![CDATA[>]]>"},
        {"two in a row", "]]>]]>", "<![CDATA[]]]]><![CDATA[>]]]]><![CDATA[>]]>"},
        {"extra brackets", "]]]>", "<![CDATA[]]]]]><![CDATA[>]]>"},
        {"ends with ]]", "a]]", "<![CDATA[a]]]]>"},
        {"control character", "a\x01z", "<![CDATA[a" + fffd + "z]]>"},
        {"invalid UTF-8", "a\xffz", "<![CDATA[a" + fffd + "z]]>"},
    }));
    CAPTURE(r.name);
    std::string out;
    append_cdata(out, r.input);
    CHECK(out == r.expected);
}

TEST_CASE("sanitize_text leaves valid text alone and replaces the rest one for one") {
    struct row {
        std::string name;
        std::string input;
        std::string expected;
    };
    const auto r = GENERATE(values<row>({
        {"ASCII", "hello", "hello"},
        {"CJK and emoji with ZWJ", "护士👩‍⚕️", "护士👩‍⚕️"},
        {"all legal C0", "\t\n\r", "\t\n\r"},
        {"each illegal C0 once", std::string("\0\x1f", 2), fffd + fffd},
        {"truncated 4-byte sequence at the end", "a\xF0\x9F\x98", "a" + fffd},
        {"truncated then ASCII",
         "\xF0\x9F"
         "a",
         fffd + "a"},
        {"overlong 3-byte", "\xE0\x80\xAF", fffd + fffd + fffd},
        {"F5 and above never start a sequence", "\xF5\x80", fffd + fffd},
        {"U+FFFE", "\xEF\xBF\xBE", fffd},
        {"U+FFFD itself is fine", fffd, fffd},
        {"largest code point U+10FFFF", "\xF4\x8F\xBF\xBF", "\xF4\x8F\xBF\xBF"},
    }));
    CAPTURE(r.name);
    CHECK(sanitize_text(r.input) == r.expected);
    CHECK(is_clean_text(sanitize_text(r.input)));
}

TEST_CASE("property: any content survives a text reply and parses back sanitised") {
    std::mt19937_64 gen(7);
    static constexpr std::string_view pieces[] = {
        "a",    " ",         "]",    "]]",   "]]>",  ">",        "<",
        "&",    "<![CDATA[", "\n",   "\r\n", "中文", "😀",        "\x00",
        "\x01", "\x1d",      "\x7f", "\xff", "\xc0", "\xe4\xb8", "\xed\xa0\x80",
        "&#0;",
    };
    std::uniform_int_distribution<std::size_t> pick(0, std::size(pieces) - 1);
    std::uniform_int_distribution<int> length(0, 200);
    const auto in = from_fan();
    int failures = 0;
    for (int i = 0; i < 300; ++i) {
        std::string content;
        for (int n = length(gen); n > 0; --n) {
            const auto p = pieces[pick(gen)];
            content.append(p.empty() ? std::string_view("\0", 1) : p);
        }
        // XML normalises CR LF (and a lone CR) to LF; everything else comes back exactly.
        std::string expected = sanitize_text(content);
        for (std::size_t at; (at = expected.find("\r\n")) != std::string::npos;)
            expected.erase(at, 1);
        for (auto& c : expected) {
            if (c == '\r') c = '\n';
        }
        const auto actual = content_of(text_reply(in, content, 1));
        if (actual != expected) {
            ++failures;
            CAPTURE(i, content);
            CHECK(actual == expected);
        }
    }
    CHECK(failures == 0);
}

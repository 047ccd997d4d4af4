// parse_message / parse_envelope: every message type and event of wechat-protocol.md §2 into typed
// values, MsgId vs MsgID, numbers beyond 2^53, hostile bytes (control characters, invalid UTF-8,
// character references), DOCTYPE/ENTITY refusal, malformed documents, the identity key, and the
// safe-mode envelope.
#include <catch2/catch.hpp>

#include <sstream>

#include "scrm/wechat/error.hpp"
#include "scrm/wechat/parse.hpp"
#include "scrm/wechat/xml_text.hpp"

using namespace scrm::wechat;

namespace {

constexpr std::int64_t t0 = 1700000000;
const std::string fffd(replacement_char);

// A body from the common header plus `extra` elements.
std::string xml(std::string_view msg_type, std::string_view extra) {
    return "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>"
           "<FromUserName><![CDATA[oFan]]></FromUserName><CreateTime>1700000000</CreateTime>"
           "<MsgType><![CDATA[" +
           std::string(msg_type) + "]]></MsgType>" + std::string(extra) + "</xml>";
}

std::string event_xml(std::string_view event, std::string_view key, std::string_view extra) {
    return xml("event", "<Event><![CDATA[" + std::string(event) + "]]></Event><EventKey><![CDATA[" +
                            std::string(key) + "]]></EventKey>" + std::string(extra));
}

inbound_message message(std::string msg_type, message_body body,
                        std::optional<std::uint64_t> msg_id = 42) {
    inbound_message m;
    m.to_user_name = "gh_10f6c3c3ac5a";
    m.from_user_name = "oFan";
    m.create_time = t0;
    m.msg_type = std::move(msg_type);
    m.msg_id = msg_id;
    m.body = std::move(body);
    return m;
}

inbound_message event(std::string name, std::string key, message_body body) {
    auto m = message("event", std::move(body), std::nullopt);
    m.event = std::move(name);
    m.event_key = std::move(key);
    return m;
}

using parsed = scrm::result<inbound_message>;

parsed fails(wechat_errc e) {
    return make_error_code(e);
}

template <class T>
std::string describe(const scrm::result<T>& r) {
    std::ostringstream os;
    if (r) {
        os << *r;
    } else {
        os << "error: " << r.error().message();
    }
    return os.str();
}

struct row {
    std::string name;
    std::string input;
    parsed expected;
};

void check_rows(const row& r) {
    CAPTURE(r.name);
    CHECK(describe(parse_message(r.input)) == describe(r.expected));
}

}  // namespace

TEST_CASE("KAT-A's decrypted message parses, with a MsgId beyond 2^53") {
    const std::string kat_a =
        "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n<FromUserName><![CDATA["
        "oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n<CreateTime>1409735668</CreateTime>\n"
        "<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[abcdteT]]></Content>\n<MsgId>"
        "6054768590064713728</MsgId>\n</xml>";
    inbound_message expected;
    expected.to_user_name = "gh_10f6c3c3ac5a";
    expected.from_user_name = "oyORnuP8q7ou2gfYjqLzSIWZf0rs";
    expected.create_time = 1409735668;
    expected.msg_type = "text";
    expected.msg_id = 6054768590064713728ULL;
    expected.body = text_message{"abcdteT", ""};
    CHECK(describe(parse_message(kat_a)) == describe(parsed(expected)));
}

TEST_CASE("ordinary messages of every type parse into their typed bodies") {
    auto with_article = message("text", text_message{"hi", ""});
    with_article.msg_data_id = "2247483651";
    with_article.idx = 1;
    const auto r = GENERATE_COPY(values<row>({
        {"text", xml("text", "<Content><![CDATA[你好，医生 😀]]></Content><MsgId>42</MsgId>"),
         message("text", text_message{"你好，医生 😀", ""})},
        {"text from a msgmenu tap (lowercase bizmsgmenuid)",
         xml("text",
             "<Content><![CDATA[满意]]></Content><MsgId>42</MsgId>"
             "<bizmsgmenuid>101</bizmsgmenuid>"),
         message("text", text_message{"满意", "101"})},
        {"text from an article (MsgDataId, Idx)",
         xml("text",
             "<Content><![CDATA[hi]]></Content><MsgId>42</MsgId>"
             "<MsgDataId>2247483651</MsgDataId><Idx>1</Idx>"),
         with_article},
        {"image",
         xml("image",
             "<PicUrl><![CDATA[http://mmbiz.qpic.cn/x]]></PicUrl><MsgId>42</MsgId>"
             "<MediaId><![CDATA[media_1]]></MediaId>"),
         message("image", image_message{"http://mmbiz.qpic.cn/x", "media_1"})},
        {"voice with recognition and 16 kHz media",
         xml("voice",
             "<MediaId><![CDATA[m]]></MediaId><Format><![CDATA[amr]]></Format>"
             "<Recognition><![CDATA[牙疼]]></Recognition><MsgId>42</MsgId>"
             "<MediaId16K><![CDATA[m16]]></MediaId16K>"),
         message("voice", voice_message{"m", "amr", "牙疼", "m16"})},
        {"voice, Recognition empty",
         xml("voice",
             "<MediaId><![CDATA[m]]></MediaId><Format><![CDATA[speex]]></Format>"
             "<Recognition><![CDATA[]]></Recognition><MsgId>42</MsgId>"),
         message("voice", voice_message{"m", "speex", "", ""})},
        {"video",
         xml("video",
             "<MediaId><![CDATA[v]]></MediaId><ThumbMediaId><![CDATA[t]]></ThumbMediaId>"
             "<MsgId>42</MsgId>"),
         message("video", video_message{"v", "t"})},
        {"shortvideo",
         xml("shortvideo",
             "<MediaId><![CDATA[v]]></MediaId>"
             "<ThumbMediaId><![CDATA[t]]></ThumbMediaId><MsgId>42</MsgId>"),
         message("shortvideo", short_video_message{"v", "t"})},
        {"location",
         xml("location",
             "<Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y>"
             "<Scale>20</Scale><Label><![CDATA[广州市天河区]]></Label><MsgId>42</MsgId>"),
         message("location", location_message{23.134521, 113.358803, 20, "广州市天河区"})},
        {"link",
         xml("link",
             "<Title><![CDATA[T]]></Title><Description><![CDATA[D]]></Description>"
             "<Url><![CDATA[https://example.com/a?b=1&c=2]]></Url><MsgId>42</MsgId>"),
         message("link", link_message{"T", "D", "https://example.com/a?b=1&c=2"})},
        {"unknown type with MsgId", xml("miniprogrampage", "<Title>x</Title><MsgId>42</MsgId>"),
         message("miniprogrampage", other_message{})},
        {"unknown type without MsgId", xml("file", "<Title>x</Title>"),
         message("file", other_message{}, std::nullopt)},
        {"numbers inside CDATA and padded with whitespace",
         "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName>oFan"
         "</FromUserName><CreateTime><![CDATA[1700000000]]></CreateTime><MsgType> text "
         "</MsgType><Content>hi</Content><MsgId>\n 42 \n</MsgId></xml>",
         message("text", text_message{"hi", ""})},
        {"the largest MsgId",
         xml("text", "<Content>x</Content><MsgId>18446744073709551615</MsgId>"),
         message("text", text_message{"x", ""}, 18446744073709551615ULL)},
        {"MsgType matched case-insensitively, kept as sent",
         xml("Text", "<Content>x</Content><MsgId>42</MsgId>"),
         message("Text", text_message{"x", ""})},
        {"XML declaration, pretty-printed, unknown elements ignored",
         "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xml>\n  "
         "<ToUserName><![CDATA[gh_10f6c3c3ac5a]]>"
         "</ToUserName>\n  <FromUserName><![CDATA[oFan]]></FromUserName>\n  <CreateTime>1700000000"
         "</CreateTime>\n  <MsgType><![CDATA[text]]></MsgType>\n  "
         "<Content><![CDATA[x]]></Content>\n"
         "  <Unknown><Deep>1</Deep></Unknown>\n  <MsgId>42</MsgId>\n</xml>\n",
         message("text", text_message{"x", ""})},
        {"first of a repeated field wins",
         xml("text", "<Content>first</Content><Content>second</Content><MsgId>42</MsgId>"),
         message("text", text_message{"first", ""})},
    }));
    check_rows(r);
}

TEST_CASE("events of every kind parse into their typed bodies") {
    const auto r = GENERATE(values<row>({
        {"subscribe, plain follow", event_xml("subscribe", "", ""),
         event("subscribe", "", subscribe_event{std::nullopt, ""})},
        {"subscribe, plain follow without EventKey", xml("event", "<Event>subscribe</Event>"),
         event("subscribe", "", subscribe_event{std::nullopt, ""})},
        {"subscribe after scanning a QR code: qrscene_ stripped",
         event_xml("subscribe", "qrscene_123123", "<Ticket><![CDATA[TICKET]]></Ticket>"),
         event("subscribe", "qrscene_123123", subscribe_event{"123123", "TICKET"})},
        {"subscribe via a store's permanent QR code (DESIGN §4)",
         event_xml("subscribe", "qrscene_store_12", "<Ticket><![CDATA[T]]></Ticket>"),
         event("subscribe", "qrscene_store_12", subscribe_event{"store_12", "T"})},
        {"subscribe with an unprefixed EventKey has no scene",
         event_xml("subscribe", "last_trade_no_4200", ""),
         event("subscribe", "last_trade_no_4200", subscribe_event{std::nullopt, ""})},
        {"subscribe with the bare prefix: empty scene", event_xml("subscribe", "qrscene_", ""),
         event("subscribe", "qrscene_", subscribe_event{"", ""})},
        {"unsubscribe", event_xml("unsubscribe", "", ""),
         event("unsubscribe", "", unsubscribe_event{})},
        {"SCAN: the scene without prefix",
         event_xml("SCAN", "123123", "<Ticket><![CDATA[TICKET]]></Ticket>"),
         event("SCAN", "123123", scan_event{"123123", "TICKET"})},
        {"SCAN with a scene_str", event_xml("SCAN", "store_7", "<Ticket>T</Ticket>"),
         event("SCAN", "store_7", scan_event{"store_7", "T"})},
        {"LOCATION",
         xml("event",
             "<Event><![CDATA[LOCATION]]></Event><Latitude>23.137466</Latitude>"
             "<Longitude>113.352425</Longitude><Precision>119.385040</Precision>"),
         event("LOCATION", "", location_event{23.137466, 113.352425, 119.385040})},
        {"CLICK", event_xml("CLICK", "BOOK_VISIT", ""),
         event("CLICK", "BOOK_VISIT", click_event{"BOOK_VISIT"})},
        {"VIEW with MenuId",
         event_xml("VIEW", "https://clinic.example/book", "<MenuId>208379533</MenuId>"),
         event("VIEW", "https://clinic.example/book",
               view_event{"https://clinic.example/book", "208379533"})},
        {"event names matched case-insensitively (Event kept as sent)", event_xml("click", "K", ""),
         event("click", "K", click_event{"K"})},
        {"scancode_push",
         event_xml("scancode_push", "rselfmenu_0_1",
                   "<ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType>"
                   "<ScanResult><![CDATA[1]]></ScanResult></ScanCodeInfo>"),
         event("scancode_push", "rselfmenu_0_1",
               scancode_event{false, "rselfmenu_0_1", "qrcode", "1"})},
        {"scancode_waitmsg",
         event_xml("scancode_waitmsg", "k",
                   "<ScanCodeInfo><ScanType>barcode</ScanType><ScanResult>x</ScanResult>"
                   "</ScanCodeInfo>"),
         event("scancode_waitmsg", "k", scancode_event{true, "k", "barcode", "x"})},
        {"pic_sysphoto with two pictures",
         event_xml("pic_sysphoto", "k",
                   "<SendPicsInfo><Count>2</Count><PicList><item><PicMd5Sum><![CDATA[aaa]]>"
                   "</PicMd5Sum></item><item><PicMd5Sum><![CDATA[bbb]]></PicMd5Sum></item>"
                   "</PicList></SendPicsInfo>"),
         event("pic_sysphoto", "k", pic_event{pic_source::sysphoto, "k", 2, {"aaa", "bbb"}})},
        {"pic_photo_or_album",
         event_xml("pic_photo_or_album", "k",
                   "<SendPicsInfo><Count>1</Count><PicList><item><PicMd5Sum>c</PicMd5Sum></item>"
                   "</PicList></SendPicsInfo>"),
         event("pic_photo_or_album", "k", pic_event{pic_source::photo_or_album, "k", 1, {"c"}})},
        {"pic_weixin without SendPicsInfo", event_xml("pic_weixin", "k", ""),
         event("pic_weixin", "k", pic_event{pic_source::weixin, "k", 0, {}})},
        {"location_select",
         event_xml(
             "location_select", "k",
             "<SendLocationInfo><Location_X><![CDATA[23]]></Location_X><Location_Y>"
             "<![CDATA[113]]></Location_Y><Scale><![CDATA[15]]></Scale><Label><![CDATA["
             " 广州市海珠区]]></Label><Poiname><![CDATA[诊所]]></Poiname></SendLocationInfo>"),
         event("location_select", "k",
               location_select_event{"k", 23, 113, 15, " 广州市海珠区", "诊所"})},
        {"view_miniprogram", event_xml("view_miniprogram", "pages/index", "<MenuId>1</MenuId>"),
         event("view_miniprogram", "pages/index", view_miniprogram_event{"pages/index", "1"})},
        {"TEMPLATESENDJOBFINISH success",
         xml("event",
             "<Event>TEMPLATESENDJOBFINISH</Event><MsgID>200163836</MsgID>"
             "<Status><![CDATA[success]]></Status>"),
         event("TEMPLATESENDJOBFINISH", "", template_send_job_finish_event{200163836, "success"})},
        {"TEMPLATESENDJOBFINISH failed:user block (no space, kept verbatim)",
         xml("event",
             "<Event>TEMPLATESENDJOBFINISH</Event><MsgID>200163840</MsgID>"
             "<Status><![CDATA[failed:user block]]></Status>"),
         event("TEMPLATESENDJOBFINISH", "",
               template_send_job_finish_event{200163840, "failed:user block"})},
        {"TEMPLATESENDJOBFINISH failed: system failed (with a space)",
         xml("event",
             "<Event>TEMPLATESENDJOBFINISH</Event><MsgID>200163840</MsgID>"
             "<Status><![CDATA[failed: system failed]]></Status>"),
         event("TEMPLATESENDJOBFINISH", "",
               template_send_job_finish_event{200163840, "failed: system failed"})},
        {"MASSSENDJOBFINISH",
         xml("event",
             "<Event>MASSSENDJOBFINISH</Event><MsgID>1988</MsgID><Status><![CDATA["
             "sendsuccess]]></Status><TotalCount>100</TotalCount><FilterCount>80"
             "</FilterCount><SentCount>75</SentCount><ErrorCount>5</ErrorCount>"),
         event("MASSSENDJOBFINISH", "",
               mass_send_job_finish_event{1988, "sendsuccess", 100, 80, 75, 5})},
        {"kf_create_session",
         xml("event",
             "<Event>kf_create_session</Event>"
             "<KfAccount><![CDATA[test1@test]]></KfAccount>"),
         event("kf_create_session", "", kf_create_session_event{"test1@test"})},
        {"kf_close_session",
         xml("event",
             "<Event>kf_close_session</Event>"
             "<KfAccount><![CDATA[test1@test]]></KfAccount>"),
         event("kf_close_session", "", kf_close_session_event{"test1@test"})},
        {"kf_switch_session",
         xml("event",
             "<Event>kf_switch_session</Event><FromKfAccount>a@t</FromKfAccount>"
             "<ToKfAccount>b@t</ToKfAccount>"),
         event("kf_switch_session", "", kf_switch_session_event{"a@t", "b@t"})},
        {"unknown event", event_xml("user_get_card", "", "<CardId>c</CardId>"),
         event("user_get_card", "", other_event{})},
    }));
    check_rows(r);
}

TEST_CASE("MsgId and MsgID are different elements") {
    auto with_both =
        event("TEMPLATESENDJOBFINISH", "", template_send_job_finish_event{7, "success"});
    with_both.msg_id = 9;
    const auto r = GENERATE_COPY(values<row>({
        {"a text message carrying only <MsgID> has no MsgId",
         xml("text", "<Content>x</Content><MsgID>42</MsgID>"), fails(wechat_errc::missing_field)},
        {"a template job event carrying only <MsgId> has no MsgID",
         xml("event",
             "<Event>TEMPLATESENDJOBFINISH</Event><MsgId>7</MsgId><Status>success"
             "</Status>"),
         fails(wechat_errc::missing_field)},
        {"a mass job event without MsgID", xml("event", "<Event>MASSSENDJOBFINISH</Event>"),
         fails(wechat_errc::missing_field)},
        {"both present: each read into its own field",
         xml("event",
             "<Event>TEMPLATESENDJOBFINISH</Event><MsgId>9</MsgId><MsgID>7</MsgID>"
             "<Status>success</Status>"),
         with_both},
        {"<msgid> in lowercase is neither", xml("text", "<Content>x</Content><msgid>42</msgid>"),
         fails(wechat_errc::missing_field)},
    }));
    check_rows(r);
}

TEST_CASE("missing or malformed required fields are errors") {
    const auto r = GENERATE(values<row>({
        {"no ToUserName",
         "<xml><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType>"
         "<MsgId>1</MsgId></xml>",
         fails(wechat_errc::missing_field)},
        {"empty FromUserName",
         "<xml><ToUserName>g</ToUserName><FromUserName><![CDATA[]]></FromUserName><CreateTime>1"
         "</CreateTime><MsgType>text</MsgType><MsgId>1</MsgId></xml>",
         fails(wechat_errc::missing_field)},
        {"no CreateTime",
         "<xml><ToUserName>g</ToUserName><FromUserName>o</FromUserName><MsgType>text</MsgType>"
         "<MsgId>1</MsgId></xml>",
         fails(wechat_errc::missing_field)},
        {"no MsgType",
         "<xml><ToUserName>g</ToUserName><FromUserName>o</FromUserName><CreateTime>1"
         "</CreateTime></xml>",
         fails(wechat_errc::missing_field)},
        {"a known message type without MsgId", xml("image", "<MediaId>m</MediaId>"),
         fails(wechat_errc::missing_field)},
        {"an event without Event", xml("event", "<EventKey>k</EventKey>"),
         fails(wechat_errc::missing_field)},
        {"an event whose Event is blank", xml("event", "<Event>  </Event>"),
         fails(wechat_errc::missing_field)},
        {"CreateTime not a number",
         "<xml><ToUserName>g</ToUserName><FromUserName>o</FromUserName><CreateTime>soon"
         "</CreateTime><MsgType>text</MsgType><MsgId>1</MsgId></xml>",
         fails(wechat_errc::bad_field)},
        {"negative MsgId", xml("text", "<MsgId>-1</MsgId>"), fails(wechat_errc::bad_field)},
        {"MsgId of 2^64", xml("text", "<MsgId>18446744073709551616</MsgId>"),
         fails(wechat_errc::bad_field)},
        {"MsgId with a trailing letter", xml("text", "<MsgId>42a</MsgId>"),
         fails(wechat_errc::bad_field)},
        {"MsgId in hex", xml("text", "<MsgId>0x2a</MsgId>"), fails(wechat_errc::bad_field)},
        {"Location_X not a number",
         xml("location", "<Location_X>north</Location_X><MsgId>1</MsgId>"),
         fails(wechat_errc::bad_field)},
        {"Latitude nan", xml("event", "<Event>LOCATION</Event><Latitude>nan</Latitude>"),
         fails(wechat_errc::bad_field)},
        {"Precision inf", xml("event", "<Event>LOCATION</Event><Precision>inf</Precision>"),
         fails(wechat_errc::bad_field)},
        {"Scale 1e999 (out of range)",
         xml("location", "<Scale>99999999999999999999</Scale><MsgId>1</MsgId>"),
         fails(wechat_errc::bad_field)},
    }));
    check_rows(r);
}

TEST_CASE("malformed documents are bad_xml") {
    const auto r = GENERATE(values<row>({
        {"empty body", "", fails(wechat_errc::bad_xml)},
        {"the word success", "success", fails(wechat_errc::bad_xml)},
        {"JSON", R"({"ToUserName":"gh"})", fails(wechat_errc::bad_xml)},
        {"root is not <xml>", "<message><ToUserName>g</ToUserName></message>",
         fails(wechat_errc::bad_xml)},
        {"root <XML> in capitals", "<XML></XML>", fails(wechat_errc::bad_xml)},
        {"unclosed root", xml("text", "<Content>x</Content><MsgId>1</MsgId>").substr(0, 150),
         fails(wechat_errc::bad_xml)},
        {"CDATA section not finished (easywechat #989)",
         xml("text", "<MsgId>1</MsgId><Content><![CDATA[\xE4\xB8"), fails(wechat_errc::bad_xml)},
        {"mismatched tags", "<xml><a></b></xml>", fails(wechat_errc::bad_xml)},
        {"two roots", "<xml></xml><xml></xml>", fails(wechat_errc::bad_xml)},
        {"nested <xml><xml> (node-easywechat #13) is a structure without fields",
         "<xml><xml><ToUserName>g</ToUserName></xml></xml>", fails(wechat_errc::missing_field)},
    }));
    check_rows(r);
}

TEST_CASE("DOCTYPE and ENTITY declarations are refused before parsing") {
    const std::string text_body = xml("text", "<Content>x</Content><MsgId>42</MsgId>");
    const auto r = GENERATE_COPY(values<row>({
        {"external entity (XXE)",
         "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>" +
             xml("text", "<Content>&xxe;</Content><MsgId>42</MsgId>"),
         fails(wechat_errc::forbidden_dtd)},
        {"billion laughs",
         "<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]>" +
             xml("text", "<Content>&lol2;</Content><MsgId>42</MsgId>"),
         fails(wechat_errc::forbidden_dtd)},
        {"plain DOCTYPE", "<!DOCTYPE xml>" + text_body, fails(wechat_errc::forbidden_dtd)},
        {"lowercase doctype", "<!doctype xml>" + text_body, fails(wechat_errc::forbidden_dtd)},
        {"a stray ENTITY declaration", "<!ENTITY a \"b\">" + text_body,
         fails(wechat_errc::forbidden_dtd)},
        {"DOCTYPE after the root element", text_body + "<!DOCTYPE xml>",
         fails(wechat_errc::forbidden_dtd)},
        {"DOCTYPE inside an element",
         xml("text", "<Content>a<!DOCTYPE x>b</Content><MsgId>42</MsgId>"),
         fails(wechat_errc::forbidden_dtd)},
        {"inside CDATA it is what a patient typed: accepted",
         xml("text", "<Content><![CDATA[<!DOCTYPE html><!ENTITY x>]]></Content><MsgId>42</MsgId>"),
         message("text", text_message{"<!DOCTYPE html><!ENTITY x>", ""})},
        {"inside a comment it is inert: accepted",
         xml("text", "<!-- <!DOCTYPE x> --><Content>x</Content><MsgId>42</MsgId>"),
         message("text", text_message{"x", ""})},
        {"a CDATA opener inside an attribute does not hide a DOCTYPE",
         xml("text", "<Content a=\"<![CDATA[\">x</Content><!DOCTYPE x><MsgId>42</MsgId>]]>"),
         fails(wechat_errc::forbidden_dtd)},
        {"a CDATA opener inside a processing instruction does not hide a DOCTYPE",
         xml("text", "<?pi <![CDATA[ ?><!DOCTYPE x><Content>x</Content><MsgId>42</MsgId>]]>"),
         fails(wechat_errc::forbidden_dtd)},
        {"an undeclared entity stays literal text",
         xml("text", "<Content>&xxe;</Content><MsgId>42</MsgId>"),
         message("text", text_message{"&xxe;", ""})},
    }));
    check_rows(r);
}

TEST_CASE("hostile and odd text: replaced with U+FFFD, never dropped, never fatal") {
    struct text_row {
        std::string name;
        std::string content_xml;  // what goes inside <Content>…</Content>
        std::string expected;     // the parsed content
    };
    const auto r = GENERATE_COPY(values<text_row>({
        {"plain Chinese and emoji", "<![CDATA[牙齿 🦷 ok]]>", "牙齿 🦷 ok"},
        {"U+0002 (silenceper #750)", "<![CDATA[a\x02z]]>", "a" + fffd + "z"},
        {"U+001D (WeRoBot #420)", "<![CDATA[a\x1dz]]>", "a" + fffd + "z"},
        {"NUL does not cut the text short", std::string("<![CDATA[a\0z]]>", 15), "a" + fffd + "z"},
        {"TAB, LF, CR are legal (CRLF normalised to LF as XML requires)",
         "<![CDATA[a\tb\nc\r\nd]]>", "a\tb\nc\nd"},
        {"DEL and C1 controls are legal XML 1.0", "<![CDATA[a\x7f\xc2\x85z]]>", "a\x7f\xc2\x85z"},
        {"truncated multibyte sequence: one U+FFFD", "<![CDATA[a\xE4\xB8z]]>", "a" + fffd + "z"},
        {"lone continuation byte", "<![CDATA[a\x80z]]>", "a" + fffd + "z"},
        {"0xFF 0xFE: two U+FFFD", "<![CDATA[\xff\xfe]]>", fffd + fffd},
        {"overlong '/' (C0 AF): two U+FFFD", "<![CDATA[\xC0\xAF]]>", fffd + fffd},
        {"UTF-8-encoded surrogate: three U+FFFD", "<![CDATA[\xED\xA0\x80]]>", fffd + fffd + fffd},
        {"above U+10FFFF (F4 90 80 80)", "<![CDATA[\xF4\x90\x80\x80]]>", fffd + fffd + fffd + fffd},
        {"U+FFFF is not an XML character", "<![CDATA[a\xEF\xBF\xBFz]]>", "a" + fffd + "z"},
        {"nested markup inside CDATA is text", "<![CDATA[<b>hi</b>]]>", "<b>hi</b>"},
        {"escaped markup outside CDATA", "a &lt;b&gt; &amp; &quot;c&quot; &apos;",
         "a <b> & \"c\" '"},
        {"character references", "&#65;&#x42;&#x1F600;", "AB😀"},
        {"&#0; becomes U+FFFD, the rest is kept", "a&#0;z", "a" + fffd + "z"},
        {"&#x1D; becomes U+FFFD", "a&#x1D;z", "a" + fffd + "z"},
        {"a surrogate reference becomes U+FFFD", "&#xD800;", fffd},
        {"an out-of-range reference becomes U+FFFD", "&#99999999999999999999;", fffd},
        {"references inside CDATA are text", "<![CDATA[&#0;&amp;]]>", "&#0;&amp;"},
        {"a CDATA opener in an attribute does not stop &#0; being replaced",
         "<b a='<![CDATA['/>a&#0;z", "a" + fffd + "z"},
        {"a malformed reference stays text", "a&#xZZ;z", "a&#xZZ;z"},
        {"]]> split across two CDATA sections reads whole", "<![CDATA[a]]]]><![CDATA[>b]]>",
         "a]]>b"},
        {"whitespace-only content is kept", "   ", "   "},
        {"empty CDATA", "<![CDATA[]]>", ""},
    }));
    CAPTURE(r.name);
    const auto m =
        parse_message(xml("text", "<Content>" + r.content_xml + "</Content><MsgId>1</MsgId>"));
    CHECK(describe(m) == describe(parsed(message("text", text_message{r.expected, ""}, 1))));
}

TEST_CASE("hostile bytes in the markup itself do not crash the parser") {
    const auto r = GENERATE(values<row>({
        {"invalid UTF-8 in an element name",
         xml("text", "<Con\xfftent>x</Con\xfftent><MsgId>1</MsgId>"),
         message("text", text_message{"", ""}, 1)},
        {"NUL between elements: a stray U+FFFD, ignored like any text there",
         xml("text", std::string("<Content>x</Content>\0<MsgId>1</MsgId>", 37)),
         message("text", text_message{"x", ""}, 1)},
        {"UTF-8 byte order mark",
         "\xEF\xBB\xBF" + xml("text", "<Content>x</Content><MsgId>1</MsgId>"),
         message("text", text_message{"x", ""}, 1)},
    }));
    check_rows(r);
}

TEST_CASE("QR scenes: subscribe strips qrscene_, SCAN is raw, others have none") {
    struct scene_row {
        std::string name;
        std::string input;
        std::string expected;
    };
    const auto r = GENERATE(values<scene_row>({
        {"subscribe via QR", event_xml("subscribe", "qrscene_store_12", ""), "store_12"},
        {"plain subscribe", event_xml("subscribe", "", ""), "(none)"},
        {"SCAN", event_xml("SCAN", "store_12", ""), "store_12"},
        {"SCAN without EventKey", xml("event", "<Event>SCAN</Event>"), "(none)"},
        {"CLICK", event_xml("CLICK", "qrscene_1", ""), "(none)"},
    }));
    CAPTURE(r.name);
    const auto m = parse_message(r.input);
    REQUIRE(m.has_value());
    const auto scene = qr_scene(*m);
    CHECK((scene ? std::string(*scene) : std::string("(none)")) == r.expected);
}

TEST_CASE("identity keys follow §3.3 and DESIGN.md §4") {
    struct id_row {
        std::string name;
        std::string input;
        std::string expected;
    };
    const auto r = GENERATE(values<id_row>({
        {"message: MsgId + CreateTime + FromUserName",
         xml("text", "<Content>x</Content><MsgId>6054768590064713728</MsgId>"),
         "m|1700000000|6054768590064713728|oFan"},
        {"message without MsgId: its MsgType instead", xml("file", ""),
         "m|1700000000|-|4:file|oFan"},
        {"event: CreateTime + Event + EventKey + FromUserName",
         event_xml("subscribe", "qrscene_123123", "<Ticket>T</Ticket>"),
         "e|1700000000|-|9:subscribe|14:qrscene_123123|oFan"},
        {"event without EventKey", xml("event", "<Event>LOCATION</Event><Latitude>1</Latitude>"),
         "e|1700000000|-|8:LOCATION|0:|oFan"},
        {"TEMPLATESENDJOBFINISH adds MsgID",
         xml("event", "<Event>TEMPLATESENDJOBFINISH</Event><MsgID>200163836</MsgID>"),
         "e|1700000000|200163836|21:TEMPLATESENDJOBFINISH|0:|oFan"},
        {"MASSSENDJOBFINISH adds MsgID",
         xml("event", "<Event>MASSSENDJOBFINISH</Event><MsgID>5</MsgID>"),
         "e|1700000000|5|17:MASSSENDJOBFINISH|0:|oFan"},
        {"a separator inside EventKey stays unambiguous", event_xml("CLICK", "a|b|", ""),
         "e|1700000000|-|5:CLICK|4:a|b||oFan"},
        {"an ordinary message's MsgId is not part of an event's key",
         event_xml("CLICK", "k", "<MsgId>9</MsgId>"), "e|1700000000|-|5:CLICK|1:k|oFan"},
    }));
    CAPTURE(r.name);
    const auto m = parse_message(r.input);
    REQUIRE(m.has_value());
    CHECK(identity(*m).key() == r.expected);
}

TEST_CASE("identity: retries are equal, distinct deliveries are not") {
    const auto id = [](const std::string& body) {
        auto m = parse_message(body);
        REQUIRE(m.has_value());
        return identity(*m);
    };
    // A retry is byte-identical.
    CHECK(id(event_xml("unsubscribe", "", "")) == id(event_xml("unsubscribe", "", "")));
    // Same second, different menu keys (chanjarster #66): distinct.
    CHECK(id(event_xml("CLICK", "a", "")) != id(event_xml("CLICK", "b", "")));
    // Same second, different events: distinct.
    CHECK(id(event_xml("CLICK", "a", "")) != id(event_xml("VIEW", "a", "")));
    // Two template jobs finishing in the same second: distinct through MsgID.
    CHECK(id(xml("event", "<Event>TEMPLATESENDJOBFINISH</Event><MsgID>1</MsgID>")) !=
          id(xml("event", "<Event>TEMPLATESENDJOBFINISH</Event><MsgID>2</MsgID>")));
    // Same MsgId from two fans (WxJava #333): distinct.
    auto other_fan = xml("voice", "<MediaId>m</MediaId><MsgId>7</MsgId>");
    other_fan.replace(other_fan.find("oFan"), 4, "oTwo");
    CHECK(id(xml("voice", "<MediaId>m</MediaId><MsgId>7</MsgId>")) != id(other_fan));
}

TEST_CASE("the safe-mode envelope parses in safe and compatible mode") {
    struct env_row {
        std::string name;
        std::string input;
        scrm::result<encrypted_envelope> expected;
    };
    const auto r = GENERATE(values<env_row>({
        {"safe mode",
         "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><Encrypt><![CDATA[abc+/=]]>"
         "</Encrypt></xml>",
         encrypted_envelope{"gh_10f6c3c3ac5a", "abc+/="}},
        {"compatible mode: plaintext fields alongside are ignored",
         xml("text", "<Content>x</Content><MsgId>1</MsgId><Encrypt><![CDATA[QUJD]]></Encrypt>"),
         encrypted_envelope{"gh_10f6c3c3ac5a", "QUJD"}},
        {"Encrypt without CDATA, with surrounding whitespace kept exactly",
         "<xml><Encrypt> QUJD\n</Encrypt></xml>", encrypted_envelope{"", " QUJD\n"}},
        {"no Encrypt", xml("text", "<Content>x</Content><MsgId>1</MsgId>"),
         make_error_code(wechat_errc::missing_field)},
        {"empty Encrypt", "<xml><Encrypt><![CDATA[]]></Encrypt></xml>",
         make_error_code(wechat_errc::missing_field)},
        {"DOCTYPE", "<!DOCTYPE x><xml><Encrypt>QUJD</Encrypt></xml>",
         make_error_code(wechat_errc::forbidden_dtd)},
        {"not XML", "Encrypt=QUJD", make_error_code(wechat_errc::bad_xml)},
    }));
    CAPTURE(r.name);
    CHECK(describe(parse_envelope(r.input)) == describe(r.expected));
}

TEST_CASE("parsed messages print readably") {
    const auto m = parse_message(event_xml("subscribe", "qrscene_7", "<Ticket>T</Ticket>"));
    REQUIRE(m.has_value());
    std::ostringstream os;
    os << *m;
    CHECK(os.str() ==
          "inbound_message{to: \"gh_10f6c3c3ac5a\", from: \"oFan\", create_time: 1700000000, "
          "msg_type: \"event\", event: \"subscribe\", event_key: \"qrscene_7\", "
          "body: subscribe{qr_scene: \"7\", ticket: \"T\"}}");
}

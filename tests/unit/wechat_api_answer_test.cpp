// Outbound API answers (wechat-protocol.md §5.2, §5.4, §6, §7) read into values: the fields we use,
// strict JSON types, defaults for what WeChat leaves out (an unfollowed fan), and the headers of a
// media download.
#include <catch2/catch.hpp>

#include "scrm/wechat/api_answer.hpp"

using namespace scrm::wechat;

TEST_CASE("api answer: media upload", "[wechat_api_answer]") {
    auto r = parse_media_upload_answer(
        R"({"type":"image","media_id":"MEDIA_abc","created_at":1672500000})");
    REQUIRE(r.has_value());
    CHECK(*r == "MEDIA_abc");
    auto thumb = parse_media_upload_answer(R"({"type":"thumb","thumb_media_id":"T1"})");
    REQUIRE(thumb.has_value());
    CHECK(*thumb == "T1");
    for (const char* bad : {"", "[]", R"({"type":"image"})", R"({"media_id":""})",
                            R"({"media_id":17})", "not json"}) {
        CAPTURE(bad);
        auto b = parse_media_upload_answer(bad);
        REQUIRE_FALSE(b.has_value());
        CHECK(b.error() == scrm::errc::protocol_error);
    }
}

TEST_CASE("api answer: template send msgid", "[wechat_api_answer]") {
    auto r = parse_template_send_answer(R"({"errcode":0,"errmsg":"ok","msgid":200228332})");
    REQUIRE(r.has_value());
    CHECK(*r == 200228332u);
    auto big = parse_template_send_answer(R"({"errcode":0,"msgid":18446744073709551615})");
    REQUIRE(big.has_value());
    CHECK(*big == 18446744073709551615u);
    for (const char* bad : {R"({"errcode":0,"errmsg":"ok"})", R"({"msgid":"200228332"})",
                            R"({"msgid":-1})", R"({"msgid":1.5})"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_template_send_answer(bad).has_value());
    }
}

TEST_CASE("api answer: QR code", "[wechat_api_answer]") {
    auto perm = parse_qr_answer(R"({"ticket":"gQH47joAAA==","url":"http://weixin.qq.com/q/abc"})");
    REQUIRE(perm.has_value());
    CHECK(*perm == qr_ticket{"gQH47joAAA==", "http://weixin.qq.com/q/abc", 0});
    auto temp = parse_qr_answer(
        R"({"ticket":"t+/=","expire_seconds":604800,"url":"http://weixin.qq.com/q/x"})");
    REQUIRE(temp.has_value());
    CHECK(temp->expire_seconds == 604800);
    for (const char* bad : {R"({"url":"http://weixin.qq.com/q/x"})", R"({"ticket":"t"})",
                            R"({"ticket":"t","url":"u","expire_seconds":"60"})"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_qr_answer(bad).has_value());
    }
}

TEST_CASE("api answer: user info", "[wechat_api_answer]") {
    SECTION("a follower, every field we read") {
        auto r = parse_user_info(
            R"({"subscribe":1,"openid":"o6_bmjrPTlm6_2sgVt7hMZOPfL2M","language":"zh_CN",)"
            R"("subscribe_time":1382694957,"unionid":"o6_bmasdasdsad6_2sgVt7hMZOPfL",)"
            R"("remark":"张三","groupid":0,"tagid_list":[128,2],)"
            R"("subscribe_scene":"ADD_SCENE_QR_CODE","qr_scene":98765,"qr_scene_str":"s7"})");
        REQUIRE(r.has_value());
        fan_info e;
        e.openid = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M";
        e.subscribed = true;
        e.subscribe_time = 1382694957;
        e.language = "zh_CN";
        e.remark = "张三";
        e.unionid = "o6_bmasdasdsad6_2sgVt7hMZOPfL";
        e.subscribe_scene = "ADD_SCENE_QR_CODE";
        e.qr_scene = 98765;
        e.qr_scene_str = "s7";
        e.tagid_list = {128, 2};
        CHECK(*r == e);
    }
    SECTION("unfollowed: almost nothing, defaults") {
        auto r = parse_user_info(R"({"subscribe":0,"openid":"oX","tagid_list":[]})");
        REQUIRE(r.has_value());
        CHECK_FALSE(r->subscribed);
        CHECK(r->openid == "oX");
        CHECK(r->subscribe_time == 0);
        CHECK(r->tagid_list.empty());
        CHECK(parse_user_info(R"({"subscribe":0,"openid":"oX","unionid":null})").has_value());
    }
    SECTION("refused") {
        for (const char* bad : {R"({"openid":"oX"})", R"({"subscribe":2,"openid":"oX"})",
                                R"({"subscribe":"1","openid":"oX"})", R"({"subscribe":1})",
                                R"({"subscribe":1,"openid":"oX","tagid_list":["2"]})",
                                R"({"subscribe":1,"openid":"oX","tagid_list":2})",
                                R"({"subscribe":1,"openid":"oX","remark":3})",
                                R"({"subscribe":1,"openid":"oX","subscribe_time":"x"})"}) {
            CAPTURE(bad);
            CHECK_FALSE(parse_user_info(bad).has_value());
        }
    }
}

TEST_CASE("api answer: a media download's headers", "[wechat_api_answer]") {
    CHECK(is_json_content_type("application/json; encoding=utf-8"));
    CHECK(is_json_content_type("Application/JSON"));
    CHECK(is_json_content_type("text/plain"));
    CHECK(is_json_content_type(" text/plain ; charset=utf-8"));
    CHECK_FALSE(is_json_content_type("image/jpeg"));
    CHECK_FALSE(is_json_content_type(""));
    CHECK_FALSE(is_json_content_type("application/jsonx"));

    struct row {
        const char* header;
        const char* expected;
    };
    auto x = GENERATE(values<row>({
        {R"(attachment; filename="MEDIA_ID.jpg")", "MEDIA_ID.jpg"},
        {"attachment; filename=a.png", "a.png"},
        {"attachment;filename=a.png; size=3", "a.png"},
        {R"(attachment; FileName="a;b \"c\".jpg"; x=1)", R"(a;b "c".jpg)"},
        {R"(attachment; filename="../../etc/x.jpg")", "x.jpg"},
        {"attachment; name=x", ""},
        {"attachment", ""},
        {"", ""},
    }));
    CAPTURE(x.header);
    CHECK(content_disposition_filename(x.header) == x.expected);
    CHECK(parse_video_url(R"({"video_url":"http://v.example/1.mp4"})") == "http://v.example/1.mp4");
    CHECK(parse_video_url(R"({"errcode":0})").empty());
}

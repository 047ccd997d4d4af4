// judge_attempt: what one send's outcome means for an outbox row — sent, retried with backoff
// (only failures known to have happened before WeChat acted), failed with a readable reason, or
// uncertain (never resent automatically).
#include <catch2/catch.hpp>

#include "scrm/wechat/outbox.hpp"

namespace wx = scrm::wechat;
using namespace std::chrono_literals;
using wx::api_error;
using wx::outbox_state;

namespace {

wx::api_result<std::string> failure(api_error kind, int errcode = 0, bool maybe = false) {
    wx::api_failure f;
    f.kind = kind;
    f.errcode = errcode;
    f.maybe_delivered = maybe;
    return f;
}

wx::outbox_options options() {
    wx::outbox_options o;
    o.backoff_base = 1000ms;
    o.backoff_cap = 5000ms;
    o.max_attempts = 5;
    return o;
}

}  // namespace

TEST_CASE("judge_attempt: an answer without errcode is sent", "[outbox]") {
    wx::api_result<std::string> ok = std::string(R"({"errcode":0})");
    auto v = wx::judge_attempt(ok, 1, options());
    CHECK(v.next == outbox_state::sent);
    CHECK(v.errcode == 0);
    CHECK(v.reason.empty());
}

TEST_CASE("judge_attempt: -1 and failures before the request left are retried with backoff",
          "[outbox]") {
    const auto o = options();
    for (auto kind : {api_error::system_busy, api_error::transport, api_error::minute_quota,
                      api_error::token_invalid, api_error::token_refresh_throttled,
                      api_error::http_status, api_error::storage}) {
        INFO(wx::to_string(kind));
        auto first = wx::judge_attempt(failure(kind, kind == api_error::system_busy ? -1 : 0), 1, o);
        CHECK(first.next == outbox_state::queued);
        CHECK(first.retry_after == 1000ms);
        CHECK(wx::judge_attempt(failure(kind), 2, o).retry_after == 2000ms);
        CHECK(wx::judge_attempt(failure(kind), 3, o).retry_after == 4000ms);
        CHECK(wx::judge_attempt(failure(kind), 4, o).retry_after == 5000ms);  // capped
        auto last = wx::judge_attempt(failure(kind), 5, o);
        CHECK(last.next == outbox_state::failed);
        CHECK(last.reason == std::string(wx::readable_reason(kind)) + "，已重试5次");
    }
    CHECK(wx::judge_attempt(failure(api_error::system_busy, -1), 1, o).errcode == -1);
    CHECK(wx::judge_attempt(failure(api_error::system_busy, -1), 1, o).reason == "微信系统繁忙");
}

TEST_CASE("judge_attempt: a failure after the request was written is uncertain, whatever its kind",
          "[outbox]") {
    for (auto kind : {api_error::transport, api_error::http_status, api_error::bad_response}) {
        auto v = wx::judge_attempt(failure(kind, 0, true), 1, options());
        CHECK(v.next == outbox_state::uncertain);
        CHECK(v.reason.find("发送结果未知") == 0);
    }
}

TEST_CASE("judge_attempt: WeChat's refusals fail at once with a reason in Chinese", "[outbox]") {
    struct row {
        api_error kind;
        int errcode;
        const char* reason;
    };
    for (const row& r : {row{api_error::window_closed, 45015, "粉丝48小时内没有互动，客服消息窗口已关闭"},
                         row{api_error::quota_used, 45047, "本次互动后可发送的客服消息条数已用完"},
                         row{api_error::not_following, 43004, "粉丝已取消关注公众号"},
                         row{api_error::invalid_openid, 40003, "粉丝的OpenID无效"},
                         row{api_error::ip_not_allowlisted, 40164, "服务器IP不在公众号的IP白名单中"},
                         row{api_error::unauthorized, 48001, "公众号没有该接口的权限"},
                         row{api_error::daily_quota, 45009, "接口今日调用次数已达上限"},
                         row{api_error::bad_credentials, 40125, "公众号AppID或AppSecret错误"},
                         row{api_error::other, 40999, "微信返回了错误（错误码 40999）"}}) {
        INFO(wx::to_string(r.kind));
        auto v = wx::judge_attempt(failure(r.kind, r.errcode), 1, options());
        CHECK(v.next == outbox_state::failed);
        CHECK(v.errcode == r.errcode);
        CHECK(v.reason == r.reason);
    }
}

TEST_CASE("outbox states round-trip through their names", "[outbox]") {
    for (auto s : {outbox_state::queued, outbox_state::sending, outbox_state::sent,
                   outbox_state::failed, outbox_state::uncertain}) {
        CHECK(wx::parse_outbox_state(wx::to_string(s)) == s);
    }
    CHECK_FALSE(wx::parse_outbox_state("delivered").has_value());
}

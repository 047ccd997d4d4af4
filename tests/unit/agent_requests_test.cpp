// The agent endpoints' pure input rules: tokens and their digests, where a token is found, cookies,
// the same-origin check, request bodies and conversation paths.
#include <catch2/catch.hpp>

#include <ostream>
#include <set>

#include "scrm/gateway/agent_requests.hpp"

using namespace scrm::gateway;

namespace scrm::gateway {
std::ostream& operator<<(std::ostream& os, const conversation_path& p) {
    return os << "{" << p.account_id << ", " << p.openid << ", " << p.action << "}";
}
std::ostream& operator<<(std::ostream& os, const presented_token& t) {
    return os << "{" << t.token << ", " << (t.source == token_source::cookie ? "cookie" : "bearer")
              << "}";
}
}  // namespace scrm::gateway

TEST_CASE("session tokens are 64 random hex digits, stored as their SHA-256") {
    std::set<std::string> seen;
    for (int i = 0; i < 100; ++i) {
        const auto t = new_session_token();
        REQUIRE(t.has_value());
        CHECK(token_well_formed(*t));
        seen.insert(*t);
    }
    CHECK(seen.size() == 100);
    // SHA-256("abc"), FIPS 180-2.
    CHECK(token_digest("abc") ==
          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK_FALSE(token_well_formed(std::string(63, 'a')));
    CHECK_FALSE(token_well_formed(std::string(64, 'A')));
    CHECK_FALSE(token_well_formed(std::string(63, 'a') + "g"));
}

TEST_CASE("the token comes from the bearer header, else from the session cookie") {
    struct row {
        std::string name, authorization, cookie;
        std::optional<presented_token> expected;
    };
    const std::string t(64, 'b');
    auto r = GENERATE_COPY(values<row>({
        {"bearer", "Bearer " + t, "", presented_token{t, token_source::bearer}},
        {"bearer any case, spaces", "  bearer   " + t + " ", "",
         presented_token{t, token_source::bearer}},
        {"bearer wins over the cookie", "Bearer x", "scrm_agent=" + t,
         presented_token{"x", token_source::bearer}},
        {"cookie among others", "", "a=1; scrm_agent=" + t + "; b=2",
         presented_token{t, token_source::cookie}},
        {"quoted cookie", "", "scrm_agent=\"" + t + "\"", presented_token{t, token_source::cookie}},
        {"basic auth is not a token", "Basic abc", "", std::nullopt},
        {"similar cookie name", "", "scrm_agent2=" + t, std::nullopt},
        {"nothing", "", "", std::nullopt},
    }));
    CAPTURE(r.name);
    CHECK(find_token(r.authorization, r.cookie) == r.expected);
}

TEST_CASE("the session cookie is HttpOnly and SameSite=Strict, cleared with Max-Age=0") {
    CHECK(session_cookie("abc", 43200, true) ==
          "scrm_agent=abc; Path=/api/; Max-Age=43200; HttpOnly; SameSite=Strict; Secure");
    CHECK(cleared_session_cookie(false) ==
          "scrm_agent=; Path=/api/; Max-Age=0; HttpOnly; SameSite=Strict");
}

TEST_CASE("a cookie-carrying request must come from the page's own origin") {
    struct row {
        std::string name, origin, host;
        bool expected;
    };
    auto r = GENERATE(values<row>({
        {"no Origin (not a browser)", "", "console.example", true},
        {"same host", "https://console.example", "console.example", true},
        {"same host and port", "http://127.0.0.1:8080", "127.0.0.1:8080", true},
        {"default port on one side", "https://console.example:443", "console.example", true},
        {"case-insensitive", "https://Console.Example", "console.example", true},
        {"other host", "https://evil.example", "console.example", false},
        {"other port", "http://127.0.0.1:9999", "127.0.0.1:8080", false},
        {"opaque origin", "null", "console.example", false},
        {"suffix is not the host", "https://console.example.evil", "console.example", false},
    }));
    CAPTURE(r.name);
    CHECK(same_origin(r.origin, r.host) == r.expected);
}

TEST_CASE("sign-in bodies name a clinic and an agent, by name or id, and a password") {
    auto ok = parse_sign_in(R"({"clinic":"示例诊所","name":"张顾问","password":"secret123"})");
    REQUIRE(ok.value.has_value());
    CHECK(ok.value->clinic == std::optional<std::string>("示例诊所"));
    CHECK(ok.value->name == std::optional<std::string>("张顾问"));
    CHECK(ok.value->password == "secret123");
    auto ids = parse_sign_in(R"({"clinic_id":3,"agent_id":"12","password":"p"})");
    REQUIRE(ids.value.has_value());
    CHECK(ids.value->clinic_id == std::optional<std::uint64_t>(3));
    CHECK(ids.value->agent_id == std::optional<std::uint64_t>(12));

    struct row {
        std::string name, body, problem;
    };
    auto r = GENERATE(values<row>({
        {"not JSON", "clinic=a", "请求格式不正确（需要 JSON 对象）"},
        {"an array", "[]", "请求格式不正确（需要 JSON 对象）"},
        {"no password", R"({"clinic":"a","name":"b"})", "请填写诊所、姓名和密码"},
        {"empty password", R"({"clinic":"a","name":"b","password":""})", "请填写诊所、姓名和密码"},
        {"no clinic", R"({"name":"b","password":"p"})", "请填写诊所、姓名和密码"},
        {"no agent", R"({"clinic":"a","password":"p"})", "请填写诊所、姓名和密码"},
        {"password a number", R"({"clinic":"a","name":"b","password":1})",
         "请求中的字段类型不正确"},
        {"bad id", R"({"clinic_id":-1,"name":"b","password":"p"})", "请求中的字段类型不正确"},
        {"id zero", R"({"clinic_id":"0","name":"b","password":"p"})", "请求中的字段类型不正确"},
    }));
    CAPTURE(r.name);
    const auto got = parse_sign_in(r.body);
    CHECK_FALSE(got.value.has_value());
    CHECK(got.problem == r.problem);
}

TEST_CASE("accepting, send and transfer bodies") {
    CHECK(parse_accepting(R"({"accepting":false})").value == std::optional<bool>(false));
    CHECK(parse_accepting(R"({"accepting":"no"})").problem == "accepting 必须是 true 或 false");

    CHECK(parse_send_text(R"({"text":"您好\n明天见 🦷"})").value ==
          std::optional<std::string>("您好\n明天见 🦷"));
    CHECK(parse_send_text(R"({"text":" \n\t"})").problem == "消息内容不能为空");
    CHECK(parse_send_text(R"({"txt":"a"})").problem == "请填写要发送的文字（text）");
    CHECK(parse_send_text("{\"text\":\"" + std::string(max_text_bytes, 'a') + "\"}").value);
    CHECK(parse_send_text("{\"text\":\"" + std::string(max_text_bytes + 1, 'a') + "\"}").problem ==
          "消息过长：微信客服消息最多2048字节");
    CHECK(parse_send_text("{\"text\":\"a\xff\"}").problem == "消息含有无效字符");

    CHECK(parse_transfer(R"({"to_agent":7})").value->to_agent == std::optional<std::uint64_t>(7));
    CHECK(parse_transfer(R"({"to_store":"4"})").value->to_store == std::optional<std::uint64_t>(4));
    CHECK(parse_transfer(R"({"to_agent":7,"to_store":4})").problem ==
          "请指定转接对象：to_agent（客服）或 to_store（门店）二选一");
    CHECK(parse_transfer(R"({})").problem ==
          "请指定转接对象：to_agent（客服）或 to_store（门店）二选一");
    CHECK(parse_transfer(R"({"to_agent":"x"})").problem == "to_agent / to_store 必须是编号");
}

TEST_CASE("conversation paths name an account, an openid and an action") {
    struct row {
        std::string name, path;
        std::optional<conversation_path> expected;
    };
    auto r = GENERATE(values<row>({
        {"accept", "/api/conversations/12/oAbC-_9/accept",
         conversation_path{12, "oAbC-_9", "accept"}},
        {"send", "/api/conversations/1/o1/send", conversation_path{1, "o1", "send"}},
        {"end", "/api/conversations/1/o1/end", conversation_path{1, "o1", "end"}},
        {"transfer", "/api/conversations/1/o1/transfer", conversation_path{1, "o1", "transfer"}},
        {"unknown action", "/api/conversations/1/o1/delete", std::nullopt},
        {"trailing slash", "/api/conversations/1/o1/send/", std::nullopt},
        {"missing action", "/api/conversations/1/o1", std::nullopt},
        {"account zero", "/api/conversations/0/o1/send", std::nullopt},
        {"account not a number", "/api/conversations/x/o1/send", std::nullopt},
        {"leading zero", "/api/conversations/01/o1/send", std::nullopt},
        {"empty openid", "/api/conversations/1//send", std::nullopt},
        {"openid with a dot", "/api/conversations/1/o.1/send", std::nullopt},
        {"escaped openid", "/api/conversations/1/o%2F1/send", std::nullopt},
        {"openid too long", "/api/conversations/1/" + std::string(129, 'o') + "/send",
         std::nullopt},
        {"other prefix", "/api/conversation/1/o1/send", std::nullopt},
    }));
    CAPTURE(r.name);
    CHECK(parse_conversation_path(r.path) == r.expected);
}

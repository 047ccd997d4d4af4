// The pure parts of the admin API's people and places: agent, store, QR, account, retention and
// health inputs read or refused with a reason in Chinese; the account rules shared by scrm-admin
// (English, by flag) and the API (Chinese, by field) without echoing a secret; the errcodes that
// need a person.
#include <catch2/catch.hpp>

#include "scrm/gateway/account.hpp"
#include "scrm/gateway/admin_requests.hpp"

using namespace scrm::gateway;

TEST_CASE("agent bodies: read with their defaults or refused") {
    auto a = parse_agent_create(R"({"name":"张顾问","role":"consultant","password":"12345678"})");
    REQUIRE(a.value.has_value());
    CHECK(a.value->name == "张顾问");
    CHECK(a.value->can_receive);
    CHECK_FALSE(a.value->store.has_value());
    a = parse_agent_create(
        R"({"name":"甲","role":"admin","store_id":3,"can_receive":false,"password":"12345678"})");
    REQUIRE(a.value.has_value());
    CHECK(a.value->store == std::optional<std::uint64_t>(3));
    CHECK_FALSE(a.value->can_receive);
    for (const char* bad : {"", "[]", R"({"name":"甲","role":"admin"})",
                            R"({"name":"甲","role":"cto","password":"12345678"})",
                            R"({"name":"","role":"admin","password":"12345678"})",
                            R"({"name":"a\u0001b","role":"admin","password":"12345678"})",
                            R"({"name":"甲","role":"admin","password":"1234567"})",
                            R"({"name":"甲","role":"admin","password":"12345678","store_id":0})",
                            R"({"name":"甲","role":"admin","password":"12345678","x":1})"}) {
        CAPTURE(bad);
        const auto r = parse_agent_create(bad);
        CHECK_FALSE(r.value.has_value());
        CHECK_FALSE(r.problem.empty());
    }

    auto u = parse_agent_update(R"({"store_id":null})");
    REQUIRE(u.value.has_value());
    REQUIRE(u.value->store.has_value());
    CHECK_FALSE(u.value->store->has_value());
    CHECK_FALSE(u.value->role.has_value());
    u = parse_agent_update(R"({"role":"service","can_receive":true})");
    REQUIRE(u.value.has_value());
    CHECK(u.value->role == std::optional<std::string>("service"));
    CHECK(u.value->can_receive == std::optional<bool>(true));
    CHECK_FALSE(u.value->store.has_value());
    CHECK(parse_agent_update("{}").problem == "请至少填写一项：role、store_id 或 can_receive");
    CHECK_FALSE(parse_agent_update(R"({"password":"12345678"})").value.has_value());

    CHECK(parse_password_reset(R"({"password":"abcdefgh"})").value ==
          std::optional<std::string>("abcdefgh"));
    CHECK(parse_password_reset(R"({"password":"abc"})").problem == "密码至少需要8个字符");
    CHECK(valid_agent_role("front_desk"));
    CHECK_FALSE(valid_agent_role("Admin"));
}

TEST_CASE("store names QR requests retention and health queries") {
    CHECK(parse_store_name(R"({"name":"东门店"})").value == std::optional<std::string>("东门店"));
    CHECK_FALSE(parse_store_name(R"({"name":" 东门店"})").value.has_value());
    CHECK_FALSE(parse_store_name(R"({"name":")" + std::string(129, 'x') + "\"}").value.has_value());
    CHECK(parse_store_name(R"({"name":")" + std::string(128, 'x') + "\"}").value.has_value());
    CHECK(parse_qr_request(R"({"account_id":4})").value == std::optional<std::uint64_t>(4));
    CHECK_FALSE(parse_qr_request(R"({"account_id":-4})").value.has_value());

    auto d = parse_retention(R"({"message_retention_days":null})");
    REQUIRE(d.value.has_value());
    CHECK_FALSE(d.value->has_value());
    d = parse_retention(R"({"message_retention_days":3650})");
    REQUIRE(d.value.has_value());
    CHECK(**d.value == 3650);
    for (const char* bad :
         {"{}", R"({"message_retention_days":0})", R"({"message_retention_days":3651})",
          R"({"message_retention_days":-1})", R"({"message_retention_days":true})"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_retention(bad).value.has_value());
    }

    CHECK(parse_health_query("").value == std::optional<std::uint32_t>(7));
    CHECK(parse_health_query("days=90").value == std::optional<std::uint32_t>(90));
    CHECK_FALSE(parse_health_query("days=91").value.has_value());
    CHECK_FALSE(parse_health_query("days=0").value.has_value());
    REQUIRE(person_needed_error(40164) != nullptr);
    CHECK(std::string(person_needed_error(40164)->kind) == "ip_not_allowlisted");
    CHECK(std::string(person_needed_error(42001)->kind) == "token_invalid");
    CHECK(person_needed_error(45015) == nullptr);  // the fan's window: no person needed
    CHECK(person_needed_error(-1) == nullptr);
}

TEST_CASE("account rules: the same for scrm-admin and the API and never echoing a secret") {
    account_input in;
    in.clinic = "诊所";
    in.appid = "wx0123456789abcdef";
    in.original_id = "gh_0123456789ab";
    in.token = "Tok3n";
    in.aes_key = std::string(43, 'k');
    in.secret = "s3cr3t-with-dash!";
    const auto problems = account_problems(in);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].field == "secret");
    CHECK(problems[0].rule_zh == "开发者密码（secret，AppSecret）须为16至64位字母或数字");
    const auto cli = validate_account(in);
    REQUIRE(cli.size() == 1);
    CHECK(cli[0] == "--secret: must be 16-64 letters or digits (the AppSecret)");
    CHECK(cli[0].find("s3cr3t") == std::string::npos);
    in.secret = "0123456789abcdef";
    in.aes_key_previous = "short";
    REQUIRE(validate_account(in).size() == 1);
    CHECK(validate_account(in)[0] == "--aes-key-previous: must be 43 letters or digits");

    auto b = parse_account_body(R"({"token":"abc","safe_mode_only":true})", true);
    REQUIRE(b.value.has_value());
    CHECK(b.value->token == std::optional<std::string>("abc"));
    CHECK(b.value->safe_mode_only == std::optional<bool>(true));
    CHECK_FALSE(b.value->secret.has_value());
    CHECK(parse_account_body(R"({"appid":"wx0123456789abcdef"})", true).problem ==
          "AppID（appid）不能修改；其他公众号请新增");
    CHECK_FALSE(parse_account_body(R"({"aes_key_previous":"x"})", true).value.has_value());
    CHECK(parse_account_body(R"({"aes_key_previous":"x"})", false).value.has_value());
    CHECK(parse_account_body(R"({"token":5})", false).problem == "token 须为字符串");
}

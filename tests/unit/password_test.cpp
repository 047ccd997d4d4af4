// Agents' passwords: PBKDF2-HMAC-SHA256 with a per-password salt; verification accepts only the
// right password and refuses malformed stored forms.
#include <catch2/catch.hpp>

#include "scrm/gateway/password.hpp"

using namespace scrm::gateway;

TEST_CASE("password: a hash verifies its password and no other") {
    const auto stored = hash_password("正确的密码 horse", 1000);
    REQUIRE(stored.has_value());
    CHECK(stored->rfind("pbkdf2-sha256$1000$", 0) == 0);
    CHECK(stored->size() == std::string("pbkdf2-sha256$1000$").size() + 32 + 1 + 64);
    CHECK(verify_password("正确的密码 horse", *stored));
    CHECK_FALSE(verify_password("正确的密码 horsE", *stored));
    CHECK_FALSE(verify_password("", *stored));
    // A fresh salt each time: the same password hashes differently.
    CHECK(*hash_password("正确的密码 horse", 1000) != *stored);
}

TEST_CASE("password: a known answer (RFC 7914's PBKDF2-HMAC-SHA256 vector)") {
    // RFC 7914 §11: P="passwd", S="salt", c=1, dkLen=64 → 55ac046e56e3089f…; the first 32 bytes.
    const std::string stored = "pbkdf2-sha256$1$" + std::string("73616c74") + "$" +
                               "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc";
    CHECK(verify_password("passwd", stored));
    CHECK_FALSE(verify_password("passwe", stored));
}

TEST_CASE("password: malformed stored forms never verify") {
    const auto good = *hash_password("secret-password", 10);
    for (const std::string& bad :
         {std::string(), std::string("plain"), std::string("pbkdf2-sha256$10$zz$00"),
          std::string("pbkdf2-sha1") + good.substr(13), good + "$extra",
          std::string("pbkdf2-sha256$0$00$00"), good.substr(0, good.size() - 2)}) {
        CAPTURE(bad);
        CHECK_FALSE(verify_password("secret-password", bad));
    }
}

TEST_CASE("password: rules for a new password") {
    CHECK(password_problem("1234567") == std::optional<std::string>("密码至少需要8个字符"));
    CHECK_FALSE(password_problem("12345678").has_value());
    CHECK(password_problem(std::string(129, 'x')).has_value());
}

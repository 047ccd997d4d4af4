// Secrets at rest: sealing round-trips, every value is fresh, and the wrong key, the wrong context
// or a tampered value is refused.
#include <catch2/catch.hpp>

#include "scrm/gateway/secret_box.hpp"

using scrm::errc;
using scrm::gateway::secret_box;

namespace {
const std::string key_a(64, 'a');
const std::string key_b = "0123456789abcdef0123456789abcdef0123456789ABCDEF0123456789abcdef";
}  // namespace

TEST_CASE("sealed secrets open with the same key and context") {
    auto box = secret_box::from_hex(key_a);
    REQUIRE(box.has_value());
    for (const std::string& plain :
         {std::string(), std::string("s3cr3t"), std::string(300, 'x'), std::string("中文密钥🔑")}) {
        auto sealed = box->seal(plain, "official_accounts.secret:wx1");
        REQUIRE(sealed);
        CHECK(sealed->rfind("v1.", 0) == 0);
        CHECK((plain.empty() || sealed->find(plain) == std::string::npos));
        auto opened = box->open(*sealed, "official_accounts.secret:wx1");
        REQUIRE(opened);
        CHECK(*opened == plain);
    }
    CHECK(*box->seal("same", "c") != *box->seal("same", "c"));  // fresh nonce each time
}

TEST_CASE("the wrong key, context or a tampered value is refused") {
    auto a = secret_box::from_hex(key_a);
    auto b = secret_box::from_hex(key_b);
    REQUIRE(a.has_value());
    REQUIRE(b.has_value());
    const std::string sealed = *a->seal("AppSecret", "official_accounts.secret:wx1");
    CHECK(b->open(sealed, "official_accounts.secret:wx1").error() == errc::conflict);
    CHECK(a->open(sealed, "official_accounts.secret:wx2").error() == errc::conflict);
    CHECK(a->open(sealed, "official_accounts.token:wx1").error() == errc::conflict);
    std::string tampered = sealed;
    tampered[10] = tampered[10] == 'A' ? 'B' : 'A';
    CHECK_FALSE(a->open(tampered, "official_accounts.secret:wx1").has_value());
    CHECK(a->open("v1.!!!!", "c").error() == errc::bad_input);
    CHECK(a->open("plain-text", "c").error() == errc::bad_input);
    CHECK(a->open("v1.AAAA", "c").error() == errc::bad_input);
}

TEST_CASE("master keys must be 64 hex digits") {
    CHECK(secret_box::from_hex("").error() == errc::bad_input);
    CHECK(secret_box::from_hex(std::string(63, 'a')).error() == errc::bad_input);
    CHECK(secret_box::from_hex(std::string(63, 'a') + "g").error() == errc::bad_input);
    CHECK(secret_box::from_hex(key_b).has_value());
}

// wechat_core crypto against every known-answer vector of wechat-protocol.md §4.8 (KAT-A to KAT-D,
// decrypt and encrypt with the fixed random) and the §1 signature vectors; the negative cases
// (wrong AppID, truncated, bad padding, bad base64, wrong key, bad length field); key rotation;
// the building blocks; sealed replies; and a seeded round-trip property test.
#include <catch2/catch.hpp>

#include <random>
#include <sstream>

#include "scrm/wechat/crypto.hpp"
#include "scrm/wechat/envelope.hpp"
#include "scrm/wechat/error.hpp"
#include "scrm/wechat/signature.hpp"

using namespace scrm::wechat;
using boost::system::error_code;

namespace {

// ---- the vectors, copied exactly from §4.8 -------------------------------------------------

constexpr std::string_view key_abc = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";  // KAT-A/B/C
constexpr std::string_view key_d = "AdiqDDDvUNCeE1ZW5XJmjf9fqNBJpGBs4vL4cHKmHBS";    // KAT-D
constexpr std::string_view key_e = "bAZC8S8nz5fcQ0Ui2HxQVGbC6FzyrzWKSuDbmzpBo3G";    // KAT-E

constexpr std::string_view kat_a_encrypt =
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4"
    "x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon"
    "8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZ"
    "ciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0C"
    "R8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=";
constexpr std::string_view kat_a_message =
    "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n<FromUserName><![CDATA[oyOR"
    "nuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n<CreateTime>1409735668</CreateTime>\n<MsgT"
    "ype><![CDATA[text]]></MsgType>\n<Content><![CDATA[abcdteT]]></Content>\n<MsgId>6054768"
    "590064713728</MsgId>\n</xml>";
constexpr std::string_view kat_b2_message =
    "<xml><ToUserName><![CDATA[oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw]]></ToUserName><FromUserNam"
    "e><![CDATA[gh_7f083739789a]]></FromUserName><CreateTime>1407743423</CreateTime><MsgTyp"
    "e><![CDATA[video]]></MsgType><Video><MediaId><![CDATA[eYJ1MbwPRJtOvIEabaxHs7TX2D-HV71s"
    "79GUxqdUkjm6Gs2Ed1KF3ulAOA9H1xG0]]></MediaId><Title><![CDATA[testCallBackReplyVideo]]>"
    "</Title><Description><![CDATA[testCallBackReplyVideo]]></Description></Video></xml>";
constexpr std::string_view kat_b2_encrypt =
    "jn1L23DB+6ELqJ+6bruv23M2GmYfkv0xBh2h+XTBOKVKcgDFHle6gqcZ1cZrk3e1qjPQ1F4RsLWzQRG9udbKWe"
    "sxlkupqcEcW7ZQweImX9+wLMa0GaUzpkycA8+IamDBxn5loLgZpnS7fVAbExOkK5DYHBmv5tptA9tklE/fTIIL"
    "HR8HLXa5nQvFb3tYPKAlHF3rtTeayNf0QuM+UW/wM9enGIDIJHF7CLHiDNAYxr+r+OrJCmPQyTy8cVWlu9iSvO"
    "HPT/77bZqJucQHQ04sq7KZI27OcqpQNSto2OdHCoTccjggX5Z9Mma0nMJBU+jLKJ38YB1fBIz+vBzsYjrTmFQ4"
    "4YfeEuZ+xRTQwr92vhA9OxchWVINGC50qE/6lmkwWTwGX9wtQpsJKhP+oS7rvTY8+VdzETdfakjkwQ5/Xka042"
    "OlUb1/slTwo4RscuQ+RdxSGvDahxAJ6+EAjLt9d8igHngxIbf6YyqqROxuxqIeIch3CssH/LqRs+iAcILvApYZ"
    "ckqmA7FNERspKA5f8GoJ9sv8xmGvZ9Yrf57cExWtnX8aCMMaBropU/1k+hKP5LVdzbWCG0hGwx/dQudYR/eXp3"
    "P0XxjlFiy+9DMlaFExWUZQDajPkdPrEeOwofJb";
constexpr std::string_view kat_c_encrypt =
    "rTNFcsut4LfGuAFKEUVVpwcaCOTJzOd9twZdIW910jb3k+iicx2uvhttIZ3Qg9Qgty3BEF2xbOrz6boTfb30dM"
    "omcgrkTqdFPwnhqbk+kIQ7rZiwny9D7NUrTgA5kpX3KsZvrXzUZyP2x9YOlxbgm572lmxKvM7HAQQhIQ/p6HBm"
    "oY30bGXFK0BtIu1pW9TjhOYrLQoU18nWYjWqDA1ynkmOytpv7QRI1P1+0NoxL0q2zO1DgeSvnE8CZGo/o5Ap/W"
    "HK5W2RAsinpzN4/LjPnmB6U01I5XCoJoC0GK/yMZycd2Oh8Nq6+wBkC1U85oy0ktOY4nLvsQMLrourmMGdZHuT"
    "bqpeJ8Ao/5PRYJ+WBvRUwPfGKBL2+2IKZF49vAJqkcGWSHGE76ZN2erXeuNazf/o9o3lIE3q739o4c8t9QGPe3"
    "1GT2Go/rOz1BsrASwvauNulCh+++yz+CQzBIuikA==";
constexpr std::string_view kat_c_message =
    "<xml><URL><![CDATA[http://wechat.laravel.so/server]]></URL><ToUserName><![CDATA[asdasd"
    "asd]]></ToUserName><FromUserName><![CDATA[asdasdasdsadasd]]></FromUserName><CreateTime"
    ">1234567898</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]><"
    "/Content><MsgId>12345</MsgId></xml>";
constexpr std::string_view kat_d_encrypt =
    "gsKjKVChgrDDifoOdfrL/MWujrKxnSR1jBopv0zEdHFQXcx5I0bf4UxIRjektLHEziRxpU5zTw0s+gYF3WOFjk"
    "In30gzQl9XNKr2A+DCHVG05I2EcbOnnAR5EYgjGLAipra5nOfCPPIRFQTZ7SdanniXX73YOiCAKJlNH21+PApc"
    "Yu4rPXxJ4eTXbBLwmfnSl7iojDX1LQIcC3FYmaapMQq/u+sJGsxshp4dLXJ6A5Ji3cSYAzXRVIxbNlHN1MWfdc"
    "Z0O5+ZtOU6dZiD8hJ4kkxh05EfOedWFjUy7ZhmXgrpZ4WpYPsrythXHE2Bg1Ohz8uf5h5X31yuU/3FPoa8rD21"
    "pfZnAjBT1QCkn6MxtL5lR+yoQReLwElVbtB6yJFPIZ+n9Qh/yKfIasxkzgIEo0pwPEbS17WCTyvRItJtU6tlo3"
    "rawJX+fsV63tKIfmLZjyZPDlV9/ka/nA/DT0KODw==";
constexpr std::string_view kat_d_message =
    "<xml><ToUserName><![CDATA[gh_b1eb3f8bd6c6]]></ToUserName>\n<FromUserName><![CDATA[okPE"
    "at9FRX96xG8JQvTxHLpzDV64]]></FromUserName>\n<CreateTime>1458889120</CreateTime>\n<MsgT"
    "ype><![CDATA[text]]></MsgType>\n<Content><![CDATA[test text message]]></Content>\n<Msg"
    "Id>6265881059295447969</MsgId>\n</xml>";
constexpr std::string_view kat_b1_encrypt =
    "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg"
    "==";

constexpr std::string_view kat_b1_message = "我是中文abcd123";

// ---- helpers ---------------------------------------------------------------------------------

aes_key key(std::string_view eak) {
    auto k = aes_key::from_encoding_aes_key(eak);
    REQUIRE(k.has_value());
    return *k;
}

std::string hex(std::span<const std::uint8_t> bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (auto b : bytes) {
        out += digits[b >> 4];
        out += digits[b & 0x0f];
    }
    return out;
}

std::string hex(std::string_view bytes) {
    return hex(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

random16 random_of(std::string_view ascii16) {
    REQUIRE(ascii16.size() == 16);
    random16 r{};
    for (std::size_t i = 0; i < 16; ++i) r[i] = static_cast<std::uint8_t>(ascii16[i]);
    return r;
}

// A result rendered as text, so one CHECK compares value or error readably.
template <class T>
std::string outcome(const scrm::result<T>& r) {
    std::ostringstream os;
    if (r) {
        if constexpr (std::is_void_v<T>) {
            os << "ok";
        } else {
            os << "ok: " << *r;
        }
    } else {
        os << "error: " << r.error().message();
    }
    return os.str();
}

std::string error_text(wechat_errc e) {
    return "error: " + make_error_code(e).message();
}

// AES-CBC-encrypts an arbitrary (already padded or deliberately mis-padded) plaintext and encodes
// it, to build ciphertexts that are well-formed at the AES level but wrong inside.
std::string forge(const aes_key& k, std::string_view plain) {
    auto c = aes_cbc_encrypt(k, plain);
    REQUIRE(c.has_value());
    return base64_encode(*c);
}

struct kat {
    std::string name;
    std::string_view eak;
    std::string_view appid;
    std::string_view random;  // ASCII, as the sheet gives it
    std::string_view message;
    std::string_view encrypt;
};

const std::vector<kat>& kats() {
    static const std::vector<kat> all{
        {"KAT-A official sample", key_abc, "wx2c2769f8efd9abc2", "89465c840c5f116f", kat_a_message,
         kat_a_encrypt},
        {"KAT-B case 1 WxJava, Chinese", key_abc, "wxb11529c136998cb6", "aaaabbbbccccdddd",
         kat_b1_message, kat_b1_encrypt},
        {"KAT-B case 2 WxJava, video reply", key_abc, "wxb11529c136998cb6", "aaaabbbbccccdddd",
         kat_b2_message, kat_b2_encrypt},
        {"KAT-C EasyWeChat", key_abc, "wxb11529c136998cb6", "d43123b161a4ba84", kat_c_message,
         kat_c_encrypt},
        {"KAT-D chanxuehong, non-canonical key", key_d, "wx45f133bf6fce646e", "cc9632a98304f81c",
         kat_d_message, kat_d_encrypt},
    };
    return all;
}

}  // namespace

// ---- signatures (§1, §4.5, §4.8) --------------------------------------------------------------

TEST_CASE("signatures reproduce every published vector") {
    struct row {
        std::string name;
        std::vector<std::string_view> parts;
        std::string expected;
    };
    const auto r = GENERATE(values<row>({
        {"§1 official example",
         {"AAAAA", "1714037059", "486452656"},
         "899cf89e464efb63f54ddac96b0a0a235f53aa78"},
        {"§1 chanxuehong sign_test",
         {"token1234567890", "1458864389", "2066297436"},
         "f9c725922f6844701ba71e98031978e40023c09f"},
        {"§1 silenceper Signature(a,b,c)",
         {"a", "b", "c"},
         "a9993e364706816aba3e25717850c26c9cd0d89d"},
        {"§1 silenceper, order does not matter",
         {"c", "a", "b"},
         "a9993e364706816aba3e25717850c26c9cd0d89d"},
        {"§1 WxJava SHA1.gen(123,345)", {"123", "345"}, "9f537aeb751ec72605f57f94a2f6dc3e3958e1dd"},
        {"KAT-A msg_signature",
         {"spamtest", "1409735669", "1320562132", kat_a_encrypt},
         "5d197aaffba7e9b25a30732f161a50dee96bd5fa"},
        {"KAT-B case 1 msg_signature",
         {"pamtest", "1409304348", "xxxxxx", kat_b1_encrypt},
         "82c962d39941aa48552f90ef55aa323dc620cc10"},
        {"KAT-B case 2 msg_signature",
         {"pamtest", "1409304348", "xxxxxx", kat_b2_encrypt},
         "ea88b765074e41eb8c7a75b449db34fa2fd560d5"},
        {"KAT-C msg_signature",
         {"pamtest", "1458300676", "260774613", kat_c_encrypt},
         "4f3ad57b6989f09f4eb392acce4f9e93942ed890"},
        {"KAT-D MsgSign (chanxuehong sign_test)",
         {"token1234567890", "1458864389", "2066297436",
          "u0KvD5kCUzGq9QmWTsSRcolKAH92oiMZDBJ840OqXXFhzUFsBZtdDv6Fv2W9zlrP3Rx3jQGiNXY8sV0kWgzd"
          "cefN3WznfM0TGArGowC9bgHE+4QKGrkly0wQ6ouQe7UrKDvkfMy3t8t8njawTl2z0MvgIsaVAvllB3vDWzY/"
          "Oo1P1Q9PLdIsgbQjyrJVObZMgFK4KN175ygxBWkb4fdiIAIXSpxN/48LYixSkgohbAcUGlDP8FD3mPTDppz1"
          "yI4fGY8jHCYy3s2CsylkE/1+/6zAtv/8160FvB/C6CwRd7Q4OypAW2JKDOekWULMhahY+43C8GQaKWWbsmOH"
          "diEoL6N8jCyrquvCBnvekZTrRY/CTuyqmpo/5LrDXXORwKDdK0uSVU/9N1Lpz9waEWMFqIPSnYC+MgelLzE9"
          "hBlnJ+5qC6O0GXrm6QmrncijD2SvdOhfT6OKIDiYJUM2cHHMcg=="},
         "247dea54e9ca03ab1e75d03430d205a5b967c44d"},
        {"KAT-E getSignature",
         {"RMNlACHlV5ThzfRlVS4D4", "timestamp", "nonce", "encrypt"},
         "8edac0945683c119ee71c9f6256d76c48aa08a96"},
    }));
    CAPTURE(r.name);
    std::string actual;
    switch (r.parts.size()) {
        case 2: actual = sorted_sha1_hex({r.parts[0], r.parts[1]}); break;
        case 3: actual = url_signature(r.parts[0], r.parts[1], r.parts[2]); break;
        case 4: actual = msg_signature(r.parts[0], r.parts[1], r.parts[2], r.parts[3]); break;
        default: FAIL("bad row");
    }
    CHECK(actual == r.expected);
}

TEST_CASE("signature verification is exact and fails closed") {
    const std::string good = "899cf89e464efb63f54ddac96b0a0a235f53aa78";
    struct row {
        std::string name;
        std::string given;
        std::string expected;
    };
    const auto r = GENERATE_COPY(values<row>({
        {"correct", good, "ok"},
        {"one digit changed", "899cf89e464efb63f54ddac96b0a0a235f53aa79",
         error_text(wechat_errc::signature_mismatch)},
        {"uppercase hex", "899CF89E464EFB63F54DDAC96B0A0A235F53AA78",
         error_text(wechat_errc::signature_mismatch)},
        {"truncated", good.substr(0, 39), error_text(wechat_errc::signature_mismatch)},
        {"extended", good + "0", error_text(wechat_errc::signature_mismatch)},
        {"empty", "", error_text(wechat_errc::signature_mismatch)},
        {"KAT-B negative: 12345", "12345", error_text(wechat_errc::signature_mismatch)},
    }));
    CAPTURE(r.name);
    CHECK(outcome(verify_url_signature("AAAAA", "1714037059", "486452656", r.given)) == r.expected);
}

TEST_CASE("KAT-B negative: msg_signature 12345 is refused before decryption") {
    const key_ring ring{key(key_abc), std::nullopt};
    const std::string body = "<xml><ToUserName><![CDATA[gh_x]]></ToUserName><Encrypt><![CDATA[" +
                             std::string(kat_b1_encrypt) + "]]></Encrypt></xml>";
    const auto opened = open_envelope("pamtest", ring, "wxb11529c136998cb6",
                                      {"1409304348", "xxxxxx", "12345"}, body);
    CHECK(outcome(opened) == error_text(wechat_errc::signature_mismatch));
}

// ---- key derivation (§4.3) -------------------------------------------------------------------

TEST_CASE("EncodingAESKey decodes to the published AES key and IV") {
    struct row {
        std::string name;
        std::string_view eak;
        std::string expected;  // key hex, then IV hex
    };
    const auto r = GENERATE(values<row>({
        {"KAT-A", key_abc,
         "69b71d79f8218a39259a7a29aabb2dbafc31cb3d35db7e39ebbf3d0010831051 "
         "69b71d79f8218a39259a7a29aabb2dba"},
        {"KAT-D: trailing 'S' has non-zero trailing bits, tolerated", key_d,
         "01d8aa0c30ef50d09e135656e572668dff5fa8d049a4606ce2f2f87072a61c14 "
         "01d8aa0c30ef50d0"
         "9e135656e572668d"},
        {"KAT-D canonical form 'Q' gives the same key",
         "AdiqDDDvUNCeE1ZW5XJmjf9fqNBJpGBs4vL4cHKmHBQ",
         "01d8aa0c30ef50d09e135656e572668dff5fa8d049a4606ce2f2f87072a61c14 "
         "01d8aa0c30ef50d09e135656e572668d"},
    }));
    CAPTURE(r.name);
    const auto k = key(r.eak);
    CHECK(hex(k.bytes()) + " " + hex(k.iv()) == r.expected);
}

TEST_CASE("malformed EncodingAESKeys are refused") {
    struct row {
        std::string name;
        std::string eak;
        std::string expected;
    };
    const std::string k43(key_abc);
    const auto r = GENERATE_COPY(values<row>({
        {"42 characters", k43.substr(0, 42), error_text(wechat_errc::bad_aes_key)},
        {"44 characters", k43 + "A", error_text(wechat_errc::bad_aes_key)},
        {"with the '=' already appended", k43 + "=", error_text(wechat_errc::bad_aes_key)},
        {"'+' is base64 but not allowed", "+" + k43.substr(1),
         error_text(wechat_errc::bad_aes_key)},
        {"'/'", k43.substr(0, 42) + "/", error_text(wechat_errc::bad_aes_key)},
        {"space", " " + k43.substr(1), error_text(wechat_errc::bad_aes_key)},
        {"non-ASCII", "\xC3\xA9" + k43.substr(2), error_text(wechat_errc::bad_aes_key)},
        {"empty", "", error_text(wechat_errc::bad_aes_key)},
    }));
    CAPTURE(r.name);
    CHECK(outcome(aes_key::from_encoding_aes_key(r.eak)) == r.expected);
}

TEST_CASE("aes_key never prints its bytes") {
    std::ostringstream os;
    os << key(key_abc);
    CHECK(os.str() == "aes_key{<redacted>}");
}

// ---- the known answers, both directions (§4.8) -------------------------------------------------

TEST_CASE("KAT decrypt: every vector decrypts to the published message, random and AppID") {
    const auto r = GENERATE(from_range(kats()));
    CAPTURE(r.name);
    const key_ring ring{key(r.eak), std::nullopt};
    const auto expected =
        decrypted_message{std::string(r.message), random_of(r.random), key_slot::current};
    CHECK(outcome(decrypt(ring, r.appid, r.encrypt)) ==
          outcome(scrm::result<decrypted_message>(expected)));
}

TEST_CASE("KAT encrypt: the fixed random reproduces every published ciphertext") {
    const auto r = GENERATE(from_range(kats()));
    CAPTURE(r.name);
    fixed_random rng(r.random);
    CHECK(outcome(encrypt(key(r.eak), r.appid, r.message, rng)) == "ok: " + std::string(r.encrypt));
}

TEST_CASE("KAT frame details: sizes, length field and padding as the sheet states") {
    struct row {
        std::string name;
        std::string_view eak;
        std::string_view encrypt;
        std::string expected;  // cipher bytes, message bytes, msg_len hex, pad count
    };
    const auto r = GENERATE(values<row>({
        {"KAT-A", key_abc, kat_a_encrypt, "320 280 00000118 pad 2"},
        {"KAT-B case 1 (19 UTF-8 bytes: pre-pad 57)", key_abc, kat_b1_encrypt,
         "64 19 00000013 pad 7"},
        {"KAT-B case 2", key_abc, kat_b2_encrypt, "480 435 000001b3 pad 7"},
        {"KAT-C", key_abc, kat_c_encrypt, "352 293 00000125 pad 21"},
        {"KAT-D", key_d, kat_d_encrypt, "352 290 00000122 pad 24"},
    }));
    CAPTURE(r.name);
    const auto cipher = base64_decode(r.encrypt);
    REQUIRE(cipher.has_value());
    const auto plain = aes_cbc_decrypt(key(r.eak), *cipher);
    REQUIRE(plain.has_value());
    const auto unpadded = pkcs7_unpadded_size(*plain);
    REQUIRE(unpadded.has_value());
    const auto parts = unframe_message(std::string_view(*plain).substr(0, *unpadded));
    REQUIRE(parts.has_value());
    const std::string actual = std::to_string(cipher->size()) + " " +
                               std::to_string(parts->message.size()) + " " +
                               hex(std::string_view(*plain).substr(16, 4)) + " pad " +
                               std::to_string(plain->size() - *unpadded);
    CHECK(actual == r.expected);
}

TEST_CASE("KAT-A and KAT-C open end to end from a safe-mode body") {
    struct row {
        std::string name;
        std::string_view token, appid, timestamp, nonce, signature, encrypt, message;
    };
    const auto r = GENERATE(values<row>({
        {"KAT-A", "spamtest", "wx2c2769f8efd9abc2", "1409735669", "1320562132",
         "5d197aaffba7e9b25a30732f161a50dee96bd5fa", kat_a_encrypt, kat_a_message},
        {"KAT-C (PHP argument order: nonce 260774613, timestamp 1458300676)", "pamtest",
         "wxb11529c136998cb6", "1458300676", "260774613",
         "4f3ad57b6989f09f4eb392acce4f9e93942ed890", kat_c_encrypt, kat_c_message},
    }));
    CAPTURE(r.name);
    const key_ring ring{key(key_abc), std::nullopt};
    const std::string body =
        "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n"
        "<Encrypt><![CDATA[" +
        std::string(r.encrypt) + "]]></Encrypt>\n</xml>";
    const auto opened =
        open_envelope(r.token, ring, r.appid, {r.timestamp, r.nonce, r.signature}, body);
    CHECK(outcome(opened.has_value() ? scrm::result<std::string>(opened->decrypted.message)
                                     : scrm::result<std::string>(opened.error())) ==
          "ok: " + std::string(r.message));
}

// ---- negative cases --------------------------------------------------------------------------

TEST_CASE("decrypt refuses what is not a valid frame for us") {
    const auto k = key(key_abc);
    const std::string appid = "wx2c2769f8efd9abc2";
    const random16 rnd = random_of("0123456789abcdef");
    auto padded = [](std::string frame) {
        pkcs7_pad(frame);
        return frame;
    };
    std::string bad_pad = padded(frame_message(rnd, "<xml/>", appid));
    bad_pad.back() = 0;  // pad byte 0
    std::string pad_too_big = padded(frame_message(rnd, "<xml/>", appid));
    pad_too_big.back() = 33;
    std::string pad_inconsistent = padded(frame_message(rnd, "<xml/>", appid));
    pad_inconsistent[pad_inconsistent.size() - 2] ^= 1;
    std::string long_len = padded(frame_message(rnd, "<xml/>", appid));
    long_len[19] = static_cast<char>(6 + appid.size() + 1);  // one past the end
    std::string huge_len = padded(frame_message(rnd, "<xml/>", appid));
    huge_len[16] = '\xff';
    const std::string short_frame = padded(std::string(19, 'x'));  // no room for msg_len
    const std::string a(kat_a_encrypt);

    struct row {
        std::string name;
        std::string encrypt;
        std::string appid;
        std::string expected;
    };
    const auto r = GENERATE_COPY(values<row>({
        {"control: KAT-A", a, appid, "ok"},
        {"wrong AppID", a, "wxb11529c136998cb6", error_text(wechat_errc::appid_mismatch)},
        {"AppID prefix only", a, "wx2c2769f8efd9abc", error_text(wechat_errc::appid_mismatch)},
        {"empty expected AppID", a, "", error_text(wechat_errc::appid_mismatch)},
        {"truncated by one 32-byte block", base64_encode(base64_decode(a)->substr(0, 288)), appid,
         error_text(wechat_errc::bad_padding)},
        {"truncated mid-block", base64_encode(base64_decode(a)->substr(0, 300)), appid,
         error_text(wechat_errc::bad_ciphertext)},
        {"truncated to 16 bytes", base64_encode(base64_decode(a)->substr(0, 16)), appid,
         error_text(wechat_errc::bad_ciphertext)},
        {"empty", "", appid, error_text(wechat_errc::bad_ciphertext)},
        {"base64 cut inside a quantum", a.substr(0, 101), appid,
         error_text(wechat_errc::bad_base64)},
        {"base64 with a space", a.substr(0, 10) + " " + a.substr(10), appid,
         error_text(wechat_errc::bad_base64)},
        {"base64url alphabet", "-_" + a.substr(2), appid, error_text(wechat_errc::bad_base64)},
        {"'=' inside", a.substr(0, 8) + "=" + a.substr(9), appid,
         error_text(wechat_errc::bad_base64)},
        {"pad byte 0", forge(k, bad_pad), appid, error_text(wechat_errc::bad_padding)},
        {"pad byte 33", forge(k, pad_too_big), appid, error_text(wechat_errc::bad_padding)},
        {"pad bytes disagree", forge(k, pad_inconsistent), appid,
         error_text(wechat_errc::bad_padding)},
        {"msg_len one past the end", forge(k, long_len), appid,
         error_text(wechat_errc::bad_length_field)},
        {"msg_len 0xff000006", forge(k, huge_len), appid,
         error_text(wechat_errc::bad_length_field)},
        {"frame shorter than 20 bytes", forge(k, short_frame), appid,
         error_text(wechat_errc::bad_length_field)},
    }));
    CAPTURE(r.name);
    const key_ring ring{k, std::nullopt};
    const auto d = decrypt(ring, r.appid, r.encrypt);
    CHECK((d ? std::string("ok") : outcome(d)) == r.expected);
}

TEST_CASE("a wrong key is refused, never mistaken for a message") {
    struct row {
        std::string name;
        std::string_view eak;
        std::string_view encrypt;
        std::string_view appid;
    };
    const auto r = GENERATE(values<row>({
        {"KAT-A under KAT-D's key", key_d, kat_a_encrypt, "wx2c2769f8efd9abc2"},
        {"KAT-D under KAT-A's key", key_abc, kat_d_encrypt, "wx45f133bf6fce646e"},
        {"KAT-C under KAT-E's key", key_e, kat_c_encrypt, "wxb11529c136998cb6"},
    }));
    CAPTURE(r.name);
    const auto d = decrypt(key_ring{key(r.eak), std::nullopt}, r.appid, r.encrypt);
    CHECK(outcome(d) == error_text(wechat_errc::bad_padding));
}

// ---- key rotation (§4.3) ---------------------------------------------------------------------

TEST_CASE("key rotation: the previous key is tried when the current one fails") {
    const auto abc = key(key_abc);
    const auto d = key(key_d);
    const auto e = key(key_e);
    struct row {
        std::string name;
        key_ring ring;
        std::string expected;
    };
    const auto r = GENERATE_COPY(values<row>({
        {"current key works", key_ring{abc, d}, "ok current"},
        {"only the previous key works", key_ring{d, abc}, "ok previous"},
        {"no previous key configured", key_ring{d, std::nullopt},
         error_text(wechat_errc::bad_padding)},
        {"neither key works", key_ring{d, e}, error_text(wechat_errc::bad_padding)},
    }));
    CAPTURE(r.name);
    const auto out = decrypt(r.ring, "wx2c2769f8efd9abc2", kat_a_encrypt);
    CHECK((out ? "ok " + std::string(to_string(out->key)) : outcome(out)) == r.expected);
}

TEST_CASE("key rotation: with both keys failing, the furthest error is reported") {
    // Under the right key the frame is fine but for another account: appid_mismatch is more
    // telling than the other key's bad_padding, whichever slot the right key is in.
    const auto abc = key(key_abc);
    const auto d = key(key_d);
    struct row {
        std::string name;
        key_ring ring;
        std::string expected;
    };
    const auto r = GENERATE_COPY(values<row>({
        {"right key current", key_ring{abc, d}, error_text(wechat_errc::appid_mismatch)},
        {"right key previous", key_ring{d, abc}, error_text(wechat_errc::appid_mismatch)},
    }));
    CAPTURE(r.name);
    CHECK(outcome(decrypt(r.ring, "wxOTHER", kat_a_encrypt)) == r.expected);
}

// ---- building blocks -------------------------------------------------------------------------

TEST_CASE("base64 round-trips and tolerates missing padding and trailing bits") {
    struct row {
        std::string name;
        std::string input;
        std::string expected;  // hex of the decoded bytes, or the error
    };
    const auto r = GENERATE(values<row>({
        {"empty", "", "ok: "},
        {"one byte", "QQ==", "ok: 41"},
        {"one byte, no padding", "QQ", "ok: 41"},
        {"one byte, non-zero trailing bits", "QR==", "ok: 41"},
        {"two bytes", "QUI=", "ok: 4142"},
        {"three bytes", "QUJD", "ok: 414243"},
        {"high bytes", "/+8=", "ok: ffef"},
        {"padding but length not multiple of 4", "QUI==", error_text(wechat_errc::bad_base64)},
        {"three pads", "Q===", error_text(wechat_errc::bad_base64)},
        {"one stray character", "QUJDR", error_text(wechat_errc::bad_base64)},
        {"newline", "QUJD\nQUJD", error_text(wechat_errc::bad_base64)},
        {"NUL", std::string("QU\0D", 4), error_text(wechat_errc::bad_base64)},
    }));
    CAPTURE(r.name);
    const auto d = base64_decode(r.input);
    CHECK((d ? "ok: " + hex(*d) : outcome(d)) == r.expected);
}

TEST_CASE("base64_encode matches the standard alphabet with padding") {
    CHECK(base64_encode("") == "");
    CHECK(base64_encode("A") == "QQ==");
    CHECK(base64_encode("AB") == "QUI=");
    CHECK(base64_encode("ABC") == "QUJD");
    CHECK(base64_encode("\xff\xef") == "/+8=");
}

TEST_CASE("PKCS#7 pads to 32, never 16") {
    struct row {
        std::string name;
        std::size_t size;
        std::string expected;  // padded size and the pad byte
    };
    const auto r = GENERATE(values<row>({
        {"KAT-E: 'text' (4 bytes) -> last byte 28", 4, "32 28"},
        {"empty: a whole block", 0, "32 32"},
        {"31 bytes", 31, "32 1"},
        {"exactly 32: a whole extra block of 0x20", 32, "64 32"},
        {"16 bytes: pads to 32, not to 16", 16, "32 16"},
        {"57 (KAT-B case 1)", 57, "64 7"},
    }));
    CAPTURE(r.name);
    std::string buf(r.size, 'x');
    pkcs7_pad(buf);
    const auto unpadded = pkcs7_unpadded_size(buf);
    REQUIRE(unpadded.has_value());
    CHECK(*unpadded == r.size);
    CHECK(std::to_string(buf.size()) + " " + std::to_string(static_cast<int>(buf.back())) ==
          r.expected);
}

TEST_CASE("aes_cbc refuses input that is not whole blocks") {
    CHECK(outcome(aes_cbc_encrypt(key(key_abc), "short")) ==
          "error: " + make_error_code(scrm::errc::bad_input).message());
    CHECK(outcome(aes_cbc_decrypt(key(key_abc), std::string(17, 'x'))) ==
          "error: " + make_error_code(scrm::errc::bad_input).message());
}

TEST_CASE("fixed_random repeats its bytes and system_random fills") {
    fixed_random f("ab");
    const auto r = make_random16(f);
    REQUIRE(r.has_value());
    CHECK(std::string(r->begin(), r->end()) == "abababababababab");
    const auto s1 = make_random16(system_random());
    const auto s2 = make_random16(system_random());
    REQUIRE(s1.has_value());
    REQUIRE(s2.has_value());
    CHECK(*s1 != *s2);
}

TEST_CASE("wechat errors map to the project errc and the official codes") {
    CHECK(general_errc(wechat_errc::signature_mismatch) == scrm::errc::bad_input);
    CHECK(general_errc(wechat_errc::crypto_failure) == scrm::errc::server_error);
    CHECK(official_code(wechat_errc::signature_mismatch) == -40001);
    CHECK(official_code(wechat_errc::appid_mismatch) == -40005);
    CHECK(official_code(wechat_errc::bad_length_field) == -40008);
    CHECK(make_error_code(wechat_errc::bad_padding).category().name() == std::string("wechat"));
}

// ---- sealed replies (§4.6) -------------------------------------------------------------------

TEST_CASE("seal_reply: KAT-B's fixed random gives KAT-B's ciphertext and signature") {
    fixed_random rng("aaaabbbbccccdddd");
    const auto sealed = seal_reply("pamtest", key(key_abc), "wxb11529c136998cb6", kat_b2_message,
                                   1409304348, "xxxxxx", rng);
    const encrypted_reply expected{std::string(kat_b2_encrypt),
                                   "ea88b765074e41eb8c7a75b449db34fa2fd560d5", 1409304348,
                                   "xxxxxx"};
    CHECK(outcome(sealed) == outcome(scrm::result<encrypted_reply>(expected)));
    CHECK(to_xml(expected) ==
          "<xml><Encrypt><![CDATA[" + std::string(kat_b2_encrypt) +
              "]]></Encrypt><MsgSignature><![CDATA[ea88b765074e41eb8c7a75b449db34fa2fd560d5]]>"
              "</MsgSignature><TimeStamp>1409304348</TimeStamp><Nonce><![CDATA[xxxxxx]]></Nonce>"
              "</xml>");
}

TEST_CASE("seal_reply output opens again with the same key and signature") {
    const key_ring ring{key(key_e), key(key_abc)};
    fixed_random rng("0123456789abcdef");
    // Sealed with the previous key, as when the request was opened with it.
    const auto sealed =
        seal_reply("tok", ring[key_slot::previous], "wxapp",
                   "<xml><Content><![CDATA[你好 👋]]></Content></xml>", 1700000000, "12345", rng);
    REQUIRE(sealed.has_value());
    const auto opened = open_envelope(
        "tok", ring, "wxapp", {"1700000000", "12345", sealed->msg_signature}, to_xml(*sealed));
    REQUIRE(opened.has_value());
    CHECK(opened->decrypted == decrypted_message{"<xml><Content><![CDATA[你好 👋]]></Content></xml>",
                                                 random_of("0123456789abcdef"),
                                                 key_slot::previous});
}

// ---- property: encrypt → decrypt round-trips any message
// ------------------------------------------

namespace {

// A random message of `bytes` bytes or slightly fewer: ASCII, CJK, emoji, XML markup, and now and
// then raw bytes (the crypto layer is byte-transparent).
std::string random_message(std::mt19937_64& gen, std::size_t bytes) {
    static constexpr std::string_view pieces[] = {
        "a",
        "Z",
        "0",
        " ",
        "\n",
        "<",
        ">",
        "&",
        "]]>",
        "中",
        "文",
        "诊所",
        "预约",
        "😀",
        "🦷",
        "👩‍⚕️",
        "\xF0\x9F\x87\xA8\xF0\x9F\x87\xB3",
        "é",
        "\x01",
        "\xff",
    };
    std::uniform_int_distribution<std::size_t> pick(0, std::size(pieces) - 1);
    std::string out;
    out.reserve(bytes);
    for (;;) {
        const auto p = pieces[pick(gen)];
        if (out.size() + p.size() > bytes) break;
        out += p;
    }
    return out;
}

}  // namespace

TEST_CASE("property: random messages of 0 to 64 KiB round-trip through encrypt and decrypt") {
    std::mt19937_64 gen(20261123);  // fixed seed: reproducible
    const aes_key keys[] = {key(key_abc), key(key_d), key(key_e)};
    std::uniform_int_distribution<std::size_t> size_dist(0, 64 * 1024);
    std::uniform_int_distribution<int> small(0, 2);
    int failures = 0;
    for (int i = 0; i < 300; ++i) {
        // A third of the sizes are tiny, to cover the padding edge cases around 0..64 bytes.
        const std::size_t size = small(gen) == 0 ? size_dist(gen) % 65 : size_dist(gen);
        const auto message = random_message(gen, size);
        const auto& current = keys[static_cast<std::size_t>(i) % 3];
        const auto& previous = keys[static_cast<std::size_t>(i + 1) % 3];
        const bool use_previous = small(gen) == 0;
        random16 rnd{};
        for (auto& b : rnd) b = static_cast<std::uint8_t>(gen());
        const auto cipher =
            encrypt(use_previous ? previous : current, "wx1234567890abcdef", message, rnd);
        const auto plain = decrypt(key_ring{current, previous}, "wx1234567890abcdef",
                                   cipher ? std::string_view(*cipher) : std::string_view());
        const decrypted_message expected{message, rnd,
                                         use_previous ? key_slot::previous : key_slot::current};
        if (!plain || *plain != expected) {
            ++failures;
            CAPTURE(i, size);
            CHECK(outcome(plain) == outcome(scrm::result<decrypted_message>(expected)));
        }
    }
    CHECK(failures == 0);
}

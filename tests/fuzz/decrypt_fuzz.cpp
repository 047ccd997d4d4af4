// libFuzzer target for the decryptor. The first input byte picks what the rest is:
//   0  an Encrypt text, decrypted with a two-key ring (KAT-A's key current, KAT-D's previous);
//   1  an AES plaintext (zero-filled to whole 32-byte blocks) that is encrypted raw and then
//      decrypted, so the fuzzer reaches the padding, length-field and AppID checks directly; a
//      successful decrypt must re-encrypt to the identical ciphertext (the frame was canonical);
//   2  a message that must round-trip through encrypt and decrypt exactly;
//   3  a safe-mode POST body, opened with a msg_signature computed over its own Encrypt.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "scrm/wechat/crypto.hpp"
#include "scrm/wechat/envelope.hpp"
#include "scrm/wechat/signature.hpp"

using namespace scrm::wechat;

namespace {

constexpr std::string_view appid = "wx2c2769f8efd9abc2";  // KAT-A's

void require(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "invariant violated: %s\n", what);
        std::abort();
    }
}

const key_ring& ring() {
    static const key_ring keys = [] {
        auto current =
            aes_key::from_encoding_aes_key("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG");
        auto previous =
            aes_key::from_encoding_aes_key("AdiqDDDvUNCeE1ZW5XJmjf9fqNBJpGBs4vL4cHKmHBS");
        require(current.has_value() && previous.has_value(), "keys decode");
        return key_ring{*current, *previous};
    }();
    return keys;
}

void check_decrypted(const decrypted_message& d, std::string_view encrypt_text) {
    // Strict padding + exact AppID mean the frame was canonical: encrypting it again under the
    // key that opened it must give the same ciphertext.
    const auto again = encrypt(ring()[d.key], appid, d.message, d.random);
    require(again.has_value(), "re-encrypt");
    require(*again == encrypt_text, "decrypt/encrypt are inverse");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    switch (data[0] % 4) {
        case 0: {
            const auto d = decrypt(ring(), appid, rest);
            // Only canonical base64 reproduces itself; check the inverse property on that.
            if (d && base64_encode(*base64_decode(rest)) == rest) check_decrypted(*d, rest);
            break;
        }
        case 1: {
            std::string plain(rest);
            plain.resize((plain.size() + 31) / 32 * 32, '\0');
            if (plain.empty()) break;
            const auto cipher = aes_cbc_encrypt(ring().current, plain);
            require(cipher.has_value(), "raw encrypt");
            const auto text = base64_encode(*cipher);
            const auto d = decrypt(ring(), appid, text);
            if (d) check_decrypted(*d, text);
            break;
        }
        case 2: {
            random16 rnd{};
            for (std::size_t i = 0; i < rnd.size() && i < rest.size(); ++i) {
                rnd[i] = static_cast<std::uint8_t>(rest[i]);
            }
            const auto cipher = encrypt(ring().current, appid, rest, rnd);
            require(cipher.has_value(), "encrypt");
            const auto d = decrypt(ring(), appid, *cipher);
            require(d.has_value(), "round-trip decrypts");
            require(d->message == rest && d->random == rnd && d->key == key_slot::current,
                    "round-trip is exact");
            break;
        }
        case 3: {
            const auto envelope = parse_envelope(rest);
            if (!envelope) break;
            const auto sig =
                msg_signature("spamtest", "1409735669", "1320562132", envelope->encrypt);
            const auto opened =
                open_envelope("spamtest", ring(), appid, {"1409735669", "1320562132", sig}, rest);
            if (opened) require(opened->envelope == *envelope, "same envelope");
            break;
        }
    }
    return 0;
}

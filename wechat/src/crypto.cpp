// Safe-mode crypto: EncodingAESKey decoding, base64, 32-byte PKCS#7, AES-256-CBC through EVP with
// padding off, the frame layout, encrypt/decrypt with key rotation, and the random sources.
#include "scrm/wechat/crypto.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <climits>
#include <memory>
#include <ostream>

#include "scrm/wechat/error.hpp"

namespace scrm::wechat {
namespace {

constexpr std::size_t pad_block = 32;     // PKCS#7 K (protocol sheet §4.4), not AES's 16
constexpr std::size_t frame_header = 20;  // random(16) + msg_len(4)

constexpr char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// 0..63 for alphabet characters, -1 otherwise.
constexpr int b64_value(unsigned char c) noexcept {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

constexpr bool is_alnum(char c) noexcept {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

struct ctx_free {
    void operator()(EVP_CIPHER_CTX* c) const noexcept { EVP_CIPHER_CTX_free(c); }
};

scrm::result<std::string> aes_cbc(const aes_key& key, std::string_view in, bool encrypting) {
    if (in.size() % 16 != 0 || in.size() > static_cast<std::size_t>(INT_MAX) - 32) {
        return make_error_code(scrm::errc::bad_input);
    }
    const std::unique_ptr<EVP_CIPHER_CTX, ctx_free> ctx(EVP_CIPHER_CTX_new());
    if (!ctx) return make_error_code(wechat_errc::crypto_failure);
    if (EVP_CipherInit_ex(ctx.get(), EVP_aes_256_cbc(), nullptr, key.bytes().data(),
                          key.iv().data(), encrypting ? 1 : 0) != 1 ||
        EVP_CIPHER_CTX_set_padding(ctx.get(), 0) != 1) {
        return make_error_code(wechat_errc::crypto_failure);
    }
    std::string out(in.size() + 16, '\0');
    int n = 0;
    int tail = 0;
    auto* dst = reinterpret_cast<unsigned char*>(out.data());
    if (EVP_CipherUpdate(ctx.get(), dst, &n, reinterpret_cast<const unsigned char*>(in.data()),
                         static_cast<int>(in.size())) != 1 ||
        EVP_CipherFinal_ex(ctx.get(), dst + n, &tail) != 1) {
        return make_error_code(wechat_errc::crypto_failure);
    }
    out.resize(static_cast<std::size_t>(n) + static_cast<std::size_t>(tail));
    return out;
}

// How far a decryption attempt got, to report the most informative error when every key fails.
int stage(const boost::system::error_code& e) noexcept {
    if (e == wechat_errc::appid_mismatch) return 3;
    if (e == wechat_errc::bad_length_field) return 2;
    if (e == wechat_errc::bad_padding) return 1;
    return 0;
}

scrm::result<decrypted_message> decrypt_with(const aes_key& key, key_slot slot,
                                             std::string_view appid, std::string_view cipher) {
    auto plain = aes_cbc(key, cipher, false);
    if (!plain) return plain.error();
    auto size = pkcs7_unpadded_size(*plain);
    if (!size) return size.error();
    auto parts = unframe_message(std::string_view(*plain).substr(0, *size));
    if (!parts) return parts.error();
    if (parts->appid != appid) return make_error_code(wechat_errc::appid_mismatch);
    return decrypted_message{std::string(parts->message), parts->random, slot};
}

}  // namespace

// ---- aes_key ---------------------------------------------------------------------------------

scrm::result<aes_key> aes_key::from_encoding_aes_key(std::string_view encoding_aes_key) {
    if (encoding_aes_key.size() != 43) return make_error_code(wechat_errc::bad_aes_key);
    for (char c : encoding_aes_key) {
        if (!is_alnum(c)) return make_error_code(wechat_errc::bad_aes_key);
    }
    auto raw = base64_decode(encoding_aes_key);  // 43 characters: 32 bytes + 2 ignored bits
    if (!raw || raw->size() != 32) return make_error_code(wechat_errc::bad_aes_key);
    std::array<std::uint8_t, 32> bytes{};
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>((*raw)[i]);
    return from_bytes(bytes);
}

aes_key aes_key::from_bytes(const std::array<std::uint8_t, 32>& bytes) noexcept {
    aes_key k;
    k.bytes_ = bytes;
    return k;
}

std::ostream& operator<<(std::ostream& os, const aes_key&) {
    return os << "aes_key{<redacted>}";
}

const char* to_string(key_slot s) noexcept {
    return s == key_slot::previous ? "previous" : "current";
}

std::ostream& operator<<(std::ostream& os, key_slot s) {
    return os << to_string(s);
}

std::ostream& operator<<(std::ostream& os, const decrypted_message& m) {
    os << "decrypted_message{key: " << m.key << ", random: \"";
    for (auto b : m.random) {
        if (b >= 0x20 && b < 0x7f) {
            os << static_cast<char>(b);
        } else {
            static constexpr char digits[] = "0123456789abcdef";
            os << "\\x" << digits[b >> 4] << digits[b & 0x0f];
        }
    }
    return os << "\", message (" << m.message.size() << " bytes): \"" << m.message << "\"}";
}

// ---- encrypt / decrypt -----------------------------------------------------------------------

scrm::result<std::string> encrypt(const aes_key& key, std::string_view appid,
                                  std::string_view message, const random16& random) {
    if (message.size() > static_cast<std::size_t>(INT_MAX) - 1024 ||
        appid.size() > static_cast<std::size_t>(INT_MAX) - 1024 - message.size()) {
        return make_error_code(scrm::errc::bad_input);
    }
    std::string frame = frame_message(random, message, appid);
    pkcs7_pad(frame);
    auto cipher = aes_cbc(key, frame, true);
    if (!cipher) return cipher.error();
    return base64_encode(*cipher);
}

scrm::result<std::string> encrypt(const aes_key& key, std::string_view appid,
                                  std::string_view message, random_source& rng) {
    auto random = make_random16(rng);
    if (!random) return random.error();
    return encrypt(key, appid, message, *random);
}

scrm::result<decrypted_message> decrypt(const key_ring& keys, std::string_view appid,
                                        std::string_view encrypt_text) {
    auto cipher = base64_decode(encrypt_text);
    if (!cipher) return cipher.error();
    if (cipher->empty() || cipher->size() % pad_block != 0) {
        return make_error_code(wechat_errc::bad_ciphertext);
    }
    auto first = decrypt_with(keys.current, key_slot::current, appid, *cipher);
    if (first || !keys.previous || first.error() == wechat_errc::crypto_failure) return first;
    auto second = decrypt_with(*keys.previous, key_slot::previous, appid, *cipher);
    if (second) return second;
    return stage(second.error()) > stage(first.error()) ? second : first;
}

// ---- randomness ------------------------------------------------------------------------------

namespace {

class openssl_random final : public random_source {
public:
    scrm::result<void> fill(std::span<std::uint8_t> out) override {
        if (out.size() > static_cast<std::size_t>(INT_MAX) ||
            RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
            return make_error_code(wechat_errc::crypto_failure);
        }
        return {};
    }
};

}  // namespace

random_source& system_random() noexcept {
    static openssl_random instance;
    return instance;
}

scrm::result<void> fixed_random::fill(std::span<std::uint8_t> out) {
    if (bytes_.empty()) return make_error_code(wechat_errc::crypto_failure);
    for (auto& b : out) {
        b = static_cast<std::uint8_t>(bytes_[next_]);
        next_ = (next_ + 1) % bytes_.size();
    }
    return {};
}

scrm::result<random16> make_random16(random_source& rng) {
    random16 r{};
    auto filled = rng.fill(r);
    if (!filled) return filled.error();
    return r;
}

// ---- building blocks -------------------------------------------------------------------------

std::string base64_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    auto at = [&](std::size_t k) {
        return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[k]));
    };
    for (; i + 3 <= bytes.size(); i += 3) {
        const std::uint32_t v = at(i) << 16 | at(i + 1) << 8 | at(i + 2);
        out += b64_alphabet[v >> 18 & 63];
        out += b64_alphabet[v >> 12 & 63];
        out += b64_alphabet[v >> 6 & 63];
        out += b64_alphabet[v & 63];
    }
    const std::size_t rest = bytes.size() - i;
    if (rest == 1) {
        const std::uint32_t v = at(i) << 16;
        out += b64_alphabet[v >> 18 & 63];
        out += b64_alphabet[v >> 12 & 63];
        out += "==";
    } else if (rest == 2) {
        const std::uint32_t v = at(i) << 16 | at(i + 1) << 8;
        out += b64_alphabet[v >> 18 & 63];
        out += b64_alphabet[v >> 12 & 63];
        out += b64_alphabet[v >> 6 & 63];
        out += '=';
    }
    return out;
}

scrm::result<std::string> base64_decode(std::string_view text) {
    std::size_t data_len = text.size();
    std::size_t pads = 0;
    while (data_len > 0 && text[data_len - 1] == '=' && pads < 2) {
        --data_len;
        ++pads;
    }
    if (pads > 0 && text.size() % 4 != 0) return make_error_code(wechat_errc::bad_base64);
    if (data_len % 4 == 1) return make_error_code(wechat_errc::bad_base64);
    std::string out;
    out.reserve(data_len / 4 * 3 + 2);
    std::uint32_t acc = 0;
    int bits = 0;
    for (std::size_t i = 0; i < data_len; ++i) {
        const int v = b64_value(static_cast<unsigned char>(text[i]));
        if (v < 0) return make_error_code(wechat_errc::bad_base64);
        acc = (acc << 6 | static_cast<std::uint32_t>(v)) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>(acc >> bits & 0xff);
        }
    }
    // The 2 or 4 bits left over are ignored even when non-zero (lenient, like Go/Java/PHP).
    return out;
}

void pkcs7_pad(std::string& buffer) {
    const std::size_t n = pad_block - buffer.size() % pad_block;
    buffer.append(n, static_cast<char>(n));
}

scrm::result<std::size_t> pkcs7_unpadded_size(std::string_view buffer) noexcept {
    if (buffer.empty()) return make_error_code(wechat_errc::bad_padding);
    const auto n = static_cast<unsigned char>(buffer.back());
    if (n < 1 || n > pad_block || n > buffer.size())
        return make_error_code(wechat_errc::bad_padding);
    for (std::size_t i = buffer.size() - n; i < buffer.size(); ++i) {
        if (static_cast<unsigned char>(buffer[i]) != n)
            return make_error_code(wechat_errc::bad_padding);
    }
    return buffer.size() - n;
}

scrm::result<std::string> aes_cbc_encrypt(const aes_key& key, std::string_view plain) {
    return aes_cbc(key, plain, true);
}

scrm::result<std::string> aes_cbc_decrypt(const aes_key& key, std::string_view cipher) {
    return aes_cbc(key, cipher, false);
}

std::string frame_message(const random16& random, std::string_view message,
                          std::string_view appid) {
    std::string frame;
    frame.reserve(frame_header + message.size() + appid.size() + pad_block);
    frame.append(reinterpret_cast<const char*>(random.data()), random.size());
    const auto len = static_cast<std::uint32_t>(message.size());
    frame += static_cast<char>(len >> 24 & 0xff);
    frame += static_cast<char>(len >> 16 & 0xff);
    frame += static_cast<char>(len >> 8 & 0xff);
    frame += static_cast<char>(len & 0xff);
    frame.append(message);
    frame.append(appid);
    return frame;
}

scrm::result<frame_parts> unframe_message(std::string_view frame) noexcept {
    if (frame.size() < frame_header) return make_error_code(wechat_errc::bad_length_field);
    frame_parts parts;
    for (std::size_t i = 0; i < parts.random.size(); ++i) {
        parts.random[i] = static_cast<std::uint8_t>(frame[i]);
    }
    std::uint32_t len = 0;
    for (std::size_t i = 16; i < frame_header; ++i) {
        len = len << 8 | static_cast<unsigned char>(frame[i]);
    }
    if (len > frame.size() - frame_header) return make_error_code(wechat_errc::bad_length_field);
    parts.message = frame.substr(frame_header, len);
    parts.appid = frame.substr(frame_header + len);
    return parts;
}

}  // namespace scrm::wechat

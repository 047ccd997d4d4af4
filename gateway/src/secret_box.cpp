// AES-256-GCM through OpenSSL's EVP interface; 12-byte random nonce, 16-byte tag.
#include "scrm/gateway/secret_box.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <memory>
#include <vector>

namespace scrm::gateway {
namespace {

constexpr std::string_view prefix = "v1.";
constexpr std::size_t nonce_size = 12;
constexpr std::size_t tag_size = 16;

using ctx_ptr = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string b64_encode(const std::vector<unsigned char>& bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3), '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                  static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::optional<std::vector<unsigned char>> b64_decode(std::string_view text) {
    if (text.empty() || text.size() % 4 != 0) return std::nullopt;
    std::vector<unsigned char> out(3 * text.size() / 4);
    const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                  static_cast<int>(text.size()));
    if (n < 0) return std::nullopt;
    std::size_t size = static_cast<std::size_t>(n);
    // EVP_DecodeBlock counts padding as zero bytes.
    if (text.back() == '=') --size;
    if (text.size() >= 2 && text[text.size() - 2] == '=') --size;
    out.resize(size);
    return out;
}

}  // namespace

result<secret_box> secret_box::from_hex(std::string_view hex) {
    if (hex.size() != 64) return errc::bad_input;
    std::array<unsigned char, 32> key{};
    for (std::size_t i = 0; i < 32; ++i) {
        const int hi = hex_value(hex[2 * i]);
        const int lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return errc::bad_input;
        key[i] = static_cast<unsigned char>(hi * 16 + lo);
    }
    return secret_box(key);
}

result<secret_box> secret_box::from_env() {
    const char* value = std::getenv("SCRM_MASTER_KEY");
    if (!value || !*value) return errc::not_found;
    return from_hex(value);
}

result<std::string> secret_box::seal(std::string_view plaintext, std::string_view context) const {
    std::vector<unsigned char> out(nonce_size + plaintext.size() + tag_size);
    if (RAND_bytes(out.data(), static_cast<int>(nonce_size)) != 1) return errc::server_error;
    ctx_ptr ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
    int len = 0;
    if (!ctx ||
        EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), out.data()) != 1 ||
        EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                          reinterpret_cast<const unsigned char*>(context.data()),
                          static_cast<int>(context.size())) != 1 ||
        EVP_EncryptUpdate(ctx.get(), out.data() + nonce_size, &len,
                          reinterpret_cast<const unsigned char*>(plaintext.data()),
                          static_cast<int>(plaintext.size())) != 1 ||
        EVP_EncryptFinal_ex(ctx.get(), out.data() + nonce_size + len, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, tag_size,
                            out.data() + nonce_size + plaintext.size()) != 1) {
        return errc::server_error;
    }
    return std::string(prefix) + b64_encode(out);
}

result<std::string> secret_box::open(std::string_view sealed, std::string_view context) const {
    if (sealed.substr(0, prefix.size()) != prefix) return errc::bad_input;
    auto bytes = b64_decode(sealed.substr(prefix.size()));
    if (!bytes || bytes->size() < nonce_size + tag_size) return errc::bad_input;
    const std::size_t text_size = bytes->size() - nonce_size - tag_size;
    std::string plain(text_size, '\0');
    ctx_ptr ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
    int len = 0;
    if (!ctx ||
        EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), bytes->data()) !=
            1 ||
        EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                          reinterpret_cast<const unsigned char*>(context.data()),
                          static_cast<int>(context.size())) != 1 ||
        EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &len,
                          bytes->data() + nonce_size, static_cast<int>(text_size)) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, tag_size,
                            bytes->data() + nonce_size + text_size) != 1) {
        return errc::server_error;
    }
    if (EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()) + len,
                            &len) != 1) {
        return errc::conflict;
    }
    return plain;
}

std::array<unsigned char, 32> secret_box::derive_key(std::string_view label) const {
    std::array<unsigned char, 32> out{};
    unsigned int len = 0;
    HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
         reinterpret_cast<const unsigned char*>(label.data()), label.size(), out.data(), &len);
    return out;
}

}  // namespace scrm::gateway

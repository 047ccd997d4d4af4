// See password.hpp.
#include "scrm/gateway/password.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <charconv>
#include <vector>

#include "scrm/common/hex.hpp"

namespace scrm::gateway {

namespace {

constexpr std::string_view scheme = "pbkdf2-sha256";
constexpr std::size_t salt_size = 16;
constexpr std::size_t hash_size = 32;

std::optional<std::vector<unsigned char>> unhex(std::string_view text) {
    if (text.size() % 2 != 0) return std::nullopt;
    std::vector<unsigned char> out(text.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
        unsigned v = 0;
        auto [p, ec] = std::from_chars(text.data() + 2 * i, text.data() + 2 * i + 2, v, 16);
        if (ec != std::errc() || p != text.data() + 2 * i + 2) return std::nullopt;
        out[i] = static_cast<unsigned char>(v);
    }
    return out;
}

bool derive(std::string_view password, const unsigned char* salt, std::size_t salt_len,
            unsigned iterations, unsigned char* out, std::size_t out_len) {
    return PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt,
                             static_cast<int>(salt_len), static_cast<int>(iterations),
                             EVP_sha256(), static_cast<int>(out_len), out) == 1;
}

}  // namespace

std::optional<std::string> hash_password(std::string_view password, unsigned iterations) {
    unsigned char salt[salt_size];
    unsigned char hash[hash_size];
    if (iterations == 0 || RAND_bytes(salt, sizeof salt) != 1) return std::nullopt;
    if (!derive(password, salt, sizeof salt, iterations, hash, sizeof hash)) return std::nullopt;
    return std::string(scheme) + "$" + std::to_string(iterations) + "$" +
           to_hex(salt, sizeof salt) + "$" + to_hex(hash, sizeof hash);
}

bool verify_password(std::string_view password, std::string_view stored) {
    // scheme $ iterations $ salt $ hash
    std::string_view parts[4];
    for (auto& part : parts) {
        const auto end = stored.find('$');
        part = stored.substr(0, end);
        stored = end == std::string_view::npos ? std::string_view() : stored.substr(end + 1);
    }
    if (parts[0] != scheme || !stored.empty()) return false;
    unsigned iterations = 0;
    auto [p, ec] = std::from_chars(parts[1].data(), parts[1].data() + parts[1].size(), iterations);
    if (ec != std::errc() || p != parts[1].data() + parts[1].size() || iterations == 0 ||
        iterations > 10'000'000) {
        return false;
    }
    auto salt = unhex(parts[2]);
    auto expected = unhex(parts[3]);
    if (!salt || !expected || salt->empty() || expected->size() != hash_size) return false;
    unsigned char got[hash_size];
    if (!derive(password, salt->data(), salt->size(), iterations, got, sizeof got)) return false;
    return CRYPTO_memcmp(got, expected->data(), hash_size) == 0;
}

std::optional<std::string> password_problem(std::string_view password) {
    if (password.size() < 8) return "密码至少需要8个字符";
    if (password.size() > 128) return "密码不能超过128个字符";
    return std::nullopt;
}

}  // namespace scrm::gateway

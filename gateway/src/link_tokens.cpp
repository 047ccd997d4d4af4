// See link_tokens.hpp.
#include "scrm/gateway/link_tokens.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "scrm/gateway/agent_requests.hpp"

namespace scrm::gateway {
namespace {

std::string b64url(const unsigned char* data, std::size_t n) {
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (std::size_t i = 0; i < n; ++i) {
        acc = (acc << 8) | data[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out += alphabet[(acc >> bits) & 0x3F];
        }
    }
    if (bits > 0) out += alphabet[(acc << (6 - bits)) & 0x3F];
    return out;
}

}  // namespace

std::string link_signer::token_for(std::uint64_t id) const {
    const std::string id_text = std::to_string(id);
    const std::string message = purpose_ + ":" + id_text;
    std::array<unsigned char, 32> mac{};
    unsigned int len = 0;
    HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
         reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac.data(), &len);
    return id_text + "." + b64url(mac.data(), 16);
}

std::optional<std::uint64_t> link_signer::verify(std::string_view token) const {
    const auto dot = token.find('.');
    if (dot == std::string_view::npos || token.size() > 64) return std::nullopt;
    const auto id = parse_id(token.substr(0, dot));
    if (!id) return std::nullopt;
    const std::string expected = token_for(*id);
    if (expected.size() != token.size() ||
        CRYPTO_memcmp(expected.data(), token.data(), token.size()) != 0) {
        return std::nullopt;
    }
    return id;
}

}  // namespace scrm::gateway

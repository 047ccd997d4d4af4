// SHA-1 request signatures over sorted strings, and their constant-time comparison.
#include "scrm/wechat/signature.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <vector>

#include "scrm/wechat/error.hpp"

namespace scrm::wechat {

std::string sorted_sha1_hex(std::initializer_list<std::string_view> parts) {
    std::vector<std::string_view> sorted(parts);
    std::sort(sorted.begin(), sorted.end());
    std::string joined;
    std::size_t size = 0;
    for (auto p : sorted) size += p.size();
    joined.reserve(size);
    for (auto p : sorted) joined.append(p);

    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int md_len = 0;
    // EVP_Digest fails only on allocation failure inside OpenSSL; the empty result then never
    // equals a real signature, so verification fails closed.
    if (EVP_Digest(joined.data(), joined.size(), md.data(), &md_len, EVP_sha1(), nullptr) != 1) {
        return {};
    }
    static constexpr char digits[] = "0123456789abcdef";
    std::string hex(std::size_t{md_len} * 2, '\0');
    for (std::size_t i = 0; i < md_len; ++i) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 0x0f];
    }
    return hex;
}

std::string url_signature(std::string_view token, std::string_view timestamp,
                          std::string_view nonce) {
    return sorted_sha1_hex({token, timestamp, nonce});
}

std::string msg_signature(std::string_view token, std::string_view timestamp,
                          std::string_view nonce, std::string_view encrypt) {
    return sorted_sha1_hex({token, timestamp, nonce, encrypt});
}

bool signature_equal(std::string_view expected, std::string_view given) noexcept {
    if (expected.empty() || expected.size() != given.size()) return false;
    return CRYPTO_memcmp(expected.data(), given.data(), expected.size()) == 0;
}

scrm::result<void> verify_url_signature(std::string_view token, std::string_view timestamp,
                                        std::string_view nonce, std::string_view signature) {
    if (!signature_equal(url_signature(token, timestamp, nonce), signature)) {
        return make_error_code(wechat_errc::signature_mismatch);
    }
    return {};
}

scrm::result<void> verify_msg_signature(std::string_view token, std::string_view timestamp,
                                        std::string_view nonce, std::string_view encrypt,
                                        std::string_view signature) {
    if (!signature_equal(msg_signature(token, timestamp, nonce, encrypt), signature)) {
        return make_error_code(wechat_errc::signature_mismatch);
    }
    return {};
}

}  // namespace scrm::wechat

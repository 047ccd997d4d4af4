// Bytes as lowercase hexadecimal: digests, salts and random tokens. Header-only, pure.
#pragma once

#include <cstddef>
#include <string>

namespace scrm {

inline std::string to_hex(const unsigned char* data, std::size_t n) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(n * 2);
    for (std::size_t i = 0; i < n; ++i) {
        out += digits[data[i] >> 4];
        out += digits[data[i] & 15];
    }
    return out;
}

}  // namespace scrm

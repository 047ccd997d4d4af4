// Throw-away TLS material made at test time (OpenSSL's C API, no network, nothing committed): a CA
// and a server certificate it signs, so clients can be shown to verify the fake's certificate
// with the CA file — and to refuse it without.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <string>
#include <string_view>

#include "scrm/common/error.hpp"

namespace scrm::fakes {

struct pki_files {
    std::filesystem::path ca_cert;      // the CA certificate (PEM): what clients trust
    std::filesystem::path server_cert;  // the server certificate (PEM), signed by the CA
    std::filesystem::path server_key;   // its private key (PEM, unencrypted, mode 0600)
};
std::ostream& operator<<(std::ostream& os, const pki_files& f);  // the paths

// Creates `dir` if needed and writes ca.pem, server.pem and server.key there: a fresh EC P-256 CA
// named `ca_name` and a server certificate for IP 127.0.0.1, IP ::1 and DNS localhost, both valid
// from an hour ago for 30 days. errc::server_error if OpenSSL fails; errc::unavailable if a file
// cannot be written.
scrm::result<pki_files> generate_test_pki(const std::filesystem::path& dir,
                                          std::string_view ca_name = "fake-wechat test CA");

}  // namespace scrm::fakes

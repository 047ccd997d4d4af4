// Test-time CA and server certificate with OpenSSL 3's C API.
#include "scrm/fakes/test_pki.hpp"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <memory>
#include <ostream>

namespace scrm::fakes {

namespace {

struct pkey_free {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct x509_free {
    void operator()(X509* p) const { X509_free(p); }
};
struct file_close {
    void operator()(FILE* f) const { std::fclose(f); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using x509_ptr = std::unique_ptr<X509, x509_free>;

pkey_ptr new_key() {
    return pkey_ptr(EVP_EC_gen("P-256"));
}

bool add_ext(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (!ext) return false;
    const bool ok = X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

bool random_serial(X509* cert) {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1) return false;
    bytes[0] &= 0x7F;  // positive
    BIGNUM* bn = BN_bin2bn(bytes, sizeof bytes, nullptr);
    if (!bn) return false;
    const bool ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != nullptr;
    BN_free(bn);
    return ok;
}

// A certificate for `key` named `cn`, signed by `issuer_key` (issuer == nullptr: self-signed).
x509_ptr make_cert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
                   bool is_ca) {
    x509_ptr cert(X509_new());
    if (!cert || X509_set_version(cert.get(), 2) != 1 || !random_serial(cert.get())) return {};
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 30L * 24 * 3600);
    if (X509_set_pubkey(cert.get(), key) != 1) return {};
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("scrm tests"), -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509* signer = issuer ? issuer : cert.get();
    if (X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)) != 1) return {};
    bool ok = add_ext(cert.get(), signer, NID_subject_key_identifier, "hash");
    if (is_ca) {
        ok = ok && add_ext(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
        ok = ok && add_ext(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        ok = ok && add_ext(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
        ok = ok && add_ext(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
        ok = ok && add_ext(cert.get(), signer, NID_key_usage, "critical,digitalSignature");
        ok = ok && add_ext(cert.get(), signer, NID_ext_key_usage, "serverAuth");
        ok = ok &&
             add_ext(cert.get(), signer, NID_subject_alt_name, "IP:127.0.0.1,IP:::1,DNS:localhost");
    }
    if (!ok) return {};
    if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) return {};
    return cert;
}

bool write_cert(const std::filesystem::path& p, X509* cert) {
    std::unique_ptr<FILE, file_close> f(std::fopen(p.c_str(), "w"));
    return f && PEM_write_X509(f.get(), cert) == 1;
}

bool write_key(const std::filesystem::path& p, EVP_PKEY* key) {
    std::unique_ptr<FILE, file_close> f(std::fopen(p.c_str(), "w"));
    if (!f) return false;
    ::chmod(p.c_str(), 0600);
    return PEM_write_PrivateKey(f.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const pki_files& f) {
    return os << "pki_files{ca: " << f.ca_cert << ", cert: " << f.server_cert
              << ", key: " << f.server_key << '}';
}

scrm::result<pki_files> generate_test_pki(const std::filesystem::path& dir,
                                          std::string_view ca_name) {
    std::error_code fec;
    std::filesystem::create_directories(dir, fec);
    if (fec) return make_error_code(errc::unavailable);
    pkey_ptr ca_key = new_key();
    pkey_ptr server_key = new_key();
    if (!ca_key || !server_key) return make_error_code(errc::server_error);
    x509_ptr ca = make_cert(ca_key.get(), std::string(ca_name), nullptr, ca_key.get(), true);
    if (!ca) return make_error_code(errc::server_error);
    x509_ptr server = make_cert(server_key.get(), "localhost", ca.get(), ca_key.get(), false);
    if (!server) return make_error_code(errc::server_error);
    pki_files out{dir / "ca.pem", dir / "server.pem", dir / "server.key"};
    if (!write_cert(out.ca_cert, ca.get()) || !write_cert(out.server_cert, server.get()) ||
        !write_key(out.server_key, server_key.get())) {
        return make_error_code(errc::unavailable);
    }
    return out;
}

}  // namespace scrm::fakes

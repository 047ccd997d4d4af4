// The "wechat" error category: names of wechat_errc values, their project-wide class and their
// official WXBizMsgCrypt codes.
#include "scrm/wechat/error.hpp"

#include <string>

namespace scrm::wechat {
namespace {

class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "wechat"; }
    std::string message(int ev) const override {
        switch (static_cast<wechat_errc>(ev)) {
            case wechat_errc::ok: return "ok";
            case wechat_errc::signature_mismatch: return "signature mismatch";
            case wechat_errc::bad_xml: return "malformed XML";
            case wechat_errc::forbidden_dtd: return "DOCTYPE or ENTITY declaration refused";
            case wechat_errc::missing_field: return "required XML element missing";
            case wechat_errc::bad_field: return "XML element is not a valid number";
            case wechat_errc::bad_aes_key: return "invalid EncodingAESKey";
            case wechat_errc::appid_mismatch: return "AppID mismatch";
            case wechat_errc::bad_base64: return "invalid base64";
            case wechat_errc::bad_ciphertext: return "ciphertext length not a multiple of 32";
            case wechat_errc::bad_padding: return "invalid PKCS#7 padding";
            case wechat_errc::bad_length_field: return "message length field out of range";
            case wechat_errc::crypto_failure: return "crypto library failure";
        }
        return "unknown wechat error";
    }
};

}  // namespace

const boost::system::error_category& wechat_category() noexcept {
    static const category instance;
    return instance;
}

scrm::errc general_errc(wechat_errc e) noexcept {
    switch (e) {
        case wechat_errc::ok: return scrm::errc::ok;
        case wechat_errc::crypto_failure: return scrm::errc::server_error;
        default: return scrm::errc::bad_input;
    }
}

int official_code(wechat_errc e) noexcept {
    switch (e) {
        case wechat_errc::ok: return 0;
        case wechat_errc::signature_mismatch: return -40001;
        case wechat_errc::bad_xml:
        case wechat_errc::forbidden_dtd:
        case wechat_errc::missing_field:
        case wechat_errc::bad_field: return -40002;
        case wechat_errc::bad_aes_key: return -40004;
        case wechat_errc::appid_mismatch: return -40005;
        case wechat_errc::bad_base64: return -40010;
        case wechat_errc::bad_ciphertext:
        case wechat_errc::bad_padding: return -40007;
        case wechat_errc::bad_length_field: return -40008;
        case wechat_errc::crypto_failure: return -40006;
    }
    return 0;
}

}  // namespace scrm::wechat

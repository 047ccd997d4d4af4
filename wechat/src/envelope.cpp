// Opening encrypted POST bodies (verify, then decrypt) and sealing encrypted replies.
#include "scrm/wechat/envelope.hpp"

#include <ostream>

#include "scrm/wechat/signature.hpp"
#include "scrm/wechat/xml_text.hpp"

namespace scrm::wechat {

scrm::result<opened_envelope> open_envelope(std::string_view token, const key_ring& keys,
                                            std::string_view appid, const safe_mode_query& query,
                                            std::string_view body) {
    auto envelope = parse_envelope(body);
    if (!envelope) return envelope.error();
    auto verified = verify_msg_signature(token, query.timestamp, query.nonce, envelope->encrypt,
                                         query.msg_signature);
    if (!verified) return verified.error();
    auto decrypted = decrypt(keys, appid, envelope->encrypt);
    if (!decrypted) return decrypted.error();
    return opened_envelope{std::move(*envelope), std::move(*decrypted)};
}

scrm::result<encrypted_reply> seal_reply(std::string_view token, const aes_key& key,
                                         std::string_view appid, std::string_view reply_xml,
                                         std::int64_t timestamp, std::string_view nonce,
                                         random_source& rng) {
    auto cipher = encrypt(key, appid, reply_xml, rng);
    if (!cipher) return cipher.error();
    encrypted_reply r;
    r.encrypt = std::move(*cipher);
    r.timestamp = timestamp;
    r.nonce = std::string(nonce);
    r.msg_signature = msg_signature(token, std::to_string(timestamp), nonce, r.encrypt);
    return r;
}

std::string to_xml(const encrypted_reply& r) {
    std::string out;
    out.reserve(r.encrypt.size() + r.nonce.size() + 160);
    out += "<xml><Encrypt>";
    append_cdata(out, r.encrypt);
    out += "</Encrypt><MsgSignature>";
    append_cdata(out, r.msg_signature);
    out += "</MsgSignature><TimeStamp>";
    out += std::to_string(r.timestamp);
    out += "</TimeStamp><Nonce>";
    append_cdata(out, r.nonce);
    out += "</Nonce></xml>";
    return out;
}

std::ostream& operator<<(std::ostream& os, const opened_envelope& o) {
    return os << "opened_envelope{" << o.envelope << ", " << o.decrypted << '}';
}

std::ostream& operator<<(std::ostream& os, const encrypted_reply& r) {
    return os << "encrypted_reply{encrypt: \"" << r.encrypt << "\", msg_signature: \""
              << r.msg_signature << "\", timestamp: " << r.timestamp << ", nonce: \"" << r.nonce
              << "\"}";
}

}  // namespace scrm::wechat

// The sender's pure half: inbound XML, signed and encrypted callback requests, and the judgement of
// the gateway's passive reply. Crypto, signatures and CDATA come from wechat_core.
#include "scrm/fakes/inbound.hpp"

#include <pugixml.hpp>

#include <cctype>
#include <cstdio>
#include <ostream>

#include "scrm/wechat/signature.hpp"
#include "scrm/wechat/xml_text.hpp"

namespace scrm::fakes {

const char* to_string(encryption_mode m) noexcept {
    switch (m) {
        case encryption_mode::plain: return "plain";
        case encryption_mode::compatible: return "compatible";
        case encryption_mode::safe: return "safe";
    }
    return "?";
}

std::ostream& operator<<(std::ostream& os, encryption_mode m) {
    return os << to_string(m);
}

scrm::result<encryption_mode> parse_encryption_mode(std::string_view text) {
    if (text == "plain") return encryption_mode::plain;
    if (text == "compatible") return encryption_mode::compatible;
    if (text == "safe") return encryption_mode::safe;
    return make_error_code(errc::bad_input);
}

namespace {

bool is_message_type(std::string_view t) {
    return t == "text" || t == "image" || t == "voice" || t == "video" || t == "shortvideo" ||
           t == "location" || t == "link";
}

void element(std::string& out, std::string_view name, std::string_view value) {
    out += '<';
    out += name;
    out += '>';
    wechat::append_cdata(out, value);
    out += "</";
    out += name;
    out += '>';
}

void number(std::string& out, std::string_view name, const std::string& value) {
    out += '<';
    out += name;
    out += '>';
    out += value;
    out += "</";
    out += name;
    out += '>';
}

std::string decimal(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6f", v);
    return buf;
}

// Percent-encodes everything but unreserved characters (RFC 3986).
std::string url_encode(std::string_view s) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

// The concatenated text and CDATA children of `n` (a "]]>" split spans several sections).
std::string text_of(const pugi::xml_node& n) {
    std::string out;
    for (const auto& c : n.children()) {
        if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) out += c.value();
    }
    return out;
}

}  // namespace

bool inbound_spec::is_event() const {
    return !is_message_type(type);
}

std::ostream& operator<<(std::ostream& os, const inbound_spec& s) {
    return os << "inbound_spec{type: " << s.type << ", from: " << s.from << '}';
}

namespace inbound {

inbound_spec text(std::string openid, std::string content) {
    inbound_spec s;
    s.type = "text";
    s.from = std::move(openid);
    s.content = std::move(content);
    return s;
}

inbound_spec image(std::string openid, std::string media_id, std::string pic_url) {
    inbound_spec s;
    s.type = "image";
    s.from = std::move(openid);
    s.media_id = std::move(media_id);
    s.pic_url = pic_url.empty() ? "http://mmbiz.qpic.cn/mmbiz_jpg/" + s.media_id + "/0"
                                : std::move(pic_url);
    return s;
}

inbound_spec voice(std::string openid, std::string media_id, std::string recognition) {
    inbound_spec s;
    s.type = "voice";
    s.from = std::move(openid);
    s.media_id = std::move(media_id);
    s.recognition = std::move(recognition);
    return s;
}

inbound_spec video(std::string openid, std::string media_id, std::string thumb_media_id) {
    inbound_spec s;
    s.type = "video";
    s.from = std::move(openid);
    s.media_id = std::move(media_id);
    s.thumb_media_id = std::move(thumb_media_id);
    return s;
}

inbound_spec location(std::string openid, double latitude, double longitude, std::string label) {
    inbound_spec s;
    s.type = "location";
    s.from = std::move(openid);
    s.latitude = latitude;
    s.longitude = longitude;
    s.label = std::move(label);
    return s;
}

inbound_spec link(std::string openid, std::string title, std::string description, std::string url) {
    inbound_spec s;
    s.type = "link";
    s.from = std::move(openid);
    s.title = std::move(title);
    s.description = std::move(description);
    s.url = std::move(url);
    return s;
}

inbound_spec subscribe(std::string openid, const std::string& scene, std::string ticket) {
    inbound_spec s;
    s.type = "subscribe";
    s.from = std::move(openid);
    if (!scene.empty()) s.event_key = "qrscene_" + scene;
    s.ticket = std::move(ticket);
    return s;
}

inbound_spec unsubscribe(std::string openid) {
    inbound_spec s;
    s.type = "unsubscribe";
    s.from = std::move(openid);
    return s;
}

inbound_spec scan(std::string openid, std::string scene, std::string ticket) {
    inbound_spec s;
    s.type = "SCAN";
    s.from = std::move(openid);
    s.event_key = std::move(scene);
    s.ticket = std::move(ticket);
    return s;
}

inbound_spec qr(std::string openid, std::string ticket) {
    inbound_spec s;
    s.type = "qr";
    s.from = std::move(openid);
    s.ticket = std::move(ticket);
    return s;
}

inbound_spec click(std::string openid, std::string key) {
    inbound_spec s;
    s.type = "CLICK";
    s.from = std::move(openid);
    s.event_key = std::move(key);
    return s;
}

inbound_spec view(std::string openid, std::string url) {
    inbound_spec s;
    s.type = "VIEW";
    s.from = std::move(openid);
    s.event_key = std::move(url);
    return s;
}

inbound_spec template_finish(std::string openid, std::uint64_t msgid, std::string status) {
    inbound_spec s;
    s.type = "TEMPLATESENDJOBFINISH";
    s.from = std::move(openid);
    s.job_msg_id = msgid;
    s.status = std::move(status);
    return s;
}

}  // namespace inbound

interaction interaction_of(const inbound_spec& s) {
    if (is_message_type(s.type)) return interaction::message;
    if (s.type == "subscribe" || s.type == "SCAN" || s.type == "CLICK" ||
        s.type == "scancode_push" || s.type == "scancode_waitmsg") {
        return interaction::event;
    }
    return interaction::none;
}

std::string inbound_xml(std::string_view original_id, const inbound_spec& s,
                        std::int64_t create_time, std::uint64_t msg_id) {
    std::string out = "<xml>";
    element(out, "ToUserName", original_id);
    element(out, "FromUserName", s.from);
    number(out, "CreateTime", std::to_string(create_time));
    const std::string& t = s.type;
    if (is_message_type(t)) {
        element(out, "MsgType", t);
        if (t == "text") {
            element(out, "Content", s.content);
            if (!s.biz_msg_menu_id.empty()) element(out, "bizmsgmenuid", s.biz_msg_menu_id);
        } else if (t == "image") {
            element(out, "PicUrl", s.pic_url);
            element(out, "MediaId", s.media_id);
        } else if (t == "voice") {
            element(out, "MediaId", s.media_id);
            element(out, "Format", s.format);
            if (!s.recognition.empty()) element(out, "Recognition", s.recognition);
        } else if (t == "video" || t == "shortvideo") {
            element(out, "MediaId", s.media_id);
            element(out, "ThumbMediaId", s.thumb_media_id);
        } else if (t == "location") {
            number(out, "Location_X", decimal(s.latitude));
            number(out, "Location_Y", decimal(s.longitude));
            number(out, "Scale", std::to_string(s.scale));
            element(out, "Label", s.label);
        } else if (t == "link") {
            element(out, "Title", s.title);
            element(out, "Description", s.description);
            element(out, "Url", s.url);
        }
    } else {
        element(out, "MsgType", "event");
        element(out, "Event", t);
        if (t == "TEMPLATESENDJOBFINISH" || t == "MASSSENDJOBFINISH") {
            number(out, "MsgID", std::to_string(s.job_msg_id));  // capital D (§2.3)
            element(out, "Status", s.status);
        } else if (t == "LOCATION") {
            number(out, "Latitude", decimal(s.latitude));
            number(out, "Longitude", decimal(s.longitude));
            number(out, "Precision", decimal(s.precision));
        } else {
            element(out, "EventKey", s.event_key);
            if (!s.ticket.empty()) element(out, "Ticket", s.ticket);
        }
    }
    for (const auto& [name, value] : s.extra) element(out, name, value);
    if (is_message_type(t)) number(out, "MsgId", std::to_string(msg_id));
    out += "</xml>";
    return out;
}

scrm::result<signed_callback> sign_callback(const account& acct, std::string_view openid,
                                            std::string_view plain_xml, std::string_view timestamp,
                                            std::string_view nonce, wechat::random_source& rng) {
    signed_callback out;
    out.timestamp = std::string(timestamp);
    out.nonce = std::string(nonce);
    out.signature = wechat::url_signature(acct.token, timestamp, nonce);
    out.query = "signature=" + out.signature + "&timestamp=" + url_encode(timestamp) +
                "&nonce=" + url_encode(nonce) + "&openid=" + url_encode(openid);
    if (acct.mode == encryption_mode::plain) {
        out.body = std::string(plain_xml);
        return out;
    }
    auto key = wechat::aes_key::from_encoding_aes_key(acct.encoding_aes_key);
    if (!key) return key.error();
    auto cipher = wechat::encrypt(*key, acct.appid, plain_xml, rng);
    if (!cipher) return cipher.error();
    out.encrypt = std::move(*cipher);
    out.msg_signature = wechat::msg_signature(acct.token, timestamp, nonce, out.encrypt);
    out.query += "&encrypt_type=aes&msg_signature=" + out.msg_signature;
    if (acct.mode == encryption_mode::safe) {
        out.body = "<xml>";
        element(out.body, "ToUserName", acct.original_id);
        element(out.body, "Encrypt", out.encrypt);
        out.body += "</xml>";
    } else {
        // Compatible mode: the plaintext fields and <Encrypt> in the same document.
        std::string body(plain_xml);
        const auto end = body.rfind("</xml>");
        std::string enc;
        element(enc, "Encrypt", out.encrypt);
        body.insert(end == std::string::npos ? body.size() : end, enc);
        out.body = std::move(body);
    }
    return out;
}

const char* to_string(passive_reply::kind k) noexcept {
    switch (k) {
        case passive_reply::kind::none: return "none";
        case passive_reply::kind::xml: return "xml";
        case passive_reply::kind::encrypted: return "encrypted";
        case passive_reply::kind::invalid: return "invalid";
    }
    return "?";
}

std::ostream& operator<<(std::ostream& os, const passive_reply& r) {
    os << "passive_reply{" << to_string(r.k);
    if (!r.msg_type.empty()) os << ", msg_type: " << r.msg_type;
    if (!r.problem.empty()) os << ", problem: " << r.problem;
    return os << '}';
}

namespace {

passive_reply invalid(std::string why) {
    passive_reply r;
    r.k = passive_reply::kind::invalid;
    r.problem = std::move(why);
    return r;
}

// Parses `xml` as a document with exactly one root element <xml>.
bool load_root(pugi::xml_document& doc, std::string_view xml, pugi::xml_node& root,
               std::string& problem) {
    // Declarations and DOCTYPEs are kept as nodes so that they can be refused.
    const auto res = doc.load_buffer(
        xml.data(), xml.size(), pugi::parse_default | pugi::parse_declaration | pugi::parse_doctype,
        pugi::encoding_utf8);
    if (!res) {
        problem = std::string("not well-formed XML: ") + res.description();
        return false;
    }
    int elements = 0;
    for (const auto& c : doc.children()) {
        if (c.type() == pugi::node_element) {
            ++elements;
            root = c;
        } else if (c.type() == pugi::node_declaration || c.type() == pugi::node_doctype) {
            problem = "an XML declaration or DOCTYPE before <xml>";
            return false;
        }
    }
    if (elements != 1 || std::string_view(root.name()) != "xml") {
        problem = "the document must be exactly one <xml> element";
        return false;
    }
    return true;
}

// Checks a plaintext reply document (§3.2) and fills the summary fields.
bool check_reply_xml(const account& acct, std::string_view openid, std::string_view xml,
                     passive_reply& out) {
    pugi::xml_document doc;
    pugi::xml_node root;
    if (!load_root(doc, xml, root, out.problem)) return false;
    if (text_of(root.child("ToUserName")) != openid) {
        out.problem = "ToUserName is not the fan's OpenID";
        return false;
    }
    if (text_of(root.child("FromUserName")) != acct.original_id) {
        out.problem = "FromUserName is not the account's original id";
        return false;
    }
    const std::string create_time = text_of(root.child("CreateTime"));
    if (create_time.empty() || create_time.find_first_not_of("0123456789") != std::string::npos) {
        out.problem = "CreateTime is missing or not a number";
        return false;
    }
    out.msg_type = text_of(root.child("MsgType"));
    const std::string& t = out.msg_type;
    if (t == "text") {
        out.content = text_of(root.child("Content"));
        if (out.content.empty()) {
            // Not the same as an empty body (§3.1): WeChat has nothing to show.
            out.problem = "a text reply with empty Content";
            return false;
        }
    } else if (t == "image" || t == "voice") {
        out.media_id = text_of(root.child(t == "image" ? "Image" : "Voice").child("MediaId"));
        if (out.media_id.empty()) {
            out.problem = t + " reply without MediaId";
            return false;
        }
    } else if (t == "video") {
        out.media_id = text_of(root.child("Video").child("MediaId"));
        if (out.media_id.empty()) {
            out.problem = "video reply without MediaId";
            return false;
        }
    } else if (t == "news") {
        std::size_t items = 0;
        for (const auto& item : root.child("Articles").children("item")) {
            (void)item;
            ++items;
        }
        const std::string count = text_of(root.child("ArticleCount"));
        if (items == 0 || items > 8 || count != std::to_string(items)) {
            out.problem = "news reply: ArticleCount must equal the 1–8 <item>s";
            return false;
        }
    } else if (t != "music" && t != "transfer_customer_service") {
        out.problem = "unknown MsgType \"" + t + "\"";
        return false;
    }
    return true;
}

}  // namespace

passive_reply judge_reply(const account& acct, std::string_view openid, unsigned status,
                          std::string_view body) {
    if (status != 200) return invalid("HTTP status " + std::to_string(status));
    if (body.empty() || body == "success") {
        passive_reply r;
        r.k = passive_reply::kind::none;
        return r;
    }
    pugi::xml_document doc;
    pugi::xml_node root;
    std::string problem;
    if (!load_root(doc, body, root, problem)) return invalid(problem);
    if (!root.child("Encrypt")) {
        if (acct.mode == encryption_mode::safe) {
            return invalid("a plaintext reply in safe mode (it must be encrypted)");
        }
        passive_reply r;
        r.k = passive_reply::kind::xml;
        r.xml = std::string(body);
        if (!check_reply_xml(acct, openid, body, r)) return invalid(r.problem);
        return r;
    }
    if (acct.mode == encryption_mode::plain) return invalid("an encrypted reply in plain mode");
    const std::string encrypt = text_of(root.child("Encrypt"));
    const std::string signature = text_of(root.child("MsgSignature"));
    const std::string timestamp = text_of(root.child("TimeStamp"));
    const std::string nonce = text_of(root.child("Nonce"));
    if (signature.empty() || timestamp.empty() || nonce.empty()) {
        return invalid("encrypted reply without MsgSignature, TimeStamp or Nonce");
    }
    if (!wechat::verify_msg_signature(acct.token, timestamp, nonce, encrypt, signature)) {
        return invalid("encrypted reply: MsgSignature does not verify");
    }
    auto key = wechat::aes_key::from_encoding_aes_key(acct.encoding_aes_key);
    if (!key) return invalid("the account's EncodingAESKey is invalid");
    auto plain = wechat::decrypt(wechat::key_ring{*key, std::nullopt}, acct.appid, encrypt);
    if (!plain) return invalid("encrypted reply does not decrypt: " + plain.error().message());
    passive_reply r;
    r.k = passive_reply::kind::encrypted;
    r.xml = plain->message;
    if (!check_reply_xml(acct, openid, r.xml, r)) return invalid("decrypted reply: " + r.problem);
    return r;
}

}  // namespace scrm::fakes

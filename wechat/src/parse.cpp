// Inbound XML: the hardening pre-pass (sanitising, DTD refusal, character references), loading with
// pugixml, and reading fields into the typed message and event values.
#include "scrm/wechat/parse.hpp"

#include <pugixml.hpp>

#include <charconv>
#include <cmath>
#include <ostream>
#include <system_error>

#include "scrm/wechat/error.hpp"
#include "scrm/wechat/xml_text.hpp"

namespace scrm::wechat {
namespace {

using boost::system::error_code;

bool starts_with_at(std::string_view s, std::size_t i, std::string_view prefix) noexcept {
    return s.substr(i, prefix.size()) == prefix;
}

bool istarts_with_at(std::string_view s, std::size_t i, std::string_view upper_prefix) noexcept {
    if (s.size() - i < upper_prefix.size()) return false;
    for (std::size_t k = 0; k < upper_prefix.size(); ++k) {
        char c = s[i + k];
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        if (c != upper_prefix[k]) return false;
    }
    return true;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i];
        char y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

std::string_view trim(std::string_view s) noexcept {
    constexpr std::string_view ws = " \t\r\n";
    const auto b = s.find_first_not_of(ws);
    if (b == std::string_view::npos) return {};
    return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// Whether code point `v` may appear in an XML 1.0 document.
constexpr bool xml_char(std::uint64_t v) noexcept {
    if (v < 0x20) return v == 0x09 || v == 0x0A || v == 0x0D;
    if (v >= 0xD800 && v <= 0xDFFF) return false;
    return v != 0xFFFE && v != 0xFFFF && v <= 0x10FFFF;
}

// If text[i] opens a character reference that pugixml would decode ("&#" digits ";" or "&#x" hex
// ";" — the same grammar pugixml accepts), its length and whether the code point is allowed.
struct char_ref {
    std::size_t length = 0;  // 0: not a complete reference
    bool allowed = true;
};
char_ref read_char_ref(std::string_view text, std::size_t i) noexcept {
    std::size_t j = i + 2;  // past "&#"
    const bool hex = j < text.size() && text[j] == 'x';
    if (hex) ++j;
    const std::size_t digits_from = j;
    std::uint64_t v = 0;
    for (; j < text.size(); ++j) {
        const char c = text[j];
        int d = -1;
        if (c >= '0' && c <= '9') d = c - '0';
        if (hex && c >= 'a' && c <= 'f') d = c - 'a' + 10;
        if (hex && c >= 'A' && c <= 'F') d = c - 'A' + 10;
        if (d < 0) break;
        v = v * (hex ? 16 : 10) + static_cast<std::uint64_t>(d);
        if (v > 0x10FFFF) v = 0x110000;  // saturate: pugixml's unsigned arithmetic would wrap
    }
    if (j == digits_from || j >= text.size() || text[j] != ';') return {};
    return {j + 1 - i, xml_char(v)};
}

// Step 1 and the first half of step 2 of the contract in parse.hpp. The scan follows the lexical
// structure the way pugixml does — CDATA sections, comments and processing instructions are opaque,
// and tags are skipped with their quoted attribute values — so that "<![CDATA[" inside an
// attribute cannot make it lose track of what is text.
scrm::result<std::string> prepare(std::string_view raw) {
    const std::string text = sanitize_text(raw);
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    auto copy_through = [&](std::string_view terminator, std::size_t search_from) {
        const auto end = text.find(terminator, search_from);
        const std::size_t stop = end == std::string::npos ? text.size() : end + terminator.size();
        out.append(text, i, stop - i);
        i = stop;
    };
    // A start or end tag: up to the '>' outside quotes (or a '<', where the parser will fail).
    auto copy_tag = [&] {
        std::size_t j = i + 1;
        char quote = 0;
        for (; j < text.size(); ++j) {
            const char t = text[j];
            if (quote != 0) {
                if (t == quote) quote = 0;
            } else if (t == '"' || t == '\'') {
                quote = t;
            } else if (t == '>') {
                ++j;
                break;
            } else if (t == '<') {
                break;
            }
        }
        out.append(text, i, j - i);
        i = j;
    };
    while (i < text.size()) {
        const char c = text[i];
        if (c == '<') {
            if (starts_with_at(text, i, "<![CDATA[")) {
                copy_through("]]>", i + 9);
            } else if (starts_with_at(text, i, "<!--")) {
                copy_through("-->", i + 4);
            } else if (starts_with_at(text, i, "<?")) {
                copy_through("?>", i + 2);
            } else if (istarts_with_at(text, i, "<!DOCTYPE") ||
                       istarts_with_at(text, i, "<!ENTITY")) {
                return make_error_code(wechat_errc::forbidden_dtd);
            } else {
                copy_tag();
            }
            continue;
        }
        if (c == '&' && starts_with_at(text, i, "&#")) {
            const auto ref = read_char_ref(text, i);
            if (ref.length > 0 && !ref.allowed) {
                out.append("&#xFFFD;");
                i += ref.length;
                continue;
            }
        }
        out += c;
        ++i;
    }
    return out;
}

// Whether any node of the tree is a doctype (iterative walk: no recursion on hostile depth).
bool has_doctype(const pugi::xml_document& doc) noexcept {
    pugi::xml_node n = doc.first_child();
    while (n) {
        if (n.type() == pugi::node_doctype) return true;
        if (n.first_child()) {
            n = n.first_child();
            continue;
        }
        while (n && !n.next_sibling()) {
            n = n.parent();
            if (n == doc) return false;
        }
        if (n) n = n.next_sibling();
    }
    return false;
}

// Loads `raw` into `doc` and returns the <xml> root element.
scrm::result<pugi::xml_node> load(std::string_view raw, pugi::xml_document& doc) {
    auto prepared = prepare(raw);
    if (!prepared) return prepared.error();
    constexpr unsigned options =
        pugi::parse_default | pugi::parse_doctype | pugi::parse_ws_pcdata_single;
    const auto parsed =
        doc.load_buffer(prepared->data(), prepared->size(), options, pugi::encoding_utf8);
    if (!parsed) return make_error_code(wechat_errc::bad_xml);
    if (has_doctype(doc)) return make_error_code(wechat_errc::forbidden_dtd);
    // pugixml accepts fragments with several top-level elements; a document has exactly one.
    pugi::xml_node root;
    for (auto n : doc.children()) {
        if (n.type() != pugi::node_element) continue;
        if (root) return make_error_code(wechat_errc::bad_xml);
        root = n;
    }
    if (!root || std::string_view(root.name()) != "xml") {
        return make_error_code(wechat_errc::bad_xml);
    }
    return root;
}

// Reads fields of one element; the first error is kept and later reads return defaults, so a
// whole body is read straight through and the error checked once at the end.
class reader {
public:
    reader(pugi::xml_node node, error_code& ec) : node_(node), ec_(ec) {}

    bool has(const char* name) const { return static_cast<bool>(node_.child(name)); }

    reader child(const char* name) const { return {node_.child(name), ec_}; }

    std::vector<reader> children(const char* name) const {
        std::vector<reader> out;
        for (auto c : node_.children(name)) out.emplace_back(c, ec_);
        return out;
    }

    // Absent: "".
    std::string str(const char* name) const {
        const auto el = node_.child(name);
        if (!el) return {};
        std::string value;
        for (auto c : el.children()) {
            if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) value += c.value();
        }
        // Character references were decoded by the parser; only allowed ones remain (see
        // prepare), but a reference above U+FFFF is re-checked here along with everything else.
        return is_clean_text(value) ? value : sanitize_text(value);
    }

    std::string required_str(const char* name) const {
        auto v = str(name);
        if (v.empty()) fail(wechat_errc::missing_field);
        return v;
    }

    // Trimmed; required ones may not be empty.
    std::string word(const char* name, bool required) const {
        auto v = std::string(trim(str(name)));
        if (required && v.empty()) fail(wechat_errc::missing_field);
        return v;
    }

    template <class T>
    std::optional<T> number(const char* name, bool required) const {
        const auto text = str(name);
        const auto digits = trim(text);
        if (digits.empty()) {
            if (required) fail(wechat_errc::missing_field);
            return std::nullopt;
        }
        T v{};
        const auto* end = digits.data() + digits.size();
        const auto [ptr, ec] = std::from_chars(digits.data(), end, v);
        if (ec != std::errc() || ptr != end) {
            fail(wechat_errc::bad_field);
            return std::nullopt;
        }
        if constexpr (std::is_floating_point_v<T>) {
            if (!std::isfinite(v)) {
                fail(wechat_errc::bad_field);
                return std::nullopt;
            }
        }
        return v;
    }

    template <class T>
    T value_or_zero(const char* name) const {
        return number<T>(name, false).value_or(T{});
    }

    void fail(wechat_errc e) const {
        if (!ec_) ec_ = make_error_code(e);
    }

private:
    pugi::xml_node node_;
    error_code& ec_;
};

message_body read_event(const reader& r, std::string_view event, const std::string& event_key) {
    if (iequals(event, "subscribe")) {
        subscribe_event e;
        constexpr std::string_view prefix = "qrscene_";
        if (event_key.starts_with(prefix)) e.qr_scene = event_key.substr(prefix.size());
        e.ticket = r.str("Ticket");
        return e;
    }
    if (iequals(event, "unsubscribe")) return unsubscribe_event{};
    if (iequals(event, "SCAN")) return scan_event{event_key, r.str("Ticket")};
    if (iequals(event, "LOCATION")) {
        return location_event{r.value_or_zero<double>("Latitude"),
                              r.value_or_zero<double>("Longitude"),
                              r.value_or_zero<double>("Precision")};
    }
    if (iequals(event, "CLICK")) return click_event{event_key};
    if (iequals(event, "VIEW")) return view_event{event_key, r.str("MenuId")};
    if (iequals(event, "scancode_push") || iequals(event, "scancode_waitmsg")) {
        const auto info = r.child("ScanCodeInfo");
        return scancode_event{iequals(event, "scancode_waitmsg"), event_key, info.str("ScanType"),
                              info.str("ScanResult")};
    }
    if (iequals(event, "pic_sysphoto") || iequals(event, "pic_photo_or_album") ||
        iequals(event, "pic_weixin")) {
        pic_event e;
        e.source = iequals(event, "pic_sysphoto")         ? pic_source::sysphoto
                   : iequals(event, "pic_photo_or_album") ? pic_source::photo_or_album
                                                          : pic_source::weixin;
        e.key = event_key;
        const auto info = r.child("SendPicsInfo");
        e.count = info.value_or_zero<std::int64_t>("Count");
        for (const auto& item : info.child("PicList").children("item")) {
            e.pic_md5_sums.push_back(item.str("PicMd5Sum"));
        }
        return e;
    }
    if (iequals(event, "location_select")) {
        const auto info = r.child("SendLocationInfo");
        return location_select_event{event_key,
                                     info.value_or_zero<double>("Location_X"),
                                     info.value_or_zero<double>("Location_Y"),
                                     info.value_or_zero<std::int64_t>("Scale"),
                                     info.str("Label"),
                                     info.str("Poiname")};
    }
    if (iequals(event, "view_miniprogram"))
        return view_miniprogram_event{event_key, r.str("MenuId")};
    if (iequals(event, "TEMPLATESENDJOBFINISH")) {
        return template_send_job_finish_event{r.number<std::uint64_t>("MsgID", true).value_or(0),
                                              r.str("Status")};
    }
    if (iequals(event, "MASSSENDJOBFINISH")) {
        return mass_send_job_finish_event{r.number<std::uint64_t>("MsgID", true).value_or(0),
                                          r.str("Status"),
                                          r.value_or_zero<std::int64_t>("TotalCount"),
                                          r.value_or_zero<std::int64_t>("FilterCount"),
                                          r.value_or_zero<std::int64_t>("SentCount"),
                                          r.value_or_zero<std::int64_t>("ErrorCount")};
    }
    if (iequals(event, "kf_create_session")) return kf_create_session_event{r.str("KfAccount")};
    if (iequals(event, "kf_close_session")) return kf_close_session_event{r.str("KfAccount")};
    if (iequals(event, "kf_switch_session")) {
        return kf_switch_session_event{r.str("FromKfAccount"), r.str("ToKfAccount")};
    }
    return other_event{};
}

// The body of an ordinary message; `known` is cleared for an unknown MsgType.
message_body read_message(const reader& r, std::string_view type, bool& known) {
    known = true;
    if (iequals(type, "text")) return text_message{r.str("Content"), r.str("bizmsgmenuid")};
    if (iequals(type, "image")) return image_message{r.str("PicUrl"), r.str("MediaId")};
    if (iequals(type, "voice")) {
        return voice_message{r.str("MediaId"), r.str("Format"), r.str("Recognition"),
                             r.str("MediaId16K")};
    }
    if (iequals(type, "video")) return video_message{r.str("MediaId"), r.str("ThumbMediaId")};
    if (iequals(type, "shortvideo")) {
        return short_video_message{r.str("MediaId"), r.str("ThumbMediaId")};
    }
    if (iequals(type, "location")) {
        return location_message{r.value_or_zero<double>("Location_X"),
                                r.value_or_zero<double>("Location_Y"),
                                r.value_or_zero<std::int64_t>("Scale"), r.str("Label")};
    }
    if (iequals(type, "link")) {
        return link_message{r.str("Title"), r.str("Description"), r.str("Url")};
    }
    known = false;
    return other_message{};
}

}  // namespace

scrm::result<inbound_message> parse_message(std::string_view xml) {
    pugi::xml_document doc;
    auto root = load(xml, doc);
    if (!root) return root.error();
    error_code ec;
    const reader r(*root, ec);

    inbound_message m;
    m.to_user_name = r.required_str("ToUserName");
    m.from_user_name = r.required_str("FromUserName");
    m.create_time = r.number<std::int64_t>("CreateTime", true).value_or(0);
    m.msg_type = r.word("MsgType", true);
    m.msg_id = r.number<std::uint64_t>("MsgId", false);
    if (r.has("MsgDataId")) m.msg_data_id = r.str("MsgDataId");
    m.idx = r.number<std::int64_t>("Idx", false);
    if (iequals(m.msg_type, "event")) {
        m.event = r.word("Event", true);
        m.event_key = r.str("EventKey");
        m.body = read_event(r, m.event, m.event_key);
    } else {
        bool known = false;
        m.body = read_message(r, m.msg_type, known);
        if (known && !m.msg_id && !ec) r.fail(wechat_errc::missing_field);
    }
    if (ec) return ec;
    return m;
}

scrm::result<encrypted_envelope> parse_envelope(std::string_view xml) {
    pugi::xml_document doc;
    auto root = load(xml, doc);
    if (!root) return root.error();
    error_code ec;
    const reader r(*root, ec);
    encrypted_envelope e{r.str("ToUserName"), r.required_str("Encrypt")};
    if (ec) return ec;
    return e;
}

std::ostream& operator<<(std::ostream& os, const encrypted_envelope& e) {
    return os << "encrypted_envelope{to: \"" << e.to_user_name << "\", encrypt: \"" << e.encrypt
              << "\"}";
}

}  // namespace scrm::wechat

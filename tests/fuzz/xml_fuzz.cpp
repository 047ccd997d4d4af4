// libFuzzer target for the inbound XML parser: parse_message and parse_envelope on arbitrary bytes
// must never crash, every string they hand out must be clean text, and a text message's content
// and addresses must survive a text reply and parse back (modulo XML's CR LF normalisation).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <string_view>

#include "scrm/wechat/parse.hpp"
#include "scrm/wechat/reply.hpp"
#include "scrm/wechat/xml_text.hpp"

using namespace scrm::wechat;

namespace {

void require(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "invariant violated: %s\n", what);
        std::abort();
    }
}

// What an XML parser makes of text after end-of-line handling: CR LF and lone CR become LF.
std::string eol_normalised(std::string s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r') {
            out += '\n';
            if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
        } else {
            out += s[i];
        }
    }
    return out;
}

void check_message(const inbound_message& m) {
    require(is_clean_text(m.to_user_name), "to_user_name clean");
    require(is_clean_text(m.from_user_name), "from_user_name clean");
    require(is_clean_text(m.msg_type), "msg_type clean");
    require(is_clean_text(m.event), "event clean");
    require(is_clean_text(m.event_key), "event_key clean");
    require(!m.to_user_name.empty() && !m.from_user_name.empty(), "required fields present");
    require(is_clean_text(identity(m).key()), "identity key clean");
    std::ostringstream os;
    os << m;

    const auto* text = std::get_if<text_message>(&m.body);
    if (text == nullptr) return;
    require(is_clean_text(text->content), "content clean");
    // The reply answers the sender: parse it back (with a MsgId, which a text message needs).
    std::string reply = text_reply(m, text->content, 1);
    reply.insert(reply.size() - 6, "<MsgId>1</MsgId>");
    const auto back = parse_message(reply);
    require(back.has_value(), "reply parses");
    const auto* back_text = std::get_if<text_message>(&back->body);
    require(back_text != nullptr, "reply is text");
    require(back_text->content == eol_normalised(text->content), "content round-trips");
    require(back->to_user_name == eol_normalised(m.from_user_name), "addresses swapped (to)");
    require(back->from_user_name == eol_normalised(m.to_user_name), "addresses swapped (from)");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    if (auto m = parse_message(input)) check_message(*m);

    if (auto e = parse_envelope(input)) {
        require(!e->encrypt.empty(), "encrypt present");
        require(is_clean_text(e->encrypt) && is_clean_text(e->to_user_name), "envelope clean");
    }

    const auto clean = sanitize_text(input);
    require(is_clean_text(clean), "sanitize_text output clean");
    require(!is_clean_text(input) || clean == input, "clean input unchanged");
    return 0;
}

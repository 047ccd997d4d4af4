// Parsing inbound POST bodies: the message/event XML (§2) into inbound_message, and the outer
// safe-mode envelope (§4.6). Tolerant of what users type, strict about document structure.
// Pure functions; thread-safe.
//
// How hostile or odd input is handled, in order:
//  1. Bytes: every ill-formed UTF-8 sequence and every character XML 1.0 forbids (NUL and the other
//     C0 controls except TAB/LF/CR, U+FFFE, U+FFFF) becomes U+FFFD (sanitize_text) before the
//     parser sees the document. A character reference to such a character (outside CDATA, e.g.
//     "&#0;" or "&#x1D;") becomes U+FFFD too. Nothing is dropped silently, and every string handed
//     out is valid UTF-8 that can be re-embedded in XML, JSON or a database as is.
//  2. DTDs: a document containing "<!DOCTYPE" or "<!ENTITY" (any letter case) outside CDATA
//     sections and comments fails with wechat_errc::forbidden_dtd before parsing; inside CDATA it
//     is just text a patient typed. The parser (pugixml) is also told to report doctype nodes, and
//     any it finds fails the same way. pugixml never loads external resources and expands only the
//     five predefined entities and character references.
//  3. Structure: exactly one root element, <xml> (wechat_errc::bad_xml otherwise, or if the
//  document
//     is not well-formed). Fields are its direct children, matched by exact, case-sensitive name —
//     <MsgId> (ordinary messages) and <MsgID> (job-finish events) are different fields. The first
//     occurrence of a repeated field wins; unknown elements are ignored.
//  4. Values: the concatenation of all text and CDATA children (a value split into several CDATA
//     sections, as "]]>" escaping does, reads whole). Strings are not trimmed; MsgType, Event and
//     numbers are trimmed of surrounding ASCII whitespace. A whitespace-only value is kept.
#pragma once

#include <iosfwd>
#include <string>
#include <string_view>

#include "scrm/common/error.hpp"
#include "scrm/wechat/message.hpp"

namespace scrm::wechat {

// Parses a plaintext (or decrypted) message body. Required: ToUserName, FromUserName, CreateTime
// (int64), MsgType; MsgId (uint64) for text, image, voice, video, shortvideo, location and link;
// Event for MsgType "event"; MsgID (uint64) for TEMPLATESENDJOBFINISH and MASSSENDJOBFINISH.
// A required field absent or empty fails with wechat_errc::missing_field; a number field that is
// present but not a number (or not finite) fails with wechat_errc::bad_field. Other fields default
// to "" / 0 when absent. Unknown MsgType or Event values parse as other_message / other_event.
// Errors from the hardening steps above: forbidden_dtd, bad_xml.
scrm::result<inbound_message> parse_message(std::string_view xml);

// The outer body of a safe- or compatible-mode POST.
struct encrypted_envelope {
    std::string to_user_name;  // ToUserName ("" if absent): cross-check it with the decrypted one
    std::string encrypt;       // Encrypt, exactly as in the body (the msg_signature input)
    friend bool operator==(const encrypted_envelope&, const encrypted_envelope&) = default;
};
std::ostream& operator<<(std::ostream& os, const encrypted_envelope& e);

// Parses the outer envelope with the same hardening; Encrypt is required (missing_field). In
// compatible mode the plaintext fields next to Encrypt are ignored here.
scrm::result<encrypted_envelope> parse_envelope(std::string_view xml);

}  // namespace scrm::wechat

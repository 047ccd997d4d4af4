// Message identity (the de-duplication key), QR scenes, and operator<< for every message type.
#include "scrm/wechat/message.hpp"

#include <ostream>

namespace scrm::wechat {
namespace {

void append_sized(std::string& out, std::string_view s) {
    out += std::to_string(s.size());
    out += ':';
    out += s;
}

// Prints a string quoted, with control characters escaped so a failing test shows them.
struct quoted {
    std::string_view s;
};
std::ostream& operator<<(std::ostream& os, quoted q) {
    os << '"';
    for (char c : q.s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            os << '\\' << c;
        } else if (u < 0x20 || u == 0x7f) {
            static constexpr char digits[] = "0123456789abcdef";
            os << "\\x" << digits[u >> 4] << digits[u & 0x0f];
        } else {
            os << c;
        }
    }
    return os << '"';
}

// Field printing: `name: value` separated by ", ".
class fields {
public:
    explicit fields(std::ostream& os) : os_(os) {}
    fields& s(const char* name, std::string_view v) {
        put(name);
        os_ << quoted{v};
        return *this;
    }
    template <class T>
    fields& n(const char* name, const T& v) {
        put(name);
        os_ << v;
        return *this;
    }

private:
    void put(const char* name) {
        os_ << (first_ ? "" : ", ") << name << ": ";
        first_ = false;
    }
    std::ostream& os_;
    bool first_ = true;
};

struct body_printer {
    std::ostream& os;

    void operator()(const text_message& b) {
        os << "text{";
        fields(os).s("content", b.content).s("biz_msg_menu_id", b.biz_msg_menu_id);
        os << '}';
    }
    void operator()(const image_message& b) {
        os << "image{";
        fields(os).s("pic_url", b.pic_url).s("media_id", b.media_id);
        os << '}';
    }
    void operator()(const voice_message& b) {
        os << "voice{";
        fields(os)
            .s("media_id", b.media_id)
            .s("format", b.format)
            .s("recognition", b.recognition)
            .s("media_id_16k", b.media_id_16k);
        os << '}';
    }
    void operator()(const video_message& b) {
        os << "video{";
        fields(os).s("media_id", b.media_id).s("thumb_media_id", b.thumb_media_id);
        os << '}';
    }
    void operator()(const short_video_message& b) {
        os << "shortvideo{";
        fields(os).s("media_id", b.media_id).s("thumb_media_id", b.thumb_media_id);
        os << '}';
    }
    void operator()(const location_message& b) {
        os << "location{";
        fields(os)
            .n("latitude", b.latitude)
            .n("longitude", b.longitude)
            .n("scale", b.scale)
            .s("label", b.label);
        os << '}';
    }
    void operator()(const link_message& b) {
        os << "link{";
        fields(os).s("title", b.title).s("description", b.description).s("url", b.url);
        os << '}';
    }
    void operator()(const other_message&) { os << "other_message{}"; }
    void operator()(const subscribe_event& b) {
        os << "subscribe{";
        fields f(os);
        if (b.qr_scene) {
            f.s("qr_scene", *b.qr_scene);
        } else {
            f.n("qr_scene", "null");
        }
        f.s("ticket", b.ticket);
        os << '}';
    }
    void operator()(const unsubscribe_event&) { os << "unsubscribe{}"; }
    void operator()(const scan_event& b) {
        os << "SCAN{";
        fields(os).s("qr_scene", b.qr_scene).s("ticket", b.ticket);
        os << '}';
    }
    void operator()(const location_event& b) {
        os << "LOCATION{";
        fields(os)
            .n("latitude", b.latitude)
            .n("longitude", b.longitude)
            .n("precision", b.precision);
        os << '}';
    }
    void operator()(const click_event& b) {
        os << "CLICK{";
        fields(os).s("key", b.key);
        os << '}';
    }
    void operator()(const view_event& b) {
        os << "VIEW{";
        fields(os).s("url", b.url).s("menu_id", b.menu_id);
        os << '}';
    }
    void operator()(const scancode_event& b) {
        os << (b.wait_msg ? "scancode_waitmsg{" : "scancode_push{");
        fields(os).s("key", b.key).s("scan_type", b.scan_type).s("scan_result", b.scan_result);
        os << '}';
    }
    void operator()(const pic_event& b) {
        os << "pic{";
        fields(os).n("source", b.source).s("key", b.key).n("count", b.count);
        os << ", pic_md5_sums: [";
        for (std::size_t i = 0; i < b.pic_md5_sums.size(); ++i) {
            os << (i ? ", " : "") << quoted{b.pic_md5_sums[i]};
        }
        os << "]}";
    }
    void operator()(const location_select_event& b) {
        os << "location_select{";
        fields(os)
            .s("key", b.key)
            .n("latitude", b.latitude)
            .n("longitude", b.longitude)
            .n("scale", b.scale)
            .s("label", b.label)
            .s("poiname", b.poiname);
        os << '}';
    }
    void operator()(const view_miniprogram_event& b) {
        os << "view_miniprogram{";
        fields(os).s("page_path", b.page_path).s("menu_id", b.menu_id);
        os << '}';
    }
    void operator()(const template_send_job_finish_event& b) {
        os << "TEMPLATESENDJOBFINISH{";
        fields(os).n("msg_id", b.msg_id).s("status", b.status);
        os << '}';
    }
    void operator()(const mass_send_job_finish_event& b) {
        os << "MASSSENDJOBFINISH{";
        fields(os)
            .n("msg_id", b.msg_id)
            .s("status", b.status)
            .n("total_count", b.total_count)
            .n("filter_count", b.filter_count)
            .n("sent_count", b.sent_count)
            .n("error_count", b.error_count);
        os << '}';
    }
    void operator()(const kf_create_session_event& b) {
        os << "kf_create_session{";
        fields(os).s("kf_account", b.kf_account);
        os << '}';
    }
    void operator()(const kf_close_session_event& b) {
        os << "kf_close_session{";
        fields(os).s("kf_account", b.kf_account);
        os << '}';
    }
    void operator()(const kf_switch_session_event& b) {
        os << "kf_switch_session{";
        fields(os).s("from_kf_account", b.from_kf_account).s("to_kf_account", b.to_kf_account);
        os << '}';
    }
    void operator()(const other_event&) { os << "other_event{}"; }
};

}  // namespace

const char* to_string(pic_source s) noexcept {
    switch (s) {
        case pic_source::sysphoto: return "pic_sysphoto";
        case pic_source::photo_or_album: return "pic_photo_or_album";
        case pic_source::weixin: return "pic_weixin";
    }
    return "?";
}

std::ostream& operator<<(std::ostream& os, pic_source s) {
    return os << to_string(s);
}

std::optional<std::string_view> qr_scene(const inbound_message& m) noexcept {
    if (const auto* s = std::get_if<subscribe_event>(&m.body); s && s->qr_scene) {
        return std::string_view(*s->qr_scene);
    }
    if (const auto* s = std::get_if<scan_event>(&m.body); s && !s->qr_scene.empty()) {
        return std::string_view(s->qr_scene);
    }
    return std::nullopt;
}

message_identity identity(const inbound_message& m) {
    message_identity id;
    id.event = m.is_event();
    id.from_user_name = m.from_user_name;
    id.create_time = m.create_time;
    if (id.event) {
        id.event_name = m.event;
        id.event_key = m.event_key;
        if (const auto* t = std::get_if<template_send_job_finish_event>(&m.body)) {
            id.msg_id = t->msg_id;
        } else if (const auto* s = std::get_if<mass_send_job_finish_event>(&m.body)) {
            id.msg_id = s->msg_id;
        }
    } else {
        id.msg_id = m.msg_id;
        if (!m.msg_id) id.msg_type = m.msg_type;
    }
    return id;
}

// Every field before the last is a number, "-", or length-prefixed, so the key parses back
// unambiguously; FromUserName goes last and needs no prefix.
std::string message_identity::key() const {
    std::string k;
    k.reserve(48 + from_user_name.size() + msg_type.size() + event_name.size() + event_key.size());
    k += event ? "e|" : "m|";
    k += std::to_string(create_time);
    k += '|';
    k += msg_id ? std::to_string(*msg_id) : std::string("-");
    k += '|';
    if (event) {
        append_sized(k, event_name);
        k += '|';
        append_sized(k, event_key);
        k += '|';
    } else if (!msg_id) {
        append_sized(k, msg_type);
        k += '|';
    }
    k += from_user_name;
    return k;
}

std::ostream& operator<<(std::ostream& os, const message_body& b) {
    std::visit(body_printer{os}, b);
    return os;
}

std::ostream& operator<<(std::ostream& os, const inbound_message& m) {
    os << "inbound_message{";
    fields f(os);
    f.s("to", m.to_user_name).s("from", m.from_user_name).n("create_time", m.create_time);
    f.s("msg_type", m.msg_type);
    if (!m.event.empty()) f.s("event", m.event).s("event_key", m.event_key);
    if (m.msg_id) f.n("msg_id", *m.msg_id);
    if (m.msg_data_id) f.s("msg_data_id", *m.msg_data_id);
    if (m.idx) f.n("idx", *m.idx);
    f.n("body", m.body);
    return os << '}';
}

std::ostream& operator<<(std::ostream& os, const message_identity& id) {
    return os << "message_identity" << quoted{id.key()};
}

}  // namespace scrm::wechat

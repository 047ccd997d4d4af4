// Outbound API request bodies written with RapidJSON's Writer, whose default flags keep UTF-8 as
// raw bytes (no \uXXXX for non-ASCII) and escape only what JSON requires.
#include "scrm/wechat/outbound.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "scrm/wechat/xml_text.hpp"

namespace scrm::wechat {
namespace {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

void string(json_writer& w, std::string_view v) {
    if (is_clean_text(v)) {
        w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
        return;
    }
    const std::string clean = sanitize_text(v);
    w.String(clean.data(), static_cast<rapidjson::SizeType>(clean.size()));
}

void put(json_writer& w, std::string_view key, std::string_view value) {
    string(w, key);
    string(w, value);
}

std::string take(const rapidjson::StringBuffer& buf) {
    return std::string(buf.GetString(), buf.GetSize());
}

// {"touser":…,"msgtype":type,type:{…fill…}[,"customservice":{"kf_account":…}]}
template <class Fill>
std::string custom_body(std::string_view openid, std::string_view type, std::string_view kf,
                        const Fill& fill) {
    rapidjson::StringBuffer buf;
    json_writer w(buf);
    w.StartObject();
    put(w, "touser", openid);
    put(w, "msgtype", type);
    string(w, type);
    w.StartObject();
    fill(w);
    w.EndObject();
    if (!kf.empty()) {
        string(w, "customservice");
        w.StartObject();
        put(w, "kf_account", kf);
        w.EndObject();
    }
    w.EndObject();
    return take(buf);
}

}  // namespace

std::string custom_text_body(std::string_view openid, std::string_view content,
                             std::string_view kf_account) {
    return custom_body(openid, "text", kf_account,
                       [content](json_writer& w) { put(w, "content", content); });
}

std::string custom_image_body(std::string_view openid, std::string_view media_id,
                              std::string_view kf_account) {
    return custom_body(openid, "image", kf_account,
                       [media_id](json_writer& w) { put(w, "media_id", media_id); });
}

std::string custom_news_body(std::string_view openid, const news_article& article,
                             std::string_view kf_account) {
    return custom_body(openid, "news", kf_account, [&article](json_writer& w) {
        string(w, "articles");
        w.StartArray();
        w.StartObject();
        put(w, "title", article.title);
        put(w, "description", article.description);
        put(w, "url", article.url);
        put(w, "picurl", article.pic_url);
        w.EndObject();
        w.EndArray();
    });
}

std::string custom_mpnewsarticle_body(std::string_view openid, std::string_view article_id,
                                      std::string_view kf_account) {
    return custom_body(openid, "mpnewsarticle", kf_account,
                       [article_id](json_writer& w) { put(w, "article_id", article_id); });
}

std::string custom_miniprogrampage_body(std::string_view openid, const miniprogram_page& page,
                                        std::string_view kf_account) {
    return custom_body(openid, "miniprogrampage", kf_account, [&page](json_writer& w) {
        put(w, "title", page.title);
        put(w, "appid", page.appid);
        put(w, "pagepath", page.pagepath);
        put(w, "thumb_media_id", page.thumb_media_id);
    });
}

std::string custom_msgmenu_body(std::string_view openid, const msg_menu& menu,
                                std::string_view kf_account) {
    return custom_body(openid, "msgmenu", kf_account, [&menu](json_writer& w) {
        put(w, "head_content", menu.head_content);
        string(w, "list");
        w.StartArray();
        for (const auto& o : menu.options) {
            w.StartObject();
            put(w, "id", o.id);
            put(w, "content", o.content);
            w.EndObject();
        }
        w.EndArray();
        put(w, "tail_content", menu.tail_content);
    });
}

std::string typing_body(std::string_view openid, bool on) {
    rapidjson::StringBuffer buf;
    json_writer w(buf);
    w.StartObject();
    put(w, "touser", openid);
    put(w, "command", on ? "Typing" : "CancelTyping");
    w.EndObject();
    return take(buf);
}

std::string template_send_body(const template_message& m) {
    rapidjson::StringBuffer buf;
    json_writer w(buf);
    w.StartObject();
    put(w, "touser", m.touser);
    put(w, "template_id", m.template_id);
    if (!m.client_msg_id.empty()) put(w, "client_msg_id", m.client_msg_id);
    if (!m.url.empty()) put(w, "url", m.url);
    if (m.miniprogram) {
        string(w, "miniprogram");
        w.StartObject();
        put(w, "appid", m.miniprogram->appid);
        put(w, "pagepath", m.miniprogram->pagepath);
        w.EndObject();
    }
    string(w, "data");
    w.StartObject();
    for (const auto& k : m.data) {
        string(w, k.name);
        w.StartObject();
        put(w, "value", k.value);
        if (!k.color.empty()) put(w, "color", k.color);
        w.EndObject();
    }
    w.EndObject();
    w.EndObject();
    return take(buf);
}

bool valid_qr_scene_str(std::string_view scene_str) noexcept {
    if (scene_str.empty() || scene_str.size() > qr_scene_str_max_bytes) return false;
    for (const char c : scene_str) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7F) return false;
    }
    return is_clean_text(scene_str);
}

scrm::result<std::string> permanent_qr_body(std::string_view scene_str) {
    if (!valid_qr_scene_str(scene_str)) return make_error_code(errc::bad_input);
    rapidjson::StringBuffer buf;
    json_writer w(buf);
    w.StartObject();
    put(w, "action_name", "QR_LIMIT_STR_SCENE");
    string(w, "action_info");
    w.StartObject();
    string(w, "scene");
    w.StartObject();
    put(w, "scene_str", scene_str);
    w.EndObject();
    w.EndObject();
    w.EndObject();
    return take(buf);
}

image_format sniff_image(std::string_view bytes) noexcept {
    constexpr std::string_view jpeg("\xFF\xD8\xFF", 3);
    constexpr std::string_view png("\x89PNG\r\n\x1A\n", 8);
    if (bytes.substr(0, jpeg.size()) == jpeg) return image_format::jpeg;
    if (bytes.substr(0, png.size()) == png) return image_format::png;
    return image_format::unknown;
}

const char* mime_type(image_format f) noexcept {
    switch (f) {
        case image_format::jpeg: return "image/jpeg";
        case image_format::png: return "image/png";
        case image_format::unknown: break;
    }
    return "application/octet-stream";
}

namespace {

bool ends_with_nocase(std::string_view s, std::string_view suffix) {
    if (s.size() < suffix.size()) return false;
    s.remove_prefix(s.size() - suffix.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i] >= 'A' && s[i] <= 'Z' ? static_cast<char>(s[i] - 'A' + 'a') : s[i];
        if (c != suffix[i]) return false;
    }
    return true;
}

}  // namespace

std::string upload_filename(std::string_view requested, image_format f) {
    constexpr std::size_t max_bytes = 64;
    if (const auto slash = requested.find_last_of("/\\"); slash != std::string_view::npos) {
        requested.remove_prefix(slash + 1);
    }
    std::string name;
    for (const char c : requested) {
        const bool safe = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        name.push_back(safe ? c : '_');
    }
    const std::string_view ext = f == image_format::png ? ".png" : ".jpg";
    const bool has_ext = f == image_format::png
                             ? ends_with_nocase(name, ".png")
                             : ends_with_nocase(name, ".jpg") || ends_with_nocase(name, ".jpeg");
    if (name.empty()) name = "image";
    if (!has_ext) {
        if (name.size() > max_bytes - ext.size()) name.resize(max_bytes - ext.size());
        name += ext;
    } else if (name.size() > max_bytes) {
        const auto dot = name.rfind('.');
        const std::string tail = name.substr(dot);
        name.resize(max_bytes - tail.size());
        name += tail;
    }
    return name;
}

std::string multipart_file_body(std::string_view boundary, std::string_view field,
                                std::string_view filename, std::string_view content_type,
                                std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size() + 2 * boundary.size() + field.size() + filename.size() +
                content_type.size() + 128);
    out.append("--").append(boundary).append("\r\n");
    out.append("Content-Disposition: form-data; name=\"").append(field);
    out.append("\"; filename=\"").append(filename).append("\"\r\n");
    out.append("Content-Type: ").append(content_type).append("\r\n\r\n");
    out.append(bytes);
    out.append("\r\n--").append(boundary).append("--\r\n");
    return out;
}

bool boundary_fits(std::string_view boundary, std::string_view bytes) noexcept {
    if (boundary.empty() || boundary.size() > 70) return false;
    for (const char c : boundary) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') ||
                        std::string_view("'()+_,-./:=?").find(c) != std::string_view::npos;
        if (!ok) return false;
    }
    return bytes.find(boundary) == std::string_view::npos;
}

}  // namespace scrm::wechat

// See media_requests.hpp.
#include "scrm/gateway/media_requests.hpp"

#include <algorithm>

#include "request_json.hpp"

namespace scrm::gateway {

using namespace request_json;

image_check check_image(std::string_view bytes) {
    if (bytes.empty()) return {"请上传图片（JPEG 或 PNG）", false};
    if (bytes.size() > max_image_bytes) {
        return {"图片过大：最多2MB，请压缩后再发送", true};
    }
    constexpr std::string_view jpeg("\xFF\xD8\xFF", 3);
    constexpr std::string_view png("\x89PNG\r\n\x1A\n", 8);
    if (bytes.substr(0, jpeg.size()) != jpeg && bytes.substr(0, png.size()) != png) {
        return {"只能发送 JPEG 或 PNG 格式的图片", false};
    }
    return {};
}

namespace {

// Characters of valid UTF-8 (code points: continuation bytes are not counted).
std::size_t chars(std::string_view s) {
    return static_cast<std::size_t>(std::count_if(
        s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

bool web_address(std::string_view u) {
    const std::size_t scheme = u.rfind("https://", 0) == 0 ? 8 : u.rfind("http://", 0) == 0 ? 7 : 0;
    return scheme != 0 && u.size() > scheme && u.size() <= max_news_url_bytes &&
           std::none_of(u.begin(), u.end(), [](char c) {
               const auto b = static_cast<unsigned char>(c);
               return b <= 0x20 || b == 0x7F;
           });
}

}  // namespace

parsed<news_request> parse_send_news(std::string_view body) {
    auto doc = parse_object(body);
    if (!doc) return {std::nullopt, not_an_object};
    bool bad = false;
    auto title = string_member(*doc, "title", bad);
    auto description = string_member(*doc, "description", bad);
    auto url = string_member(*doc, "url", bad);
    auto picurl = string_member(*doc, "picurl", bad);
    if (bad) return {std::nullopt, "title、description、url、picurl 必须是文字"};
    news_request r{title.value_or(""), description.value_or(""), url.value_or(""),
                   picurl.value_or("")};
    for (const std::string* s : {&r.title, &r.description, &r.url, &r.picurl}) {
        if (!valid_utf8(*s)) return {std::nullopt, "图文消息含有无效字符"};
    }
    const bool blank = std::all_of(r.title.begin(), r.title.end(), [](char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
    });
    if (blank) return {std::nullopt, "请填写图文消息的标题（title）"};
    if (chars(r.title) > max_news_title_chars) {
        return {std::nullopt, "标题过长：最多" + std::to_string(max_news_title_chars) + "个字"};
    }
    if (chars(r.description) > max_news_description_chars) {
        return {std::nullopt,
                "摘要过长：最多" + std::to_string(max_news_description_chars) + "个字"};
    }
    if (!web_address(r.url)) {
        return {std::nullopt, "请填写图文消息的链接（url）：以 http:// 或 https:// 开头的网址"};
    }
    if (!r.picurl.empty() && !web_address(r.picurl)) {
        return {std::nullopt, "图片地址（picurl）必须是以 http:// 或 https:// 开头的网址"};
    }
    return {std::move(r), {}};
}

}  // namespace scrm::gateway

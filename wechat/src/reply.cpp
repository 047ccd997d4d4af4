// Passive reply XML builders: the swapped header, then the type-specific elements, all CDATA.
#include "scrm/wechat/reply.hpp"

#include "scrm/wechat/xml_text.hpp"

namespace scrm::wechat {
namespace {

void element(std::string& out, std::string_view name, std::string_view value) {
    out += '<';
    out += name;
    out += '>';
    append_cdata(out, value);
    out += "</";
    out += name;
    out += '>';
}

std::string open_reply(const inbound_message& to, std::string_view msg_type,
                       std::int64_t create_time, std::size_t body_size) {
    std::string out;
    out.reserve(200 + to.from_user_name.size() + to.to_user_name.size() + body_size);
    out += "<xml>";
    element(out, "ToUserName", to.from_user_name);
    element(out, "FromUserName", to.to_user_name);
    out += "<CreateTime>";
    out += std::to_string(create_time);
    out += "</CreateTime>";
    element(out, "MsgType", msg_type);
    return out;
}

}  // namespace

std::string text_reply(const inbound_message& to, std::string_view content,
                       std::int64_t create_time) {
    auto out = open_reply(to, "text", create_time, content.size());
    element(out, "Content", content);
    out += "</xml>";
    return out;
}

std::string image_reply(const inbound_message& to, std::string_view media_id,
                        std::int64_t create_time) {
    auto out = open_reply(to, "image", create_time, media_id.size());
    out += "<Image>";
    element(out, "MediaId", media_id);
    out += "</Image></xml>";
    return out;
}

std::string news_reply(const inbound_message& to, const news_article& article,
                       std::int64_t create_time) {
    auto out = open_reply(to, "news", create_time,
                          article.title.size() + article.description.size() +
                              article.pic_url.size() + article.url.size());
    out += "<ArticleCount>1</ArticleCount><Articles><item>";
    element(out, "Title", article.title);
    element(out, "Description", article.description);
    element(out, "PicUrl", article.pic_url);
    element(out, "Url", article.url);
    out += "</item></Articles></xml>";
    return out;
}

}  // namespace scrm::wechat

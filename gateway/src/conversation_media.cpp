// See conversation_media.hpp. An image goes into the outbox as the file itself (the worker
// uploads it as temporary media on each attempt: wechat::image_message); news as the
// customer-service body with its one article.
#include "conversation_media.hpp"

#include "scrm/gateway/media_requests.hpp"
#include "scrm/wechat/outbound.hpp"

namespace scrm::gateway {

bool is_media_send(const std::string& action) {
    return action == "send-image" || action == "send-news";
}

media_send media_send_of(const std::string& action, const std::string& openid,
                         const http_request& req) {
    media_send out;
    if (action == "send-image") {
        const image_check check = check_image(req.body);
        if (!check.problem.empty()) {
            out.refusal = json_error(check.too_large ? 413 : 400, check.problem);
            return out;
        }
        out.message = wechat::outbound_image(0, openid, req.body, {});
        return out;
    }
    auto news = parse_send_news(req.body);
    if (!news.value) {
        out.refusal = json_error(400, news.problem);
        return out;
    }
    wechat::news_article article{news.value->title, news.value->description, news.value->picurl,
                                 news.value->url};
    wechat::outbound_message m;
    m.openid = openid;
    m.kind = "news";
    m.body = wechat::custom_news_body(openid, article);
    out.message = std::move(m);
    return out;
}

}  // namespace scrm::gateway

// The one news article WeChat accepts in a passive news reply (§3.2) and a customer-service news
// message (§5.3): shared by reply.hpp and outbound.hpp so the type is defined once.
#pragma once

#include <string>

namespace scrm::wechat {

struct news_article {
    std::string title;
    std::string description;
    std::string pic_url;  // PicUrl in XML, "picurl" in JSON
    std::string url;
    friend bool operator==(const news_article&, const news_article&) = default;
};

}  // namespace scrm::wechat

// See delivery_push.hpp.
#include "scrm/gateway/delivery_push.hpp"

#include "scrm/common/log.hpp"
#include "scrm/gateway/http.hpp"
#include "scrm/routing/live.hpp"

namespace scrm::gateway {

namespace asio = boost::asio;

std::string delivery_event(const wechat::delivery_change& c) {
    return "{\"type\":\"delivery\",\"outbox_id\":" + std::to_string(c.id) +
           ",\"account_id\":" + std::to_string(c.account_id) +
           ",\"openid\":" + json_quote(c.openid) + ",\"kind\":" + json_quote(c.kind) +
           ",\"state\":" + json_quote(wechat::to_string(c.state)) +
           ",\"errcode\":" + (c.errcode ? std::to_string(c.errcode) : std::string("null")) +
           ",\"reason\":" + (c.reason.empty() ? std::string("null") : json_quote(c.reason)) + "}";
}

namespace {

asio::awaitable<void> push_delivery(routing::live_state& live, wechat::delivery_change c) {
    const std::string payload = delivery_event(c);
    std::vector<std::string> to;
    if (c.origin.rfind("agent:", 0) == 0 && c.origin.size() > 6) to.push_back(c.origin.substr(6));
    auto lock = co_await live.lock_of(c.clinic_id, c.openid);
    if (!lock) {
        log::warn("delivery.push_failed", {{"id", c.id}, {"reason", lock.error().message()}});
    } else if (*lock && (to.empty() || (*lock)->holder != to.front())) {
        to.push_back((*lock)->holder);
    }
    for (auto& agent : to) {
        auto sent = co_await live.push(c.clinic_id, std::move(agent), payload);
        if (!sent) {
            log::warn("delivery.push_failed", {{"id", c.id}, {"reason", sent.error().message()}});
        }
    }
}

}  // namespace

wechat::delivery_hook delivery_push(routing::live_state& live) {
    return [&live](wechat::delivery_change c) { return push_delivery(live, std::move(c)); };
}

}  // namespace scrm::gateway

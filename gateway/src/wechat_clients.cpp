// See wechat_clients.hpp.
#include "scrm/gateway/wechat_clients.hpp"

namespace scrm::gateway {

wechat_clients::wechat_clients(account_registry& accounts,
                               std::shared_ptr<storage::redis_client> redis,
                               wechat::http_endpoint endpoint)
    : accounts_(accounts), redis_(std::move(redis)), endpoint_(std::move(endpoint)) {}

boost::asio::awaitable<result<std::shared_ptr<wechat::client>>> wechat_clients::find(
    std::string appid) {
    auto found = co_await accounts_.find(appid);
    if (!found) co_return found.error();
    const std::shared_ptr<const account>& a = *found;
    if (!a) co_return errc::not_found;
    std::lock_guard lock(mutex_);
    entry& e = clients_[appid];
    if (!e.client || e.secret != a->secret) {
        wechat::client_options o;
        o.endpoint = endpoint_;
        o.appid = a->appid;
        o.secret = a->secret;
        e.client = std::make_shared<wechat::client>(redis_, std::move(o));
        e.secret = a->secret;
    }
    co_return e.client;
}

wechat::client_lookup wechat_clients::lookup() {
    return [this](std::string appid) { return find(std::move(appid)); };
}

}  // namespace scrm::gateway

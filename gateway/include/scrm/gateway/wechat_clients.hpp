// One WeChat API client per official account, built from the account's AppSecret (opened by the
// account registry) and the gateway's API endpoint, kept while the secret stays the same: the
// outbox and the media fetcher ask here by appid.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "scrm/common/error.hpp"
#include "scrm/gateway/accounts.hpp"
#include "scrm/wechat/client.hpp"
#include "scrm/wechat/outbox.hpp"

namespace scrm::storage {
class redis_client;
}

namespace scrm::gateway {

// Thread-safe.
class wechat_clients {
public:
    wechat_clients(account_registry& accounts, std::shared_ptr<storage::redis_client> redis,
                   wechat::http_endpoint endpoint);

    // The account's client; errc::not_found for an unknown appid, the registry's errors (MySQL
    // unavailable, a secret that does not open) otherwise.
    boost::asio::awaitable<result<std::shared_ptr<wechat::client>>> find(std::string appid);

    // find() as the outbox takes it. The returned function refers to this object.
    wechat::client_lookup lookup();

private:
    struct entry {
        std::string secret;  // the AppSecret the client was built with
        std::shared_ptr<wechat::client> client;
    };
    account_registry& accounts_;
    std::shared_ptr<storage::redis_client> redis_;
    wechat::http_endpoint endpoint_;
    std::mutex mutex_;
    std::map<std::string, entry> clients_;
};

}  // namespace scrm::gateway

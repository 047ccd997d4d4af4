// Official accounts as the webhook needs them: looked up by appid, secrets opened with the master
// key, cached for a few seconds so that changes (a new key, safe-mode-only) reach every instance
// quickly without a MySQL query per request.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "scrm/common/error.hpp"
#include "scrm/gateway/secret_box.hpp"
#include "scrm/wechat/crypto.hpp"

namespace scrm::storage {
class mysql_pool;
}

namespace scrm::gateway {

struct account {
    std::uint64_t id = 0;
    std::uint64_t clinic_id = 0;
    std::string appid;
    std::string original_id;  // gh_…
    std::string token;        // secret
    wechat::key_ring keys;    // secret: current EncodingAESKey and, during a rotation, the previous
    std::string secret;       // AppSecret
    bool safe_mode_only = false;
};

// Thread-safe.
class account_registry {
public:
    account_registry(storage::mysql_pool& mysql, secret_box box,
                     std::chrono::milliseconds max_age = std::chrono::seconds(5));

    // The account, or nullptr when no account has this appid. Errors: the pool's (unavailable,
    // timeout, overloaded) when MySQL cannot answer and nothing fresh enough is cached;
    // errc::conflict when a sealed secret does not open (wrong master key).
    boost::asio::awaitable<result<std::shared_ptr<const account>>> find(std::string appid);

private:
    struct entry {
        std::shared_ptr<const account> value;  // nullptr: known not to exist
        std::chrono::steady_clock::time_point loaded;
    };
    storage::mysql_pool& mysql_;
    secret_box box_;
    std::chrono::milliseconds max_age_;
    std::mutex mutex_;
    std::map<std::string, entry> cache_;
};

}  // namespace scrm::gateway

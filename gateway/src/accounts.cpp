// Account lookups with a short-lived cache. A stale entry is still served when MySQL is down, so a
// MySQL outage does not stop verified messages from reaching the spool.
#include "scrm/gateway/accounts.hpp"

#include "scrm/common/log.hpp"
#include "scrm/storage/mysql.hpp"

namespace scrm::gateway {
namespace {

constexpr std::size_t max_cached = 10000;  // bounds the cache under a flood of unknown appids

std::string context(const char* field, const std::string& appid) {
    return std::string("official_accounts.") + field + ":" + appid;
}

}  // namespace

account_registry::account_registry(storage::mysql_pool& mysql, secret_box box,
                                   std::chrono::milliseconds max_age)
    : mysql_(mysql), box_(box), max_age_(max_age) {}

boost::asio::awaitable<result<std::shared_ptr<const account>>> account_registry::find(
    std::string appid) {
    const auto now = std::chrono::steady_clock::now();
    std::optional<entry> cached;
    {
        std::lock_guard lock(mutex_);
        if (auto it = cache_.find(appid); it != cache_.end()) cached = it->second;
    }
    if (cached && now - cached->loaded < max_age_) co_return cached->value;

    std::vector<storage::sql_value> params{appid};  // g++ 12: no braced list inside co_await
    auto rows = co_await mysql_.query(
        "SELECT id, clinic_id, original_id, token_sealed, aes_key_sealed, aes_key_previous_sealed, "
        "secret_sealed, safe_mode_only FROM official_accounts WHERE appid = ?",
        std::move(params));
    if (!rows) {
        if (cached) co_return cached->value;  // stale beats nothing during an outage
        co_return rows.error();
    }
    std::shared_ptr<const account> found;
    if (!rows->rows.empty()) {
        const auto& r = rows->rows[0];
        auto token = box_.open(*r[3], context("token", appid));
        auto aes = box_.open(*r[4], context("aes_key", appid));
        auto secret = box_.open(*r[6], context("secret", appid));
        std::optional<std::string> previous;
        if (r[5]) {
            auto p = box_.open(*r[5], context("aes_key_previous", appid));
            if (p) previous = *p;
        }
        if (!token || !aes || !secret) {
            log::error("accounts.secrets_unreadable", {{"appid", appid}});
            co_return errc::conflict;
        }
        auto current_key = wechat::aes_key::from_encoding_aes_key(*aes);
        if (!current_key) {
            log::error("accounts.bad_aes_key", {{"appid", appid}});
            co_return errc::conflict;
        }
        auto a = std::make_shared<account>();
        a->id = std::stoull(*r[0]);
        a->clinic_id = std::stoull(*r[1]);
        a->appid = appid;
        a->original_id = *r[2];
        a->token = *token;
        a->keys.current = *current_key;
        if (previous) {
            if (auto k = wechat::aes_key::from_encoding_aes_key(*previous)) a->keys.previous = *k;
        }
        a->secret = *secret;
        a->safe_mode_only = *r[7] == "1";
        found = std::move(a);
    }
    {
        std::lock_guard lock(mutex_);
        if (cache_.size() >= max_cached) cache_.clear();
        cache_[appid] = entry{found, now};
    }
    co_return found;
}

}  // namespace scrm::gateway

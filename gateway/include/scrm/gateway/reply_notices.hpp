// The "reply waiting" path (DESIGN.md §5, docs/api.md "Send" and "Waiting replies"): when a fan's
// customer-service window is closed or used up, a reply is kept (waiting_replies) and the fan gets
// the clinic's `reply_waiting` template notification through the outbox (with its send log row),
// whose link opens /reply/<token> — a mobile page with the full text, behind a signed,
// expiring link (link_tokens.hpp) bound to that one reply and so to that fan. Evaluation replies
// use the same notice with their own link (/eval/<token>).
#pragma once

#include <array>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "scrm/common/error.hpp"
#include "scrm/gateway/http.hpp"

namespace scrm::storage {
class mysql_pool;
}
namespace scrm::wechat {
class outbox;
}

namespace scrm::gateway {

// The label of the reply links' key: secret_box::derive_key(reply_key_label).
inline constexpr const char* reply_key_label = "scrm reply links v1";

struct reply_notice_options {
    std::array<unsigned char, 32> token_key{};  // secret_box::derive_key(reply_key_label)
    // Where patients reach the gateway (config public_base_url), "https://host[/prefix]": the
    // notices' links are absolute. Empty: no notice can be sent (the agent is told so).
    std::string public_base_url;
    std::chrono::seconds link_ttl{30 * 24 * 3600};  // a waiting reply can be opened this long
    // After queueing, how long send() waits for the outbox's verdict (so that an account without
    // template rights is reported to the agent at once), and how often it looks.
    std::chrono::milliseconds verdict_wait{10000};
    std::chrono::milliseconds verdict_poll{100};
};

struct reply_notice_request {
    std::uint64_t clinic = 0, account_id = 0;
    std::string openid;
    std::optional<std::uint64_t> agent_id;  // who replied (nullopt: not an agent)
    std::string agent_name;                 // the template's agent_name field
    // Set: the text is kept as a waiting reply and the notice links to /reply/<token>. Unset: the
    // notice links to link_path (e.g. "/eval/<token>"), nothing is kept.
    std::optional<std::string> text;
    std::string link_path;
    std::string origin;  // the outbox row's origin: "agent:<id>", "evaluation:<id>"
};

enum class notice_status {
    sent,            // WeChat accepted the template message
    queued,          // queued; no verdict within verdict_wait (it is still sent)
    not_configured,  // the clinic has no reply_waiting template
    disabled,        // the clinic switched it off
    no_public_url,   // the gateway has no public_base_url: a link could not be given
    // the account cannot send this template: 48001, 40037 or 43116 answered to this notice, or
    // 48001 answered to the account's last template send (checked before queueing)
    no_template_rights,
    failed,  // WeChat refused it for another reason (`reason`)
};
const char* to_string(notice_status s) noexcept;

struct reply_notice_outcome {
    notice_status status = notice_status::not_configured;
    std::optional<std::uint64_t> reply_id;  // the waiting reply (sent or queued only)
    std::optional<std::uint64_t> outbox_id, log_id;
    std::string link;  // the absolute link the notice carries
    std::optional<int> errcode;
    std::string reason;  // failed / no_template_rights: for people (Chinese)
    bool delivered() const {
        return status == notice_status::sent || status == notice_status::queued;
    }
};

// Thread-safe; the pool and the outbox must outlive it.
class reply_notices {
public:
    reply_notices(storage::mysql_pool& mysql, wechat::outbox& outbox, reply_notice_options opts);
    ~reply_notices();
    reply_notices(const reply_notices&) = delete;
    reply_notices& operator=(const reply_notices&) = delete;

    // Keeps the reply (when it has text), queues the notice and its send log row in one
    // transaction, wakes the outbox and waits for its verdict. Anything but sent/queued leaves
    // no waiting reply behind. Errors: the pool's.
    boost::asio::awaitable<result<reply_notice_outcome>> send(reply_notice_request req);

    // GET /reply/<token> (the page; marks the reply read) and GET /api/reply/<token> (JSON).
    void add_routes(router& routes);

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace scrm::gateway

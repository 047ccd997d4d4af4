// Patient evaluations (docs/api.md "Evaluations"; issue 6, seed 003 "服务评价"): the invitation a
// finished visit creates (a signed link /eval/<token>, expiring, answered once), the patient's
// mobile page and its API, and the admin endpoints — the clinic's attributes (audited), the list
// filtered by state and rating, replies (a customer-service text when the fan's window is open,
// else the "reply waiting" notice of the templates feature), CSV and .xlsx exports and
// per-attribute statistics.
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
#include "scrm/templates/notifier.hpp"

namespace scrm::storage {
class mysql_pool;
class mysql_session;
}  // namespace scrm::storage

namespace scrm::gateway {

class admin_api;
class evaluation_tokens;

// The label of the links' key: secret_box::derive_key(evaluation_key_label).
inline constexpr const char* evaluation_key_label = "scrm evaluation links v1";

struct evaluation_options {
    std::array<unsigned char, 32> token_key{};     // secret_box::derive_key(evaluation_key_label)
    std::chrono::seconds link_ttl{7 * 24 * 3600};  // config evaluations.link_ttl_s
};

// What the "visit finished" event knows: the fan to invite (of one of the clinic's official
// accounts), the patient if known, and the clinic system's visit id.
struct evaluation_invite {
    std::uint64_t clinic = 0;
    std::uint64_t account_id = 0;
    std::string openid;
    std::optional<std::uint64_t> patient_id;
    std::string visit_ref;  // 1–128 characters; one invitation per (clinic, visit_ref)
};

struct evaluation_invitation {
    std::uint64_t id = 0;
    std::string token;
    std::string path;        // "/eval/<token>": the template message's link (behind the proxy)
    std::string expires_at;  // ISO 8601 UTC
    bool created = false;    // false: this visit's invitation existed already (same link)
};

// Creates the invitation on `db` (its own transaction unless one is open): the clinic's current
// attributes are asked; the link expires after `ttl`. Idempotent per (clinic, visit_ref): a
// repeated event gets the same evaluation and link back. errc::bad_input for an empty or too
// long openid or visit_ref; errc::not_found when the account is not the clinic's.
result<evaluation_invitation> create_evaluation_invitation(storage::mysql_session& db,
                                                           const evaluation_tokens& tokens,
                                                           const evaluation_invite& in,
                                                           std::chrono::seconds ttl);

// Thread-safe. `agents` (sessions, live state, outbox) and `mysql` must outlive the routes.
class evaluation_api {
public:
    evaluation_api(admin_api& admin, evaluation_options opts);
    ~evaluation_api();
    evaluation_api(const evaluation_api&) = delete;
    evaluation_api& operator=(const evaluation_api&) = delete;

    // GET /eval/<token> (the page); GET|POST /api/eval/<token>; GET|PUT
    // /api/admin/evaluation-attributes; GET /api/admin/evaluations, …/stats, …/export.csv,
    // …/export.xlsx; POST /api/admin/evaluations/{id}/reply.
    void add_routes(router& routes);

    // create_evaluation_invitation on the pool with this instance's key and link_ttl: what the
    // "visit finished" event calls before sending the invitation's template message.
    boost::asio::awaitable<result<evaluation_invitation>> invite(evaluation_invite in);

    // The "visit finished" event (integration kind evaluation_invitation, docs/integration.md):
    // the link provider that creates the visit's invitation for the event's first bound fan —
    // the visit is data.visit_id, else the event's idempotency key — and answers
    // public_base_url + "/eval/<token>". With an empty public_base_url it creates nothing and
    // keeps the setting's link.
    templates::link_provider invitation_links(std::string public_base_url) const;

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace scrm::gateway

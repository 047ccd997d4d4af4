// The SQL of patient evaluations (sql/011_evaluations.sql), one function per use case, each on a
// MySQL session the caller holds (inside mysql_pool::run). HTTP never touches SQL; this never
// touches HTTP.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "scrm/common/error.hpp"
#include "scrm/gateway/evaluation_rules.hpp"
#include "scrm/gateway/evaluations.hpp"

namespace scrm::storage {
class mysql_session;
}

namespace scrm::gateway {

// The clinic's own attributes, in order.
result<std::vector<std::string>> custom_attributes(storage::mysql_session& db,
                                                   std::uint64_t clinic);
// Replaces them (inside the caller's transaction).
result<void> write_custom_attributes(storage::mysql_session& db, std::uint64_t clinic,
                                     const std::vector<std::string>& names);

// One evaluation as the patient's page and the admin list see it.
struct evaluation_row {
    std::uint64_t id = 0, clinic = 0, account = 0;
    std::string clinic_name, openid, visit_ref, state;
    std::optional<std::string> patient_name, overall, comment, reply, reply_delivery;
    std::vector<std::string> attributes;
    std::vector<std::optional<rating>> ratings;  // aligned with attributes
    std::string created_at, expires_at;          // UTC as MySQL writes it
    std::optional<std::string> submitted_at, replied_at;
    bool expired = false;  // expires_at has passed (by the database's clock)
};
result<std::optional<evaluation_row>> evaluation_by_id(storage::mysql_session& db,
                                                       std::uint64_t id);

enum class submit_outcome { submitted, already_submitted, expired, not_found };
// Stores the ratings and comment once: only an awaiting, unexpired evaluation changes.
result<submit_outcome> submit_evaluation(storage::mysql_session& db, std::uint64_t id,
                                         const std::vector<std::string>& attributes,
                                         const evaluation_submission& s);

struct evaluation_page {
    std::vector<evaluation_row> rows;
    std::uint64_t total = 0;
};
// The clinic's evaluations matching `q`, newest first: one page, or (`all`) up to `limit` rows.
result<evaluation_page> list_evaluations(storage::mysql_session& db, std::uint64_t clinic,
                                         const evaluation_query& q, bool all,
                                         std::size_t limit = 0);

enum class reply_claim_status { claimed, not_found, not_submitted, already_replied };
struct reply_claim {
    reply_claim_status status = reply_claim_status::not_found;
    std::uint64_t account = 0;
    std::string openid;
};
// Stores the reply of a submitted evaluation of the clinic (state → replied) with its delivery
// still unknown, and appends the audit row, in one transaction.
result<reply_claim> claim_reply(storage::mysql_session& db, std::uint64_t clinic,
                                std::uint64_t evaluation, std::uint64_t admin,
                                const std::string& text);
result<void> record_reply_delivery(storage::mysql_session& db, std::uint64_t evaluation,
                                   const std::string& delivery,
                                   std::optional<std::uint64_t> outbox_id);

struct attribute_stats {
    std::string name;
    std::uint64_t good = 0, average = 0, poor = 0;
};
// Counts per attribute over the clinic's submitted evaluations: the default attributes first,
// then the others in the order first seen.
result<std::vector<attribute_stats>> evaluation_stats(storage::mysql_session& db,
                                                      std::uint64_t clinic);

// See evaluations.hpp (create_evaluation_invitation): the row, without the token.
struct invitation_row {
    std::uint64_t id = 0;
    bool created = false;
    std::string expires_at;
};
result<invitation_row> insert_invitation(storage::mysql_session& db, const evaluation_invite& in,
                                         std::chrono::seconds ttl);

}  // namespace scrm::gateway

// The shell around the pure core (catalog, setting, event): the SQL of template notifications
// (sql/010_templates.sql) and the sends. An integration event is handled in one MySQL
// transaction — its idempotency record, the patient's bound fans, the rendered messages as outbox
// rows and the send log — so a repeated event, a crash or a refused one leaves no half. The
// TEMPLATESENDJOBFINISH callbacks update the log, and the log is searched for the admin pages.
// HTTP stays in gateway/ (integration_api.cpp); every statement runs on the MySQL pool's workers.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "scrm/common/error.hpp"
#include "scrm/templates/event.hpp"

namespace scrm::storage {
class mysql_pool;
class mysql_session;
}  // namespace scrm::storage

namespace scrm::wechat {
class outbox;
}

namespace scrm::templates {

// ---- API keys ------------------------------------------------------------------------------
// A key is "sk_" + 64 lowercase hex digits (32 random bytes); only its SHA-256 is stored.

// A new key; nullopt only if the random source fails.
std::optional<std::string> new_api_key();
bool api_key_well_formed(std::string_view key) noexcept;
// SHA-256 of the key, 64 lowercase hex digits.
std::string api_key_hash(std::string_view key);
// What people see of a key: its first 10 characters ("sk_" and 7 hex digits).
std::string api_key_prefix(std::string_view key);

struct api_key_owner {
    std::uint64_t key_id = 0;
    std::uint64_t clinic = 0;
};

// ---- the outcome of an event ---------------------------------------------------------------

enum class event_status {
    accepted,         // recorded now: queued sends, or logged as skipped / no recipient
    duplicate,        // the idempotency key was used before with the same event: nothing sent
    key_reused,       // the idempotency key was used before with another event: refused
    unknown_patient,  // no patient with that record number (or phone): refused, nothing recorded
    ambiguous_phone,  // several patients have that phone and no record number was given
    missing_fields,   // the clinic's mapping uses fields the event lacks: refused
};

struct event_outcome {
    event_status status = event_status::accepted;
    // accepted / duplicate: the answer's JSON, as first given ({"event_id":…,"state":…,
    // "sends":[…]}); missing_fields: the field names, comma-separated.
    std::string body;
};

// ---- the send log --------------------------------------------------------------------------

struct log_query {
    std::uint64_t clinic = 0;
    std::string patient;     // part of the patient's name; empty: any
    std::string openid;      // exactly; empty: any
    std::string kind;        // exactly; empty: any
    std::string from, to;    // UTC "YYYY-MM-DD hh:mm:ss"; created_at >= from and < to; empty: open
    std::uint64_t page = 1;  // from 1
    std::uint64_t page_size = 20;  // 1–100
};

struct log_entry {
    std::uint64_t id = 0, event_id = 0;
    std::string kind, patient_name;
    std::optional<std::uint64_t> patient_id, account_id;
    std::string openid, template_id;
    // queued (waiting or being sent), sent, failed, uncertain, delivered, refused, skipped,
    // no_recipient
    std::string state;
    std::optional<int> errcode;
    std::string reason;           // skipped: why; failed/uncertain: the outbox's reason
    std::string delivery_status;  // TEMPLATESENDJOBFINISH's Status, verbatim
    std::string created_at;       // UTC "YYYY-MM-DD hh:mm:ss[.ffffff]"
    std::string delivered_at;
};

struct log_page {
    std::uint64_t total = 0;
    std::vector<log_entry> entries;  // newest first
};

// ---- links the gateway makes -------------------------------------------------------------

// What a link provider knows of an event being sent: the clinic, the event, its patient, its data
// and the first fan it goes to.
struct link_request {
    std::uint64_t clinic = 0, event_id = 0, patient_id = 0;
    std::string idempotency_key;
    const field_values* data = nullptr;
    std::uint64_t account_id = 0;
    std::string openid;
};
// Called once per event of its kind that is sent, on the event's session inside its transaction
// (so what it stores is committed or rolled back with the event): the absolute URL that replaces
// the setting's link in every message of the event, or nullopt to keep the setting's. An error
// rolls the event back (bad_input: answered as a bad event).
using link_provider =
    std::function<result<std::optional<std::string>>(storage::mysql_session&, const link_request&)>;

// Thread-safe; the pool and the outbox must outlive it. Errors: the pool's (unavailable,
// timeout, overloaded, server_error).
class notifier {
public:
    notifier(storage::mysql_pool& mysql, wechat::outbox& outbox);

    // The clinic of an active key (nullopt: unknown, revoked or malformed).
    boost::asio::awaitable<result<std::optional<api_key_owner>>> authenticate(std::string key);

    // Handles one event of `owner`'s clinic: see event_status. The outbox worker is woken after
    // the commit.
    boost::asio::awaitable<result<event_outcome>> handle(api_key_owner owner,
                                                         integration_event event);

    // TEMPLATESENDJOBFINISH of account `account_id` for fan `openid`: the log rows of the send
    // WeChat numbered `msgid` become delivered ("success") or refused (any other status, kept
    // verbatim, at most 64 bytes). Sends that are not template notifications are ignored.
    // Idempotent. errc::conflict when no row has that msgid yet but a template send to the fan is
    // still being recorded ('sending'): the callback overtook it; try again later.
    boost::asio::awaitable<result<void>> record_delivery(std::uint64_t account_id,
                                                         std::string openid, std::uint64_t msgid,
                                                         std::string status);

    boost::asio::awaitable<result<log_page>> search(log_query q);

    // The link of `kind`'s messages is made by `p` (the evaluation invitation's /eval/<token>).
    // Call before serving: not synchronised with handle().
    void set_link_provider(std::string kind, link_provider p);

private:
    storage::mysql_pool& mysql_;
    wechat::outbox& outbox_;
    std::map<std::string, link_provider, std::less<>> links_;
};

// The setting of `kind` for `clinic` as stored, on the caller's session; nullopt when none.
// (scrm-admin uses it too.)
result<std::optional<template_setting>> load_setting(storage::mysql_session& db,
                                                     std::uint64_t clinic, std::string_view kind);

}  // namespace scrm::templates

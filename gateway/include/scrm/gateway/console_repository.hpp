// The SQL of the staff console's endpoints (docs/api.md "The console"; sql/007, sql/008), one
// method per use case: the conversation list with unread counts and last messages, the paged
// history with receipts and media, the read audit, "ignore unread", the fan panel (remark, tags,
// owners, patients), the clinic's agents and stores, and the password change. HTTP never touches
// SQL; this never touches HTTP. Every statement runs on the MySQL pool's workers.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "scrm/common/error.hpp"
#include "scrm/gateway/agent_repository.hpp"
#include "scrm/gateway/console_requests.hpp"

namespace scrm::storage {
class mysql_pool;
}

namespace scrm::gateway {

// Which of a clinic's fans an agent may see (docs/api.md "Roles"): with store_scope, only that
// store's fans and fans without a store (chain-store mode, an agent of a store who is not an
// admin).
struct fan_scope {
    std::uint64_t clinic = 0;
    std::optional<std::uint64_t> store_scope;
};

using fan_key = std::pair<std::uint64_t, std::string>;  // account id, openid

// The last message of a conversation, either way.
struct last_message {
    bool inbound = true;
    std::string type;  // msg_type (text, image, voice, event…) or the outbox kind
    std::string event;
    std::string text;  // the text, the voice's recognition, or an outbound text; may be empty
    std::string at;    // UTC "YYYY-MM-DD hh:mm:ss[.ffffff]"
};

struct conversation_summary {
    std::uint64_t fan_id = 0;
    std::uint64_t account_id = 0;
    std::string openid;
    std::optional<std::string> remark, patient_name;
    std::string tags_json = "[]";
    std::optional<std::uint64_t> store, consultant, exclusive;
    bool subscribed = true;
    list_cursor position;  // its activity and id: the next page's cursor when it is last
    std::string activity;  // last message (or first seen), UTC
    std::uint64_t unread = 0;
    std::optional<last_message> last;
};

struct conversation_list_request {
    fan_scope scope;
    std::optional<std::uint64_t> store;  // only this store's fans
    std::optional<std::string> search;   // patient name, phone, record number, remark, message text
    std::optional<list_cursor> cursor;
    std::size_t limit = default_page;
    std::optional<std::uint64_t> mine;         // this agent: consultant, exclusive or open session
    std::optional<std::vector<fan_key>> only;  // only these fans (waiting filters)
};

// A fan waiting on its consultant: messages routed to the consultant (rule consultant) within
// the window, no agent reply since.
struct consultant_wait {
    fan_key fan;
    std::uint64_t consultant = 0;
};

struct patient_row {
    std::uint64_t id = 0;
    std::string name;
    std::optional<std::string> phone, record_no;
};

struct fan_panel {
    std::uint64_t account_id = 0;
    std::string openid;
    std::optional<std::string> remark;
    std::string tags_json = "[]";
    std::optional<std::uint64_t> store, consultant, exclusive;
    bool subscribed = true;
    std::string first_seen_at;
    std::optional<std::string> last_message_at;
    std::vector<patient_row> patients;  // in binding order
};

// One entry of a conversation's history: an inbound message with its routing receipt and media,
// or an outbox row (agent replies, auto-replies through the API).
struct history_entry {
    bool inbound = true;
    std::uint64_t id = 0;
    std::string at;  // received (inbound) or queued (outbound), UTC
    std::string type;
    // inbound
    std::optional<std::string> event, event_key, text;
    std::optional<std::string> rule, targets_json, auto_reply, receipt_json;
    std::optional<std::uint64_t> owner;
    std::optional<std::string> media_state, media_type, media_url_external;
    bool media_file = false;  // fetched into media_dir: served by GET /api/media/{id}
    // outbound
    std::string origin, state;
    std::optional<std::int64_t> errcode;
    std::optional<std::string> error, sent_at;
};

struct history_page {
    std::vector<history_entry> entries;  // newest first
    std::optional<history_cursor> next;  // older entries remain
};

// A media file served to an agent.
struct media_file {
    fan_key fan;
    std::string content_type;
    std::string bytes;
    std::filesystem::path path;  // the file (inside the media directory)
};

// Outcomes of the fan panel's writes that are the caller's fault.
enum class panel_outcome : std::uint8_t { done, no_fan, no_agent, agent_inactive, no_patient };

struct owner_change_result {
    panel_outcome outcome = panel_outcome::done;
    std::optional<std::uint64_t> consultant_before, exclusive_before;
};

// Thread-safe; the pool must outlive it. Errors: the pool's (unavailable, timeout, overloaded).
class console_repository {
public:
    explicit console_repository(storage::mysql_pool& mysql) : mysql_(mysql) {}

    // One page of the list, newest activity first; unread counts and last messages filled in.
    boost::asio::awaitable<result<std::vector<conversation_summary>>> conversations(
        conversation_list_request r);
    // Fans of the clinic waiting on their consultant (see consultant_wait), oldest first.
    boost::asio::awaitable<result<std::vector<consultant_wait>>> consultant_waits(
        std::uint64_t clinic, std::uint64_t max_age_s);

    // One page of the fan's history, newest first, after appending the read to the audit log
    // (action conversation.read by `agent`) in the same transaction: no audit row, no history.
    boost::asio::awaitable<result<history_page>> history(std::uint64_t clinic, std::uint64_t agent,
                                                         fan_key fan, history_query q);
    // The media file of inbound message `message_id` if it was fetched and its fan is in `scope`
    // (nullopt otherwise), audited as media.read by `agent`. The file is read on the pool's
    // worker (never on an I/O thread).
    boost::asio::awaitable<result<std::optional<media_file>>> media(fan_scope scope,
                                                                    std::uint64_t agent,
                                                                    std::uint64_t message_id,
                                                                    std::filesystem::path dir);

    // "Ignore unread": every inbound message of the fan so far counts as read.
    boost::asio::awaitable<result<void>> ignore_unread(fan_key fan);

    boost::asio::awaitable<result<std::optional<fan_panel>>> panel(std::uint64_t clinic,
                                                                   fan_key fan);
    // Remark and/or tags, audited (fan.profile, before/after).
    boost::asio::awaitable<result<panel_outcome>> set_profile(std::uint64_t clinic,
                                                              std::uint64_t agent, fan_key fan,
                                                              fan_profile_request r);
    // Consultant and/or exclusive agent (active agents of the clinic), audited (fan.owner,
    // before/after). `exclusive_live_before`: the exclusive agent Redis had (routing's truth),
    // recorded as "before" when it differs from MySQL's.
    boost::asio::awaitable<result<owner_change_result>> set_owners(
        std::uint64_t clinic, std::uint64_t agent, fan_key fan, owner_request r,
        std::optional<std::uint64_t> exclusive_live_before);
    // Binds a patient (existing, by record number, or new), audited (fan.patient_bound); the
    // patient bound.
    boost::asio::awaitable<result<std::pair<panel_outcome, std::uint64_t>>> bind_patient(
        std::uint64_t clinic, std::uint64_t agent, fan_key fan, bind_patient_request r);
    // no_patient when it was not bound to the fan. Audited (fan.patient_unbound).
    boost::asio::awaitable<result<panel_outcome>> unbind_patient(std::uint64_t clinic,
                                                                 std::uint64_t agent, fan_key fan,
                                                                 std::uint64_t patient);

    // The clinic's active agents (by store, then name) and its stores.
    boost::asio::awaitable<result<std::vector<agent_row>>> agents(std::uint64_t clinic);
    boost::asio::awaitable<result<std::vector<std::pair<std::uint64_t, std::string>>>> stores(
        std::uint64_t clinic);
    // The agent's password hash becomes `hash`, audited (agent.password, no detail).
    boost::asio::awaitable<result<void>> set_password(std::uint64_t clinic, std::uint64_t agent,
                                                      std::string hash);

private:
    storage::mysql_pool& mysql_;
};

}  // namespace scrm::gateway

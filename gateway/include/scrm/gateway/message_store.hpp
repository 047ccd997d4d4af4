// Durable storage of inbound messages with group commit (storage/group_commit.hpp): every request
// hands its row to one commit loop, which writes all waiting rows in one transaction (one multi-row
// INSERT, one COMMIT) and starts the next batch the moment the previous commit lands. A request resumes only when its row
// is known committed — by its own batch or an earlier one. Each attempt stores a random token with
// the row it inserts, which tells later who inserted it — also after a failure whose outcome the
// attempt never learned (see inbound_row::takes_over).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "scrm/common/error.hpp"

namespace scrm::storage {
class mysql_pool;
template <class Job, class Outcome>
class group_commit;
}

namespace scrm::gateway {

// What the fan row learns from a message.
enum class fan_change { none, subscribe, unsubscribe };

class routed_in_store;

struct inbound_row {
    std::uint64_t account_id = 0;
    std::string identity_hash;  // 32 bytes: SHA-256 of account id and the message identity key
    std::string openid;
    std::string msg_type;
    std::optional<std::string> event;
    std::optional<std::string> event_key;
    std::optional<std::uint64_t> wx_msg_id;
    std::int64_t create_time = 0;
    std::optional<std::string> content;  // text, or a voice message's recognition
    std::string body_xml;                // the (decrypted) XML as received: bytes
    fan_change fan = fan_change::none;
    std::optional<std::string> scene;  // subscribe/SCAN scene, recorded on the fan
    // Image, voice, video: the MediaId to fetch before it expires (a row in inbound_media).
    std::optional<std::string> media_id;
    // This attempt's token (new_insert_token()), stored with the row if this attempt inserts it;
    // 0: store() makes one. A caller that may retry the row later (the spool) keeps it.
    std::uint64_t insert_token = 0;
    // A retry of an attempt whose store() failed: that attempt's token. A failure after the
    // COMMIT was sent (a timeout, a broken connection) leaves the outcome unknown — the server
    // may have committed the row after all, and then nobody has handed it on. If the row still
    // carries this token, this attempt takes it over and counts as its inserter; a row inserted
    // by anyone else, or already taken over, is left alone. 0: not a retry.
    std::uint64_t takes_over = 0;
    // The message's routing, decided inside the batch's transaction (see routed_in_store);
    // nullptr: the row is stored unrouted and routed after the commit.
    std::shared_ptr<routed_in_store> route;
};

// A fan's owners as the fans row holds them (agents.id as text), read in the batch's transaction
// after the fan was upserted: what routing needs from MySQL about the fan, without a query of its
// own.
struct fan_owners {
    std::optional<std::string> consultant, exclusive_agent, store;
    friend bool operator==(const fan_owners&, const fan_owners&) = default;
};

struct stored_row {
    std::uint64_t id = 0;   // inbound_messages.id
    bool inserted = false;  // true for exactly one request per identity: the one whose row it is
    fan_owners fan;         // the message's fan, as of the commit
    bool routed = false;    // inserted with its receipt (inbound_row::route decided it)
};

// A routing receipt as the routing_receipts table holds it.
struct routing_receipt {
    std::uint64_t clinic_id = 0;
    std::string rule;
    std::optional<std::uint64_t> owner;
    std::string targets;  // JSON array of agent ids
    std::optional<std::string> auto_reply;
    std::string receipt;  // JSON
};

// Routing decided with the message, in the store's transaction (DESIGN.md §4 step 5): the
// routing stage prepares it from the live state before the row is stored, and the batch
// completes it with the fan's owners as the fan's upsert left them. A receipt returned is
// written with the row, which the INSERT marks routed: the commit that stores the message also
// routes it (no second transaction, no UPDATE), and only the request that inserted the row
// applies the decision. Nothing returned (a decision that must first be committed elsewhere,
// such as an exclusive pick in Redis): the row is stored unrouted and routed after the commit.
class routed_in_store {
public:
    virtual ~routed_in_store() = default;
    // Called on a MySQL worker inside the transaction, at most once; quick and pure.
    virtual std::optional<routing_receipt> decide(const fan_owners& owners) = 0;
};

// SHA-256 over "<account_id>|<identity key>" (binary, 32 bytes).
std::string identity_hash(std::uint64_t account_id, std::string_view identity_key);

// A random, non-zero insert token (63 bits, so it fits a signed BIGINT too).
std::uint64_t new_insert_token();

// Thread-safe. stop() (or destroy it) before the pool stops.
class message_store {
public:
    message_store(boost::asio::any_io_executor ex, storage::mysql_pool& mysql,
                  std::size_t max_batch = 500);
    ~message_store();
    message_store(const message_store&) = delete;
    message_store& operator=(const message_store&) = delete;

    void stop();  // pending requests complete with errc::shutting_down

    // Completes when the row is committed (inserted now or found committed earlier). Errors from
    // MySQL (unavailable, timeout, overloaded, server_error): nothing is known to be stored — or
    // not stored: retry with takes_over = this row's insert_token.
    boost::asio::awaitable<result<stored_row>> store(inbound_row row);

    struct stats_t {
        std::uint64_t batches = 0;
        std::uint64_t rows = 0;
        std::size_t pending = 0;
    };
    stats_t stats() const;

private:
    using impl = storage::group_commit<inbound_row, stored_row>;
    std::unique_ptr<impl> impl_;
};

}  // namespace scrm::gateway

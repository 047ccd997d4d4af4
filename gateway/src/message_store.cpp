// The message store's batch (storage::group_commit runs the loop): fans upserted, rows inserted or
// found, media recorded, the fans' owners returned by their upsert, and the receipts of messages
// routed with their row (routed_in_store) — one transaction. Which request inserted a row is
// decided by the attempt's token stored with the row (column insert_batch): the row carries a
// request's token only if that request created it, or took it over from an attempt that failed
// without learning its outcome.
#include "scrm/gateway/message_store.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <map>

#include "scrm/storage/group_commit.hpp"
#include "scrm/storage/mysql.hpp"

namespace scrm::gateway {

namespace asio = boost::asio;
using asio::awaitable;

std::string identity_hash(std::uint64_t account_id, std::string_view identity_key) {
    // Fetched once (EVP_sha256() in EVP_Digest looks the implementation up on every call) and one
    // digest context per thread: this runs for every inbound message.
    static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(
        EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    char prefix[24];
    char* end = std::to_chars(prefix, prefix + sizeof prefix - 1, account_id).ptr;
    *end++ = '|';
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (sha256 && ctx && EVP_DigestInit_ex2(ctx.get(), sha256, nullptr) == 1 &&
        EVP_DigestUpdate(ctx.get(), prefix, static_cast<std::size_t>(end - prefix)) == 1 &&
        EVP_DigestUpdate(ctx.get(), identity_key.data(), identity_key.size()) == 1 &&
        EVP_DigestFinal_ex(ctx.get(), digest, &size) == 1) {
        return std::string(reinterpret_cast<const char*>(digest), size);
    }
    const std::string input = std::string(prefix, end) + std::string(identity_key);
    EVP_Digest(input.data(), input.size(), digest, &size, EVP_sha256(), nullptr);
    return std::string(reinterpret_cast<const char*>(digest), size);
}

std::uint64_t new_insert_token() {
    return storage::random_row_token();
}

namespace {

// A row's size in the batch's statements (hex-encoded strings).
std::size_t row_bytes(const inbound_row& r) {
    return 2 * (r.body_xml.size() + (r.content ? r.content->size() : 0) +
                (r.event_key ? r.event_key->size() : 0) + r.openid.size()) +
           128;
}

using fan_key = std::pair<std::uint64_t, std::string>;  // account id, openid

// Upserts each distinct fan, in a fixed order so that two instances' batches lock fans alike,
// and returns their owners as the upserts left them: the rows are locked by this transaction, so
// this is their state as of the commit. (MariaDB's INSERT … ON DUPLICATE KEY UPDATE … RETURNING
// returns a row for every value list, inserted or updated: no SELECT after it, whose IN list
// would cost the optimizer an index dive per fan.)
result<std::map<fan_key, fan_owners>> upsert_fans(storage::mysql_session& db,
                                                  const std::vector<inbound_row>& batch) {
    std::map<fan_key, const inbound_row*> fans;
    for (const auto& row : batch) {
        auto& slot = fans[{row.account_id, row.openid}];
        // A subscribe or unsubscribe outranks a plain message for the fan row.
        if (!slot || row.fan != fan_change::none) slot = &row;
    }
    std::map<fan_key, fan_owners> owners;
    auto keep = [&owners](const storage::sql_rows& rows) {
        for (const auto& row : rows.rows) {
            if (!row[0] || !row[1]) continue;
            owners[{storage::sql_u64(row[0]), *row[1]}] = fan_owners{row[2], row[3], row[4]};
        }
    };
    constexpr std::string_view returning =
        " RETURNING account_id, openid, consultant_agent_id, exclusive_agent_id, store_id";
    // Plain messages (the bulk) update their fans with one multi-row statement; follows and
    // unfollows, which are rare, one by one. Values go inline (the multi-row statement's text
    // changes with the batch; and Connector/C++ loses the connection on a prepared statement
    // that returns rows from an INSERT).
    std::string plain_sql;
    for (const auto& [key, row] : fans) {
        result<storage::sql_rows> r = storage::sql_rows{};
        switch (row->fan) {
            case fan_change::subscribe: {
                std::string sql =
                    "INSERT INTO fans (account_id, openid, subscribed, subscribe_scene, "
                    "last_message_at) VALUES (";
                storage::sql_lit(sql, key.first);
                sql += ',';
                storage::sql_lit(sql, std::string_view(key.second));
                sql += ",1,";
                storage::sql_lit(sql, row->scene);
                sql +=
                    ",CURRENT_TIMESTAMP(3)) ON DUPLICATE KEY UPDATE subscribed = 1, "
                    "unsubscribed_at = NULL, "
                    "subscribe_scene = COALESCE(VALUES(subscribe_scene), subscribe_scene), "
                    "last_message_at = VALUES(last_message_at)";
                r = db.query_inline(sql += returning);
                break;
            }
            case fan_change::unsubscribe: {
                std::string sql =
                    "INSERT INTO fans (account_id, openid, subscribed, unsubscribed_at) VALUES (";
                storage::sql_lit(sql, key.first);
                sql += ',';
                storage::sql_lit(sql, std::string_view(key.second));
                sql +=
                    ",0,CURRENT_TIMESTAMP(3)) ON DUPLICATE KEY UPDATE subscribed = 0, "
                    "unsubscribed_at = VALUES(unsubscribed_at)";
                r = db.query_inline(sql += returning);
                break;
            }
            case fan_change::none:
                plain_sql += plain_sql.empty()
                                 ? "INSERT INTO fans (account_id, openid, subscribe_scene, "
                                   "last_message_at) VALUES ("
                                 : ",(";
                storage::sql_lit(plain_sql, key.first);
                plain_sql += ',';
                storage::sql_lit(plain_sql, std::string_view(key.second));
                plain_sql += ',';
                storage::sql_lit(plain_sql, row->scene);
                plain_sql += ",CURRENT_TIMESTAMP(3))";
                break;
        }
        if (!r) return r.error();
        keep(*r);
    }
    if (!plain_sql.empty()) {
        plain_sql +=
            " ON DUPLICATE KEY UPDATE "
            "subscribe_scene = COALESCE(VALUES(subscribe_scene), subscribe_scene), "
            "last_message_at = VALUES(last_message_at)";
        plain_sql += returning;
        auto r = db.query_inline(plain_sql);
        if (!r) return r.error();
        keep(*r);
    }
    return owners;
}

// One transaction for the whole batch; returns each job's outcome in batch order.
result<std::vector<stored_row>> commit_batch(storage::mysql_session& db,
                                             const std::vector<inbound_row>& batch) {
    if (auto r = db.begin(); !r) return r.error();
    auto owners = upsert_fans(db, batch);
    if (!owners) return owners.error();
    // Retries of attempts whose outcome is unknown (rare: spool replays) take their rows over.
    for (const auto& row : batch) {
        if (row.takes_over == 0) continue;
        auto r = db.execute(
            "UPDATE inbound_messages SET insert_batch = ? WHERE identity_hash = ? AND "
            "insert_batch = ?",
            {row.insert_token, row.identity_hash, row.takes_over});
        if (!r) return r.error();
    }
    // Routing decided with the message (routed_in_store), now that the fans' owners are known:
    // a row with a receipt is inserted routed, and gets its receipt if this batch inserts it.
    std::vector<std::optional<routing_receipt>> receipts(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) {
        const inbound_row& r = batch[i];
        if (!r.route || r.takes_over != 0) continue;
        if (auto f = owners->find({r.account_id, r.openid}); f != owners->end()) {
            receipts[i] = r.route->decide(f->second);
        }
    }

    // The batch's statements change text with every batch: values go inline (one round trip
    // each, nothing prepared; strings as hex literals, so nothing can be injected). RETURNING
    // gives every value list's row, the one inserted or the one found: its id, and the token of
    // the attempt that inserted it.
    std::string insert;
    insert.reserve(256 + batch.size() * 1024);
    insert =
        "INSERT INTO inbound_messages (account_id, identity_hash, openid, msg_type, event, "
        "event_key, wx_msg_id, create_time, content, body_xml, insert_batch, routed_at) VALUES ";
    for (std::size_t i = 0; i < batch.size(); ++i) {
        const inbound_row& r = batch[i];
        insert += i ? ",(" : "(";
        storage::sql_lit(insert, r.account_id);
        insert += ',';
        storage::sql_lit(insert, std::string_view(r.identity_hash));
        insert += ',';
        storage::sql_lit(insert, std::string_view(r.openid));
        insert += ',';
        storage::sql_lit(insert, std::string_view(r.msg_type));
        insert += ',';
        storage::sql_lit(insert, r.event);
        insert += ',';
        storage::sql_lit(insert, r.event_key);
        insert += ',';
        storage::sql_lit(insert, r.wx_msg_id);
        insert += ',';
        storage::sql_lit(insert, r.create_time);
        insert += ',';
        storage::sql_lit(insert, r.content);
        insert += ',';
        storage::sql_lit(insert, std::string_view(r.body_xml));
        insert += ',';
        storage::sql_lit(insert, r.insert_token);
        insert += receipts[i] ? ",CURRENT_TIMESTAMP(3))" : ",NULL)";
    }
    insert += " ON DUPLICATE KEY UPDATE id = id RETURNING identity_hash, id, insert_batch";
    auto rows = db.query_inline(insert);
    if (!rows) return rows.error();

    std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> by_hash;  // hash -> id, token
    for (const auto& row : rows->rows) {
        by_hash[*row[0]] = {std::stoull(*row[1]), std::stoull(*row[2])};
    }
    // Media to fetch (media_fetcher.hpp) is recorded with its message, in the same transaction.
    std::string media;
    std::vector<storage::sql_value> media_params;
    for (const inbound_row& r : batch) {
        if (!r.media_id || r.media_id->empty() || r.media_id->size() > 255) continue;
        auto it = by_hash.find(r.identity_hash);
        if (it == by_hash.end()) return errc::protocol_error;
        media += media.empty() ? "(?,?,?,?,FROM_UNIXTIME(?))" : ",(?,?,?,?,FROM_UNIXTIME(?))";
        // WeChat keeps a message's media for 3 days after it was sent.
        media_params.insert(media_params.end(), {it->second.first, r.account_id, *r.media_id,
                                                 r.msg_type, r.create_time + 3 * 24 * 3600});
    }
    if (!media.empty()) {
        auto r = db.execute(
            "INSERT INTO inbound_media (message_id, account_id, media_id, kind, expires_at) "
            "VALUES " +
                media + " ON DUPLICATE KEY UPDATE message_id = message_id",
            media_params);
        if (!r) return r.error();
    }
    std::vector<stored_row> out;
    out.reserve(batch.size());
    std::string receipt_values;
    for (std::size_t i = 0; i < batch.size(); ++i) {
        const inbound_row& r = batch[i];
        auto it = by_hash.find(r.identity_hash);
        if (it == by_hash.end()) return errc::protocol_error;  // every value list returns a row
        stored_row& o = out.emplace_back();
        o.id = it->second.first;
        o.inserted = it->second.second == r.insert_token;
        if (auto f = owners->find({r.account_id, r.openid}); f != owners->end()) o.fan = f->second;
        // Tokens are unique per attempt; should a caller reuse one, still one inserter only.
        if (o.inserted) it->second.second = 0;
        if (!o.inserted || !receipts[i]) continue;
        o.routed = true;
        const routing_receipt& rc = *receipts[i];
        receipt_values += receipt_values.empty() ? "(" : ",(";
        storage::sql_lit(receipt_values, o.id);
        receipt_values += ',';
        storage::sql_lit(receipt_values, rc.clinic_id);
        receipt_values += ',';
        storage::sql_lit(receipt_values, std::string_view(rc.rule));
        receipt_values += ',';
        storage::sql_lit(receipt_values, rc.owner);
        receipt_values += ',';
        storage::sql_lit(receipt_values, std::string_view(rc.targets));
        receipt_values += ',';
        storage::sql_lit(receipt_values, rc.auto_reply);
        receipt_values += ',';
        storage::sql_lit(receipt_values, std::string_view(rc.receipt));
        receipt_values += ')';
    }
    if (!receipt_values.empty()) {
        auto r = db.query_inline(
            "INSERT INTO routing_receipts (message_id, clinic_id, rule, owner_agent_id, targets, "
            "auto_reply, receipt) VALUES " +
            receipt_values);
        if (!r) return r.error();
    }
    if (auto r = db.commit(); !r) return r.error();
    return out;
}

}  // namespace

message_store::message_store(asio::any_io_executor ex, storage::mysql_pool& mysql,
                             std::size_t max_batch)
    : impl_(std::make_unique<impl>(std::move(ex), mysql, "message_store", commit_batch, row_bytes,
                                   storage::group_commit_limits{max_batch})) {}

message_store::~message_store() = default;

void message_store::stop() {
    impl_->stop();
}

awaitable<result<stored_row>> message_store::store(inbound_row row) {
    if (row.insert_token == 0) row.insert_token = new_insert_token();
    co_return co_await impl_->submit(std::move(row));
}

message_store::stats_t message_store::stats() const {
    const auto s = impl_->stats();
    return {s.batches, s.jobs, s.pending};
}

}  // namespace scrm::gateway

// See account_writer.hpp.
#include "scrm/gateway/account_writer.hpp"

#include "scrm/gateway/secret_box.hpp"
#include "scrm/storage/mysql.hpp"

namespace scrm::gateway {

using storage::sql_value;

namespace {

std::string context(const char* field, const std::string& appid) {
    return std::string("official_accounts.") + field + ":" + appid;
}

}  // namespace

result<account_written> write_account(storage::mysql_session& db, const secret_box& box,
                                      std::uint64_t clinic, const account_input& in) {
    std::vector<sql_value> key{in.appid};
    auto existing = db.query(
        "SELECT clinic_id, aes_key_sealed, aes_key_previous_sealed, id FROM official_accounts "
        "WHERE appid = ? FOR UPDATE",
        key);
    if (!existing) return existing.error();
    std::optional<std::string> previous = in.aes_key_previous;
    if (!existing->rows.empty()) {
        const auto& row = existing->rows[0];
        if (storage::sql_u64(row[0]) != clinic) {
            return account_written{account_written::outcome::other_clinic, 0};
        }
        if (!previous) {
            auto current = box.open(row[1].value_or(""), context("aes_key", in.appid));
            if (current && *current != in.aes_key) {
                previous = *current;
            } else if (row[2]) {
                auto old = box.open(*row[2], context("aes_key_previous", in.appid));
                if (old) previous = *old;
            }
        }
    }
    auto token = box.seal(in.token, context("token", in.appid));
    auto aes = box.seal(in.aes_key, context("aes_key", in.appid));
    auto secret = box.seal(in.secret, context("secret", in.appid));
    result<std::string> prev_sealed = std::string();
    if (previous) prev_sealed = box.seal(*previous, context("aes_key_previous", in.appid));
    if (!token) return token.error();
    if (!aes) return aes.error();
    if (!secret) return secret.error();
    if (!prev_sealed) return prev_sealed.error();
    const sql_value prev_value = previous ? sql_value(*prev_sealed) : sql_value(std::monostate{});
    if (existing->rows.empty()) {
        // A plain INSERT: an appid another transaction stored meanwhile (there is no gap lock
        // under READ COMMITTED) fails with errc::conflict instead of overwriting that account.
        std::vector<sql_value> p{
            clinic, in.appid,   in.original_id, *token,
            *aes,   prev_value, *secret,        std::int64_t{in.safe_mode_only ? 1 : 0}};
        auto added = db.query(
            "INSERT INTO official_accounts (clinic_id, appid, original_id, token_sealed, "
            "aes_key_sealed, aes_key_previous_sealed, secret_sealed, safe_mode_only) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            p);
        if (!added) return added.error();
        return account_written{account_written::outcome::added, added->last_insert_id};
    }
    const std::uint64_t id = storage::sql_u64(existing->rows[0][3]);
    std::vector<sql_value> p{in.original_id,
                             *token,
                             *aes,
                             prev_value,
                             *secret,
                             std::int64_t{in.safe_mode_only ? 1 : 0},
                             id,
                             clinic};
    auto updated = db.execute(
        "UPDATE official_accounts SET original_id = ?, token_sealed = ?, aes_key_sealed = ?, "
        "aes_key_previous_sealed = ?, secret_sealed = ?, safe_mode_only = ? "
        "WHERE id = ? AND clinic_id = ?",
        p);
    if (!updated) return updated.error();
    return account_written{account_written::outcome::updated, id};
}

result<std::optional<account_input>> read_account(storage::mysql_session& db, const secret_box& box,
                                                  std::uint64_t clinic, std::uint64_t id) {
    std::vector<sql_value> p{id, clinic};
    auto rows = db.query(
        "SELECT appid, original_id, token_sealed, aes_key_sealed, aes_key_previous_sealed, "
        "secret_sealed, safe_mode_only FROM official_accounts WHERE id = ? AND clinic_id = ? "
        "FOR UPDATE",
        p);
    if (!rows) return rows.error();
    if (rows->rows.empty()) return std::optional<account_input>();
    const auto& r = rows->rows[0];
    account_input in;
    in.appid = r[0].value_or("");
    in.original_id = r[1].value_or("");
    auto token = box.open(r[2].value_or(""), context("token", in.appid));
    auto aes = box.open(r[3].value_or(""), context("aes_key", in.appid));
    auto secret = box.open(r[5].value_or(""), context("secret", in.appid));
    if (!token || !aes || !secret) return make_error_code(errc::conflict);
    in.token = std::move(*token);
    in.aes_key = std::move(*aes);
    in.secret = std::move(*secret);
    if (r[4]) {
        auto prev = box.open(*r[4], context("aes_key_previous", in.appid));
        if (!prev) return make_error_code(errc::conflict);
        in.aes_key_previous = std::move(*prev);
    }
    in.safe_mode_only = r[6].value_or("0") == "1";
    return std::optional<account_input>(std::move(in));
}

}  // namespace scrm::gateway

// See clinic_admin.hpp: the SQL of template settings and API keys shared by scrm-admin and the
// admin API.
#include "scrm/templates/clinic_admin.hpp"

#include "scrm/storage/mysql.hpp"
#include "scrm/templates/notifier.hpp"

namespace scrm::templates {

using storage::mysql_session;
using storage::sql_u64;
using storage::sql_value;

result<void> store_setting(mysql_session& db, std::uint64_t clinic, const template_setting& s) {
    const auto opt = [](const std::string& v) { return v.empty() ? sql_value() : sql_value(v); };
    auto stored = db.execute(
        "INSERT INTO template_settings (clinic_id, kind, template_id, keywords, url, mp_appid, "
        "mp_page, enabled) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE "
        "template_id = VALUES(template_id), keywords = VALUES(keywords), url = VALUES(url), "
        "mp_appid = VALUES(mp_appid), mp_page = VALUES(mp_page), enabled = VALUES(enabled)",
        {clinic, s.kind, s.template_id, keywords_json(s.keywords), opt(s.url), opt(s.mp_appid),
         opt(s.mp_page), std::int64_t{s.enabled ? 1 : 0}});
    if (!stored) return stored.error();
    return {};
}

namespace {

constexpr const char* key_columns =
    "SELECT id, name, prefix, created_at, revoked_at FROM api_keys WHERE clinic_id = ? ";

std::vector<api_key_info> key_rows(const storage::sql_rows& rows) {
    std::vector<api_key_info> out;
    for (const auto& r : rows.rows) {
        out.push_back(api_key_info{sql_u64(r[0]), r[1].value_or(""), r[2].value_or(""),
                                   r[3].value_or(""), r[4]});
    }
    return out;
}

}  // namespace

result<std::vector<api_key_info>> list_api_keys(mysql_session& db, std::uint64_t clinic) {
    auto rows = db.query(std::string(key_columns) + "ORDER BY name", {clinic});
    if (!rows) return rows.error();
    return key_rows(*rows);
}

namespace {

result<std::optional<api_key_info>> one_key(mysql_session& db, const std::string& where,
                                            const sql_value& value, std::uint64_t clinic,
                                            bool lock) {
    auto rows =
        db.query(std::string(key_columns) + where + (lock ? " FOR UPDATE" : ""), {clinic, value});
    if (!rows) return rows.error();
    auto found = key_rows(*rows);
    if (found.empty()) return std::optional<api_key_info>();
    return std::optional<api_key_info>(std::move(found.front()));
}

}  // namespace

result<std::optional<api_key_info>> find_api_key(mysql_session& db, std::uint64_t clinic,
                                                 std::string_view name, bool lock) {
    return one_key(db, "AND name = ?", std::string(name), clinic, lock);
}

result<std::optional<api_key_info>> find_api_key_by_id(mysql_session& db, std::uint64_t clinic,
                                                       std::uint64_t id, bool lock) {
    return one_key(db, "AND id = ?", id, clinic, lock);
}

result<added_api_key> add_api_key(mysql_session& db, std::uint64_t clinic,
                                  const std::string& name) {
    const auto key = new_api_key();
    if (!key) return make_error_code(errc::unavailable);
    auto r =
        db.execute("INSERT INTO api_keys (clinic_id, name, prefix, key_hash) VALUES (?, ?, ?, ?)",
                   {clinic, name, api_key_prefix(*key), api_key_hash(*key)});
    if (!r) return r.error();  // errc::conflict: the name is taken
    auto made = find_api_key(db, clinic, name, false);
    if (!made) return made.error();
    if (!*made) return make_error_code(errc::server_error);
    return added_api_key{std::move(**made), *key};
}

result<bool> revoke_api_key(mysql_session& db, std::uint64_t clinic, std::uint64_t id) {
    auto r = db.execute(
        "UPDATE api_keys SET revoked_at = NOW(3) WHERE clinic_id = ? AND id = ? AND revoked_at IS "
        "NULL",
        {clinic, id});
    if (!r) return result<bool>(boost::system::in_place_error, r.error());
    return *r > 0;
}

}  // namespace scrm::templates

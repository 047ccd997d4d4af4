// See snippet_repository.hpp.
#include "snippet_repository.hpp"

#include <map>

#include "scrm/storage/mysql.hpp"

namespace scrm::gateway {

using storage::mysql_session;
using storage::sql_u64;
using storage::sql_value;

namespace {

// " WHERE group_id = ?" or " WHERE agent_id = ?" with its value.
std::pair<std::string, sql_value> owner_filter(const snippet_owner& o) {
    if (o.group) return {" WHERE group_id = ?", sql_value(*o.group)};
    return {" WHERE agent_id = ?", sql_value(o.agent.value_or(0))};
}

}  // namespace

result<std::vector<snippet_group_row>> snippet_groups(mysql_session& db, std::uint64_t clinic,
                                                      std::optional<std::uint64_t> only) {
    std::vector<sql_value> p{clinic};
    std::string filter;
    if (only) {
        filter = " AND g.id = ?";
        p.emplace_back(*only);
    }
    auto groups = db.query("SELECT g.id, g.name FROM snippet_groups g WHERE g.clinic_id = ?" +
                               filter + " ORDER BY g.position, g.id",
                           p);
    if (!groups) return groups.error();
    auto items = db.query(
        "SELECT s.group_id, s.id, s.text FROM snippets s JOIN snippet_groups g ON g.id = "
        "s.group_id WHERE g.clinic_id = ?" +
            filter + " ORDER BY s.group_id, s.position, s.id",
        p);
    if (!items) return items.error();
    std::vector<snippet_group_row> out;
    std::map<std::uint64_t, std::size_t> at;
    for (const auto& r : groups->rows) {
        at[sql_u64(r[0])] = out.size();
        out.push_back({sql_u64(r[0]), r[1].value_or(""), {}});
    }
    for (const auto& r : items->rows) {
        const auto it = at.find(sql_u64(r[0]));
        if (it != at.end()) out[it->second].snippets.push_back({sql_u64(r[1]), r[2].value_or("")});
    }
    return out;
}

result<std::vector<snippet_row>> listed_snippets(mysql_session& db, const snippet_owner& owner) {
    auto [filter, value] = owner_filter(owner);
    auto rows =
        db.query("SELECT id, text FROM snippets" + filter + " ORDER BY position, id", {value});
    if (!rows) return rows.error();
    std::vector<snippet_row> out;
    for (const auto& r : rows->rows) out.push_back({sql_u64(r[0]), r[1].value_or("")});
    return out;
}

result<std::optional<found_snippet>> find_snippet(mysql_session& db, std::uint64_t clinic,
                                                  std::uint64_t id) {
    auto rows =
        db.query("SELECT group_id, agent_id, text FROM snippets WHERE id = ? AND clinic_id = ?",
                 {id, clinic});
    if (!rows) return rows.error();
    if (rows->rows.empty()) return std::optional<found_snippet>();
    const auto& r = rows->rows[0];
    found_snippet f;
    if (r[0]) f.owner.group = sql_u64(r[0]);
    if (r[1]) f.owner.agent = sql_u64(r[1]);
    f.row = {id, r[2].value_or("")};
    return std::optional<found_snippet>(std::move(f));
}

result<std::uint64_t> insert_snippet(mysql_session& db, std::uint64_t clinic,
                                     const snippet_owner& owner, const std::string& text) {
    auto [filter, value] = owner_filter(owner);
    auto next = db.query("SELECT IFNULL(MAX(position), 0) + 1 FROM snippets" + filter, {value});
    if (!next) return next.error();
    auto r = db.query(
        "INSERT INTO snippets (clinic_id, group_id, agent_id, position, text) VALUES (?, ?, ?, ?, "
        "?)",
        {clinic, owner.group ? sql_value(*owner.group) : sql_value(),
         owner.agent ? sql_value(*owner.agent) : sql_value(), sql_u64(next->rows[0][0]), text});
    if (!r) return r.error();
    return r->last_insert_id;
}

result<void> set_snippet_text(mysql_session& db, std::uint64_t id, const std::string& text) {
    auto r = db.execute("UPDATE snippets SET text = ? WHERE id = ?", {text, id});
    if (!r) return r.error();
    return {};
}

result<void> delete_snippet(mysql_session& db, std::uint64_t id) {
    auto r = db.execute("DELETE FROM snippets WHERE id = ?", {id});
    if (!r) return r.error();
    return {};
}

result<std::optional<std::uint64_t>> insert_snippet_group(mysql_session& db, std::uint64_t clinic,
                                                          const std::string& name) {
    auto next = db.query(
        "SELECT IFNULL(MAX(position), 0) + 1 FROM snippet_groups WHERE clinic_id = ?", {clinic});
    if (!next) return next.error();
    auto r = db.query("INSERT INTO snippet_groups (clinic_id, name, position) VALUES (?, ?, ?)",
                      {clinic, name, sql_u64(next->rows[0][0])});
    if (!r) {
        if (r.error() == errc::conflict) return std::optional<std::uint64_t>();
        return r.error();
    }
    return std::optional<std::uint64_t>(r->last_insert_id);
}

result<bool> rename_snippet_group(mysql_session& db, std::uint64_t id, const std::string& name) {
    auto r = db.execute("UPDATE snippet_groups SET name = ? WHERE id = ?", {name, id});
    if (!r) {
        if (r.error() == errc::conflict) return false;
        return result<bool>(boost::system::in_place_error, r.error());
    }
    return true;
}

result<void> delete_snippet_group(mysql_session& db, std::uint64_t id) {
    // The snippets go with the group (ON DELETE CASCADE).
    auto r = db.execute("DELETE FROM snippet_groups WHERE id = ?", {id});
    if (!r) return r.error();
    return {};
}

result<void> write_order(mysql_session& db, const char* table,
                         const std::vector<std::uint64_t>& ids) {
    const std::string sql = std::string("UPDATE ") + table + " SET position = ? WHERE id = ?";
    for (std::size_t i = 0; i < ids.size(); ++i) {
        auto r = db.execute(sql, {static_cast<std::uint64_t>(i + 1), ids[i]});
        if (!r) return r.error();
    }
    return {};
}

}  // namespace scrm::gateway

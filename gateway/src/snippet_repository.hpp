// The SQL of snippets (sql/014_snippets.sql): the clinic's groups with their snippets in order,
// each agent's own snippets in order, and the writes of snippets_api.cpp. Every function runs on
// the caller's session (a pool worker) and inside the caller's transaction, which holds the
// clinic's row lock (begin_clinic_change) for writes. Private to the gateway library.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "scrm/common/error.hpp"

namespace scrm::storage {
class mysql_session;
}

namespace scrm::gateway {

struct snippet_row {
    std::uint64_t id = 0;
    std::string text;
};

struct snippet_group_row {
    std::uint64_t id = 0;
    std::string name;
    std::vector<snippet_row> snippets;
};

// Whose list a snippet is in: a clinic group's or an agent's own (exactly one is set).
struct snippet_owner {
    std::optional<std::uint64_t> group, agent;
    friend bool operator==(const snippet_owner&, const snippet_owner&) = default;
};

// The clinic's groups in order with their snippets in order; with `only`, that group alone (empty
// when it is not the clinic's).
result<std::vector<snippet_group_row>> snippet_groups(storage::mysql_session& db,
                                                      std::uint64_t clinic,
                                                      std::optional<std::uint64_t> only = {});
// The snippets of a list in order.
result<std::vector<snippet_row>> listed_snippets(storage::mysql_session& db,
                                                 const snippet_owner& owner);

// A snippet of the clinic with its owner and text; nullopt when it is not the clinic's.
struct found_snippet {
    snippet_owner owner;
    snippet_row row;
};
result<std::optional<found_snippet>> find_snippet(storage::mysql_session& db, std::uint64_t clinic,
                                                  std::uint64_t id);

// Appends `text` to the owner's list; the new id.
result<std::uint64_t> insert_snippet(storage::mysql_session& db, std::uint64_t clinic,
                                     const snippet_owner& owner, const std::string& text);
result<void> set_snippet_text(storage::mysql_session& db, std::uint64_t id,
                              const std::string& text);
result<void> delete_snippet(storage::mysql_session& db, std::uint64_t id);

// A new group at the end of the clinic's list; nullopt when the name is taken.
result<std::optional<std::uint64_t>> insert_snippet_group(storage::mysql_session& db,
                                                          std::uint64_t clinic,
                                                          const std::string& name);
// False when another group of the clinic has that name.
result<bool> rename_snippet_group(storage::mysql_session& db, std::uint64_t id,
                                  const std::string& name);
// Removes the group and its snippets.
result<void> delete_snippet_group(storage::mysql_session& db, std::uint64_t id);

// Numbers the rows of `table` ("snippets" or "snippet_groups") 1, 2, … in the order of `ids`.
result<void> write_order(storage::mysql_session& db, const char* table,
                         const std::vector<std::uint64_t>& ids);

}  // namespace scrm::gateway

// Snippets (docs/api.md "Snippets"): the clinic's groups of quick replies, managed by its admins
// (each change audited in its transaction), and each agent's own, which only that agent sees and
// changes; every signed-in agent reads the clinic's groups and their own. Writes to a clinic take
// its row lock (as every administration write), so the limits hold under concurrent requests.
#include "admin_api_impl.hpp"
#include "admin_repository.hpp"
#include "scrm/common/log.hpp"
#include "scrm/gateway/admin_rest_requests.hpp"
#include "scrm/storage/mysql.hpp"
#include "snippet_repository.hpp"

namespace scrm::gateway {

namespace asio = boost::asio;
using asio::awaitable;
using storage::mysql_session;

namespace {

constexpr const char* no_group = "快捷回复分组不存在";
constexpr const char* no_snippet = "快捷回复不存在";

std::string snippets_json(const std::vector<snippet_row>& list) {
    std::string out = "[";
    for (const auto& s : list) {
        if (out.size() > 1) out += ',';
        out += "{\"id\":" + std::to_string(s.id) + ",\"text\":" + json_quote(s.text) + "}";
    }
    return out + "]";
}

std::string group_json(const snippet_group_row& g, std::size_t position) {
    return "{\"id\":" + std::to_string(g.id) + ",\"name\":" + json_quote(g.name) +
           ",\"position\":" + std::to_string(position) +
           ",\"snippets\":" + snippets_json(g.snippets) + "}";
}

std::string groups_json(const std::vector<snippet_group_row>& groups) {
    std::string out = "[";
    for (std::size_t i = 0; i < groups.size(); ++i) {
        out += (i ? "," : "") + group_json(groups[i], i + 1);
    }
    return out + "]";
}

template <class T>
std::vector<std::uint64_t> ids_of(const std::vector<T>& rows) {
    std::vector<std::uint64_t> out;
    for (const auto& r : rows) out.push_back(r.id);
    return out;
}

std::size_t position_of(const std::vector<std::uint64_t>& ids, std::uint64_t id) {
    return static_cast<std::size_t>(std::find(ids.begin(), ids.end(), id) - ids.begin()) + 1;
}

// Who changes which snippets: an admin the clinic's groups' (audited), an agent their own.
struct scope {
    std::uint64_t clinic = 0;
    std::uint64_t agent = 0;  // who acts
    bool clinic_groups = false;
    bool owns(const snippet_owner& o) const {
        return clinic_groups ? o.group.has_value() : o.agent == agent;
    }
};

// Commits with the audit row when the scope is the clinic's; otherwise just commits.
result<change_result> finish(mysql_session& db, const scope& s, const char* action,
                             std::string subject, std::string detail, std::string body) {
    if (s.clinic_groups) {
        audit_entry e{s.clinic, s.agent, "agent", action, std::move(subject), std::move(detail)};
        return audited_commit(db, e, std::move(body));
    }
    if (auto c = db.commit(); !c) return c.error();
    return answered(std::move(body));
}

std::string snippet_answer(const snippet_owner& o, std::uint64_t id, const std::string& text,
                           std::size_t position) {
    return "{\"id\":" + std::to_string(id) +
           ",\"group_id\":" + (o.group ? std::to_string(*o.group) : std::string("null")) +
           ",\"text\":" + json_quote(text) + ",\"position\":" + std::to_string(position) + "}";
}

// ---- snippets: add, change, remove (both scopes) -------------------------------------------

result<change_result> add_snippet(mysql_session& db, const scope& s, const snippet_owner& owner,
                                  const snippet_change& c) {
    if (auto b = begin_clinic_change(db, s.clinic); !b) return b.error();
    rollback_guard undo{db};
    if (owner.group) {
        auto g = snippet_groups(db, s.clinic, owner.group);
        if (!g) return g.error();
        if (g->empty()) return refuse_change(404, no_group);
    }
    auto list = listed_snippets(db, owner);
    if (!list) return list.error();
    if (list->size() >= snippets_per_list_max) {
        return refuse_change(422,
                             owner.group ? "每个分组最多200条快捷回复" : "个人快捷回复最多200条");
    }
    auto id = insert_snippet(db, s.clinic, owner, *c.text);
    if (!id) return id.error();
    auto ids = ids_of(*list);
    ids.push_back(*id);
    if (c.position) {
        ids = moved(std::move(ids), *id, *c.position);
        if (auto w = write_order(db, "snippets", ids); !w) return w.error();
    }
    const std::string body = snippet_answer(owner, *id, *c.text, position_of(ids, *id));
    const std::string detail = "{\"group_id\":" + std::to_string(owner.group.value_or(0)) +
                               ",\"text\":" + json_quote(*c.text) + "}";
    return finish(db, s, "snippet.create", "snippet:" + std::to_string(*id), detail,
                  "{\"snippet\":" + body + "}");
}

result<change_result> change_snippet(mysql_session& db, const scope& s, std::uint64_t id,
                                     const snippet_change& c) {
    if (auto b = begin_clinic_change(db, s.clinic); !b) return b.error();
    rollback_guard undo{db};
    auto found = find_snippet(db, s.clinic, id);
    if (!found) return found.error();
    if (!*found || !s.owns((*found)->owner)) return refuse_change(404, no_snippet);
    const snippet_owner owner = (*found)->owner;
    auto list = listed_snippets(db, owner);
    if (!list) return list.error();
    const auto before_ids = ids_of(*list);
    const auto ids = c.position ? moved(before_ids, id, *c.position) : before_ids;
    const std::string before_text = (*found)->row.text;
    const std::string after_text = c.text.value_or(before_text);
    std::string changes;
    change(changes, "text", json_quote(before_text), json_quote(after_text));
    change(changes, "position", std::to_string(position_of(before_ids, id)),
           std::to_string(position_of(ids, id)));
    changes = "{" + changes + "}";
    const std::string body =
        "{\"snippet\":" + snippet_answer(owner, id, after_text, position_of(ids, id)) +
        ",\"changed\":" + changes + "}";
    if (changes == "{}") return answered(body);
    if (after_text != before_text) {
        if (auto w = set_snippet_text(db, id, after_text); !w) return w.error();
    }
    if (ids != before_ids) {
        if (auto w = write_order(db, "snippets", ids); !w) return w.error();
    }
    return finish(db, s, "snippet.update", "snippet:" + std::to_string(id), changes, body);
}

result<change_result> remove_snippet(mysql_session& db, const scope& s, std::uint64_t id) {
    if (auto b = begin_clinic_change(db, s.clinic); !b) return b.error();
    rollback_guard undo{db};
    auto found = find_snippet(db, s.clinic, id);
    if (!found) return found.error();
    if (!*found || !s.owns((*found)->owner)) return refuse_change(404, no_snippet);
    if (auto w = delete_snippet(db, id); !w) return w.error();
    const auto& f = **found;
    const std::string group = f.owner.group ? std::to_string(*f.owner.group) : "null";
    return finish(db, s, "snippet.delete", "snippet:" + std::to_string(id),
                  "{\"group_id\":" + group + ",\"text\":" + json_quote(f.row.text) + "}",
                  "{\"deleted\":{\"id\":" + std::to_string(id) + ",\"group_id\":" + group + "}}");
}

// Runs `work(db, scope)` on the pool and answers it (`ok_status` when done).
template <class Work>
awaitable<http_response> run_change(admin_ptr self, scope s, Work work, const char* event,
                                    unsigned ok_status = 200) {
    auto job = [&s, &work](mysql_session& db) { return work(db, s); };
    auto done = co_await self->mysql.run(job);
    if (!done) co_return unavailable("snippets.unavailable", done.error());
    if (!done->refused) log::info(event, {{"clinic", s.clinic}, {"agent", s.agent}});
    co_return answer(*done, ok_status);
}

// ---- the clinic's groups (admins) -----------------------------------------------------------

constexpr std::string_view groups_path = "/api/admin/snippet-groups";

awaitable<http_response> list_groups(admin_ptr self, http_request req) {
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    const std::uint64_t clinic = auth.agent->row.clinic;
    auto read = [clinic](mysql_session& db) { return snippet_groups(db, clinic); };
    auto groups = co_await self->mysql.run(read);
    if (!groups) co_return unavailable("snippets.unavailable", groups.error());
    co_return ok_json("{\"groups\":" + groups_json(*groups) +
                      ",\"limits\":{\"groups\":" + std::to_string(snippet_groups_max) +
                      ",\"snippets_per_group\":" + std::to_string(snippets_per_list_max) +
                      ",\"text_chars\":" + std::to_string(snippet_text_max) +
                      ",\"name_chars\":" + std::to_string(snippet_group_name_max) + "}}");
}

result<change_result> add_group(mysql_session& db, const scope& s, const snippet_group_change& c) {
    if (auto b = begin_clinic_change(db, s.clinic); !b) return b.error();
    rollback_guard undo{db};
    auto groups = snippet_groups(db, s.clinic);
    if (!groups) return groups.error();
    if (groups->size() >= snippet_groups_max) {
        return refuse_change(422, "每个诊所最多50个快捷回复分组");
    }
    auto id = insert_snippet_group(db, s.clinic, *c.name);
    if (!id) return id.error();
    if (!*id) return refuse_change(409, "本诊所已有同名的快捷回复分组");
    auto ids = ids_of(*groups);
    ids.push_back(**id);
    if (c.position) {
        ids = moved(std::move(ids), **id, *c.position);
        if (auto w = write_order(db, "snippet_groups", ids); !w) return w.error();
    }
    const snippet_group_row made{**id, *c.name, {}};
    return finish(db, s, "snippet_group.create", "snippet_group:" + std::to_string(**id),
                  "{\"name\":" + json_quote(*c.name) + "}",
                  "{\"group\":" + group_json(made, position_of(ids, **id)) + "}");
}

result<change_result> change_group(mysql_session& db, const scope& s, std::uint64_t id,
                                   const snippet_group_change& c) {
    if (auto b = begin_clinic_change(db, s.clinic); !b) return b.error();
    rollback_guard undo{db};
    auto groups = snippet_groups(db, s.clinic);
    if (!groups) return groups.error();
    const auto before_ids = ids_of(*groups);
    const auto it = std::find(before_ids.begin(), before_ids.end(), id);
    if (it == before_ids.end()) return refuse_change(404, no_group);
    snippet_group_row g = (*groups)[static_cast<std::size_t>(it - before_ids.begin())];
    const auto ids = c.position ? moved(before_ids, id, *c.position) : before_ids;
    const std::string before_name = g.name;
    g.name = c.name.value_or(before_name);
    std::string changes;
    change(changes, "name", json_quote(before_name), json_quote(g.name));
    change(changes, "position", std::to_string(position_of(before_ids, id)),
           std::to_string(position_of(ids, id)));
    changes = "{" + changes + "}";
    const std::string body =
        "{\"group\":" + group_json(g, position_of(ids, id)) + ",\"changed\":" + changes + "}";
    if (changes == "{}") return answered(body);
    if (g.name != before_name) {
        auto renamed = rename_snippet_group(db, id, g.name);
        if (!renamed) return renamed.error();
        if (!*renamed) return refuse_change(409, "本诊所已有同名的快捷回复分组");
    }
    if (ids != before_ids) {
        if (auto w = write_order(db, "snippet_groups", ids); !w) return w.error();
    }
    return finish(db, s, "snippet_group.update", "snippet_group:" + std::to_string(id), changes,
                  body);
}

result<change_result> remove_group(mysql_session& db, const scope& s, std::uint64_t id) {
    if (auto b = begin_clinic_change(db, s.clinic); !b) return b.error();
    rollback_guard undo{db};
    auto groups = snippet_groups(db, s.clinic, id);
    if (!groups) return groups.error();
    if (groups->empty()) return refuse_change(404, no_group);
    const snippet_group_row& g = groups->front();
    if (auto w = delete_snippet_group(db, id); !w) return w.error();
    const std::string n = std::to_string(g.snippets.size());
    return finish(db, s, "snippet_group.delete", "snippet_group:" + std::to_string(id),
                  "{\"name\":" + json_quote(g.name) + ",\"snippets\":" + n + "}",
                  "{\"deleted\":{\"id\":" + std::to_string(id) + ",\"name\":" + json_quote(g.name) +
                      ",\"snippets\":" + n + "}}");
}

awaitable<http_response> create_group(admin_ptr self, http_request req) {
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    auto parsed = parse_snippet_group(req.body, true);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const snippet_group_change c = std::move(*parsed.value);
    auto work = [&c](mysql_session& db, const scope& s) { return add_group(db, s, c); };
    const scope s{auth.agent->row.clinic, auth.agent->row.id, true};
    co_return co_await run_change(self, s, work, "snippets.group_created", 201);
}

// PUT|DELETE /api/admin/snippet-groups/{id}, POST /api/admin/snippet-groups/{id}/snippets.
awaitable<http_response> group_handler(admin_ptr self, http_request req) {
    const std::string prefix = std::string(groups_path) + "/";
    const auto group = path_id(req.path, prefix, "");
    const auto snippets_of = path_id(req.path, prefix, "/snippets");
    const bool known = (req.method == "POST") ? snippets_of.has_value() : group.has_value();
    if (!known) co_return json_error(404, "not found");
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    const scope s{auth.agent->row.clinic, auth.agent->row.id, true};
    if (req.method == "POST") {
        auto parsed = parse_snippet(req.body, true);
        if (!parsed.value) co_return json_error(400, parsed.problem);
        const snippet_change c = std::move(*parsed.value);
        const snippet_owner owner{snippets_of, std::nullopt};
        auto work = [&c, &owner](mysql_session& db, const scope& sc) {
            return add_snippet(db, sc, owner, c);
        };
        co_return co_await run_change(self, s, work, "snippets.created", 201);
    }
    const std::uint64_t id = *group;
    if (req.method == "DELETE") {
        auto work = [id](mysql_session& db, const scope& sc) { return remove_group(db, sc, id); };
        co_return co_await run_change(self, s, work, "snippets.group_deleted");
    }
    auto parsed = parse_snippet_group(req.body, false);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const snippet_group_change c = std::move(*parsed.value);
    auto work = [id, &c](mysql_session& db, const scope& sc) {
        return change_group(db, sc, id, c);
    };
    co_return co_await run_change(self, s, work, "snippets.group_updated");
}

// PUT|DELETE /api/admin/snippets/{id} (a clinic group's) and /api/agent/snippets/{id} (own).
awaitable<http_response> snippet_handler(admin_ptr self, http_request req, bool clinic_groups) {
    const auto id =
        path_id(req.path, clinic_groups ? "/api/admin/snippets/" : "/api/agent/snippets/", "");
    if (!id) co_return json_error(404, "not found");
    auth_result auth;
    if (clinic_groups) {
        auth = co_await self->admin(req);
    } else {
        auth = co_await self->agents->authenticate(req);
    }
    if (!auth.agent) co_return auth.refusal;
    const scope s{auth.agent->row.clinic, auth.agent->row.id, clinic_groups};
    const std::uint64_t target = *id;
    if (req.method == "DELETE") {
        auto work = [target](mysql_session& db, const scope& sc) {
            return remove_snippet(db, sc, target);
        };
        co_return co_await run_change(self, s, work, "snippets.deleted");
    }
    auto parsed = parse_snippet(req.body, false);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const snippet_change c = std::move(*parsed.value);
    auto work = [target, &c](mysql_session& db, const scope& sc) {
        return change_snippet(db, sc, target, c);
    };
    co_return co_await run_change(self, s, work, "snippets.updated");
}

// ---- every agent: the clinic's groups and their own ----------------------------------------

awaitable<http_response> agent_view(admin_ptr self, http_request req) {
    auto auth = co_await self->agents->authenticate(req);
    if (!auth.agent) co_return auth.refusal;
    const std::uint64_t clinic = auth.agent->row.clinic;
    const snippet_owner own{std::nullopt, auth.agent->row.id};
    struct view {
        std::vector<snippet_group_row> groups;
        std::vector<snippet_row> own;
    };
    auto read = [clinic, &own](mysql_session& db) -> result<view> {
        auto groups = snippet_groups(db, clinic);
        if (!groups) return groups.error();
        auto mine = listed_snippets(db, own);
        if (!mine) return mine.error();
        return view{std::move(*groups), std::move(*mine)};
    };
    auto v = co_await self->mysql.run(read);
    if (!v) co_return unavailable("snippets.unavailable", v.error());
    co_return ok_json("{\"groups\":" + groups_json(v->groups) +
                      ",\"own\":" + snippets_json(v->own) + "}");
}

awaitable<http_response> create_own(admin_ptr self, http_request req) {
    auto auth = co_await self->agents->authenticate(req);
    if (!auth.agent) co_return auth.refusal;
    auto parsed = parse_snippet(req.body, true);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const snippet_change c = std::move(*parsed.value);
    const snippet_owner owner{std::nullopt, auth.agent->row.id};
    auto work = [&c, &owner](mysql_session& db, const scope& sc) {
        return add_snippet(db, sc, owner, c);
    };
    const scope s{auth.agent->row.clinic, auth.agent->row.id, false};
    co_return co_await run_change(self, s, work, "snippets.created", 201);
}

}  // namespace

void add_snippet_routes(const admin_ptr& self, router& routes) {
    const std::string groups(groups_path);
    routes.exact("GET", groups, [self](http_request r) { return list_groups(self, std::move(r)); });
    routes.exact("POST", groups,
                 [self](http_request r) { return create_group(self, std::move(r)); });
    for (const char* method : {"PUT", "DELETE", "POST"}) {
        routes.prefix(method, groups + "/",
                      std::string(method) == "POST" ? groups + "/{id}/snippets" : groups + "/{id}",
                      [self](http_request r) { return group_handler(self, std::move(r)); });
    }
    for (const char* method : {"PUT", "DELETE"}) {
        routes.prefix(method, "/api/admin/snippets/", "/api/admin/snippets/{id}",
                      [self](http_request r) { return snippet_handler(self, std::move(r), true); });
        routes.prefix(
            method, "/api/agent/snippets/", "/api/agent/snippets/{id}",
            [self](http_request r) { return snippet_handler(self, std::move(r), false); });
    }
    routes.exact("GET", "/api/snippets",
                 [self](http_request r) { return agent_view(self, std::move(r)); });
    routes.exact("POST", "/api/agent/snippets",
                 [self](http_request r) { return create_own(self, std::move(r)); });
}

}  // namespace scrm::gateway

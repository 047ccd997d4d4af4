// The admin endpoints' authentication (an agent's session whose role is admin), the routing
// settings (validated by routing_settings.hpp, as scrm-admin does; audited in the same
// transaction), "who would get this now?" (routing_stage::preview, read-only) and the audit log.
#include "admin_api_impl.hpp"
#include "admin_repository.hpp"
#include "scrm/common/log.hpp"
#include "scrm/gateway/admin_requests.hpp"
#include "scrm/gateway/audit_log.hpp"
#include "scrm/gateway/routing_settings.hpp"
#include "scrm/gateway/routing_stage.hpp"
#include "scrm/routing/time_text.hpp"
#include "scrm/storage/mysql.hpp"

namespace scrm::gateway {

namespace asio = boost::asio;
using asio::awaitable;
using storage::mysql_session;

std::string agent_ref_json(std::uint64_t id, const std::string& name) {
    return "{\"id\":" + std::to_string(id) + ",\"name\":" + json_quote(name) + "}";
}

awaitable<auth_result> admin_api::impl::admin(const http_request& req) {
    auto auth = co_await agents->authenticate(req);
    if (auth.agent && auth.agent->row.role != "admin") {
        auth.agent.reset();
        auth.refusal = json_error(403, "仅管理员可以使用此功能");
    }
    co_return auth;
}

namespace {

std::string settings_json(const std::vector<std::optional<std::string>>& values) {
    std::string out = "{";
    const auto all = routing_settings();
    for (std::size_t i = 0; i < all.size() && i < values.size(); ++i) {
        if (i) out += ',';
        out += json_quote(all[i].key) + ":" + setting_json(all[i], values[i]);
    }
    return out + "}";
}

// ---- GET|PUT /api/admin/routing ----------------------------------------------------------

awaitable<http_response> get_routing(admin_ptr self, http_request req) {
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    const std::uint64_t clinic = auth.agent->row.clinic;
    auto read = [clinic](mysql_session& db) -> result<stored_settings> {
        if (auto b = db.begin(); !b) return b.error();
        rollback_guard undo{db};  // reading writes nothing (the defaults' row is rolled back)
        return read_routing_settings(db, clinic);
    };
    auto stored = co_await self->mysql.run(read);
    if (!stored) co_return unavailable("admin.routing_unavailable", stored.error());
    co_return ok_json("{\"routing\":" + settings_json(stored->values) + "}");
}

struct routing_saved {
    std::vector<std::optional<std::string>> after;
    std::string changes;  // JSON object, "{}" when nothing changed
};

awaitable<http_response> put_routing(admin_ptr self, http_request req) {
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    auto parsed = parse_routing_update(req.body);
    if (!parsed.value) {
        http_response r = json_error(400, parsed.problem);
        r.body.pop_back();
        r.body += ",\"problems\":[";
        for (std::size_t i = 0; i < parsed.details.size(); ++i) {
            r.body += std::string(i ? "," : "") +
                      "{\"field\":" + json_quote(parsed.details[i].field) +
                      ",\"error\":" + json_quote(parsed.details[i].error) + "}";
        }
        r.body += "]}";
        co_return r;
    }
    const std::uint64_t clinic = auth.agent->row.clinic;
    const std::uint64_t admin = auth.agent->row.id;
    routing_update update = std::move(*parsed.value);
    auto save = [clinic, admin, &update](mysql_session& db) -> result<routing_saved> {
        if (auto b = begin_clinic_change(db, clinic); !b) return b.error();
        rollback_guard undo{db};
        auto before = read_routing_settings(db, clinic, true);
        if (!before) return before.error();
        auto after = write_routing_settings(db, clinic, update.given);
        if (!after) return after.error();
        std::string changes = routing_changes_json(before->values, *after);
        routing_saved out{std::move(*after), std::move(changes)};
        if (out.changes != "{}") {
            audit_entry e{clinic, admin, "agent", "routing.set", "routing", out.changes};
            if (auto r = append_audit(db, e); !r) return r.error();
        }
        if (auto c = db.commit(); !c) return c.error();
        return out;
    };
    auto saved = co_await self->mysql.run(save);
    if (!saved) co_return unavailable("admin.routing_unavailable", saved.error());
    log::info("admin.routing_set", {{"clinic", clinic}, {"agent", admin}});
    co_return ok_json("{\"routing\":" + settings_json(saved->after) +
                      ",\"changed\":" + saved->changes + "}");
}

// ---- GET /api/admin/route-preview?account=&openid= ---------------------------------------

bool valid_openid(std::string_view s) {
    if (s.empty() || s.size() > 128) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
    });
}

std::string number_or_null(const std::optional<std::string>& id) {
    return id ? *id : "null";  // agent and store ids: digits
}

awaitable<http_response> route_preview_handler(admin_ptr self, http_request req) {
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    const auto account_text = query_param(req.query, "account");
    const auto account = account_text ? parse_id(*account_text) : std::nullopt;
    if (!account) co_return json_error(400, "请填写公众号编号（account）");
    const auto openid = query_param(req.query, "openid");
    if (!openid || !valid_openid(*openid)) {
        co_return json_error(400, "请填写顾客的 OpenID（openid：字母、数字、_ 或 -，最多128个）");
    }
    const std::uint64_t clinic = auth.agent->row.clinic;
    auto fan = co_await self->agents->repo.conversation(*account, *openid);
    if (!fan) co_return unavailable("admin.preview_unavailable", fan.error());
    if (!*fan || (*fan)->clinic != clinic) co_return json_error(404, "公众号不存在");
    auto p = co_await self->agents->stage.preview(clinic, *account, *openid);
    if (!p) co_return unavailable("admin.preview_unavailable", p.error());
    const routing::snapshot& in = p->input;
    std::string agents = "[";
    for (const auto& a : in.agents) {
        if (agents.size() > 1) agents += ',';
        agents += "{\"id\":" + a.id + ",\"store_id\":" + number_or_null(a.store) +
                  ",\"can_receive\":" + (a.can_receive ? "true" : "false") +
                  ",\"online\":" + (a.online ? "true" : "false") +
                  ",\"load\":" + std::to_string(a.load) + "}";
    }
    agents += "]";
    std::string session = "null";
    if (p->lock) {
        session = "{\"holder\":" + json_quote(p->lock->holder) +
                  ",\"ttl_ms\":" + std::to_string(p->lock->ttl.count()) + "}";
    }
    co_return ok_json(
        "{\"account_id\":" + std::to_string(*account) + ",\"openid\":" + json_quote(*openid) +
        ",\"now\":" + json_quote(routing::format_timestamp(in.now, in.config.utc_offset)) +
        ",\"fan_known\":" + (p->fan_known ? "true" : "false") +
        ",\"fan\":{\"consultant\":" + number_or_null(in.fan.consultant) + ",\"exclusive_agent\":" +
        number_or_null(in.fan.exclusive_agent) + ",\"store_id\":" + number_or_null(in.fan.store) +
        "},\"agents\":" + agents + ",\"session\":" + session +
        ",\"auto_reply_suppressed\":" + (in.auto_reply_suppressed ? "true" : "false") +
        ",\"decision\":" + p->decision_json + ",\"auto_reply_text\":" +
        (p->auto_reply_text ? json_quote(*p->auto_reply_text) : std::string("null")) + "}");
}

// ---- GET /api/admin/audit?action=&before=&limit= -----------------------------------------

awaitable<http_response> audit_handler(admin_ptr self, http_request req) {
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    auto q = parse_audit_query(req.query);
    if (!q.value) co_return json_error(400, q.problem);
    const std::uint64_t clinic = auth.agent->row.clinic;
    const audit_query query = *q.value;
    auto read = [clinic, &query](mysql_session& db) { return audit_page(db, clinic, query); };
    auto rows = co_await self->mysql.run(read);
    if (!rows) co_return unavailable("admin.audit_unavailable", rows.error());
    std::string body = "{\"entries\":[";
    for (std::size_t i = 0; i < rows->size(); ++i) {
        const audit_row& a = (*rows)[i];
        body += std::string(i ? "," : "") + "{\"id\":" + std::to_string(a.id) +
                ",\"at\":" + json_quote(iso_utc(a.at)) + ",\"actor\":" + json_quote(a.actor) +
                ",\"agent\":" +
                (a.agent ? agent_ref_json(*a.agent, a.agent_name.value_or("")) : "null") +
                ",\"action\":" + json_quote(a.action) + ",\"subject\":" + json_quote(a.subject) +
                ",\"detail\":" + (a.detail ? json_or_string(*a.detail) : "null") + "}";
    }
    // A full page may have more behind it: the next one starts before its last entry.
    const bool full = rows->size() == query.limit && !rows->empty();
    body += "],\"next_before\":" + (full ? std::to_string(rows->back().id) : "null") + "}";
    co_return ok_json(std::move(body));
}

// POST /api/admin/agents/{id}/deactivate and /password (prefix route).
awaitable<http_response> agents_handler(admin_ptr self, http_request req) {
    constexpr std::string_view prefix = "/api/admin/agents/";
    if (path_id(req.path, prefix, "/deactivate")) {
        co_return co_await deactivate_agent(std::move(self), std::move(req));
    }
    if (const auto id = path_id(req.path, prefix, "/password")) {
        co_return co_await reset_password(std::move(self), std::move(req), *id);
    }
    co_return json_error(404, "not found");
}

}  // namespace

std::optional<std::uint64_t> path_id(std::string_view path, std::string_view prefix,
                                     std::string_view suffix) {
    if (path.size() <= prefix.size() + suffix.size() || path.substr(0, prefix.size()) != prefix ||
        path.substr(path.size() - suffix.size()) != suffix) {
        return std::nullopt;
    }
    return parse_id(path.substr(prefix.size(), path.size() - prefix.size() - suffix.size()));
}

namespace {

std::optional<secret_box> master_box() {
    auto box = secret_box::from_env();
    if (!box) return std::nullopt;
    return std::move(*box);
}

}  // namespace

admin_api::admin_api(agent_api& agents, storage::mysql_pool& mysql, wechat_clients& clients)
    : impl_(std::make_shared<impl>(impl{agents.state(), mysql, clients, master_box()})) {}

admin_api::~admin_api() = default;

void admin_api::add_routes(router& routes) {
    auto self = impl_;
    routes.exact("GET", "/api/admin/routing",
                 [self](http_request r) { return get_routing(self, std::move(r)); });
    routes.exact("PUT", "/api/admin/routing",
                 [self](http_request r) { return put_routing(self, std::move(r)); });
    routes.exact("POST", "/api/admin/reassign/preview",
                 [self](http_request r) { return reassign(self, std::move(r), false); });
    routes.exact("POST", "/api/admin/reassign/apply",
                 [self](http_request r) { return reassign(self, std::move(r), true); });
    routes.prefix("POST", "/api/admin/agents/", "/api/admin/agents/{id}/{action}",
                  [self](http_request r) { return agents_handler(self, std::move(r)); });
    routes.exact("GET", "/api/admin/route-preview",
                 [self](http_request r) { return route_preview_handler(self, std::move(r)); });
    routes.exact("GET", "/api/admin/audit",
                 [self](http_request r) { return audit_handler(self, std::move(r)); });
    add_people_routes(self, routes);
    add_account_routes(self, routes);
    add_template_routes(self, routes);
    add_snippet_routes(self, routes);
}

}  // namespace scrm::gateway

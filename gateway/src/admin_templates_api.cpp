// The admin API's template settings (GET /api/admin/templates, PUT /api/admin/templates/{kind})
// and API keys (GET|POST /api/admin/api-keys, POST /api/admin/api-keys/{name or id}/revoke):
// scrm-admin template set's and apikey's rules and SQL (templates/setting.hpp validate and
// updated, templates/clinic_admin.hpp), each change audited in its transaction. A new key is
// answered once and never logged.
#include "admin_api_impl.hpp"
#include "admin_repository.hpp"
#include "scrm/common/log.hpp"
#include "scrm/gateway/admin_requests.hpp"
#include "scrm/gateway/admin_rest_requests.hpp"
#include "scrm/storage/mysql.hpp"
#include "scrm/templates/clinic_admin.hpp"
#include "scrm/templates/notifier.hpp"

namespace scrm::gateway {

namespace asio = boost::asio;
using asio::awaitable;
using storage::mysql_session;

namespace {

std::string text_or_null(const std::string& s) {
    return s.empty() ? "null" : json_quote(s);
}

// The members of a setting as answered and audited, in order; a kind never set: nulls.
std::vector<std::pair<const char*, std::string>> setting_members(
    const std::optional<templates::template_setting>& s) {
    if (!s) {
        return {{"template_id", "null"},
                {"keywords", "[]"},
                {"url", "null"},
                {"miniprogram", "null"},
                {"enabled", "false"}};
    }
    const std::string mp = s->mp_appid.empty() ? "null"
                                               : "{\"appid\":" + json_quote(s->mp_appid) +
                                                     ",\"page\":" + json_quote(s->mp_page) + "}";
    return {{"template_id", json_quote(s->template_id)},
            {"keywords", templates::keywords_json(s->keywords)},
            {"url", text_or_null(s->url)},
            {"miniprogram", mp},
            {"enabled", bool_json(s->enabled)}};
}

std::string fields_json(std::span<const templates::field_info> fields) {
    std::string out = "[";
    for (const auto& f : fields) {
        if (out.size() > 1) out += ',';
        out += "{\"name\":" + json_quote(f.name) + ",\"label\":" + json_quote(f.label) +
               ",\"required\":" + bool_json(f.required) + "}";
    }
    return out + "]";
}

std::string template_json(const templates::kind_info& k,
                          const std::optional<templates::template_setting>& s) {
    std::string out = "{\"kind\":" + json_quote(k.name) + ",\"label\":" + json_quote(k.label) +
                      ",\"fields\":" + fields_json(k.fields) +
                      ",\"configured\":" + bool_json(s.has_value());
    for (const auto& [name, value] : setting_members(s)) {
        out += ",\"" + std::string(name) + "\":" + value;
    }
    return out + "}";
}

// ---- GET /api/admin/templates --------------------------------------------------------------

awaitable<http_response> list_templates(admin_ptr self, http_request req) {
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    const std::uint64_t clinic = auth.agent->row.clinic;
    using stored = std::vector<std::optional<templates::template_setting>>;
    auto read = [clinic](mysql_session& db) -> result<stored> {
        stored out;
        for (const auto& k : templates::catalog()) {
            auto s = templates::load_setting(db, clinic, k.name);
            if (!s) return s.error();
            out.push_back(std::move(*s));
        }
        return out;
    };
    auto settings = co_await self->mysql.run(read);
    if (!settings) co_return unavailable("admin.templates_unavailable", settings.error());
    std::string body = "{\"templates\":[";
    const auto kinds = templates::catalog();
    for (std::size_t i = 0; i < kinds.size(); ++i) {
        body += (i ? "," : "") + template_json(kinds[i], (*settings)[i]);
    }
    body += "],\"builtin_fields\":" + fields_json(templates::builtin_fields()) + "}";
    co_return ok_json(std::move(body));
}

// ---- PUT /api/admin/templates/{kind} -------------------------------------------------------

struct template_saved {
    std::vector<templates::problem> problems;  // the setting after the change breaks these
    std::string body;
};

awaitable<http_response> put_template(admin_ptr self, http_request req) {
    const std::string kind = req.path.substr(std::string_view("/api/admin/templates/").size());
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    const templates::kind_info* info = templates::find_kind(kind);
    if (!info) co_return json_error(404, "未知的通知类型：" + kind);
    auto parsed = parse_template_update(req.body);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const std::uint64_t clinic = auth.agent->row.clinic;
    const std::uint64_t admin = auth.agent->row.id;
    const templates::setting_update update = std::move(*parsed.value);
    auto save = [clinic, admin, info, &update](mysql_session& db) -> result<template_saved> {
        if (auto b = begin_clinic_change(db, clinic); !b) return b.error();
        rollback_guard undo{db};
        auto before = templates::load_setting(db, clinic, info->name);
        if (!before) return before.error();
        const auto after = templates::updated(*before, info->name, update);
        template_saved out;
        out.problems = templates::validate(after);
        if (!out.problems.empty()) return out;
        const auto was = setting_members(*before), now = setting_members(after);
        std::string changes;
        for (std::size_t i = 0; i < was.size(); ++i) {
            change(changes, was[i].first, was[i].second, now[i].second);
        }
        changes = "{" + changes + "}";
        out.body = "{\"template\":" + template_json(*info, after) + ",\"changed\":" + changes + "}";
        if (*before && **before == after) return out;  // nothing to store or audit
        if (auto w = templates::store_setting(db, clinic, after); !w) return w.error();
        audit_entry e{clinic, admin, "agent", "template.set", std::string(info->name), changes};
        if (auto r = append_audit(db, e); !r) return r.error();
        if (auto c = db.commit(); !c) return c.error();
        return out;
    };
    auto saved = co_await self->mysql.run(save);
    if (!saved) co_return unavailable("admin.template_unavailable", saved.error());
    if (!saved->problems.empty()) {
        std::string text, list;
        for (const auto& p : saved->problems) {
            text += (text.empty() ? "" : "；") + p.field + "：" + p.zh;
            list += std::string(list.empty() ? "" : ",") + "{\"field\":" + json_quote(p.field) +
                    ",\"error\":" + json_quote(p.zh) + "}";
        }
        http_response r = json_error(400, text);
        r.body.pop_back();
        r.body += ",\"problems\":[" + list + "]}";
        co_return r;
    }
    log::info("admin.template_set", {{"clinic", clinic}, {"agent", admin}, {"kind", kind}});
    co_return ok_json(std::move(saved->body));
}

// ---- API keys ------------------------------------------------------------------------------

std::string api_key_json(const templates::api_key_info& k) {
    return "{\"id\":" + std::to_string(k.id) + ",\"name\":" + json_quote(k.name) +
           ",\"prefix\":" + json_quote(k.prefix) +
           ",\"created_at\":" + json_quote(iso_utc(k.created_at)) + ",\"revoked_at\":" +
           (k.revoked_at ? json_quote(iso_utc(*k.revoked_at)) : std::string("null")) +
           ",\"active\":" + bool_json(!k.revoked_at) + "}";
}

awaitable<http_response> list_api_keys(admin_ptr self, http_request req) {
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    const std::uint64_t clinic = auth.agent->row.clinic;
    auto read = [clinic](mysql_session& db) { return templates::list_api_keys(db, clinic); };
    auto keys = co_await self->mysql.run(read);
    if (!keys) co_return unavailable("admin.api_keys_unavailable", keys.error());
    std::string body = "{\"api_keys\":[";
    for (std::size_t i = 0; i < keys->size(); ++i)
        body += (i ? "," : "") + api_key_json((*keys)[i]);
    co_return ok_json(body + "]}");
}

awaitable<http_response> create_api_key(admin_ptr self, http_request req) {
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    auto parsed = parse_api_key_name(req.body);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const std::uint64_t clinic = auth.agent->row.clinic;
    const std::uint64_t admin = auth.agent->row.id;
    const std::string name = std::move(*parsed.value);
    auto work = [clinic, admin, &name](mysql_session& db) -> result<change_result> {
        if (auto b = begin_clinic_change(db, clinic); !b) return b.error();
        rollback_guard undo{db};
        auto added = templates::add_api_key(db, clinic, name);
        if (!added) {
            if (added.error() == errc::conflict) {
                return refuse_change(409,
                                     "本诊所已有同名的 API 密钥（已停用的也算），请换一个名称");
            }
            return added.error();
        }
        audit_entry e{clinic,
                      admin,
                      "agent",
                      "apikey.add",
                      name,
                      "{\"id\":" + std::to_string(added->info.id) +
                          ",\"prefix\":" + json_quote(added->info.prefix) + "}"};
        return audited_commit(db, e,
                              "{\"api_key\":" + api_key_json(added->info) +
                                  ",\"key\":" + json_quote(added->key) + "}");
    };
    auto done = co_await self->mysql.run(work);
    if (!done) co_return unavailable("admin.api_key_unavailable", done.error());
    if (done->refused) co_return answer(*done);
    log::info("admin.api_key_added", {{"clinic", clinic}, {"agent", admin}});
    http_response r = answer(*done, 201);
    r.headers.emplace_back("Cache-Control", "no-store");  // the key is shown this once
    co_return r;
}

// POST /api/admin/api-keys/{name or id}/revoke: the segment percent-decoded.
awaitable<http_response> revoke_api_key(admin_ptr self, http_request req) {
    constexpr std::string_view prefix = "/api/admin/api-keys/", suffix = "/revoke";
    const std::string_view path = req.path;
    if (path.size() <= prefix.size() + suffix.size() ||
        path.substr(path.size() - suffix.size()) != suffix) {
        co_return json_error(404, "not found");
    }
    const std::string segment(
        path.substr(prefix.size(), path.size() - prefix.size() - suffix.size()));
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    // query_param decodes %-escapes ('+' stays '+': escaped first).
    std::string escaped;
    for (const char c : segment) escaped += c == '+' ? std::string("%2B") : std::string(1, c);
    const auto name = query_param("k=" + escaped, "k");
    if (!name || name->empty()) co_return json_error(404, "API 密钥不存在");
    const std::uint64_t clinic = auth.agent->row.clinic;
    const std::uint64_t admin = auth.agent->row.id;
    auto work = [clinic, admin, &name](mysql_session& db) -> result<change_result> {
        if (auto b = begin_clinic_change(db, clinic); !b) return b.error();
        rollback_guard undo{db};
        // By name; a segment of digits that is no key's name, by id.
        auto key = templates::find_api_key(db, clinic, *name, true);
        if (!key) return key.error();
        if (!*key) {
            if (const auto id = parse_id(*name))
                key = templates::find_api_key_by_id(db, clinic, *id, true);
            if (!key) return key.error();
        }
        if (!*key) return refuse_change(404, "API 密钥不存在");
        auto revoked = templates::revoke_api_key(db, clinic, (*key)->id);
        if (!revoked) return revoked.error();
        if (!*revoked) {
            return answered("{\"api_key\":" + api_key_json(**key) + ",\"already_revoked\":true}");
        }
        auto after = templates::find_api_key(db, clinic, (*key)->name, false);
        if (!after) return after.error();
        audit_entry e{clinic,          admin,        "agent",
                      "apikey.revoke", (*key)->name, "{\"id\":" + std::to_string((*key)->id) + "}"};
        return audited_commit(db, e, "{\"api_key\":" + api_key_json(after->value_or(**key)) + "}");
    };
    auto done = co_await self->mysql.run(work);
    if (!done) co_return unavailable("admin.api_key_unavailable", done.error());
    if (!done->refused) log::info("admin.api_key_revoked", {{"clinic", clinic}, {"agent", admin}});
    co_return answer(*done);
}

}  // namespace

void add_template_routes(const admin_ptr& self, router& routes) {
    routes.exact("GET", "/api/admin/templates",
                 [self](http_request r) { return list_templates(self, std::move(r)); });
    routes.prefix("PUT", "/api/admin/templates/", "/api/admin/templates/{kind}",
                  [self](http_request r) { return put_template(self, std::move(r)); });
    routes.exact("GET", "/api/admin/api-keys",
                 [self](http_request r) { return list_api_keys(self, std::move(r)); });
    routes.exact("POST", "/api/admin/api-keys",
                 [self](http_request r) { return create_api_key(self, std::move(r)); });
    routes.prefix("POST", "/api/admin/api-keys/", "/api/admin/api-keys/{key}/revoke",
                  [self](http_request r) { return revoke_api_key(self, std::move(r)); });
}

}  // namespace scrm::gateway

// The admin API's people and places: agents (list, create, change role / store / permission,
// reset a password) with scrm-admin agent add's rules (admin_requests.hpp, password.hpp), and
// stores (list, create, rename) with their permanent WeChat QR codes. Each change and its audit
// row commit together; passwords are hashed on agent_api's hash pool, never on an I/O thread, and
// never logged or audited.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "admin_api_impl.hpp"
#include "admin_repository.hpp"
#include "scrm/common/log.hpp"
#include "scrm/gateway/admin_requests.hpp"
#include "scrm/gateway/audit_log.hpp"
#include "scrm/gateway/password.hpp"
#include "scrm/gateway/wechat_clients.hpp"
#include "scrm/storage/mysql.hpp"

namespace scrm::gateway {

namespace asio = boost::asio;
using asio::awaitable;
using storage::mysql_session;

http_response ok_json(std::string body, unsigned status) {
    http_response r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

http_response answer(const change_result& r, unsigned ok_status) {
    if (r.refused) return json_error(r.refused->first, r.refused->second);
    return ok_json(r.body, ok_status);
}

change_result refuse_change(unsigned status, std::string text) {
    change_result r;
    r.refused = std::make_pair(status, std::move(text));
    return r;
}

change_result answered(std::string body) {
    change_result out;
    out.body = std::move(body);
    return out;
}

result<change_result> audited_commit(mysql_session& db, const audit_entry& e, std::string body) {
    if (auto r = append_audit(db, e); !r) return r.error();
    if (auto c = db.commit(); !c) return c.error();
    return answered(std::move(body));
}

std::string bool_json(bool b) {
    return b ? "true" : "false";
}

void change(std::string& out, const char* member, const std::string& before,
            const std::string& after) {
    if (before == after) return;
    if (!out.empty()) out += ',';
    out += "\"" + std::string(member) + "\":{\"before\":" + before + ",\"after\":" + after + "}";
}

namespace {

std::string id_json(const std::optional<std::uint64_t>& id) {
    return id ? std::to_string(*id) : "null";
}

std::string listing_json(const agent_listing& a) {
    return "{\"id\":" + std::to_string(a.id) + ",\"name\":" + json_quote(a.name) +
           ",\"role\":" + json_quote(a.role) + ",\"store_id\":" + id_json(a.store) +
           ",\"can_receive\":" + bool_json(a.can_receive) + ",\"active\":" + bool_json(a.active) +
           "}";
}

awaitable<std::optional<std::string>> hash_task(std::string password) {
    co_return hash_password(password);
}

// A stored password form for `password`, computed on the hash pool (about 50 ms of CPU).
awaitable<std::optional<std::string>> hashed(const admin_ptr& self, std::string password) {
    auto task = hash_task(std::move(password));
    co_return co_await asio::co_spawn(self->agents->hash_pool, std::move(task),
                                      asio::use_awaitable);
}

const char* const no_store = "门店不存在（store_id 须为本诊所的门店编号）";

// ---- GET|POST /api/admin/agents ------------------------------------------------------------

awaitable<http_response> list_agents(admin_ptr self, http_request req) {
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    const std::uint64_t clinic = auth.agent->row.clinic;
    auto read = [clinic](mysql_session& db) { return clinic_agents(db, clinic); };
    auto rows = co_await self->mysql.run(read);
    if (!rows) co_return unavailable("admin.agents_unavailable", rows.error());
    std::string body = "{\"agents\":[";
    for (std::size_t i = 0; i < rows->size(); ++i) {
        body += (i ? "," : "") + listing_json((*rows)[i]);
    }
    co_return ok_json(body + "]}");
}

awaitable<http_response> create_agent(admin_ptr self, http_request req) {
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    auto parsed = parse_agent_create(req.body);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const agent_create a = std::move(*parsed.value);
    auto hash = co_await hashed(self, a.password);
    if (!hash) {
        log::error("admin.password_hash_failed", {});
        co_return json_error(503, "服务暂时不可用，请稍后重试");
    }
    const std::uint64_t clinic = auth.agent->row.clinic;
    const std::uint64_t admin = auth.agent->row.id;
    const std::string stored = std::move(*hash);
    auto work = [clinic, admin, &a, &stored](mysql_session& db) -> result<change_result> {
        if (auto b = begin_clinic_change(db, clinic); !b) return b.error();
        rollback_guard undo{db};
        if (a.store) {
            auto has = clinic_has_store(db, clinic, *a.store);
            if (!has) return has.error();
            if (!*has) return refuse_change(422, no_store);
        }
        auto id = insert_agent(db, clinic, a, stored);
        if (!id) return id.error();
        if (!*id) return refuse_change(409, "本诊所已有同名的客服");
        agent_listing made{**id, a.name, a.role, a.store, a.can_receive, true};
        audit_entry e{clinic,
                      admin,
                      "agent",
                      "agent.create",
                      "agent:" + std::to_string(**id),
                      "{\"name\":" + json_quote(a.name) + ",\"role\":" + json_quote(a.role) +
                          ",\"store_id\":" + id_json(a.store) +
                          ",\"can_receive\":" + bool_json(a.can_receive) + "}"};
        return audited_commit(db, e, "{\"agent\":" + listing_json(made) + "}");
    };
    auto done = co_await self->mysql.run(work);
    if (!done) co_return unavailable("admin.agent_create_unavailable", done.error());
    if (!done->refused) log::info("admin.agent_created", {{"clinic", clinic}, {"agent", admin}});
    co_return answer(*done, 201);
}

// ---- PUT /api/admin/agents/{id} ------------------------------------------------------------

awaitable<http_response> update_agent_handler(admin_ptr self, http_request req) {
    const auto id = path_id(req.path, "/api/admin/agents/", "");
    if (!id) co_return json_error(404, "not found");
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    auto parsed = parse_agent_update(req.body);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const agent_update u = std::move(*parsed.value);
    const std::uint64_t clinic = auth.agent->row.clinic;
    const std::uint64_t admin = auth.agent->row.id;
    if (*id == admin && u.role && *u.role != "admin") {
        co_return json_error(400, "不能取消自己的管理员角色");
    }
    const std::uint64_t agent = *id;
    auto work = [clinic, admin, agent, &u](mysql_session& db) -> result<change_result> {
        if (auto b = begin_clinic_change(db, clinic); !b) return b.error();
        rollback_guard undo{db};
        auto rows = clinic_agents(db, clinic, agent, true);
        if (!rows) return rows.error();
        if (rows->empty()) return refuse_change(404, "客服不存在");
        const agent_listing before = rows->front();
        agent_listing after = before;
        if (u.role) after.role = *u.role;
        if (u.store) after.store = *u.store;
        if (u.can_receive) after.can_receive = *u.can_receive;
        if (after.store && after.store != before.store) {
            auto has = clinic_has_store(db, clinic, *after.store);
            if (!has) return has.error();
            if (!*has) return refuse_change(422, no_store);
        }
        std::string changes;
        change(changes, "role", json_quote(before.role), json_quote(after.role));
        change(changes, "store_id", id_json(before.store), id_json(after.store));
        change(changes, "can_receive", bool_json(before.can_receive), bool_json(after.can_receive));
        changes = "{" + changes + "}";
        std::string body = "{\"agent\":" + listing_json(after) + ",\"changed\":" + changes + "}";
        if (changes == "{}") return answered(std::move(body));
        if (auto w = update_agent(db, clinic, after); !w) return w.error();
        audit_entry e{clinic, admin, "agent", "agent.update", "agent:" + std::to_string(agent),
                      changes};
        return audited_commit(db, e, std::move(body));
    };
    auto done = co_await self->mysql.run(work);
    if (!done) co_return unavailable("admin.agent_update_unavailable", done.error());
    if (!done->refused) {
        log::info("admin.agent_updated", {{"clinic", clinic}, {"agent", admin}, {"target", agent}});
    }
    co_return answer(*done);
}

}  // namespace

// ---- POST /api/admin/agents/{id}/password --------------------------------------------------

awaitable<http_response> reset_password(admin_ptr self, http_request req, std::uint64_t agent) {
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    auto parsed = parse_password_reset(req.body);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    auto hash = co_await hashed(self, *parsed.value);
    if (!hash) {
        log::error("admin.password_hash_failed", {});
        co_return json_error(503, "服务暂时不可用，请稍后重试");
    }
    const std::uint64_t clinic = auth.agent->row.clinic;
    const std::uint64_t admin = auth.agent->row.id;
    const std::string stored = std::move(*hash);
    auto work = [clinic, admin, agent, &stored](mysql_session& db) -> result<change_result> {
        if (auto b = begin_clinic_change(db, clinic); !b) return b.error();
        rollback_guard undo{db};
        auto rows = clinic_agents(db, clinic, agent, true);
        if (!rows) return rows.error();
        if (rows->empty()) return refuse_change(404, "客服不存在");
        if (auto w = set_agent_password(db, clinic, agent, stored); !w) return w.error();
        // The detail says that it happened, never what the password is.
        audit_entry e{clinic, admin, "agent", "agent.password", "agent:" + std::to_string(agent),
                      ""};
        return audited_commit(db, e,
                              "{\"agent\":" + agent_ref_json(agent, rows->front().name) +
                                  ",\"password_reset\":true}");
    };
    auto done = co_await self->mysql.run(work);
    if (!done) co_return unavailable("admin.password_unavailable", done.error());
    if (!done->refused) {
        // The agent's sessions end with the old password (its consoles are signed out).
        auto ended = co_await self->agents->end_sessions(agent, "");
        if (!ended) {
            log::warn("admin.sessions_not_ended", {{"target", agent}, {"reason", ended.error().message()}});
        }
        log::info("admin.password_reset", {{"clinic", clinic},
                                           {"agent", admin},
                                           {"target", agent},
                                           {"sessions_ended", static_cast<std::int64_t>(ended ? *ended : 0)}});
    }
    co_return answer(*done);
}

namespace {

// ---- stores --------------------------------------------------------------------------------

// The printable image of a permanent QR code: WeChat's showqrcode with the ticket
// percent-encoded (tickets hold '+', '/' and '=').
std::string qr_image_url(std::string_view ticket) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out = "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=";
    for (const char ch : ticket) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            out += ch;
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

std::string qr_json(const store_qr& q) {
    return "{\"account_id\":" + std::to_string(q.account_id) + ",\"appid\":" + json_quote(q.appid) +
           ",\"scene\":" + json_quote(q.scene) + ",\"ticket\":" + json_quote(q.ticket) +
           ",\"url\":" + json_quote(q.url) +
           ",\"image_url\":" + json_quote(qr_image_url(q.ticket)) + "}";
}

std::string store_json(const store_listing& s) {
    std::string codes = "[";
    for (std::size_t i = 0; i < s.qr_codes.size(); ++i) {
        codes += (i ? "," : "") + qr_json(s.qr_codes[i]);
    }
    return "{\"id\":" + std::to_string(s.id) + ",\"name\":" + json_quote(s.name) +
           ",\"active_agents\":" + std::to_string(s.active_agents) + ",\"qr_codes\":" + codes +
           "]}";
}

std::string store_scene(std::uint64_t store) {
    return "store_" + std::to_string(store);
}

awaitable<http_response> list_stores(admin_ptr self, http_request req) {
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    const std::uint64_t clinic = auth.agent->row.clinic;
    auto read = [clinic](mysql_session& db) { return clinic_stores(db, clinic); };
    auto rows = co_await self->mysql.run(read);
    if (!rows) co_return unavailable("admin.stores_unavailable", rows.error());
    std::string body = "{\"stores\":[";
    for (std::size_t i = 0; i < rows->size(); ++i) body += (i ? "," : "") + store_json((*rows)[i]);
    co_return ok_json(body + "]}");
}

awaitable<http_response> create_store(admin_ptr self, http_request req) {
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    auto parsed = parse_store_name(req.body);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const std::uint64_t clinic = auth.agent->row.clinic;
    const std::uint64_t admin = auth.agent->row.id;
    const std::string name = std::move(*parsed.value);
    auto work = [clinic, admin, &name](mysql_session& db) -> result<change_result> {
        if (auto b = begin_clinic_change(db, clinic); !b) return b.error();
        rollback_guard undo{db};
        auto id = insert_store(db, clinic, name);
        if (!id) return id.error();
        if (!*id) return refuse_change(409, "本诊所已有同名的门店");
        audit_entry e{clinic,
                      admin,
                      "agent",
                      "store.create",
                      "store:" + std::to_string(**id),
                      "{\"name\":" + json_quote(name) + "}"};
        return audited_commit(db, e,
                              "{\"store\":" + store_json(store_listing{**id, name, 0, {}}) + "}");
    };
    auto done = co_await self->mysql.run(work);
    if (!done) co_return unavailable("admin.store_create_unavailable", done.error());
    if (!done->refused) log::info("admin.store_created", {{"clinic", clinic}, {"agent", admin}});
    co_return answer(*done, 201);
}

awaitable<http_response> rename_store_handler(admin_ptr self, http_request req,
                                              std::uint64_t store) {
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    auto parsed = parse_store_name(req.body);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const std::uint64_t clinic = auth.agent->row.clinic;
    const std::uint64_t admin = auth.agent->row.id;
    const std::string name = std::move(*parsed.value);
    auto work = [clinic, admin, store, &name](mysql_session& db) -> result<change_result> {
        if (auto b = begin_clinic_change(db, clinic); !b) return b.error();
        rollback_guard undo{db};
        auto rows = clinic_stores(db, clinic, store, true);
        if (!rows) return rows.error();
        if (rows->empty()) return refuse_change(404, "门店不存在");
        store_listing s = rows->front();
        std::string changes;
        change(changes, "name", json_quote(s.name), json_quote(name));
        changes = "{" + changes + "}";
        s.name = name;
        std::string body = "{\"store\":" + store_json(s) + ",\"changed\":" + changes + "}";
        if (changes == "{}") return answered(std::move(body));
        auto renamed = rename_store(db, clinic, store, name);
        if (!renamed) return renamed.error();
        if (!*renamed) return refuse_change(409, "本诊所已有同名的门店");
        audit_entry e{clinic, admin, "agent", "store.rename", "store:" + std::to_string(store),
                      changes};
        return audited_commit(db, e, std::move(body));
    };
    auto done = co_await self->mysql.run(work);
    if (!done) co_return unavailable("admin.store_rename_unavailable", done.error());
    co_return answer(*done);
}

// What the QR endpoint found before asking WeChat: the refusal, the code already made, or the
// account's appid to make one with.
struct qr_lookup {
    std::optional<std::pair<unsigned, std::string>> refused;
    std::optional<store_qr> existing;
    std::string appid;
};

awaitable<http_response> store_qr_handler(admin_ptr self, http_request req, std::uint64_t store) {
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    auto parsed = parse_qr_request(req.body);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const std::uint64_t clinic = auth.agent->row.clinic;
    const std::uint64_t admin = auth.agent->row.id;
    const std::uint64_t account = *parsed.value;
    auto look = [clinic, store, account](mysql_session& db) -> result<qr_lookup> {
        qr_lookup out;
        auto rows = clinic_stores(db, clinic, store);
        if (!rows) return rows.error();
        if (rows->empty()) {
            out.refused = std::make_pair(404u, std::string("门店不存在"));
            return out;
        }
        auto appid = clinic_account_appid(db, clinic, account);
        if (!appid) return appid.error();
        if (!*appid) {
            out.refused = std::make_pair(404u, std::string("公众号不存在"));
            return out;
        }
        out.appid = **appid;
        for (const auto& q : rows->front().qr_codes) {
            if (q.account_id == account) out.existing = q;
        }
        return out;
    };
    auto found = co_await self->mysql.run(look);
    if (!found) co_return unavailable("admin.store_qr_unavailable", found.error());
    if (found->refused) co_return json_error(found->refused->first, found->refused->second);
    if (found->existing) co_return ok_json("{\"qr\":" + qr_json(*found->existing) + "}");

    // A permanent code: WeChat answers the same scene with the same code, so a retry after a
    // lost answer (or two admins at once) makes no second one.
    auto client = co_await self->clients.find(found->appid);
    if (!client) co_return unavailable("admin.store_qr_client_unavailable", client.error());
    auto made = co_await (*client)->create_permanent_qr(store_scene(store));
    if (!made) {
        const auto& f = made.error();
        log::warn("admin.store_qr_failed", {{"clinic", clinic},
                                            {"account", account},
                                            {"kind", wechat::to_string(f.kind)},
                                            {"errcode", static_cast<std::int64_t>(f.errcode)}});
        co_return json_error(502, "微信生成二维码失败（" + std::string(wechat::to_string(f.kind)) +
                                      (f.errcode ? "，错误码 " + std::to_string(f.errcode) : "") +
                                      "），请稍后重试或检查公众号的接口权限");
    }
    store_qr q{account, found->appid, store_scene(store), made->ticket, made->url};
    auto save = [clinic, admin, store, &q](mysql_session& db) -> result<change_result> {
        if (auto b = begin_clinic_change(db, clinic); !b) return b.error();
        rollback_guard undo{db};
        auto rows = clinic_stores(db, clinic, store, true);
        if (!rows) return rows.error();
        if (rows->empty()) return refuse_change(404, "门店不存在");
        if (auto w = save_store_qr(db, store, q); !w) return w.error();
        audit_entry e{clinic,
                      admin,
                      "agent",
                      "store.qr",
                      "store:" + std::to_string(store),
                      "{\"account_id\":" + std::to_string(q.account_id) +
                          ",\"scene\":" + json_quote(q.scene) + "}"};
        return audited_commit(db, e, "{\"qr\":" + qr_json(q) + "}");
    };
    auto done = co_await self->mysql.run(save);
    if (!done) co_return unavailable("admin.store_qr_unavailable", done.error());
    if (!done->refused) {
        log::info("admin.store_qr_created",
                  {{"clinic", clinic}, {"agent", admin}, {"store", store}, {"account", account}});
    }
    co_return answer(*done);
}

// PUT /api/admin/stores/{id}, POST /api/admin/stores/{id}/qr.
awaitable<http_response> stores_put(admin_ptr self, http_request req) {
    const auto id = path_id(req.path, "/api/admin/stores/", "");
    if (!id) co_return json_error(404, "not found");
    co_return co_await rename_store_handler(std::move(self), std::move(req), *id);
}

awaitable<http_response> stores_post(admin_ptr self, http_request req) {
    const auto id = path_id(req.path, "/api/admin/stores/", "/qr");
    if (!id) co_return json_error(404, "not found");
    co_return co_await store_qr_handler(std::move(self), std::move(req), *id);
}

}  // namespace

void add_people_routes(const admin_ptr& self, router& routes) {
    routes.exact("GET", "/api/admin/agents",
                 [self](http_request r) { return list_agents(self, std::move(r)); });
    routes.exact("POST", "/api/admin/agents",
                 [self](http_request r) { return create_agent(self, std::move(r)); });
    routes.prefix("PUT", "/api/admin/agents/", "/api/admin/agents/{id}",
                  [self](http_request r) { return update_agent_handler(self, std::move(r)); });
    routes.exact("GET", "/api/admin/stores",
                 [self](http_request r) { return list_stores(self, std::move(r)); });
    routes.exact("POST", "/api/admin/stores",
                 [self](http_request r) { return create_store(self, std::move(r)); });
    routes.prefix("PUT", "/api/admin/stores/", "/api/admin/stores/{id}",
                  [self](http_request r) { return stores_put(self, std::move(r)); });
    routes.prefix("POST", "/api/admin/stores/", "/api/admin/stores/{id}/qr",
                  [self](http_request r) { return stores_post(self, std::move(r)); });
}

}  // namespace scrm::gateway

// The admin API's official accounts: list (never a secret), add and update with the rules and the
// writer of scrm-admin account add (account.hpp, account_writer.hpp), and their health (the
// WeChat errors that need a person, from the outbox), and the clinic's retention setting. Secrets
// are write-only: sealed with the master key before they reach MySQL, never answered, logged or
// audited — the audit names which fields changed. The gateway's account registry picks a change up
// within its cache bound (5 s).
#include "admin_api_impl.hpp"
#include "admin_repository.hpp"
#include "scrm/common/log.hpp"
#include "scrm/gateway/account_writer.hpp"
#include "scrm/gateway/admin_requests.hpp"
#include "scrm/storage/mysql.hpp"

namespace scrm::gateway {

namespace asio = boost::asio;
using asio::awaitable;
using storage::mysql_session;

namespace {

std::string account_json(const account_listing& a) {
    return "{\"id\":" + std::to_string(a.id) + ",\"appid\":" + json_quote(a.appid) +
           ",\"original_id\":" + json_quote(a.original_id) +
           ",\"safe_mode_only\":" + bool_json(a.safe_mode_only) +
           ",\"previous_aes_key\":" + bool_json(a.previous_aes_key) +
           ",\"updated_at\":" + json_quote(iso_utc(a.updated_at)) + "}";
}

// Every rule the account as it would be stored breaks, in Chinese, in one sentence.
std::optional<std::string> problems_of(const account_input& in) {
    const auto problems = account_problems(in);
    if (problems.empty()) return std::nullopt;
    std::string text;
    for (const auto& p : problems) text += (text.empty() ? "" : "；") + p.rule_zh;
    return text;
}

// The fields a body gives, for the audit (names only, never values).
std::string fields_json(const account_body& b) {
    std::string out;
    const std::pair<const char*, bool> given[] = {
        {"original_id", b.original_id.has_value()},
        {"token", b.token.has_value()},
        {"aes_key", b.aes_key.has_value()},
        {"aes_key_previous", b.aes_key_previous.has_value()},
        {"secret", b.secret.has_value()},
        {"safe_mode_only", b.safe_mode_only.has_value()}};
    for (const auto& [name, has] : given) {
        if (has) out += std::string(out.empty() ? "" : ",") + "\"" + name + "\"";
    }
    return "[" + out + "]";
}

// Writes `in` for the clinic and audits it (action, the fields given); answers the account.
result<change_result> save(mysql_session& db, const secret_box& box, std::uint64_t clinic,
                           std::uint64_t admin, const account_input& in, const account_body& b,
                           const char* action) {
    auto written = write_account(db, box, clinic, in);
    if (!written && written.error() == errc::conflict) {
        return refuse_change(409, "该公众号（appid）刚被登记，请刷新后重试");
    }
    if (!written) return written.error();
    if (written->result == account_written::outcome::other_clinic) {
        return refuse_change(409, "该公众号（appid）已登记在其他诊所");
    }
    auto rows = clinic_accounts(db, clinic, written->id);
    if (!rows) return rows.error();
    if (rows->empty()) return make_error_code(errc::not_found);
    audit_entry e{clinic,
                  admin,
                  "agent",
                  action,
                  "account:" + std::to_string(written->id),
                  "{\"appid\":" + json_quote(in.appid) + ",\"fields\":" + fields_json(b) + "}"};
    return audited_commit(db, e, "{\"account\":" + account_json(rows->front()) + "}");
}

http_response no_master_key() {
    log::error("admin.accounts_no_master_key", {});
    return json_error(503, "服务暂时不可用，请稍后再试");
}

awaitable<http_response> list_accounts(admin_ptr self, http_request req) {
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    const std::uint64_t clinic = auth.agent->row.clinic;
    auto read = [clinic](mysql_session& db) { return clinic_accounts(db, clinic); };
    auto rows = co_await self->mysql.run(read);
    if (!rows) co_return unavailable("admin.accounts_unavailable", rows.error());
    std::string body = "{\"accounts\":[";
    for (std::size_t i = 0; i < rows->size(); ++i) {
        body += (i ? "," : "") + account_json((*rows)[i]);
    }
    co_return ok_json(body + "]}");
}

// POST /api/admin/accounts: a new account, or the clinic's account with that appid replaced
// (scrm-admin account add's "idempotent add").
awaitable<http_response> add_account(admin_ptr self, http_request req) {
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    auto parsed = parse_account_body(req.body, false);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const account_body b = std::move(*parsed.value);
    const std::uint64_t clinic = auth.agent->row.clinic;
    const std::uint64_t admin = auth.agent->row.id;
    account_input in;
    in.clinic = std::to_string(clinic);  // the admin's clinic, by id
    in.appid = b.appid.value_or("");
    in.original_id = b.original_id.value_or("");
    in.token = b.token.value_or("");
    in.aes_key = b.aes_key.value_or("");
    in.aes_key_previous = b.aes_key_previous;
    in.secret = b.secret.value_or("");
    in.safe_mode_only = b.safe_mode_only.value_or(false);
    if (auto p = problems_of(in)) co_return json_error(400, *p);
    if (!self->box) co_return no_master_key();
    const secret_box& box = *self->box;
    auto work = [clinic, admin, &in, &b, &box](mysql_session& db) -> result<change_result> {
        if (auto s = begin_clinic_change(db, clinic); !s) return s.error();
        rollback_guard undo{db};
        return save(db, box, clinic, admin, in, b, "account.add");
    };
    auto done = co_await self->mysql.run(work);
    if (!done) co_return unavailable("admin.account_unavailable", done.error());
    if (!done->refused) log::info("admin.account_saved", {{"clinic", clinic}, {"agent", admin}});
    co_return answer(*done);
}

// PUT /api/admin/accounts/{id}: the stored account with the fields given replaced.
awaitable<http_response> update_account(admin_ptr self, http_request req) {
    const auto id = path_id(req.path, "/api/admin/accounts/", "");
    if (!id) co_return json_error(404, "not found");
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    auto parsed = parse_account_body(req.body, true);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const account_body b = std::move(*parsed.value);
    if (!self->box) co_return no_master_key();
    const secret_box& box = *self->box;
    const std::uint64_t clinic = auth.agent->row.clinic;
    const std::uint64_t admin = auth.agent->row.id;
    const std::uint64_t account = *id;
    auto work = [clinic, admin, account, &b, &box](mysql_session& db) -> result<change_result> {
        if (auto s = begin_clinic_change(db, clinic); !s) return s.error();
        rollback_guard undo{db};
        auto base = read_account(db, box, clinic, account);
        if (!base) return base.error();
        if (!*base) return refuse_change(404, "公众号不存在");
        account_input in = std::move(**base);
        in.clinic = std::to_string(clinic);
        if (b.original_id) in.original_id = *b.original_id;
        if (b.token) in.token = *b.token;
        if (b.aes_key && *b.aes_key != in.aes_key) {
            in.aes_key_previous = in.aes_key;  // a rotation: the replaced key still opens
            in.aes_key = *b.aes_key;
        }
        if (b.secret) in.secret = *b.secret;
        if (b.safe_mode_only) in.safe_mode_only = *b.safe_mode_only;
        if (auto p = problems_of(in)) return refuse_change(400, *p);
        return save(db, box, clinic, admin, in, b, "account.update");
    };
    auto done = co_await self->mysql.run(work);
    if (!done) co_return unavailable("admin.account_unavailable", done.error());
    if (!done->refused) {
        log::info("admin.account_saved",
                  {{"clinic", clinic}, {"agent", admin}, {"account", account}});
    }
    co_return answer(*done);
}

// GET /api/admin/health?days=: every account of the clinic with the errors that need a person.
awaitable<http_response> health_handler(admin_ptr self, http_request req) {
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    auto q = parse_health_query(req.query);
    if (!q.value) co_return json_error(400, q.problem);
    const std::uint64_t clinic = auth.agent->row.clinic;
    const std::uint32_t days = *q.value;
    struct health {
        std::vector<account_listing> accounts;
        std::vector<health_row> rows;
    };
    auto read = [clinic, days](mysql_session& db) -> result<health> {
        auto accounts = clinic_accounts(db, clinic);
        if (!accounts) return accounts.error();
        auto rows = account_health(db, clinic, days);
        if (!rows) return rows.error();
        return health{std::move(*accounts), std::move(*rows)};
    };
    auto found = co_await self->mysql.run(read);
    if (!found) co_return unavailable("admin.health_unavailable", found.error());
    std::string body = "{\"days\":" + std::to_string(days) + ",\"accounts\":[";
    for (std::size_t i = 0; i < found->accounts.size(); ++i) {
        const account_listing& a = found->accounts[i];
        std::string problems;
        for (const health_row& h : found->rows) {
            const person_needed* p = person_needed_error(h.errcode);
            if (h.account_id != a.id || !p) continue;
            problems +=
                std::string(problems.empty() ? "" : ",") +
                "{\"errcode\":" + std::to_string(h.errcode) + ",\"kind\":" + json_quote(p->kind) +
                ",\"advice\":" + json_quote(p->advice) + ",\"count\":" + std::to_string(h.count) +
                ",\"last_at\":" + json_quote(iso_utc(h.last_at)) +
                ",\"last_error\":" + json_quote(h.last_error) + "}";
        }
        body += std::string(i ? "," : "") + "{\"id\":" + std::to_string(a.id) +
                ",\"appid\":" + json_quote(a.appid) + ",\"ok\":" + bool_json(problems.empty()) +
                ",\"problems\":[" + problems + "]}";
    }
    co_return ok_json(body + "]}");
}

// ---- GET|PUT /api/admin/retention ---------------------------------------------------------

std::string days_json(const std::optional<std::uint32_t>& d) {
    return d ? std::to_string(*d) : "null";
}

awaitable<http_response> get_retention(admin_ptr self, http_request req) {
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    const std::uint64_t clinic = auth.agent->row.clinic;
    auto read = [clinic](mysql_session& db) { return clinic_retention(db, clinic); };
    auto days = co_await self->mysql.run(read);
    if (!days) co_return unavailable("admin.retention_unavailable", days.error());
    co_return ok_json("{\"message_retention_days\":" + days_json(*days) + "}");
}

awaitable<http_response> put_retention(admin_ptr self, http_request req) {
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    auto parsed = parse_retention(req.body);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const std::optional<std::uint32_t> days = *parsed.value;
    const std::uint64_t clinic = auth.agent->row.clinic;
    const std::uint64_t admin = auth.agent->row.id;
    auto work = [clinic, admin, days](mysql_session& db) -> result<change_result> {
        if (auto s = begin_clinic_change(db, clinic); !s) return s.error();
        rollback_guard undo{db};
        auto before = clinic_retention(db, clinic, true);
        if (!before) return before.error();
        std::string changed = "{}";
        if (*before != days) {
            changed = "{\"message_retention_days\":{\"before\":" + days_json(*before) +
                      ",\"after\":" + days_json(days) + "}}";
        }
        std::string body =
            "{\"message_retention_days\":" + days_json(days) + ",\"changed\":" + changed + "}";
        if (changed == "{}") return answered(std::move(body));
        if (auto w = set_clinic_retention(db, clinic, days); !w) return w.error();
        audit_entry e{clinic, admin, "agent", "retention.set", "retention", changed};
        return audited_commit(db, e, std::move(body));
    };
    auto done = co_await self->mysql.run(work);
    if (!done) co_return unavailable("admin.retention_unavailable", done.error());
    log::info("admin.retention_set", {{"clinic", clinic}, {"agent", admin}});
    co_return answer(*done);
}

}  // namespace

void add_account_routes(const admin_ptr& self, router& routes) {
    routes.exact("GET", "/api/admin/accounts",
                 [self](http_request r) { return list_accounts(self, std::move(r)); });
    routes.exact("POST", "/api/admin/accounts",
                 [self](http_request r) { return add_account(self, std::move(r)); });
    routes.prefix("PUT", "/api/admin/accounts/", "/api/admin/accounts/{id}",
                  [self](http_request r) { return update_account(self, std::move(r)); });
    routes.exact("GET", "/api/admin/retention",
                 [self](http_request r) { return get_retention(self, std::move(r)); });
    routes.exact("PUT", "/api/admin/retention",
                 [self](http_request r) { return put_retention(self, std::move(r)); });
    routes.exact("GET", "/api/admin/health",
                 [self](http_request r) { return health_handler(self, std::move(r)); });
}

}  // namespace scrm::gateway

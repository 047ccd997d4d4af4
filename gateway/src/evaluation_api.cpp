// The evaluation endpoints (evaluations.hpp): the patient's page and its API behind the signed
// link, and the admin endpoints on admin_api's authentication (an agent session whose role is
// admin). SQL is evaluation_repository's; rules and texts are evaluation_rules'.
#include "scrm/gateway/evaluations.hpp"

#include "admin_api_impl.hpp"
#include "admin_repository.hpp"
#include "evaluation_export.hpp"
#include "evaluation_repository.hpp"
#include "scrm/common/log.hpp"
#include "scrm/gateway/audit_log.hpp"
#include "scrm/gateway/evaluation_rules.hpp"
#include "scrm/gateway/reply_notices.hpp"
#include "scrm/gateway/text_rules.hpp"
#include "scrm/routing/live.hpp"
#include "scrm/storage/mysql.hpp"
#include "scrm/wechat/outbound.hpp"
#include "scrm/wechat/outbox.hpp"

namespace scrm::gateway {

namespace asio = boost::asio;
using asio::awaitable;
using storage::mysql_session;

// The patient's page (evaluation_page.cpp).
std::string_view evaluation_page_html();

struct evaluation_api::impl {
    std::shared_ptr<admin_api::impl> admin;  // admin_api's authentication and MySQL
    evaluation_tokens tokens;
    std::chrono::seconds link_ttl;
};

namespace {

using eval_ptr = std::shared_ptr<evaluation_api::impl>;

http_response ok_json(std::string body) {
    http_response r;
    r.body = std::move(body);
    return r;
}

std::string opt_json(const std::optional<std::string>& s) {
    return s ? json_quote(*s) : "null";
}

std::string opt_time(const std::optional<std::string>& s) {
    return s ? json_quote(iso_utc(*s)) : "null";
}

std::string strings_json(const std::vector<std::string>& v) {
    std::string out = "[";
    for (std::size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + json_quote(v[i]);
    return out + "]";
}

// {"<attribute>":"good",…} of the ratings given (empty object when none).
std::string ratings_json(const evaluation_row& e) {
    std::string out = "{";
    for (std::size_t i = 0; i < e.attributes.size(); ++i) {
        if (!e.ratings[i]) continue;
        if (out.size() > 1) out += ',';
        out += json_quote(e.attributes[i]) + ":" + json_quote(to_string(*e.ratings[i]));
    }
    return out + "}";
}

const char* state_label(const std::string& state) {
    if (state == "submitted") return "已评价";
    if (state == "replied") return "已回复";
    return "待评价";
}

// ---- the patient's side: /eval/<token> and /api/eval/<token> ------------------------------

http_response page_response() {
    http_response r;
    r.content_type = "text/html; charset=utf-8";
    r.body = std::string(evaluation_page_html());
    // The token is in the URL: never send it on as a Referer.
    r.headers = {{"Referrer-Policy", "no-referrer"},
                 {"X-Content-Type-Options", "nosniff"},
                 {"Cache-Control", "no-store"},
                 {"Content-Security-Policy",
                  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                  "connect-src 'self'; frame-ancestors 'none'"}};
    return r;
}

awaitable<http_response> page_handler(eval_ptr self, http_request req) {
    const std::string_view token =
        std::string_view(req.path).substr(std::string_view("/eval/").size());
    if (!self->tokens.verify(token)) {
        http_response r = page_response();
        r.status = 404;  // the page still loads, and says the link is not valid
        co_return r;
    }
    co_return page_response();
}

constexpr std::string_view api_prefix = "/api/eval/";
constexpr const char* invalid_link = "评价链接无效，请从微信消息中重新打开";
constexpr const char* expired_link = "评价链接已过期，感谢您的关注";

// The evaluation a request's link names, or the answer refusing it (404, 503).
struct linked {
    std::optional<evaluation_row> row;
    http_response refusal;
};

awaitable<linked> by_link(eval_ptr self, std::string path) {
    linked out;
    const auto id = self->tokens.verify(std::string_view(path).substr(api_prefix.size()));
    if (!id) {
        out.refusal = json_error(404, invalid_link);
        co_return out;
    }
    const std::uint64_t eval_id = *id;
    auto read = [eval_id](mysql_session& db) { return evaluation_by_id(db, eval_id); };
    auto row = co_await self->admin->mysql.run(read);
    if (!row) {
        out.refusal = unavailable("evaluation.unavailable", row.error());
    } else if (!*row) {
        out.refusal = json_error(404, invalid_link);
    } else {
        out.row = std::move(**row);
    }
    co_return out;
}

awaitable<http_response> public_get(eval_ptr self, http_request req) {
    auto found = co_await by_link(self, req.path);
    if (!found.row) co_return found.refusal;
    const evaluation_row& e = *found.row;
    if (e.state == "awaiting" && e.expired) co_return json_error(410, expired_link);
    co_return ok_json(
        "{\"clinic\":" + json_quote(e.clinic_name) + ",\"state\":" + json_quote(e.state) +
        ",\"attributes\":" + strings_json(e.attributes) +
        ",\"expires_at\":" + json_quote(iso_utc(e.expires_at)) + ",\"ratings\":" + ratings_json(e) +
        ",\"comment\":" + opt_json(e.comment) + ",\"reply\":" + opt_json(e.reply) + "}");
}

awaitable<http_response> public_post(eval_ptr self, http_request req) {
    auto row = co_await by_link(self, req.path);
    if (!row.row) co_return row.refusal;
    const std::uint64_t eval_id = row.row->id;
    if (row.row->state != "awaiting") co_return json_error(409, "您已提交过本次评价，不能重复提交");
    if (row.row->expired) co_return json_error(410, expired_link);
    const std::vector<std::string> asked = row.row->attributes;
    auto parsed = parse_submission(req.body, asked);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const evaluation_submission sub = std::move(*parsed.value);
    auto save = [eval_id, &asked, &sub](mysql_session& db) {
        return submit_evaluation(db, eval_id, asked, sub);
    };
    auto done = co_await self->admin->mysql.run(save);
    if (!done) co_return unavailable("evaluation.unavailable", done.error());
    switch (*done) {
        case submit_outcome::not_found: co_return json_error(404, invalid_link);
        case submit_outcome::already_submitted:
            co_return json_error(409, "您已提交过本次评价，不能重复提交");
        case submit_outcome::expired: co_return json_error(410, expired_link);
        case submit_outcome::submitted: break;
    }
    log::info("evaluation.submitted", {{"clinic", row.row->clinic}, {"evaluation", eval_id}});
    co_return ok_json("{\"state\":\"submitted\",\"rating\":" +
                      json_quote(to_string(overall_rating(sub.ratings))) + "}");
}

// ---- admin: attributes --------------------------------------------------------------------

std::string attributes_json(const std::vector<std::string>& custom) {
    return "{\"default\":" + strings_json(default_evaluation_attributes()) +
           ",\"custom\":" + strings_json(custom) +
           ",\"max_custom\":" + std::to_string(max_custom_attributes) +
           ",\"max_length\":" + std::to_string(max_attribute_chars) + "}";
}

awaitable<http_response> get_attributes(eval_ptr self, http_request req) {
    auto auth = co_await self->admin->admin(req);
    if (!auth.agent) co_return auth.refusal;
    const std::uint64_t clinic = auth.agent->row.clinic;
    auto read = [clinic](mysql_session& db) { return custom_attributes(db, clinic); };
    auto names = co_await self->admin->mysql.run(read);
    if (!names) co_return unavailable("evaluation.admin_unavailable", names.error());
    co_return ok_json(attributes_json(*names));
}

awaitable<http_response> put_attributes(eval_ptr self, http_request req) {
    auto auth = co_await self->admin->admin(req);
    if (!auth.agent) co_return auth.refusal;
    auto parsed = parse_attribute_update(req.body);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const std::uint64_t clinic = auth.agent->row.clinic;
    const std::uint64_t admin = auth.agent->row.id;
    const std::vector<std::string> after = std::move(*parsed.value);
    struct saved {
        bool changed = false;
    };
    auto save = [clinic, admin, &after](mysql_session& db) -> result<saved> {
        if (auto b = begin_clinic_change(db, clinic); !b) return b.error();
        rollback_guard undo{db};
        auto before = custom_attributes(db, clinic);
        if (!before) return before.error();
        if (*before == after) return saved{false};
        if (auto w = write_custom_attributes(db, clinic, after); !w) return w.error();
        audit_entry e{
            clinic,
            admin,
            "agent",
            "evaluation.attributes",
            "evaluation-attributes",
            "{\"before\":" + strings_json(*before) + ",\"after\":" + strings_json(after) + "}"};
        if (auto r = append_audit(db, e); !r) return r.error();
        if (auto c = db.commit(); !c) return c.error();
        return saved{true};
    };
    auto changed = co_await self->admin->mysql.run(save);
    if (!changed) co_return unavailable("evaluation.admin_unavailable", changed.error());
    log::info("evaluation.attributes_set", {{"clinic", clinic}, {"agent", admin}});
    std::string body = attributes_json(after);
    body.pop_back();
    co_return ok_json(body + ",\"changed\":" + (changed->changed ? "true" : "false") + "}");
}

// ---- admin: list, stats, exports ----------------------------------------------------------

std::string admin_row_json(const evaluation_row& e) {
    return "{\"id\":" + std::to_string(e.id) + ",\"state\":" + json_quote(e.state) +
           ",\"rating\":" + opt_json(e.overall) + ",\"patient\":" + opt_json(e.patient_name) +
           ",\"account_id\":" + std::to_string(e.account) + ",\"openid\":" + json_quote(e.openid) +
           ",\"visit_ref\":" + json_quote(e.visit_ref) +
           ",\"attributes\":" + strings_json(e.attributes) + ",\"ratings\":" + ratings_json(e) +
           ",\"comment\":" + opt_json(e.comment) + ",\"reply\":" + opt_json(e.reply) +
           ",\"reply_delivery\":" + opt_json(e.reply_delivery) +
           ",\"created_at\":" + json_quote(iso_utc(e.created_at)) +
           ",\"expires_at\":" + json_quote(iso_utc(e.expires_at)) +
           ",\"submitted_at\":" + opt_time(e.submitted_at) +
           ",\"replied_at\":" + opt_time(e.replied_at) + "}";
}

awaitable<http_response> list_handler(eval_ptr self, http_request req) {
    auto auth = co_await self->admin->admin(req);
    if (!auth.agent) co_return auth.refusal;
    auto q = parse_evaluation_query(req.query);
    if (!q.value) co_return json_error(400, q.problem);
    const std::uint64_t clinic = auth.agent->row.clinic;
    const evaluation_query query = *q.value;
    auto read = [clinic, &query](mysql_session& db) {
        return list_evaluations(db, clinic, query, false);
    };
    auto page = co_await self->admin->mysql.run(read);
    if (!page) co_return unavailable("evaluation.admin_unavailable", page.error());
    std::string body = "{\"evaluations\":[";
    for (std::size_t i = 0; i < page->rows.size(); ++i) {
        body += (i ? "," : "") + admin_row_json(page->rows[i]);
    }
    body += "],\"total\":" + std::to_string(page->total) +
            ",\"page\":" + std::to_string(query.page) +
            ",\"page_size\":" + std::to_string(query.page_size) + "}";
    co_return ok_json(std::move(body));
}

awaitable<http_response> stats_handler(eval_ptr self, http_request req) {
    auto auth = co_await self->admin->admin(req);
    if (!auth.agent) co_return auth.refusal;
    const std::uint64_t clinic = auth.agent->row.clinic;
    auto read = [clinic](mysql_session& db) { return evaluation_stats(db, clinic); };
    auto stats = co_await self->admin->mysql.run(read);
    if (!stats) co_return unavailable("evaluation.admin_unavailable", stats.error());
    std::string body = "{\"attributes\":[";
    for (std::size_t i = 0; i < stats->size(); ++i) {
        const attribute_stats& s = (*stats)[i];
        body += std::string(i ? "," : "") + "{\"name\":" + json_quote(s.name) +
                ",\"good\":" + std::to_string(s.good) +
                ",\"average\":" + std::to_string(s.average) +
                ",\"poor\":" + std::to_string(s.poor) + "}";
    }
    co_return ok_json(body + "]}");
}

constexpr std::size_t export_limit = 10000;

// The export's table: a header row, then one row per evaluation, one column per attribute
// asked of any of them (the defaults first).
std::vector<std::vector<std::string>> export_table(const std::vector<evaluation_row>& rows) {
    std::vector<std::string> attrs = default_evaluation_attributes();
    for (auto it = rows.rbegin(); it != rows.rend(); ++it) {
        for (const auto& a : it->attributes) {
            if (std::find(attrs.begin(), attrs.end(), a) == attrs.end()) attrs.push_back(a);
        }
    }
    std::vector<std::vector<std::string>> out;
    std::vector<std::string> head{"编号",   "状态",     "总体评价",        "患者",
                                  "OpenID", "就诊编号", "邀请时间（UTC）", "提交时间（UTC）"};
    head.insert(head.end(), attrs.begin(), attrs.end());
    for (const char* h : {"留言", "回复", "回复时间（UTC）"}) head.emplace_back(h);
    out.push_back(std::move(head));
    for (const auto& e : rows) {
        std::vector<std::string> r{std::to_string(e.id),
                                   state_label(e.state),
                                   e.overall ? rating_label(*parse_rating(*e.overall)) : "",
                                   e.patient_name.value_or(""),
                                   e.openid,
                                   e.visit_ref,
                                   e.created_at.substr(0, 19),
                                   e.submitted_at.value_or("").substr(0, 19)};
        for (const auto& a : attrs) {
            const auto at = std::find(e.attributes.begin(), e.attributes.end(), a);
            const auto i = static_cast<std::size_t>(at - e.attributes.begin());
            r.emplace_back(at != e.attributes.end() && e.ratings[i] ? rating_label(*e.ratings[i])
                                                                    : "");
        }
        r.push_back(e.comment.value_or(""));
        r.push_back(e.reply.value_or(""));
        r.push_back(e.replied_at.value_or("").substr(0, 19));
        out.push_back(std::move(r));
    }
    return out;
}

awaitable<http_response> export_handler(eval_ptr self, http_request req, bool xlsx) {
    auto auth = co_await self->admin->admin(req);
    if (!auth.agent) co_return auth.refusal;
    auto q = parse_evaluation_query(req.query);
    if (!q.value) co_return json_error(400, q.problem);
    const std::uint64_t clinic = auth.agent->row.clinic;
    const evaluation_query query = *q.value;
    // The file is built on the pool worker too: libxlsxwriter blocks on its temporary file.
    auto build = [clinic, &query, xlsx](mysql_session& db) -> result<std::string> {
        auto page = list_evaluations(db, clinic, query, true, export_limit);
        if (!page) return page.error();
        auto table = export_table(page->rows);
        if (xlsx) return xlsx_document(table, "服务评价");
        return csv_document(table);
    };
    auto file = co_await self->admin->mysql.run(build);
    if (!file) co_return unavailable("evaluation.export_unavailable", file.error());
    log::info(
        "evaluation.exported",
        {{"clinic", clinic}, {"agent", auth.agent->row.id}, {"format", xlsx ? "xlsx" : "csv"}});
    http_response r;
    r.content_type = xlsx ? "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                          : "text/csv; charset=utf-8";
    r.body = std::move(*file);
    r.headers = {{"Content-Disposition", std::string("attachment; filename=\"evaluations.") +
                                             (xlsx ? "xlsx" : "csv") + "\""},
                 {"Cache-Control", "no-store"}};
    co_return r;
}

// ---- admin: reply -------------------------------------------------------------------------

awaitable<http_response> reply_handler(eval_ptr self, http_request req) {
    constexpr std::string_view prefix = "/api/admin/evaluations/";
    constexpr std::string_view suffix = "/reply";
    const std::string_view path = req.path;
    const auto id =
        path.size() > prefix.size() + suffix.size() &&
                path.substr(path.size() - suffix.size()) == suffix
            ? parse_id(path.substr(prefix.size(), path.size() - prefix.size() - suffix.size()))
            : std::nullopt;
    if (!id) co_return json_error(404, "not found");
    auto auth = co_await self->admin->admin(req);
    if (!auth.agent) co_return auth.refusal;
    auto text = parse_reply(req.body);
    if (!text.value) co_return json_error(400, text.problem);
    const std::uint64_t clinic = auth.agent->row.clinic;
    const std::uint64_t admin = auth.agent->row.id;
    const std::uint64_t eval_id = *id;
    const std::string reply = std::move(*text.value);
    auto claim = [clinic, eval_id, admin, &reply](mysql_session& db) {
        return claim_reply(db, clinic, eval_id, admin, reply);
    };
    auto claimed = co_await self->admin->mysql.run(claim);
    if (!claimed) co_return unavailable("evaluation.admin_unavailable", claimed.error());
    switch (claimed->status) {
        case reply_claim_status::not_found: co_return json_error(404, "评价不存在");
        case reply_claim_status::not_submitted:
            co_return json_error(409, "顾客尚未提交评价，暂时不能回复");
        case reply_claim_status::already_replied:
            co_return json_error(409, "该评价已回复过，不能重复回复");
        case reply_claim_status::claimed: break;
    }
    // Through WeChat when the fan's customer-service window has a slot; otherwise the fan gets
    // the "reply waiting" notice whose link (/eval/<token>) shows the reply.
    auto& agents = *self->admin->agents;
    std::string delivery = "notice_needed";
    std::optional<std::uint64_t> outbox_id;
    auto spent = co_await agents.live.spend_window(clinic, claimed->openid,
                                                   routing::sender_kind::agent, agents.now());
    if (!spent) {
        log::warn("evaluation.reply_window_unavailable", {{"reason", spent.error().message()}});
    } else if (spent->status == routing::spend_status::spent) {
        wechat::outbound_message m;
        m.account_id = claimed->account;
        m.openid = claimed->openid;
        m.kind = "text";
        m.body = wechat::custom_text_body(claimed->openid, reply);
        m.origin = "evaluation:" + std::to_string(eval_id);
        auto queued = co_await agents.outbox.enqueue(std::move(m));
        if (queued) {
            delivery = "sent";
            outbox_id = *queued;
        } else {
            log::warn("evaluation.reply_not_queued", {{"reason", queued.error().message()}});
        }
    }
    // No window slot: the "reply waiting" notice, whose link opens this evaluation's page
    // (/eval/<token>), which shows the reply. Without one (no template, no rights) the delivery
    // stays notice_needed: the reply waits on that page for the patient's next visit to it.
    if (delivery == "notice_needed" && agents.opts.notices) {
        reply_notice_request n;
        n.clinic = clinic;
        n.account_id = claimed->account;
        n.openid = claimed->openid;
        n.agent_id = admin;
        n.agent_name = auth.agent->row.name;
        n.link_path = "/eval/" + self->tokens.token_for(eval_id);
        n.origin = "evaluation:" + std::to_string(eval_id);
        auto sent = co_await agents.opts.notices->send(std::move(n));
        if (!sent) {
            log::warn("evaluation.reply_notice_unavailable", {{"reason", sent.error().message()}});
        } else if (sent->delivered()) {
            delivery = sent->status == notice_status::sent ? "notice_sent" : "notice_queued";
            outbox_id = sent->outbox_id;
        } else {
            log::info("evaluation.reply_notice_refused",
                      {{"evaluation", eval_id}, {"notice", to_string(sent->status)}});
        }
    }
    auto record = [eval_id, &delivery, outbox_id](mysql_session& db) {
        return record_reply_delivery(db, eval_id, delivery, outbox_id);
    };
    if (auto r = co_await self->admin->mysql.run(record); !r) {
        log::warn("evaluation.reply_delivery_not_recorded", {{"reason", r.error().message()}});
    }
    log::info(
        "evaluation.replied",
        {{"clinic", clinic}, {"agent", admin}, {"evaluation", eval_id}, {"delivery", delivery}});
    co_return ok_json("{\"id\":" + std::to_string(eval_id) +
                      ",\"state\":\"replied\",\"delivery\":" + json_quote(delivery) +
                      ",\"outbox_id\":" + (outbox_id ? std::to_string(*outbox_id) : "null") + "}");
}

}  // namespace

result<evaluation_invitation> create_evaluation_invitation(storage::mysql_session& db,
                                                           const evaluation_tokens& tokens,
                                                           const evaluation_invite& in,
                                                           std::chrono::seconds ttl) {
    const auto openid_chars = utf8_chars(in.openid);
    if (in.openid.empty() || in.openid.size() > 128 || in.visit_ref.empty() || !openid_chars ||
        !utf8_chars(in.visit_ref) || *utf8_chars(in.visit_ref) > 128) {
        return make_error_code(errc::bad_input);
    }
    auto row = insert_invitation(db, in, ttl);
    if (!row) return row.error();
    evaluation_invitation out;
    out.id = row->id;
    out.token = tokens.token_for(row->id);
    out.path = "/eval/" + out.token;
    out.expires_at = iso_utc(row->expires_at);
    out.created = row->created;
    return out;
}

evaluation_api::evaluation_api(admin_api& admin, evaluation_options opts)
    : impl_(std::make_shared<impl>(
          impl{admin.state(), evaluation_tokens(opts.token_key), opts.link_ttl})) {}

evaluation_api::~evaluation_api() = default;

awaitable<result<evaluation_invitation>> evaluation_api::invite(evaluation_invite in) {
    auto self = impl_;
    auto make = [self, &in](mysql_session& db) {
        return create_evaluation_invitation(db, self->tokens, in, self->link_ttl);
    };
    co_return co_await self->admin->mysql.run(make);
}

templates::link_provider evaluation_api::invitation_links(std::string public_base_url) const {
    while (!public_base_url.empty() && public_base_url.back() == '/') public_base_url.pop_back();
    auto self = impl_;
    return [self, base = std::move(public_base_url)](
               mysql_session& db,
               const templates::link_request& r) -> result<std::optional<std::string>> {
        if (base.empty()) return std::optional<std::string>();
        evaluation_invite in;
        in.clinic = r.clinic;
        in.account_id = r.account_id;
        in.openid = r.openid;
        in.patient_id = r.patient_id;
        const auto visit =
            r.data ? r.data->find("visit_id") : templates::field_values::const_iterator();
        in.visit_ref = r.data && visit != r.data->end() ? visit->second : r.idempotency_key;
        auto made = create_evaluation_invitation(db, self->tokens, in, self->link_ttl);
        if (!made) return made.error();
        return std::optional<std::string>(base + made->path);
    };
}

void evaluation_api::add_routes(router& routes) {
    auto self = impl_;
    routes.prefix("GET", "/eval/", "/eval/{token}",
                  [self](http_request r) { return page_handler(self, std::move(r)); });
    routes.prefix("GET", "/api/eval/", "/api/eval/{token}",
                  [self](http_request r) { return public_get(self, std::move(r)); });
    routes.prefix("POST", "/api/eval/", "/api/eval/{token}",
                  [self](http_request r) { return public_post(self, std::move(r)); });
    routes.exact("GET", "/api/admin/evaluation-attributes",
                 [self](http_request r) { return get_attributes(self, std::move(r)); });
    routes.exact("PUT", "/api/admin/evaluation-attributes",
                 [self](http_request r) { return put_attributes(self, std::move(r)); });
    routes.exact("GET", "/api/admin/evaluations",
                 [self](http_request r) { return list_handler(self, std::move(r)); });
    routes.exact("GET", "/api/admin/evaluations/stats",
                 [self](http_request r) { return stats_handler(self, std::move(r)); });
    routes.exact("GET", "/api/admin/evaluations/export.csv",
                 [self](http_request r) { return export_handler(self, std::move(r), false); });
    routes.exact("GET", "/api/admin/evaluations/export.xlsx",
                 [self](http_request r) { return export_handler(self, std::move(r), true); });
    routes.prefix("POST", "/api/admin/evaluations/", "/api/admin/evaluations/{id}/reply",
                  [self](http_request r) { return reply_handler(self, std::move(r)); });
}

}  // namespace scrm::gateway

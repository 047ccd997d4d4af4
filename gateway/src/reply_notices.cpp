// The "reply waiting" notices and the waiting replies' page (reply_notices.hpp). The SQL of
// waiting_replies (sql/013) lives here with the send: one transaction keeps the reply, queues the
// template message and writes its send log row, so no half of it is ever left.
#include "scrm/gateway/reply_notices.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "scrm/common/log.hpp"
#include "scrm/gateway/admin_requests.hpp"
#include "scrm/gateway/link_tokens.hpp"
#include "scrm/storage/mysql.hpp"
#include "scrm/templates/notifier.hpp"
#include "scrm/wechat/outbound.hpp"
#include "scrm/wechat/outbox.hpp"

namespace scrm::gateway {

namespace asio = boost::asio;
using asio::awaitable;
using storage::mysql_session;
using storage::sql_value;

// The page's HTML (reply_page.cpp).
struct reply_view {
    std::string clinic, agent, text, created_at;
};
std::string reply_page_html(const reply_view& v);
std::string reply_problem_html(std::string_view title, std::string_view text);

struct reply_notices::impl {
    storage::mysql_pool& mysql;
    wechat::outbox& outbox;
    reply_notice_options opts;
    link_signer tokens;
};

const char* to_string(notice_status s) noexcept {
    switch (s) {
        case notice_status::sent: return "sent";
        case notice_status::queued: return "queued";
        case notice_status::not_configured: return "not_configured";
        case notice_status::disabled: return "disabled";
        case notice_status::no_public_url: return "no_public_url";
        case notice_status::no_template_rights: return "no_template_rights";
        case notice_status::failed: return "failed";
    }
    return "?";
}

namespace {

using impl_ptr = std::shared_ptr<reply_notices::impl>;

constexpr std::string_view kind = "reply_waiting";

// WeChat's answers meaning "this account cannot send (these) templates": no API permission
// (48001, an account that is not a certified service account) or template rights (40037,
// 43116) — the health page's kinds unauthorized and template_rights.
bool rights_error(std::optional<int> errcode) {
    if (!errcode) return false;
    const person_needed* p = person_needed_error(*errcode);
    return p && (std::string_view(p->kind) == "unauthorized" ||
                 std::string_view(p->kind) == "template_rights");
}

struct queued_notice {
    reply_notice_outcome out;  // status queued, or why nothing was queued
};

// The whole effect on one session: setting, known rights, the reply, the outbox row, the log.
result<queued_notice> queue_notice(mysql_session& db, const reply_notice_options& opts,
                                   const link_signer& tokens, const reply_notice_request& req) {
    queued_notice q;
    auto setting = templates::load_setting(db, req.clinic, kind);
    if (!setting) return setting.error();
    if (!*setting) {
        q.out.status = notice_status::not_configured;
        return q;
    }
    if (!(*setting)->enabled) {
        q.out.status = notice_status::disabled;
        return q;
    }
    if (opts.public_base_url.empty()) {
        q.out.status = notice_status::no_public_url;
        return q;
    }
    // The account's last template send that WeChat answered: refused for the account's missing
    // permission (48001: not a certified service account), it will be again — until a person
    // fixes the account and a later success shows it. (40037/43116 concern one template: they
    // are found when this notice itself is sent.)
    auto last = db.query(
        "SELECT last_errcode FROM outbox WHERE account_id = ? AND kind = 'template' AND state IN "
        "('sent', 'failed') ORDER BY id DESC LIMIT 1",
        {req.account_id});
    if (!last) return last.error();
    if (!last->rows.empty() && last->rows[0][0]) {
        const int code = static_cast<int>(std::stol(*last->rows[0][0]));
        const person_needed* p = person_needed_error(code);
        if (p && std::string_view(p->kind) == "unauthorized") {
            q.out.status = notice_status::no_template_rights;
            q.out.errcode = code;
            return q;
        }
    }
    auto clinic = db.query(
        "SELECT c.name, DATE_FORMAT(UTC_TIMESTAMP() + INTERVAL COALESCE(r.utc_offset_minutes, "
        "480) MINUTE, '%Y-%m-%d %H:%i') FROM clinics c LEFT JOIN clinic_routing r ON "
        "r.clinic_id = c.id WHERE c.id = ?",
        {req.clinic});
    if (!clinic) return clinic.error();
    if (clinic->rows.empty()) return make_error_code(errc::not_found);

    if (auto b = db.begin(); !b) return b.error();
    auto fail = [&db](const boost::system::error_code& ec) {
        (void)db.rollback();
        return ec;
    };
    std::string client_msg_id;
    if (req.text) {
        auto kept = db.query(
            "INSERT INTO waiting_replies (clinic_id, account_id, openid, agent_id, agent_name, "
            "text, expires_at) VALUES (?, ?, ?, ?, ?, ?, NOW(3) + INTERVAL ? SECOND)",
            {req.clinic, req.account_id, req.openid,
             req.agent_id ? sql_value(*req.agent_id) : sql_value(), req.agent_name, *req.text,
             static_cast<std::int64_t>(opts.link_ttl.count())});
        if (!kept) return fail(kept.error());
        q.out.reply_id = kept->last_insert_id;
        q.out.link = opts.public_base_url + "/reply/" + tokens.token_for(kept->last_insert_id);
        client_msg_id = "scrm_r" + std::to_string(kept->last_insert_id);
    } else {
        q.out.link = opts.public_base_url + req.link_path;
        client_msg_id = "scrm_" + req.origin;
        for (char& ch : client_msg_id) {
            if (ch == ':') ch = '_';
        }
    }
    templates::field_values values;
    values["reply_time"] = clinic->rows[0][1].value_or("");
    values["agent_name"] = req.agent_name;
    values["clinic_name"] = clinic->rows[0][0].value_or("");
    values["patient_name"] = "";
    wechat::template_message msg =
        templates::render(**setting, values, req.openid, std::move(client_msg_id));
    // The link is the gateway's own page, whatever the setting says: a mini program could not
    // show the reply.
    msg.url = q.out.link;
    msg.miniprogram.reset();
    wechat::outbound_message m;
    m.account_id = req.account_id;
    m.openid = req.openid;
    m.kind = "template";
    m.api_path = std::string(wechat::template_send_path);
    m.body = wechat::template_send_body(msg);
    m.origin = req.origin;
    auto outbox_id = wechat::enqueue_on(db, m);
    if (!outbox_id) return fail(outbox_id.error());
    q.out.outbox_id = *outbox_id;
    // The send log (event 0: not an integration event), as the template log page shows it.
    auto logged = db.query(
        "INSERT INTO template_log (clinic_id, event_id, kind, patient_name, account_id, openid, "
        "template_id, state, outbox_id) VALUES (?, 0, ?, '', ?, ?, ?, 'queued', ?)",
        {req.clinic, std::string(kind), req.account_id, req.openid, (*setting)->template_id,
         *outbox_id});
    if (!logged) return fail(logged.error());
    q.out.log_id = logged->last_insert_id;
    if (q.out.reply_id) {
        auto linked =
            db.execute("UPDATE waiting_replies SET outbox_id = ?, template_log_id = ? WHERE id = ?",
                       {*outbox_id, logged->last_insert_id, *q.out.reply_id});
        if (!linked) return fail(linked.error());
    }
    if (auto c = db.commit(); !c) return fail(c.error());
    q.out.status = notice_status::queued;
    return q;
}

// The outbox row's verdict, looked at every verdict_poll up to verdict_wait; nullopt: none yet.
awaitable<std::optional<wechat::outbox_entry>> verdict(impl_ptr self, std::uint64_t outbox_id) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    const auto deadline = std::chrono::steady_clock::now() + self->opts.verdict_wait;
    for (;;) {
        auto row = co_await self->outbox.get(outbox_id);
        if (row && row->state != wechat::outbox_state::queued &&
            row->state != wechat::outbox_state::sending) {
            co_return std::optional<wechat::outbox_entry>(std::move(*row));
        }
        if (std::chrono::steady_clock::now() + self->opts.verdict_poll > deadline) break;
        timer.expires_after(self->opts.verdict_poll);
        co_await timer.async_wait(asio::use_awaitable);
    }
    co_return std::nullopt;
}

// ---- the page: GET /reply/<token>, GET /api/reply/<token> ----------------------------------

struct opened {
    unsigned status = 200;                        // 200, 404 (no such link), 410 (expired), 503
    reply_view view;                              // created_at in the clinic's time
    std::string created_at, read_at, expires_at;  // UTC
};

// The reply a token names, marked read on its first opening.
awaitable<opened> open_reply(impl_ptr self, std::string_view token) {
    opened out;
    const auto id = self->tokens.verify(token);
    if (!id) {
        out.status = 404;
        co_return out;
    }
    const std::uint64_t reply = *id;
    auto read = [reply, &out](mysql_session& db) -> result<void> {
        auto r = db.query(
            "SELECT c.name, w.agent_name, w.text, w.created_at, w.expires_at <= NOW(3), "
            "w.expires_at, DATE_FORMAT(w.created_at + INTERVAL COALESCE(r.utc_offset_minutes, "
            "480) MINUTE, '%Y-%m-%d %H:%i') FROM waiting_replies w JOIN clinics c ON c.id = "
            "w.clinic_id LEFT JOIN clinic_routing r ON r.clinic_id = w.clinic_id WHERE w.id = ?",
            {reply});
        if (!r) return r.error();
        if (r->rows.empty()) {
            out.status = 404;
            return {};
        }
        const auto& row = r->rows[0];
        if (storage::sql_u64(row[4]) != 0) {
            out.status = 410;
            return {};
        }
        out.view = {row[0].value_or(""), row[1].value_or(""), row[2].value_or(""),
                    row[6].value_or("")};
        out.created_at = row[3].value_or("");
        out.expires_at = row[5].value_or("");
        auto mark = db.execute(
            "UPDATE waiting_replies SET read_at = NOW(3) WHERE id = ? AND read_at IS NULL",
            {reply});
        if (!mark) return mark.error();
        auto at = db.query("SELECT read_at FROM waiting_replies WHERE id = ?", {reply});
        if (!at) return at.error();
        if (!at->rows.empty()) out.read_at = at->rows[0][0].value_or("");
        return {};
    };
    if (auto r = co_await self->mysql.run(read); !r) {
        log::warn("reply_page.unavailable", {{"reason", r.error().message()}});
        out.status = 503;
    }
    if (out.status == 200) log::info("reply_page.opened", {{"reply", reply}});
    co_return out;
}

constexpr const char* invalid_link = "链接无效，请从微信消息中重新打开";
constexpr const char* expired_link = "该回复的查看期限已过，如需咨询请直接在公众号中给我们发消息";
constexpr const char* busy = "服务暂时不可用，请稍后再试";

const char* problem_text(unsigned status) {
    return status == 404 ? invalid_link : status == 410 ? expired_link : busy;
}

http_response page(unsigned status, std::string body) {
    http_response r;
    r.status = status;
    r.content_type = "text/html; charset=utf-8";
    r.body = std::move(body);
    // The token is in the URL: never sent on as a Referer; nothing but this page's own inline
    // style is allowed (there is no script at all).
    r.headers = {{"Referrer-Policy", "no-referrer"},
                 {"X-Content-Type-Options", "nosniff"},
                 {"Cache-Control", "no-store"},
                 {"Content-Security-Policy",
                  "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"}};
    return r;
}

std::string iso(std::string sql_time) {
    if (sql_time.empty()) return sql_time;
    if (sql_time.size() > 10 && sql_time[10] == ' ') sql_time[10] = 'T';
    return sql_time + "Z";
}

awaitable<http_response> page_handler(impl_ptr self, http_request req) {
    auto o = co_await open_reply(self, std::string_view(req.path).substr(7));  // "/reply/"
    if (o.status != 200) {
        co_return page(o.status, reply_problem_html(o.status == 410 ? "回复已过期" : "无法打开",
                                                    problem_text(o.status)));
    }
    co_return page(200, reply_page_html(o.view));
}

awaitable<http_response> json_handler(impl_ptr self, http_request req) {
    auto o = co_await open_reply(self, std::string_view(req.path).substr(11));  // "/api/reply/"
    if (o.status != 200) co_return json_error(o.status, problem_text(o.status));
    http_response r;
    r.body = "{\"clinic\":" + json_quote(o.view.clinic) + ",\"agent\":" + json_quote(o.view.agent) +
             ",\"text\":" + json_quote(o.view.text) +
             ",\"created_at\":" + json_quote(iso(o.created_at)) +
             ",\"expires_at\":" + json_quote(iso(o.expires_at)) +
             ",\"read_at\":" + json_quote(iso(o.read_at)) + "}";
    r.headers = {{"Cache-Control", "no-store"}, {"Referrer-Policy", "no-referrer"}};
    co_return r;
}

}  // namespace

reply_notices::reply_notices(storage::mysql_pool& mysql, wechat::outbox& outbox,
                             reply_notice_options opts)
    : impl_(std::make_shared<impl>(
          impl{mysql, outbox, opts, link_signer("waiting_reply", opts.token_key)})) {
    while (!impl_->opts.public_base_url.empty() && impl_->opts.public_base_url.back() == '/') {
        impl_->opts.public_base_url.pop_back();
    }
}

reply_notices::~reply_notices() = default;

awaitable<result<reply_notice_outcome>> reply_notices::send(reply_notice_request req) {
    auto self = impl_;
    auto queue = [self, &req](mysql_session& db) {
        return queue_notice(db, self->opts, self->tokens, req);
    };
    auto q = co_await self->mysql.run(queue);
    if (!q) co_return q.error();
    reply_notice_outcome out = std::move(q->out);
    if (out.status != notice_status::queued) co_return out;
    self->outbox.wake();
    auto v = co_await verdict(self, *out.outbox_id);
    if (!v) co_return out;  // still on its way: the outbox sends it
    if (v->state == wechat::outbox_state::sent) {
        out.status = notice_status::sent;
    } else if (v->state == wechat::outbox_state::failed) {
        out.errcode = v->last_errcode;
        out.reason = v->last_error;
        out.status = rights_error(v->last_errcode) ? notice_status::no_template_rights
                                                   : notice_status::failed;
        // The fan will not hear of the reply: it is not kept (the agent is told instead).
        if (out.reply_id) {
            const std::uint64_t reply = *out.reply_id;
            auto drop = [reply](mysql_session& db) {
                return db.execute("DELETE FROM waiting_replies WHERE id = ?", {reply});
            };
            if (auto d = co_await self->mysql.run(drop); !d) {
                log::warn("reply_notice.not_dropped", {{"reason", d.error().message()}});
            }
            out.reply_id.reset();
        }
    }
    log::info("reply_notice.sent", {{"clinic", req.clinic},
                                    {"account", req.account_id},
                                    {"status", to_string(out.status)},
                                    {"outbox", *out.outbox_id}});
    co_return out;
}

void reply_notices::add_routes(router& routes) {
    auto self = impl_;
    routes.prefix("GET", "/reply/", "/reply/{token}",
                  [self](http_request r) { return page_handler(self, std::move(r)); });
    routes.prefix("GET", "/api/reply/", "/api/reply/{token}",
                  [self](http_request r) { return json_handler(self, std::move(r)); });
}

}  // namespace scrm::gateway

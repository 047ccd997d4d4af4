// POST /api/conversations/{account_id}/{openid}/accept|send|end|transfer: an agent acting on one
// fan of its own clinic (DESIGN.md §5 session locks, exclusive assignment, the customer-service
// window). Atomicity is the live state's (Lua scripts with fencing tokens); MySQL follows.
#include "agent_api_impl.hpp"
#include "conversation_media.hpp"
#include "scrm/common/log.hpp"
#include "scrm/gateway/reply_notices.hpp"
#include "scrm/gateway/routing_stage.hpp"
#include "scrm/storage/redis.hpp"
#include "scrm/wechat/outbound.hpp"
#include "scrm/wechat/outbox.hpp"

namespace scrm::gateway {

namespace asio = boost::asio;
using asio::awaitable;

namespace {

using impl_ptr = std::shared_ptr<agent_api::impl>;

// Everything an action needs about the request, checked.
struct conversation {
    authed_agent agent;
    conversation_path path;
    conversation_row fan;
    std::shared_ptr<const clinic_settings> settings;
    std::uint64_t clinic() const { return agent.row.clinic; }
    std::string me() const { return agent.id_text(); }
};

http_response ok_json(std::string body) {
    http_response r;
    r.body = std::move(body);
    return r;
}

// 409 naming who holds the conversation: {"error":…, "holder":{"id":…,"name":…}} ("holder":null
// when nobody does). `what` is the Chinese sentence, with {name} replaced by the holder's name.
awaitable<http_response> holder_conflict(impl_ptr self, std::uint64_t clinic, std::string holder,
                                         std::string what) {
    std::string name;
    const auto id = parse_id(holder);
    if (id) {
        auto row = co_await self->repo.agent(clinic, *id);
        if (row && *row) name = (*row)->name;
    }
    if (const auto at = what.find("{name}"); at != std::string::npos) {
        what.replace(at, 6, "「" + (name.empty() ? holder : name) + "」");
    }
    http_response r = json_error(409, what);
    r.body.pop_back();  // the closing brace: the holder goes in too
    r.body +=
        id ? ",\"holder\":{\"id\":" + std::to_string(*id) + ",\"name\":" + json_quote(name) + "}}"
           : std::string(",\"holder\":null}");
    co_return r;
}

// Session history after a lock change; a failure is logged (the lock in Redis is what counts).
awaitable<void> record_session(impl_ptr self, const conversation& c, routing::lock_status status) {
    result<void> r;
    if (status == routing::lock_status::acquired) {
        r = co_await self->repo.session_started(c.path.account_id, c.path.openid, c.agent.row.id,
                                                "silence");
    } else if (status == routing::lock_status::taken_over) {
        r = co_await self->repo.session_started(c.path.account_id, c.path.openid, c.agent.row.id,
                                                "offline");
    }
    if (!r) log::warn("conversation.session_not_recorded", {{"reason", r.error().message()}});
}

awaitable<void> record_session_end(impl_ptr self, const conversation& c, std::string reason) {
    auto r = co_await self->repo.session_ended(c.path.account_id, c.path.openid, std::move(reason));
    if (!r) log::warn("conversation.session_not_recorded", {{"reason", r.error().message()}});
}

// Tells the clinic's consoles who holds the fan's lock now (nobody: null), so lists and banners
// follow without a reload.
awaitable<void> announce_lock(impl_ptr self, const conversation& c,
                              std::optional<agent_row> holder) {
    std::string note = "{\"type\":\"lock\",\"account_id\":" + std::to_string(c.path.account_id) +
                       ",\"openid\":" + json_quote(c.path.openid) + ",\"holder\":" +
                       (holder ? "{\"id\":" + std::to_string(holder->id) +
                                     ",\"name\":" + json_quote(holder->name) + "}"
                               : std::string("null")) +
                       "}";
    co_await notify_clinic(self, c.clinic(), std::move(note));
}

// accept: take (or keep) the session lock.
awaitable<http_response> accept(impl_ptr self, conversation c) {
    auto l = co_await self->live.acquire_lock(c.clinic(), c.path.openid, c.me(), self->now(),
                                              c.settings->lock_ttl);
    if (!l) co_return unavailable("conversation.unavailable", l.error());
    if (l->status == routing::lock_status::refused) {
        co_return co_await holder_conflict(self, c.clinic(), l->holder, "该顾客正在由{name}接待");
    }
    co_await record_session(self, c, l->status);
    if (l->status != routing::lock_status::renewed) {
        std::optional<agent_row> holder = c.agent.row;
        co_await announce_lock(self, c, std::move(holder));
    }
    log::info("conversation.accepted", {{"clinic", c.clinic()},
                                        {"account", c.path.account_id},
                                        {"agent", c.agent.row.id},
                                        {"lock", routing::to_string(l->status)}});
    co_return ok_json(std::string("{\"status\":") + json_quote(routing::to_string(l->status)) +
                      ",\"holder\":{\"id\":" + c.me() +
                      ",\"name\":" + json_quote(c.agent.row.name) + "}}");
}

// Why no customer-service message can go now (the start of a Chinese sentence).
const char* window_problem(routing::spend_status s) {
    switch (s) {
        case routing::spend_status::closed:
            return "顾客超过48小时未发消息，微信不允许主动发送客服消息";
        case routing::spend_status::exhausted:
            return "顾客上次发消息后可发送的客服消息条数已用完（48小时内最多5条）";
        default: return "暂时无法发送客服消息";
    }
}

// Why the "reply waiting" notice could not stand in (the rest of the sentence).
std::string notice_problem(const reply_notice_outcome& o) {
    switch (o.status) {
        case notice_status::no_template_rights:
            return "，且公众号无权发送模板消息（仅认证服务号可以），无法通知顾客";
        case notice_status::failed: return "，且“客服回复提醒”模板通知发送失败（" + o.reason + "）";
        case notice_status::no_public_url:
            return "，且网关未配置公网地址（public_base_url），无法发送“客服回复提醒”通知";
        case notice_status::disabled: return "，且诊所已关闭“客服回复提醒”模板通知";
        default: return "，且诊所未配置“客服回复提醒”模板通知";
    }
}

// The fence before anything is sent: still this holding (not expired and taken by another
// meanwhile). The 409 when it is not.
awaitable<std::optional<http_response>> fence(impl_ptr self, const conversation& c,
                                              std::int64_t token) {
    const std::uint64_t clinic = c.clinic();
    auto fenced = co_await self->live.renew_lock_as(clinic, c.path.openid, c.me(), token,
                                                    c.settings->lock_ttl);
    if (!fenced) co_return unavailable("conversation.unavailable", fenced.error());
    if (*fenced) co_return std::nullopt;
    auto now_held = co_await self->live.lock_of(clinic, c.path.openid);
    std::string holder = now_held && *now_held ? (*now_held)->holder : std::string();
    co_return co_await holder_conflict(self, clinic, std::move(holder),
                                       "该会话已被{name}接手，消息未发送");
}

// The effects of an agent's reply (sent, or waiting behind a notice): the suppression mark,
// load, the no-answer timer, the exclusive agent, the consoles' unread and lock. Failures are
// logged: the message is queued, and repeating it would send it twice.
awaitable<void> reply_effects(impl_ptr self, const conversation& c, bool fresh_lock) {
    const std::uint64_t clinic = c.clinic();
    const std::string& openid = c.path.openid;
    const std::string me = c.me();
    const auto now = self->now();
    const auto warn = [&](const char* what, const boost::system::error_code& ec) {
        log::warn("conversation.reply_effect_failed",
                  {{"clinic", clinic}, {"what", what}, {"reason", ec.message()}});
    };
    if (c.settings->config.exclusive_mode && !c.fan.exclusive_agent) {
        // DESIGN.md §5: in exclusive mode the first agent to reply to a fan without an exclusive
        // agent becomes it — the same compare-and-set as routing's picks, then MySQL.
        auto won = co_await self->live.commit_exclusive(clinic, openid, std::nullopt, me, now);
        if (!won) {
            warn("exclusive", won.error());
        } else if (won->status == routing::assign_status::assigned ||
                   won->status == routing::assign_status::already_assigned) {
            auto set = co_await self->repo.set_exclusive_if_none(c.path.account_id, openid,
                                                                 c.agent.row.id);
            if (!set) warn("exclusive_row", set.error());
        }
    }
    if (auto r = co_await self->live.record_agent_reply(clinic, openid, now); !r) {
        warn("reply_mark", r.error());
    }
    if (auto r = co_await self->live.note_answered(clinic, openid); !r) warn("load", r.error());
    if (auto r = co_await self->live.cancel_timer(clinic, openid); !r) warn("timer", r.error());
    // The consoles: the reply cleared the unread mark (docs/api.md "Unread"), and a new holding
    // shows.
    if (fresh_lock) {
        std::optional<agent_row> holder = c.agent.row;
        co_await announce_lock(self, c, std::move(holder));
    }
    std::string unread =
        "{\"type\":\"unread\",\"account_id\":" + std::to_string(c.path.account_id) +
        ",\"openid\":" + json_quote(openid) + ",\"unread\":0}";
    co_await notify_clinic(self, clinic, std::move(unread));
}

// send with no window slot (DESIGN.md §5, docs/api.md "Send"): the text waits behind the
// clinic's "reply waiting" notice (reply_notices.hpp), or — no notice possible — 422
// fan_must_write with nothing kept or sent and a lock taken for this message given back. A
// waiting reply is an agent's reply like a sent one: the lock stays, and its effects apply.
awaitable<http_response> send_waiting(impl_ptr self, conversation c, std::string text,
                                      routing::lock_result l, routing::spend_status why) {
    const std::uint64_t clinic = c.clinic();
    const bool fresh_lock = l.status != routing::lock_status::renewed;
    reply_notice_outcome out;
    if (self->opts.notices) {
        if (auto lost = co_await fence(self, c, l.token)) co_return std::move(*lost);
        reply_notice_request req;
        req.clinic = clinic;
        req.account_id = c.path.account_id;
        req.openid = c.path.openid;
        req.agent_id = c.agent.row.id;
        req.agent_name = c.agent.row.name;
        req.text = std::move(text);
        req.origin = "agent:" + c.me();
        auto sent = co_await self->opts.notices->send(std::move(req));
        if (!sent) {
            if (fresh_lock)
                (void)co_await self->live.release_lock(clinic, c.path.openid, c.me(), l.token);
            co_return unavailable("conversation.send_unavailable", sent.error());
        }
        out = std::move(*sent);
    }
    const std::string window = routing::to_string(why);
    if (!out.delivered()) {
        // Nothing reaches the fan: a lock taken for this message only is given back.
        if (fresh_lock)
            (void)co_await self->live.release_lock(clinic, c.path.openid, c.me(), l.token);
        http_response r = json_error(422, std::string(window_problem(why)) + notice_problem(out) +
                                              "。需等顾客先发消息后才能回复");
        r.body.pop_back();
        r.body += ",\"reason\":\"fan_must_write\",\"window\":" + json_quote(window) +
                  ",\"notice\":" + json_quote(to_string(out.status)) + "}";
        co_return r;
    }
    co_await record_session(self, c, l.status);
    co_await reply_effects(self, c, fresh_lock);
    log::info("conversation.reply_waiting", {{"clinic", clinic},
                                             {"account", c.path.account_id},
                                             {"agent", c.agent.row.id},
                                             {"notice", to_string(out.status)}});
    co_return ok_json(
        std::string("{\"delivery\":") +
        (out.status == notice_status::sent ? "\"notice_sent\"" : "\"notice_queued\"") +
        ",\"reply_id\":" + std::to_string(*out.reply_id) + ",\"outbox_id\":" +
        std::to_string(*out.outbox_id) + ",\"lock\":" + json_quote(routing::to_string(l.status)) +
        ",\"window\":{\"kind\":null,\"status\":" + json_quote(window) + "}}");
}

// send (text), send-image, send-news: the lock (acquire or renew), a slot of the customer-service
// window, the outbox row `m` (its account and origin filled here), then the effects of an agent
// reply (suppression mark, load, no-answer timer, exclusive agent). Without a slot a text
// (`text`, the same as in `m`) waits behind the "reply waiting" notice; an image or news is
// refused with the reason.
awaitable<http_response> send(impl_ptr self, conversation c, wechat::outbound_message m,
                              std::optional<std::string> text) {
    const std::uint64_t clinic = c.clinic();
    const std::string& openid = c.path.openid;
    const std::string me = c.me();
    auto l =
        co_await self->live.acquire_lock(clinic, openid, me, self->now(), c.settings->lock_ttl);
    if (!l) co_return unavailable("conversation.unavailable", l.error());
    if (l->status == routing::lock_status::refused) {
        co_return co_await holder_conflict(self, clinic, l->holder,
                                           "该顾客正在由{name}接待，您不能发送消息");
    }
    const bool fresh_lock = l->status != routing::lock_status::renewed;
    auto spent =
        co_await self->live.spend_window(clinic, openid, routing::sender_kind::agent, self->now());
    if (!spent) co_return unavailable("conversation.unavailable", spent.error());
    if (spent->status != routing::spend_status::spent) {
        if (text) {
            co_return co_await send_waiting(self, std::move(c), std::move(*text), *l,
                                            spent->status);
        }
        // Nothing was sent: a lock taken for this message only is given back.
        if (fresh_lock) (void)co_await self->live.release_lock(clinic, openid, me, l->token);
        http_response r = json_error(422, window_problem(spent->status));
        r.body.pop_back();
        r.body += ",\"reason\":" + json_quote(routing::to_string(spent->status)) + "}";
        co_return r;
    }
    if (auto lost = co_await fence(self, c, l->token)) co_return std::move(*lost);

    m.account_id = c.path.account_id;
    m.origin = "agent:" + me;
    const std::string kind = m.kind;
    auto queued = co_await self->outbox.enqueue(std::move(m));
    if (!queued) co_return unavailable("conversation.send_unavailable", queued.error());
    co_await record_session(self, c, l->status);

    co_await reply_effects(self, c, fresh_lock);
    log::info("conversation.sent", {{"clinic", clinic},
                                    {"account", c.path.account_id},
                                    {"agent", c.agent.row.id},
                                    {"kind", kind},
                                    {"outbox", *queued}});
    co_return ok_json("{\"outbox_id\":" + std::to_string(*queued) + ",\"lock\":" +
                      json_quote(routing::to_string(l->status)) + ",\"window\":{\"kind\":" +
                      json_quote(spent->window ? routing::to_string(*spent->window) : "message") +
                      ",\"remaining\":" + std::to_string(spent->remaining) + "}}");
}

// The caller's own lock, or the 409 that says why it has none.
struct own_lock {
    std::optional<routing::lock_info> lock;
    http_response refusal;
};

awaitable<own_lock> caller_lock(impl_ptr self, const conversation& c, std::string other_holder) {
    own_lock out;
    auto held = co_await self->live.lock_of(c.clinic(), c.path.openid);
    if (!held) {
        out.refusal = unavailable("conversation.unavailable", held.error());
        co_return out;
    }
    if (!*held) {
        out.refusal = json_error(409, "您尚未接入该会话");
        out.refusal.body.pop_back();
        out.refusal.body += ",\"holder\":null}";
        co_return out;
    }
    if ((*held)->holder != c.me()) {
        out.refusal =
            co_await holder_conflict(self, c.clinic(), (*held)->holder, std::move(other_holder));
        co_return out;
    }
    out.lock = **held;
    co_return out;
}

// end: the holder releases the lock.
awaitable<http_response> end(impl_ptr self, conversation c) {
    auto own = co_await caller_lock(self, c, "该会话由{name}接待，只有接待人可以结束会话");
    if (!own.lock) co_return own.refusal;
    auto released =
        co_await self->live.release_lock(c.clinic(), c.path.openid, c.me(), own.lock->token);
    if (!released) co_return unavailable("conversation.unavailable", released.error());
    if (!*released) co_return json_error(409, "会话状态已变化，请刷新后重试");
    co_await record_session_end(self, c, "ended");
    std::optional<agent_row> nobody;
    co_await announce_lock(self, c, std::move(nobody));
    log::info("conversation.ended",
              {{"clinic", c.clinic()}, {"account", c.path.account_id}, {"agent", c.agent.row.id}});
    co_return ok_json("{\"ended\":true}");
}

awaitable<http_response> transfer_to_agent(impl_ptr self, conversation c, routing::lock_info lock,
                                           std::uint64_t to) {
    const std::uint64_t clinic = c.clinic();
    if (to == c.agent.row.id) co_return json_error(400, "不能转接给自己");
    auto target = co_await self->repo.agent(clinic, to);
    if (!target) co_return unavailable("conversation.unavailable", target.error());
    if (!*target || !(*target)->active) co_return json_error(404, "目标客服不存在");
    const agent_row& t = **target;
    if (!t.can_receive) co_return json_error(422, "目标客服没有接待在线咨询的权限");
    if (c.settings->config.chain_store_mode && t.store && c.fan.store && *t.store != *c.fan.store) {
        co_return json_error(422, "目标客服属于其他门店，不能接待该顾客");
    }
    auto online = co_await self->live.online_agents(clinic, self->now());
    if (!online) co_return unavailable("conversation.unavailable", online.error());
    if (std::find(online->begin(), online->end(), std::to_string(to)) == online->end()) {
        co_return json_error(409, "目标客服「" + t.name + "」当前不在线");
    }
    auto moved = co_await self->live.transfer_lock(clinic, c.path.openid, c.me(), lock.token,
                                                   std::to_string(to), c.settings->lock_ttl);
    if (!moved) co_return unavailable("conversation.unavailable", moved.error());
    if (moved->status == routing::lock_status::refused) {
        co_return co_await holder_conflict(self, clinic, moved->holder,
                                           "该会话已由{name}接待，无法转接");
    }
    {
        auto r = co_await self->repo.session_started(c.path.account_id, c.path.openid, to,
                                                     "transferred");
        if (!r) log::warn("conversation.session_not_recorded", {{"reason", r.error().message()}});
    }
    // The new holder's console hears of it at once (any instance).
    std::string note =
        "{\"type\":\"transfer\",\"account_id\":" + std::to_string(c.path.account_id) +
        ",\"openid\":" + json_quote(c.path.openid) + ",\"from\":" + agent_json(c.agent.row) + "}";
    auto pushed = co_await self->live.push(clinic, std::to_string(to), std::move(note));
    if (!pushed) log::warn("conversation.push_failed", {{"reason", pushed.error().message()}});
    std::optional<agent_row> holder = t;
    co_await announce_lock(self, c, std::move(holder));
    log::info("conversation.transferred", {{"clinic", clinic},
                                           {"account", c.path.account_id},
                                           {"agent", c.agent.row.id},
                                           {"to_agent", to}});
    co_return ok_json("{\"transferred_to\":" + agent_json(t) + "}");
}

awaitable<http_response> transfer_to_store(impl_ptr self, conversation c, routing::lock_info lock,
                                           std::uint64_t store) {
    const std::uint64_t clinic = c.clinic();
    if (!c.settings->config.chain_store_mode) {
        co_return json_error(422, "仅在连锁门店模式下可以转接到门店");
    }
    auto exists = co_await self->repo.store_in_clinic(clinic, store);
    if (!exists) co_return unavailable("conversation.unavailable", exists.error());
    if (!*exists) co_return json_error(404, "门店不存在");
    auto released = co_await self->live.release_lock(clinic, c.path.openid, c.me(), lock.token);
    if (!released) co_return unavailable("conversation.unavailable", released.error());
    if (!*released) co_return json_error(409, "会话状态已变化，请刷新后重试");
    co_await record_session_end(self, c, "transferred");
    std::optional<agent_row> nobody;
    co_await announce_lock(self, c, std::move(nobody));
    auto bound = co_await self->repo.set_store(c.path.account_id, c.path.openid, store);
    if (!bound) co_return unavailable("conversation.unavailable", bound.error());
    log::info("conversation.transferred", {{"clinic", clinic},
                                           {"account", c.path.account_id},
                                           {"agent", c.agent.row.id},
                                           {"to_store", store}});
    co_return ok_json("{\"transferred_to_store\":" + std::to_string(store) + "}");
}

// transfer: the holder hands the lock to an online agent, or (chain-store mode) ends it and binds
// the fan to a store, whose agents the next message reaches.
awaitable<http_response> transfer(impl_ptr self, conversation c, transfer_request to) {
    auto own = co_await caller_lock(self, c, "该会话由{name}接待，只有接待人可以转接");
    if (!own.lock) co_return own.refusal;
    if (to.to_agent)
        co_return co_await transfer_to_agent(self, std::move(c), *own.lock, *to.to_agent);
    co_return co_await transfer_to_store(self, std::move(c), *own.lock, *to.to_store);
}

}  // namespace

awaitable<http_response> handle_conversation(impl_ptr self, http_request req) {
    auto path = parse_conversation_path(req.path);
    if (!path) co_return json_error(404, "not found");
    auto auth = co_await self->authenticate(req);
    if (!auth.agent) co_return auth.refusal;
    if (is_console_action(path->action)) {
        co_return co_await handle_console_action(self, std::move(req), std::move(*auth.agent),
                                                 std::move(*path));
    }
    if (req.method != "POST") co_return json_error(405, "不支持该请求方法");
    conversation c{std::move(*auth.agent), std::move(*path), {}, nullptr};

    // Bodies first: a malformed request is 400 whatever the conversation.
    std::optional<wechat::outbound_message> message;
    std::optional<std::string> text;  // a text send's, which may wait behind a notice
    std::optional<transfer_request> to;
    if (c.path.action == "send") {
        auto t = parse_send_text(req.body);
        if (!t.value) co_return json_error(400, t.problem);
        text = *t.value;
        message.emplace();
        message->openid = c.path.openid;
        message->kind = "text";
        message->body = wechat::custom_text_body(c.path.openid, *t.value);
    } else if (is_media_send(c.path.action)) {
        auto m = media_send_of(c.path.action, c.path.openid, req);
        if (!m.message) co_return m.refusal;
        message = std::move(m.message);
    } else if (c.path.action == "transfer") {
        auto t = parse_transfer(req.body);
        if (!t.value) co_return json_error(400, t.problem);
        to = t.value;
    }

    // Only fans of the agent's own clinic exist for it (another clinic's account is 404, not
    // 403: its existence is not the agent's business).
    auto fan = co_await self->repo.conversation(c.path.account_id, c.path.openid);
    if (!fan) co_return unavailable("conversation.unavailable", fan.error());
    if (!*fan || (*fan)->clinic != c.clinic()) co_return json_error(404, "会话不存在");
    if (!(*fan)->fan_known) co_return json_error(404, "该顾客尚未与公众号互动");
    c.fan = **fan;
    auto settings = co_await self->stage.settings(c.clinic());
    if (!settings) co_return unavailable("conversation.unavailable", settings.error());
    c.settings = *settings;
    if (!c.agent.row.can_receive) co_return json_error(403, "您没有接待在线咨询的权限");
    // Chain-store mode: an agent of one store does not act on another store's fans (agents
    // without a store may act on every fan).
    if (c.settings->config.chain_store_mode && c.agent.row.store && c.fan.store &&
        *c.agent.row.store != *c.fan.store) {
        co_return json_error(403, "该顾客属于其他门店");
    }

    if (c.path.action == "accept") co_return co_await accept(self, std::move(c));
    if (message) {
        co_return co_await send(self, std::move(c), std::move(*message), std::move(text));
    }
    if (c.path.action == "end") co_return co_await end(self, std::move(c));
    co_return co_await transfer(self, std::move(c), *to);
}

}  // namespace scrm::gateway

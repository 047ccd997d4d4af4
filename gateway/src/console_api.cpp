// The staff console's reading side (docs/api.md "The console"): the conversation list (filters,
// search, cursor paging, unread counts, owners, lock holders and customer-service windows from
// Redis), a conversation's history with the read audit, its media files, "ignore unread", and
// the clinic's agents with their presence.
#include <algorithm>

#include "agent_api_impl.hpp"
#include "scrm/common/log.hpp"
#include "scrm/gateway/console_requests.hpp"
#include "scrm/gateway/routing_stage.hpp"
#include "scrm/routing/time_text.hpp"
#include "scrm/storage/redis.hpp"

namespace scrm::gateway {

namespace asio = boost::asio;
using asio::awaitable;

namespace {

using impl_ptr = std::shared_ptr<agent_api::impl>;

http_response ok_json(std::string body) {
    http_response r;
    r.body = std::move(body);
    return r;
}

std::string iso_or_null(const std::optional<std::string>& sql_time) {
    return sql_time ? json_quote(iso_utc(*sql_time)) : std::string("null");
}

std::string quoted_or_null(const std::optional<std::string>& v) {
    return v ? json_quote(*v) : std::string("null");
}

// Stored JSON we wrote ourselves (receipts, target lists, tags), spliced as is; null when absent.
std::string raw_or_null(const std::optional<std::string>& json) {
    return json && !json->empty() ? *json : std::string("null");
}

std::string instant_iso(routing::instant t) {
    return json_quote(routing::format_timestamp(std::chrono::floor<std::chrono::seconds>(t),
                                                std::chrono::minutes(0)));
}

// The customer-service window as the console shows it: open while any window is, the slots left
// in the open ones, and when the last of them closes.
std::string window_json(const std::vector<routing::window_state>& windows,
                        const routing::live_options& o) {
    bool open = false;
    int remaining = 0;
    std::optional<routing::instant> closes;
    for (const auto& w : windows) {
        if (!w.open || !w.opened) continue;
        open = true;
        remaining += w.remaining;
        const auto length = w.kind == routing::window_kind::message ? o.message_window.length
                                                                    : o.event_window.length;
        const auto end = *w.opened + length;
        if (!closes || end > *closes) closes = end;
    }
    return std::string("{\"open\":") + (open ? "true" : "false") +
           ",\"remaining\":" + std::to_string(remaining) +
           ",\"closes_at\":" + (closes ? instant_iso(*closes) : std::string("null")) + "}";
}

// Redis's view of one fan: who holds its lock, its exclusive agent (routing's truth: picks are
// committed there first), its window.
struct live_view {
    std::optional<std::uint64_t> holder, exclusive;
    std::string window = "null";
};

awaitable<result<live_view>> live_of(impl_ptr self, std::uint64_t clinic, std::string openid) {
    live_view v;
    auto lock = co_await self->live.lock_of(clinic, openid);
    if (!lock) co_return lock.error();
    if (*lock) v.holder = parse_id((*lock)->holder);
    auto exclusive = co_await self->live.exclusive_agent(clinic, openid);
    if (!exclusive) co_return exclusive.error();
    if (*exclusive) v.exclusive = parse_id(**exclusive);
    auto windows = co_await self->live.windows_of(clinic, openid, self->now());
    if (!windows) co_return windows.error();
    v.window = window_json(*windows, self->live.options());
    co_return v;
}

std::string last_message_json(const std::optional<last_message>& m) {
    if (!m) return "null";
    std::string text = m->text;
    if (text.empty() && !m->event.empty()) text = m->event;
    return std::string("{\"direction\":") + (m->inbound ? "\"in\"" : "\"out\"") +
           ",\"type\":" + json_quote(m->type) + ",\"preview\":" + json_quote(preview(text)) +
           ",\"at\":" + json_quote(iso_utc(m->at)) + "}";
}

awaitable<http_response> conversation_messages(impl_ptr self, http_request req, authed_agent agent,
                                               conversation_path path) {
    auto parsed = parse_history_query(req.query);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const agent_row& a = agent.row;
    fan_key fan{path.account_id, path.openid};
    auto page = co_await self->console.history(a.clinic, a.id, std::move(fan), *parsed.value);
    if (!page) co_return unavailable("console.history_unavailable", page.error());
    auto names = co_await self->console.agents(a.clinic);
    if (!names) co_return unavailable("console.history_unavailable", names.error());
    log::info("console.conversation_read",
              {{"clinic", a.clinic}, {"account", path.account_id}, {"agent", a.id}});
    std::string body = "{\"messages\":[";
    bool first = true;
    for (const auto& e : page->entries) {
        if (!first) body += ',';
        first = false;
        body += std::string("{\"direction\":") + (e.inbound ? "\"in\"" : "\"out\"") +
                ",\"id\":" + std::to_string(e.id) + ",\"at\":" + json_quote(iso_utc(e.at)) +
                ",\"type\":" + json_quote(e.type) + ",\"text\":" + quoted_or_null(e.text);
        if (e.inbound) {
            body += ",\"event\":" + quoted_or_null(e.event) +
                    ",\"event_key\":" + quoted_or_null(e.event_key) + ",\"media\":";
            if (!e.media_state) {
                body += "null";
            } else {
                body += "{\"state\":" + json_quote(*e.media_state);
                if (e.media_file) {
                    body += ",\"url\":\"/api/media/" + std::to_string(e.id) +
                            "\",\"content_type\":" + quoted_or_null(e.media_type);
                } else if (e.media_url_external) {
                    body += ",\"external_url\":" + json_quote(*e.media_url_external);
                }
                body += "}";
            }
            body += ",\"routing\":";
            if (!e.rule) {
                body += "null";
            } else {
                body += "{\"rule\":" + json_quote(*e.rule) +
                        ",\"owner\":" + agent_ref(e.owner, *names) +
                        ",\"targets\":" + raw_or_null(e.targets_json) +
                        ",\"auto_reply\":" + quoted_or_null(e.auto_reply) +
                        ",\"receipt\":" + raw_or_null(e.receipt_json) + "}";
            }
        } else {
            std::optional<std::uint64_t> sender;
            std::optional<std::string> auto_kind;
            if (e.origin.rfind("agent:", 0) == 0) sender = parse_id(e.origin.substr(6));
            if (e.origin.rfind("auto:", 0) == 0) auto_kind = e.origin.substr(5);
            body +=
                ",\"origin\":" + json_quote(e.origin) +
                ",\"agent\":" + (sender ? agent_ref(sender, *names) : std::string("null")) +
                ",\"auto_reply\":" + quoted_or_null(auto_kind) +
                ",\"state\":" + json_quote(e.state) +
                ",\"errcode\":" + (e.errcode ? std::to_string(*e.errcode) : std::string("null")) +
                ",\"error\":" + quoted_or_null(e.error) + ",\"sent_at\":" + iso_or_null(e.sent_at);
        }
        body += "}";
    }
    body += "],\"next_before\":" +
            (page->next ? json_quote(to_string(*page->next)) : std::string("null")) + "}";
    co_return ok_json(std::move(body));
}

awaitable<http_response> ignore_unread(impl_ptr self, authed_agent agent, conversation_path path) {
    const agent_row& a = agent.row;
    fan_key fan{path.account_id, path.openid};
    auto done = co_await self->console.ignore_unread(std::move(fan));
    if (!done) co_return unavailable("console.unavailable", done.error());
    log::info("console.unread_ignored",
              {{"clinic", a.clinic}, {"account", path.account_id}, {"agent", a.id}});
    std::string note = "{\"type\":\"unread\",\"account_id\":" + std::to_string(path.account_id) +
                       ",\"openid\":" + json_quote(path.openid) + ",\"unread\":0}";
    co_await notify_clinic(self, a.clinic, std::move(note));
    co_return ok_json("{\"unread\":0}");
}

// Why a voice could not be made playable, for the console (the cause is logged by the
// transcoder): busy and timed out are worth another try, an undecodable file is not.
http_response transcode_refusal(const boost::system::error_code& ec) {
    if (ec == errc::overloaded) return json_error(503, "语音转换繁忙，请稍后重试");
    if (ec == errc::timeout) return json_error(504, "语音转换超时，请稍后重试");
    if (ec == errc::not_found) return json_error(404, "文件不存在");
    return json_error(502, "语音无法转换为可播放的格式，请查看文字识别结果或在手机上收听");
}

// Only these media types are served, as themselves: anything else (a WeChat answer claiming
// text/html, say) would run as a page on the console's origin.
std::string safe_media_type(const std::string& type) {
    const bool known = type.rfind("image/", 0) == 0 || type.rfind("audio/", 0) == 0 ||
                       type.rfind("video/", 0) == 0;
    const bool plain = std::all_of(type.begin(), type.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/' || c == '-' ||
               c == '+' || c == '.';
    });
    return known && plain && type != "image/svg+xml" ? type : "application/octet-stream";
}

}  // namespace

std::string agent_ref(const std::optional<std::uint64_t>& id, const std::vector<agent_row>& names) {
    if (!id) return "null";
    const auto it =
        std::find_if(names.begin(), names.end(), [&](const agent_row& a) { return a.id == *id; });
    return "{\"id\":" + std::to_string(*id) +
           ",\"name\":" + (it == names.end() ? std::string("null") : json_quote(it->name)) + "}";
}

bool is_console_action(const std::string& action) {
    return action == "messages" || action == "ignore-unread" || action == "fan" ||
           action == "owner" || action == "bind-patient" || action == "unbind-patient";
}

awaitable<readable_fan> open_fan(impl_ptr self, const authed_agent& agent,
                                 const conversation_path& path) {
    readable_fan out;
    auto fan = co_await self->repo.conversation(path.account_id, path.openid);
    if (!fan) {
        out.refusal = unavailable("console.unavailable", fan.error());
        co_return out;
    }
    // Another clinic's account is 404, not 403: its existence is not the agent's business.
    if (!*fan || (*fan)->clinic != agent.row.clinic) {
        out.refusal = json_error(404, "会话不存在");
        co_return out;
    }
    if (!(*fan)->fan_known) {
        out.refusal = json_error(404, "该顾客尚未与公众号互动");
        co_return out;
    }
    out.fan = **fan;
    auto settings = co_await self->stage.settings(agent.row.clinic);
    if (!settings) {
        out.refusal = unavailable("console.unavailable", settings.error());
        co_return out;
    }
    out.settings = *settings;
    const auto scope = scope_of(agent.row, *out.settings);
    if (scope.store_scope && out.fan.store && *out.fan.store != *scope.store_scope) {
        out.refusal = json_error(403, "该顾客属于其他门店");
    }
    co_return out;
}

awaitable<http_response> handle_console_action(impl_ptr self, http_request req, authed_agent agent,
                                               conversation_path path) {
    const std::string& action = path.action;
    const bool get_ok = action == "messages" || action == "fan";
    const bool post_ok = action != "messages";
    if (!((req.method == "GET" && get_ok) || (req.method == "POST" && post_ok))) {
        co_return json_error(405, "不支持该请求方法");
    }
    auto fan = co_await open_fan(self, agent, path);
    if (fan.refusal) co_return std::move(*fan.refusal);
    if (action == "messages") {
        co_return co_await conversation_messages(self, std::move(req), std::move(agent),
                                                 std::move(path));
    }
    if (action == "ignore-unread") {
        co_return co_await ignore_unread(self, std::move(agent), std::move(path));
    }
    co_return co_await handle_fan_panel(self, std::move(req), std::move(agent), std::move(path),
                                        std::move(fan));
}

awaitable<http_response> list_conversations(impl_ptr self, http_request req) {
    auto auth = co_await self->authenticate(req);
    if (!auth.agent) co_return auth.refusal;
    const agent_row& a = auth.agent->row;
    auto parsed = parse_list_query(req.query);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const list_query q = std::move(*parsed.value);
    auto settings = co_await self->stage.settings(a.clinic);
    if (!settings) co_return unavailable("console.list_unavailable", settings.error());
    conversation_list_request r;
    r.scope = scope_of(a, **settings);
    r.store = q.store;
    r.search = q.search;
    r.cursor = q.cursor;
    r.limit = q.limit;
    if (q.store) {
        auto exists = co_await self->repo.store_in_clinic(a.clinic, *q.store);
        if (!exists) co_return unavailable("console.list_unavailable", exists.error());
        if (!*exists) co_return json_error(404, "门店不存在");
        if (r.scope.store_scope && *r.scope.store_scope != *q.store) {
            co_return json_error(403, "只能查看本门店的会话");
        }
    }
    if (q.filter == conversation_filter::mine) r.mine = a.id;
    if (q.filter == conversation_filter::waiting) {
        auto fans = co_await self->repo.backlog(self->backlog_for(a, **settings));
        if (!fans) co_return unavailable("console.list_unavailable", fans.error());
        std::vector<fan_key> only;
        for (const auto& f : *fans) only.emplace_back(f.account_id, f.openid);
        r.only = std::move(only);
    }
    if (q.filter == conversation_filter::consultant_waiting) {
        if (a.role != "front_desk" && a.role != "admin") {
            co_return json_error(403, "只有前台和管理员可以查看等待顾问的顾客");
        }
        const auto max_age = static_cast<std::uint64_t>(self->opts.backlog_max_age.count());
        auto waits = co_await self->console.consultant_waits(a.clinic, max_age);
        if (!waits) co_return unavailable("console.list_unavailable", waits.error());
        auto online = co_await self->live.online_agents(a.clinic, self->now());
        if (!online) co_return unavailable("console.list_unavailable", online.error());
        std::vector<fan_key> only;
        for (const auto& w : *waits) {
            const std::string consultant = std::to_string(w.consultant);
            if (std::find(online->begin(), online->end(), consultant) == online->end()) {
                only.push_back(w.fan);
            }
        }
        r.only = std::move(only);
    }
    auto rows = co_await self->console.conversations(r);
    if (!rows) co_return unavailable("console.list_unavailable", rows.error());
    auto names = co_await self->console.agents(a.clinic);
    if (!names) co_return unavailable("console.list_unavailable", names.error());

    std::string body = "{\"conversations\":[";
    bool first = true;
    for (const auto& c : *rows) {
        auto live = co_await live_of(self, a.clinic, c.openid);
        if (!live) co_return unavailable("console.list_unavailable", live.error());
        if (!first) body += ',';
        first = false;
        body +=
            "{\"account_id\":" + std::to_string(c.account_id) +
            ",\"openid\":" + json_quote(c.openid) +
            ",\"display_name\":" + json_quote(display_name(c.remark, c.patient_name, c.openid)) +
            ",\"remark\":" + quoted_or_null(c.remark) +
            ",\"patient_name\":" + quoted_or_null(c.patient_name) + ",\"tags\":" + c.tags_json +
            ",\"store_id\":" + (c.store ? std::to_string(*c.store) : std::string("null")) +
            ",\"subscribed\":" + (c.subscribed ? "true" : "false") +
            ",\"unread\":" + std::to_string(c.unread) +
            ",\"last_message\":" + last_message_json(c.last) +
            ",\"last_activity_at\":" + json_quote(iso_utc(c.activity)) +
            ",\"consultant\":" + agent_ref(c.consultant, *names) +
            ",\"exclusive\":" + agent_ref(live->exclusive ? live->exclusive : c.exclusive, *names) +
            ",\"holder\":" + agent_ref(live->holder, *names) + ",\"window\":" + live->window + "}";
    }
    const bool more = rows->size() == q.limit;
    body += "],\"next_cursor\":" +
            (more ? json_quote(to_string(rows->back().position)) : std::string("null")) + "}";
    co_return ok_json(std::move(body));
}

awaitable<http_response> serve_media(impl_ptr self, http_request req) {
    const auto id =
        parse_id(std::string_view(req.path).substr(std::string_view("/api/media/").size()));
    if (!id) co_return json_error(404, "文件不存在");
    auto auth = co_await self->authenticate(req);
    if (!auth.agent) co_return auth.refusal;
    const agent_row& a = auth.agent->row;
    auto settings = co_await self->stage.settings(a.clinic);
    if (!settings) co_return unavailable("console.media_unavailable", settings.error());
    const fan_scope scope = scope_of(a, **settings);
    std::filesystem::path dir(self->opts.media_dir);
    auto file = co_await self->console.media(scope, a.id, *id, std::move(dir));
    if (!file) co_return unavailable("console.media_unavailable", file.error());
    if (!*file) co_return json_error(404, "文件不存在");
    http_response r;
    r.content_type = safe_media_type((*file)->content_type);
    r.body = std::move((*file)->bytes);
    if (const auto format = query_param(req.query, "format")) {
        // Voice for the browser: AMR and Speex play nowhere, MP3 everywhere.
        if (*format != "mp3") co_return json_error(400, "format 只支持 mp3");
        if (r.content_type.rfind("audio/", 0) != 0) {
            co_return json_error(422, "该文件不是语音，不能转换为 mp3");
        }
        if (r.content_type != "audio/mpeg") {
            auto mp3 = co_await self->transcoder.mp3((*file)->path);
            if (!mp3) co_return transcode_refusal(mp3.error());
            r.body = std::move(*mp3);
            r.content_type = "audio/mpeg";
        }
    }
    r.headers.emplace_back("Cache-Control", "private, no-store");
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    co_return r;
}

awaitable<http_response> list_agents(impl_ptr self, http_request req) {
    auto auth = co_await self->authenticate(req);
    if (!auth.agent) co_return auth.refusal;
    const agent_row& a = auth.agent->row;
    auto agents = co_await self->console.agents(a.clinic);
    if (!agents) co_return unavailable("console.agents_unavailable", agents.error());
    auto stores = co_await self->console.stores(a.clinic);
    if (!stores) co_return unavailable("console.agents_unavailable", stores.error());
    auto online = co_await self->live.online_agents(a.clinic, self->now());
    if (!online) co_return unavailable("console.agents_unavailable", online.error());
    std::string body = "{\"stores\":[";
    for (std::size_t i = 0; i < stores->size(); ++i) {
        if (i) body += ',';
        body += "{\"id\":" + std::to_string((*stores)[i].first) +
                ",\"name\":" + json_quote((*stores)[i].second) + "}";
    }
    body += "],\"agents\":[";
    for (std::size_t i = 0; i < agents->size(); ++i) {
        const agent_row& x = (*agents)[i];
        const bool on =
            std::find(online->begin(), online->end(), std::to_string(x.id)) != online->end();
        std::string one = agent_json(x);
        one.pop_back();
        body += (i ? "," : "") + one + ",\"online\":" + (on ? "true" : "false") + "}";
    }
    co_return ok_json(body + "]}");
}

}  // namespace scrm::gateway

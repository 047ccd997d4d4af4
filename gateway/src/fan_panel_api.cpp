// The console's fan panel (docs/api.md "Fan panel"): GET/POST …/{openid}/fan (remark, tags),
// …/owner (consultant and exclusive agent: front desk and admins; the exclusive agent in Redis
// too, as scrm-admin fan set-owner does, since routing reads it there first), …/bind-patient and
// …/unbind-patient. Every change is audited with before/after and pushed to the clinic's consoles.
#include "agent_api_impl.hpp"
#include "scrm/common/log.hpp"
#include "scrm/gateway/console_requests.hpp"
#include "scrm/gateway/routing_stage.hpp"

namespace scrm::gateway {

namespace asio = boost::asio;
using asio::awaitable;

namespace {

using impl_ptr = std::shared_ptr<agent_api::impl>;

std::string quoted_or_null(const std::optional<std::string>& v) {
    return v ? json_quote(*v) : std::string("null");
}

// The panel as JSON (200), read afresh.
awaitable<http_response> panel_answer(impl_ptr self, std::uint64_t clinic, fan_key fan) {
    const std::string openid = fan.second;
    auto p = co_await self->console.panel(clinic, std::move(fan));
    if (!p) co_return unavailable("console.panel_unavailable", p.error());
    if (!*p) co_return json_error(404, "会话不存在");
    auto names = co_await self->console.agents(clinic);
    if (!names) co_return unavailable("console.panel_unavailable", names.error());
    auto live_exclusive = co_await self->live.exclusive_agent(clinic, openid);
    if (!live_exclusive) co_return unavailable("console.panel_unavailable", live_exclusive.error());
    const fan_panel& f = **p;
    std::optional<std::uint64_t> exclusive = f.exclusive;
    if (*live_exclusive) exclusive = parse_id(**live_exclusive);
    std::string patients = "[";
    for (const auto& pt : f.patients) {
        if (patients.size() > 1) patients += ',';
        patients += "{\"id\":" + std::to_string(pt.id) + ",\"name\":" + json_quote(pt.name) +
                    ",\"phone\":" + quoted_or_null(pt.phone) +
                    ",\"record_no\":" + quoted_or_null(pt.record_no) + "}";
    }
    patients += "]";
    const std::optional<std::string> first_patient =
        f.patients.empty() ? std::nullopt : std::optional<std::string>(f.patients.front().name);
    http_response r;
    r.body =
        "{\"account_id\":" + std::to_string(f.account_id) + ",\"openid\":" + json_quote(f.openid) +
        ",\"display_name\":" + json_quote(display_name(f.remark, first_patient, f.openid)) +
        ",\"remark\":" + quoted_or_null(f.remark) + ",\"tags\":" + f.tags_json +
        ",\"store_id\":" + (f.store ? std::to_string(*f.store) : std::string("null")) +
        ",\"consultant\":" + agent_ref(f.consultant, *names) +
        ",\"exclusive\":" + agent_ref(exclusive, *names) +
        ",\"subscribed\":" + (f.subscribed ? "true" : "false") +
        ",\"first_seen_at\":" + json_quote(iso_utc(f.first_seen_at)) + ",\"last_message_at\":" +
        (f.last_message_at ? json_quote(iso_utc(*f.last_message_at)) : std::string("null")) +
        ",\"patients\":" + patients + "}";
    co_return r;
}

// Tells the clinic's consoles that the fan's panel changed ("fan") or its owners ("owner").
awaitable<void> announce(impl_ptr self, std::uint64_t clinic, const conversation_path& path,
                         std::string type) {
    std::string note = "{\"type\":" + json_quote(type) +
                       ",\"account_id\":" + std::to_string(path.account_id) +
                       ",\"openid\":" + json_quote(path.openid) + "}";
    co_await notify_clinic(self, clinic, std::move(note));
}

// After a change: logged (ids only), pushed to the clinic's consoles as `push_type`, and
// answered with the panel read afresh.
awaitable<http_response> changed(impl_ptr self, const agent_row& a, conversation_path path,
                                 const char* event, std::string push_type) {
    log::info(event, {{"clinic", a.clinic}, {"account", path.account_id}, {"agent", a.id}});
    co_await announce(self, a.clinic, path, std::move(push_type));
    fan_key fan{path.account_id, path.openid};
    co_return co_await panel_answer(self, a.clinic, std::move(fan));
}

awaitable<http_response> set_profile(impl_ptr self, http_request req, authed_agent agent,
                                     conversation_path path) {
    auto parsed = parse_fan_profile(req.body);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const agent_row& a = agent.row;
    fan_key fan{path.account_id, path.openid};
    auto done = co_await self->console.set_profile(a.clinic, a.id, fan, std::move(*parsed.value));
    if (!done) co_return unavailable("console.panel_unavailable", done.error());
    if (*done == panel_outcome::no_fan) co_return json_error(404, "该顾客尚未与公众号互动");
    co_return co_await changed(self, a, std::move(path), "console.fan_profile", "fan");
}

// Consultant and exclusive agent. Redis first (routing reads the exclusive agent there first),
// then MySQL with the audit row; if MySQL fails or refuses, Redis gets its old value back.
awaitable<http_response> set_owner(impl_ptr self, http_request req, authed_agent agent,
                                   conversation_path path) {
    const agent_row& a = agent.row;
    if (a.role != "front_desk" && a.role != "admin") {
        co_return json_error(403, "只有前台和管理员可以设置顾问和专属客服");
    }
    auto parsed = parse_owner(req.body);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const owner_request r = *parsed.value;
    std::vector<std::uint64_t> named;
    if (r.set_consultant && r.consultant) named.push_back(*r.consultant);
    if (r.set_exclusive && r.exclusive) named.push_back(*r.exclusive);
    for (const std::uint64_t id : named) {
        auto row = co_await self->repo.agent(a.clinic, id);
        if (!row) co_return unavailable("console.owner_unavailable", row.error());
        if (!*row) co_return json_error(404, "客服不存在");
        if (!(*row)->active) co_return json_error(422, "客服「" + (*row)->name + "」已停用");
    }
    const std::uint64_t clinic = a.clinic;
    std::optional<std::string> live_before;
    if (r.set_exclusive) {
        auto before = co_await self->live.exclusive_agent(clinic, path.openid);
        if (!before) co_return unavailable("console.owner_unavailable", before.error());
        live_before = *before;
        std::optional<std::string> next;
        if (r.exclusive) next = std::to_string(*r.exclusive);
        auto set = co_await self->live.set_exclusive(clinic, path.openid, next);
        if (!set) co_return unavailable("console.owner_unavailable", set.error());
    }
    std::optional<std::uint64_t> live_before_id;
    if (live_before) live_before_id = parse_id(*live_before);
    fan_key fan{path.account_id, path.openid};
    auto stored = co_await self->console.set_owners(clinic, a.id, fan, r, live_before_id);
    if (!stored || stored->outcome != panel_outcome::done) {
        if (r.set_exclusive) {
            auto back = co_await self->live.set_exclusive(clinic, path.openid, live_before);
            if (!back) log::warn("console.owner_revert_failed", {{"clinic", clinic}});
        }
        if (!stored) co_return unavailable("console.owner_unavailable", stored.error());
        switch (stored->outcome) {
            case panel_outcome::no_agent: co_return json_error(404, "客服不存在");
            case panel_outcome::agent_inactive: co_return json_error(422, "客服已停用");
            default: co_return json_error(404, "该顾客尚未与公众号互动");
        }
    }
    co_return co_await changed(self, a, std::move(path), "console.fan_owner", "owner");
}

awaitable<http_response> bind_patient(impl_ptr self, http_request req, authed_agent agent,
                                      conversation_path path) {
    auto parsed = parse_bind_patient(req.body);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const agent_row& a = agent.row;
    fan_key fan{path.account_id, path.openid};
    auto bound = co_await self->console.bind_patient(a.clinic, a.id, fan, std::move(*parsed.value));
    if (!bound) co_return unavailable("console.panel_unavailable", bound.error());
    if (bound->first == panel_outcome::no_patient) co_return json_error(404, "患者不存在");
    if (bound->first == panel_outcome::no_fan) co_return json_error(404, "该顾客尚未与公众号互动");
    co_return co_await changed(self, a, std::move(path), "console.patient_bound", "fan");
}

awaitable<http_response> unbind_patient(impl_ptr self, http_request req, authed_agent agent,
                                        conversation_path path) {
    auto parsed = parse_unbind_patient(req.body);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const agent_row& a = agent.row;
    fan_key fan{path.account_id, path.openid};
    auto done = co_await self->console.unbind_patient(a.clinic, a.id, fan, *parsed.value);
    if (!done) co_return unavailable("console.panel_unavailable", done.error());
    if (*done == panel_outcome::no_patient) co_return json_error(404, "该患者未与此顾客绑定");
    co_return co_await changed(self, a, std::move(path), "console.patient_unbound", "fan");
}

}  // namespace

awaitable<http_response> handle_fan_panel(impl_ptr self, http_request req, authed_agent agent,
                                          conversation_path path, readable_fan) {
    const std::string action = path.action;
    const std::uint64_t clinic = agent.row.clinic;
    if (action == "fan" && req.method == "GET") {
        fan_key fan{path.account_id, path.openid};
        co_return co_await panel_answer(self, clinic, std::move(fan));
    }
    if (action == "fan") {
        co_return co_await set_profile(self, std::move(req), std::move(agent), std::move(path));
    }
    if (action == "owner") {
        co_return co_await set_owner(self, std::move(req), std::move(agent), std::move(path));
    }
    if (action == "bind-patient") {
        co_return co_await bind_patient(self, std::move(req), std::move(agent), std::move(path));
    }
    co_return co_await unbind_patient(self, std::move(req), std::move(agent), std::move(path));
}

}  // namespace scrm::gateway

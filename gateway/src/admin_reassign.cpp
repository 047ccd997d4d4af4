// Owner reassignment (seed 000: 批量更换归属) and deactivating an agent who still owns fans. A
// preview computes the plan from the fans as they are and returns a token (the seed of the
// average distribution and a fingerprint of the request and the fans); apply recomputes both in
// one transaction with the fans locked, refuses when the fingerprint differs, and so applies
// exactly what was previewed. Exclusive agents are written to Redis too (routing reads them there
// first), inside the transaction before it commits — as `scrm-admin fan set-owner` does.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include "admin_api_impl.hpp"
#include "admin_repository.hpp"
#include "scrm/common/log.hpp"
#include "scrm/gateway/admin_requests.hpp"
#include "scrm/gateway/audit_log.hpp"
#include "scrm/gateway/lock_notices.hpp"
#include "scrm/storage/mysql.hpp"

namespace scrm::gateway {

namespace asio = boost::asio;
using asio::awaitable;
using storage::mysql_session;

namespace {

// More fans than this in one reassignment are refused: the preview lists every one.
constexpr std::size_t max_fans = 10000;

struct refusal {
    refusal(unsigned s, std::string m, std::string e = {})
        : status(s), message(std::move(m)), extra(std::move(e)) {}
    unsigned status;
    std::string message;  // Chinese
    std::string extra;    // more JSON members: ",\"consultant_fans\":3"
};

http_response refuse(const refusal& r) {
    http_response out = json_error(r.status, r.message);
    if (!r.extra.empty()) {
        out.body.pop_back();
        out.body += r.extra + "}";
    }
    return out;
}

std::string agent_label(const std::map<std::uint64_t, admin_agent>& agents, std::uint64_t id) {
    const auto it = agents.find(id);
    return it == agents.end() ? "编号 " + std::to_string(id) : "「" + it->second.name + "」";
}

// Every agent named must be the clinic's; receivers must be active, not `leaving`, and — as
// exclusive agents — hold the consultation permission (routing ignores them otherwise).
std::optional<refusal> check_agents(const std::map<std::uint64_t, admin_agent>& agents,
                                    const std::vector<std::uint64_t>& from, owner_role role,
                                    const fan_destination& to,
                                    std::optional<std::uint64_t> leaving = std::nullopt) {
    for (const auto id : from) {
        if (!agents.count(id)) return refusal{422, "找不到客服（编号 " + std::to_string(id) + "）"};
    }
    for (const auto id : to.to_agents) {
        const auto it = agents.find(id);
        if (it == agents.end()) {
            return refusal{422, "找不到接收客服（编号 " + std::to_string(id) + "）"};
        }
        if (leaving && id == *leaving) return refusal{422, "不能把顾客分给要停用的客服本人"};
        if (!it->second.active) {
            return refusal{422, "客服" + agent_label(agents, id) + "已停用，不能接收顾客"};
        }
        if (role == owner_role::exclusive && !it->second.can_receive) {
            return refusal{
                422, "客服" + agent_label(agents, id) + "没有接待在线咨询的权限，不能成为专属客服"};
        }
    }
    return std::nullopt;
}

// The exclusive agents as routing's live state holds them (routing reads Redis first).
awaitable<result<void>> set_live_exclusives(
    std::shared_ptr<agent_api::impl> agents, std::uint64_t clinic,
    std::vector<std::pair<std::string, std::optional<std::string>>> changes) {
    for (auto& [fan, agent] : changes) {
        auto r = co_await agents->live.set_exclusive(clinic, fan, agent);
        if (!r) co_return r.error();
    }
    co_return result<void>{};
}

// The same from a MySQL worker (not an I/O thread: it may wait), inside the open transaction —
// the fans' rows stay locked until it commits, so routing cannot write them meanwhile.
result<void> set_live_exclusives_now(const std::shared_ptr<agent_api::impl>& agents,
                                     std::uint64_t clinic, const std::vector<reassign_fan>& fans,
                                     const std::vector<std::optional<std::uint64_t>>& plan) {
    std::vector<std::pair<std::string, std::optional<std::string>>> changes;
    for (std::size_t i = 0; i < fans.size(); ++i) {
        if (plan[i] == fans[i].owner) continue;
        changes.emplace_back(fans[i].openid,
                             plan[i] ? std::optional(std::to_string(*plan[i])) : std::nullopt);
    }
    if (changes.empty()) return {};
    auto task = set_live_exclusives(agents, clinic, std::move(changes));
    return asio::co_spawn(agents->ex, std::move(task), asio::use_future).get();
}

// One role's reassignment, computed (and with `apply`, written) on `db`.
struct role_plan {
    std::vector<reassign_fan> fans;
    std::vector<std::optional<std::uint64_t>> plan;
    std::size_t changed = 0;
};

// Writes a computed plan: the fans' owners with their audit rows, then Redis for exclusive
// agents. The caller commits.
result<std::size_t> write_plan(mysql_session& db, const admin_ptr& self, std::uint64_t clinic,
                               std::uint64_t admin, owner_role role, const role_plan& p) {
    auto changed = write_owners(db, clinic, admin, role, p.fans, p.plan);
    if (!changed) return changed.error();
    if (role == owner_role::exclusive) {
        if (auto r = set_live_exclusives_now(self->agents, clinic, p.fans, p.plan); !r) {
            return r.error();
        }
    }
    return *changed;
}

std::string ids_json(const std::vector<std::uint64_t>& ids) {
    std::string out = "[";
    for (std::size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
    return out + "]";
}

std::string id_or_null(const std::optional<std::uint64_t>& id) {
    return id ? std::to_string(*id) : "null";
}

// {"receivers":[{"id":…,"name":…,"fans":n}…],"fans":[{…,"from":…,"to":…}…]}'s members.
std::string plan_members(const role_plan& p, const std::vector<std::uint64_t>& receivers,
                         const std::map<std::uint64_t, admin_agent>& agents) {
    std::string out = "\"total\":" + std::to_string(p.fans.size()) +
                      ",\"changes\":" + std::to_string(p.changed) + ",\"receivers\":[";
    for (std::size_t r = 0; r < receivers.size(); ++r) {
        const auto id = receivers[r];
        const auto n = std::count(p.plan.begin(), p.plan.end(), std::optional(id));
        const auto it = agents.find(id);
        out += std::string(r ? "," : "") + "{\"id\":" + std::to_string(id) +
               ",\"name\":" + json_quote(it == agents.end() ? "" : it->second.name) +
               ",\"fans\":" + std::to_string(n) + "}";
    }
    out += "],\"fans\":[";
    for (std::size_t i = 0; i < p.fans.size(); ++i) {
        const auto& f = p.fans[i];
        out += std::string(i ? "," : "") + "{\"fan_id\":" + std::to_string(f.id) +
               ",\"account_id\":" + std::to_string(f.account_id) +
               ",\"openid\":" + json_quote(f.openid) + ",\"from\":" + std::to_string(f.owner) +
               ",\"to\":" + id_or_null(p.plan[i]) + "}";
    }
    return out + "]";
}

std::size_t count_changes(const role_plan& p) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < p.fans.size(); ++i) n += p.plan[i] != p.fans[i].owner;
    return n;
}

struct reassign_outcome {
    std::optional<refusal> refused;
    role_plan plan;
    std::map<std::uint64_t, admin_agent> agents;
    std::string token;
};

std::vector<std::uint64_t> joined(std::vector<std::uint64_t> a,
                                  const std::vector<std::uint64_t>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

}  // namespace

awaitable<http_response> reassign(admin_ptr self, http_request req, bool apply) {
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    auto parsed = parse_reassign(req.body, apply);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const reassign_request r = std::move(*parsed.value);
    const std::uint64_t clinic = auth.agent->row.clinic;
    const std::uint64_t admin = auth.agent->row.id;
    std::uint64_t seed = 0;
    std::string expected;
    if (apply) {
        auto token = parse_plan_token(*r.plan);  // checked by parse_reassign
        seed = token->first;
        expected = token->second;
    } else if (r.to.how == distribution::average) {
        seed = storage::random_row_token();
    }

    auto work = [&self, &r, clinic, admin, apply, seed,
                 &expected](mysql_session& db) -> result<reassign_outcome> {
        reassign_outcome out;
        if (apply) {
            if (auto b = begin_clinic_change(db, clinic); !b) return b.error();
        } else if (auto b = db.begin(); !b) {
            return b.error();
        }
        rollback_guard undo{db};
        auto agents = agents_of(db, clinic, joined(r.from_agents, r.to.to_agents));
        if (!agents) return agents.error();
        out.agents = std::move(*agents);
        out.refused = check_agents(out.agents, r.from_agents, r.role, r.to);
        if (out.refused) return out;
        auto fans = fans_of(db, clinic, r.role, r.from_agents, apply);
        if (!fans) return fans.error();
        if (fans->size() > max_fans) {
            out.refused = refusal{422, "一次最多调整" + std::to_string(max_fans) +
                                           "位顾客，请分批进行（按原归属客服分开）"};
            return out;
        }
        const std::string fingerprint = plan_fingerprint(r, *fans);
        if (apply && fingerprint != expected) {
            out.refused = refusal{409, "预览之后顾客的归属已有变化，请重新预览后再确认"};
            return out;
        }
        out.plan.plan = plan_reassignment(fans->size(), r.to.to_agents, r.to.how, seed);
        out.plan.fans = std::move(*fans);
        out.plan.changed = count_changes(out.plan);
        out.token = plan_token(seed, fingerprint);
        if (!apply) return out;
        auto written = write_plan(db, self, clinic, admin, r.role, out.plan);
        if (!written) return written.error();
        if (*written > 0) {
            audit_entry e;
            e.clinic = clinic;
            e.agent = admin;
            e.action = "fan.reassign";
            e.subject = "agents:" + ids_json(r.from_agents);
            e.detail_json =
                std::string("{\"role\":\"") + to_string(r.role) + "\",\"distribution\":\"" +
                to_string(r.to.how) + "\",\"from\":" + ids_json(r.from_agents) +
                ",\"to\":" + ids_json(r.to.to_agents) + ",\"fans\":" + std::to_string(*written) +
                ",\"plan\":" + json_quote(out.token) + "}";
            if (auto a = append_audit(db, e); !a) return a.error();
        }
        if (auto c = db.commit(); !c) return c.error();
        return out;
    };
    auto done = co_await self->mysql.run(work);
    if (!done) co_return unavailable("admin.reassign_unavailable", done.error());
    if (done->refused) co_return refuse(*done->refused);
    if (apply) {
        log::info("admin.reassigned", {{"clinic", clinic},
                                       {"agent", admin},
                                       {"role", to_string(r.role)},
                                       {"fans", static_cast<std::uint64_t>(done->plan.changed)}});
    }
    co_return ok_json("{\"plan\":" + json_quote(done->token) + ",\"role\":\"" + to_string(r.role) +
                      "\",\"distribution\":\"" + to_string(r.to.how) + "\"," +
                      (apply ? "\"applied\":" + std::to_string(done->plan.changed) + "," : "") +
                      plan_members(done->plan, r.to.to_agents, done->agents) + "}");
}

namespace {

struct deactivation {
    std::optional<refusal> refused;
    admin_agent agent;
    bool already_inactive = false;
    std::map<std::uint64_t, admin_agent> agents;
    role_plan consultant, exclusive;
};

}  // namespace

awaitable<http_response> deactivate_agent(admin_ptr self, http_request req) {
    auto auth = co_await self->admin(req);
    if (!auth.agent) co_return auth.refusal;
    // The path was checked by the router's handler: /api/admin/agents/{id}/deactivate.
    const std::string_view path = req.path;
    constexpr std::size_t at = std::string_view("/api/admin/agents/").size();
    const auto id = parse_id(path.substr(at, path.rfind('/') - at));
    auto parsed = parse_deactivate(req.body);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const deactivate_request d = std::move(*parsed.value);
    const std::uint64_t clinic = auth.agent->row.clinic;
    const std::uint64_t admin = auth.agent->row.id;
    if (id == admin) co_return json_error(400, "不能停用自己的账号");
    const std::uint64_t agent = *id;

    auto work = [&self, &d, clinic, admin, agent](mysql_session& db) -> result<deactivation> {
        deactivation out;
        if (auto b = begin_clinic_change(db, clinic); !b) return b.error();
        rollback_guard undo{db};
        std::vector<std::uint64_t> ids{agent};
        for (const auto& dest : {d.consultant_fans, d.exclusive_fans}) {
            if (dest) ids = joined(std::move(ids), dest->to_agents);
        }
        auto agents = agents_of(db, clinic, ids);
        if (!agents) return agents.error();
        out.agents = std::move(*agents);
        const auto it = out.agents.find(agent);
        if (it == out.agents.end()) {
            out.refused = refusal{404, "客服不存在"};
            return out;
        }
        out.agent = it->second;
        if (!out.agent.active) {
            out.already_inactive = true;
            return out;
        }
        const std::vector<std::uint64_t> from{agent};
        struct part {
            owner_role role;
            const std::optional<fan_destination>& dest;
            role_plan& plan;
        };
        const part parts[] = {{owner_role::consultant, d.consultant_fans, out.consultant},
                              {owner_role::exclusive, d.exclusive_fans, out.exclusive}};
        bool unnamed = false;
        for (const auto& p : parts) {
            auto fans = fans_of(db, clinic, p.role, from, true);
            if (!fans) return fans.error();
            p.plan.fans = std::move(*fans);
            unnamed = unnamed || (!p.plan.fans.empty() && !p.dest);
        }
        if (unnamed) {
            const auto c = std::to_string(out.consultant.fans.size());
            const auto e = std::to_string(out.exclusive.fans.size());
            out.refused = refusal{409,
                                  "该客服仍是" + c + "位顾客的顾问、" + e +
                                      "位顾客的专属客服，请指定这些顾客的去向后再停用",
                                  ",\"consultant_fans\":" + c + ",\"exclusive_fans\":" + e};
            return out;
        }
        // Every destination checked before anything is written.
        for (const auto& p : parts) {
            if (p.plan.fans.empty()) continue;
            if (auto bad = check_agents(out.agents, from, p.role, *p.dest, agent)) {
                out.refused = std::move(bad);
                return out;
            }
        }
        for (const auto& p : parts) {
            if (p.plan.fans.empty()) continue;
            const std::uint64_t seed =
                p.dest->how == distribution::average ? storage::random_row_token() : 0;
            p.plan.plan =
                plan_reassignment(p.plan.fans.size(), p.dest->to_agents, p.dest->how, seed);
            auto written = write_plan(db, self, clinic, admin, p.role, p.plan);
            if (!written) return written.error();
            p.plan.changed = *written;
        }
        std::vector<storage::sql_value> a{agent, clinic};
        if (auto u = db.execute("UPDATE agents SET active = 0 WHERE id = ? AND clinic_id = ?", a);
            !u) {
            return u.error();
        }
        audit_entry e;
        e.clinic = clinic;
        e.agent = admin;
        e.action = "agent.deactivate";
        e.subject = "agent:" + std::to_string(agent);
        e.detail_json = "{\"consultant_fans\":" + std::to_string(out.consultant.changed) +
                        ",\"exclusive_fans\":" + std::to_string(out.exclusive.changed) + "}";
        if (auto r = append_audit(db, e); !r) return r.error();
        if (auto c = db.commit(); !c) return c.error();
        return out;
    };
    auto done = co_await self->mysql.run(work);
    if (!done) co_return unavailable("admin.deactivate_unavailable", done.error());
    if (done->refused) co_return refuse(*done->refused);
    const std::string who = agent_ref_json(agent, done->agent.name);
    if (done->already_inactive) {
        co_return ok_json("{\"deactivated\":" + who + ",\"already_inactive\":true}");
    }
    // Offline at once: its session locks are released (its sign-in sessions end at their next
    // request, which finds the agent inactive); the clinic's consoles are told (lock_notices).
    const auto now = self->agents->now();
    auto off = co_await self->agents->live.sign_out(clinic, std::to_string(agent), now);
    if (!off) log::warn("admin.deactivate_presence_failed", {{"reason", off.error().message()}});
    if (off && (off->went_offline || !off->released_fans.empty())) {
        co_await announce_offline(self->mysql, self->agents->live, clinic, agent,
                                  done->agent.name, off->released_fans, "offline", now);
    }
    log::info("admin.agent_deactivated", {{"clinic", clinic}, {"agent", admin}, {"target", agent}});
    const auto part_json = [&](const role_plan& p, const std::optional<fan_destination>& dest) {
        return "{" +
               plan_members(p, dest ? dest->to_agents : std::vector<std::uint64_t>{},
                            done->agents) +
               "}";
    };
    co_return ok_json("{\"deactivated\":" + who +
                      ",\"consultant_fans\":" + part_json(done->consultant, d.consultant_fans) +
                      ",\"exclusive_fans\":" + part_json(done->exclusive, d.exclusive_fans) + "}");
}

}  // namespace scrm::gateway

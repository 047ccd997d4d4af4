// decide(): the rules of DESIGN.md §5 in order (consultant, session, exclusive, pool), then the
// auto-reply priority with fall-through and suppression, and the receipt when asked for. The hot
// path (no receipt) makes one pass over the agents and reuses the caller's buffers.
#include "scrm/routing/decide.hpp"

#include <algorithm>
#include <string_view>

#include "scrm/routing/hours.hpp"

namespace scrm::routing {

namespace {

// Appends to a vector of ids, overwriting the strings already there instead of destroying them,
// so that ids longer than the small-string buffer keep their heap storage from call to call.
class id_list {
public:
    explicit id_list(std::vector<std::string>& v) noexcept : v_(v) {}
    void push(std::string_view id) {
        if (n_ < v_.size()) {
            v_[n_].assign(id);
        } else {
            v_.emplace_back(id);
        }
        ++n_;
    }
    std::size_t size() const noexcept { return n_; }
    // Drops the leftovers of an earlier call and sorts by id (agents usually arrive sorted).
    void finish() {
        v_.resize(n_);
        if (!std::is_sorted(v_.begin(), v_.end())) std::sort(v_.begin(), v_.end());
    }

private:
    std::vector<std::string>& v_;
    std::size_t n_ = 0;
};

class exclusion_list {
public:
    explicit exclusion_list(std::vector<exclusion>& v) noexcept : v_(v) {}
    void push(std::string_view id, exclusion_reason why) {
        if (n_ < v_.size()) {
            v_[n_].agent.assign(id);
            v_[n_].reason = why;
        } else {
            v_.push_back(exclusion{std::string(id), why});
        }
        ++n_;
    }
    void finish() {
        v_.resize(n_);
        const auto by_agent = [](const exclusion& a, const exclusion& b) {
            return a.agent < b.agent;
        };
        if (!std::is_sorted(v_.begin(), v_.end(), by_agent))
            std::sort(v_.begin(), v_.end(), by_agent);
    }

private:
    std::vector<exclusion>& v_;
    std::size_t n_ = 0;
};

void assign(std::optional<std::string>& dst, std::string_view id) {
    if (dst) {
        dst->assign(id);
    } else {
        dst.emplace(id);
    }
}

const agent_state* find_agent(const std::vector<agent_state>& agents,
                              std::string_view id) noexcept {
    for (const agent_state& a : agents) {
        if (a.id == id) return &a;
    }
    return nullptr;
}

// Why `a` is not a pool candidate for this fan, or nullopt when it is one.
std::optional<exclusion_reason> pool_exclusion(const agent_state& a, const snapshot& s) noexcept {
    if (!a.online) return exclusion_reason::offline;
    if (!a.can_receive) return exclusion_reason::no_permission;
    if (s.config.chain_store_mode && s.fan.store) {
        // Narrow to the fan's store; never spill to other stores or to agents of no store.
        if (!a.store) return exclusion_reason::no_store;
        if (*a.store != *s.fan.store) return exclusion_reason::other_store;
    }
    return std::nullopt;
}

// Even distribution: the lowest load, then the least recently assigned, then the smallest id.
bool picks_before(const agent_state& a, const agent_state& b) noexcept {
    if (a.load != b.load) return a.load < b.load;
    if (a.last_assigned != b.last_assigned) return a.last_assigned < b.last_assigned;
    return a.id < b.id;
}

exclusion_reason lost_on(const agent_state& loser, const agent_state& winner) noexcept {
    if (loser.load != winner.load) return exclusion_reason::higher_load;
    if (loser.last_assigned != winner.last_assigned)
        return exclusion_reason::assigned_more_recently;
    return exclusion_reason::larger_id;
}

tie_break criterion_of(exclusion_reason r) noexcept {
    switch (r) {
        case exclusion_reason::higher_load: return tie_break::load;
        case exclusion_reason::assigned_more_recently: return tie_break::last_assigned;
        case exclusion_reason::larger_id: return tie_break::id;
        default: return tie_break::none;
    }
}

bool switched_off(const clinic_config& c, auto_reply_kind k) noexcept {
    return std::find(c.auto_reply_off.begin(), c.auto_reply_off.end(), k) != c.auto_reply_off.end();
}

struct receipt_lists {
    id_list candidates;
    exclusion_list excluded;
};

// Rule 4. Fills targets and rule; `owner`/`assign_exclusive` only for `assigned`.
void route_pool(const snapshot& s, decision& out, id_list& targets, receipt_lists* rl,
                receipt* rc) {
    const clinic_config& cfg = s.config;
    // With an exclusive agent E who failed rule 3, E is offline or lacks the permission, so E is
    // never a pool candidate here: "every candidate except E" is simply every candidate.
    const bool has_exclusive = cfg.exclusive_mode && s.fan.exclusive_agent.has_value();
    const bool pick = cfg.exclusive_mode && !has_exclusive;
    const agent_state* best = nullptr;
    std::size_t candidates = 0;
    if (!pick) out.targets.reserve(s.agents.size());  // one allocation at most, none when reused
    for (const agent_state& a : s.agents) {
        if (const auto why = pool_exclusion(a, s)) {
            // For a pick, the receipt pass below lists every exclusion in agent order.
            if (rl && !pick) rl->excluded.push(a.id, *why);
            continue;
        }
        ++candidates;
        if (rl) rl->candidates.push(a.id);
        if (pick) {
            if (best == nullptr || picks_before(a, *best)) best = &a;
        } else {
            targets.push(a.id);
        }
    }
    if (candidates == 0) {
        out.rule = route_rule::none;
        if (rl && pick) {
            for (const agent_state& a : s.agents) rl->excluded.push(a.id, *pool_exclusion(a, s));
        }
        return;
    }
    if (!pick) {
        out.rule = has_exclusive ? route_rule::exclusive_offline_shared : route_rule::shared;
        return;
    }
    out.rule = route_rule::assigned;
    targets.push(best->id);
    assign(out.owner, best->id);
    assign(out.assign_exclusive, best->id);
    if (rl == nullptr || rc == nullptr) return;
    // Receipt only: why each other agent is out — not a candidate, or lost the pick — and the
    // criterion that separated the winner from the runner-up (the deepest any loser needed).
    tie_break tie = tie_break::only_candidate;
    for (const agent_state& a : s.agents) {
        if (&a == best) continue;
        if (const auto why = pool_exclusion(a, s)) {
            rl->excluded.push(a.id, *why);
            continue;
        }
        const exclusion_reason why = lost_on(a, *best);
        rl->excluded.push(a.id, why);
        tie = std::max(tie, criterion_of(why));
    }
    rc->tie = tie;
}

}  // namespace

void decide(const snapshot& s, decision& out, with_receipt wr) noexcept {
    const clinic_config& cfg = s.config;
    if (wr == with_receipt::yes) {
        if (!out.receipt) out.receipt.emplace();
        out.receipt->tie = tie_break::none;
        out.receipt->stale_session_holder.reset();
    } else {
        out.receipt.reset();
    }
    receipt* rc = out.receipt ? &*out.receipt : nullptr;
    std::optional<receipt_lists> lists;
    if (rc) {
        rc->candidates.reserve(s.agents.size());
        rc->excluded.reserve(s.agents.size());
        lists.emplace(receipt_lists{id_list{rc->candidates}, exclusion_list{rc->excluded}});
    }
    receipt_lists* rl = lists ? &*lists : nullptr;

    id_list targets{out.targets};
    out.owner.reset();
    out.assign_exclusive.reset();

    const agent_state* holder =
        s.session_holder ? find_agent(s.agents, *s.session_holder) : nullptr;
    const bool holder_online = holder != nullptr && holder->online;
    if (rc && s.session_holder && !holder_online)
        assign(rc->stale_session_holder, *s.session_holder);

    // Rules 1–3 name one owner; the pool (rule 4) may name none.
    std::string_view owner;
    bool owned = false;
    bool consultant_offline = false;
    if (cfg.consultant_mode && s.fan.consultant) {
        // Rule 1: the consultant alone, online or not, whatever permission or store.
        out.rule = route_rule::consultant;
        owned = true;
        owner = *s.fan.consultant;
        const agent_state* c = find_agent(s.agents, owner);
        consultant_offline = c == nullptr || !c->online;
    } else if (holder_online) {
        // Rule 2: an offline holder's lock is ignored (the shell releases it).
        out.rule = route_rule::session;
        owned = true;
        owner = *s.session_holder;
    } else if (const agent_state* e = cfg.exclusive_mode && s.fan.exclusive_agent
                                          ? find_agent(s.agents, *s.fan.exclusive_agent)
                                          : nullptr;
               e != nullptr && e->online && e->can_receive) {
        // Rule 3: the exclusive agent, whatever its store.
        out.rule = route_rule::exclusive;
        owned = true;
        owner = e->id;
    } else {
        route_pool(s, out, targets, rl, rc);
    }
    if (owned) {
        targets.push(owner);
        assign(out.owner, owner);
        if (rl) {
            rl->candidates.push(owner);
            for (const agent_state& a : s.agents) {
                if (a.id != owner) rl->excluded.push(a.id, exclusion_reason::not_owner);
            }
        }
    }
    targets.finish();

    // Auto-replies: the first kind in priority order that applies and is switched on, unless the
    // shell says one was sent or an agent replied within the suppression window.
    const hours_result hours = evaluate_hours(cfg, s.now);
    const std::array<bool, auto_reply_kind_count> applies{
        out.rule == route_rule::consultant && consultant_offline,
        !is_open(hours.state),
        out.rule == route_rule::none,
    };
    const std::array<bool, auto_reply_kind_count> enabled{
        cfg.consultant_offline_prompt_enabled,
        cfg.auto_reply_enabled && !switched_off(cfg, auto_reply_kind::after_hours),
        cfg.auto_reply_enabled && !switched_off(cfg, auto_reply_kind::no_agent),
    };
    out.auto_reply.reset();
    for (std::size_t k = 0; k < auto_reply_kind_count; ++k) {
        auto_reply_status st = auto_reply_status::not_applicable;
        if (!applies[k]) {
            st = auto_reply_status::not_applicable;
        } else if (!enabled[k]) {
            st = auto_reply_status::switched_off;
        } else if (s.auto_reply_suppressed) {
            st = auto_reply_status::suppressed;
        } else if (out.auto_reply) {
            st = auto_reply_status::outranked;
        } else {
            st = auto_reply_status::sent;
            out.auto_reply = static_cast<auto_reply_kind>(k);
        }
        if (rc) rc->auto_replies[k] = st;
    }

    if (rc) {
        rc->hours = hours.state;
        rc->local = hours.local;
        lists->candidates.finish();
        lists->excluded.finish();
    }
}

decision decide(const snapshot& s, with_receipt r) noexcept {
    decision d;
    decide(s, d, r);
    return d;
}

}  // namespace scrm::routing

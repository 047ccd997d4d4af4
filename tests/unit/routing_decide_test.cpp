// The routing policy (DESIGN.md §5) branch by branch: each rule and what outranks what, the pool
// with chain-store narrowing and the even-distribution tie-breaks, the auto-reply priority with
// its switches, fall-through and suppression, the receipt, validate(), and buffer reuse.
#include <catch2/catch.hpp>

#include <functional>
#include <initializer_list>

#include "scrm/routing/decide.hpp"
#include "scrm/routing/time_text.hpp"

using namespace scrm::routing;
using std::chrono::minutes;

namespace {

using ids = std::vector<std::string>;
using tweak = std::function<void(snapshot&)>;
constexpr auto consultant_offline = auto_reply_kind::consultant_offline;
constexpr auto after_hours = auto_reply_kind::after_hours;
constexpr auto no_agent = auto_reply_kind::no_agent;

// ---- snapshots -------------------------------------------------------------------------------

agent_state on(std::string id, std::optional<std::string> store = std::nullopt) {
    return agent_state{std::move(id), std::move(store), true, true, 0, 0};
}
agent_state off(std::string id, std::optional<std::string> store = std::nullopt) {
    auto a = on(std::move(id), std::move(store));
    a.online = false;
    return a;
}
agent_state no_perm(std::string id, std::optional<std::string> store = std::nullopt) {
    auto a = on(std::move(id), std::move(store));
    a.can_receive = false;
    return a;
}
agent_state loaded(std::string id, std::int64_t load, std::int64_t last_assigned = 0) {
    auto a = on(std::move(id));
    a.load = load;
    a.last_assigned = last_assigned;
    return a;
}

std::chrono::sys_seconds at(std::string_view rfc3339) {
    const auto t = parse_timestamp(rfc3339);
    REQUIRE(t);
    return *t;
}

// A clinic at +08:00 in shared mode, every switch on, no working hours, Monday 2026-11-23 10:00
// local, and a fan with no consultant, exclusive agent, store or session.
snapshot clinic(std::vector<agent_state> agents, std::initializer_list<tweak> tweaks = {}) {
    snapshot s;
    s.now = at("2026-11-23T10:00:00+08:00");
    s.config.utc_offset = minutes{480};
    s.agents = std::move(agents);
    s.fan.openid = "o1";
    for (const auto& t : tweaks) t(s);
    return s;
}

const tweak exclusive_mode = [](snapshot& s) { s.config.exclusive_mode = true; };
const tweak chain_stores = [](snapshot& s) { s.config.chain_store_mode = true; };
const tweak suppressed = [](snapshot& s) { s.auto_reply_suppressed = true; };
const tweak master_off = [](snapshot& s) { s.config.auto_reply_enabled = false; };
const tweak prompt_off = [](snapshot& s) { s.config.consultant_offline_prompt_enabled = false; };
// Weekdays 09:00–18:00, and the message arrives at 20:00 on that Monday.
const tweak after_work = [](snapshot& s) {
    s.config.work_hours = {work_window{{1, 2, 3, 4, 5}, minutes{9 * 60}, minutes{18 * 60}}};
    s.now = at("2026-11-23T20:00:00+08:00");
};
tweak consultant(std::string id) {
    return [id](snapshot& s) {
        s.config.consultant_mode = true;
        s.fan.consultant = id;
    };
}
tweak consultant_mode_off_with(std::string id) {
    return [id](snapshot& s) { s.fan.consultant = id; };
}
tweak exclusive_agent(std::string id) {
    return [id](snapshot& s) {
        s.config.exclusive_mode = true;
        s.fan.exclusive_agent = id;
    };
}
tweak fan_store(std::string store) {
    return [store](snapshot& s) { s.fan.store = store; };
}
tweak session(std::string holder) {
    return [holder](snapshot& s) { s.session_holder = holder; };
}
// Weekdays 09:00–18:00 at time zone `tz`, the message arriving at `now`.
tweak weekdays_9_18(std::string now, std::string tz) {
    return [now, tz](snapshot& s) {
        s.config.work_hours = {work_window{{1, 2, 3, 4, 5}, minutes{9 * 60}, minutes{18 * 60}}};
        s.config.utc_offset = *parse_utc_offset(tz);
        s.now = *parse_timestamp(now);
    };
}
tweak switched_off(auto_reply_kind k) {
    return [k](snapshot& s) { s.config.auto_reply_off.push_back(k); };
}

// ---- expected decisions ----------------------------------------------------------------------

decision expect(route_rule rule, ids targets, std::optional<std::string> owner = std::nullopt,
                std::optional<std::string> assign = std::nullopt,
                std::optional<auto_reply_kind> reply = std::nullopt) {
    return decision{rule, std::move(targets), std::move(owner), std::move(assign), reply, {}};
}
decision shared(ids targets, std::optional<auto_reply_kind> reply = std::nullopt) {
    return expect(route_rule::shared, std::move(targets), {}, {}, reply);
}
decision nobody(std::optional<auto_reply_kind> reply) {
    return expect(route_rule::none, {}, {}, {}, reply);
}
decision assigned(const std::string& id) {
    return expect(route_rule::assigned, {id}, id, id);
}
decision owned(route_rule rule, const std::string& id,
               std::optional<auto_reply_kind> reply = std::nullopt) {
    return expect(rule, {id}, id, {}, reply);
}
decision others_share(ids targets, std::optional<auto_reply_kind> reply = std::nullopt) {
    return expect(route_rule::exclusive_offline_shared, std::move(targets), {}, {}, reply);
}

struct row {
    std::string name;
    snapshot input;
    decision expected;
};

}  // namespace

TEST_CASE("rule 1: the consultant alone, online or not, whatever permission or store") {
    using R = route_rule;
    auto [name, input, expected] = GENERATE(values<row>({
        {"online consultant, others online", clinic({on("a1"), on("c1")}, {consultant("c1")}),
         owned(R::consultant, "c1")},
        {"offline consultant still owns it, prompt",
         clinic({on("a1"), off("c1")}, {consultant("c1")}),
         owned(R::consultant, "c1", consultant_offline)},
        {"offline consultant and nobody else: no no_agent", clinic({off("c1")}, {consultant("c1")}),
         owned(R::consultant, "c1", consultant_offline)},
        {"consultant without the permission", clinic({on("a1"), no_perm("c1")}, {consultant("c1")}),
         owned(R::consultant, "c1")},
        {"consultant of another store in chain-store mode",
         clinic({on("a1", "s1"), on("c1", "s2")},
                {chain_stores, fan_store("s1"), consultant("c1")}),
         owned(R::consultant, "c1")},
        {"consultant outranks an online session holder",
         clinic({on("a1"), on("c1")}, {consultant("c1"), session("a1")}),
         owned(R::consultant, "c1")},
        {"consultant outranks the online exclusive agent",
         clinic({on("a1"), on("c1")}, {consultant("c1"), exclusive_agent("a1")}),
         owned(R::consultant, "c1")},
        {"offline consultant outranks an online session holder",
         clinic({on("a1"), off("c1")}, {consultant("c1"), session("a1")}),
         owned(R::consultant, "c1", consultant_offline)},
        {"consultant mode off ignores the consultant",
         clinic({on("a1"), on("c1")}, {consultant_mode_off_with("c1")}), shared({"a1", "c1"})},
        {"consultant mode off, consultant offline: no prompt",
         clinic({on("a1"), off("c1")}, {consultant_mode_off_with("c1")}), shared({"a1"})},
        {"consultant mode on, fan without consultant: pool",
         clinic({on("a1"), on("a2")}, {[](snapshot& s) { s.config.consultant_mode = true; }}),
         shared({"a1", "a2"})},
    }));
    CAPTURE(name, input);
    CHECK(decide(input) == expected);
}

TEST_CASE("rule 2: the online session holder alone, an offline holder's lock is ignored") {
    using R = route_rule;
    auto [name, input, expected] = GENERATE(values<row>({
        {"holder online", clinic({on("a1"), on("a2")}, {session("a2")}), owned(R::session, "a2")},
        {"holder without the permission", clinic({on("a1"), no_perm("a2")}, {session("a2")}),
         owned(R::session, "a2")},
        {"holder of another store in chain-store mode",
         clinic({on("a1", "s1"), on("a2", "s2")}, {chain_stores, fan_store("s1"), session("a2")}),
         owned(R::session, "a2")},
        {"session outranks the online exclusive agent",
         clinic({on("a1"), on("a2")}, {exclusive_agent("a1"), session("a2")}),
         owned(R::session, "a2")},
        {"session in exclusive mode does not assign",
         clinic({on("a1"), on("a2")}, {exclusive_mode, session("a2")}), owned(R::session, "a2")},
        {"holder offline: shared pool", clinic({on("a1"), off("a2")}, {session("a2")}),
         shared({"a1"})},
        {"holder offline: exclusive pick among the others",
         clinic({loaded("a1", 5), off("a2"), loaded("a3", 1)}, {exclusive_mode, session("a2")}),
         assigned("a3")},
        {"holder offline, exclusive agent online: rule 3",
         clinic({on("a1"), off("a2")}, {exclusive_agent("a1"), session("a2")}),
         owned(R::exclusive, "a1")},
        {"holder offline and nobody else: none", clinic({off("a2")}, {session("a2")}),
         nobody(no_agent)},
    }));
    CAPTURE(name, input);
    CHECK(decide(input) == expected);
}

TEST_CASE("rule 3 and its failure: the exclusive agent, or every other candidate") {
    using R = route_rule;
    auto [name, input, expected] = GENERATE(values<row>({
        {"exclusive agent online", clinic({on("a1"), on("e1")}, {exclusive_agent("e1")}),
         owned(R::exclusive, "e1")},
        {"exclusive agent of another store in chain-store mode",
         clinic({on("a1", "s1"), on("e1", "s2")},
                {chain_stores, fan_store("s1"), exclusive_agent("e1")}),
         owned(R::exclusive, "e1")},
        {"exclusive agent without a store in chain-store mode",
         clinic({on("a1", "s1"), on("e1")}, {chain_stores, fan_store("s1"), exclusive_agent("e1")}),
         owned(R::exclusive, "e1")},
        {"exclusive agent offline: the others share it",
         clinic({on("a1"), off("e1"), on("a3")}, {exclusive_agent("e1")}),
         others_share({"a1", "a3"})},
        {"exclusive agent without permission: the others share it",
         clinic({on("a1"), no_perm("e1")}, {exclusive_agent("e1")}), others_share({"a1"})},
        {"others share it even with unequal loads (no pick)",
         clinic({loaded("a1", 9), off("e1"), loaded("a3", 0)}, {exclusive_agent("e1")}),
         others_share({"a1", "a3"})},
        {"E the only agent, offline: none", clinic({off("e1")}, {exclusive_agent("e1")}),
         nobody(no_agent)},
        {"E offline, the others lack the permission: none",
         clinic({no_perm("a1"), off("e1")}, {exclusive_agent("e1")}), nobody(no_agent)},
        {"E offline in chain-store mode: only the fan's store shares it",
         clinic({on("a1", "s1"), off("e1", "s1"), on("a2", "s2"), on("hq")},
                {chain_stores, fan_store("s1"), exclusive_agent("e1")}),
         others_share({"a1"})},
        {"E offline in chain-store mode, store empty: none, never spills",
         clinic({off("e1", "s1"), on("a2", "s2")},
                {chain_stores, fan_store("s1"), exclusive_agent("e1")}),
         nobody(no_agent)},
        {"exclusive mode off: the exclusive agent is just a candidate",
         clinic({on("a1"), on("e1")}, {[](snapshot& s) { s.fan.exclusive_agent = "e1"; }}),
         shared({"a1", "e1"})},
    }));
    CAPTURE(name, input);
    CHECK(decide(input) == expected);
}

TEST_CASE("pool: shared mode notifies every candidate, none when there is none") {
    auto [name, input, expected] = GENERATE(values<row>({
        {"every online permitted agent", clinic({on("a1"), on("a2"), on("a3")}),
         shared({"a1", "a2", "a3"})},
        {"offline agents are skipped", clinic({on("a1"), off("a2")}), shared({"a1"})},
        {"agents without the permission are skipped", clinic({no_perm("a1"), on("a2")}),
         shared({"a2"})},
        {"nobody online: none + no_agent", clinic({off("a1"), off("a2")}), nobody(no_agent)},
        {"only unpermitted agents online: none", clinic({no_perm("a1")}), nobody(no_agent)},
        {"no agents at all: none", clinic({}), nobody(no_agent)},
        {"targets sorted by id whatever the input order",
         clinic({on("b"), on("a10"), on("a9"), on("A")}), shared({"A", "a10", "a9", "b"})},
        {"a fan's store is ignored outside chain-store mode",
         clinic({on("a1", "s1"), on("a2", "s2"), on("hq")}, {fan_store("s1")}),
         shared({"a1", "a2", "hq"})},
    }));
    CAPTURE(name, input);
    CHECK(decide(input) == expected);
}

TEST_CASE("pool: chain-store mode narrows to the fan's store, never spills") {
    auto [name, input, expected] = GENERATE(values<row>({
        {"store fan: that store's agents only",
         clinic({on("a1", "s1"), on("a2", "s2"), on("hq"), on("a3", "s1")},
                {chain_stores, fan_store("s1")}),
         shared({"a1", "a3"})},
        {"store fan, store offline: none, not other stores",
         clinic({off("a1", "s1"), on("a2", "s2")}, {chain_stores, fan_store("s1")}),
         nobody(no_agent)},
        {"store fan, only agents without a store online: none",
         clinic({on("hq"), off("a1", "s1")}, {chain_stores, fan_store("s1")}), nobody(no_agent)},
        {"fan without a store: every candidate, store or not",
         clinic({on("a1", "s1"), on("a2", "s2"), on("hq")}, {chain_stores}),
         shared({"a1", "a2", "hq"})},
        {"exclusive pick stays inside the store",
         clinic({loaded("a1", 5), loaded("a2", 0), loaded("a3", 2)}, {chain_stores, exclusive_mode,
                                                                      fan_store("s1"),
                                                                      [](snapshot& s) {
                                                                          s.agents[0].store = "s1";
                                                                          s.agents[1].store = "s2";
                                                                          s.agents[2].store = "s1";
                                                                      }}),
         assigned("a3")},
        {"store ids compare exactly",
         clinic({on("a1", "S1"), on("a2", "s1")}, {chain_stores, fan_store("s1")}), shared({"a2"})},
    }));
    CAPTURE(name, input);
    CHECK(decide(input) == expected);
}

TEST_CASE("pool: exclusive mode picks by load, then least recently assigned, then smallest id") {
    auto [name, input, expected] = GENERATE(values<row>({
        {"lowest load",
         clinic({loaded("a1", 3), loaded("a2", 1), loaded("a3", 2)}, {exclusive_mode}),
         assigned("a2")},
        {"load beats recency",
         clinic({loaded("a1", 1, 100), loaded("a2", 0, 9000)}, {exclusive_mode}), assigned("a2")},
        {"equal load: least recently assigned",
         clinic({loaded("a1", 1, 1000), loaded("a2", 1, 500), loaded("a3", 1, 700)},
                {exclusive_mode}),
         assigned("a2")},
        {"never assigned (0) counts as least recent",
         clinic({loaded("a1", 0, 1), loaded("a2", 0, 0)}, {exclusive_mode}), assigned("a2")},
        {"recency beats id", clinic({loaded("a1", 0, 10), loaded("b1", 0, 5)}, {exclusive_mode}),
         assigned("b1")},
        {"full tie: smallest id", clinic({loaded("a2", 0), loaded("a1", 0)}, {exclusive_mode}),
         assigned("a1")},
        {"ids compare as plain strings: a10 < a9",
         clinic({loaded("a9", 0), loaded("a10", 0)}, {exclusive_mode}), assigned("a10")},
        {"upper case sorts before lower case",
         clinic({loaded("b", 0), loaded("B", 0)}, {exclusive_mode}), assigned("B")},
        {"offline agent with the lowest load is not picked",
         clinic({loaded("a1", 4), off("a0")}, {exclusive_mode}), assigned("a1")},
        {"unpermitted agent with the lowest load is not picked",
         clinic({loaded("a1", 4), no_perm("a0")}, {exclusive_mode}), assigned("a1")},
        {"single candidate", clinic({off("a1"), on("a2")}, {exclusive_mode}), assigned("a2")},
        {"no candidate: none, no assignment", clinic({off("a1")}, {exclusive_mode}),
         nobody(no_agent)},
    }));
    CAPTURE(name, input);
    CHECK(decide(input) == expected);
}

TEST_CASE("auto-replies: priority, switches, fall-through and suppression") {
    using R = route_rule;
    auto [name, input, expected] = GENERATE(values<row>({
        {"consultant_offline outranks after_hours",
         clinic({off("c1")}, {consultant("c1"), after_work}),
         owned(R::consultant, "c1", consultant_offline)},
        {"prompt off: after_hours still answers",
         clinic({off("c1")}, {consultant("c1"), after_work, prompt_off}),
         owned(R::consultant, "c1", after_hours)},
        {"prompt off, in hours: nothing (no no_agent under rule 1)",
         clinic({off("c1")}, {consultant("c1"), prompt_off}), owned(R::consultant, "c1")},
        {"prompt off, after hours, master off: nothing",
         clinic({off("c1")}, {consultant("c1"), after_work, prompt_off, master_off}),
         owned(R::consultant, "c1")},
        {"the master switch does not govern the prompt",
         clinic({off("c1")}, {consultant("c1"), master_off}),
         owned(R::consultant, "c1", consultant_offline)},
        {"consultant_offline in auto_reply_off is ignored (its own switch governs it)",
         clinic({off("c1")}, {consultant("c1"), switched_off(consultant_offline)}),
         owned(R::consultant, "c1", consultant_offline)},
        {"online consultant after hours: after_hours",
         clinic({on("c1")}, {consultant("c1"), after_work}),
         owned(R::consultant, "c1", after_hours)},
        {"session after hours: after_hours", clinic({on("a1")}, {session("a1"), after_work}),
         owned(R::session, "a1", after_hours)},
        {"exclusive after hours: after_hours",
         clinic({on("a1")}, {exclusive_agent("a1"), after_work}),
         owned(R::exclusive, "a1", after_hours)},
        {"assigned after hours: after_hours, still assigned",
         clinic({on("a1")}, {exclusive_mode, after_work}),
         expect(R::assigned, {"a1"}, "a1", "a1", after_hours)},
        {"shared after hours: after_hours", clinic({on("a1")}, {after_work}),
         shared({"a1"}, after_hours)},
        {"after_hours outranks no_agent", clinic({off("a1")}, {after_work}), nobody(after_hours)},
        {"after_hours off falls through to no_agent",
         clinic({off("a1")}, {after_work, switched_off(after_hours)}), nobody(no_agent)},
        {"after_hours off with agents online: nothing",
         clinic({on("a1")}, {after_work, switched_off(after_hours)}), shared({"a1"})},
        {"no_agent off, in hours: nothing", clinic({off("a1")}, {switched_off(no_agent)}),
         nobody(std::nullopt)},
        {"no_agent off after hours: after_hours",
         clinic({off("a1")}, {after_work, switched_off(no_agent)}), nobody(after_hours)},
        {"both off: nothing",
         clinic({off("a1")}, {after_work, switched_off(after_hours), switched_off(no_agent)}),
         nobody(std::nullopt)},
        {"master off: no after_hours, no no_agent", clinic({off("a1")}, {after_work, master_off}),
         nobody(std::nullopt)},
        {"suppressed: no consultant_offline", clinic({off("c1")}, {consultant("c1"), suppressed}),
         owned(R::consultant, "c1")},
        {"suppressed: no after_hours", clinic({on("a1")}, {after_work, suppressed}),
         shared({"a1"})},
        {"suppressed: no no_agent", clinic({off("a1")}, {suppressed}), nobody(std::nullopt)},
        {"suppression does not change the routing",
         clinic({loaded("a1", 2), loaded("a2", 1)}, {exclusive_mode, suppressed}), assigned("a2")},
        {"in hours, agents online: nothing", clinic({on("a1")}), shared({"a1"})},
    }));
    CAPTURE(name, input);
    CHECK(decide(input) == expected);
}

TEST_CASE("working hours feed after_hours in the clinic's time zone") {
    auto [name, input, expected] = GENERATE(values<row>({
        {"start is inclusive",
         clinic({on("a1")}, {weekdays_9_18("2026-11-23T09:00:00+08:00", "+08:00")}),
         shared({"a1"})},
        {"a second before the start",
         clinic({on("a1")}, {weekdays_9_18("2026-11-23T08:59:59+08:00", "+08:00")}),
         shared({"a1"}, after_hours)},
        {"end is exclusive",
         clinic({on("a1")}, {weekdays_9_18("2026-11-23T18:00:00+08:00", "+08:00")}),
         shared({"a1"}, after_hours)},
        {"a second before the end",
         clinic({on("a1")}, {weekdays_9_18("2026-11-23T17:59:59+08:00", "+08:00")}),
         shared({"a1"})},
        {"UTC now inside local hours",
         clinic({on("a1")}, {weekdays_9_18("2026-11-23T01:00:00Z", "+08:00")}), shared({"a1"})},
        {"UTC now before local hours",
         clinic({on("a1")}, {weekdays_9_18("2026-11-23T00:59:59Z", "+08:00")}),
         shared({"a1"}, after_hours)},
        {"a negative offset moves the weekday back",  // Monday 03:00 UTC = Sunday 21:30 at -05:30
         clinic({on("a1")}, {weekdays_9_18("2026-11-23T03:00:00Z", "-05:30")}),
         shared({"a1"}, after_hours)},
        {"Sunday is not listed",
         clinic({on("a1")}, {weekdays_9_18("2026-11-29T10:00:00+08:00", "+08:00")}),
         shared({"a1"}, after_hours)},
    }));
    CAPTURE(name, input);
    CHECK(decide(input) == expected);
}

TEST_CASE("receipt: candidates, why each other agent is out, and the tie-break") {
    using X = exclusion_reason;
    struct receipt_row {
        std::string name;
        snapshot input;
        ids candidates;
        std::vector<exclusion> excluded;
        tie_break tie;
    };
    auto [name, input, candidates, excluded, tie] = GENERATE(values<receipt_row>({
        {"shared: offline before no permission",
         clinic({on("a1"), off("a2"), no_perm("a3"),
                 [] {
                     auto a = off("a4");
                     a.can_receive = false;
                     return a;
                 }()}),
         {"a1"},
         {{"a2", X::offline}, {"a3", X::no_permission}, {"a4", X::offline}},
         tie_break::none},
        {"chain store: other store and no store",
         clinic({on("a1", "s1"), on("a2", "s2"), on("hq"), off("a3", "s2")},
                {chain_stores, fan_store("s1")}),
         {"a1"},
         {{"a2", X::other_store}, {"a3", X::offline}, {"hq", X::no_store}},
         tie_break::none},
        {"consultant: everyone else is not the owner",
         clinic({on("a1"), off("c1"), off("z")}, {consultant("c1")}),
         {"c1"},
         {{"a1", X::not_owner}, {"z", X::not_owner}},
         tie_break::none},
        {"session: everyone else is not the owner",
         clinic({on("a1"), on("a2")}, {session("a2")}),
         {"a2"},
         {{"a1", X::not_owner}},
         tie_break::none},
        {"exclusive: everyone else is not the owner",
         clinic({on("a1"), on("e1")}, {exclusive_agent("e1")}),
         {"e1"},
         {{"a1", X::not_owner}},
         tie_break::none},
        {"exclusive offline: E excluded as offline",
         clinic({on("a1"), off("e1")}, {exclusive_agent("e1")}),
         {"a1"},
         {{"e1", X::offline}},
         tie_break::none},
        {"pick by load",
         clinic({loaded("a1", 3), loaded("a2", 1), off("a3")}, {exclusive_mode}),
         {"a1", "a2"},
         {{"a1", X::higher_load}, {"a3", X::offline}},
         tie_break::load},
        {"pick by recency: the runner-up decides the tie-break",
         clinic({loaded("a1", 5), loaded("a2", 1, 50), loaded("a3", 1, 10)}, {exclusive_mode}),
         {"a1", "a2", "a3"},
         {{"a1", X::higher_load}, {"a2", X::assigned_more_recently}},
         tie_break::last_assigned},
        {"pick by id",
         clinic({loaded("a2", 0), loaded("a1", 0), loaded("a3", 0, 7)}, {exclusive_mode}),
         {"a1", "a2", "a3"},
         {{"a2", X::larger_id}, {"a3", X::assigned_more_recently}},
         tie_break::id},
        {"only candidate",
         clinic({on("a1"), no_perm("a2")}, {exclusive_mode}),
         {"a1"},
         {{"a2", X::no_permission}},
         tie_break::only_candidate},
        {"none: no candidates",
         clinic({off("a1")}, {exclusive_mode}),
         {},
         {{"a1", X::offline}},
         tie_break::none},
    }));
    CAPTURE(name, input);
    const decision d = decide(input, with_receipt::yes);
    REQUIRE(d.receipt);
    CHECK(d.receipt->candidates == candidates);
    CHECK(d.receipt->excluded == excluded);
    CHECK(d.receipt->tie == tie);
}

TEST_CASE("receipt: hours verdict, local time and the fate of each auto-reply kind") {
    using S = auto_reply_status;
    using statuses = std::array<auto_reply_status, auto_reply_kind_count>;
    struct status_row {
        std::string name;
        snapshot input;
        hours_state hours;
        statuses expected;  // consultant_offline, after_hours, no_agent
    };
    auto [name, input, hours, expected] = GENERATE(values<status_row>({
        {"nothing applies",
         clinic({on("a1")}),
         hours_state::always_open,
         {S::not_applicable, S::not_applicable, S::not_applicable}},
        {"consultant_offline sent, after_hours outranked",
         clinic({off("c1")}, {consultant("c1"), after_work}),
         hours_state::outside_hours,
         {S::sent, S::outranked, S::not_applicable}},
        {"after_hours sent, no_agent outranked",
         clinic({off("a1")}, {after_work}),
         hours_state::outside_hours,
         {S::not_applicable, S::sent, S::outranked}},
        {"after_hours switched off, no_agent sent",
         clinic({off("a1")}, {after_work, switched_off(after_hours)}),
         hours_state::outside_hours,
         {S::not_applicable, S::switched_off, S::sent}},
        {"master off",
         clinic({off("a1")}, {after_work, master_off}),
         hours_state::outside_hours,
         {S::not_applicable, S::switched_off, S::switched_off}},
        {"prompt off, after hours sent",
         clinic({off("c1")}, {consultant("c1"), after_work, prompt_off}),
         hours_state::outside_hours,
         {S::switched_off, S::sent, S::not_applicable}},
        {"suppressed",
         clinic({off("c1")}, {consultant("c1"), after_work, suppressed}),
         hours_state::outside_hours,
         {S::suppressed, S::suppressed, S::not_applicable}},
        {"switched off wins over suppressed in the receipt",
         clinic({off("a1")}, {switched_off(no_agent), suppressed}),
         hours_state::always_open,
         {S::not_applicable, S::not_applicable, S::switched_off}},
        {"in hours",
         clinic({on("a1")}, {after_work, [](snapshot& s) { s.now -= std::chrono::hours{8}; }}),
         hours_state::open,
         {S::not_applicable, S::not_applicable, S::not_applicable}},
        {"closed date",
         clinic({on("a1")},
                {[](snapshot& s) { s.config.closed_dates = {std::chrono::year{2026} / 11 / 23}; }}),
         hours_state::closed_date,
         {S::not_applicable, S::sent, S::not_applicable}},
    }));
    CAPTURE(name, input);
    const decision d = decide(input, with_receipt::yes);
    REQUIRE(d.receipt);
    CHECK(d.receipt->hours == hours);
    CHECK(d.receipt->auto_replies == expected);
}

TEST_CASE("receipt: a whole receipt, the local reading and the stale session lock") {
    const snapshot s = clinic({off("a2"), loaded("a1", 2), loaded("a3", 1)},
                              {exclusive_mode, session("a2"), after_work});
    const decision d = decide(s, with_receipt::yes);
    receipt r;
    r.candidates = {"a1", "a3"};
    r.excluded = {{"a1", exclusion_reason::higher_load}, {"a2", exclusion_reason::offline}};
    r.tie = tie_break::load;
    r.hours = hours_state::outside_hours;
    r.local = local_time{std::chrono::year{2026} / 11 / 23, 1, std::chrono::hours{20}};
    r.auto_replies = {auto_reply_status::not_applicable, auto_reply_status::sent,
                      auto_reply_status::not_applicable};
    r.stale_session_holder = "a2";
    decision expected = expect(route_rule::assigned, {"a3"}, "a3", "a3", after_hours);
    expected.receipt = r;
    CHECK(d == expected);
}

TEST_CASE("a receipt never changes the decision, and buffers are reused without leftovers") {
    const std::vector<snapshot> inputs = {
        clinic({on("agent-with-a-long-identifier-1"), on("agent-with-a-long-identifier-2"),
                on("agent-with-a-long-identifier-0")}),
        clinic({off("c1"), on("a1")}, {consultant("c1"), session("a1")}),
        clinic({loaded("a1", 2), loaded("a2", 1)}, {exclusive_mode}),
        clinic({on("a1"), off("e1")}, {exclusive_agent("e1"), after_work}),
        clinic({off("a1")}),
        clinic({on("a1", "s1"), on("a2", "s2")}, {chain_stores, fan_store("s2")}),
    };
    decision reused;
    for (int round = 0; round < 2; ++round) {
        for (std::size_t i = 0; i < inputs.size(); ++i) {
            CAPTURE(round, i);
            decision plain = decide(inputs[i]);
            decision with = decide(inputs[i], with_receipt::yes);
            CHECK_FALSE(plain.receipt);
            REQUIRE(with.receipt);
            with.receipt.reset();
            CHECK(with == plain);

            decide(inputs[i], reused, with_receipt::yes);
            CHECK(reused == decide(inputs[i], with_receipt::yes));
            decide(inputs[i], reused);
            CHECK(reused == plain);
        }
    }
}

TEST_CASE("an invalid snapshot still gets a decision") {
    using R = route_rule;
    auto [name, input, expected] = GENERATE(values<row>({
        {"unknown consultant counts as offline", clinic({on("a1")}, {consultant("zz")}),
         owned(R::consultant, "zz", consultant_offline)},
        {"unknown session holder is ignored", clinic({on("a1")}, {session("zz")}), shared({"a1"})},
        {"unknown exclusive agent is unavailable", clinic({on("a1")}, {exclusive_agent("zz")}),
         others_share({"a1"})},
    }));
    CAPTURE(name, input);
    CHECK(decide(input) == expected);
}

TEST_CASE("validate names every problem with its field") {
    struct validate_row {
        std::string name;
        snapshot input;
        std::string expected;  // the only message
    };
    auto [name, input, expected] = GENERATE(values<validate_row>({
        {"duplicate agent id", clinic({on("a1"), on("a2"), on("a1")}),
         "agents[2].id: duplicate agent id \"a1\" (also agents[0])"},
        {"empty agent id", clinic({on("")}), "agents[0].id: empty agent id"},
        {"empty store id", clinic({on("a1", "")}), "agents[0].store: empty store id"},
        {"negative load", clinic({loaded("a1", -1)}), "agents[0].load: negative"},
        {"negative last_assigned", clinic({loaded("a1", 0, -5)}),
         "agents[0].last_assigned: negative"},
        {"unknown consultant", clinic({on("a1")}, {consultant("zz")}),
         "fan.consultant: unknown consultant \"zz\" (not among the agents)"},
        {"unknown consultant even with consultant mode off",
         clinic({on("a1")}, {consultant_mode_off_with("zz")}),
         "fan.consultant: unknown consultant \"zz\" (not among the agents)"},
        {"unknown exclusive agent", clinic({on("a1")}, {exclusive_agent("zz")}),
         "fan.exclusive_agent: unknown exclusive agent \"zz\" (not among the agents)"},
        {"unknown session holder", clinic({on("a1")}, {session("zz")}),
         "session.agent: unknown session holder \"zz\" (not among the agents)"},
        {"empty fan store", clinic({on("a1")}, {fan_store("")}), "fan.store: empty store id"},
        {"window without weekdays",
         clinic({}, {[](snapshot& s) {
                    s.config.work_hours = {work_window{{}, minutes{0}, minutes{60}}};
                }}),
         "config.work_hours[0].weekdays: no weekday listed"},
        {"window start at 24:00",
         clinic({}, {[](snapshot& s) {
                    s.config.work_hours = {work_window{{1}, minutes{1440}, minutes{60}}};
                }}),
         "config.work_hours[0].start: out of range (00:00 to 23:59)"},
        {"window end past 24:00",
         clinic({}, {[](snapshot& s) {
                    s.config.work_hours = {work_window{{1}, minutes{0}, minutes{1441}}};
                }}),
         "config.work_hours[0].end: out of range (00:00 to 24:00)"},
        {"offset of a day",
         clinic({}, {[](snapshot& s) { s.config.utc_offset = minutes{24 * 60}; }}),
         "config.timezone: offset out of range (-23:59 to +23:59)"},
        {"closed date that does not exist",
         clinic({},
                {[](snapshot& s) { s.config.closed_dates = {std::chrono::year{2026} / 2 / 29}; }}),
         "config.closed_dates[0]: not a date"},
    }));
    CAPTURE(name, input);
    CHECK(validate(input) == std::vector<std::string>{expected});
}

TEST_CASE("validate accepts a good snapshot and reports several problems at once") {
    CHECK(validate(clinic({on("a1"), on("c1")},
                          {consultant("c1"), exclusive_agent("a1"), session("a1")}))
              .empty());
    const auto problems = validate(clinic({on("a1"), on("a1")}, {consultant("x"), session("y")}));
    CHECK(problems.size() == 3);
}

TEST_CASE("value types print readably") {
    std::ostringstream os;
    os << expect(route_rule::assigned, {"a1"}, "a1", "a1", after_hours);
    CHECK(
        os.str() ==
        R"({rule: assigned, targets: ["a1"], owner: "a1", assign_exclusive: "a1", auto_reply: after_hours})");
    std::ostringstream as;
    as << off("a2", "s1");
    CHECK(
        as.str() ==
        R"({id: "a2", store: "s1", online: false, can_receive: true, load: 0, last_assigned: 0})");
    std::ostringstream ss;
    ss << clinic({}, {after_work});
    CHECK(ss.str().find("now: 2026-11-23T20:00:00+08:00") != std::string::npos);
    CHECK(ss.str().find("work_hours: [{weekdays: [1,2,3,4,5], start: 09:00, end: 18:00}]") !=
          std::string::npos);
}

// The routing stage: MySQL (settings, agents, the fan's owners, the receipt) and Redis (live
// state, console push) around the pure decide(). The receipt's batch is the one guard of "exactly
// once": it sets the message's routed_at only if it was unset (under a row lock) and inserts the
// receipt in the same transaction, and everything visible to people (push, reply, timer, window)
// happens only after the caller's job won that way.
#include "scrm/gateway/routing_stage.hpp"

#include <rapidjson/document.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <charconv>
#include <map>
#include <mutex>
#include <tuple>

#include "scrm/common/log.hpp"
#include "scrm/gateway/agent_repository.hpp"
#include "scrm/gateway/http.hpp"
#include "scrm/gateway/lock_notices.hpp"
#include "scrm/routing/decide.hpp"
#include "scrm/routing/scenario_json.hpp"
#include "scrm/routing/time_text.hpp"
#include "scrm/storage/batcher.hpp"
#include "scrm/storage/group_commit.hpp"
#include "scrm/storage/mysql.hpp"
#include "scrm/storage/redis.hpp"
#include "scrm/wechat/outbound.hpp"
#include "scrm/wechat/outbox.hpp"
#include "scrm/wechat/parse.hpp"

namespace scrm::gateway {

namespace asio = boost::asio;
using asio::awaitable;
using storage::mysql_session;
using storage::sql_rows;
using storage::sql_value;

// ---- pure helpers ------------------------------------------------------------------------

const std::string& auto_reply_text(const clinic_settings& s, routing::auto_reply_kind k) {
    switch (k) {
        case routing::auto_reply_kind::consultant_offline: return s.consultant_offline_text;
        case routing::auto_reply_kind::after_hours: return s.after_hours_text;
        case routing::auto_reply_kind::no_agent: return s.no_agent_text;
    }
    return s.no_agent_text;
}

bool parse_hours(std::string_view work_hours_json, std::string_view closed_dates_json,
                 routing::clinic_config& out) {
    std::vector<routing::work_window> windows;
    std::vector<std::chrono::year_month_day> closed;
    rapidjson::Document wh;
    wh.Parse(work_hours_json.data(), work_hours_json.size());
    if (wh.HasParseError() || !wh.IsArray()) return false;
    for (const auto& w : wh.GetArray()) {
        if (!w.IsObject()) return false;
        const auto days = w.FindMember("weekdays");
        const auto start = w.FindMember("start");
        const auto end = w.FindMember("end");
        if (days == w.MemberEnd() || !days->value.IsArray() || start == w.MemberEnd() ||
            !start->value.IsString() || end == w.MemberEnd() || !end->value.IsString()) {
            return false;
        }
        routing::work_window ww;
        for (const auto& d : days->value.GetArray()) {
            if (!d.IsUint() || d.GetUint() < 1 || d.GetUint() > 7) return false;
            ww.weekdays.insert(d.GetUint());
        }
        if (ww.weekdays.empty()) return false;
        auto s = routing::parse_clock(start->value.GetString(), false);
        auto e = routing::parse_clock(end->value.GetString(), true);
        if (!s || !e) return false;
        ww.start = *s;
        ww.end = *e;
        windows.push_back(ww);
    }
    rapidjson::Document cd;
    cd.Parse(closed_dates_json.data(), closed_dates_json.size());
    if (cd.HasParseError() || !cd.IsArray()) return false;
    for (const auto& d : cd.GetArray()) {
        if (!d.IsString()) return false;
        auto date = routing::parse_date(d.GetString());
        if (!date) return false;
        closed.push_back(*date);
    }
    out.work_hours = std::move(windows);
    out.closed_dates = std::move(closed);
    return true;
}

std::optional<std::uint64_t> store_from_scene(std::string_view scene) noexcept {
    constexpr std::string_view qr = "qrscene_";
    constexpr std::string_view st = "store_";
    if (scene.substr(0, qr.size()) == qr) scene.remove_prefix(qr.size());
    if (scene.substr(0, st.size()) != st) return std::nullopt;
    scene.remove_prefix(st.size());
    std::uint64_t id = 0;
    const auto [end, ec] = std::from_chars(scene.data(), scene.data() + scene.size(), id);
    if (ec != std::errc() || end != scene.data() + scene.size() || id == 0) return std::nullopt;
    return id;
}

namespace {

std::optional<std::uint64_t> to_u64(const std::optional<std::string>& v) {
    if (!v) return std::nullopt;
    std::uint64_t out = 0;
    const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
    if (ec != std::errc() || end != v->data() + v->size()) return std::nullopt;
    return out;
}

bool truthy(const std::optional<std::string>& v) {
    return v && *v != "0";
}

routing::instant system_now() {
    return std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

// The agents of a clinic as the snapshot's static part needs them (presence comes from Redis).
struct clinic_data {
    std::shared_ptr<const clinic_settings> settings;
    std::vector<routing::agent_state> agents;  // active agents, ids = agents.id as text
};

constexpr const char* settings_sql =
    "SELECT consultant_mode, exclusive_mode, chain_store_mode, auto_reply_enabled, "
    "welcome_enabled, welcome_text, consultant_offline_enabled, consultant_offline_text, "
    "after_hours_enabled, after_hours_text, no_agent_enabled, no_agent_text, timeout_enabled, "
    "timeout_text, utc_offset_minutes, work_hours, closed_dates, suppression_window_s, timeout_s, "
    "lock_ttl_s FROM clinic_routing WHERE clinic_id = ?";

clinic_settings settings_from(std::uint64_t clinic,
                              const std::vector<std::optional<std::string>>& r) {
    clinic_settings s;
    auto& c = s.config;
    c.consultant_mode = truthy(r[0]);
    c.exclusive_mode = truthy(r[1]);
    c.chain_store_mode = truthy(r[2]);
    c.auto_reply_enabled = truthy(r[3]);
    s.welcome_enabled = truthy(r[4]);
    s.welcome_text = r[5].value_or("");
    c.consultant_offline_prompt_enabled = truthy(r[6]);
    s.consultant_offline_text = r[7].value_or("");
    if (!truthy(r[8])) c.auto_reply_off.push_back(routing::auto_reply_kind::after_hours);
    s.after_hours_text = r[9].value_or("");
    if (!truthy(r[10])) c.auto_reply_off.push_back(routing::auto_reply_kind::no_agent);
    s.no_agent_text = r[11].value_or("");
    s.timeout_enabled = truthy(r[12]);
    s.timeout_text = r[13].value_or("");
    int offset = 0;
    if (r[14]) std::from_chars(r[14]->data(), r[14]->data() + r[14]->size(), offset);
    c.utc_offset = std::chrono::minutes(offset);
    if (!parse_hours(r[15].value_or("[]"), r[16].value_or("[]"), c)) {
        // Refused by the admin API before it gets here; if it does, routing stays open.
        log::warn("routing.bad_hours", {{"clinic", clinic}});
    }
    s.suppression_window = std::chrono::seconds(to_u64(r[17]).value_or(600));
    s.timeout = std::chrono::seconds(to_u64(r[18]).value_or(300));
    s.lock_ttl = std::chrono::seconds(to_u64(r[19]).value_or(600));
    return s;
}

// Runs on a pool worker: the clinic's settings (the column defaults for a clinic without a row:
// inserted and rolled back, so the defaults live in the schema only) and its active agents.
result<clinic_data> load_clinic(mysql_session& db, std::uint64_t clinic) {
    std::vector<sql_value> p{clinic};
    auto rows = db.query(settings_sql, p);
    if (!rows) return rows.error();
    if (rows->rows.empty()) {
        if (auto b = db.begin(); !b) return b.error();
        auto ins = db.execute("INSERT INTO clinic_routing (clinic_id) VALUES (?)", p);
        if (ins) rows = db.query(settings_sql, p);
        (void)db.rollback();
        if (!ins && ins.error() != make_error_code(errc::conflict)) return ins.error();
        if (!ins) rows = db.query(settings_sql, p);  // created meanwhile
        if (!rows) return rows.error();
        if (rows->rows.empty()) return make_error_code(errc::not_found);  // no such clinic
    }
    clinic_data out;
    out.settings = std::make_shared<const clinic_settings>(settings_from(clinic, rows->rows[0]));
    auto agents = db.query(
        "SELECT id, store_id, can_receive FROM agents WHERE clinic_id = ? AND active = 1 "
        "ORDER BY id",
        p);
    if (!agents) return agents.error();
    for (const auto& r : agents->rows) {
        routing::agent_state a;
        a.id = r[0].value_or("");
        a.store = r[1];
        a.can_receive = truthy(r[2]);
        out.agents.push_back(std::move(a));
    }
    std::sort(out.agents.begin(), out.agents.end(),
              [](const auto& x, const auto& y) { return x.id < y.id; });
    return out;
}

// The fan as MySQL knows it, and whether the message was routed already.
struct fan_row {
    bool routed = false;
    std::optional<std::string> consultant, exclusive, store;
    std::optional<std::uint64_t> bound_store;  // this message's scene bound the fan to it
};

// The snapshot's static part (MySQL): settings, active agents and the fan's owners.
routing::snapshot base_snapshot(const clinic_data& data, const std::string& openid,
                                const fan_row& fan) {
    auto known = [&](const std::optional<std::string>& id) -> std::optional<std::string> {
        if (!id) return std::nullopt;
        for (const auto& a : data.agents) {
            if (a.id == *id) return id;
        }
        return std::nullopt;  // a deactivated or deleted agent owns nothing
    };
    routing::snapshot base;
    base.config = data.settings->config;
    base.agents = data.agents;
    base.fan.openid = openid;
    base.fan.consultant = known(fan.consultant);
    base.fan.exclusive_agent = known(fan.exclusive);
    base.fan.store = fan.store;
    return base;
}

enum class event_class { message, window_event, subscribe, unsubscribe, other_event };

event_class classify(const wechat::inbound_message& m) {
    if (!m.is_event()) return event_class::message;
    auto is = [&](std::string_view name) {
        return m.event.size() == name.size() &&
               std::equal(name.begin(), name.end(), m.event.begin(), [](char a, char b) {
                   return a == std::tolower(static_cast<unsigned char>(b));
               });
    };
    if (is("subscribe")) return event_class::subscribe;
    if (is("unsubscribe")) return event_class::unsubscribe;
    if (is("scan") || is("click")) return event_class::window_event;
    return event_class::other_event;
}

std::string ids_json(const std::vector<std::string>& ids) {
    std::string out = "[";
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (i) out += ',';
        out += ids[i];  // agents.id: digits
    }
    return out + "]";
}

// The decision with its receipt as the §8 JSON object (scrm-route's own writer).
std::string receipt_json(const routing::decision& d) {
    std::vector<routing::routed> one;
    one.push_back(routing::routed{std::nullopt, d});
    std::string doc = routing::write_decisions(one, routing::json_style::lines);
    const auto first = doc.find('{');
    const auto last = doc.rfind('}');
    if (first == std::string::npos || last == std::string::npos) return "{}";
    return doc.substr(first, last - first + 1);
}

// A routed message's record: its receipt, routed_at, and (when the decision committed a pick in
// Redis) the fan's exclusive agent in MySQL.
struct receipt_job {
    std::uint64_t message_id = 0, clinic_id = 0, account_id = 0;
    std::string openid;
    std::string rule;
    std::optional<std::uint64_t> owner;
    std::string targets;  // JSON array of agent ids
    std::optional<std::string> auto_reply;
    std::string receipt;  // JSON
    std::optional<std::uint64_t> write_exclusive;
};

std::size_t receipt_bytes(const receipt_job& j) {
    return 2 * (j.receipt.size() + j.targets.size() + j.openid.size()) + 160;
}

// One transaction for a batch of receipts; per job, whether it won — its message had no
// routed_at, so this job routed it and only its caller may act on the decision. Locks in the
// order the message store does — fans (sorted), then messages (by id) — so the two batches never
// deadlock. A pick is written to the fan whether the job wins or not: Redis committed it.
result<std::vector<bool>> commit_receipts(mysql_session& db,
                                          const std::vector<receipt_job>& batch) {
    if (auto b = db.begin(); !b) return b.error();
    std::vector<const receipt_job*> picks;
    for (const auto& j : batch) {
        if (j.write_exclusive) picks.push_back(&j);
    }
    std::sort(picks.begin(), picks.end(), [](const receipt_job* a, const receipt_job* b) {
        return std::tie(a->account_id, a->openid) < std::tie(b->account_id, b->openid);
    });
    auto write_picks = [&]() -> result<void> {
        for (const receipt_job* j : picks) {
            std::vector<sql_value> fp{*j->write_exclusive, j->account_id, j->openid};
            auto fx = db.execute(
                "UPDATE fans SET exclusive_agent_id = ? WHERE account_id = ? AND openid = ?", fp);
            if (!fx) return fx.error();
        }
        return {};
    };
    if (auto r = write_picks(); !r) return r.error();
    std::vector<std::uint64_t> distinct;
    for (const auto& j : batch) distinct.push_back(j.message_id);
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    std::string ids;
    for (const std::uint64_t id : distinct) {
        if (!ids.empty()) ids += ',';
        storage::sql_lit(ids, id);
    }
    // The common case in one statement: every message of the batch was still unrouted, and now
    // is ours. Otherwise (a sweep and a late request raced) undo it and find out which are.
    std::vector<std::uint64_t> unrouted;
    auto all = db.query_inline(
        "UPDATE inbound_messages SET routed_at = CURRENT_TIMESTAMP(3) WHERE id IN (" + ids +
        ") AND routed_at IS NULL");
    if (!all) return all.error();
    const bool fast = all->affected == distinct.size();
    if (fast) {
        unrouted = distinct;
    } else {
        if (auto r = db.rollback(); !r) return r.error();
        if (auto r = db.begin(); !r) return r.error();
        if (auto r = write_picks(); !r) return r.error();
        auto open = db.query_inline("SELECT id FROM inbound_messages WHERE id IN (" + ids +
                                    ") AND routed_at IS NULL ORDER BY id FOR UPDATE");
        if (!open) return open.error();
        for (const auto& r : open->rows) unrouted.push_back(storage::sql_u64(r[0]));
        std::sort(unrouted.begin(), unrouted.end());
    }
    std::vector<bool> won(batch.size(), false);
    std::string won_ids, values;
    for (std::size_t i = 0; i < batch.size(); ++i) {
        const receipt_job& j = batch[i];
        const auto it = std::lower_bound(unrouted.begin(), unrouted.end(), j.message_id);
        if (it == unrouted.end() || *it != j.message_id) continue;
        unrouted.erase(it);  // a message twice in one batch: the first job wins
        won[i] = true;
        if (!won_ids.empty()) won_ids += ',';
        storage::sql_lit(won_ids, j.message_id);
        values += values.empty() ? "(" : ",(";
        storage::sql_lit(values, j.message_id);
        values += ',';
        storage::sql_lit(values, j.clinic_id);
        values += ',';
        storage::sql_lit(values, std::string_view(j.rule));
        values += ',';
        storage::sql_lit(values, j.owner);
        values += ',';
        storage::sql_lit(values, std::string_view(j.targets));
        values += ',';
        storage::sql_lit(values, j.auto_reply);
        values += ',';
        storage::sql_lit(values, std::string_view(j.receipt));
        values += ')';
    }
    if (!won_ids.empty()) {
        if (!fast) {
            auto up = db.query_inline(
                "UPDATE inbound_messages SET routed_at = CURRENT_TIMESTAMP(3) WHERE id IN (" +
                won_ids + ")");
            if (!up) return up.error();
        }
        auto ins = db.query_inline(
            "INSERT INTO routing_receipts (message_id, clinic_id, rule, owner_agent_id, targets, "
            "auto_reply, receipt) VALUES " +
            values);
        if (!ins) return ins.error();
    }
    if (auto c = db.commit(); !c) return c.error();
    return won;
}

}  // namespace

// ---- the stage -----------------------------------------------------------------------------

namespace {

// What became of an auto-reply meant for the outbox.
enum class auto_send { queued, no_window, failed };

// The webhook's request waiting for a passive reply, shared with the routing that may produce
// one. Touched only on one strand (the waiter's and the routing's), so no lock.
struct handoff {
    explicit handoff(asio::any_io_executor ex) : timer(std::move(ex)) {}
    asio::steady_timer timer;  // the reply budget; cancelled when routing is done
    bool waiting = true;       // the request still waits: a passive reply reaches the fan
    std::optional<passive_reply> reply;
};

// When the fan acted: WeChat's CreateTime, unless our clock is behind it.
routing::instant arrival(const wechat::inbound_message& m, routing::instant now) {
    if (m.create_time <= 0) return now;
    return std::min(now, routing::instant(std::chrono::seconds(m.create_time)));
}

// A message whose receipt is written, with what its effects need.
struct decided_message {
    stored_message message;
    std::shared_ptr<const clinic_data> data;
    event_class kind = event_class::message;
    routing::instant arrived{};
    routing::decision d;
    routing::live_snapshot used;
    std::string rule_text;
    std::optional<std::string> welcome, auto_kind;
};

// A fan message's routing decided in the message store's transaction (routed_in_store): the live
// state is read before the store, the fan's owners come from the batch's upsert, and decide()
// runs on the MySQL worker. Messages that need more than a receipt first — an exclusive pick to
// commit in Redis, or Redis's exclusive agent still to be written to the fan's row — decline,
// and are routed after the commit (route()).
class routed_with_row final : public routed_in_store {
public:
    routed_with_row(std::shared_ptr<const clinic_data> data, std::uint64_t clinic,
                    routing::live_snapshot live)
        : data_(std::move(data)), clinic_(clinic), live_(std::move(live)) {}

    std::optional<routing_receipt> decide(const fan_owners& owners) override {
        decided_ = false;
        used_ = live_;
        fan_row fan;
        fan.consultant = owners.consultant;
        fan.exclusive = owners.exclusive_agent;
        fan.store = owners.store;
        const routing::snapshot base = base_snapshot(*data_, used_.input.fan.openid, fan);
        auto& live_fan = used_.input.fan;
        live_fan.consultant = base.fan.consultant;
        live_fan.store = base.fan.store;
        if (!live_fan.exclusive_agent) {
            live_fan.exclusive_agent = base.fan.exclusive_agent;
        } else if (live_fan.exclusive_agent != owners.exclusive_agent) {
            return std::nullopt;  // the fan's row must learn Redis's pick: route() writes it
        }
        d_ = routing::decide(used_.input, routing::with_receipt::yes);
        if (d_.rule == routing::route_rule::assigned && d_.assign_exclusive) return std::nullopt;
        decided_ = true;
        routing_receipt r;
        r.clinic_id = clinic_;
        r.rule = routing::to_string(d_.rule);
        if (d_.owner) r.owner = to_u64(d_.owner);
        r.targets = ids_json(d_.targets);
        if (d_.auto_reply) r.auto_reply = routing::to_string(*d_.auto_reply);
        r.receipt = receipt_json(d_);
        return r;
    }

    // After the commit that wrote the receipt: the decision, as decide() made it.
    bool decided() const { return decided_; }
    const std::shared_ptr<const clinic_data>& data() const { return data_; }
    routing::decision& decision() { return d_; }
    routing::live_snapshot& used() { return used_; }

private:
    std::shared_ptr<const clinic_data> data_;
    std::uint64_t clinic_;
    routing::live_snapshot live_;  // as read before the store, without the fan's owners
    routing::live_snapshot used_;  // with them: what decide() was given
    routing::decision d_;
    bool decided_ = false;
};

// One message's snapshot, asked of the clinic's snapshot batcher.
struct snapshot_job {
    routing::snapshot_request request;
    routing::instant now{};
};

// The Redis work of routing, batched per clinic: every message of a clinic that reaches the
// snapshot (or its effects) while the previous script runs goes into the next script — one
// round trip, and the agents' live state read once, for all of them. Messages routed together
// see the state as two concurrent requests would (the scripts keep what must be atomic per fan:
// the auto-reply claim, the timer, the pick's commit).
struct clinic_batches {
    clinic_batches(asio::any_io_executor ex, routing::live_state& live, std::uint64_t clinic)
        : snapshots(ex, "routing.snapshots",
                    [&live, clinic](std::vector<snapshot_job>& jobs) {
                        return load_grouped(live, clinic, jobs);
                    }),
          effects(ex, "routing.effects",
                  [&live, clinic](std::vector<routing::fan_effects>& jobs) {
                      return live.apply_routes(clinic, std::move(jobs));
                  }) {}

    // One load_snapshots() per distinct agent list (a clinic's cached agents change rarely: the
    // common case is one call), at the latest of the jobs' instants.
    static awaitable<result<std::vector<routing::live_snapshot>>> load_grouped(
        routing::live_state& live, std::uint64_t clinic, std::vector<snapshot_job>& jobs) {
        auto same_agents = [&jobs](std::size_t i, std::size_t j) {
            const auto& x = jobs[i].request.base.agents;
            const auto& y = jobs[j].request.base.agents;
            return std::equal(x.begin(), x.end(), y.begin(), y.end(),
                              [](const auto& a, const auto& b) { return a.id == b.id; });
        };
        std::vector<std::vector<std::size_t>> groups;  // job indices, one agent list each
        routing::instant now{};
        for (std::size_t i = 0; i < jobs.size(); ++i) {
            auto g = std::find_if(groups.begin(), groups.end(),
                                  [&](const auto& members) { return same_agents(members[0], i); });
            if (g == groups.end()) {
                groups.emplace_back(1, i);
            } else {
                g->push_back(i);
            }
            now = std::max(now, jobs[i].now);
        }
        std::vector<routing::live_snapshot> out(jobs.size());
        for (const auto& members : groups) {
            std::vector<routing::snapshot_request> requests;
            for (const std::size_t i : members) requests.push_back(std::move(jobs[i].request));
            auto loaded = co_await live.load_snapshots(clinic, std::move(requests), now);
            if (!loaded) co_return loaded.error();
            for (std::size_t j = 0; j < members.size(); ++j) {
                out[members[j]] = std::move((*loaded)[j]);
            }
        }
        co_return out;
    }

    storage::batcher<snapshot_job, routing::live_snapshot> snapshots;
    storage::batcher<routing::fan_effects, routing::route_outcome> effects;
};

}  // namespace

struct routing_stage::impl : std::enable_shared_from_this<routing_stage::impl> {
    impl(asio::any_io_executor e, storage::mysql_pool& m, std::shared_ptr<storage::redis_client> r,
         routing::live_state& l, wechat::outbox& o, routing_stage_options op)
        : ex(std::move(e)),
          mysql(m),
          redis(std::move(r)),
          live(l),
          outbox(o),
          opts(std::move(op)),
          receipts(ex, mysql, "routing.receipts", commit_receipts, receipt_bytes) {
        if (!opts.now) opts.now = system_now;
    }

    asio::any_io_executor ex;
    storage::mysql_pool& mysql;
    std::shared_ptr<storage::redis_client> redis;
    routing::live_state& live;
    wechat::outbox& outbox;
    routing_stage_options opts;
    // Receipts are group-committed, like the messages themselves.
    storage::group_commit<receipt_job, bool> receipts;

    struct cached {
        std::shared_ptr<const clinic_data> data;
        std::chrono::steady_clock::time_point loaded;
        bool refreshing = false;  // one reload at a time; meanwhile everyone uses `data`
    };
    std::mutex mutex;
    std::map<std::uint64_t, cached> cache;
    std::map<std::uint64_t, std::unique_ptr<clinic_batches>> batches;  // under `mutex`

    clinic_batches& batches_of(std::uint64_t clinic) {
        std::lock_guard lock(mutex);
        auto& b = batches[clinic];
        if (!b) {
            b = std::make_unique<clinic_batches>(ex, live, clinic);
            // Routing still in flight after stop() finds the clinic's batchers stopped (its
            // message is left for the sweeper) rather than starting loops nobody stops.
            if (stopping) stop(*b);
        }
        return *b;
    }
    static void stop(clinic_batches& b) {
        b.snapshots.stop();
        b.effects.stop();
    }
    void stop_batches() {
        std::lock_guard lock(mutex);
        for (auto& [clinic, b] : batches) stop(*b);
    }

    std::atomic<std::uint64_t> stored{0}, routed{0}, swept{0}, with_row{0}, auto_replies{0},
        timeouts{0}, failures{0};
    std::atomic<std::int64_t> waited_ns{0};
    std::atomic<std::int64_t> in_flight{0};
    std::atomic<bool> stopping{false};
    std::atomic<int> loops{0};

    awaitable<result<std::shared_ptr<const clinic_data>>> clinic(std::uint64_t id);
    awaitable<result<std::shared_ptr<const clinic_data>>> load(std::uint64_t id);
    awaitable<result<std::optional<passive_reply>>> route(stored_message m, bool swept_now,
                                                          std::shared_ptr<handoff> h = nullptr);
    awaitable<result<std::optional<passive_reply>>> apply(decided_message r,
                                                          std::shared_ptr<handoff> h);
    awaitable<std::shared_ptr<routed_in_store>> before_store(std::uint64_t clinic,
                                                             const wechat::inbound_message& m);
    awaitable<result<routing::decision>> decide_and_commit(std::uint64_t clinic,
                                                           const routing::snapshot& base,
                                                           const clinic_settings& s,
                                                           routing::fan_activity activity,
                                                           routing::live_snapshot& used);
    awaitable<auto_send> send_auto(std::uint64_t clinic, std::uint64_t account, std::string openid,
                                   std::string text, std::string origin, routing::instant now);
    awaitable<result<std::vector<std::uint64_t>>> clinics_with_accounts();
    awaitable<result<std::size_t>> sweep();
    awaitable<result<std::size_t>> run_timers();
    awaitable<void> loop(bool timers);
};

// A clinic's settings and agents. A cached copy older than cache_max_age is still served while
// one reload runs in the background (no request waits for it, and a burst of requests at expiry
// does not become a burst of reloads); a clinic never loaded waits for MySQL, and so does one
// whose copy is older than twice cache_max_age — after a quiet hour the first message must not
// be routed with the settings of an hour ago: every message routed more than twice
// cache_max_age after an admin's change sees it.
awaitable<result<std::shared_ptr<const clinic_data>>> routing_stage::impl::clinic(
    std::uint64_t id) {
    if (opts.cache_max_age.count() <= 0) co_return co_await load(id);
    const auto now = std::chrono::steady_clock::now();
    {
        std::lock_guard lock(mutex);
        if (auto it = cache.find(id); it != cache.end()) {
            cached& c = it->second;
            const bool stale = now - c.loaded >= 2 * opts.cache_max_age;
            if (!stale && now - c.loaded >= opts.cache_max_age && !c.refreshing && !stopping) {
                c.refreshing = true;
                auto refresh = [](std::shared_ptr<impl> self,
                                  std::uint64_t clinic) -> awaitable<void> {
                    (void)co_await self->load(clinic);
                };
                asio::co_spawn(ex, refresh(shared_from_this(), id), asio::detached);
            }
            if (!stale) co_return c.data;
        }
    }
    co_return co_await load(id);
}

awaitable<result<std::shared_ptr<const clinic_data>>> routing_stage::impl::load(std::uint64_t id) {
    auto fn = [id](mysql_session& db) { return load_clinic(db, id); };
    auto loaded = co_await mysql.run(fn);
    std::lock_guard lock(mutex);
    auto it = cache.find(id);
    if (!loaded) {
        if (it == cache.end()) co_return loaded.error();
        // Keep serving the old copy; the next request after cache_max_age tries again.
        it->second.refreshing = false;
        it->second.loaded = std::chrono::steady_clock::now();
        log::warn("routing.settings_reload_failed",
                  {{"clinic", id}, {"reason", loaded.error().message()}});
        co_return it->second.data;
    }
    auto data = std::make_shared<const clinic_data>(std::move(*loaded));
    cache[id] = cached{data, std::chrono::steady_clock::now(), false};
    co_return data;
}

// decide(), then commit an `assigned` pick: on stale_pick decide again from a fresh snapshot; the
// last attempt lets the commit pick again itself from the current loads (repick), and the
// decision is then made again from those loads so that its receipt tells the pick that was
// committed. On lost the winner is the fan's exclusive agent.
awaitable<result<routing::decision>> routing_stage::impl::decide_and_commit(
    std::uint64_t clinic, const routing::snapshot& base, const clinic_settings& s,
    routing::fan_activity activity, routing::live_snapshot& used) {
    const int attempts = std::max(1, opts.max_redecide + 1);
    for (int attempt = 0; attempt < attempts; ++attempt) {
        const auto now = opts.now();
        snapshot_job job;
        job.request.base = base;
        job.request.activity = activity;
        job.now = now;
        auto ls = co_await batches_of(clinic).snapshots.submit(std::move(job));
        if (!ls) co_return ls.error();
        // The clinic's own suppression window, not the live state's default.
        ls->input.auto_reply_suppressed = routing::suppressed(ls->marks, now, s.suppression_window);
        auto d = routing::decide(ls->input, routing::with_receipt::yes);
        used = *ls;
        if (d.rule != routing::route_rule::assigned || !d.assign_exclusive) co_return d;
        const bool last = attempt + 1 == attempts;
        auto c =
            co_await live.commit_exclusive(clinic, base.fan.openid, std::nullopt,
                                           *d.assign_exclusive, now, d.receipt->candidates, last);
        if (!c) co_return c.error();
        switch (c->status) {
            case routing::assign_status::repicked:
                // Decide again from the loads the commit picked from: the same order picks the
                // same agent, and the receipt tells why.
                for (const auto& l : c->loads) {
                    for (auto& a : used.input.agents) {
                        if (a.id == l.agent) {
                            a.load = l.load;
                            a.last_assigned = l.last_assigned;
                        }
                    }
                }
                d = routing::decide(used.input, routing::with_receipt::yes);
                if (d.assign_exclusive != c->exclusive_agent) {
                    // Not expected (the orders agree); the commit is what holds.
                    d.targets = {*c->exclusive_agent};
                    d.owner = c->exclusive_agent;
                    d.assign_exclusive = c->exclusive_agent;
                }
                used.input.fan.exclusive_agent = c->exclusive_agent;
                co_return d;
            case routing::assign_status::assigned:
            case routing::assign_status::already_assigned:
                used.input.fan.exclusive_agent = d.assign_exclusive;
                co_return d;
            case routing::assign_status::lost:
                if (c->exclusive_agent) {
                    // Another instance committed first: route to its pick.
                    d.rule = routing::route_rule::exclusive;
                    d.targets = {*c->exclusive_agent};
                    d.owner = c->exclusive_agent;
                    d.assign_exclusive.reset();
                    used.input.fan.exclusive_agent = c->exclusive_agent;
                    co_return d;
                }
                break;  // the expected state vanished: decide again
            case routing::assign_status::stale_pick: break;
        }
    }
    co_return make_error_code(errc::conflict);
}

awaitable<auto_send> routing_stage::impl::send_auto(std::uint64_t clinic, std::uint64_t account,
                                                    std::string openid, std::string text,
                                                    std::string origin, routing::instant now) {
    auto spent = co_await live.spend_window(clinic, openid, routing::sender_kind::auto_reply, now);
    if (!spent) co_return auto_send::failed;
    if (spent->status != routing::spend_status::spent) {
        log::info("routing.auto_reply_no_window", {{"clinic", clinic},
                                                   {"origin", origin},
                                                   {"status", routing::to_string(spent->status)}});
        co_return auto_send::no_window;
    }
    wechat::outbound_message out;
    out.account_id = account;
    out.openid = openid;
    out.kind = "text";
    out.body = wechat::custom_text_body(openid, text);
    out.origin = std::move(origin);
    auto queued = co_await outbox.enqueue(std::move(out));
    if (!queued) {
        log::warn("routing.auto_reply_not_queued",
                  {{"clinic", clinic}, {"reason", queued.error().message()}});
        co_return auto_send::failed;
    }
    co_return auto_send::queued;
}

awaitable<result<std::optional<passive_reply>>> routing_stage::impl::route(
    stored_message m, bool swept_now, std::shared_ptr<handoff> h) {
    const std::uint64_t clinic_id = m.account->clinic_id;
    const std::uint64_t account_id = m.account->id;
    const std::string openid = m.message.from_user_name;
    const event_class kind = classify(m.message);
    if (m.routed) {
        // Routed by the commit that stored it (before_store): only the effects are left.
        auto* pre = dynamic_cast<routed_with_row*>(m.route.get());
        if (!pre || !pre->decided()) co_return make_error_code(errc::protocol_error);
        ++with_row;
        std::string rule = routing::to_string(pre->decision().rule);
        std::optional<std::string> auto_kind;
        if (pre->decision().auto_reply) auto_kind = routing::to_string(*pre->decision().auto_reply);
        const auto arrived = arrival(m.message, opts.now());
        decided_message r{std::move(m),
                          pre->data(),
                          kind,
                          arrived,
                          std::move(pre->decision()),
                          std::move(pre->used()),
                          std::move(rule),
                          std::nullopt,
                          std::move(auto_kind)};
        co_return co_await apply(std::move(r), std::move(h));
    }
    auto loaded = co_await clinic(clinic_id);
    if (!loaded) co_return loaded.error();
    const std::shared_ptr<const clinic_data> data = *loaded;
    const clinic_settings& s = *data->settings;

    // The fan's owners; the store a QR scene names (if it is one of this clinic's stores).
    std::optional<std::uint64_t> scene_store;
    if (auto scene = wechat::qr_scene(m.message)) scene_store = store_from_scene(*scene);
    const std::uint64_t message_id = m.id;
    // The webhook hands the fan's owners over from the batch that stored the message, and routes
    // only what it inserted; the sweeper reads both here.
    const bool owners_known = m.fan.has_value() && !swept_now;
    auto load_fan = [&, message_id, account_id, clinic_id,
                     owners_known](mysql_session& db) -> result<fan_row> {
        fan_row f;
        if (!owners_known) {
            std::vector<sql_value> mp{message_id};
            auto done = db.query("SELECT 1 FROM routing_receipts WHERE message_id = ?", mp);
            if (!done) return done.error();
            if (!done->rows.empty()) {
                f.routed = true;
                return f;
            }
        }
        if (scene_store) {
            std::vector<sql_value> sp{*scene_store, clinic_id};
            auto st = db.query("SELECT 1 FROM stores WHERE id = ? AND clinic_id = ?", sp);
            if (!st) return st.error();
            if (!st->rows.empty()) {
                std::vector<sql_value> up{*scene_store, account_id, openid};
                auto u = db.execute(
                    "UPDATE fans SET store_id = ? WHERE account_id = ? AND openid = ?", up);
                if (!u) return u.error();
                f.bound_store = scene_store;
            }
        }
        if (owners_known) return f;
        std::vector<sql_value> fp{account_id, openid};
        auto fan = db.query(
            "SELECT consultant_agent_id, exclusive_agent_id, store_id FROM fans "
            "WHERE account_id = ? AND openid = ?",
            fp);
        if (!fan) return fan.error();
        if (!fan->rows.empty()) {
            f.consultant = fan->rows[0][0];
            f.exclusive = fan->rows[0][1];
            f.store = fan->rows[0][2];
        }
        return f;
    };
    result<fan_row> fan = fan_row{};
    if (!owners_known || scene_store) fan = co_await mysql.run(load_fan);
    if (!fan) co_return fan.error();
    if (fan->routed) co_return std::optional<passive_reply>{};
    const auto* finished = std::get_if<wechat::template_send_job_finish_event>(&m.message.body);
    if (finished && opts.on_template_finished) {
        auto report = opts.on_template_finished;
        auto reported = co_await report(account_id, openid, finished->msg_id, finished->status);
        if (!reported) co_return reported.error();
    }
    if (owners_known) {
        fan->consultant = m.fan->consultant;
        fan->exclusive = m.fan->exclusive_agent;
        fan->store =
            fan->bound_store ? std::optional(std::to_string(*fan->bound_store)) : m.fan->store;
    }

    const auto arrived = arrival(m.message, opts.now());
    routing::decision d;
    routing::live_snapshot used;
    std::string rule_text = "event";
    const bool routable = kind == event_class::message;
    if (routable) {
        routing::snapshot base = base_snapshot(*data, openid, *fan);
        // The message opens the customer-service window and renews the fan's session lock, in
        // the snapshot's script (both change nothing when the message is routed twice).
        routing::fan_activity activity{routing::window_kind::message, arrived, true, s.lock_ttl};
        auto decided = co_await decide_and_commit(clinic_id, base, s, activity, used);
        if (!decided) co_return decided.error();
        d = std::move(*decided);
        rule_text = routing::to_string(d.rule);
    }

    // The receipt (the exactly-once guard), routed_at and the fan's exclusive agent, together.
    std::optional<std::string> write_exclusive;
    if (routable && used.input.fan.exclusive_agent &&
        used.input.fan.exclusive_agent != fan->exclusive) {
        write_exclusive = used.input.fan.exclusive_agent;
    }
    std::optional<std::string> welcome;
    if (kind == event_class::subscribe && s.welcome_enabled && !s.welcome_text.empty()) {
        welcome = s.welcome_text;
    }
    std::optional<std::string> auto_kind;
    if (routable && d.auto_reply) auto_kind = routing::to_string(*d.auto_reply);
    if (welcome) auto_kind = "welcome";
    std::string receipt =
        routable ? receipt_json(d) : "{\"event\":" + json_quote(m.message.event) + "}";
    receipt_job job;
    job.message_id = message_id;
    job.clinic_id = clinic_id;
    job.account_id = account_id;
    job.openid = openid;
    job.rule = rule_text;
    if (d.owner) job.owner = to_u64(d.owner);
    job.targets = ids_json(d.targets);
    job.auto_reply = auto_kind;
    job.receipt = std::move(receipt);
    if (write_exclusive) job.write_exclusive = to_u64(write_exclusive);
    auto won = co_await receipts.submit(std::move(job));
    if (!won) co_return won.error();
    if (!*won) co_return std::optional<passive_reply>{};  // routed already
    if (swept_now) ++swept;
    decided_message r{std::move(m), data, kind, arrived, std::move(d), std::move(used),
                      std::move(rule_text), std::move(welcome), std::move(auto_kind)};
    co_return co_await apply(std::move(r), std::move(h));
}

// The effects of a routed message (its receipt is written): what this caller alone does.
awaitable<result<std::optional<passive_reply>>> routing_stage::impl::apply(
    decided_message dm, std::shared_ptr<handoff> h) {
    ++routed;
    stored_message& m = dm.message;
    const std::uint64_t clinic_id = m.account->clinic_id;
    const std::uint64_t account_id = m.account->id;
    const std::uint64_t message_id = m.id;
    const std::string& openid = m.message.from_user_name;
    const event_class kind = dm.kind;
    const auto arrived = dm.arrived;
    const clinic_settings& s = *dm.data->settings;
    const routing::decision& d = dm.d;
    const routing::live_snapshot& used = dm.used;
    const std::string& rule_text = dm.rule_text;
    const std::optional<std::string>& welcome = dm.welcome;
    const std::optional<std::string>& auto_kind = dm.auto_kind;
    const bool routable = kind == event_class::message;

    // From here on this caller owns the message's effects. Redis failures are logged: the
    // receipt stands, and routing the message twice would be worse than a missed push.
    const auto now = opts.now();
    if (kind == event_class::subscribe || kind == event_class::window_event) {
        (void)co_await live.open_window(clinic_id, openid, routing::window_kind::event, arrived);
    } else if (kind == event_class::unsubscribe) {
        // The fan left (DESIGN.md §4): its session ends — no timer, no lock, and it no longer
        // counts in anyone's load.
        (void)co_await live.cancel_timer(clinic_id, openid);
        (void)co_await live.note_answered(clinic_id, openid);
        if (auto held = co_await live.lock_of(clinic_id, openid); held && *held) {
            (void)co_await live.release_lock(clinic_id, openid, (*held)->holder, (*held)->token);
        }
        agent_repository sessions(mysql);
        auto ended = co_await sessions.session_ended(account_id, openid, "unsubscribed");
        if (!ended) log::warn("routing.session_not_recorded", {{"message", message_id}});
    }

    // The welcome or the auto-reply: passive while WeChat waits, else through the outbox.
    std::optional<std::string> text;
    std::string origin;
    if (welcome) {
        text = welcome;
        origin = "auto:welcome";
    } else if (routable && d.auto_reply) {
        text = auto_reply_text(s, *d.auto_reply);
        origin = std::string("auto:") + routing::to_string(*d.auto_reply);
        if (text->empty()) text.reset();
    }
    const bool counts = text && !welcome;  // the welcome does not silence the auto-replies after it

    routing::route_effects fx;
    if (routable) {
        fx.owner = d.owner;
        if (d.receipt && d.receipt->stale_session_holder && used.lock) {
            fx.release_stale = used.lock;
        }
        // The no-answer timer: an agent was notified and online.
        const bool notified_online =
            std::any_of(d.targets.begin(), d.targets.end(), [&](const std::string& id) {
                return std::any_of(
                    used.input.agents.begin(), used.input.agents.end(),
                    [&](const routing::agent_state& a) { return a.id == id && a.online; });
            });
        if (notified_online && s.timeout.count() > 0) {
            fx.timer_due = now + s.timeout;
            fx.timer_payload = std::to_string(account_id) + ":" + std::to_string(message_id);
        }
        // Claimed atomically before it leaves: of the fan's messages routed at the same moment
        // (on any instance) only one gets the auto-reply, and the next message already sees it.
        if (counts) {
            fx.claim_at = now;
            fx.claim_window = s.suppression_window;
        }
        if (!d.targets.empty()) {
            fx.push_to = d.targets;
            fx.push_payload = "{\"type\":\"message\",\"message_id\":" + std::to_string(message_id) +
                              ",\"account_id\":" + std::to_string(account_id) +
                              ",\"openid\":" + json_quote(openid) +
                              ",\"msg_type\":" + json_quote(m.message.msg_type) +
                              ",\"rule\":" + json_quote(rule_text) +
                              ",\"owner\":" + (d.owner ? *d.owner : std::string("null"));
            if (const auto* t = std::get_if<wechat::text_message>(&m.message.body)) {
                fx.push_payload += ",\"content\":" + json_quote(t->content);
            }
            fx.push_payload += "}";
        }
    }
    bool claimed = !counts;
    if (routable) {
        routing::fan_effects effects;
        effects.fan = openid;
        effects.effects = std::move(fx);
        auto applied = co_await batches_of(clinic_id).effects.submit(std::move(effects));
        if (applied) {
            claimed = claimed || applied->auto_reply_claimed;
        } else {
            log::warn("routing.effects_failed",
                      {{"message", message_id}, {"reason", applied.error().message()}});
        }
    }
    log::debug("routing.routed", {{"message", message_id},
                                  {"clinic", clinic_id},
                                  {"rule", rule_text},
                                  {"targets", static_cast<std::uint64_t>(d.targets.size())},
                                  {"auto_reply", auto_kind.value_or("")}});
    if (!text || !claimed) co_return std::optional<passive_reply>{};
    // Still waited for (routing runs on the waiter's strand, so this cannot change until the
    // next co_await): the passive reply. Otherwise the outbox.
    if (m.can_reply && (!h || h->waiting)) {
        passive_reply r;
        r.content = std::move(*text);
        if (h) {
            h->reply = r;  // goes out with the answer
            h->timer.cancel();
        }
        ++auto_replies;
        co_return std::optional<passive_reply>(std::move(r));
    }
    if (co_await send_auto(clinic_id, account_id, openid, *text, origin, now) ==
        auto_send::queued) {
        ++auto_replies;
    }
    co_return std::optional<passive_reply>{};
}

awaitable<result<std::vector<std::uint64_t>>> routing_stage::impl::clinics_with_accounts() {
    if (!opts.clinics.empty()) co_return opts.clinics;
    auto rows = co_await mysql.query("SELECT DISTINCT clinic_id FROM official_accounts ORDER BY 1");
    if (!rows) co_return rows.error();
    std::vector<std::uint64_t> out;
    for (const auto& r : rows->rows) {
        if (auto id = to_u64(r[0])) out.push_back(*id);
    }
    co_return out;
}

awaitable<void> routing_stage::impl::loop(bool timers) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    const auto interval = timers ? opts.timer_interval : opts.sweep_interval;
    while (!stopping) {
        result<std::size_t> r = make_error_code(errc::shutting_down);
        if (timers) {
            r = co_await run_timers();
        } else {
            r = co_await sweep();
        }
        if (!r) log::debug("routing.worker_deferred", {{"reason", r.error().message()}});
        // Sleep in short steps so stop() is prompt.
        for (auto slept = std::chrono::milliseconds(0); slept < interval && !stopping;
             slept += std::chrono::milliseconds(100)) {
            timer.expires_after(std::min(std::chrono::milliseconds(100), interval - slept));
            co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        }
    }
    --loops;
}

awaitable<result<std::size_t>> routing_stage::impl::sweep() {
    std::vector<sql_value> p{
        static_cast<std::int64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(opts.sweep_min_age).count()),
        static_cast<std::int64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(opts.sweep_max_age).count()),
        static_cast<std::int64_t>(opts.sweep_batch)};
    std::string sql =
        "SELECT m.id, m.account_id, a.clinic_id, a.appid, m.body_xml FROM inbound_messages m "
        "JOIN official_accounts a ON a.id = m.account_id WHERE m.routed_at IS NULL "
        "AND m.received_at <= CURRENT_TIMESTAMP(3) - INTERVAL ? MICROSECOND "
        "AND m.received_at >= CURRENT_TIMESTAMP(3) - INTERVAL ? MICROSECOND" +
        storage::and_in("a.clinic_id", opts.clinics) + " ORDER BY m.id LIMIT ?";
    auto rows = co_await mysql.query(std::move(sql), std::move(p));
    if (!rows) co_return rows.error();
    std::size_t done = 0;
    for (auto& r : rows->rows) {
        if (stopping) break;
        auto id = to_u64(r[0]);
        auto account_id = to_u64(r[1]);
        auto clinic_id = to_u64(r[2]);
        if (!id || !account_id || !clinic_id) continue;
        auto parsed = wechat::parse_message(r[4].value_or(""));
        if (!parsed) {
            // Stored after it parsed once, so this is not expected; mark it so it is not retried.
            log::error("routing.unparsable", {{"message", *id}});
            receipt_job mark;
            mark.message_id = *id;
            mark.clinic_id = *clinic_id;
            mark.account_id = *account_id;
            mark.rule = "unparsable";
            mark.targets = "[]";
            mark.receipt = "{}";
            (void)co_await receipts.submit(std::move(mark));
            continue;
        }
        auto a = std::make_shared<account>();
        a->id = *account_id;
        a->clinic_id = *clinic_id;
        a->appid = r[3].value_or("");
        stored_message m{*id, std::move(a), std::move(*parsed), false, std::nullopt, nullptr,
                         false};
        auto routed_now = co_await route(std::move(m), true);
        if (!routed_now) {
            log::warn("routing.sweep_failed",
                      {{"message", *id}, {"reason", routed_now.error().message()}});
            const auto ec = routed_now.error();
            if (ec == make_error_code(errc::unavailable) || ec == make_error_code(errc::timeout) ||
                ec == make_error_code(errc::overloaded) ||
                ec == make_error_code(errc::shutting_down)) {
                co_return ec;  // Redis or MySQL away: the next round tries again
            }
            continue;  // a problem with this message only: the others still go
        }
        ++done;
    }
    co_return done;
}

awaitable<result<std::size_t>> routing_stage::impl::run_timers() {
    auto clinics = co_await clinics_with_accounts();
    if (!clinics) co_return clinics.error();
    std::size_t claimed_total = 0;
    for (const std::uint64_t c : *clinics) {
        if (stopping) break;
        const auto now = opts.now();
        // Agents whose presence ran out (no heartbeat within the TTL, or closed past the grace)
        // go offline here, on exactly one instance, and their session locks end with them.
        auto reaped = co_await live.reap_offline(c, now);
        if (!reaped) co_return reaped.error();
        // Their sessions end, and the clinic's consoles are told (lock ends, then presence).
        for (const auto& gone : *reaped) {
            if (const auto agent_id = to_u64(gone.agent)) {
                co_await announce_offline(mysql, live, c, *agent_id, "", gone.released_fans,
                                          "offline", now, gone.was_accepting);
            }
        }
        // Session locks that ran out by silence end here, each on exactly one instance.
        auto silent =
            co_await end_silent_locks(mysql, live, c, std::max<std::size_t>(1, opts.timer_batch), now);
        if (!silent) co_return silent.error();
        auto claimed =
            co_await live.claim_due_timers(c, now, std::max<std::size_t>(1, opts.timer_batch));
        if (!claimed) co_return claimed.error();
        if (claimed->empty()) continue;
        auto data = co_await clinic(c);
        if (!data) co_return data.error();  // the claims come back after their lease
        const clinic_settings& s = *(*data)->settings;
        for (const auto& t : *claimed) {
            ++claimed_total;
            std::optional<std::uint64_t> account_id;
            if (const auto colon = t.payload.find(':'); colon != std::string::npos) {
                account_id = to_u64(t.payload.substr(0, colon));
            }
            if (account_id && s.timeout_enabled && s.config.auto_reply_enabled &&
                !s.timeout_text.empty()) {
                auto marks = co_await live.reply_marks_of(c, t.fan);
                if (!marks) co_return marks.error();
                if (!routing::suppressed(*marks, now, s.suppression_window)) {
                    const auto sent = co_await send_auto(c, *account_id, t.fan, s.timeout_text,
                                                         "auto:timeout", now);
                    // Not confirmed: the claim's lease runs out and another round tries again.
                    if (sent == auto_send::failed) continue;
                    if (sent == auto_send::queued) {
                        (void)co_await live.record_auto_reply(c, t.fan, now);
                        ++timeouts;
                        ++auto_replies;
                    }
                }
            }
            auto confirmed = co_await live.confirm_timer(c, t.fan, t.claim);
            if (!confirmed) log::warn("routing.timer_confirm_failed", {{"clinic", c}});
        }
    }
    co_return claimed_total;
}

routing_stage::routing_stage(asio::any_io_executor ex, storage::mysql_pool& mysql,
                             std::shared_ptr<storage::redis_client> redis,
                             routing::live_state& live, wechat::outbox& outbox,
                             routing_stage_options opts)
    : impl_(std::make_shared<impl>(std::move(ex), mysql, std::move(redis), live, outbox,
                                   std::move(opts))) {}

routing_stage::~routing_stage() {
    impl_->stopping = true;
}

namespace {

// Routes in the background of a waiting request, waking it when done.
awaitable<void> route_and_hand(std::shared_ptr<routing_stage::impl> self, stored_message m,
                               std::shared_ptr<handoff> h) {
    const std::uint64_t id = m.id;
    ++self->in_flight;
    auto r = co_await self->route(std::move(m), false, h);
    --self->in_flight;
    if (!r) {
        ++self->failures;
        log::warn("routing.deferred", {{"message", id}, {"reason", r.error().message()}});
    }
    h->timer.cancel();
}

// Runs on a strand: the routing and the request's wait share the handoff.
awaitable<std::optional<passive_reply>> route_within_budget(
    std::shared_ptr<routing_stage::impl> self, stored_message m) {
    auto ex = co_await asio::this_coro::executor;
    auto h = std::make_shared<handoff>(ex);
    h->timer.expires_after(self->opts.reply_budget);
    auto task = route_and_hand(self, std::move(m), h);
    asio::co_spawn(ex, std::move(task), asio::detached);
    co_await h->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    h->waiting = false;  // from now on an auto-reply goes through the outbox
    co_return std::move(h->reply);
}

}  // namespace

// A fan message's live state read before it is stored, for routed_with_row. Nothing (route after
// the commit) for events, after stop(), or when the settings or Redis fail here: route() then
// tries again, and reports.
awaitable<std::shared_ptr<routed_in_store>> routing_stage::impl::before_store(
    std::uint64_t clinic_id, const wechat::inbound_message& m) {
    if (!opts.decide_in_store || stopping || classify(m) != event_class::message) {
        co_return nullptr;
    }
    auto loaded = co_await clinic(clinic_id);
    if (!loaded) co_return nullptr;
    std::shared_ptr<const clinic_data> data = *loaded;
    const clinic_settings& s = *data->settings;
    const auto now = opts.now();
    snapshot_job job;
    job.request.base = base_snapshot(*data, m.from_user_name, fan_row{});
    // As in route(): the message opens the window and renews the lock (a message stored twice,
    // or routed again after the commit, changes nothing more).
    job.request.activity =
        routing::fan_activity{routing::window_kind::message, arrival(m, now), true, s.lock_ttl};
    job.now = now;
    auto ls = co_await batches_of(clinic_id).snapshots.submit(std::move(job));
    if (!ls) co_return nullptr;
    ls->input.auto_reply_suppressed = routing::suppressed(ls->marks, now, s.suppression_window);
    co_return std::make_shared<routed_with_row>(std::move(data), clinic_id, std::move(*ls));
}

awaitable<std::shared_ptr<routed_in_store>> routing_stage::before_store(
    const std::shared_ptr<const account>& a, const wechat::inbound_message& m) {
    co_return co_await impl_->before_store(a->clinic_id, m);
}

awaitable<std::optional<passive_reply>> routing_stage::on_stored(stored_message m) {
    ++impl_->stored;
    const auto started = std::chrono::steady_clock::now();
    std::optional<passive_reply> reply;
    if (m.can_reply && impl_->opts.reply_budget.count() > 0) {
        auto strand = asio::make_strand(impl_->ex);
        auto task = route_within_budget(impl_, std::move(m));
        reply = co_await asio::co_spawn(strand, std::move(task), asio::use_awaitable);
    } else {
        const std::uint64_t id = m.id;
        ++impl_->in_flight;
        auto r = co_await impl_->route(std::move(m), false);
        --impl_->in_flight;
        if (r) {
            reply = std::move(*r);
        } else {
            ++impl_->failures;
            log::warn("routing.deferred", {{"message", id}, {"reason", r.error().message()}});
            // the sweeper routes it
        }
    }
    impl_->waited_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now() - started)
                            .count();
    co_return reply;
}

awaitable<result<std::size_t>> routing_stage::sweep_once() {
    co_return co_await impl_->sweep();
}

awaitable<result<std::size_t>> routing_stage::run_timers_once() {
    co_return co_await impl_->run_timers();
}

awaitable<result<route_preview>> routing_stage::preview(std::uint64_t clinic, std::uint64_t account,
                                                        std::string openid) {
    auto loaded = co_await impl_->load(clinic);
    if (!loaded) co_return loaded.error();
    const std::shared_ptr<const clinic_data> data = *loaded;
    auto read_fan = [account, openid](mysql_session& db) -> result<std::optional<fan_row>> {
        std::vector<sql_value> fp{account, openid};
        auto rows = db.query(
            "SELECT consultant_agent_id, exclusive_agent_id, store_id FROM fans "
            "WHERE account_id = ? AND openid = ?",
            fp);
        if (!rows) return rows.error();
        if (rows->rows.empty()) return std::optional<fan_row>{};
        fan_row f;
        f.consultant = rows->rows[0][0];
        f.exclusive = rows->rows[0][1];
        f.store = rows->rows[0][2];
        return std::optional<fan_row>(std::move(f));
    };
    auto fan = co_await impl_->mysql.run(read_fan);
    if (!fan) co_return fan.error();
    route_preview out;
    out.fan_known = fan->has_value();
    const clinic_settings& s = *data->settings;
    // No fan activity: load_snapshot's script then only reads (routing_live_test shows it).
    const auto now = impl_->opts.now();
    const fan_row owners = fan->has_value() ? **fan : fan_row();
    routing::snapshot base = base_snapshot(*data, openid, owners);
    auto ls = co_await impl_->live.load_snapshot(clinic, std::move(base), now);
    if (!ls) co_return ls.error();
    ls->input.auto_reply_suppressed = routing::suppressed(ls->marks, now, s.suppression_window);
    const auto d = routing::decide(ls->input, routing::with_receipt::yes);
    out.decision_json = receipt_json(d);
    if (d.auto_reply) {
        const std::string& text = auto_reply_text(s, *d.auto_reply);
        if (!text.empty()) out.auto_reply_text = text;
    }
    out.input = std::move(ls->input);
    out.lock = std::move(ls->lock);
    co_return out;
}

awaitable<result<std::shared_ptr<const clinic_settings>>> routing_stage::settings(
    std::uint64_t clinic) {
    auto data = co_await impl_->clinic(clinic);
    if (!data) co_return data.error();
    co_return (*data)->settings;
}

namespace {
awaitable<void> run_loop(std::shared_ptr<routing_stage::impl> self, bool timers) {
    co_await self->loop(timers);
}
}  // namespace

void routing_stage::start_workers() {
    impl_->loops += 2;
    asio::co_spawn(impl_->ex, run_loop(impl_, true), asio::detached);
    asio::co_spawn(impl_->ex, run_loop(impl_, false), asio::detached);
}

awaitable<void> routing_stage::stop(std::chrono::milliseconds limit) {
    impl_->stopping = true;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (impl_->loops > 0 && std::chrono::steady_clock::now() < deadline) {
        timer.expires_after(std::chrono::milliseconds(20));
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    // Routing still in flight (past a request's budget) finds the writer gone: the sweeper of
    // the next start routes its message.
    impl_->receipts.stop();
    impl_->stop_batches();
}

routing_stage_stats routing_stage::stats() const {
    routing_stage_stats s;
    s.stored = impl_->stored;
    s.routed = impl_->routed;
    s.swept = impl_->swept;
    s.with_row = impl_->with_row;
    s.auto_replies = impl_->auto_replies;
    s.timeouts = impl_->timeouts;
    s.failures = impl_->failures;
    s.waited = std::chrono::nanoseconds(impl_->waited_ns.load());
    s.in_flight = static_cast<std::uint64_t>(std::max<std::int64_t>(0, impl_->in_flight.load()));
    return s;
}

}  // namespace scrm::gateway

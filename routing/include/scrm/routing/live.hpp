// Routing's live state in Redis (DESIGN.md §5, §6): agent presence, session locks with fencing
// tokens, exclusive assignment and load, durable no-answer timers, auto-reply suppression and the
// customer-service window, and the snapshot decide() reads, assembled in one round trip. Library
// `routing_live`, the I/O shell around routing_core: it stores and reads what decide() needs and
// the effects it commits; it decides nothing itself.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "scrm/common/error.hpp"
#include "scrm/routing/snapshot.hpp"

namespace scrm::storage {
class redis_client;
}

namespace scrm::routing {

// An instant with millisecond resolution. Every operation whose outcome depends on time takes
// `now` from the caller (an injected clock); only lock expiry uses Redis's own clock (PX).
using instant = std::chrono::sys_time<std::chrono::milliseconds>;

// A customer-service window: after a qualifying fan action, `messages` API messages within
// `length` (protocol sheet §5.3).
struct quota_rule {
    std::chrono::milliseconds length{0};
    int messages = 0;
};

struct live_options {
    // Keys are "<key_root>:{c<clinic>}:<kind>[:<id>]": the hash tag keeps one clinic's keys in one
    // cluster slot, so every multi-key script stays in that slot (DESIGN.md §6). Tests use a
    // unique root.
    std::string key_root = "scrm";
    // A connection that heartbeats keeps its agent online for this long after each heartbeat.
    std::chrono::milliseconds presence_ttl{std::chrono::seconds(60)};
    // A connection that closes keeps its agent online for this long: a page reload within the
    // grace re-routes nothing.
    std::chrono::milliseconds reconnect_grace{std::chrono::seconds(15)};
    // A session lock ends after this long without a fan or agent message (Redis PX).
    std::chrono::milliseconds lock_ttl{std::chrono::minutes(10)};
    // A claimed timer not confirmed within this long is due again (its claimant died).
    std::chrono::milliseconds timer_lease{std::chrono::seconds(60)};
    // No auto-reply (other than welcome) within this long after an auto-reply or an agent reply.
    std::chrono::milliseconds suppression_window{std::chrono::minutes(10)};
    // A fan message opens 5 messages within 48 h; a follow, scan or menu click 3 within 1 min.
    quota_rule message_window{std::chrono::hours(48), 5};
    quota_rule event_window{std::chrono::minutes(1), 3};
};

// The last auto-reply and the last agent reply to a fan.
struct reply_marks {
    std::optional<instant> auto_reply;
    std::optional<instant> agent_reply;
    friend bool operator==(const reply_marks&, const reply_marks&) = default;
};

// DESIGN.md §5 suppression: an auto-reply or an agent reply less than `window` before `now` (a
// mark after `now`, from a clock slightly ahead, counts too).
bool suppressed(const reply_marks& m, instant now, std::chrono::milliseconds window) noexcept;

// The two customer-service windows the gateway counts per fan.
enum class window_kind : std::uint8_t {
    message,  // opened by a fan message
    event,    // opened by a follow, a scan or a menu click
};

// Who wants to send through the customer-service API.
enum class sender_kind : std::uint8_t { agent, auto_reply };

enum class spend_status : std::uint8_t {
    spent,               // a slot was taken: send
    closed,              // no window open: the fan must write first (or a template notification)
    exhausted,           // windows open, every slot used
    last_slot_reserved,  // an auto-reply, and only a last slot is left: kept for the agents
};

struct spend_result {
    spend_status status = spend_status::closed;
    std::optional<window_kind> window;  // spent: the window charged
    int remaining = 0;                  // spent: slots left in that window afterwards
    friend bool operator==(const spend_result&, const spend_result&) = default;
};

struct window_state {
    window_kind kind = window_kind::message;
    std::optional<instant> opened;  // last qualifying action, if any is recorded
    bool open = false;              // now < opened + length
    int used = 0;                   // slots spent since it opened
    int remaining = 0;              // open: quota - used; closed: 0
    friend bool operator==(const window_state&, const window_state&) = default;
};

// The state of one window from its stored fields (pure).
window_state evaluate_window(window_kind kind, std::optional<instant> opened, int used, instant now,
                             const quota_rule& rule) noexcept;

// What a presence change did.
struct presence_change {
    bool came_online = false;  // offline before, online after (show the backlog)
    bool went_offline = false;  // online before, offline after (sign_out with `now`, the switch)
    // Fans whose session locks this agent held and that the change released (going offline).
    std::vector<std::string> released_fans;
    friend bool operator==(const presence_change&, const presence_change&) = default;
};

// An agent whose presence ran out, found and removed by reap_offline().
struct offline_agent {
    std::string agent;
    std::vector<std::string> released_fans;  // its session locks, released
    // It was accepting chats until then (else its going offline was reported by the switch).
    bool was_accepting = true;
    friend bool operator==(const offline_agent&, const offline_agent&) = default;
};

enum class lock_status : std::uint8_t {
    acquired,    // the lock was free: the caller holds it now, with a new token
    renewed,     // the caller already held it: its TTL restarted, same token
    taken_over,  // held by an agent who is offline (DESIGN.md §5 rule 2): now the caller's
    refused,     // held by another, online agent: `holder` names it
};

struct lock_result {
    lock_status status = lock_status::refused;
    std::string holder;      // who holds the lock after the call ("" when refused on a free lock)
    std::int64_t token = 0;  // the caller's fencing token; 0 when refused (never another's)
    std::optional<std::string> previous_holder;  // taken_over: the offline agent it replaced
    friend bool operator==(const lock_result&, const lock_result&) = default;
};

// A fan's current session lock.
struct lock_info {
    std::string holder;
    std::int64_t token = 0;
    std::chrono::milliseconds ttl{0};  // remaining
    friend bool operator==(const lock_info&, const lock_info&) = default;
};

// A session lock that ran out by silence (its TTL passed without a fan or agent message), found
// and removed from the expiry index by claim_expired_locks().
struct expired_lock {
    std::string fan;
    std::string holder;      // who held it
    std::int64_t token = 0;  // the holding's fencing token
    instant due{};           // when it ran out (Redis's clock)
    friend bool operator==(const expired_lock&, const expired_lock&) = default;
};

enum class assign_status : std::uint8_t {
    assigned,          // this call made the agent the fan's exclusive agent
    already_assigned,  // the agent already was (an earlier call, or a racing one, set it)
    lost,              // the fan's exclusive agent is not `expected`: nothing changed
    stale_pick,        // another of the candidates now has a lower load than `agent` (a concurrent
                       // commit changed the loads the pick was made from): nothing changed, decide
                       // again from a fresh snapshot
    repicked,          // (repick mode) the loads had changed: the commit picked again among the
                       // candidates from the current loads and made that agent (named in
                       // exclusive_agent) the fan's exclusive agent instead
};

// What the even-distribution pick reads about an agent.
struct agent_load {
    std::string agent;
    std::int64_t load = 0;           // see live_state's "assignment and load"
    std::int64_t last_assigned = 0;  // seconds since epoch of its last pick; 0 = never
    friend bool operator==(const agent_load&, const agent_load&) = default;
};

struct assign_result {
    assign_status status = assign_status::lost;
    // The fan's exclusive agent after the call: the winner the loser routes to (nullopt when a
    // lost CAS found the fan without one, i.e. it expected one that was since removed).
    std::optional<std::string> exclusive_agent;
    // Repick mode, assigned or repicked: the candidates' load and last_assigned the pick was
    // made from (before this commit), in the order given.
    std::vector<agent_load> loads;
    friend bool operator==(const assign_result&, const assign_result&) = default;
};

// A timer handed to one caller by claim_due_timers().
struct claimed_timer {
    std::string fan;
    instant due{};
    std::string payload;
    std::int64_t claim = 0;  // this claim's id, for confirm_timer()
    friend bool operator==(const claimed_timer&, const claimed_timer&) = default;
};

// A fan's armed timer.
struct timer_info {
    instant due{};
    std::string payload;
    std::optional<instant> lease_until;  // claimed, and until when
    friend bool operator==(const timer_info&, const timer_info&) = default;
};

// A fan's action, applied by load_snapshot() before it reads, in the same script: the
// customer-service window it opens at `at` (see open_window), and whether it restarts the TTL of
// the fan's session lock (a fan message does: renew_lock).
struct fan_activity {
    std::optional<window_kind> opens;
    instant at{};
    bool renews_lock = false;
    std::optional<std::chrono::milliseconds> lock_ttl;  // the clinic's; default live_options'
};

// What routing one message changes in Redis once its receipt is committed (apply_route), each
// part as the single-purpose operation named.
struct route_effects {
    std::optional<std::string> owner;        // note_unanswered(fan, owner)
    std::optional<lock_info> release_stale;  // release_lock(fan, holder, token): an offline holder
    std::optional<instant> timer_due;        // arm_timer(fan, timer_due, timer_payload)
    std::string timer_payload;
    std::optional<instant> claim_at;  // claim_auto_reply(fan, claim_at, claim_window)
    std::chrono::milliseconds claim_window{0};
    // push(id, push_payload) for each id: the agents' consoles.
    std::vector<std::string> push_to;
    std::string push_payload;
};

// One message's part of load_snapshots(): its snapshot's static part and the fan's action.
struct snapshot_request {
    snapshot base;
    std::optional<fan_activity> activity;
};

// One message's part of apply_routes().
struct fan_effects {
    std::string fan;
    route_effects effects;
};

// A console push as kept in an agent's event stream: its id (a Redis stream id,
// "<ms>-<seq>", increasing) and the payload as delivered, with "event_id" first.
struct agent_event {
    std::string id;
    std::string payload;
    friend bool operator==(const agent_event&, const agent_event&) = default;
};

struct agent_events {
    std::vector<agent_event> events;  // after the id asked for, oldest first
    // Some events after the id asked for are no longer kept (the stream was trimmed or expired):
    // the console must reload what it shows.
    bool gap = false;
    // More events than the limit: those returned are the oldest; ask again after the last.
    bool more = false;
};

struct route_outcome {
    bool auto_reply_claimed = false;  // claim_at was given and the claim won
    bool timer_armed = false;         // timer_due was given and the fan had no timer yet
    friend bool operator==(const route_outcome&, const route_outcome&) = default;
};

// load_snapshot()'s answer: the snapshot for decide() and what it was made from.
struct live_snapshot {
    snapshot input;                 // ready for decide()
    std::optional<lock_info> lock;  // the fan's lock as stored (its holder may be offline, or not
                                    // among the agents: then it is not the session_holder)
    reply_marks marks;
    friend bool operator==(const live_snapshot&, const live_snapshot&) = default;
};

const char* to_string(lock_status s) noexcept;
const char* to_string(assign_status s) noexcept;
const char* to_string(window_kind k) noexcept;
const char* to_string(spend_status s) noexcept;
std::ostream& operator<<(std::ostream& os, window_kind k);
std::ostream& operator<<(std::ostream& os, spend_status s);
std::ostream& operator<<(std::ostream& os, const spend_result& r);
std::ostream& operator<<(std::ostream& os, const window_state& w);
std::ostream& operator<<(std::ostream& os, const reply_marks& m);
std::ostream& operator<<(std::ostream& os, assign_status s);
std::ostream& operator<<(std::ostream& os, const assign_result& r);
std::ostream& operator<<(std::ostream& os, const agent_load& l);
std::ostream& operator<<(std::ostream& os, const claimed_timer& t);
std::ostream& operator<<(std::ostream& os, const timer_info& t);
std::ostream& operator<<(std::ostream& os, lock_status s);
std::ostream& operator<<(std::ostream& os, const lock_result& r);
std::ostream& operator<<(std::ostream& os, const lock_info& l);
std::ostream& operator<<(std::ostream& os, const presence_change& c);
std::ostream& operator<<(std::ostream& os, const offline_agent& a);
std::ostream& operator<<(std::ostream& os, const expired_lock& l);

// The live state of every clinic on one Redis.
//
// Threading: all member functions may be called concurrently (the client is thread-safe); the
// object must outlive every coroutine started from it. Atomicity comes from Redis: every
// operation that reads and then writes is one Lua script, so two gateway instances sharing the
// Redis see each operation happen entirely before or after the other.
//
// Failures are values: errc::bad_input for an empty agent or fan id; the redis_client's errors
// otherwise (unavailable, timeout — then a write may or may not have happened),
// errc::protocol_error for a reply of an unexpected shape. Most writes may be repeated after a
// timeout (heartbeat, marks, acquire → renewed, commit → already_assigned, arm → false);
// spend_window and claim_due_timers may not: a lost reply costs a slot (WeChat's own count stays
// the final check) or leaves a claim to run out its lease.
class live_state {
public:
    live_state(std::shared_ptr<storage::redis_client> redis, live_options options);

    const live_options& options() const noexcept { return opts_; }

    // "<key_root>:{c<clinic>}:" — every key of the clinic starts with it.
    std::string key_prefix(std::uint64_t clinic) const;

    // ---- presence --------------------------------------------------------------------------
    // An agent is online at `now` while one of its connections is live (heartbeat within
    // presence_ttl, or closed within reconnect_grace) and it is accepting chats. Connections are
    // named by the caller (one per console tab), so closing one tab does not hide another.

    // Connection `connection` of `agent` is alive at `now`: live until now + presence_ttl.
    boost::asio::awaitable<result<presence_change>> heartbeat(std::uint64_t clinic,
                                                              std::string agent,
                                                              std::string connection, instant now);
    // The connection closed (page reload, network loss): live until now + reconnect_grace. An
    // unknown connection changes nothing.
    boost::asio::awaitable<result<void>> disconnect(std::uint64_t clinic, std::string agent,
                                                    std::string connection, instant now);
    // Signing out: every connection ends now, the agent is offline and its locks are released.
    // With `now`, went_offline says whether it was online at `now` before.
    boost::asio::awaitable<result<presence_change>> sign_out(
        std::uint64_t clinic, std::string agent, std::optional<instant> now = std::nullopt);
    // The "accepting chats" switch (kept across sign-ins; on by default). Off counts as offline:
    // the agent's session locks are released at once.
    boost::asio::awaitable<result<presence_change>> set_accepting(std::uint64_t clinic,
                                                                  std::string agent, bool accepting,
                                                                  instant now);
    // The clinic's agents online at `now`, sorted by id.
    boost::asio::awaitable<result<std::vector<std::string>>> online_agents(std::uint64_t clinic,
                                                                           instant now);
    // Finds the agents whose presence ran out by `now`, removes their presence and releases
    // their session locks — atomically, so each is reported to exactly one caller. Meant for a
    // periodic sweep; sorted by agent id.
    boost::asio::awaitable<result<std::vector<offline_agent>>> reap_offline(std::uint64_t clinic,
                                                                            instant now);

    // ---- session locks (DESIGN.md §5) -----------------------------------------------------
    // One lock per fan: the agent talking to the fan. Each acquisition (and each transfer) gets
    // a new fencing token from a per-clinic counter, strictly increasing, so a token names one
    // holding; a writer presents it (check_fence) and a stale holder — whose lock expired and was
    // taken by someone else, or by itself again — is refused. Expiry is Redis's PX: `ttl` where
    // an operation takes one (the clinic's setting), else live_options::lock_ttl.

    // The agent replies to or accepts the fan's conversation at `now` (presence is judged at
    // `now`): acquired if free, renewed if already the caller's, taken over if the holder is
    // offline, refused (naming the holder) otherwise.
    boost::asio::awaitable<result<lock_result>> acquire_lock(
        std::uint64_t clinic, std::string fan, std::string agent, instant now,
        std::optional<std::chrono::milliseconds> ttl = std::nullopt);
    // A fan message: restarts the TTL of whatever lock the fan has; the lock, or nullopt.
    boost::asio::awaitable<result<std::optional<lock_info>>> renew_lock(
        std::uint64_t clinic, std::string fan,
        std::optional<std::chrono::milliseconds> ttl = std::nullopt);
    // An agent message: restarts the TTL if `agent` holds the lock with `token`; false if not
    // (a stale holder).
    boost::asio::awaitable<result<bool>> renew_lock_as(
        std::uint64_t clinic, std::string fan, std::string agent, std::int64_t token,
        std::optional<std::chrono::milliseconds> ttl = std::nullopt);
    // The holder ends the session. False (nothing changed) unless `agent` holds it with `token`.
    boost::asio::awaitable<result<bool>> release_lock(std::uint64_t clinic, std::string fan,
                                                      std::string agent, std::int64_t token);
    // Atomic hand-over: if `agent` holds the lock with `token`, `to` holds it now with a new
    // token and a fresh TTL (status acquired, holder `to`). Otherwise refused, naming the
    // current holder ("" when free). Presence of `to` is the caller's business.
    boost::asio::awaitable<result<lock_result>> transfer_lock(
        std::uint64_t clinic, std::string fan, std::string agent, std::int64_t token,
        std::string to, std::optional<std::chrono::milliseconds> ttl = std::nullopt);
    // Releases every lock `agent` holds (it went offline); the fans, sorted.
    boost::asio::awaitable<result<std::vector<std::string>>> release_agent_locks(
        std::uint64_t clinic, std::string agent);
    // Whether `token` is the fan's current lock token: the write it guards may proceed.
    boost::asio::awaitable<result<bool>> check_fence(std::uint64_t clinic, std::string fan,
                                                     std::int64_t token);
    // The fan's lock, if any.
    boost::asio::awaitable<result<std::optional<lock_info>>> lock_of(std::uint64_t clinic,
                                                                     std::string fan);
    // Up to `limit` (> 0) locks that ran out by silence, oldest first: each lock whose TTL passed
    // (by Redis's clock) since its last renewal, and that was not released, transferred or taken
    // again meanwhile, is reported to exactly one caller, once, and leaves the index with the
    // holder's index of locks. Every TTL change above keeps the index (a sorted set by expiry)
    // in step; a lock found still held (its renewal and the scan raced) is rescheduled, not
    // reported. A caller that fails after the claim loses the report (at most once).
    boost::asio::awaitable<result<std::vector<expired_lock>>> claim_expired_locks(
        std::uint64_t clinic, std::size_t limit);

    // ---- exclusive assignment and load (DESIGN.md §5) -------------------------------------
    // The fan's exclusive agent lives here so that a pick is committed with a compare-and-set
    // (MySQL, the system of record, is written after the commit wins). Load = the fans an agent
    // owns and has not answered, plus the fans whose session lock it holds — each fan counted
    // once when both apply (a session whose fan wrote again is one conversation, not two). The
    // unanswered part is a set per agent, so marking twice counts once and nothing drifts; the
    // lock part follows the locks themselves, so an expired lock stops counting by itself.

    // Commits a pick: if the fan's exclusive agent equals `expected` (nullopt = none yet), it
    // becomes `agent`, the fan counts as owned and unanswered by `agent` (moving from any
    // previous owner), and `agent`'s last_assigned becomes `now` — one script. If it already is
    // `agent`, nothing changes (already_assigned: a retry, or a racing instance that picked the
    // same agent). Otherwise lost, naming the current exclusive agent: route to it.
    // With `candidates` (the decision's pool, from its receipt or the snapshot), the commit also
    // refuses with stale_pick when one of them now has a strictly lower load than `agent`: picks
    // made concurrently from the same loads do not all land on one agent, so loads stay within 1
    // under bursts too. Ties are not re-checked (last_assigned and id order may differ a little
    // under races; the load spread does not). With `repick` instead of refusing, the commit picks
    // again among the candidates from the current loads — lowest load, least recently assigned,
    // smallest id, as decide() does — and commits that agent (repicked, or assigned when it is
    // `agent`), returning the loads it picked from: the last resort of a pick that keeps meeting
    // concurrent commits, which still keeps the spread within 1.
    boost::asio::awaitable<result<assign_result>> commit_exclusive(
        std::uint64_t clinic, std::string fan, std::optional<std::string> expected,
        std::string agent, instant now, std::vector<std::string> candidates = {},
        bool repick = false);
    // Sets (or with nullopt removes) the fan's exclusive agent without condition: an admin's
    // reassignment, or rebuilding Redis from MySQL. Load is not touched.
    boost::asio::awaitable<result<void>> set_exclusive(std::uint64_t clinic, std::string fan,
                                                       std::optional<std::string> agent);
    boost::asio::awaitable<result<std::optional<std::string>>> exclusive_agent(std::uint64_t clinic,
                                                                               std::string fan);
    // The fan wrote and `agent` owns the message (the decision's owner): the fan counts in the
    // agent's load until answered. A fan has one such owner: marking it for another agent moves
    // it. True when the agent's unanswered set grew (the load increment).
    boost::asio::awaitable<result<bool>> note_unanswered(std::uint64_t clinic, std::string fan,
                                                         std::string agent);
    // An agent replied to the fan: it leaves its owner's unanswered set (the load decrement).
    // The owner whose set shrank, or nullopt when the fan was not waiting.
    boost::asio::awaitable<result<std::optional<std::string>>> note_answered(std::uint64_t clinic,
                                                                             std::string fan);
    // Load and last_assigned of each agent, in the order given.
    boost::asio::awaitable<result<std::vector<agent_load>>> read_loads(
        std::uint64_t clinic, std::vector<std::string> agents);

    // ---- durable timers: the no-answer auto-reply (DESIGN.md §5) --------------------------
    // At most one timer per fan, in a sorted set by due time (in Redis, so they survive restarts
    // of any instance). claim_due_timers() moves due timers to a claimed set atomically, so each
    // claim goes to exactly one caller; a claim is held for timer_lease and must be confirmed
    // (after the reply was handed to the outbox) — unconfirmed, the timer is due again and the
    // next claim takes it: at least once, with a lease long enough for a send, not twice.

    // Arms the fan's timer for `due` with `payload` (e.g. the message id that started it). False,
    // changing nothing, when the fan already has one (due or claimed): the first unanswered
    // message starts the clock.
    boost::asio::awaitable<result<bool>> arm_timer(std::uint64_t clinic, std::string fan,
                                                   instant due, std::string payload);
    // An agent replied: the timer is gone, claimed or not (a claimant's confirm then returns
    // false). True when there was one.
    boost::asio::awaitable<result<bool>> cancel_timer(std::uint64_t clinic, std::string fan);
    // Claims up to `limit` (> 0) timers due at `now` — including claimed ones whose lease ran
    // out — in due order, each leased until now + timer_lease.
    boost::asio::awaitable<result<std::vector<claimed_timer>>> claim_due_timers(
        std::uint64_t clinic, instant now, std::size_t limit);
    // The claimant is done: the timer is deleted if `claim` is still its claim. False when it
    // was cancelled, or re-claimed after the lease ran out.
    boost::asio::awaitable<result<bool>> confirm_timer(std::uint64_t clinic, std::string fan,
                                                       std::int64_t claim);
    boost::asio::awaitable<result<std::optional<timer_info>>> timer_of(std::uint64_t clinic,
                                                                       std::string fan);

    // ---- suppression and the customer-service window (DESIGN.md §5) ------------------------
    // Per fan, one hash (expiring once every window it holds is over) so each check is one read.

    // An auto-reply went out to the fan at `now` / an agent replied at `now`. A mark only moves
    // forward: recording an older instant keeps the newer one.
    boost::asio::awaitable<result<void>> record_auto_reply(std::uint64_t clinic, std::string fan,
                                                           instant now);
    boost::asio::awaitable<result<void>> record_agent_reply(std::uint64_t clinic, std::string fan,
                                                            instant now);
    boost::asio::awaitable<result<reply_marks>> reply_marks_of(std::uint64_t clinic,
                                                               std::string fan);
    // Atomically: if neither an auto-reply nor an agent reply is marked within `window` before
    // `now`, marks an auto-reply at `now` and returns true; else false and nothing changes. Two
    // messages of one fan routed at the same instant on two instances: exactly one gets true, so
    // the fan gets at most one auto-reply per window.
    boost::asio::awaitable<result<bool>> claim_auto_reply(std::uint64_t clinic, std::string fan,
                                                          instant now,
                                                          std::chrono::milliseconds window);
    // suppressed(reply_marks_of(fan), now, suppression_window) in one round trip.
    boost::asio::awaitable<result<bool>> is_suppressed(std::uint64_t clinic, std::string fan,
                                                       instant now);
    // A qualifying fan action at `now` (a message: window_kind::message; a follow, scan or menu
    // click: window_kind::event) opens that window afresh: full quota until now + its length —
    // unless it was opened at `now` or later already (the same message seen twice, or an older
    // one arriving late), which changes nothing.
    boost::asio::awaitable<result<void>> open_window(std::uint64_t clinic, std::string fan,
                                                     window_kind kind, instant now);
    // Takes one slot before a customer-service send, atomically (concurrent senders never
    // overspend). Of the open windows with a slot to give, the one closing first is charged. An
    // auto-reply needs two slots left — it never spends the last one.
    boost::asio::awaitable<result<spend_result>> spend_window(std::uint64_t clinic, std::string fan,
                                                              sender_kind who, instant now);
    // Both windows at `now`: message, then event.
    boost::asio::awaitable<result<std::vector<window_state>>> windows_of(std::uint64_t clinic,
                                                                         std::string fan,
                                                                         instant now);

    // ---- snapshot assembly ----------------------------------------------------------------

    // Everything decide() needs from Redis for one fan, read by one script (one round trip,
    // one consistent moment), filled into `base` — whose static parts the caller loaded from
    // MySQL: config, agents (id, store, can_receive), fan (openid, consultant, exclusive agent,
    // store). Overwritten: `now` (floored to seconds); each agent's online, load and
    // last_assigned; session_holder (the lock's holder if it is one of the agents, else none);
    // auto_reply_suppressed (suppression_window); fan.exclusive_agent when Redis has one that is
    // among the agents (picks are committed here first, MySQL follows). bad_input for an empty
    // fan openid or agent id.
    // With `activity`, the fan's action is applied first, in the same script.
    boost::asio::awaitable<result<live_snapshot>> load_snapshot(
        std::uint64_t clinic, snapshot base, instant now,
        std::optional<fan_activity> activity = std::nullopt);

    // load_snapshot() for several messages of one clinic at one moment, in one script: each
    // request's activity is applied and its fan read in order, then the agents' live state is
    // read once for all of them — so every base must list the same agents (ids in the same
    // order; bad_input otherwise). One answer per request, in order. The routing stage hands
    // every message stored meanwhile to one call.
    boost::asio::awaitable<result<std::vector<live_snapshot>>> load_snapshots(
        std::uint64_t clinic, std::vector<snapshot_request> requests, instant now);

    // ---- a routed message's effects ---------------------------------------------------------

    // Everything in `effects`, atomically, in one script (one round trip per routed message
    // instead of one per effect). bad_input for an empty fan, owner, holder or push target.
    boost::asio::awaitable<result<route_outcome>> apply_route(std::uint64_t clinic, std::string fan,
                                                              route_effects effects);
    // apply_route() for several routed messages of one clinic, in order, in one script; one
    // outcome each, in order.
    boost::asio::awaitable<result<std::vector<route_outcome>>> apply_routes(
        std::uint64_t clinic, std::vector<fan_effects> routes);

    // ---- console pushes ----------------------------------------------------------------------

    // `payload` (a JSON object) to the agent's consoles on every instance: PUBLISHed on
    // "<key_prefix>agent:<id>" and kept in the agent's event stream ("<key_prefix>events:<id>",
    // the last ~1000 events, for a day) with "event_id" added first, so a console that reconnects
    // can ask for what it missed (events_after). The routing effects push the same way.
    // bad_input for an empty agent or a payload that is not an object ("{…}").
    boost::asio::awaitable<result<std::string>> push(std::uint64_t clinic, std::string agent,
                                                     std::string payload);
    // `payload` pushed as above to every agent of the clinic online at `now` but `except` (an
    // agent id, or "" for none), in one script; the number of agents it went to.
    boost::asio::awaitable<result<std::size_t>> push_online(std::uint64_t clinic,
                                                            std::string payload, instant now,
                                                            std::string except = {});
    // The agent's events after `last_id` (an id from an earlier event), at most `limit`.
    // bad_input for an empty agent or a malformed id.
    boost::asio::awaitable<result<agent_events>> events_after(std::uint64_t clinic,
                                                              std::string agent,
                                                              std::string last_id,
                                                              std::size_t limit = 500);

private:
    std::chrono::milliseconds fan_marks_ttl() const;

    std::shared_ptr<storage::redis_client> redis_;
    live_options opts_;
};

}  // namespace scrm::routing

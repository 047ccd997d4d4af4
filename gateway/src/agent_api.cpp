// Agents' sessions and presence: sign-in (PBKDF2 off the I/O threads, failures counted per agent
// in Redis with a lockout), tokens kept only as SHA-256 in Redis, the WebSocket whose heartbeat is
// presence and which carries the agent's pushes, the "accepting chats" switch and the backlog.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <mutex>

#include "agent_api_impl.hpp"
#include "scrm/gateway/media_requests.hpp"
#include "scrm/common/log.hpp"
#include "scrm/gateway/agent_push.hpp"
#include "scrm/gateway/lock_notices.hpp"
#include "scrm/gateway/password.hpp"
#include "scrm/gateway/routing_stage.hpp"
#include "scrm/storage/redis.hpp"

namespace scrm::gateway {

namespace asio = boost::asio;
using asio::awaitable;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

std::string id_or_null(const std::optional<std::uint64_t>& id) {
    return id ? std::to_string(*id) : "null";
}

http_response json_ok(std::string body) {
    http_response r;
    r.body = std::move(body);
    return r;
}

// "<clinic>:<agent>" as stored for a session.
std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_session_value(std::string_view v) {
    const auto colon = v.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    const auto clinic = parse_id(v.substr(0, colon));
    const auto agent = parse_id(v.substr(colon + 1));
    if (!clinic || !agent) return std::nullopt;
    return std::make_pair(*clinic, *agent);
}

// KEYS[1] the attempt counter, ARGV[1] the lockout window (ms): the count with this attempt; the
// window starts with the first attempt.
const storage::redis_script& count_failure_script() {
    static const storage::redis_script s(R"lua(
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
)lua");
    return s;
}

// Stores a new session and adds it to its agent's set; the set lives as long as the newest session.
const storage::redis_script& start_session_script() {
    static const storage::redis_script s(R"lua(
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
local ttl = redis.call('PTTL', KEYS[2])
if ttl < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 1
)lua");
    return s;
}

// Deletes the sessions in KEYS[1] (an agent's set of digests) except ARGV[2], each stored under
// ARGV[1] .. digest; the set then holds only the kept one. Returns how many were deleted.
const storage::redis_script& end_sessions_script() {
    static const storage::redis_script s(R"lua(
local ended = 0
for _, digest in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if digest ~= ARGV[2] then
    ended = ended + redis.call('DEL', ARGV[1] .. digest)
    redis.call('SREM', KEYS[1], digest)
  end
end
return ended
)lua");
    return s;
}

awaitable<bool> check_password(std::string password, std::string stored) {
    if (stored.empty()) {
        // No such agent: spend the same work on a stand-in hash, so that the answer's timing does
        // not tell which clinic and agent names exist.
        static const std::string stand_in = hash_password("scrm-no-such-agent").value_or("");
        (void)verify_password(password, stand_in);
        co_return false;
    }
    co_return verify_password(password, stored);
}

awaitable<std::optional<std::string>> hash_new_password(std::string password) {
    co_return hash_password(password);
}

}  // namespace

http_response unavailable(std::string_view event, const boost::system::error_code& ec) {
    log::warn(event, {{"reason", ec.message()}});
    return json_error(503, "服务暂时不可用，请稍后再试");
}

std::string agent_json(const agent_row& a) {
    return "{\"id\":" + std::to_string(a.id) + ",\"name\":" + json_quote(a.name) +
           ",\"clinic_id\":" + std::to_string(a.clinic) + ",\"role\":" + json_quote(a.role) +
           ",\"store_id\":" + id_or_null(a.store) +
           ",\"can_receive\":" + (a.can_receive ? "true" : "false") + "}";
}

std::string iso_utc(std::string sql_time) {
    if (sql_time.size() > 10 && sql_time[10] == ' ') sql_time[10] = 'T';
    return sql_time + "Z";
}

agent_api::impl::impl(asio::any_io_executor e, storage::mysql_pool& m,
                      std::shared_ptr<storage::redis_client> r, routing::live_state& l,
                      wechat::outbox& o, routing_stage& s, agent_push& p, agent_api_options op)
    : ex(std::move(e)),
      mysql(m),
      repo(m),
      console(m),
      redis(std::move(r)),
      live(l),
      outbox(o),
      stage(s),
      push(p),
      opts(std::move(op)),
      transcoder(opts.transcode) {}

routing::instant agent_api::impl::now() const {
    if (opts.now) return opts.now();
    return std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

std::string agent_api::impl::session_key(const std::string& digest) const {
    return opts.key_root + ":agent_session:" + digest;
}

std::string agent_api::impl::sessions_key(std::uint64_t agent) const {
    return opts.key_root + ":agent_sessions:" + std::to_string(agent);
}

awaitable<result<long long>> agent_api::impl::end_sessions(std::uint64_t agent, std::string keep) {
    std::vector<std::string> keys{sessions_key(agent)};
    std::vector<std::string> args{session_key(""), std::move(keep)};
    auto ended = co_await redis->eval(end_sessions_script(), std::move(keys), std::move(args));
    if (!ended) co_return ended.error();
    co_return ended->integer;
}

std::string agent_api::impl::channel(std::uint64_t clinic, std::uint64_t agent) const {
    return live.key_prefix(clinic) + "agent:" + std::to_string(agent);
}

awaitable<auth_result> agent_api::impl::authenticate(const http_request& req) {
    auth_result out;
    const auto presented = find_token(req.header("authorization"), req.header("cookie"));
    if (!presented || !token_well_formed(presented->token)) {
        out.refusal = json_error(401, "请先登录");
        co_return out;
    }
    // Behind the TLS proxy the page's host may arrive as X-Forwarded-Host; a page on another site
    // cannot set that header on a request that carries the cookie (nor on a WebSocket upgrade).
    const std::string origin = req.header("origin");
    const std::string forwarded = req.header("x-forwarded-host");
    if (presented->source == token_source::cookie && !same_origin(origin, req.header("host")) &&
        (forwarded.empty() || !same_origin(origin, forwarded))) {
        out.refusal = json_error(403, "请求来源不被允许");
        co_return out;
    }
    const std::string digest = token_digest(presented->token);
    auto stored = co_await redis->get(session_key(digest));
    if (!stored) {
        out.refusal = unavailable("agent.session_unavailable", stored.error());
        co_return out;
    }
    const auto ids = *stored ? parse_session_value(**stored) : std::nullopt;
    if (!ids) {
        out.refusal = json_error(401, "登录已过期，请重新登录");
        co_return out;
    }
    auto row = co_await repo.agent(ids->first, ids->second);
    if (!row) {
        out.refusal = unavailable("agent.session_unavailable", row.error());
        co_return out;
    }
    if (!*row || !(*row)->active) {
        // Deactivated since signing in: the session ends with it.
        std::vector<std::string> keys{session_key(digest)};
        (void)co_await redis->del(std::move(keys));
        out.refusal = json_error(401, "账号已停用，请联系管理员");
        co_return out;
    }
    out.agent = authed_agent{std::move(**row), digest};
    co_return out;
}

backlog_query agent_api::impl::backlog_for(const agent_row& a, const clinic_settings& s) const {
    backlog_query q;
    q.clinic = a.clinic;
    q.agent = a.id;
    q.candidate = a.can_receive;
    if (s.config.chain_store_mode) q.store_scope = a.store;
    q.consultant_mode = s.config.consultant_mode;
    q.max_age_s = static_cast<std::uint64_t>(opts.backlog_max_age.count());
    return q;
}

fan_scope scope_of(const agent_row& a, const clinic_settings& s) {
    fan_scope scope;
    scope.clinic = a.clinic;
    if (s.config.chain_store_mode && a.role != "admin") scope.store_scope = a.store;
    return scope;
}

awaitable<void> notify_clinic(std::shared_ptr<agent_api::impl> self, std::uint64_t clinic,
                              std::string payload) {
    // Through each agent's event stream, so a console that reconnects gets it too.
    auto sent = co_await self->live.push_online(clinic, std::move(payload), self->now());
    if (!sent) log::warn("agent.push_failed", {{"reason", sent.error().message()}});
}

namespace {

using impl_ptr = std::shared_ptr<agent_api::impl>;

// Failed password attempts are counted per agent ("a<id>"), shared by sign-in and the password
// change.
std::string failure_subject(const agent_row& a) {
    return "a" + std::to_string(a.id);
}

http_response locked_out(const agent_settings& s) {
    http_response r =
        json_error(429, "登录失败次数过多，请" +
                            std::to_string((s.signin_lockout.count() + 59) / 60) + "分钟后再试");
    r.headers.emplace_back("Retry-After", std::to_string(s.signin_lockout.count()));
    return r;
}

enum class attempt { right, wrong, locked_out };

// One password attempt against `stored` ("" for no such agent), counted under `subject` in Redis
// before the check — attempts made in parallel cannot slip past the limit — and the count dropped
// when it was right. The check runs on the hash thread; a wrong password is answered after the
// failure delay, and locked_out when this attempt reached the limit.
awaitable<result<attempt>> try_password(impl_ptr self, std::string subject, std::string password,
                                        std::string stored) {
    const auto& s = self->opts.settings;
    const std::string failures_key = self->opts.key_root + ":signin_failures:" + subject;
    std::vector<std::string> keys{failures_key};
    std::vector<std::string> args{std::to_string(
        std::chrono::duration_cast<std::chrono::milliseconds>(s.signin_lockout).count())};
    auto attempts =
        co_await self->redis->eval(count_failure_script(), std::move(keys), std::move(args));
    if (!attempts) co_return attempts.error();
    const long long limit = s.signin_max_failures;
    if (attempts->integer > limit) co_return attempt::locked_out;
    auto task = check_password(std::move(password), std::move(stored));
    const bool ok = co_await asio::co_spawn(self->hash_pool, std::move(task), asio::use_awaitable);
    if (!ok) {
        if (s.signin_failure_delay.count() > 0) {
            asio::steady_timer delay(co_await asio::this_coro::executor, s.signin_failure_delay);
            co_await delay.async_wait(tuple_awaitable);
        }
        co_return attempts->integer >= limit ? attempt::locked_out : attempt::wrong;
    }
    std::vector<std::string> clear{failures_key};
    (void)co_await self->redis->del(std::move(clear));
    co_return attempt::right;
}

awaitable<http_response> sign_in(impl_ptr self, http_request req) {
    auto parsed = parse_sign_in(req.body);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    sign_in_request in = std::move(*parsed.value);
    auto found =
        co_await self->repo.find_for_sign_in(in.clinic, in.clinic_id, in.name, in.agent_id);
    if (!found) co_return unavailable("agent.sign_in_unavailable", found.error());
    const std::optional<agent_row>& agent = *found;

    // Failures are counted per agent (per name typed, for names that do not exist), across every
    // instance: guessing is slow however the attempts are spread.
    const std::string subject =
        agent ? failure_subject(*agent)
              : "u" + token_digest((in.clinic_id ? std::to_string(*in.clinic_id) : *in.clinic) +
                                   "\n" + (in.agent_id ? std::to_string(*in.agent_id) : *in.name));
    const std::uint64_t agent_id = agent ? agent->id : 0;
    // g++ 12: no temporaries of a conditional inside the co_await expression.
    std::string stored_hash = agent ? agent->password_hash : std::string();
    auto attempt_task = try_password(self, subject, std::move(in.password), std::move(stored_hash));
    auto checked = co_await std::move(attempt_task);
    if (!checked) co_return unavailable("agent.sign_in_unavailable", checked.error());
    if (*checked == attempt::locked_out) {
        log::info("agent.sign_in_locked_out", {{"agent", agent_id}});
        co_return locked_out(self->opts.settings);
    }
    if (*checked == attempt::wrong) {
        log::info("agent.sign_in_failed", {{"agent", agent_id}});
        co_return json_error(401, "诊所、姓名或密码不正确");
    }
    if (!agent->active) co_return json_error(403, "该账号已停用，请联系管理员");

    const auto& s = self->opts.settings;
    const auto token = new_session_token();
    if (!token) co_return json_error(500, "internal error");
    const std::string digest = token_digest(*token);
    std::vector<std::string> keys{self->session_key(digest), self->sessions_key(agent->id)};
    std::vector<std::string> args{
        std::to_string(agent->clinic) + ":" + std::to_string(agent->id),
        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(s.session_ttl).count()),
        digest};
    auto stored = co_await self->redis->eval(start_session_script(), std::move(keys), std::move(args));
    if (!stored) co_return unavailable("agent.sign_in_unavailable", stored.error());
    log::info("agent.signed_in", {{"clinic", agent->clinic}, {"agent", agent->id}});
    const auto ttl = static_cast<std::int64_t>(s.session_ttl.count());
    http_response r =
        json_ok("{\"token\":\"" + *token + "\",\"expires_in\":" + std::to_string(ttl) +
                ",\"agent\":" + agent_json(*agent) + "}");
    r.headers.emplace_back("Set-Cookie", session_cookie(*token, ttl, s.cookie_secure));
    r.headers.emplace_back("Cache-Control", "no-store");
    co_return r;
}

awaitable<http_response> sign_out(impl_ptr self, http_request req) {
    auto auth = co_await self->authenticate(req);
    if (!auth.agent) co_return auth.refusal;
    const agent_row& a = auth.agent->row;
    std::vector<std::string> keys{self->session_key(auth.agent->token_digest)};
    auto removed = co_await self->redis->del(std::move(keys));
    if (!removed) co_return unavailable("agent.sign_out_unavailable", removed.error());
    // Offline now (its locks released); another signed-in tab brings it back at its next
    // heartbeat.
    auto off = co_await self->live.sign_out(a.clinic, std::to_string(a.id), self->now());
    if (!off) log::warn("agent.sign_out_presence_failed", {{"reason", off.error().message()}});
    if (off && (off->went_offline || !off->released_fans.empty())) {
        co_await announce_offline(self->mysql, self->live, a.clinic, a.id, a.name,
                                  off->released_fans, "signed_out", self->now());
    }
    log::info("agent.signed_out", {{"clinic", a.clinic}, {"agent", a.id}});
    http_response r = json_ok("{\"signed_out\":true}");
    r.headers.emplace_back("Set-Cookie", cleared_session_cookie(self->opts.settings.cookie_secure));
    co_return r;
}

awaitable<http_response> me(impl_ptr self, http_request req) {
    auto auth = co_await self->authenticate(req);
    if (!auth.agent) co_return auth.refusal;
    const agent_row& a = auth.agent->row;
    auto online = co_await self->live.online_agents(a.clinic, self->now());
    if (!online) co_return unavailable("agent.presence_unavailable", online.error());
    const bool is_online =
        std::find(online->begin(), online->end(), std::to_string(a.id)) != online->end();
    co_return json_ok("{\"agent\":" + agent_json(a) +
                      ",\"online\":" + (is_online ? "true" : "false") + "}");
}

awaitable<http_response> accepting(impl_ptr self, http_request req) {
    auto auth = co_await self->authenticate(req);
    if (!auth.agent) co_return auth.refusal;
    const agent_row& a = auth.agent->row;
    auto parsed = parse_accepting(req.body);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    const bool on = *parsed.value;
    auto changed =
        co_await self->live.set_accepting(a.clinic, std::to_string(a.id), on, self->now());
    if (!changed) co_return unavailable("agent.presence_unavailable", changed.error());
    log::info("agent.accepting", {{"clinic", a.clinic}, {"agent", a.id}, {"accepting", on}});
    if (changed->came_online) {
        co_await announce_online(self->live, a.clinic, a.id, a.name, self->now());
    } else if (changed->went_offline || !changed->released_fans.empty()) {
        co_await announce_offline(self->mysql, self->live, a.clinic, a.id, a.name,
                                  changed->released_fans, "offline", self->now());
    }
    std::string released = "[";
    for (const auto& fan : changed->released_fans) {
        if (released.size() > 1) released += ',';
        released += json_quote(fan);
    }
    co_return json_ok(std::string("{\"accepting\":") + (on ? "true" : "false") +
                      ",\"came_online\":" + (changed->came_online ? "true" : "false") +
                      ",\"released\":" + released + "]}");
}

awaitable<http_response> backlog(impl_ptr self, http_request req) {
    auto auth = co_await self->authenticate(req);
    if (!auth.agent) co_return auth.refusal;
    const agent_row& a = auth.agent->row;
    auto settings = co_await self->stage.settings(a.clinic);
    if (!settings) co_return unavailable("agent.backlog_unavailable", settings.error());
    auto fans = co_await self->repo.backlog(self->backlog_for(a, **settings));
    if (!fans) co_return unavailable("agent.backlog_unavailable", fans.error());
    std::string body = "{\"fans\":[";
    bool first = true;
    for (const auto& f : *fans) {
        if (!first) body += ',';
        first = false;
        body += "{\"account_id\":" + std::to_string(f.account_id) +
                ",\"openid\":" + json_quote(f.openid) +
                ",\"waiting_since\":" + json_quote(iso_utc(f.waiting_since)) +
                ",\"last_message_at\":" + json_quote(iso_utc(f.last_message_at)) +
                ",\"messages\":" + std::to_string(f.messages) +
                ",\"reason\":" + (f.for_consultant ? "\"consultant\"" : "\"no_agent\"") + "}";
    }
    co_return json_ok(body + "]}");
}

// ---- the console's WebSocket ---------------------------------------------------------------

// The connection's periodic work, stopped by the connection's coroutine (same strand).
struct keeper {
    explicit keeper(asio::any_io_executor ex) : timer(std::move(ex)) {}
    asio::steady_timer timer;
    bool stopped = false;
    std::chrono::steady_clock::time_point last_heartbeat{};
};

std::chrono::milliseconds heartbeat_interval(const agent_settings& s) {
    return std::max(std::chrono::milliseconds(50), s.presence_ttl / 3);
}

// A presence heartbeat of connection `conn_id`; one that brought the agent online is announced
// to the clinic's other consoles. Whether it did.
awaitable<bool> beat(impl_ptr self, agent_row a, std::string conn_id) {
    auto hb = co_await self->live.heartbeat(a.clinic, std::to_string(a.id), conn_id, self->now());
    if (!hb) {
        log::warn("agent.heartbeat_failed", {{"reason", hb.error().message()}});
        co_return false;
    }
    if (hb->came_online) co_await announce_online(self->live, a.clinic, a.id, a.name, self->now());
    co_return hb->came_online;
}

// Every heartbeat interval: the session still valid (signed out or deactivated elsewhere: the
// connection closes with 4001), then the presence heartbeat.
awaitable<void> keep_alive(impl_ptr self, authed_agent agent, std::string conn_id,
                           std::shared_ptr<ws_session> session, std::shared_ptr<keeper> k) {
    const auto interval = heartbeat_interval(self->opts.settings);
    const agent_row& a = agent.row;
    while (!k->stopped) {
        k->timer.expires_after(interval);
        co_await k->timer.async_wait(tuple_awaitable);
        if (k->stopped) break;
        std::vector<std::string> keys{self->session_key(agent.token_digest)};
        auto live_session = co_await self->redis->exists(std::move(keys));
        if (k->stopped) break;
        if (live_session && *live_session == 0) {
            session->send(R"({"type":"signed_out"})");
            session->close(4001, "signed out");
            break;
        }
        (void)co_await beat(self, a, conn_id);
        k->last_heartbeat = std::chrono::steady_clock::now();
    }
}

// A Redis stream id "<ms>-<seq>" as a pair of numbers; {0, 0} when it is not one.
std::pair<std::uint64_t, std::uint64_t> stream_id(std::string_view id) {
    const auto dash = id.find('-');
    std::uint64_t ms = 0, seq = 0;
    if (dash == std::string_view::npos ||
        std::from_chars(id.data(), id.data() + dash, ms).ec != std::errc() ||
        std::from_chars(id.data() + dash + 1, id.data() + id.size(), seq).ec != std::errc()) {
        return {0, 0};
    }
    return {ms, seq};
}

// The event id a push starts with ({"event_id":"<id>",…}); empty for other messages.
std::string_view event_id_of(std::string_view text) {
    constexpr std::string_view head = R"({"event_id":")";
    if (text.substr(0, head.size()) != head) return {};
    const auto end = text.find('"', head.size());
    return end == std::string_view::npos ? std::string_view{}
                                         : text.substr(head.size(), end - head.size());
}

// A console's connection while it resumes from an event id: live pushes that arrive during the
// replay of the events it missed wait here and follow the replay, less those the replay already
// delivered; from then on everything passes straight through. Bounded like the connection's own
// queue: a console that falls this far behind is closed and reconnects.
class resume_gate final : public ws_session {
public:
    explicit resume_gate(std::shared_ptr<ws_session> inner) : inner_(std::move(inner)) {}

    bool send(std::string text) override {
        std::lock_guard lock(mutex_);
        if (open_) return inner_->send(std::move(text));
        if (held_.size() >= held_limit) {
            inner_->close(1013, "too many events while resuming");
            return false;
        }
        held_.push_back(std::move(text));
        return true;
    }
    awaitable<std::optional<std::string>> receive() override { return inner_->receive(); }
    void close(std::uint16_t code, std::string reason) override {
        inner_->close(code, std::move(reason));
    }

    // The replay is done up to `last` (empty: nothing replayed): the held pushes after it go out.
    void open(const std::string& last) {
        std::lock_guard lock(mutex_);
        const auto after = stream_id(last);
        for (auto& text : held_) {
            const auto id = event_id_of(text);
            if (id.empty() || stream_id(id) > after) inner_->send(std::move(text));
        }
        held_.clear();
        open_ = true;
    }

private:
    static constexpr std::size_t held_limit = 1000;
    std::shared_ptr<ws_session> inner_;
    std::mutex mutex_;
    std::vector<std::string> held_;
    bool open_ = false;
};

// The events the console missed after `last_id`, sent before the live ones the gate holds;
// {"type":"resync"} when some are no longer kept. The id of the last event sent, or `last_id`.
awaitable<std::string> replay_missed(impl_ptr self, const agent_row& a,
                                     std::shared_ptr<ws_session> session, std::string last_id) {
    for (int round = 0; round < 20; ++round) {
        auto missed = co_await self->live.events_after(a.clinic, std::to_string(a.id), last_id);
        if (!missed) {
            log::warn("agent.resume_failed", {{"reason", missed.error().message()}});
            session->send(std::string(resync_message));
            co_return last_id;
        }
        if (missed->gap && round == 0) session->send(std::string(resync_message));
        for (auto& e : missed->events) {
            last_id = e.id;
            session->send(std::move(e.payload));
        }
        if (!missed->more) co_return last_id;
    }
    session->send(std::string(resync_message));
    co_return last_id;
}

awaitable<void> agent_socket(impl_ptr self, authed_agent agent, std::shared_ptr<ws_session> session,
                             std::optional<std::string> last_event_id) {
    const agent_row& a = agent.row;
    const std::string id = agent.id_text();
    const std::string conn_id = new_session_token().value_or("0000000000000000").substr(0, 16);
    const std::string channel = self->channel(a.clinic, a.id);
    // Resuming: live pushes wait behind the replay (the gate), attached before it so that none
    // falls between the two.
    std::shared_ptr<resume_gate> gate;
    if (last_event_id) gate = std::make_shared<resume_gate>(session);
    const std::shared_ptr<ws_session> listener =
        gate ? std::static_pointer_cast<ws_session>(gate) : session;
    auto attached = co_await self->push.attach(channel, listener);
    if (!attached) log::warn("agent.push_attach_failed", {{"reason", attached.error().message()}});
    const bool came_online = co_await beat(self, a, conn_id);
    log::info("agent.connected", {{"clinic", a.clinic}, {"agent", a.id}});
    const auto interval = heartbeat_interval(self->opts.settings);
    session->send("{\"type\":\"hello\",\"agent\":" + agent_json(a) +
                  ",\"came_online\":" + (came_online ? "true" : "false") +
                  ",\"heartbeat_ms\":" + std::to_string(interval.count()) + "}");
    if (gate) {
        const std::string last = co_await replay_missed(self, a, session, *last_event_id);
        gate->open(last);
    }

    auto k = std::make_shared<keeper>(co_await asio::this_coro::executor);
    k->last_heartbeat = std::chrono::steady_clock::now();
    asio::co_spawn(k->timer.get_executor(), keep_alive(self, agent, conn_id, session, k),
                   asio::detached);
    // The client's messages: {"type":"ping"} is answered {"type":"pong"} and counts as a
    // heartbeat (at most one per half interval); anything else is ignored.
    while (auto text = co_await session->receive()) {
        if (text->find("\"ping\"") == std::string::npos) continue;
        const auto t = std::chrono::steady_clock::now();
        if (t - k->last_heartbeat >= interval / 2) {
            k->last_heartbeat = t;
            (void)co_await beat(self, a, conn_id);
        }
        session->send(R"({"type":"pong"})");
    }
    k->stopped = true;
    k->timer.cancel();
    self->push.detach(channel, listener.get());
    auto gone = co_await self->live.disconnect(a.clinic, id, conn_id, self->now());
    if (!gone) log::warn("agent.disconnect_failed", {{"reason", gone.error().message()}});
    log::info("agent.disconnected", {{"clinic", a.clinic}, {"agent", a.id}});
}

awaitable<ws_accept> agent_ws(impl_ptr self, http_request req) {
    auto auth = co_await self->authenticate(req);
    ws_accept out;
    if (!auth.agent) {
        out.refusal = std::move(auth.refusal);
        co_return out;
    }
    // Resuming after a reconnect: the last event id the console saw (docs/api.md).
    auto last_event_id = query_param(req.query, "last_event_id");
    if (last_event_id && stream_id(*last_event_id) == std::pair<std::uint64_t, std::uint64_t>{}) {
        out.refusal = json_error(400, "last_event_id 格式不正确");
        co_return out;
    }
    out.run = [self, agent = std::move(*auth.agent),
               last_event_id = std::move(last_event_id)](std::shared_ptr<ws_session> s) {
        return agent_socket(self, agent, std::move(s), last_event_id);
    };
    co_return out;
}

}  // namespace

// POST /api/agent/password: the old password is checked like a sign-in (its failures count
// towards the same lockout), the new one hashed on the hash thread.
awaitable<http_response> change_password(impl_ptr self, http_request req) {
    auto auth = co_await self->authenticate(req);
    if (!auth.agent) co_return auth.refusal;
    const agent_row& a = auth.agent->row;
    auto parsed = parse_password_change(req.body);
    if (!parsed.value) co_return json_error(400, parsed.problem);
    password_change change = std::move(*parsed.value);
    auto found = co_await self->repo.find_for_sign_in(std::nullopt, a.clinic, std::nullopt, a.id);
    if (!found) co_return unavailable("agent.password_unavailable", found.error());
    if (!*found) co_return json_error(401, "账号已停用，请联系管理员");
    auto attempt_task = try_password(self, failure_subject(a), std::move(change.old_password),
                                     (*found)->password_hash);
    auto checked = co_await std::move(attempt_task);
    if (!checked) co_return unavailable("agent.password_unavailable", checked.error());
    if (*checked == attempt::locked_out) co_return locked_out(self->opts.settings);
    if (*checked == attempt::wrong) {
        log::info("agent.password_refused", {{"clinic", a.clinic}, {"agent", a.id}});
        co_return json_error(403, "原密码不正确");
    }
    auto task = hash_new_password(std::move(change.new_password));
    const auto hash =
        co_await asio::co_spawn(self->hash_pool, std::move(task), asio::use_awaitable);
    if (!hash) co_return json_error(500, "internal error");
    auto stored = co_await self->console.set_password(a.clinic, a.id, *hash);
    if (!stored) co_return unavailable("agent.password_unavailable", stored.error());
    // Whoever else was signed in with the old password is signed out; this session stays.
    auto ended = co_await self->end_sessions(a.id, auth.agent->token_digest);
    if (!ended) log::warn("agent.sessions_not_ended", {{"agent", a.id}, {"reason", ended.error().message()}});
    log::info("agent.password_changed",
              {{"clinic", a.clinic}, {"agent", a.id}, {"other_sessions_ended", static_cast<std::int64_t>(ended ? *ended : 0)}});
    co_return json_ok("{\"changed\":true}");
}

agent_api::agent_api(asio::any_io_executor ex, storage::mysql_pool& mysql,
                     std::shared_ptr<storage::redis_client> redis, routing::live_state& live,
                     wechat::outbox& outbox, routing_stage& stage, agent_push& push,
                     agent_api_options opts)
    : impl_(std::make_shared<impl>(std::move(ex), mysql, std::move(redis), live, outbox, stage,
                                   push, std::move(opts))) {}

agent_api::~agent_api() = default;

awaitable<signed_in_agent> agent_api::authenticate(http_request req) {
    auto auth = co_await impl_->authenticate(req);
    signed_in_agent out;
    if (auth.agent) {
        out.agent = std::move(auth.agent->row);
    } else {
        out.refusal = std::move(auth.refusal);
    }
    co_return out;
}

void agent_api::add_routes(router& routes) {
    // Handlers are plain functions taking the state by value (a coroutine lambda's captures would
    // dangle once the lambda object is gone).
    auto self = impl_;
    routes.exact("POST", "/api/agent/sign-in",
                 [self](http_request r) { return sign_in(self, std::move(r)); });
    routes.exact("POST", "/api/agent/sign-out",
                 [self](http_request r) { return sign_out(self, std::move(r)); });
    routes.exact("GET", "/api/agent/me", [self](http_request r) { return me(self, std::move(r)); });
    routes.exact("POST", "/api/agent/accepting",
                 [self](http_request r) { return accepting(self, std::move(r)); });
    routes.exact("GET", "/api/agent/backlog",
                 [self](http_request r) { return backlog(self, std::move(r)); });
    routes.websocket("/api/agent/ws",
                     [self](http_request r) { return agent_ws(self, std::move(r)); });
    routes.prefix("POST", std::string(conversations_prefix),
                  "/api/conversations/{account}/{openid}/{action}",
                  [self](http_request r) { return handle_conversation(self, std::move(r)); });
    routes.large_body("POST", "/send-image", send_image_body_limit);  // the image itself
    // The console (console_api.cpp, fan_panel_api.cpp).
    routes.prefix("GET", std::string(conversations_prefix),
                  "/api/conversations/{account}/{openid}/{action}",
                  [self](http_request r) { return handle_conversation(self, std::move(r)); });
    routes.exact("GET", "/api/conversations",
                 [self](http_request r) { return list_conversations(self, std::move(r)); });
    routes.prefix("GET", "/api/media/", "/api/media/{message_id}",
                  [self](http_request r) { return serve_media(self, std::move(r)); });
    routes.exact("GET", "/api/agents",
                 [self](http_request r) { return list_agents(self, std::move(r)); });
    routes.exact("POST", "/api/agent/password",
                 [self](http_request r) { return change_password(self, std::move(r)); });
}

}  // namespace scrm::gateway

// The Redis client: an Asio adapter for hiredis 0.14's async API (readiness waits on its fd, every
// hiredis call on one strand), command bookkeeping with Asio timers, the reconnect loop, typed
// commands, and the pub/sub subscriber.
#include "scrm/storage/redis.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <deque>
#include <exception>
#include <iterator>
#include <list>
#include <ostream>
#include <random>
#include <set>
#include <tuple>

#include "scrm/common/deadline.hpp"
#include "scrm/common/log.hpp"

namespace scrm::storage {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;
using strand_t = asio::strand<asio::any_io_executor>;

namespace {

template <class... S>
std::vector<std::string> make_args(S&&... s) {
    std::vector<std::string> v;
    v.reserve(sizeof...(s));
    (v.emplace_back(std::forward<S>(s)), ...);
    return v;
}

std::string to_upper(std::string_view s) {
    std::string out(s.substr(0, 32));
    for (char& c : out) {
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
    return out;
}

// Commands that would switch the connection out of request/reply mode; hiredis would then route
// replies to pub/sub callbacks and our FIFO of pending commands would no longer match.
bool changes_connection_mode(const std::string& name) {
    const std::string n = to_upper(name);
    return n == "SUBSCRIBE" || n == "PSUBSCRIBE" || n == "UNSUBSCRIBE" || n == "PUNSUBSCRIBE" ||
           n == "SSUBSCRIBE" || n == "SUNSUBSCRIBE" || n == "MONITOR" || n == "RESET" ||
           n == "QUIT";
}

redis_reply copy_reply(const redisReply* r) {
    redis_reply out;
    switch (r->type) {
        case REDIS_REPLY_STRING:
            out.type = redis_reply::kind::string;
            out.str.assign(r->str, r->len);
            break;
        case REDIS_REPLY_STATUS:
            out.type = redis_reply::kind::status;
            out.str.assign(r->str, r->len);
            break;
        case REDIS_REPLY_ERROR:
            out.type = redis_reply::kind::error;
            out.str.assign(r->str, r->len);
            break;
        case REDIS_REPLY_INTEGER:
            out.type = redis_reply::kind::integer;
            out.integer = r->integer;
            break;
        case REDIS_REPLY_ARRAY:
            out.type = redis_reply::kind::array;
            out.elements.reserve(r->elements);
            for (std::size_t i = 0; i < r->elements; ++i) {
                out.elements.push_back(copy_reply(r->element[i]));
            }
            break;
        default:  // REDIS_REPLY_NIL
            out.type = redis_reply::kind::nil;
            break;
    }
    return out;
}

bool is_string(const redisReply* r) {
    return r && r->type == REDIS_REPLY_STRING;
}
std::string str_of(const redisReply* r) {
    return {r->str, r->len};
}

// The first word of an error reply ("WRONGTYPE", "NOSCRIPT", "ERR"): safe to log, unlike the rest,
// which may quote a script or a value.
std::string error_code_word(const std::string& text) {
    const auto end = text.find(' ');
    return to_upper(text.substr(0, end == std::string::npos ? text.size() : end));
}

std::string format_score(double v) {
    char buf[64];
    const auto res = std::to_chars(buf, buf + sizeof buf, v);
    return {buf, res.ptr};
}

std::optional<double> parse_score(const std::string& s) {
    double v = 0;
    const char* first = s.data();
    const char* last = s.data() + s.size();
    if (first != last && *first == '+') ++first;  // "+inf"
    const auto res = std::from_chars(first, last, v);
    if (res.ec != std::errc() || res.ptr != last) return std::nullopt;
    return v;
}

// Typed views of a reply. A wrong type is the server telling us something we did not ask for.
result<redis_reply> map_error_reply(result<redis_reply> r, const std::string& name) {
    if (r && r->type == redis_reply::kind::error) {
        log::warn("redis.error_reply", {{"command", name}, {"error", error_code_word(r->str)}});
        return make_error_code(errc::server_error);
    }
    return r;
}

result<void> as_ok(const result<redis_reply>& r) {
    if (!r) return r.error();
    if (r->type != redis_reply::kind::status) return make_error_code(errc::protocol_error);
    return {};
}

result<long long> as_integer(const result<redis_reply>& r) {
    if (!r) return r.error();
    if (r->type != redis_reply::kind::integer) return make_error_code(errc::protocol_error);
    return r->integer;
}

// An error as a result<bool> (error_code converts to bool, so it must be said explicitly).
result<bool> bool_error(boost::system::error_code ec) {
    return {boost::system::in_place_error, ec};
}

result<bool> as_flag(const result<redis_reply>& r) {
    auto i = as_integer(r);
    if (!i) return bool_error(i.error());
    return *i != 0;
}

result<std::optional<std::string>> as_optional_string(result<redis_reply> r) {
    if (!r) return r.error();
    if (r->type == redis_reply::kind::nil) return std::optional<std::string>{};
    if (r->type != redis_reply::kind::string) return make_error_code(errc::protocol_error);
    return std::optional<std::string>(std::move(r->str));
}

result<std::vector<std::string>> as_strings(result<redis_reply> r) {
    if (!r) return r.error();
    if (r->type != redis_reply::kind::array) return make_error_code(errc::protocol_error);
    std::vector<std::string> out;
    out.reserve(r->elements.size());
    for (auto& e : r->elements) {
        if (e.type != redis_reply::kind::string) return make_error_code(errc::protocol_error);
        out.push_back(std::move(e.str));
    }
    return out;
}

result<std::vector<std::pair<std::string, std::string>>> as_pairs(result<redis_reply> r) {
    auto flat = as_strings(std::move(r));
    if (!flat) return flat.error();
    if (flat->size() % 2 != 0) return make_error_code(errc::protocol_error);
    std::vector<std::pair<std::string, std::string>> out;
    out.reserve(flat->size() / 2);
    for (std::size_t i = 0; i + 1 < flat->size(); i += 2) {
        out.emplace_back(std::move((*flat)[i]), std::move((*flat)[i + 1]));
    }
    return out;
}

std::string sha1_hex(const std::string& data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha1(), nullptr) != 1) {
        return {};  // eval() then falls back to EVAL on NOSCRIPT
    }
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * static_cast<std::size_t>(len));
    for (unsigned i = 0; i < len; ++i) {
        out.push_back(digits[md[i] >> 4]);
        out.push_back(digits[md[i] & 0xF]);
    }
    return out;
}

bool is_power_of_two(std::uint64_t n) {
    return n != 0 && (n & (n - 1)) == 0;
}

}  // namespace

redis_script::redis_script(std::string c) : code(std::move(c)), sha1(sha1_hex(code)) {}

std::ostream& operator<<(std::ostream& os, redis_reply::kind k) {
    switch (k) {
        case redis_reply::kind::nil: return os << "nil";
        case redis_reply::kind::string: return os << "string";
        case redis_reply::kind::integer: return os << "integer";
        case redis_reply::kind::array: return os << "array";
        case redis_reply::kind::status: return os << "status";
        case redis_reply::kind::error: return os << "error";
    }
    return os << "?";
}

std::ostream& operator<<(std::ostream& os, const redis_reply& r) {
    switch (r.type) {
        case redis_reply::kind::nil: return os << "nil";
        case redis_reply::kind::string: return os << '"' << r.str << '"';
        case redis_reply::kind::integer: return os << r.integer;
        case redis_reply::kind::status: return os << '+' << r.str;
        case redis_reply::kind::error: return os << '-' << r.str;
        case redis_reply::kind::array:
            os << '[';
            for (std::size_t i = 0; i < r.elements.size(); ++i) {
                if (i) os << ", ";
                os << r.elements[i];
            }
            return os << ']';
    }
    return os;
}

namespace detail {

// One command waiting for its reply. Owned by the connection's in-flight list until hiredis runs
// its callback (with the reply, or with NULL when the context is freed), and by the timer wait
// that delivers the result; whichever comes first decides the result.
struct pending_op {
    explicit pending_op(const strand_t& s) : timer(s) {}
    asio::steady_timer timer;
    std::optional<result<redis_reply>> res;
    steady::time_point sent;
    std::string name;  // command name, for logs
};

struct exec_mode {
    std::chrono::milliseconds timeout{};
    bool map_errors = true;  // error reply -> errc::server_error
    bool handshake = false;  // allowed before the handshake finished; not counted in stats
};

// The connection and its reconnect loop; the client uses it as is, the subscriber extends it.
// Everything below the public section runs on strand_.
class redis_core : public std::enable_shared_from_this<redis_core> {
public:
    redis_core(const asio::any_io_executor& ex, redis_options o, const char* role)
        : strand_(asio::make_strand(ex)),
          opts_(std::move(o)),
          role_(role),
          closed_signal_(strand_),
          backoff_timer_(strand_),
          rng_(std::random_device{}()) {}

    virtual ~redis_core() { destroy_context(); }
    redis_core(const redis_core&) = delete;
    redis_core& operator=(const redis_core&) = delete;

    void start() {
        asio::post(strand_, [self = shared_from_this()] {
            if (self->started_ || self->stopping_) return;
            self->started_ = true;
            asio::co_spawn(self->strand_, run_loop(self), [](const std::exception_ptr& e) {
                if (e) log::error("redis.loop_failed");
            });
        });
    }

    void stop() {
        stop_requested_.store(true, std::memory_order_release);
        asio::post(strand_, [self = shared_from_this()] { self->do_stop(); });
    }

    bool connected() const { return connected_.load(std::memory_order_acquire); }

    redis_stats stats() const {
        redis_stats s;
        s.connected = connected();
        s.reconnects = reconnects_.load(std::memory_order_relaxed);
        s.timeouts = timeouts_.load(std::memory_order_relaxed);
        s.in_flight = in_flight_.load(std::memory_order_relaxed);
        return s;
    }

    const redis_options& options() const { return opts_; }
    const strand_t& strand() const { return strand_; }

    // Sends a command and completes on the awaiting coroutine's executor.
    asio::awaitable<result<redis_reply>> exec(std::vector<std::string> args, exec_mode mode) {
        return asio::async_initiate<const asio::use_awaitable_t<>&, void(result<redis_reply>)>(
            exec_initiation{shared_from_this(), mode}, asio::use_awaitable, std::move(args));
    }

    static asio::awaitable<result<void>> wait_connected(std::shared_ptr<redis_core> self,
                                                        std::chrono::milliseconds limit) {
        if (self->stopping_) co_return make_error_code(errc::shutting_down);
        if (self->ready_) co_return result<void>{};
        auto timer = std::make_shared<asio::steady_timer>(self->strand_);
        timer->expires_after(limit);
        self->connect_waiters_.push_back(timer);
        co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
        std::erase(self->connect_waiters_, timer);
        if (self->ready_) co_return result<void>{};
        if (self->stopping_) co_return make_error_code(errc::shutting_down);
        co_return make_error_code(errc::timeout);
    }

protected:
    // Hooks for the subscriber, called on the strand.
    virtual void on_ready() {}
    virtual void on_closed(bool /*was_ready*/) {}
    virtual void on_stopping() {}

    // Sends a command whose replies go to `fn` (pub/sub); no bookkeeping, no timeout.
    bool send_untracked(const std::vector<std::string>& args, redisCallbackFn* fn) {
        if (!ac_ || args.empty()) return false;
        std::vector<const char*> argv;
        std::vector<std::size_t> lens;
        argv.reserve(args.size());
        lens.reserve(args.size());
        for (const auto& a : args) {
            argv.push_back(a.data());
            lens.push_back(a.size());
        }
        hiredis_scope scope(*this);
        return redisAsyncCommandArgv(ac_, fn, nullptr, static_cast<int>(argv.size()), argv.data(),
                                     lens.data()) == REDIS_OK;
    }

    void note_reply() { last_reply_ = steady::now(); }
    void count_timeout() { timeouts_.fetch_add(1, std::memory_order_relaxed); }

    strand_t strand_;
    redis_options opts_;
    const char* role_;
    redisAsyncContext* ac_ = nullptr;
    bool ready_ = false;  // handshake done on the current connection
    bool stopping_ = false;
    bool destroying_ = false;  // inside the destructor: callbacks touch nothing else

    // Frees a context still open when the last reference goes (the io_context was destroyed
    // without stop() having run): hiredis closes the fd; callbacks see destroying_.
    void destroy_context() {
        destroying_ = true;
        if (ac_) redisAsyncFree(ac_);
        ac_ = nullptr;
    }

private:
    struct inflight {
        std::uintptr_t id;
        std::shared_ptr<pending_op> op;
    };

    // Counts nesting inside hiredis calls: the context must not be freed from within them.
    struct hiredis_scope {
        explicit hiredis_scope(redis_core& c) : core(c) { ++core.in_hiredis_; }
        ~hiredis_scope() { --core.in_hiredis_; }
        hiredis_scope(const hiredis_scope&) = delete;
        hiredis_scope& operator=(const hiredis_scope&) = delete;
        redis_core& core;
    };

    struct exec_initiation {
        std::shared_ptr<redis_core> core;
        exec_mode mode;

        template <class Handler>
        void operator()(Handler handler, std::vector<std::string> args) {
            // Fast failure: no strand hop when we already know the answer.
            if (!mode.handshake && !core->connected()) {
                const bool stopped = core->stop_requested_.load(std::memory_order_acquire);
                deliver(std::move(handler),
                        make_error_code(stopped ? errc::shutting_down : errc::unavailable));
                return;
            }
            const strand_t strand = core->strand_;
            asio::dispatch(strand, [c = core, m = mode, a = std::move(args),
                                    h = std::move(handler)]() mutable {
                c->start_op(std::move(a), m, std::move(h));
            });
        }
    };

    // Resumes the awaiting coroutine through its own executor, never inline.
    template <class Handler>
    static void deliver(Handler handler, result<redis_reply> r) {
        auto ex = asio::get_associated_executor(handler);
        asio::post(ex, [h = std::move(handler), r = std::move(r)]() mutable {
            std::move(h)(std::move(r));
        });
    }

    template <class Handler>
    void start_op(std::vector<std::string> args, exec_mode mode, Handler handler) {
        if (stopping_) return deliver(std::move(handler), make_error_code(errc::shutting_down));
        if (args.empty() || changes_connection_mode(args.front())) {
            return deliver(std::move(handler), make_error_code(errc::bad_input));
        }
        if (!ac_ || (!ready_ && !mode.handshake)) {
            return deliver(std::move(handler), make_error_code(errc::unavailable));
        }
        auto op = std::make_shared<pending_op>(strand_);
        op->name = to_upper(args.front());
        const std::uintptr_t id = ++next_id_;

        std::vector<const char*> argv;
        std::vector<std::size_t> lens;
        argv.reserve(args.size());
        lens.reserve(args.size());
        for (const auto& a : args) {
            argv.push_back(a.data());
            lens.push_back(a.size());
        }
        int rc = REDIS_ERR;
        {
            hiredis_scope scope(*this);
            // privdata is an id, never dereferenced: hiredis 0.14 can re-run a stale callback
            // (its reply loop keeps the last callback across iterations), and a missing id is
            // simply ignored.
            rc = redisAsyncCommandArgv(
                ac_, &on_reply_cb,
                reinterpret_cast<void*>(id),  // NOLINT(performance-no-int-to-ptr)
                static_cast<int>(argv.size()), argv.data(), lens.data());
        }
        if (rc != REDIS_OK) return deliver(std::move(handler), make_error_code(errc::unavailable));

        inflight_.push_back({id, op});
        in_flight_.store(inflight_.size(), std::memory_order_relaxed);
        op->sent = steady::now();
        op->timer.expires_after(mode.timeout);
        op->timer.async_wait([self = shared_from_this(), op, mode,
                              handler = std::move(handler)](boost::system::error_code) mutable {
            if (!op->res) {  // the deadline came first; a late reply will find no result slot
                op->res.emplace(make_error_code(errc::timeout));
                self->on_op_timeout(*op, mode);
            }
            auto r = std::move(*op->res);
            if (mode.map_errors) r = map_error_reply(std::move(r), op->name);
            deliver(std::move(handler), std::move(r));
        });
    }

    static void on_reply_cb(redisAsyncContext* ac, void* reply, void* privdata) {
        auto* self = static_cast<redis_core*>(ac->data);
        if (!self) return;
        self->on_reply(reinterpret_cast<std::uintptr_t>(privdata),
                       static_cast<const redisReply*>(reply));
    }

    void on_reply(std::uintptr_t id, const redisReply* reply) {
        auto it = inflight_.begin();
        if (it == inflight_.end() || it->id != id) {
            it = std::find_if(inflight_.begin(), inflight_.end(),
                              [id](const inflight& f) { return f.id == id; });
            if (it == inflight_.end()) return;  // a stale callback: not ours to answer
        }
        auto op = std::move(it->op);
        inflight_.erase(it);
        in_flight_.store(inflight_.size(), std::memory_order_relaxed);
        if (reply) note_reply();
        if (destroying_ || op->res) return;  // timed out already: the late reply is dropped
        if (reply) {
            op->res.emplace(copy_reply(reply));
        } else {
            op->res.emplace(make_error_code(errc::unavailable));  // context freed or dropped
        }
        op->timer.cancel();
    }

    void on_op_timeout(const pending_op& op, const exec_mode& mode) {
        if (!mode.handshake) count_timeout();
        // Nothing at all came back since this command went out: the server or the path to it
        // is stuck. Close, so that callers fail fast until a fresh connection answers PING.
        if (opts_.reset_on_stall && ac_ && last_reply_ < op.sent) {
            if (ready_) {
                log::warn("redis.stalled",
                          {{"role", role_},
                           {"timeout_ms", static_cast<std::int64_t>(mode.timeout.count())}});
            }
            close("no reply within the command timeout");
        }
    }

    // --- the hiredis event hooks -------------------------------------------------------------
    static void add_read_cb(void* p) { static_cast<redis_core*>(p)->want(true, true); }
    static void del_read_cb(void* p) { static_cast<redis_core*>(p)->want(true, false); }
    static void add_write_cb(void* p) { static_cast<redis_core*>(p)->want(false, true); }
    static void del_write_cb(void* p) { static_cast<redis_core*>(p)->want(false, false); }
    static void cleanup_cb(void* p) { static_cast<redis_core*>(p)->on_cleanup(); }

    void want(bool read, bool on) {
        (read ? want_read_ : want_write_) = on;
        if (on && !destroying_) arm(read);
    }

    void arm(bool read) {
        bool& armed = read ? read_armed_ : write_armed_;
        if (armed || !sd_) return;
        armed = true;
        sd_->async_wait(read ? asio::posix::stream_descriptor::wait_read
                             : asio::posix::stream_descriptor::wait_write,
                        [self = shared_from_this(), read, gen = generation_](
                            boost::system::error_code ec) { self->on_ready_io(read, gen, ec); });
    }

    void on_ready_io(bool read, std::uint64_t gen, boost::system::error_code ec) {
        if (gen != generation_ || !ac_) return;  // a wait of an earlier connection
        (read ? read_armed_ : write_armed_) = false;
        if (ec) {
            if (ec != asio::error::operation_aborted) close("wait on the socket failed");
            return;
        }
        if (!(read ? want_read_ : want_write_)) return;
        {
            hiredis_scope scope(*this);
            if (read) {
                redisAsyncHandleRead(ac_);
            } else {
                redisAsyncHandleWrite(ac_);
            }
        }
        // hiredis may have freed the context (EOF, error): on_cleanup cleared ac_.
        if (ac_ && gen == generation_) {
            if (want_read_) arm(true);
            if (want_write_) arm(false);
        }
    }

    // Called by hiredis from inside the free, after every pending callback ran with NULL and
    // before it closes the fd.
    void on_cleanup() {
        if (sd_) {
            sd_->release();  // hiredis owns the fd and closes it; release() cancels our waits
            sd_.reset();
        }
        std::string reason = close_reason_;
        if (reason.empty()) {
            reason = (ac_ && ac_->err && ac_->errstr) ? std::string(ac_->errstr) : "closed";
        }
        close_reason_.clear();
        ac_ = nullptr;
        want_read_ = want_write_ = read_armed_ = write_armed_ = false;
        if (destroying_) return;
        inflight_.clear();  // hiredis already answered each; nothing should be left
        in_flight_.store(0, std::memory_order_relaxed);
        const bool was_ready = ready_;
        ready_ = false;
        connected_.store(false, std::memory_order_release);
        if (was_ready) {
            log::write(stopping_ ? log::level::info : log::level::warn, "redis.disconnected",
                       {{"role", role_}, {"reason", reason}});
        } else {
            last_failure_ = reason;
        }
        closed_signal_.cancel();
        on_closed(was_ready);
    }

    // Frees the context (answering every pending command with errc::unavailable). Never from
    // inside a hiredis call: then it is deferred to the strand.
    void close(const char* reason) {
        if (!ac_) return;
        if (in_hiredis_ > 0) {
            asio::post(strand_, [self = shared_from_this(), gen = generation_, reason] {
                if (self->generation_ == gen) self->close(reason);
            });
            return;
        }
        close_reason_ = reason;
        hiredis_scope scope(*this);
        redisAsyncFree(ac_);  // runs on_cleanup
    }

    void do_stop() {
        if (stopping_) return;
        stopping_ = true;
        log::info("redis.stopping", {{"role", role_}});
        backoff_timer_.cancel();
        closed_signal_.cancel();
        close("stopped");
        for (auto& w : connect_waiters_) w->cancel();
        on_stopping();
    }

    // --- connecting ---------------------------------------------------------------------------
    static asio::awaitable<
        std::tuple<boost::system::error_code, asio::ip::tcp::resolver::results_type>>
    resolve(std::shared_ptr<asio::ip::tcp::resolver> resolver, std::string host, std::string port) {
        co_return co_await resolver->async_resolve(host, port, asio::as_tuple(asio::use_awaitable));
    }

    // The address to give hiredis: numeric as is, names resolved here (hiredis would block in
    // getaddrinfo). Empty on failure, with last_failure_ set.
    static asio::awaitable<std::string> address_of(std::shared_ptr<redis_core> self) {
        boost::system::error_code ec;
        const auto addr = asio::ip::make_address(self->opts_.host, ec);
        if (!ec) co_return addr.to_string();
        auto resolver = std::make_shared<asio::ip::tcp::resolver>(self->strand_);
        auto res = co_await with_deadline(
            resolve(resolver, self->opts_.host, std::to_string(self->opts_.port)),
            self->opts_.connect_timeout);
        if (!res) {
            resolver->cancel();
            self->last_failure_ = "name resolution timed out";
            co_return std::string();
        }
        auto& [rec, results] = *res;
        if (rec || results.empty()) {
            self->last_failure_ = "name resolution failed: " + rec.message();
            co_return std::string();
        }
        co_return results.begin()->endpoint().address().to_string();
    }

    void attach(redisAsyncContext* ac) {
        ac_ = ac;
        ++generation_;
        ac->data = this;
        ac->ev.data = this;
        ac->ev.addRead = &add_read_cb;
        ac->ev.delRead = &del_read_cb;
        ac->ev.addWrite = &add_write_cb;
        ac->ev.delWrite = &del_write_cb;
        ac->ev.cleanup = &cleanup_cb;
        redisEnableKeepAlive(&ac->c);  // notices a vanished peer on an idle connection
        sd_.emplace(strand_, ac->c.fd);
        last_reply_ = steady::time_point{};
        closed_signal_.expires_at(steady::time_point::max());
        want(false, true);  // writability reports the end of the non-blocking connect
    }

    static asio::awaitable<bool> connect_once(std::shared_ptr<redis_core> self) {
        const auto& o = self->opts_;
        const auto deadline = steady::now() + o.connect_timeout;
        auto remaining = [deadline] {
            return std::max(
                std::chrono::milliseconds(1),
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()));
        };
        const std::string ip = co_await address_of(self);
        if (ip.empty() || self->stopping_) co_return false;

        redisAsyncContext* ac = redisAsyncConnect(ip.c_str(), o.port);
        if (!ac) {
            self->last_failure_ = "out of memory";
            co_return false;
        }
        if (ac->err) {
            self->last_failure_ = ac->errstr ? ac->errstr : "connect failed";
            redisAsyncFree(ac);  // no hooks attached yet
            co_return false;
        }
        self->attach(ac);
        const auto gen = self->generation_;

        if (!o.password.empty()) {
            auto r = co_await self->exec(make_args("AUTH", o.password), {remaining(), false, true});
            if (!r || r->type != redis_reply::kind::status) {
                if (self->generation_ == gen) self->close("AUTH failed");
                self->note_handshake_failure("AUTH", r);
                co_return false;
            }
        }
        auto pong = co_await self->exec(make_args("PING"), {remaining(), false, true});
        if (!pong || pong->type != redis_reply::kind::status) {
            if (self->generation_ == gen) self->close("PING failed");
            self->note_handshake_failure("PING", pong);
            co_return false;
        }
        if (!self->ac_ || self->generation_ != gen || self->stopping_) co_return false;
        self->ready_ = true;
        self->connected_.store(true, std::memory_order_release);
        for (auto& w : self->connect_waiters_) w->cancel();
        co_return true;
    }

    // Why a handshake command failed. A dropped connection already left its reason (e.g.
    // "Connection refused") in last_failure_.
    void note_handshake_failure(const char* what, const result<redis_reply>& r) {
        if (!r && r.error() == make_error_code(errc::unavailable)) return;
        last_failure_ = std::string(what) +
                        (!r ? ": " + r.error().message() : " answered " + error_code_word(r->str));
    }

    std::chrono::milliseconds jittered(std::chrono::milliseconds base) {
        // Half fixed, half random: spreads the reconnects of many instances after an outage.
        const auto half = std::max<std::int64_t>(base.count() / 2, 1);
        std::uniform_int_distribution<std::int64_t> dist(0, half);
        return std::chrono::milliseconds(half + dist(rng_));
    }

    static asio::awaitable<void> run_loop(std::shared_ptr<redis_core> self) {
        const auto& o = self->opts_;
        auto backoff = std::max(o.backoff_initial, std::chrono::milliseconds(1));
        bool ever_connected = false;
        std::uint64_t failures = 0;
        while (!self->stopping_) {
            const bool up = co_await connect_once(self);
            if (self->stopping_) break;
            if (up) {
                log::info("redis.connected", {{"role", self->role_},
                                              {"host", o.host},
                                              {"port", unsigned{o.port}},
                                              {"after_failures", failures}});
                if (ever_connected) self->reconnects_.fetch_add(1, std::memory_order_relaxed);
                ever_connected = true;
                failures = 0;
                backoff = std::max(o.backoff_initial, std::chrono::milliseconds(1));
                self->on_ready();
                if (self->ac_) {
                    co_await self->closed_signal_.async_wait(asio::as_tuple(asio::use_awaitable));
                }
                if (self->stopping_) break;
            } else {
                ++failures;
                // Every attempt is logged at debug; warn on the 1st, 2nd, 4th, 8th... in a row.
                const auto lvl = is_power_of_two(failures) ? log::level::warn : log::level::debug;
                log::write(lvl, "redis.connect_failed",
                           {{"role", self->role_},
                            {"host", o.host},
                            {"port", unsigned{o.port}},
                            {"reason", self->last_failure_},
                            {"attempt", failures}});
            }
            self->backoff_timer_.expires_after(self->jittered(backoff));
            backoff = std::min(backoff * 2, std::max(o.backoff_max, backoff));
            co_await self->backoff_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
        }
    }

    std::optional<asio::posix::stream_descriptor> sd_;
    std::uint64_t generation_ = 0;  // per connection; waits of older connections are ignored
    bool want_read_ = false, want_write_ = false, read_armed_ = false, write_armed_ = false;
    int in_hiredis_ = 0;
    bool started_ = false;
    std::uintptr_t next_id_ = 0;
    std::deque<inflight> inflight_;
    steady::time_point last_reply_{};
    std::string close_reason_;
    std::string last_failure_;
    asio::steady_timer closed_signal_;  // cancelled when the current connection goes away
    asio::steady_timer backoff_timer_;
    std::vector<std::shared_ptr<asio::steady_timer>> connect_waiters_;
    std::minstd_rand rng_;

    std::atomic<bool> connected_{false};
    std::atomic<bool> stop_requested_{false};
    std::atomic<std::uint64_t> reconnects_{0};
    std::atomic<std::uint64_t> timeouts_{0};
    std::atomic<std::size_t> in_flight_{0};
};

// The subscriber: the desired channel and pattern sets, re-subscribed after every (re)connect.
class redis_sub_core final : public redis_core {
public:
    redis_sub_core(const asio::any_io_executor& ex, redis_options o,
                   redis_subscriber::message_handler on_message,
                   redis_subscriber::state_handler on_state)
        : redis_core(ex, std::move(o), "subscriber"),
          on_message_(std::move(on_message)),
          on_state_(std::move(on_state)) {}

    ~redis_sub_core() override { destroy_context(); }
    redis_sub_core(const redis_sub_core&) = delete;
    redis_sub_core& operator=(const redis_sub_core&) = delete;

    static asio::awaitable<result<void>> subscribe(std::shared_ptr<redis_sub_core> self,
                                                   std::vector<std::string> names, bool pattern) {
        auto& desired = pattern ? self->patterns_ : self->channels_;
        auto& confirmed = pattern ? self->confirmed_patterns_ : self->confirmed_channels_;
        for (const auto& n : names) desired.insert(n);
        if (self->stopping_) co_return make_error_code(errc::shutting_down);
        if (!self->ready_ || !self->ac_) co_return make_error_code(errc::unavailable);

        auto w = std::make_shared<waiter>(self->strand_);
        std::vector<std::string> args{pattern ? "PSUBSCRIBE" : "SUBSCRIBE"};
        for (const auto& n : names) {
            if (confirmed.contains(n)) continue;
            if (w->pending.insert((pattern ? "p" : "c") + n).second) args.push_back(n);
        }
        if (w->pending.empty()) co_return result<void>{};
        if (!self->send_untracked(args, &on_sub_reply_cb)) {
            co_return make_error_code(errc::unavailable);
        }
        w->timer.expires_after(self->opts_.command_timeout);
        self->waiters_.push_back(w);
        co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
        self->waiters_.remove(w);
        if (w->outcome == errc::timeout) self->count_timeout();
        if (w->outcome == errc::ok) co_return result<void>{};
        co_return make_error_code(w->outcome);
    }

    void unsubscribe(std::vector<std::string> names, bool pattern) {
        auto self = std::static_pointer_cast<redis_sub_core>(shared_from_this());
        asio::post(strand_, [self, names = std::move(names), pattern] {
            auto& desired = pattern ? self->patterns_ : self->channels_;
            auto& confirmed = pattern ? self->confirmed_patterns_ : self->confirmed_channels_;
            for (const auto& n : names) {
                desired.erase(n);
                // Unconfirmed from now on, not from the server's answer: a subscribe of the same
                // name before that answer must send SUBSCRIBE again, or it would be skipped as
                // already confirmed and the late UNSUBSCRIBE reply would leave it unsubscribed.
                confirmed.erase(n);
            }
            if (!self->ready_ || !self->ac_) return;
            std::vector<std::string> args{pattern ? "PUNSUBSCRIBE" : "UNSUBSCRIBE"};
            args.insert(args.end(), names.begin(), names.end());
            self->send_untracked(args, &on_sub_reply_cb);
        });
    }

private:
    struct waiter {
        explicit waiter(const strand_t& s) : timer(s) {}
        asio::steady_timer timer;
        std::set<std::string> pending;  // 'c' or 'p' + name
        errc outcome = errc::timeout;
    };

    void on_ready() override {
        if (!channels_.empty()) {
            std::vector<std::string> args{"SUBSCRIBE"};
            args.insert(args.end(), channels_.begin(), channels_.end());
            send_untracked(args, &on_sub_reply_cb);
        }
        if (!patterns_.empty()) {
            std::vector<std::string> args{"PSUBSCRIBE"};
            args.insert(args.end(), patterns_.begin(), patterns_.end());
            send_untracked(args, &on_sub_reply_cb);
        }
        notify_state(true);
    }

    void on_closed(bool was_ready) override {
        confirmed_channels_.clear();
        confirmed_patterns_.clear();
        finish_waiters(errc::unavailable);
        if (was_ready) notify_state(false);
    }

    void on_stopping() override { finish_waiters(errc::shutting_down); }

    void finish_waiters(errc outcome) {
        for (auto& w : waiters_) {
            w->outcome = outcome;
            w->timer.cancel();
        }
    }

    void notify_state(bool up) {
        if (!on_state_) return;
        auto self = std::static_pointer_cast<redis_sub_core>(shared_from_this());
        asio::post(strand_, [self, up] {
            if (self->stopping_) return;
            try {
                self->on_state_(up);
            } catch (const std::exception& e) {
                log::error("redis.subscriber_handler_failed", {{"what", e.what()}});
            }
        });
    }

    static void on_sub_reply_cb(redisAsyncContext* ac, void* reply, void* /*privdata*/) {
        auto* base = static_cast<redis_core*>(ac->data);
        if (!base || !reply) return;  // NULL: the context is being freed
        auto* self = static_cast<redis_sub_core*>(base);
        if (self->destroying_) return;
        self->on_push(static_cast<const redisReply*>(reply));
    }

    // Replies on a subscribed connection: [kind, name, count|payload] or [pmessage, pattern,
    // channel, payload]. Anything else (an error reply, a stale callback) is ignored.
    void on_push(const redisReply* r) {
        note_reply();
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || !is_string(r->element[0]) ||
            !is_string(r->element[1])) {
            return;
        }
        const std::string kind = to_upper(str_of(r->element[0]));
        std::string name = str_of(r->element[1]);
        if (kind == "MESSAGE" && is_string(r->element[2])) {
            if (!channels_.contains(name)) return;
            dispatch_message({std::string(), std::move(name), str_of(r->element[2])});
        } else if (kind == "PMESSAGE" && r->elements >= 4 && is_string(r->element[2]) &&
                   is_string(r->element[3])) {
            if (!patterns_.contains(name)) return;
            dispatch_message({std::move(name), str_of(r->element[2]), str_of(r->element[3])});
        } else if (kind == "SUBSCRIBE" || kind == "PSUBSCRIBE") {
            const bool pattern = kind[0] == 'P';
            (pattern ? confirmed_patterns_ : confirmed_channels_).insert(name);
            const std::string key = (pattern ? "p" : "c") + name;
            for (auto& w : waiters_) {
                if (w->pending.erase(key) && w->pending.empty()) {
                    w->outcome = errc::ok;
                    w->timer.cancel();
                }
            }
        } else if (kind == "UNSUBSCRIBE" || kind == "PUNSUBSCRIBE") {
            (kind[0] == 'P' ? confirmed_patterns_ : confirmed_channels_).erase(name);
        }
    }

    void dispatch_message(redis_message m) {
        if (!on_message_) return;
        auto self = std::static_pointer_cast<redis_sub_core>(shared_from_this());
        asio::post(strand_, [self, m = std::move(m)]() mutable {
            if (self->stopping_) return;
            // Unsubscribed since the message arrived: dropped, as promised.
            if (m.pattern.empty() ? !self->channels_.contains(m.channel)
                                  : !self->patterns_.contains(m.pattern)) {
                return;
            }
            try {
                self->on_message_(std::move(m));
            } catch (const std::exception& e) {
                log::error("redis.subscriber_handler_failed", {{"what", e.what()}});
            }
        });
    }

    redis_subscriber::message_handler on_message_;
    redis_subscriber::state_handler on_state_;
    std::set<std::string> channels_, patterns_;
    std::set<std::string> confirmed_channels_, confirmed_patterns_;
    std::list<std::shared_ptr<waiter>> waiters_;
};

}  // namespace detail

// --- redis_client ----------------------------------------------------------------------------

std::shared_ptr<redis_client> redis_client::create(const asio::any_io_executor& ex,
                                                   redis_options o) {
    return std::make_shared<redis_client>(
        private_tag{}, std::make_shared<detail::redis_core>(ex, std::move(o), "client"));
}

redis_client::redis_client(private_tag, std::shared_ptr<detail::redis_core> core)
    : core_(std::move(core)) {}

redis_client::~redis_client() {
    core_->stop();
}

void redis_client::start() {
    core_->start();
}
void redis_client::stop() {
    core_->stop();
}
bool redis_client::connected() const {
    return core_->connected();
}
redis_stats redis_client::stats() const {
    return core_->stats();
}

asio::awaitable<result<void>> redis_client::wait_connected(std::chrono::milliseconds limit) {
    return asio::co_spawn(core_->strand(), detail::redis_core::wait_connected(core_, limit),
                          asio::use_awaitable);
}

asio::awaitable<result<redis_reply>> redis_client::command(std::vector<std::string> args) {
    return core_->exec(std::move(args), {core_->options().command_timeout, true, false});
}

asio::awaitable<result<redis_reply>> redis_client::raw(std::vector<std::string> args) {
    return core_->exec(std::move(args), {core_->options().command_timeout, false, false});
}

asio::awaitable<result<void>> redis_client::ping() {
    auto r = co_await command(make_args("PING"));
    co_return as_ok(r);
}

asio::awaitable<result<std::optional<std::string>>> redis_client::get(std::string key) {
    co_return as_optional_string(co_await command(make_args("GET", std::move(key))));
}

asio::awaitable<result<void>> redis_client::set(std::string key, std::string value) {
    auto r = co_await command(make_args("SET", std::move(key), std::move(value)));
    co_return as_ok(r);
}

asio::awaitable<result<void>> redis_client::set_px(std::string key, std::string value,
                                                   std::chrono::milliseconds ttl) {
    auto r = co_await command(
        make_args("SET", std::move(key), std::move(value), "PX", std::to_string(ttl.count())));
    co_return as_ok(r);
}

asio::awaitable<result<bool>> redis_client::set_nx_px(std::string key, std::string value,
                                                      std::chrono::milliseconds ttl) {
    auto r = co_await command(make_args("SET", std::move(key), std::move(value), "NX", "PX",
                                        std::to_string(ttl.count())));
    if (!r) co_return bool_error(r.error());
    if (r->type == redis_reply::kind::nil) co_return false;
    if (r->type == redis_reply::kind::status) co_return true;
    co_return bool_error(errc::protocol_error);
}

asio::awaitable<result<long long>> redis_client::del(std::vector<std::string> keys) {
    keys.insert(keys.begin(), "DEL");
    co_return as_integer(co_await command(std::move(keys)));
}

asio::awaitable<result<long long>> redis_client::exists(std::vector<std::string> keys) {
    keys.insert(keys.begin(), "EXISTS");
    co_return as_integer(co_await command(std::move(keys)));
}

asio::awaitable<result<bool>> redis_client::pexpire(std::string key,
                                                    std::chrono::milliseconds ttl) {
    co_return as_flag(
        co_await command(make_args("PEXPIRE", std::move(key), std::to_string(ttl.count()))));
}

asio::awaitable<result<std::optional<std::chrono::milliseconds>>> redis_client::pttl(
    std::string key) {
    auto i = as_integer(co_await command(make_args("PTTL", std::move(key))));
    if (!i) co_return i.error();
    if (*i < 0) co_return std::optional<std::chrono::milliseconds>{};  // -2 no key, -1 no expiry
    co_return std::optional<std::chrono::milliseconds>(std::chrono::milliseconds(*i));
}

asio::awaitable<result<long long>> redis_client::incr(std::string key) {
    co_return as_integer(co_await command(make_args("INCR", std::move(key))));
}

asio::awaitable<result<long long>> redis_client::incrby(std::string key, long long by) {
    co_return as_integer(co_await command(make_args("INCRBY", std::move(key), std::to_string(by))));
}

asio::awaitable<result<redis_reply>> redis_client::eval(redis_script script,
                                                        std::vector<std::string> keys,
                                                        std::vector<std::string> args) {
    std::vector<std::string> a;
    a.reserve(3 + keys.size() + args.size());
    a.emplace_back("EVALSHA");
    a.push_back(script.sha1);
    a.push_back(std::to_string(keys.size()));
    std::move(keys.begin(), keys.end(), std::back_inserter(a));
    std::move(args.begin(), args.end(), std::back_inserter(a));
    auto r = co_await raw(a);
    if (r && r->type == redis_reply::kind::error && r->str.starts_with("NOSCRIPT")) {
        a[0] = "EVAL";  // the server does not know it yet (restart, SCRIPT FLUSH): load and run
        a[1] = std::move(script.code);
        r = co_await raw(std::move(a));
    }
    co_return map_error_reply(std::move(r), "EVAL");
}

asio::awaitable<result<long long>> redis_client::hset(std::string key, std::string field,
                                                      std::string value) {
    co_return as_integer(
        co_await command(make_args("HSET", std::move(key), std::move(field), std::move(value))));
}

asio::awaitable<result<long long>> redis_client::hset(
    std::string key, std::vector<std::pair<std::string, std::string>> fields) {
    if (fields.empty()) co_return make_error_code(errc::bad_input);
    std::vector<std::string> a;
    a.reserve(2 + 2 * fields.size());
    a.emplace_back("HSET");
    a.push_back(std::move(key));
    for (auto& [f, v] : fields) {
        a.push_back(std::move(f));
        a.push_back(std::move(v));
    }
    co_return as_integer(co_await command(std::move(a)));
}

asio::awaitable<result<std::optional<std::string>>> redis_client::hget(std::string key,
                                                                       std::string field) {
    co_return as_optional_string(
        co_await command(make_args("HGET", std::move(key), std::move(field))));
}

asio::awaitable<result<std::vector<std::pair<std::string, std::string>>>> redis_client::hgetall(
    std::string key) {
    co_return as_pairs(co_await command(make_args("HGETALL", std::move(key))));
}

asio::awaitable<result<long long>> redis_client::hdel(std::string key,
                                                      std::vector<std::string> fields) {
    if (fields.empty()) co_return make_error_code(errc::bad_input);
    fields.insert(fields.begin(), {"HDEL", std::move(key)});
    co_return as_integer(co_await command(std::move(fields)));
}

asio::awaitable<result<long long>> redis_client::hincrby(std::string key, std::string field,
                                                         long long by) {
    co_return as_integer(co_await command(
        make_args("HINCRBY", std::move(key), std::move(field), std::to_string(by))));
}

asio::awaitable<result<long long>> redis_client::zadd(std::string key, double score,
                                                      std::string member) {
    co_return as_integer(co_await command(
        make_args("ZADD", std::move(key), format_score(score), std::move(member))));
}

asio::awaitable<result<long long>> redis_client::zrem(std::string key,
                                                      std::vector<std::string> members) {
    if (members.empty()) co_return make_error_code(errc::bad_input);
    members.insert(members.begin(), {"ZREM", std::move(key)});
    co_return as_integer(co_await command(std::move(members)));
}

namespace {
std::vector<std::string> zrange_args(std::string key, std::string min, std::string max,
                                     long long offset, long long count, bool with_scores) {
    auto a = make_args("ZRANGEBYSCORE", std::move(key), std::move(min), std::move(max));
    if (with_scores) a.emplace_back("WITHSCORES");
    if (offset != 0 || count >= 0) {
        a.emplace_back("LIMIT");
        a.push_back(std::to_string(offset));
        a.push_back(std::to_string(count));
    }
    return a;
}
}  // namespace

asio::awaitable<result<std::vector<std::string>>> redis_client::zrangebyscore(
    std::string key, std::string min, std::string max, long long offset, long long count) {
    co_return as_strings(co_await command(
        zrange_args(std::move(key), std::move(min), std::move(max), offset, count, false)));
}

asio::awaitable<result<std::vector<std::pair<std::string, double>>>>
redis_client::zrangebyscore_with_scores(std::string key, std::string min, std::string max,
                                        long long offset, long long count) {
    auto pairs = as_pairs(co_await command(
        zrange_args(std::move(key), std::move(min), std::move(max), offset, count, true)));
    if (!pairs) co_return pairs.error();
    std::vector<std::pair<std::string, double>> out;
    out.reserve(pairs->size());
    for (auto& [member, score] : *pairs) {
        const auto s = parse_score(score);
        if (!s) co_return make_error_code(errc::protocol_error);
        out.emplace_back(std::move(member), *s);
    }
    co_return out;
}

asio::awaitable<result<std::optional<double>>> redis_client::zscore(std::string key,
                                                                    std::string member) {
    auto s = as_optional_string(
        co_await command(make_args("ZSCORE", std::move(key), std::move(member))));
    if (!s) co_return s.error();
    if (!*s) co_return std::optional<double>{};
    const auto v = parse_score(**s);
    if (!v) co_return make_error_code(errc::protocol_error);
    co_return std::optional<double>(*v);
}

asio::awaitable<result<long long>> redis_client::zcard(std::string key) {
    co_return as_integer(co_await command(make_args("ZCARD", std::move(key))));
}

asio::awaitable<result<long long>> redis_client::publish(std::string channel, std::string message) {
    co_return as_integer(
        co_await command(make_args("PUBLISH", std::move(channel), std::move(message))));
}

// --- redis_subscriber ------------------------------------------------------------------------

std::shared_ptr<redis_subscriber> redis_subscriber::create(const asio::any_io_executor& ex,
                                                           redis_options o,
                                                           message_handler on_message,
                                                           state_handler on_state) {
    return std::make_shared<redis_subscriber>(
        private_tag{}, std::make_shared<detail::redis_sub_core>(
                           ex, std::move(o), std::move(on_message), std::move(on_state)));
}

redis_subscriber::redis_subscriber(private_tag, std::shared_ptr<detail::redis_sub_core> core)
    : core_(std::move(core)) {}

redis_subscriber::~redis_subscriber() {
    core_->stop();
}

void redis_subscriber::start() {
    core_->start();
}
void redis_subscriber::stop() {
    core_->stop();
}
bool redis_subscriber::connected() const {
    return core_->connected();
}
redis_stats redis_subscriber::stats() const {
    return core_->stats();
}

asio::awaitable<result<void>> redis_subscriber::wait_connected(std::chrono::milliseconds limit) {
    return asio::co_spawn(core_->strand(), detail::redis_core::wait_connected(core_, limit),
                          asio::use_awaitable);
}

asio::awaitable<result<void>> redis_subscriber::subscribe(std::vector<std::string> channels) {
    return asio::co_spawn(core_->strand(),
                          detail::redis_sub_core::subscribe(core_, std::move(channels), false),
                          asio::use_awaitable);
}

asio::awaitable<result<void>> redis_subscriber::psubscribe(std::vector<std::string> patterns) {
    return asio::co_spawn(core_->strand(),
                          detail::redis_sub_core::subscribe(core_, std::move(patterns), true),
                          asio::use_awaitable);
}

void redis_subscriber::unsubscribe(std::vector<std::string> channels) {
    core_->unsubscribe(std::move(channels), false);
}

void redis_subscriber::punsubscribe(std::vector<std::string> patterns) {
    core_->unsubscribe(std::move(patterns), true);
}

}  // namespace scrm::storage

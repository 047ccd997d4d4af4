// The fake WeChat's shell: its I/O thread, the request path (faults — latency, errors, dropped
// connections — then api_state), the control endpoints' I/O commands, and the sender's retries.
#include "scrm/fakes/fake_wechat.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <cstdlib>
#include <future>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "control.hpp"
#include "scrm/common/log.hpp"
#include "scrm/fakes/http_fetch.hpp"
#include "scrm/fakes/http_listener.hpp"
#include "scrm/fakes/test_pki.hpp"
#include "scrm/wechat/crypto.hpp"

namespace scrm::fakes {

namespace asio = boost::asio;
using asio::awaitable;

namespace {
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);
}  // namespace

struct fake_wechat::impl : std::enable_shared_from_this<impl> {
    explicit impl(fake_wechat_options o)
        : opts(std::move(o)),
          clock(opts.clock ? opts.clock : std::make_shared<fake_clock>()),
          state(clock, opts.limits) {}

    fake_wechat_options opts;
    std::shared_ptr<fake_clock> clock;
    api_state state;
    // Created by start(), destroyed by stop(): destroying it frees suspended coroutines, whose
    // references to this object would otherwise keep it alive.
    std::unique_ptr<asio::io_context> io;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
    std::thread thread;
    std::future<void> thread_done;
    std::unique_ptr<http_listener> listener;
    std::filesystem::path state_dir;
    bool own_state_dir = false;
    std::filesystem::path ca_file;
    std::uint16_t port = 0;
    bool tls = false;

    mutable std::mutex deliveries_mutex;
    std::vector<delivery_result> deliveries;
    std::uint64_t delivery_seq = 0;

    bool on_io_thread() const { return thread.get_id() == std::this_thread::get_id(); }

    // Runs `fn` on the I/O thread and waits for it (directly when already there).
    template <class Fn>
    auto run_on_io(Fn fn) -> decltype(fn()) {
        if (!thread.joinable() || on_io_thread()) return fn();
        std::packaged_task<decltype(fn())()> task(std::move(fn));
        auto done = task.get_future();
        asio::post(*io, [&task] { task(); });
        return done.get();
    }

    void store(delivery_result& r) {
        std::lock_guard lock(deliveries_mutex);
        r.seq = ++delivery_seq;
        deliveries.push_back(r);
    }
};

namespace {

std::string random_digits(std::size_t n) {
    static thread_local std::mt19937_64 rng(std::random_device{}());
    std::string out;
    out += static_cast<char>('1' + rng() % 9);
    while (out.size() < n) out += static_cast<char>('0' + rng() % 10);
    return out;
}

awaitable<delivery_result> deliver_coro(std::shared_ptr<fake_wechat::impl> self, std::string appid,
                                        inbound_spec spec, delivery_options o) {
    delivery_result r;
    r.appid = appid;
    r.openid = spec.from;
    r.type = spec.type;
    auto finish_failed = [&](std::string why) {
        r.error = std::move(why);
        r.reply.k = passive_reply::kind::invalid;
        r.reply.problem = r.error;
        self->store(r);
        log::warn("fake_wechat.delivery_failed", {{"appid", appid}, {"reason", r.error}});
        return r;
    };
    auto acct = self->state.find_account(appid);
    if (!acct) co_return finish_failed("unknown account");
    auto resolved = self->state.resolve(appid, std::move(spec));
    if (!resolved) co_return finish_failed("unknown QR ticket for this account");
    spec = std::move(*resolved);
    r.type = spec.type;
    r.url = o.url.empty() ? acct->callback_url : o.url;
    if (r.url.empty()) co_return finish_failed("no callback URL");
    const std::int64_t timestamp = o.timestamp != 0
                                       ? o.timestamp
                                       : std::chrono::duration_cast<std::chrono::seconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count();
    r.timestamp = std::to_string(timestamp);
    r.nonce = o.nonce.empty() ? random_digits(10) : o.nonce;
    r.create_time = spec.create_time != 0 ? spec.create_time : timestamp;
    if (!spec.is_event()) r.msg_id = spec.msg_id ? *spec.msg_id : self->state.next_msg_id();
    r.xml = inbound_xml(acct->original_id, spec, r.create_time, r.msg_id);
    auto signed_cb =
        sign_callback(*acct, spec.from, r.xml, r.timestamp, r.nonce, wechat::system_random());
    if (!signed_cb) co_return finish_failed("cannot sign: " + signed_cb.error().message());
    r.query = signed_cb->query;
    r.body = signed_cb->body;
    // The fan acted: the window opens (and follow state changes) whatever the gateway answers.
    self->state.on_delivered(appid, spec);

    fetch_request req;
    req.method = "POST";
    req.url = r.url + (r.url.find('?') == std::string::npos ? "?" : "&") + r.query;
    req.headers = {{"Content-Type", "text/xml"},
                   {"User-Agent", "Mozilla/4.0"},
                   {"Accept", "*/*"},
                   {"Pragma", "no-cache"}};
    req.body = r.body;
    fetch_options fo;
    fo.timeout = o.timeout;
    fo.ca_file = o.ca_file;
    for (unsigned i = 0; i < std::max(1u, o.attempts); ++i) {
        const auto started = std::chrono::steady_clock::now();
        auto res = co_await fetch(req, fo);
        delivery_attempt a;
        a.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - started);
        if (res) {
            a.status = res->status;
            a.body = res->body;
            r.attempts.push_back(std::move(a));
            r.answered = true;
            r.reply = judge_reply(*acct, spec.from, res->status, res->body);
            break;
        }
        a.error = res.error().message();
        r.attempts.push_back(std::move(a));
    }
    if (!r.answered) {
        r.reply.k = passive_reply::kind::invalid;
        r.reply.problem = "no answer in " + std::to_string(r.attempts.size()) + " attempts";
    }
    self->store(r);
    log::info("fake_wechat.delivered", {{"appid", appid},
                                        {"type", r.type},
                                        {"attempts", static_cast<std::uint64_t>(r.attempts.size())},
                                        {"answered", r.answered},
                                        {"reply", to_string(r.reply.k)}});
    co_return r;
}

awaitable<delivery_result> template_finish_coro(std::shared_ptr<fake_wechat::impl> self,
                                                std::uint64_t msgid, std::string status,
                                                delivery_options o) {
    auto t = self->state.find_template(msgid);
    if (!t) {
        delivery_result r;
        r.error = "unknown template msgid";
        r.reply.problem = r.error;
        self->store(r);
        co_return r;
    }
    co_return co_await deliver_coro(
        self, t->appid,
        inbound::template_finish(t->openid, msgid, status.empty() ? t->status : status),
        std::move(o));
}

awaitable<void> refuse_for(std::shared_ptr<fake_wechat::impl> self,
                           std::chrono::milliseconds duration) {
    asio::steady_timer timer(co_await asio::this_coro::executor, duration);
    co_await timer.async_wait(tuple_awaitable);
    if (self->listener && !self->listener->listening()) {
        if (!self->listener->resume_listening()) log::error("fake_wechat.resume_failed");
    }
}

listener_response from_control(detail::control_reply c) {
    listener_response out;
    out.status = c.status;
    out.content_type = "application/json";
    out.body = std::move(c.body);
    return out;
}

awaitable<listener_response> serve_control(std::shared_ptr<fake_wechat::impl> self,
                                           listener_request req) {
    auto outcome = detail::handle_control(self->state, req);
    if (auto* reply = std::get_if<detail::control_reply>(&outcome)) {
        co_return from_control(std::move(*reply));
    }
    if (auto* d = std::get_if<detail::deliver_command>(&outcome)) {
        auto r = co_await deliver_coro(self, d->appid, d->spec, d->opts);
        co_return from_control({200, detail::to_json(r)});
    }
    if (auto* t = std::get_if<detail::template_finish_command>(&outcome)) {
        auto r = co_await template_finish_coro(self, t->msgid, t->status, t->opts);
        co_return from_control({200, detail::to_json(r)});
    }
    if (auto* c = std::get_if<detail::refuse_command>(&outcome)) {
        // This connection answers, then closes; every other one closes now.
        self->listener->stop_listening(req.connection);
        asio::co_spawn(co_await asio::this_coro::executor, refuse_for(self, c->duration),
                       asio::detached);
        auto out = from_control({200, R"({"ok":true})"});
        out.close = true;
        co_return out;
    }
    std::vector<delivery_result> all;
    {
        std::lock_guard lock(self->deliveries_mutex);
        all = self->deliveries;
    }
    co_return from_control({200, detail::to_json(all)});
}

awaitable<listener_response> serve_request(std::shared_ptr<fake_wechat::impl> self,
                                           listener_request req) {
    listener_response out;
    if (!self) {  // the fake is going away
        out.drop = true;
        co_return out;
    }
    if (req.path.rfind("/control/", 0) == 0) co_return co_await serve_control(self, std::move(req));
    const std::string api(api_state::api_name(req.path));
    if (api.empty()) {
        out.status = 404;
        out.content_type = "text/html";
        out.body = "<html><body>404 Not Found</body></html>";
        co_return out;
    }
    call_record rec;
    rec.api = api;
    rec.method = req.method;
    rec.target = req.target;
    rec.content_type = req.header("content-type");
    rec.body = req.body;
    const std::optional<fault> f = self->state.take_fault(api);
    if (f && f->delay.count() > 0) {
        asio::steady_timer timer(co_await asio::this_coro::executor, f->delay);
        co_await timer.async_wait(tuple_awaitable);
    }
    const fault_action action = f ? f->action : fault_action::none;
    if (action == fault_action::error) {
        out.body = self->state.error_body(f->errcode, f->errmsg);
        rec.errcode = f->errcode;
    } else if (action == fault_action::http_status) {
        out.status = f->http_status;
        out.content_type = "text/html";
        out.body = "<html><body>" + std::to_string(f->http_status) + "</body></html>";
    } else if (action == fault_action::drop) {
        out.drop = true;
    } else {
        api_request ar{req.method, req.path, req.query, req.header("content-type"), req.body};
        api_response r = self->state.handle(ar);
        out.status = r.status;
        out.content_type = r.content_type;
        out.headers = std::move(r.headers);
        out.body = std::move(r.body);
        rec.errcode = r.errcode;
        rec.appid = r.appid;
        out.drop = action == fault_action::drop_after_processing;
    }
    rec.status = out.drop ? 0 : out.status;
    rec.response_body = out.drop ? std::string() : out.body;
    if (f) rec.fault = to_string(f->action);
    log::debug("fake_wechat.call", {{"api", api}, {"errcode", rec.errcode}, {"fault", rec.fault}});
    self->state.record(std::move(rec));
    co_return out;
}

}  // namespace

fake_wechat::fake_wechat(fake_wechat_options opts)
    : impl_(std::make_shared<impl>(std::move(opts))) {}

fake_wechat::~fake_wechat() {
    stop();
    if (impl_->own_state_dir) {
        std::error_code ec;
        std::filesystem::remove_all(impl_->state_dir, ec);
    }
}

scrm::result<void> fake_wechat::start() {
    auto& m = *impl_;
    if (m.thread.joinable()) return {};
    if (m.opts.state_dir.empty()) {
        std::string tmpl = (std::filesystem::temp_directory_path() / "fake-wechat-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) return make_error_code(errc::unavailable);
        m.state_dir = tmpl;
        m.own_state_dir = true;
    } else {
        m.state_dir = m.opts.state_dir;
    }
    listener_options lo;
    lo.host = m.opts.host;
    lo.port = m.opts.port;
    lo.read_timeout = m.opts.read_timeout;
    if (m.opts.tls) {
        auto pki = generate_test_pki(m.state_dir / "tls");
        if (!pki) return pki.error();
        lo.cert_file = pki->server_cert;
        lo.key_file = pki->server_key;
        m.ca_file = pki->ca_cert;
        m.tls = true;
    }
    std::weak_ptr<impl> weak = impl_;
    listener_handler handler = [weak](listener_request req) {
        return serve_request(weak.lock(), std::move(req));
    };
    m.io = std::make_unique<asio::io_context>(1);
    m.listener = std::make_unique<http_listener>(m.io->get_executor(), lo, std::move(handler));
    auto port = m.listener->start();
    if (!port) {
        m.listener.reset();
        m.io.reset();
        return port.error();
    }
    m.port = *port;
    m.work.emplace(m.io->get_executor());
    std::promise<void> ran;
    m.thread_done = ran.get_future();
    m.thread = std::thread([io = m.io.get(), ran = std::move(ran)]() mutable {
        io->run();
        ran.set_value();
    });
    log::info("fake_wechat.started", {{"url", url()}, {"tls", m.tls}});
    return {};
}

void fake_wechat::stop() {
    auto& m = *impl_;
    if (!m.thread.joinable()) return;
    m.run_on_io([&m] {
        if (m.listener) m.listener->stop_listening();
    });
    // Connections are closed: their coroutines end at once. Deliveries in flight get a moment.
    m.work.reset();
    if (m.thread_done.wait_for(std::chrono::seconds(2)) != std::future_status::ready) m.io->stop();
    m.thread.join();
    m.listener.reset();
    m.io.reset();
}

std::string fake_wechat::url() const {
    return std::string(impl_->tls ? "https://" : "http://") +
           (impl_->opts.host.find(':') != std::string::npos ? "[" + impl_->opts.host + "]"
                                                            : impl_->opts.host) +
           ":" + std::to_string(impl_->port);
}

std::uint16_t fake_wechat::port() const {
    return impl_->port;
}

std::filesystem::path fake_wechat::ca_file() const {
    return impl_->ca_file;
}

api_state& fake_wechat::api() {
    return impl_->state;
}

fake_clock& fake_wechat::clock() {
    return *impl_->clock;
}

void fake_wechat::stop_listening() {
    auto& m = *impl_;
    m.run_on_io([&m] {
        if (m.listener) m.listener->stop_listening();
    });
}

scrm::result<void> fake_wechat::resume_listening() {
    auto& m = *impl_;
    return m.run_on_io([&m]() -> scrm::result<void> {
        if (!m.listener) return make_error_code(errc::shutting_down);
        return m.listener->resume_listening();
    });
}

awaitable<delivery_result> fake_wechat::async_deliver(std::string appid, inbound_spec spec,
                                                      delivery_options opts) {
    return deliver_coro(impl_, std::move(appid), std::move(spec), std::move(opts));
}

delivery_result fake_wechat::deliver(std::string appid, inbound_spec spec, delivery_options opts) {
    auto& m = *impl_;
    if (!m.thread.joinable() || m.on_io_thread()) {
        delivery_result r;
        r.error = "deliver() needs a started fake and must not run on its thread";
        r.reply.problem = r.error;
        return r;
    }
    auto done = asio::co_spawn(
        *m.io, deliver_coro(impl_, std::move(appid), std::move(spec), std::move(opts)),
        asio::use_future);
    return done.get();
}

delivery_result fake_wechat::deliver_template_finish(std::uint64_t msgid, delivery_options opts) {
    auto& m = *impl_;
    if (!m.thread.joinable() || m.on_io_thread()) {
        delivery_result r;
        r.error = "deliver_template_finish() needs a started fake and must not run on its thread";
        r.reply.problem = r.error;
        return r;
    }
    auto done = asio::co_spawn(*m.io, template_finish_coro(impl_, msgid, {}, std::move(opts)),
                               asio::use_future);
    return done.get();
}

std::vector<delivery_result> fake_wechat::deliveries() const {
    std::lock_guard lock(impl_->deliveries_mutex);
    return impl_->deliveries;
}

}  // namespace scrm::fakes

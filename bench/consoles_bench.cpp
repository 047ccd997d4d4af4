// scrm-bench-consoles: many staff consoles on one server, and the time from the webhook's answer to
// each console's push, under a steady message load (bench/consoles drives it; bench/README.md).
//
//   scrm-bench-consoles --port P --plan FILE --tabs N --rate MSGS_PER_S --seconds S --token T
//                       [--senders K] [--rss-pid PID]
//
// The plan has one line per agent: "<session token> <appid> <original id>". Each agent gets N
// WebSocket consoles on /api/agent/ws (Authorization: Bearer), all held open for the whole run.
// Then S seconds of text messages at RATE per second, each from one of 500 fans of a random
// account, signed with token T (plain mode), sent over K keep-alive connections. Every console of
// the account's clinic should get the message (shared mode); a push is matched to its message by
// the "bench#<seq>#" in its content. Everything is one thread, so the clocks compare directly.
// Prints one line: RESULT consoles=… connected=… and two latencies per push: from the webhook's
// answer (p50_ms, p99_ms, max_ms; a push that came first counts 0 and in before_answer) and from
// the moment the webhook request was sent (send_p50_ms, …), which also holds for a server that
// pushes before it answers.
#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "scrm/wechat/signature.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using asio::awaitable;
using asio::use_awaitable;
using clock_type = std::chrono::steady_clock;

namespace {

struct agent_line {
    std::string token, appid, original_id;
};

struct message_record {
    std::size_t account = 0;
    clock_type::time_point sent{}, answered{};
    bool answered_ok = false;
};

struct arrival {
    std::size_t seq;
    clock_type::time_point at;
};

struct run_state {
    std::uint16_t port = 0;
    std::vector<agent_line> agents;
    std::vector<std::string> accounts;           // appids, in first-seen order
    std::vector<std::string> account_originals;  // their original ids
    std::vector<std::size_t> consoles_per_account;
    std::vector<message_record> messages;
    std::vector<arrival> arrivals;
    std::size_t connected = 0, refused = 0, dropped = 0, http_errors = 0, late_sends = 0;
    std::size_t next_message = 0, total_messages = 0;
    clock_type::time_point load_start{};
    double rate = 0;
    std::string wechat_token;
    bool stopping = false;
};

// The "bench#<seq>#" a pushed message's content carries, or npos.
std::size_t sequence_in(std::string_view frame) {
    const auto at = frame.find("bench#");
    if (at == std::string_view::npos) return std::string_view::npos;
    std::size_t seq = 0, i = at + 6;
    if (i >= frame.size() || frame[i] < '0' || frame[i] > '9') return std::string_view::npos;
    for (; i < frame.size() && frame[i] >= '0' && frame[i] <= '9'; ++i) seq = seq * 10 + (frame[i] - '0');
    return seq;
}

asio::ip::tcp::endpoint loopback(std::uint16_t port) {
    return {asio::ip::make_address("127.0.0.1"), port};
}

// One console: connect, upgrade with the agent's bearer token, wait for the hello, then record
// every bench message pushed to it until the run stops.
awaitable<void> console(run_state& s, std::size_t agent) {
    websocket::stream<beast::tcp_stream> ws(co_await asio::this_coro::executor);
    try {
        beast::get_lowest_layer(ws).expires_after(std::chrono::seconds(30));
        co_await beast::get_lowest_layer(ws).async_connect(loopback(s.port), use_awaitable);
        beast::get_lowest_layer(ws).socket().set_option(asio::ip::tcp::no_delay(true));
        beast::get_lowest_layer(ws).expires_never();
        ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
        const std::string bearer = "Bearer " + s.agents[agent].token;
        ws.set_option(websocket::stream_base::decorator(
            [bearer](websocket::request_type& req) { req.set(http::field::authorization, bearer); }));
        co_await ws.async_handshake("127.0.0.1:" + std::to_string(s.port), "/api/agent/ws", use_awaitable);
        beast::flat_buffer buffer;
        co_await ws.async_read(buffer, use_awaitable);  // the hello
        ++s.connected;
        for (;;) {
            buffer.clear();
            co_await ws.async_read(buffer, use_awaitable);
            const auto at = clock_type::now();
            const auto frame = beast::buffers_to_string(buffer.data());
            const auto seq = sequence_in(frame);
            if (seq < s.messages.size()) s.arrivals.push_back({seq, at});
        }
    } catch (const std::exception&) {
        if (s.stopping) co_return;
        if (ws.is_open()) ++s.dropped; else ++s.refused;
    }
}

std::string webhook_body(const run_state& s, std::size_t account, const std::string& fan, std::size_t seq,
                         const std::string& msgid) {
    return "<xml><ToUserName><![CDATA[" + s.account_originals[account] +
           "]]></ToUserName><FromUserName><![CDATA[" + fan + "]]></FromUserName><CreateTime>" +
           std::to_string(std::time(nullptr)) +
           "</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[您好，我想预约明天上午的洗牙 bench#" +
           std::to_string(seq) + "#]]></Content><MsgId>" + msgid + "</MsgId></xml>";
}

// One keep-alive connection sending the scheduled messages it takes, each when it is due.
awaitable<void> sender(run_state& s, std::uint64_t first_msgid, unsigned seed) {
    std::mt19937 rng(seed);
    beast::tcp_stream stream(co_await asio::this_coro::executor);
    asio::steady_timer timer(co_await asio::this_coro::executor);
    beast::flat_buffer buffer;
    bool open = false;
    while (s.next_message < s.total_messages) {
        const std::size_t seq = s.next_message++;
        const auto due = s.load_start + std::chrono::microseconds(static_cast<long long>(seq * 1e6 / s.rate));
        if (clock_type::now() < due) {
            timer.expires_at(due);
            co_await timer.async_wait(use_awaitable);
        } else if (clock_type::now() - due > std::chrono::milliseconds(10)) {
            ++s.late_sends;
        }
        auto& m = s.messages[seq];
        m.account = std::uniform_int_distribution<std::size_t>(0, s.accounts.size() - 1)(rng);
        const std::string fan = "oBenchConsoleFan" + std::to_string(rng() % 500);
        const std::string msgid = std::to_string(first_msgid + seq);
        const std::string ts = std::to_string(std::time(nullptr));
        const std::string nonce = "c" + msgid;
        http::request<http::string_body> req{
            http::verb::post,
            "/wx/" + s.accounts[m.account] + "?signature=" + scrm::wechat::url_signature(s.wechat_token, ts, nonce) +
                "&timestamp=" + ts + "&nonce=" + nonce + "&openid=" + fan,
            11};
        req.set(http::field::host, "127.0.0.1");
        req.set(http::field::content_type, "text/xml");
        req.body() = webhook_body(s, m.account, fan, seq, msgid);
        req.prepare_payload();
        try {
            if (!open) {
                co_await stream.async_connect(loopback(s.port), use_awaitable);
                stream.socket().set_option(asio::ip::tcp::no_delay(true));
                open = true;
            }
            stream.expires_after(std::chrono::seconds(10));
            m.sent = clock_type::now();
            co_await http::async_write(stream, req, use_awaitable);
            http::response<http::string_body> res;
            co_await http::async_read(stream, buffer, res, use_awaitable);
            m.answered = clock_type::now();
            m.answered_ok = res.result() == http::status::ok;
            if (!m.answered_ok) ++s.http_errors;
            if (!res.keep_alive()) {
                stream.close();
                open = false;
            }
        } catch (const std::exception&) {
            ++s.http_errors;
            stream.close();
            open = false;
        }
    }
}

long rss_kib(int pid) {
    if (pid <= 0) return 0;
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    }
    return 0;
}

double percentile(std::vector<double>& v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
    return v[i];
}

// How many pushes should have arrived: every console of each answered message's account.
std::size_t expected_deliveries(const run_state& s) {
    std::size_t n = 0;
    for (const auto& m : s.messages) {
        if (m.answered_ok) n += s.consoles_per_account[m.account];
    }
    return n;
}

awaitable<void> wait_ms(int ms) {
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
    co_await t.async_wait(use_awaitable);
}

awaitable<void> run(run_state& s, std::size_t tabs, std::size_t senders, int rss_pid, double seconds) {
    auto ex = co_await asio::this_coro::executor;
    const long rss_before = rss_kib(rss_pid);
    const auto connect_start = clock_type::now();
    const std::size_t consoles = s.agents.size() * tabs;
    // Open the consoles 50 at a time (each waits for its hello), as pages coming up over a minute would.
    for (std::size_t i = 0; i < consoles; ++i) {
        asio::co_spawn(ex, console(s, i % s.agents.size()), asio::detached);
        if (i % 50 == 49) {
            for (int k = 0; k < 1000 && s.connected + s.refused + s.dropped < i + 1; ++k) co_await wait_ms(10);
        }
    }
    for (int k = 0; k < 3000 && s.connected + s.refused + s.dropped < consoles; ++k) co_await wait_ms(10);
    const double connect_s = std::chrono::duration<double>(clock_type::now() - connect_start).count();
    co_await wait_ms(1000);  // presence settles before the load
    const long rss_after = rss_kib(rss_pid);

    s.total_messages = static_cast<std::size_t>(s.rate * seconds);
    s.messages.resize(s.total_messages);
    s.load_start = clock_type::now() + std::chrono::milliseconds(100);
    const auto first_msgid = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    for (std::size_t k = 0; k < senders; ++k) {
        asio::co_spawn(ex, sender(s, first_msgid, static_cast<unsigned>(k + 1)), asio::detached);
    }
    while (s.next_message < s.total_messages) co_await wait_ms(50);
    // Let the last answers and pushes come in: until everything expected arrived or 5 s without progress.
    std::size_t seen = 0;
    for (int quiet = 0; quiet < 100; ++quiet) {
        co_await wait_ms(50);
        if (s.arrivals.size() != seen) quiet = 0;
        seen = s.arrivals.size();
        if (seen >= expected_deliveries(s) && s.messages.back().answered != clock_type::time_point{}) break;
    }

    std::vector<double> from_answer, from_send;
    std::size_t before_answer = 0;
    for (const auto& a : s.arrivals) {
        const auto& m = s.messages[a.seq];
        if (!m.answered_ok) continue;
        const double ms_answer = std::chrono::duration<double, std::milli>(a.at - m.answered).count();
        if (ms_answer < 0) ++before_answer;
        from_answer.push_back(std::max(0.0, ms_answer));
        from_send.push_back(std::chrono::duration<double, std::milli>(a.at - m.sent).count());
    }
    const std::size_t expected = expected_deliveries(s);
    const double max_ms = from_answer.empty() ? 0 : *std::max_element(from_answer.begin(), from_answer.end());
    std::printf(
        "RESULT consoles=%zu connected=%zu refused=%zu dropped=%zu connect_s=%.1f rss_before_kib=%ld "
        "rss_after_kib=%ld msgs=%zu http_errors=%zu late_sends=%zu expected=%zu delivered=%zu "
        "before_answer=%zu p50_ms=%.2f p99_ms=%.2f max_ms=%.2f send_p50_ms=%.2f send_p99_ms=%.2f "
        "send_max_ms=%.2f\n",
        consoles, s.connected, s.refused, s.dropped, connect_s, rss_before, rss_after, s.total_messages,
        s.http_errors, s.late_sends, expected, from_answer.size(), before_answer, percentile(from_answer, 0.5),
        percentile(from_answer, 0.99), max_ms, percentile(from_send, 0.5), percentile(from_send, 0.99),
        from_send.empty() ? 0 : *std::max_element(from_send.begin(), from_send.end()));
    std::fflush(stdout);
    s.stopping = true;
    co_return;
}

}  // namespace

int main(int argc, char** argv) {
    std::map<std::string, std::string> o{{"--tabs", "10"}, {"--rate", "50"}, {"--seconds", "10"},
                                         {"--senders", "8"}, {"--rss-pid", "0"}};
    for (int i = 1; i + 1 < argc; i += 2) o[argv[i]] = argv[i + 1];
    for (const char* k : {"--port", "--plan", "--token"}) {
        if (!o.count(k)) {
            std::cerr << "scrm-bench-consoles: missing " << k << "\n";
            return 2;
        }
    }
    run_state s;
    s.port = static_cast<std::uint16_t>(std::stoi(o["--port"]));
    s.rate = std::stod(o["--rate"]);
    s.wechat_token = o["--token"];
    std::ifstream plan(o["--plan"]);
    std::string line;
    std::map<std::string, std::size_t> account_index;
    while (std::getline(plan, line)) {
        std::istringstream in(line);
        agent_line a;
        if (!(in >> a.token >> a.appid >> a.original_id)) continue;
        if (account_index.emplace(a.appid, s.accounts.size()).second) {
            s.accounts.push_back(a.appid);
            s.account_originals.push_back(a.original_id);
            s.consoles_per_account.push_back(0);
        }
        s.agents.push_back(std::move(a));
    }
    if (s.agents.empty() || s.rate <= 0) {
        std::cerr << "scrm-bench-consoles: the plan has no agents, or --rate is not positive\n";
        return 2;
    }
    const auto tabs = static_cast<std::size_t>(std::stoul(o["--tabs"]));
    for (const auto& a : s.agents) s.consoles_per_account[account_index[a.appid]] += tabs;

    asio::io_context io(1);
    asio::co_spawn(io,
                   run(s, tabs, static_cast<std::size_t>(std::stoul(o["--senders"])), std::stoi(o["--rss-pid"]),
                       std::stod(o["--seconds"])),
                   [&io](std::exception_ptr e) {
                       if (e) std::cerr << "scrm-bench-consoles: the run failed\n";
                       io.stop();
                   });
    io.run();
    return s.stopping ? 0 : 1;
}

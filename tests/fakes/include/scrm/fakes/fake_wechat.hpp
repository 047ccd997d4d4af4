// A faithful fake WeChat — the one stand-in the project's tests may use for it. It is a real
// HTTP(S) server on 127.0.0.1 that answers the /cgi-bin/… API like api.weixin.qq.com (rules and
// error codes: wechat_api.hpp), with control endpoints under /control/ (listed below) and an
// equivalent C++ API; and it is WeChat's SENDER: it POSTs signed (and in safe mode encrypted)
// callbacks to a gateway, retrying as WeChat does when no answer comes in time, and judges the
// passive replies.
//
// Control endpoints (JSON in and out; appid/openid filters are query parameters):
//   POST /control/reset                     forget everything (limits back to the start values)
//   GET|POST /control/limits                read / change api_limits (seconds, counts, bytes)
//   GET|POST /control/clock                 {"now","manual"} / {"advance_s": n} moves time on
//   POST /control/accounts                  {"appid","secret","token","encoding_aes_key",
//                                           "original_id","mode":"plain|compatible|safe",
//                                           "callback_url","template_ids":[…]}
//   POST /control/fans                      {"appid","openid","following",…} (struct fan)
//   GET  /control/fans?appid=&openid=       the fan, both windows and the typing state
//   POST /control/interactions              {"appid","openid","kind":"message|event"}
//   POST /control/media                     {"appid","type","content_type","data_base64"
//                                           [,"media_id"]} → {"media_id"}
//   POST /control/faults                    {"api","action":"error|http_status|drop|
//                                           drop_after_processing|none","errcode","errmsg",
//                                           "http_status","delay_ms","times"}
//   DELETE /control/faults                  clear them
//   POST /control/tokens/expire|invalidate  {"appid"} (all accounts when absent)
//   POST /control/listening                 {"refuse_ms": n}: refuse connections for n ms
//   GET  /control/calls?api=                every API call received, with bodies
//   GET  /control/sent?appid=&openid=       messages that reached fans
//   POST /control/deliver                   {"appid","message":{…inbound_spec…},"url",
//                                           "timeout_ms","attempts","ca_file"} → the delivery
//   POST /control/template_finish           {"msgid"[,"status"],…} → TEMPLATESENDJOBFINISH
//   GET  /control/deliveries                every delivery with its attempts and judged reply
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "scrm/common/error.hpp"
#include "scrm/fakes/account.hpp"
#include "scrm/fakes/clock.hpp"
#include "scrm/fakes/inbound.hpp"
#include "scrm/fakes/wechat_api.hpp"

namespace scrm::fakes {

// How one callback is delivered. Defaults are WeChat's: 5 s to answer, 3 sends in total.
struct delivery_options {
    std::string url;  // the callback URL; empty: the account's callback_url
    std::chrono::milliseconds timeout{5000};
    unsigned attempts = 3;
    std::string ca_file;  // for an https callback URL (empty: the system trust store)
    std::string nonce;    // empty: random digits
    // The query's timestamp, also the default CreateTime. 0: the SYSTEM clock, not the fake
    // clock — the gateway checks freshness against real time, while the fake clock only drives
    // the fake's own rules (windows, tokens).
    std::int64_t timestamp = 0;
};

struct delivery_attempt {
    unsigned status = 0;  // 0: no HTTP answer (timeout, refused, closed)
    std::string body;
    std::string error;  // why there was no answer
    std::chrono::milliseconds elapsed{0};
};

struct delivery_result {
    std::uint64_t seq = 0;
    std::string appid, openid, type;  // type after resolving "qr"
    std::string url;                  // the callback URL, without the signed query
    std::string query;                // the signed query (identical on every attempt)
    std::string body;                 // the POST body (identical on every attempt)
    std::string xml;                  // the plaintext message XML
    std::string timestamp, nonce;
    std::uint64_t msg_id = 0;  // ordinary messages; 0 for events
    std::int64_t create_time = 0;
    std::vector<delivery_attempt> attempts;
    bool answered = false;  // an attempt got an HTTP answer (WeChat then stops retrying)
    passive_reply reply;    // judged from that answer; kind invalid with a problem otherwise
    std::string error;      // set when nothing could be sent (unknown account or ticket, no URL)

    // What WeChat shows the fan on failure ("该公众号暂时无法提供服务，请稍后再试"): no answer in
    // any attempt, or an invalid reply.
    bool fan_sees_failure() const { return reply.k == passive_reply::kind::invalid; }
};

struct fake_wechat_options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;  // 0: any free port
    bool tls = false;        // https with a CA and certificate generated at start()
    // TLS files go to <state_dir>/tls. Empty: a fresh directory under the system temp dir,
    // removed by the destructor.
    std::filesystem::path state_dir;
    std::shared_ptr<fake_clock>
        clock;  // null: the system clock (adjustable through /control/clock)
    api_limits limits;
    std::chrono::milliseconds read_timeout{30000};
};

// Owns one I/O thread. Every member function is thread-safe; the blocking ones (stop_listening,
// resume_listening, deliver, deliver_template_finish) must not be called from a handler running
// on the fake's own thread.
class fake_wechat {
public:
    explicit fake_wechat(fake_wechat_options opts = {});
    ~fake_wechat();  // stops
    fake_wechat(const fake_wechat&) = delete;
    fake_wechat& operator=(const fake_wechat&) = delete;

    // Generates the TLS material (if tls), binds and starts serving. errc::unavailable if the
    // port cannot be bound or files cannot be written; errc::server_error if OpenSSL fails.
    scrm::result<void> start();
    void stop();

    std::string url() const;  // "http://127.0.0.1:PORT" or "https://…", no trailing slash
    std::uint16_t port() const;
    std::filesystem::path ca_file() const;  // the CA to trust (TLS only; empty otherwise)

    // Accounts, fans, windows, tokens, media, faults and records (see wechat_api.hpp).
    api_state& api();
    fake_clock& clock();

    // Refusing connections: closes the listening socket and every open connection; resume binds
    // the same port again.
    void stop_listening();
    scrm::result<void> resume_listening();

    // Sends one callback for `spec` as WeChat would: signed (and encrypted per the account's
    // mode), re-sent when no answer comes within the timeout, up to `attempts` times. Before the
    // first send the fan's follow state and windows change as the interaction implies (the fan
    // acted, whatever the gateway answers). Runs on the caller's executor.
    boost::asio::awaitable<delivery_result> async_deliver(std::string appid, inbound_spec spec,
                                                          delivery_options opts = {});
    // The same, blocking the calling thread (runs on the fake's thread).
    delivery_result deliver(std::string appid, inbound_spec spec, delivery_options opts = {});
    // TEMPLATESENDJOBFINISH for a template message the fake accepted, with the template's status
    // (api_state::set_template_status; "failed:user block" for a fan who blocks templates).
    delivery_result deliver_template_finish(std::uint64_t msgid, delivery_options opts = {});
    // Every delivery so far, oldest first.
    std::vector<delivery_result> deliveries() const;

    struct impl;  // opaque: defined in fake_wechat.cpp

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace scrm::fakes

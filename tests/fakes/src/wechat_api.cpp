// The fake WeChat API's rules (see wechat_api.hpp for the error codes and where they come from).
// Everything here runs under api_state's mutex; the clock is read once per call.
#include "scrm/fakes/wechat_api.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <ostream>
#include <tuple>

#include "scrm/wechat/crypto.hpp"
#include "util.hpp"

namespace scrm::fakes {

namespace detail {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string url_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            out += ' ';
        } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
                   hex_value(s[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

// The first value of `name` in a query string, URL-decoded ("" if absent).
std::string query_param(std::string_view query, std::string_view name) {
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        const auto eq = pair.find('=');
        if (url_decode(pair.substr(0, eq)) == name) {
            return eq == std::string_view::npos ? std::string() : url_decode(pair.substr(eq + 1));
        }
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return {};
}

}  // namespace detail

using detail::query_param;

namespace {

using std::chrono::seconds;
using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr std::string_view token_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

std::int64_t unix_of(sys_time t) {
    return std::chrono::duration_cast<seconds>(t.time_since_epoch()).count();
}

// WeChat's quota days follow Beijing time (UTC+8).
std::int64_t day_of(sys_time t) {
    const std::int64_t s = unix_of(t) + std::int64_t{8} * 3600;
    return s >= 0 ? s / 86400 : (s - 86399) / 86400;
}

std::string errmsg_for(int code) {
    switch (code) {
        case -1: return "system error";
        case 0: return "ok";
        case 40001: return "invalid credential, access_token is invalid or not latest";
        case 40002: return "invalid grant_type";
        case 40003: return "invalid openid";
        case 40004: return "invalid media type";
        case 40005: return "invalid file type";
        case 40007: return "invalid media_id";
        case 40008: return "invalid message type";
        case 40009: return "invalid image size";
        case 40010: return "invalid voice size";
        case 40011: return "invalid video size";
        case 40012: return "invalid thumb size";
        case 40013: return "invalid appid";
        case 40014: return "invalid access_token";
        case 40037: return "invalid template_id";
        case 40052: return "invalid action name";
        case 40053: return "invalid action info";
        case 40125: return "invalid appsecret";
        case 40164: return "invalid ip, not in whitelist";
        case 41001: return "access_token missing";
        case 41002: return "appid missing";
        case 41004: return "appsecret missing";
        case 41005: return "media data missing";
        case 42001: return "access_token expired";
        case 43001: return "require GET method";
        case 43002: return "require POST method";
        case 43004: return "require subscribe";
        case 43019: return "require remove blacklist";
        case 44003: return "empty news data";
        case 44004: return "empty content";
        case 45002: return "content size out of limit";
        case 45008: return "article size out of limit";
        case 45009: return "reach max api daily quota limit";
        case 45011: return "api minute-quota reach limit";
        case 45015: return "response out of time limit or subscription is canceled";
        case 45047: return "out of response count limit";
        case 47001: return "data format error";
        case 48001: return "api unauthorized";
        case 48002: return "user has turned off receiving messages";
        default: return "error";
    }
}

std::string str(const rapidjson::Value& obj, const char* name) {
    if (!obj.IsObject()) return {};
    auto it = obj.FindMember(name);
    if (it == obj.MemberEnd() || !it->value.IsString()) return {};
    return {it->value.GetString(), it->value.GetStringLength()};
}

bool has(const rapidjson::Value& obj, const char* name) {
    return obj.IsObject() && obj.HasMember(name);
}

const rapidjson::Value* object(const rapidjson::Value& obj, const char* name) {
    if (!obj.IsObject()) return nullptr;
    auto it = obj.FindMember(name);
    if (it == obj.MemberEnd() || !it->value.IsObject()) return nullptr;
    return &it->value;
}

void key(json_writer& w, std::string_view k) {
    w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
}

void string(json_writer& w, std::string_view v) {
    w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}

std::string ok_body() {
    return R"({"errcode":0,"errmsg":"ok"})";
}

// One part of a multipart/form-data body.
struct form_part {
    std::string name, filename, content_type, data;
};

std::string header_param(std::string_view header, std::string_view param) {
    const std::string needle = std::string(param) + "=";
    std::size_t pos = 0;
    while ((pos = header.find(needle, pos)) != std::string_view::npos) {
        if (pos == 0 || header[pos - 1] == ';' || header[pos - 1] == ' ') break;
        pos += needle.size();
    }
    if (pos == std::string_view::npos) return {};
    std::string_view v = header.substr(pos + needle.size());
    if (!v.empty() && v.front() == '"') {
        v.remove_prefix(1);
        return std::string(v.substr(0, v.find('"')));
    }
    return std::string(v.substr(0, v.find_first_of("; ")));
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// Splits a multipart/form-data body; empty when the body or boundary is malformed.
std::vector<form_part> parse_multipart(std::string_view content_type, std::string_view body) {
    std::vector<form_part> parts;
    const std::string boundary = header_param(content_type, "boundary");
    if (boundary.empty()) return parts;
    const std::string delim = "--" + boundary;
    std::size_t pos = body.find(delim);
    while (pos != std::string_view::npos) {
        pos += delim.size();
        if (body.substr(pos, 2) == "--") break;  // closing delimiter
        if (body.substr(pos, 2) == "\r\n") pos += 2;
        const auto head_end = body.find("\r\n\r\n", pos);
        if (head_end == std::string_view::npos) break;
        const auto next = body.find("\r\n" + delim, head_end + 4);
        if (next == std::string_view::npos) break;
        form_part part;
        std::string_view head = body.substr(pos, head_end - pos);
        while (!head.empty()) {
            const auto eol = head.find("\r\n");
            const std::string_view line = head.substr(0, eol);
            const auto colon = line.find(':');
            if (colon != std::string_view::npos) {
                const std::string name = lower(line.substr(0, colon));
                std::string_view value = line.substr(colon + 1);
                while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
                if (name == "content-disposition") {
                    part.name = header_param(value, "name");
                    part.filename = header_param(value, "filename");
                } else if (name == "content-type") {
                    part.content_type = std::string(value);
                }
            }
            if (eol == std::string_view::npos) break;
            head.remove_prefix(eol + 2);
        }
        part.data = std::string(body.substr(head_end + 4, next - head_end - 4));
        parts.push_back(std::move(part));
        pos = next + 2;
    }
    return parts;
}

bool starts_with_bytes(std::string_view data, std::string_view magic) {
    return data.size() >= magic.size() && data.substr(0, magic.size()) == magic;
}

bool is_jpeg(std::string_view d) {
    return starts_with_bytes(d, std::string_view("\xFF\xD8\xFF", 3));
}
bool is_png(std::string_view d) {
    return starts_with_bytes(d, std::string_view("\x89PNG\r\n\x1A\n", 8));
}
bool is_amr(std::string_view d) {
    return starts_with_bytes(d, "#!AMR");
}
bool is_mp3(std::string_view d) {
    return starts_with_bytes(d, "ID3") ||
           (d.size() >= 2 && static_cast<unsigned char>(d[0]) == 0xFF &&
            (static_cast<unsigned char>(d[1]) & 0xE0) == 0xE0);
}
bool is_mp4(std::string_view d) {
    return d.size() >= 8 && d.substr(4, 4) == "ftyp";
}

}  // namespace

// ---- small public helpers --------------------------------------------------------------------

bool valid_openid(std::string_view openid, bool strict) noexcept {
    if (strict ? openid.size() != 28 : (openid.empty() || openid.size() > 64)) return false;
    return std::all_of(openid.begin(), openid.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    });
}

std::string make_openid(std::string_view seed) {
    std::uint64_t h = 1469598103934665603ULL;  // FNV-1a, stretched with a xorshift
    for (unsigned char c : seed) {
        h ^= c;
        h *= 1099511628211ULL;
    }
    std::string out = "o";
    while (out.size() < 28) {
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
        out += token_alphabet[h % token_alphabet.size()];
    }
    return out;
}

const char* to_string(window_kind k) noexcept {
    return k == window_kind::message ? "message" : "event";
}

const char* to_string(fault_action a) noexcept {
    switch (a) {
        case fault_action::none: return "none";
        case fault_action::error: return "error";
        case fault_action::http_status: return "http_status";
        case fault_action::drop: return "drop";
        case fault_action::drop_after_processing: return "drop_after_processing";
    }
    return "?";
}

scrm::result<fault_action> parse_fault_action(std::string_view text) {
    for (auto a : {fault_action::none, fault_action::error, fault_action::http_status,
                   fault_action::drop, fault_action::drop_after_processing}) {
        if (text == to_string(a)) return a;
    }
    return make_error_code(errc::bad_input);
}

std::ostream& operator<<(std::ostream& os, const call_record& r) {
    return os << "call{#" << r.seq << ' ' << r.api << ' ' << r.method << " status " << r.status
              << " errcode " << r.errcode << (r.fault.empty() ? "" : " fault ") << r.fault << '}';
}

// ---- state -----------------------------------------------------------------------------------

namespace {

struct token_rec {
    std::string appid;
    bool stable = false;
    sys_time expires{};
    std::optional<sys_time> invalid_after;  // a superseded /cgi-bin/token token
    bool invalidated = false;
};

struct account_rec {
    account a;
    std::string legacy_current, stable_current;
    std::optional<sys_time> last_force;
    std::int64_t force_day = -1;
    unsigned force_count = 0;
    std::int64_t token_day = -1;
    unsigned token_count = 0;
};

struct window_slot {
    bool valid = false;
    sys_time opened{};
    unsigned used = 0;
};

struct fan_rec {
    fan f;
    window_slot message, event;
    std::optional<sys_time> last_interaction;
    sys_time typing_until{};
};

struct dedup_rec {
    std::uint64_t msgid = 0;
    sys_time at{};
};

using fan_key = std::pair<std::string, std::string>;

}  // namespace

struct api_state::state {
    explicit state(api_limits l) : limits(l), rng(std::random_device{}()) {
        msg_id = 6'100'000'000'000'000'000ULL + rng() % 1'000'000'000'000ULL;
        template_id = 3'000'000'000'000'000'000ULL + rng() % 1'000'000'000'000ULL;
    }

    api_limits limits;
    std::mt19937_64 rng;
    std::uint64_t seq = 0;
    std::uint64_t msg_id = 0;
    std::uint64_t template_id = 0;
    std::map<std::string, account_rec, std::less<>> accounts;
    std::map<fan_key, fan_rec> fans;
    std::map<std::string, token_rec, std::less<>> tokens;
    std::map<std::string, media_record, std::less<>> media;
    std::map<std::uint64_t, template_record> templates;
    std::map<std::tuple<std::string, std::string, std::string>, dedup_rec> dedup;
    std::map<std::string, qr_record, std::less<>> qrs;
    std::vector<fault> faults;
    std::vector<call_record> calls;
    std::vector<sent_message> sent;

    std::string random_text(std::size_t n, std::string_view alphabet = token_alphabet) {
        std::string out;
        out.reserve(n);
        for (std::size_t i = 0; i < n; ++i) out += alphabet[rng() % alphabet.size()];
        return out;
    }

    std::string rid() {
        static constexpr std::string_view hex = "0123456789abcdef";
        return random_text(8, hex) + "-" + random_text(8, hex) + "-" + random_text(8, hex);
    }

    std::string error(int code, std::string_view msg = {}) {
        rapidjson::StringBuffer buf;
        json_writer w(buf);
        w.StartObject();
        key(w, "errcode");
        w.Int(code);
        key(w, "errmsg");
        std::string text = msg.empty() ? errmsg_for(code) : std::string(msg);
        if (code != 0) text += " rid: " + rid();
        string(w, text);
        w.EndObject();
        return buf.GetString();
    }

    api_response fail(int code) {
        api_response r;
        r.errcode = code;
        r.body = error(code);
        return r;
    }

    fan_rec* find_fan(std::string_view appid, std::string_view openid) {
        auto it = fans.find(fan_key(appid, openid));
        return it == fans.end() ? nullptr : &it->second;
    }

    bool slot_open(const window_slot& w, seconds len, sys_time now) const {
        return w.valid && now < w.opened + len;
    }

    window_state snapshot(const window_slot& w, window_kind k, sys_time now) const {
        window_state s;
        const seconds len = k == window_kind::message ? limits.message_window : limits.event_window;
        s.quota = k == window_kind::message ? limits.message_quota : limits.event_quota;
        s.open = slot_open(w, len, now);
        if (w.valid) {
            s.used = w.used;
            s.opened = w.opened;
            s.closes = w.opened + len;
        }
        return s;
    }

    void interact(fan_rec& f, window_kind k, sys_time now) {
        window_slot& w = k == window_kind::message ? f.message : f.event;
        w.valid = true;
        w.opened = now;
        w.used = 0;
        f.last_interaction = now;
    }

    fan_rec& ensure_fan(std::string_view appid, std::string_view openid, sys_time now) {
        auto [it, inserted] = fans.try_emplace(fan_key(appid, openid));
        if (inserted) {
            it->second.f.appid = std::string(appid);
            it->second.f.openid = std::string(openid);
            it->second.f.subscribe_time = unix_of(now);
        }
        return it->second;
    }

    std::string new_token(std::string_view appid, bool stable, sys_time now) {
        std::string t = random_text(136);
        token_rec rec;
        rec.appid = std::string(appid);
        rec.stable = stable;
        rec.expires = now + limits.token_lifetime;
        tokens.emplace(t, std::move(rec));
        return t;
    }

    // Validates ?access_token=; on success returns 0 and sets appid.
    int check_token(std::string_view query, sys_time now, std::string& appid) {
        const std::string t = query_param(query, "access_token");
        if (t.empty()) return 41001;
        if (t.size() < 32 || t.find_first_not_of(token_alphabet) != std::string::npos) return 40014;
        auto it = tokens.find(t);
        if (it == tokens.end()) return 40001;
        if (now >= it->second.expires) return 42001;
        if (it->second.invalidated ||
            (it->second.invalid_after && now >= *it->second.invalid_after)) {
            return 40001;
        }
        if (!accounts.count(it->second.appid)) return 40001;
        appid = it->second.appid;
        return 0;
    }

    std::optional<media_record> usable_media(std::string_view appid, std::string_view id,
                                             sys_time now) const {
        auto it = media.find(id);
        if (it == media.end() || it->second.appid != appid) return std::nullopt;
        if (unix_of(now) >= it->second.created_at + limits.media_lifetime.count()) {
            return std::nullopt;
        }
        return it->second;
    }
};

api_state::api_state(std::shared_ptr<fake_clock> clock, api_limits limits)
    : clock_(std::move(clock)), initial_limits_(limits), s_(std::make_unique<state>(limits)) {}

api_state::~api_state() = default;

std::string api_state::error_body(int code, std::string_view errmsg) {
    std::lock_guard lock(mutex_);
    return s_->error(code, errmsg);
}

std::string_view api_state::api_name(std::string_view path) noexcept {
    if (path == "/cgi-bin/token") return "token";
    if (path == "/cgi-bin/stable_token") return "stable_token";
    if (path == "/cgi-bin/message/custom/send") return "custom_send";
    if (path == "/cgi-bin/message/custom/typing") return "custom_typing";
    if (path == "/cgi-bin/media/upload") return "media_upload";
    if (path == "/cgi-bin/media/get") return "media_get";
    if (path == "/cgi-bin/message/template/send") return "template_send";
    if (path == "/cgi-bin/qrcode/create") return "qrcode_create";
    if (path == "/cgi-bin/user/info") return "user_info";
    if (path == "/cgi-bin/getcallbackip") return "getcallbackip";
    return {};
}

bool api_state::is_api_name(std::string_view name) noexcept {
    for (const char* n :
         {"token", "stable_token", "custom_send", "custom_typing", "media_upload", "media_get",
          "template_send", "qrcode_create", "user_info", "getcallbackip"}) {
        if (name == n) return true;
    }
    return false;
}

// ---- the API handlers --------------------------------------------------------------------------

namespace {

struct handler_ctx {
    api_state::state& s;
    const api_request& req;
    sys_time now;
};

api_response token_response(const std::string& token, sys_time expires, sys_time now) {
    rapidjson::StringBuffer buf;
    json_writer w(buf);
    w.StartObject();
    key(w, "access_token");
    string(w, token);
    key(w, "expires_in");
    w.Int64(std::chrono::duration_cast<seconds>(expires - now).count());
    w.EndObject();
    api_response r;
    r.body = buf.GetString();
    return r;
}

// Common credential checks of both token APIs; returns the account or sets `code`.
account_rec* check_credentials(api_state::state& s, const std::string& grant_type,
                               const std::string& appid, const std::string& secret,
                               int wrong_secret_code, int& code) {
    if (grant_type != "client_credential") {
        code = 40002;
        return nullptr;
    }
    if (appid.empty()) {
        code = 41002;
        return nullptr;
    }
    if (secret.empty()) {
        code = 41004;
        return nullptr;
    }
    auto it = s.accounts.find(appid);
    if (it == s.accounts.end()) {
        code = 40013;
        return nullptr;
    }
    if (it->second.a.secret != secret) {
        code = wrong_secret_code;
        return nullptr;
    }
    return &it->second;
}

api_response handle_token(handler_ctx c) {
    auto& s = c.s;
    if (c.req.method != "GET") return s.fail(43001);
    int code = 0;
    account_rec* acct = check_credentials(s, query_param(c.req.query, "grant_type"),
                                          query_param(c.req.query, "appid"),
                                          query_param(c.req.query, "secret"), 40001, code);
    if (!acct) return s.fail(code);
    const auto day = day_of(c.now);
    if (acct->token_day != day) {
        acct->token_day = day;
        acct->token_count = 0;
    }
    if (acct->token_count >= s.limits.token_daily) return s.fail(45009);
    ++acct->token_count;
    // Each call supersedes the previous token, which stays valid for the overlap (§5.1).
    if (auto old = s.tokens.find(acct->legacy_current); old != s.tokens.end()) {
        old->second.invalid_after = c.now + s.limits.legacy_overlap;
    }
    acct->legacy_current = s.new_token(acct->a.appid, false, c.now);
    auto r = token_response(acct->legacy_current, s.tokens[acct->legacy_current].expires, c.now);
    r.appid = acct->a.appid;
    return r;
}

api_response handle_stable_token(handler_ctx c) {
    auto& s = c.s;
    if (c.req.method != "POST") return s.fail(43002);
    rapidjson::Document d;
    d.Parse(c.req.body.data(), c.req.body.size());
    if (d.HasParseError() || !d.IsObject()) return s.fail(47001);
    bool force = false;
    if (auto it = d.FindMember("force_refresh"); it != d.MemberEnd()) {
        if (!it->value.IsBool()) return s.fail(47001);
        force = it->value.GetBool();
    }
    int code = 0;
    account_rec* acct =
        check_credentials(s, str(d, "grant_type"), str(d, "appid"), str(d, "secret"), 40125, code);
    if (!acct) return s.fail(code);
    const std::string appid = acct->a.appid;
    if (force) {
        const auto day = day_of(c.now);
        if (acct->force_day != day) {
            acct->force_day = day;
            acct->force_count = 0;
        }
        if (acct->force_count >= s.limits.force_refresh_daily) return s.fail(45009);
        if (acct->last_force && c.now - *acct->last_force < s.limits.force_refresh_min_interval) {
            return s.fail(45011);
        }
        ++acct->force_count;
        acct->last_force = c.now;
        for (auto& [t, rec] : s.tokens) {
            if (rec.appid == appid && rec.stable) rec.invalidated = true;
        }
        acct->stable_current = s.new_token(appid, true, c.now);
    } else {
        const seconds refresh_before =
            std::min(s.limits.stable_refresh_before, s.limits.token_lifetime / 2);
        auto it = s.tokens.find(acct->stable_current);
        const bool usable =
            it != s.tokens.end() && !it->second.invalidated && c.now < it->second.expires;
        // Renewed shortly before expiry; the old token stays valid until it expires (§5.1).
        if (!usable || it->second.expires - c.now <= refresh_before) {
            acct->stable_current = s.new_token(appid, true, c.now);
        }
    }
    auto r = token_response(acct->stable_current, s.tokens[acct->stable_current].expires, c.now);
    r.appid = appid;
    return r;
}

// Fan checks shared by the sending APIs: 40003 format, 43004 unknown or not following.
int check_recipient(api_state::state& s, const std::string& appid, const std::string& openid,
                    fan_rec*& out) {
    if (!valid_openid(openid, s.limits.strict_openid)) return 40003;
    out = s.find_fan(appid, openid);
    if (!out || !out->f.following) return 43004;
    return 0;
}

// Content checks of one customer-service message (§5.3); 0 if acceptable.
int check_custom_content(api_state::state& s, const std::string& appid, const rapidjson::Value& d,
                         const std::string& msgtype, sys_time now) {
    const rapidjson::Value* obj = object(d, msgtype.c_str());
    auto media_ok = [&](const std::string& id) {
        return !id.empty() && s.usable_media(appid, id, now).has_value();
    };
    if (msgtype == "text") {
        if (!obj) return 47001;
        const std::string content = str(*obj, "content");
        if (content.empty()) return 44004;
        if (content.size() > s.limits.text_max_bytes) return 45002;
        return 0;
    }
    if (msgtype == "image" || msgtype == "voice") {
        if (!obj) return 47001;
        return media_ok(str(*obj, "media_id")) ? 0 : 40007;
    }
    if (msgtype == "video") {
        if (!obj) return 47001;
        return media_ok(str(*obj, "media_id")) ? 0 : 40007;
    }
    if (msgtype == "music") {
        if (!obj) return 47001;
        return media_ok(str(*obj, "thumb_media_id")) ? 0 : 40007;
    }
    if (msgtype == "news") {
        if (!obj) return 47001;
        auto it = obj->FindMember("articles");
        if (it == obj->MemberEnd() || !it->value.IsArray()) return 47001;
        if (it->value.Size() == 0) return 44003;
        if (it->value.Size() > 1) return 45008;
        return 0;
    }
    if (msgtype == "mpnewsarticle") {
        if (!obj || str(*obj, "article_id").empty()) return 47001;
        return 0;
    }
    if (msgtype == "msgmenu") {
        if (!obj) return 47001;
        auto it = obj->FindMember("list");
        if (it == obj->MemberEnd() || !it->value.IsArray() || it->value.Size() == 0) {
            return 47001;
        }
        for (const auto& item : it->value.GetArray()) {
            if (str(item, "id").empty() || str(item, "content").empty()) return 47001;
        }
        return 0;
    }
    if (msgtype == "wxcard") {
        if (!obj || str(*obj, "card_id").empty()) return 47001;
        return 0;
    }
    if (msgtype == "miniprogrampage") {
        if (!obj || str(*obj, "appid").empty() || str(*obj, "pagepath").empty()) return 47001;
        return media_ok(str(*obj, "thumb_media_id")) ? 0 : 40007;
    }
    return 40008;  // includes mpnews, no longer supported (§5.3, §8.16)
}

api_response handle_custom_send(handler_ctx c, const std::string& appid) {
    auto& s = c.s;
    if (c.req.method != "POST") return s.fail(43002);
    rapidjson::Document d;
    d.Parse(c.req.body.data(), c.req.body.size());
    if (d.HasParseError() || !d.IsObject()) return s.fail(47001);
    const std::string openid = str(d, "touser");
    fan_rec* f = nullptr;
    if (int code = check_recipient(s, appid, openid, f)) return s.fail(code);
    const std::string msgtype = str(d, "msgtype");
    if (int code = check_custom_content(s, appid, d, msgtype, c.now)) return s.fail(code);
    // The window: the 1-minute event window first (it closes sooner), then the 48 h one.
    const bool event_open = s.slot_open(f->event, s.limits.event_window, c.now);
    const bool message_open = s.slot_open(f->message, s.limits.message_window, c.now);
    if (!event_open && !message_open) return s.fail(45015);
    window_slot* slot = nullptr;
    if (event_open && f->event.used < s.limits.event_quota) {
        slot = &f->event;
    } else if (message_open && f->message.used < s.limits.message_quota) {
        slot = &f->message;
    }
    if (!slot) return s.fail(45047);
    ++slot->used;
    f->typing_until = c.now;  // sending a message cancels "typing"
    sent_message m;
    m.seq = ++s.seq;
    m.at = unix_of(c.now);
    m.appid = appid;
    m.openid = openid;
    m.api = "custom_send";
    m.msgtype = msgtype;
    m.body = c.req.body;
    if (const auto* cs = object(d, "customservice")) m.kf_account = str(*cs, "kf_account");
    s.sent.push_back(std::move(m));
    api_response r;
    r.body = ok_body();
    return r;
}

api_response handle_typing(handler_ctx c, const std::string& appid) {
    auto& s = c.s;
    if (c.req.method != "POST") return s.fail(43002);
    rapidjson::Document d;
    d.Parse(c.req.body.data(), c.req.body.size());
    if (d.HasParseError() || !d.IsObject()) return s.fail(47001);
    const std::string command = str(d, "command");
    if (command != "Typing" && command != "CancelTyping") return s.fail(47001);
    fan_rec* f = nullptr;
    if (int code = check_recipient(s, appid, str(d, "touser"), f)) return s.fail(code);
    if (!f->last_interaction || c.now - *f->last_interaction >= s.limits.typing_window) {
        return s.fail(45015);
    }
    f->typing_until = command == "Typing" ? c.now + s.limits.typing_duration : c.now;
    api_response r;
    r.body = ok_body();
    return r;
}

api_response handle_media_upload(handler_ctx c, const std::string& appid) {
    auto& s = c.s;
    if (c.req.method != "POST") return s.fail(43002);
    const std::string type = query_param(c.req.query, "type");
    if (type != "image" && type != "voice" && type != "video" && type != "thumb") {
        return s.fail(40004);
    }
    const auto parts = parse_multipart(c.req.content_type, c.req.body);
    const form_part* media = nullptr;
    for (const auto& p : parts) {
        if (p.name == "media") media = &p;
    }
    if (!media || media->data.empty()) return s.fail(41005);
    const std::string& data = media->data;
    std::string content_type;
    if (type == "image") {
        if (data.size() > s.limits.image_max_bytes) return s.fail(40009);
        if (is_jpeg(data)) {
            content_type = "image/jpeg";
        } else if (is_png(data)) {
            content_type = "image/png";
        } else {
            return s.fail(40005);
        }
    } else if (type == "voice") {
        if (data.size() > s.limits.voice_max_bytes) return s.fail(40010);
        if (is_amr(data)) {
            content_type = "audio/amr";
        } else if (is_mp3(data)) {
            content_type = "audio/mpeg";
        } else {
            return s.fail(40005);
        }
    } else if (type == "video") {
        if (data.size() > s.limits.video_max_bytes) return s.fail(40011);
        if (!is_mp4(data)) return s.fail(40005);
        content_type = "video/mp4";
    } else {
        if (data.size() > s.limits.thumb_max_bytes) return s.fail(40012);
        if (!is_jpeg(data)) return s.fail(40005);
        content_type = "image/jpeg";
    }
    media_record m;
    m.appid = appid;
    m.media_id = s.random_text(64);
    m.type = type;
    m.content_type = content_type;
    m.bytes = data;
    m.created_at = unix_of(c.now);
    rapidjson::StringBuffer buf;
    json_writer w(buf);
    w.StartObject();
    key(w, "type");
    string(w, type);
    key(w, type == "thumb" ? "thumb_media_id" : "media_id");
    string(w, m.media_id);
    key(w, "created_at");
    w.Int64(m.created_at);
    w.EndObject();
    s.media.emplace(m.media_id, std::move(m));
    api_response r;
    r.body = buf.GetString();
    return r;
}

api_response handle_media_get(handler_ctx c, const std::string& appid) {
    auto& s = c.s;
    if (c.req.method != "GET") return s.fail(43001);
    const std::string id = query_param(c.req.query, "media_id");
    auto m = s.usable_media(appid, id, c.now);
    if (!m) return s.fail(40007);
    api_response r;
    r.content_type = m->content_type;
    std::string ext = ".bin";
    if (m->content_type == "image/jpeg") ext = ".jpg";
    if (m->content_type == "image/png") ext = ".png";
    if (m->content_type == "audio/amr") ext = ".amr";
    if (m->content_type == "audio/mpeg") ext = ".mp3";
    if (m->content_type == "video/mp4") ext = ".mp4";
    r.headers.emplace_back("Content-disposition", "attachment; filename=\"" + id + ext + "\"");
    r.body = m->bytes;
    return r;
}

api_response handle_template_send(handler_ctx c, const std::string& appid) {
    auto& s = c.s;
    if (c.req.method != "POST") return s.fail(43002);
    rapidjson::Document d;
    d.Parse(c.req.body.data(), c.req.body.size());
    if (d.HasParseError() || !d.IsObject()) return s.fail(47001);
    const std::string openid = str(d, "touser");
    fan_rec* f = nullptr;
    if (int code = check_recipient(s, appid, openid, f)) return s.fail(code);
    const std::string template_id = str(d, "template_id");
    const auto& allowed = s.accounts.at(appid).a.template_ids;
    if (template_id.empty() || (!allowed.empty() && std::find(allowed.begin(), allowed.end(),
                                                              template_id) == allowed.end())) {
        return s.fail(40037);
    }
    if (has(d, "data") && !d["data"].IsObject()) return s.fail(47001);
    const std::string client_msg_id = str(d, "client_msg_id");
    auto answer = [](std::uint64_t msgid) {
        api_response r;
        r.body = R"({"errcode":0,"errmsg":"ok","msgid":)" + std::to_string(msgid) + "}";
        return r;
    };
    // The same openid + client_msg_id sends one message within 10 minutes (§5.4); a repeat is
    // answered with the first send's msgid and sends nothing.
    const auto dkey = std::make_tuple(appid, openid, client_msg_id);
    if (!client_msg_id.empty()) {
        auto it = s.dedup.find(dkey);
        if (it != s.dedup.end() && c.now - it->second.at < s.limits.template_dedup) {
            return answer(it->second.msgid);
        }
    }
    const std::uint64_t msgid = s.template_id += 1 + s.rng() % 1000;
    if (!client_msg_id.empty()) s.dedup[dkey] = dedup_rec{msgid, c.now};
    template_record t;
    t.msgid = msgid;
    t.appid = appid;
    t.openid = openid;
    t.template_id = template_id;
    t.client_msg_id = client_msg_id;
    t.at = unix_of(c.now);
    t.status = f->f.blocks_templates ? "failed:user block" : "success";
    s.templates.emplace(msgid, std::move(t));
    sent_message m;
    m.seq = ++s.seq;
    m.at = unix_of(c.now);
    m.appid = appid;
    m.openid = openid;
    m.api = "template_send";
    m.msgtype = "template";
    m.body = c.req.body;
    m.msgid = msgid;
    m.client_msg_id = client_msg_id;
    s.sent.push_back(std::move(m));
    return answer(msgid);
}

api_response handle_qrcode_create(handler_ctx c, const std::string& appid) {
    auto& s = c.s;
    if (c.req.method != "POST") return s.fail(43002);
    rapidjson::Document d;
    d.Parse(c.req.body.data(), c.req.body.size());
    if (d.HasParseError() || !d.IsObject()) return s.fail(47001);
    const std::string action = str(d, "action_name");
    const bool permanent = action == "QR_LIMIT_SCENE" || action == "QR_LIMIT_STR_SCENE";
    const bool by_string = action == "QR_STR_SCENE" || action == "QR_LIMIT_STR_SCENE";
    if (!permanent && action != "QR_SCENE" && action != "QR_STR_SCENE") return s.fail(40052);
    const rapidjson::Value* info = object(d, "action_info");
    const rapidjson::Value* scene = info ? object(*info, "scene") : nullptr;
    if (!scene) return s.fail(40053);
    qr_record q;
    q.appid = appid;
    q.permanent = permanent;
    if (by_string) {
        q.scene = str(*scene, "scene_str");
        if (q.scene.empty() || q.scene.size() > 64) return s.fail(40053);
    } else {
        auto it = scene->FindMember("scene_id");
        if (it == scene->MemberEnd() || !it->value.IsInt64()) return s.fail(40053);
        const std::int64_t id = it->value.GetInt64();
        if (permanent ? (id < 1 || id > 100000) : (id < 1 || id > 4294967295LL)) {
            return s.fail(40053);
        }
        q.scene = std::to_string(id);
        q.numeric = true;
    }
    std::int64_t expire_seconds = 30;  // the default when omitted (§6)
    if (auto it = d.FindMember("expire_seconds"); it != d.MemberEnd() && it->value.IsInt64()) {
        expire_seconds = std::clamp<std::int64_t>(it->value.GetInt64(), 1, 2592000);
    }
    if (!permanent) q.expires_at = unix_of(c.now) + expire_seconds;
    const std::string code = s.random_text(22, token_alphabet.substr(0, 62));
    const std::string url = "http://weixin.qq.com/q/" + code;
    // Real tickets are base64 around the short URL, so they contain '+', '/' and '='.
    q.ticket = wechat::base64_encode(s.random_text(8) + url + s.random_text(11));
    rapidjson::StringBuffer buf;
    json_writer w(buf);
    w.StartObject();
    key(w, "ticket");
    string(w, q.ticket);
    if (!permanent) {
        key(w, "expire_seconds");
        w.Int64(expire_seconds);
    }
    key(w, "url");
    string(w, url);
    w.EndObject();
    s.qrs.emplace(q.ticket, std::move(q));
    api_response r;
    r.body = buf.GetString();
    return r;
}

api_response handle_user_info(handler_ctx c, const std::string& appid) {
    auto& s = c.s;
    if (c.req.method != "GET") return s.fail(43001);
    const std::string openid = query_param(c.req.query, "openid");
    if (!valid_openid(openid, s.limits.strict_openid)) return s.fail(40003);
    fan_rec* f = s.find_fan(appid, openid);
    if (!f) return s.fail(40003);
    rapidjson::StringBuffer buf;
    json_writer w(buf);
    w.StartObject();
    key(w, "subscribe");
    w.Int(f->f.following ? 1 : 0);
    key(w, "openid");
    string(w, openid);
    if (f->f.following) {
        key(w, "language");
        string(w, f->f.language);
        key(w, "subscribe_time");
        w.Int64(f->f.subscribe_time);
    }
    if (!f->f.unionid.empty()) {
        key(w, "unionid");
        string(w, f->f.unionid);
    }
    if (f->f.following) {
        key(w, "remark");
        string(w, f->f.remark);
        key(w, "groupid");
        w.Int(0);
    }
    key(w, "tagid_list");
    w.StartArray();
    if (f->f.following) {
        for (const auto tag : f->f.tagid_list) w.Uint(tag);
    }
    w.EndArray();
    if (f->f.following) {
        key(w, "subscribe_scene");
        string(w, f->f.subscribe_scene);
        key(w, "qr_scene");
        w.Uint(f->f.qr_scene);
        key(w, "qr_scene_str");
        string(w, f->f.qr_scene_str);
    }
    w.EndObject();
    api_response r;
    r.body = buf.GetString();
    return r;
}

}  // namespace

api_response api_state::handle(const api_request& req) {
    const sys_time now = clock_->now();
    std::lock_guard lock(mutex_);
    auto& s = *s_;
    const std::string_view api = api_name(req.path);
    if (api.empty()) {
        api_response r;
        r.status = 404;
        r.content_type = "text/html";
        r.body = "<html><body>404 Not Found</body></html>";
        return r;
    }
    handler_ctx c{s, req, now};
    if (api == "token") return handle_token(c);
    if (api == "stable_token") return handle_stable_token(c);
    std::string appid;
    if (int code = s.check_token(req.query, now, appid)) return s.fail(code);
    api_response r;
    if (api == "custom_send") {
        r = handle_custom_send(c, appid);
    } else if (api == "custom_typing") {
        r = handle_typing(c, appid);
    } else if (api == "media_upload") {
        r = handle_media_upload(c, appid);
    } else if (api == "media_get") {
        r = handle_media_get(c, appid);
    } else if (api == "template_send") {
        r = handle_template_send(c, appid);
    } else if (api == "qrcode_create") {
        r = handle_qrcode_create(c, appid);
    } else if (api == "user_info") {
        r = handle_user_info(c, appid);
    } else {
        r.body = R"({"ip_list":["127.0.0.1"]})";
    }
    r.appid = appid;
    return r;
}

// ---- control ---------------------------------------------------------------------------------

scrm::result<void> api_state::add_account(account a) {
    if (a.appid.empty() || a.secret.empty()) return make_error_code(errc::bad_input);
    if (a.mode != encryption_mode::plain &&
        !wechat::aes_key::from_encoding_aes_key(a.encoding_aes_key)) {
        return make_error_code(errc::bad_input);
    }
    std::lock_guard lock(mutex_);
    auto& rec = s_->accounts[a.appid];
    rec.a = std::move(a);
    return {};
}

std::optional<account> api_state::find_account(std::string_view appid) const {
    std::lock_guard lock(mutex_);
    auto it = s_->accounts.find(appid);
    if (it == s_->accounts.end()) return std::nullopt;
    return it->second.a;
}

std::vector<account> api_state::accounts() const {
    std::lock_guard lock(mutex_);
    std::vector<account> out;
    for (const auto& [id, rec] : s_->accounts) out.push_back(rec.a);
    return out;
}

void api_state::set_fan(fan f) {
    const sys_time now = clock_->now();
    std::lock_guard lock(mutex_);
    if (f.subscribe_time == 0) f.subscribe_time = unix_of(now);
    auto& rec = s_->fans[fan_key(f.appid, f.openid)];
    rec.f = std::move(f);
    if (!rec.f.following) {
        rec.message = {};
        rec.event = {};
    }
}

std::optional<fan> api_state::find_fan(std::string_view appid, std::string_view openid) const {
    std::lock_guard lock(mutex_);
    auto* f = s_->find_fan(appid, openid);
    if (!f) return std::nullopt;
    return f->f;
}

void api_state::record_interaction(std::string_view appid, std::string_view openid,
                                   window_kind kind) {
    const sys_time now = clock_->now();
    std::lock_guard lock(mutex_);
    s_->interact(s_->ensure_fan(appid, openid, now), kind, now);
}

window_state api_state::window(std::string_view appid, std::string_view openid,
                               window_kind kind) const {
    const sys_time now = clock_->now();
    std::lock_guard lock(mutex_);
    auto* f = s_->find_fan(appid, openid);
    if (!f) return s_->snapshot(window_slot{}, kind, now);
    return s_->snapshot(kind == window_kind::message ? f->message : f->event, kind, now);
}

bool api_state::typing(std::string_view appid, std::string_view openid) const {
    const sys_time now = clock_->now();
    std::lock_guard lock(mutex_);
    auto* f = s_->find_fan(appid, openid);
    return f && now < f->typing_until;
}

scrm::result<inbound_spec> api_state::resolve(std::string_view appid, inbound_spec spec) const {
    if (spec.type != "qr") return spec;
    std::lock_guard lock(mutex_);
    auto it = s_->qrs.find(spec.ticket);
    if (it == s_->qrs.end() || it->second.appid != appid) return make_error_code(errc::not_found);
    auto* f = s_->find_fan(appid, spec.from);
    if (f && f->f.following) {
        spec.type = "SCAN";
        spec.event_key = it->second.scene;
    } else {
        spec.type = "subscribe";
        spec.event_key = "qrscene_" + it->second.scene;
    }
    return spec;
}

void api_state::on_delivered(std::string_view appid, const inbound_spec& spec) {
    const sys_time now = clock_->now();
    std::lock_guard lock(mutex_);
    auto& s = *s_;
    if (spec.type == "unsubscribe") {
        if (auto* f = s.find_fan(appid, spec.from)) {
            f->f.following = false;
            f->message = {};
            f->event = {};
            f->last_interaction.reset();
        }
        return;
    }
    const interaction kind = interaction_of(spec);
    if (kind == interaction::none) return;
    fan_rec& f = s.ensure_fan(appid, spec.from, now);
    if (spec.type == "subscribe") {
        f.f.following = true;
        f.f.subscribe_time = unix_of(now);
        constexpr std::string_view prefix = "qrscene_";
        if (spec.event_key.rfind(prefix, 0) == 0) {
            const std::string scene = spec.event_key.substr(prefix.size());
            f.f.subscribe_scene = "ADD_SCENE_QR_CODE";
            f.f.qr_scene_str.clear();
            f.f.qr_scene = 0;
            auto q = s.qrs.find(spec.ticket);
            if (q != s.qrs.end() && q->second.numeric) {
                f.f.qr_scene = static_cast<std::uint32_t>(std::stoul(scene));
            } else {
                f.f.qr_scene_str = scene;
            }
        } else {
            f.f.subscribe_scene = "ADD_SCENE_SEARCH";
        }
    } else {
        f.f.following = true;  // only followers can message or click
    }
    s.interact(f, kind == interaction::message ? window_kind::message : window_kind::event, now);
}

std::uint64_t api_state::next_msg_id() {
    std::lock_guard lock(mutex_);
    return s_->msg_id += 1 + s_->rng() % 97;
}

void api_state::expire_tokens(std::string_view appid) {
    const sys_time now = clock_->now();
    std::lock_guard lock(mutex_);
    for (auto& [t, rec] : s_->tokens) {
        if (appid.empty() || rec.appid == appid) rec.expires = std::min(rec.expires, now);
    }
}

void api_state::invalidate_tokens(std::string_view appid) {
    std::lock_guard lock(mutex_);
    for (auto& [t, rec] : s_->tokens) {
        if (appid.empty() || rec.appid == appid) rec.invalidated = true;
    }
}

std::string api_state::add_media(std::string_view appid, std::string type, std::string content_type,
                                 std::string bytes, std::string media_id) {
    const sys_time now = clock_->now();
    std::lock_guard lock(mutex_);
    media_record m;
    m.appid = std::string(appid);
    m.media_id = media_id.empty() ? s_->random_text(64) : std::move(media_id);
    m.type = std::move(type);
    m.content_type = std::move(content_type);
    m.bytes = std::move(bytes);
    m.created_at = unix_of(now);
    std::string id = m.media_id;
    s_->media[id] = std::move(m);
    return id;
}

std::optional<media_record> api_state::find_media(std::string_view media_id) const {
    std::lock_guard lock(mutex_);
    auto it = s_->media.find(media_id);
    if (it == s_->media.end()) return std::nullopt;
    return it->second;
}

std::optional<template_record> api_state::find_template(std::uint64_t msgid) const {
    std::lock_guard lock(mutex_);
    auto it = s_->templates.find(msgid);
    if (it == s_->templates.end()) return std::nullopt;
    return it->second;
}

scrm::result<void> api_state::set_template_status(std::uint64_t msgid, std::string status) {
    std::lock_guard lock(mutex_);
    auto it = s_->templates.find(msgid);
    if (it == s_->templates.end()) return make_error_code(errc::not_found);
    it->second.status = std::move(status);
    return {};
}

std::optional<qr_record> api_state::find_qr(std::string_view ticket) const {
    std::lock_guard lock(mutex_);
    auto it = s_->qrs.find(ticket);
    if (it == s_->qrs.end()) return std::nullopt;
    return it->second;
}

void api_state::inject(fault f) {
    std::lock_guard lock(mutex_);
    if (f.times != 0) s_->faults.push_back(std::move(f));
}

void api_state::clear_faults() {
    std::lock_guard lock(mutex_);
    s_->faults.clear();
}

std::optional<fault> api_state::take_fault(std::string_view api) {
    std::lock_guard lock(mutex_);
    auto& faults = s_->faults;
    for (auto it = faults.begin(); it != faults.end(); ++it) {
        if (it->api != api && it->api != "*") continue;
        fault f = *it;
        if (it->times > 0 && --it->times == 0) faults.erase(it);
        return f;
    }
    return std::nullopt;
}

void api_state::record(call_record r) {
    const sys_time now = clock_->now();
    std::lock_guard lock(mutex_);
    r.seq = ++s_->seq;
    r.at = unix_of(now);
    s_->calls.push_back(std::move(r));
}

std::vector<call_record> api_state::calls(std::string_view api) const {
    std::lock_guard lock(mutex_);
    std::vector<call_record> out;
    for (const auto& c : s_->calls) {
        if (api.empty() || c.api == api) out.push_back(c);
    }
    return out;
}

std::vector<sent_message> api_state::sent(std::string_view appid, std::string_view openid) const {
    std::lock_guard lock(mutex_);
    std::vector<sent_message> out;
    for (const auto& m : s_->sent) {
        if ((appid.empty() || m.appid == appid) && (openid.empty() || m.openid == openid)) {
            out.push_back(m);
        }
    }
    return out;
}

api_limits api_state::limits() const {
    std::lock_guard lock(mutex_);
    return s_->limits;
}

void api_state::set_limits(api_limits l) {
    std::lock_guard lock(mutex_);
    s_->limits = l;
}

void api_state::reset() {
    std::lock_guard lock(mutex_);
    s_ = std::make_unique<state>(initial_limits_);
}

}  // namespace scrm::fakes

// The fake WeChat's control endpoints (listed in fake_wechat.hpp): parse the JSON, apply it to
// api_state, render the answer. Malformed input gets 400 {"error": "…"} naming the field.
#include "control.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "scrm/wechat/crypto.hpp"
#include "util.hpp"

namespace scrm::fakes::detail {

namespace {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;
using rapidjson::Value;

void key(json_writer& w, std::string_view k) {
    w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
}

void string(json_writer& w, std::string_view v) {
    w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}

void field(json_writer& w, std::string_view k, std::string_view v) {
    key(w, k);
    string(w, v);
}

void field(json_writer& w, std::string_view k, std::int64_t v) {
    key(w, k);
    w.Int64(v);
}

void field_u(json_writer& w, std::string_view k, std::uint64_t v) {
    key(w, k);
    w.Uint64(v);
}

void field(json_writer& w, std::string_view k, bool v) {
    key(w, k);
    w.Bool(v);
}

control_reply error(unsigned status, const std::string& message) {
    rapidjson::StringBuffer buf;
    json_writer w(buf);
    w.StartObject();
    field(w, "error", message);
    w.EndObject();
    return {status, buf.GetString()};
}

control_reply ok() {
    return {200, R"({"ok":true})"};
}

// Reads optional members of one JSON object, remembering the first type error.
class reader {
public:
    explicit reader(const Value& obj) : obj_(obj) {}

    const std::string& problem() const { return problem_; }

    void get(const char* name, std::string& out) {
        if (auto* v = find(name)) {
            if (v->IsString()) {
                out.assign(v->GetString(), v->GetStringLength());
            } else {
                fail(name, "a string");
            }
        }
    }
    void get(const char* name, bool& out) {
        if (auto* v = find(name)) {
            if (v->IsBool()) {
                out = v->GetBool();
            } else {
                fail(name, "true or false");
            }
        }
    }
    void get(const char* name, std::int64_t& out) {
        if (auto* v = find(name)) {
            if (v->IsInt64()) {
                out = v->GetInt64();
            } else {
                fail(name, "an integer");
            }
        }
    }
    void get(const char* name, std::uint64_t& out) {
        if (auto* v = find(name)) {
            if (v->IsUint64()) {
                out = v->GetUint64();
            } else {
                fail(name, "a non-negative integer");
            }
        }
    }
    void get(const char* name, double& out) {
        if (auto* v = find(name)) {
            if (v->IsNumber()) {
                out = v->GetDouble();
            } else {
                fail(name, "a number");
            }
        }
    }
    template <class Int>
    void get_int(const char* name, Int& out) {
        auto v = static_cast<std::int64_t>(out);
        get(name, v);
        if (v < 0) {
            fail(name, "not negative");
            return;
        }
        out = static_cast<Int>(v);
    }
    void get_seconds(const char* name, std::chrono::seconds& out) {
        std::int64_t v = out.count();
        get(name, v);
        out = std::chrono::seconds(v);
    }
    void get_ms(const char* name, std::chrono::milliseconds& out) {
        std::int64_t v = out.count();
        get(name, v);
        out = std::chrono::milliseconds(v);
    }
    void get(const char* name, std::vector<std::string>& out) {
        if (auto* v = find(name)) {
            if (!v->IsArray()) {
                fail(name, "an array of strings");
                return;
            }
            out.clear();
            for (const auto& item : v->GetArray()) {
                if (!item.IsString()) {
                    fail(name, "an array of strings");
                    return;
                }
                out.emplace_back(item.GetString(), item.GetStringLength());
            }
        }
    }

private:
    const Value* find(const char* name) const {
        if (!obj_.IsObject()) return nullptr;
        auto it = obj_.FindMember(name);
        if (it == obj_.MemberEnd() || it->value.IsNull()) return nullptr;
        return &it->value;
    }
    void fail(const char* name, const char* expected) {
        if (problem_.empty()) problem_ = std::string(name) + ": must be " + expected;
    }

    const Value& obj_;
    std::string problem_;
};

bool parse_body(const std::string& body, rapidjson::Document& d) {
    if (body.empty()) {
        d.SetObject();
        return true;
    }
    d.Parse(body.data(), body.size());
    return !d.HasParseError() && d.IsObject();
}

void write_window(json_writer& w, const window_state& s) {
    w.StartObject();
    field(w, "open", s.open);
    key(w, "used");
    w.Uint(s.used);
    key(w, "quota");
    w.Uint(s.quota);
    key(w, "remaining");
    w.Uint(s.remaining());
    field(
        w, "opened",
        static_cast<std::int64_t>(
            std::chrono::duration_cast<std::chrono::seconds>(s.opened.time_since_epoch()).count()));
    field(
        w, "closes",
        static_cast<std::int64_t>(
            std::chrono::duration_cast<std::chrono::seconds>(s.closes.time_since_epoch()).count()));
    w.EndObject();
}

void write_limits(json_writer& w, const api_limits& l) {
    w.StartObject();
    field(w, "token_lifetime_s", static_cast<std::int64_t>(l.token_lifetime.count()));
    field(w, "legacy_overlap_s", static_cast<std::int64_t>(l.legacy_overlap.count()));
    field(w, "stable_refresh_before_s", static_cast<std::int64_t>(l.stable_refresh_before.count()));
    field(w, "force_refresh_min_interval_s",
          static_cast<std::int64_t>(l.force_refresh_min_interval.count()));
    field(w, "force_refresh_daily", static_cast<std::int64_t>(l.force_refresh_daily));
    field(w, "token_daily", static_cast<std::int64_t>(l.token_daily));
    field(w, "message_quota", static_cast<std::int64_t>(l.message_quota));
    field(w, "message_window_s", static_cast<std::int64_t>(l.message_window.count()));
    field(w, "event_quota", static_cast<std::int64_t>(l.event_quota));
    field(w, "event_window_s", static_cast<std::int64_t>(l.event_window.count()));
    field(w, "typing_window_s", static_cast<std::int64_t>(l.typing_window.count()));
    field(w, "typing_duration_s", static_cast<std::int64_t>(l.typing_duration.count()));
    field(w, "template_dedup_s", static_cast<std::int64_t>(l.template_dedup.count()));
    field(w, "media_lifetime_s", static_cast<std::int64_t>(l.media_lifetime.count()));
    field(w, "image_max_bytes", static_cast<std::int64_t>(l.image_max_bytes));
    field(w, "voice_max_bytes", static_cast<std::int64_t>(l.voice_max_bytes));
    field(w, "video_max_bytes", static_cast<std::int64_t>(l.video_max_bytes));
    field(w, "thumb_max_bytes", static_cast<std::int64_t>(l.thumb_max_bytes));
    field(w, "text_max_bytes", static_cast<std::int64_t>(l.text_max_bytes));
    field(w, "strict_openid", l.strict_openid);
    w.EndObject();
}

void read_limits(reader& r, api_limits& l) {
    r.get_seconds("token_lifetime_s", l.token_lifetime);
    r.get_seconds("legacy_overlap_s", l.legacy_overlap);
    r.get_seconds("stable_refresh_before_s", l.stable_refresh_before);
    r.get_seconds("force_refresh_min_interval_s", l.force_refresh_min_interval);
    r.get_int("force_refresh_daily", l.force_refresh_daily);
    r.get_int("token_daily", l.token_daily);
    r.get_int("message_quota", l.message_quota);
    r.get_seconds("message_window_s", l.message_window);
    r.get_int("event_quota", l.event_quota);
    r.get_seconds("event_window_s", l.event_window);
    r.get_seconds("typing_window_s", l.typing_window);
    r.get_seconds("typing_duration_s", l.typing_duration);
    r.get_seconds("template_dedup_s", l.template_dedup);
    r.get_seconds("media_lifetime_s", l.media_lifetime);
    r.get_int("image_max_bytes", l.image_max_bytes);
    r.get_int("voice_max_bytes", l.voice_max_bytes);
    r.get_int("video_max_bytes", l.video_max_bytes);
    r.get_int("thumb_max_bytes", l.thumb_max_bytes);
    r.get_int("text_max_bytes", l.text_max_bytes);
    r.get("strict_openid", l.strict_openid);
}

void read_delivery_options(reader& r, delivery_options& o) {
    r.get("url", o.url);
    r.get_ms("timeout_ms", o.timeout);
    r.get_int("attempts", o.attempts);
    r.get("ca_file", o.ca_file);
    r.get("nonce", o.nonce);
    r.get("timestamp", o.timestamp);
}

// An inbound_spec from {"type","from",…}; "scene" is a shorthand for subscribe/SCAN EventKeys.
void read_spec(const Value& v, inbound_spec& s, std::string& problem) {
    reader r(v);
    r.get("type", s.type);
    r.get("from", s.from);
    r.get("create_time", s.create_time);
    std::uint64_t msg_id = 0;
    r.get("msg_id", msg_id);
    if (msg_id != 0) s.msg_id = msg_id;
    r.get("content", s.content);
    r.get("biz_msg_menu_id", s.biz_msg_menu_id);
    r.get("media_id", s.media_id);
    r.get("pic_url", s.pic_url);
    r.get("format", s.format);
    r.get("recognition", s.recognition);
    r.get("thumb_media_id", s.thumb_media_id);
    r.get("latitude", s.latitude);
    r.get("longitude", s.longitude);
    r.get("precision", s.precision);
    r.get("scale", s.scale);
    r.get("label", s.label);
    r.get("title", s.title);
    r.get("description", s.description);
    r.get("url", s.url);
    r.get("event_key", s.event_key);
    r.get("ticket", s.ticket);
    r.get("job_msg_id", s.job_msg_id);
    r.get("status", s.status);
    std::string scene;
    r.get("scene", scene);
    if (!scene.empty()) s.event_key = s.type == "subscribe" ? "qrscene_" + scene : scene;
    problem = r.problem();
    if (problem.empty() && s.from.empty()) problem = "from: required";
}

std::string calls_json(const std::vector<call_record>& calls) {
    rapidjson::StringBuffer buf;
    json_writer w(buf);
    w.StartObject();
    key(w, "calls");
    w.StartArray();
    for (const auto& c : calls) {
        w.StartObject();
        field_u(w, "seq", c.seq);
        field(w, "at", c.at);
        field(w, "api", c.api);
        field(w, "method", c.method);
        field(w, "target", c.target);
        field(w, "content_type", c.content_type);
        field(w, "body", c.body);
        field(w, "status", static_cast<std::int64_t>(c.status));
        field(w, "response_body", c.response_body);
        field(w, "errcode", static_cast<std::int64_t>(c.errcode));
        field(w, "fault", c.fault);
        field(w, "appid", c.appid);
        w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return buf.GetString();
}

std::string sent_json(const std::vector<sent_message>& sent) {
    rapidjson::StringBuffer buf;
    json_writer w(buf);
    w.StartObject();
    key(w, "sent");
    w.StartArray();
    for (const auto& m : sent) {
        w.StartObject();
        field_u(w, "seq", m.seq);
        field(w, "at", m.at);
        field(w, "appid", m.appid);
        field(w, "openid", m.openid);
        field(w, "api", m.api);
        field(w, "msgtype", m.msgtype);
        field(w, "body", m.body);
        field_u(w, "msgid", m.msgid);
        field(w, "client_msg_id", m.client_msg_id);
        field(w, "kf_account", m.kf_account);
        w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return buf.GetString();
}

control_reply fan_json(api_state& state, const std::string& appid, const std::string& openid) {
    auto f = state.find_fan(appid, openid);
    rapidjson::StringBuffer buf;
    json_writer w(buf);
    w.StartObject();
    key(w, "fan");
    if (!f) {
        w.Null();
    } else {
        w.StartObject();
        field(w, "appid", f->appid);
        field(w, "openid", f->openid);
        field(w, "following", f->following);
        field(w, "subscribe_time", f->subscribe_time);
        field(w, "subscribe_scene", f->subscribe_scene);
        field(w, "qr_scene", static_cast<std::int64_t>(f->qr_scene));
        field(w, "qr_scene_str", f->qr_scene_str);
        field(w, "unionid", f->unionid);
        field(w, "blocks_templates", f->blocks_templates);
        w.EndObject();
    }
    key(w, "windows");
    w.StartObject();
    key(w, "message");
    write_window(w, state.window(appid, openid, window_kind::message));
    key(w, "event");
    write_window(w, state.window(appid, openid, window_kind::event));
    w.EndObject();
    field(w, "typing", state.typing(appid, openid));
    w.EndObject();
    return {200, buf.GetString()};
}

}  // namespace

control_outcome handle_control(api_state& state, const listener_request& req) {
    const std::string& path = req.path;
    const bool get = req.method == "GET";
    const bool post = req.method == "POST";
    rapidjson::Document d;
    if ((post || req.method == "DELETE") && !parse_body(req.body, d)) {
        return error(400, "the body must be a JSON object");
    }
    if (!post && req.method != "DELETE") d.SetObject();  // GET handlers read the query
    reader r(d);

    if (path == "/control/health" && get) return ok();
    if (path == "/control/reset" && post) {
        state.reset();
        return ok();
    }
    if (path == "/control/limits") {
        if (post) {
            api_limits l = state.limits();
            read_limits(r, l);
            if (!r.problem().empty()) return error(400, r.problem());
            state.set_limits(l);
        } else if (!get) {
            return error(405, "GET or POST");
        }
        rapidjson::StringBuffer buf;
        json_writer w(buf);
        write_limits(w, state.limits());
        return control_reply{200, buf.GetString()};
    }
    if (path == "/control/clock") {
        if (post) {
            std::int64_t advance = 0;
            r.get("advance_s", advance);
            if (!r.problem().empty()) return error(400, r.problem());
            state.clock().advance(std::chrono::seconds(advance));
        } else if (!get) {
            return error(405, "GET or POST");
        }
        rapidjson::StringBuffer buf;
        json_writer w(buf);
        w.StartObject();
        field(w, "now", state.clock().unix_now());
        field(w, "manual", state.clock().is_manual());
        w.EndObject();
        return control_reply{200, buf.GetString()};
    }
    if (path == "/control/accounts" && post) {
        account a;
        std::string mode = "plain";
        r.get("appid", a.appid);
        r.get("secret", a.secret);
        r.get("token", a.token);
        r.get("encoding_aes_key", a.encoding_aes_key);
        r.get("original_id", a.original_id);
        r.get("mode", mode);
        r.get("callback_url", a.callback_url);
        r.get("template_ids", a.template_ids);
        if (!r.problem().empty()) return error(400, r.problem());
        auto m = parse_encryption_mode(mode);
        if (!m) return error(400, "mode: must be plain, compatible or safe");
        a.mode = *m;
        if (!state.add_account(std::move(a))) {
            return error(400,
                         "appid and secret are required, and a valid 43-character "
                         "encoding_aes_key outside plain mode");
        }
        return ok();
    }
    if (path == "/control/fans") {
        if (get) {
            return fan_json(state, query_param(req.query, "appid"),
                            query_param(req.query, "openid"));
        }
        if (!post) return error(405, "GET or POST");
        fan f;
        r.get("appid", f.appid);
        r.get("openid", f.openid);
        r.get("following", f.following);
        r.get("subscribe_time", f.subscribe_time);
        r.get("subscribe_scene", f.subscribe_scene);
        r.get_int("qr_scene", f.qr_scene);
        r.get("qr_scene_str", f.qr_scene_str);
        r.get("unionid", f.unionid);
        r.get("remark", f.remark);
        r.get("language", f.language);
        r.get("blocks_templates", f.blocks_templates);
        if (!r.problem().empty()) return error(400, r.problem());
        if (f.appid.empty() || f.openid.empty()) return error(400, "appid and openid are required");
        const std::string appid = f.appid, openid = f.openid;
        state.set_fan(std::move(f));
        return fan_json(state, appid, openid);
    }
    if (path == "/control/interactions" && post) {
        std::string appid, openid, kind;
        r.get("appid", appid);
        r.get("openid", openid);
        r.get("kind", kind);
        if (!r.problem().empty()) return error(400, r.problem());
        if (appid.empty() || openid.empty() || (kind != "message" && kind != "event")) {
            return error(400, "appid, openid and kind (message or event) are required");
        }
        state.record_interaction(appid, openid,
                                 kind == "message" ? window_kind::message : window_kind::event);
        return fan_json(state, appid, openid);
    }
    if (path == "/control/media" && post) {
        std::string appid, type = "image", content_type = "image/jpeg", data, id;
        r.get("appid", appid);
        r.get("type", type);
        r.get("content_type", content_type);
        r.get("data_base64", data);
        r.get("media_id", id);
        if (!r.problem().empty()) return error(400, r.problem());
        auto bytes = wechat::base64_decode(data);
        if (!bytes) return error(400, "data_base64: not base64");
        if (appid.empty()) return error(400, "appid is required");
        const std::string media_id = state.add_media(
            appid, std::move(type), std::move(content_type), std::move(*bytes), std::move(id));
        rapidjson::StringBuffer buf;
        json_writer w(buf);
        w.StartObject();
        field(w, "media_id", media_id);
        w.EndObject();
        return control_reply{200, buf.GetString()};
    }
    if (path == "/control/faults") {
        if (req.method == "DELETE") {
            state.clear_faults();
            return ok();
        }
        if (!post) return error(405, "POST or DELETE");
        fault f;
        std::string action = "error";
        std::int64_t errcode = f.errcode, times = f.times;
        r.get("api", f.api);
        r.get("action", action);
        r.get("errcode", errcode);
        r.get("errmsg", f.errmsg);
        r.get_int("http_status", f.http_status);
        r.get_ms("delay_ms", f.delay);
        r.get("times", times);
        if (!r.problem().empty()) return error(400, r.problem());
        auto a = parse_fault_action(action);
        if (!a) {
            return error(400,
                         "action: must be none, error, http_status, drop or "
                         "drop_after_processing");
        }
        if (f.api != "*" && !api_state::is_api_name(f.api)) {
            return error(400, "api: must be \"*\" or an API name such as custom_send");
        }
        f.action = *a;
        f.errcode = static_cast<int>(errcode);
        f.times = static_cast<int>(times);
        state.inject(std::move(f));
        return ok();
    }
    if ((path == "/control/tokens/expire" || path == "/control/tokens/invalidate") && post) {
        std::string appid;
        r.get("appid", appid);
        if (!r.problem().empty()) return error(400, r.problem());
        if (path == "/control/tokens/expire") {
            state.expire_tokens(appid);
        } else {
            state.invalidate_tokens(appid);
        }
        return ok();
    }
    if (path == "/control/listening" && post) {
        refuse_command c;
        r.get_ms("refuse_ms", c.duration);
        if (!r.problem().empty()) return error(400, r.problem());
        if (c.duration.count() <= 0) return error(400, "refuse_ms: must be positive");
        return c;
    }
    if (path == "/control/calls" && get) {
        return control_reply{200, calls_json(state.calls(query_param(req.query, "api")))};
    }
    if (path == "/control/sent" && get) {
        return control_reply{200, sent_json(state.sent(query_param(req.query, "appid"),
                                                       query_param(req.query, "openid")))};
    }
    if (path == "/control/deliver" && post) {
        deliver_command c;
        r.get("appid", c.appid);
        read_delivery_options(r, c.opts);
        if (!r.problem().empty()) return error(400, r.problem());
        auto it = d.FindMember("message");
        if (c.appid.empty() || it == d.MemberEnd() || !it->value.IsObject()) {
            return error(400, "appid and message are required");
        }
        std::string problem;
        read_spec(it->value, c.spec, problem);
        if (!problem.empty()) return error(400, "message." + problem);
        return c;
    }
    if (path == "/control/template_finish" && post) {
        template_finish_command c;
        r.get("msgid", c.msgid);
        r.get("status", c.status);
        read_delivery_options(r, c.opts);
        if (!r.problem().empty()) return error(400, r.problem());
        if (c.msgid == 0) return error(400, "msgid is required");
        return c;
    }
    if (path == "/control/deliveries" && get) return deliveries_command{};
    return error(404,
                 "no such control endpoint (see tests/fakes/include/scrm/fakes/fake_wechat.hpp)");
}

std::string to_json(const delivery_result& d) {
    rapidjson::StringBuffer buf;
    json_writer w(buf);
    w.StartObject();
    field_u(w, "seq", d.seq);
    field(w, "appid", d.appid);
    field(w, "openid", d.openid);
    field(w, "type", d.type);
    field(w, "url", d.url);
    field(w, "query", d.query);
    field(w, "body", d.body);
    field(w, "xml", d.xml);
    field(w, "timestamp", d.timestamp);
    field(w, "nonce", d.nonce);
    field_u(w, "msg_id", d.msg_id);
    field(w, "create_time", d.create_time);
    key(w, "attempts");
    w.StartArray();
    for (const auto& a : d.attempts) {
        w.StartObject();
        field(w, "status", static_cast<std::int64_t>(a.status));
        field(w, "body", a.body);
        field(w, "error", a.error);
        field(w, "elapsed_ms", static_cast<std::int64_t>(a.elapsed.count()));
        w.EndObject();
    }
    w.EndArray();
    field(w, "answered", d.answered);
    key(w, "reply");
    w.StartObject();
    field(w, "kind", std::string_view(to_string(d.reply.k)));
    field(w, "xml", d.reply.xml);
    field(w, "msg_type", d.reply.msg_type);
    field(w, "content", d.reply.content);
    field(w, "media_id", d.reply.media_id);
    field(w, "problem", d.reply.problem);
    w.EndObject();
    field(w, "fan_sees_failure", d.fan_sees_failure());
    field(w, "error", d.error);
    w.EndObject();
    return buf.GetString();
}

std::string to_json(const std::vector<delivery_result>& all) {
    std::string out = R"({"deliveries":[)";
    for (std::size_t i = 0; i < all.size(); ++i) {
        if (i) out += ',';
        out += to_json(all[i]);
    }
    out += "]}";
    return out;
}

}  // namespace scrm::fakes::detail

// The integration endpoint and the template send log (integration_api.hpp): requests parsed into
// the templates core's values, outcomes written as JSON. Nothing here logs keys or field values.
#include "scrm/gateway/integration_api.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "admin_api_impl.hpp"
#include "scrm/common/log.hpp"
#include "scrm/routing/time_text.hpp"
#include "scrm/templates/notifier.hpp"

namespace scrm::gateway {

namespace asio = boost::asio;
using asio::awaitable;

struct integration_api::impl {
    templates::notifier& notifier;
    std::shared_ptr<admin_api::impl> admin;  // admins' authentication (the send log)
};

namespace {

using impl_ptr = std::shared_ptr<integration_api::impl>;

http_response unavailable(std::string_view event, const boost::system::error_code& ec) {
    log::warn(event, {{"reason", ec.message()}});
    return json_error(503, "服务暂时不可用，请稍后再试");
}

http_response json_ok(std::string body) {
    http_response r;
    r.body = std::move(body);
    return r;
}

// "Bearer <key>" (scheme case-insensitive); empty when absent.
std::string bearer(std::string_view authorization) {
    constexpr std::string_view scheme = "bearer ";
    if (authorization.size() <= scheme.size()) return {};
    for (std::size_t i = 0; i < scheme.size(); ++i) {
        const char c = authorization[i];
        if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != scheme[i]) return {};
    }
    auto key = authorization.substr(scheme.size());
    while (!key.empty() && key.front() == ' ') key.remove_prefix(1);
    while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
    return std::string(key);
}

// {"error": text, "fields": [names]} for a mapping that needs fields the event lacks.
http_response missing_fields(const std::string& names) {
    std::string list = "[";
    std::size_t at = 0;
    while (at <= names.size()) {
        const auto comma = names.find(',', at);
        const auto name =
            names.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
        if (list.size() > 1) list += ',';
        list += json_quote(name);
        if (comma == std::string::npos) break;
        at = comma + 1;
    }
    http_response r;
    r.status = 422;
    r.body = "{\"error\":" + json_quote("诊所的模板用到了事件中缺少的字段：" + names) +
             ",\"fields\":" + list + "]}";
    return r;
}

awaitable<http_response> post_event(impl_ptr self, http_request req) {
    const std::string key = bearer(req.header("authorization"));
    if (key.empty()) co_return json_error(401, "请在Authorization头中提供API密钥（Bearer）");
    auto owner = co_await self->notifier.authenticate(key);
    if (!owner) co_return unavailable("integration.unavailable", owner.error());
    if (!*owner) co_return json_error(401, "API密钥无效或已停用");
    auto parsed = templates::parse_event(req.body);
    if (!parsed.event) {
        http_response r = json_error(400, parsed.error->zh);
        if (!parsed.error->field.empty()) {
            r.body.pop_back();
            r.body += ",\"field\":" + json_quote(parsed.error->field) + "}";
        }
        co_return r;
    }
    auto outcome = co_await self->notifier.handle(**owner, std::move(*parsed.event));
    if (!outcome && outcome.error() == make_error_code(errc::bad_input)) {
        // A link provider refused the event (the evaluation invitation's visit id).
        co_return json_error(400, "事件无法生成评价邀请：就诊编号（visit_id）须为1到128个字符");
    }
    if (!outcome) co_return unavailable("integration.unavailable", outcome.error());
    using templates::event_status;
    switch (outcome->status) {
        case event_status::accepted:
            co_return json_ok("{\"duplicate\":false," + outcome->body.substr(1));
        case event_status::duplicate:
            co_return json_ok("{\"duplicate\":true," + outcome->body.substr(1));
        case event_status::key_reused:
            co_return json_error(409, "该幂等键（idempotency_key）已用于另一个事件");
        case event_status::unknown_patient:
            co_return json_error(404, "找不到该患者：病历号和手机号都没有对应的患者");
        case event_status::ambiguous_phone:
            co_return json_error(409, "该手机号对应多位患者，请提供病历号（record_no）");
        case event_status::missing_fields: co_return missing_fields(outcome->body);
    }
    co_return json_error(500, "internal error");
}

// An RFC 3339 instant as MySQL's UTC text "YYYY-MM-DD hh:mm:ss"; nullopt if malformed.
std::optional<std::string> sql_utc(std::string_view text) {
    const auto t = routing::parse_timestamp(text);
    if (!t) return std::nullopt;
    std::string s = routing::format_timestamp(*t, std::chrono::minutes(0));
    s[10] = ' ';
    return s.substr(0, 19);
}

// Whether the query string has a parameter named `name` (with or without a value).
bool has_param(std::string_view query, std::string_view name) {
    std::size_t at = 0;
    while (at <= query.size()) {
        const auto amp = query.find('&', at);
        const auto part = query.substr(at, amp == std::string_view::npos ? query.npos : amp - at);
        if (part.substr(0, part.find('=')) == name) return true;
        if (amp == std::string_view::npos) break;
        at = amp + 1;
    }
    return false;
}

std::optional<std::uint64_t> small_number(const std::string& text, std::uint64_t min,
                                          std::uint64_t max) {
    if (text.empty() || text.size() > 6) return std::nullopt;
    std::uint64_t n = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (n < min || n > max) return std::nullopt;
    return n;
}

// "YYYY-MM-DD hh:mm:ss[.ffffff]" (UTC) as ISO 8601 with a Z; empty stays empty.
std::string iso_utc(std::string sql_time) {
    if (sql_time.empty()) return sql_time;
    if (sql_time.size() > 10 && sql_time[10] == ' ') sql_time[10] = 'T';
    return sql_time + "Z";
}

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

void put(json_writer& w, const char* key, const std::string& value) {
    w.Key(key);
    w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
}

void put_id(json_writer& w, const char* key, const std::optional<std::uint64_t>& id) {
    w.Key(key);
    if (id) {
        w.Uint64(*id);
    } else {
        w.Null();
    }
}

std::string page_json(const templates::log_page& page, std::uint64_t page_no,
                      std::uint64_t page_size) {
    rapidjson::StringBuffer buf;
    json_writer w(buf);
    w.StartObject();
    w.Key("total");
    w.Uint64(page.total);
    w.Key("page");
    w.Uint64(page_no);
    w.Key("page_size");
    w.Uint64(page_size);
    w.Key("entries");
    w.StartArray();
    for (const auto& e : page.entries) {
        w.StartObject();
        w.Key("id");
        w.Uint64(e.id);
        w.Key("event_id");
        w.Uint64(e.event_id);
        put(w, "kind", e.kind);
        const auto* k = templates::find_kind(e.kind);
        put(w, "kind_label", k ? std::string(k->label) : e.kind);
        put_id(w, "patient_id", e.patient_id);
        put(w, "patient_name", e.patient_name);
        put_id(w, "account_id", e.account_id);
        w.Key("openid");
        if (e.openid.empty()) {
            w.Null();
        } else {
            w.String(e.openid.c_str(), static_cast<rapidjson::SizeType>(e.openid.size()));
        }
        put(w, "template_id", e.template_id);
        put(w, "state", e.state);
        w.Key("errcode");
        if (e.errcode) {
            w.Int(*e.errcode);
        } else {
            w.Null();
        }
        put(w, "reason", e.reason);
        put(w, "delivery_status", e.delivery_status);
        put(w, "created_at", iso_utc(e.created_at));
        w.Key("delivered_at");
        if (e.delivered_at.empty()) {
            w.Null();
        } else {
            const std::string at = iso_utc(e.delivered_at);
            w.String(at.c_str(), static_cast<rapidjson::SizeType>(at.size()));
        }
        w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return {buf.GetString(), buf.GetSize()};
}

awaitable<http_response> get_log(impl_ptr self, http_request req) {
    auto auth = co_await self->admin->admin(req);
    if (!auth.agent) co_return auth.refusal;
    templates::log_query q;
    q.clinic = auth.agent->row.clinic;
    const auto param = [&req](std::string_view name) -> std::optional<std::string> {
        if (!has_param(req.query, name)) return std::string();
        return query_param(req.query, name);
    };
    const auto patient = param("patient");
    const auto openid = param("openid");
    const auto kind = param("kind");
    const auto from = param("from");
    const auto to = param("to");
    const auto page = param("page");
    const auto page_size = param("page_size");
    if (!patient || !openid || !kind || !from || !to || !page || !page_size) {
        co_return json_error(400, "查询参数格式不正确");
    }
    q.patient = *patient;
    if (q.patient.size() > 64 * 4) co_return json_error(400, "患者姓名过长");
    q.openid = *openid;
    if (q.openid.size() > 128) co_return json_error(400, "openid过长");
    if (!kind->empty()) {
        if (!templates::find_kind(*kind)) co_return json_error(400, "未知的通知类型：" + *kind);
        q.kind = *kind;
    }
    const auto from_utc = from->empty() ? std::optional<std::string>("") : sql_utc(*from);
    const auto to_utc = to->empty() ? std::optional<std::string>("") : sql_utc(*to);
    if (!from_utc || !to_utc) {
        co_return json_error(400,
                             "时间格式不正确，应为RFC 3339格式，例如 2026-11-23T10:00:00+08:00");
    }
    q.from = *from_utc;
    q.to = *to_utc;
    if (!q.from.empty() && !q.to.empty() && q.from >= q.to) {
        co_return json_error(400, "开始时间必须早于结束时间");
    }
    if (!page->empty()) {
        const auto n = small_number(*page, 1, 100000);
        if (!n) co_return json_error(400, "页码（page）必须是1至100000的整数");
        q.page = *n;
    }
    if (!page_size->empty()) {
        const auto n = small_number(*page_size, 1, 100);
        if (!n) co_return json_error(400, "每页条数（page_size）必须是1至100的整数");
        q.page_size = *n;
    }
    const std::uint64_t page_no = q.page, size = q.page_size;
    auto found = co_await self->notifier.search(std::move(q));
    if (!found) co_return unavailable("template_log.unavailable", found.error());
    co_return json_ok(page_json(*found, page_no, size));
}

}  // namespace

integration_api::integration_api(templates::notifier& notifier, admin_api& admin)
    : impl_(std::make_shared<impl>(impl{notifier, admin.state()})) {}

integration_api::~integration_api() = default;

void integration_api::add_routes(router& routes) {
    auto self = impl_;
    routes.exact("POST", "/api/integration/events",
                 [self](http_request r) { return post_event(self, std::move(r)); });
    routes.exact("GET", "/api/admin/template-log",
                 [self](http_request r) { return get_log(self, std::move(r)); });
}

}  // namespace scrm::gateway

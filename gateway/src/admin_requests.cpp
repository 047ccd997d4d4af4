// See admin_requests.hpp. JSON bodies are read with RapidJSON; unlike the agents' bodies, unknown
// members of the routing settings are refused (a misspelt setting must not pass silently).
#include "scrm/gateway/admin_requests.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>

#include "request_json.hpp"
#include "scrm/gateway/http.hpp"
#include "scrm/gateway/password.hpp"
#include "scrm/gateway/text_rules.hpp"

namespace scrm::gateway {
namespace {

using request_json::unknown_member;

std::string json_text(const rapidjson::Value& v) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    v.Accept(w);
    return {buf.GetString(), buf.GetSize()};
}

std::optional<rapidjson::Document> parse_object(std::string_view body) {
    rapidjson::Document doc;
    doc.Parse(body.data(), body.size());
    if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
    return doc;
}

const rapidjson::Value* member(const rapidjson::Value& obj, const char* name) {
    const auto it = obj.FindMember(name);
    if (it == obj.MemberEnd() || it->value.IsNull()) return nullptr;
    return &it->value;
}

// A list of distinct agent ids (numbers or digit strings) of at most `max`; nullopt if malformed.
std::optional<std::vector<std::uint64_t>> id_list(const rapidjson::Value& v, std::size_t max) {
    if (!v.IsArray() || v.Size() > max) return std::nullopt;
    std::vector<std::uint64_t> out;
    for (const auto& e : v.GetArray()) {
        std::optional<std::uint64_t> id;
        if (e.IsUint64() && e.GetUint64() > 0) {
            id = e.GetUint64();
        } else if (e.IsString()) {
            id = parse_id(std::string_view(e.GetString(), e.GetStringLength()));
        }
        if (!id || std::find(out.begin(), out.end(), *id) != out.end()) return std::nullopt;
        out.push_back(*id);
    }
    return out;
}

constexpr std::size_t max_agents = 50;

// {"to_agents":[…], "distribution":…} of `obj`; a problem (Chinese) when malformed.
std::optional<fan_destination> destination(const rapidjson::Value& obj, std::string& problem) {
    const rapidjson::Value* to = member(obj, "to_agents");
    if (!to) {
        problem = "请填写接收顾客的客服（to_agents，可为空数组表示清空）";
        return std::nullopt;
    }
    auto ids = id_list(*to, max_agents);
    if (!ids) {
        problem = "接收客服（to_agents）须为不重复的客服编号数组，最多50个";
        return std::nullopt;
    }
    fan_destination d;
    d.to_agents = std::move(*ids);
    const rapidjson::Value* how = member(obj, "distribution");
    if (!how) {
        if (!d.to_agents.empty()) {
            problem = "请选择分配方式（distribution：average 平均 或 round_robin 轮流）";
            return std::nullopt;
        }
        return d;
    }
    const std::string_view h =
        how->IsString() ? std::string_view(how->GetString(), how->GetStringLength()) : "";
    if (h == "average") {
        d.how = distribution::average;
    } else if (h == "round_robin") {
        d.how = distribution::round_robin;
    } else {
        problem = "分配方式（distribution）须为 average（平均）或 round_robin（轮流）";
        return std::nullopt;
    }
    return d;
}

// splitmix64: a fully specified generator, so the same seed deals the same way everywhere.
struct splitmix64 {
    std::uint64_t state;
    std::uint64_t next() noexcept {
        std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
    // Uniform in [0, n) by rejection (no modulo bias); n > 0.
    std::uint64_t below(std::uint64_t n) noexcept {
        const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
        std::uint64_t x = next();
        while (x >= limit) x = next();
        return x % n;
    }
};

template <class T>
void shuffle(std::vector<T>& v, splitmix64& g) {
    for (std::size_t i = v.size(); i > 1; --i) {
        std::swap(v[i - 1], v[static_cast<std::size_t>(g.below(i))]);
    }
}

}  // namespace

parsed_routing_update parse_routing_update(std::string_view body) {
    parsed_routing_update out;
    auto doc = parse_object(body);
    if (!doc) {
        out.problem = "请求内容须为 JSON 对象";
        return out;
    }
    if (doc->MemberCount() == 0) {
        out.problem = "请至少填写一项设置";
        return out;
    }
    routing_update u;
    std::vector<setting_problem> problems;
    for (auto m = doc->MemberBegin(); m != doc->MemberEnd(); ++m) {
        const std::string key(m->name.GetString(), m->name.GetStringLength());
        const routing_setting* s = routing_setting_by_key(key);
        if (!s) {
            out.details.push_back({key, "未知的设置项"});
            continue;
        }
        const auto& v = m->value;
        setting_input in;
        if (s->kind == routing_value::hours || s->kind == routing_value::dates) {
            in = json_text(v);
        } else if (v.IsBool()) {
            in = v.GetBool();
        } else if (v.IsInt64()) {
            in = static_cast<long long>(v.GetInt64());
        } else if (v.IsString()) {
            in = std::string(v.GetString(), v.GetStringLength());
        }
        const std::size_t before = problems.size();
        if (auto value = check_setting(*s, in, problems))
            u.given.emplace_back(s, std::move(*value));
        for (std::size_t i = before; i < problems.size(); ++i) {
            out.details.push_back({key + problems[i].where, problems[i].zh});
        }
    }
    if (!out.details.empty()) {
        for (const auto& d : out.details) {
            const routing_setting* s = routing_setting_by_key(d.field.substr(0, d.field.find('[')));
            if (!out.problem.empty()) out.problem += "；";
            out.problem +=
                (s ? std::string(s->label) + "（" + d.field + "）" : d.field) + "：" + d.error;
        }
        return out;
    }
    out.value = std::move(u);
    return out;
}

const char* to_string(owner_role r) noexcept {
    return r == owner_role::consultant ? "consultant" : "exclusive";
}

const char* to_string(distribution d) noexcept {
    return d == distribution::average ? "average" : "round_robin";
}

const char* owner_column(owner_role r) noexcept {
    return r == owner_role::consultant ? "consultant_agent_id" : "exclusive_agent_id";
}

parsed<reassign_request> parse_reassign(std::string_view body, bool need_plan) {
    parsed<reassign_request> out;
    auto doc = parse_object(body);
    if (!doc) {
        out.problem = "请求内容须为 JSON 对象";
        return out;
    }
    reassign_request r;
    const rapidjson::Value* role = member(*doc, "role");
    const std::string_view rv = role && role->IsString()
                                    ? std::string_view(role->GetString(), role->GetStringLength())
                                    : "";
    if (rv == "consultant") {
        r.role = owner_role::consultant;
    } else if (rv == "exclusive") {
        r.role = owner_role::exclusive;
    } else {
        out.problem = "更换类型（role）须为 consultant（顾问）或 exclusive（专属客服）";
        return out;
    }
    const rapidjson::Value* from = member(*doc, "from_agents");
    auto ids = from ? id_list(*from, max_agents) : std::nullopt;
    if (!ids || ids->empty()) {
        out.problem = "请选择原归属客服（from_agents：不重复的客服编号数组，1至50个）";
        return out;
    }
    r.from_agents = std::move(*ids);
    auto to = destination(*doc, out.problem);
    if (!to) return out;
    r.to = std::move(*to);
    if (need_plan) {
        const rapidjson::Value* plan = member(*doc, "plan");
        if (!plan || !plan->IsString() ||
            !parse_plan_token(std::string_view(plan->GetString(), plan->GetStringLength()))) {
            out.problem = "请先预览，并提交预览返回的 plan";
            return out;
        }
        r.plan = std::string(plan->GetString(), plan->GetStringLength());
    }
    out.value = std::move(r);
    return out;
}

parsed<deactivate_request> parse_deactivate(std::string_view body) {
    parsed<deactivate_request> out;
    if (body.empty()) {
        out.value = deactivate_request{};
        return out;
    }
    auto doc = parse_object(body);
    if (!doc) {
        out.problem = "请求内容须为 JSON 对象";
        return out;
    }
    deactivate_request d;
    for (const auto& [name, slot] : {std::pair{"consultant_fans", &d.consultant_fans},
                                     std::pair{"exclusive_fans", &d.exclusive_fans}}) {
        const rapidjson::Value* v = member(*doc, name);
        if (!v) continue;
        if (!v->IsObject()) {
            out.problem = std::string(name) + " 须为 {\"to_agents\":[…],\"distribution\":…}";
            return out;
        }
        auto dest = destination(*v, out.problem);
        if (!dest) return out;
        *slot = std::move(*dest);
    }
    out.value = std::move(d);
    return out;
}

std::vector<std::optional<std::uint64_t>> plan_reassignment(
    std::size_t fans, const std::vector<std::uint64_t>& receivers, distribution how,
    std::uint64_t seed) {
    std::vector<std::optional<std::uint64_t>> out(fans);
    if (receivers.empty()) return out;
    std::vector<std::size_t> order(fans);
    for (std::size_t i = 0; i < fans; ++i) order[i] = i;
    std::vector<std::uint64_t> dealers = receivers;
    if (how == distribution::average) {
        splitmix64 g{seed};
        shuffle(order, g);
        shuffle(dealers, g);
    }
    for (std::size_t k = 0; k < fans; ++k) out[order[k]] = dealers[k % dealers.size()];
    return out;
}

std::string plan_fingerprint(const reassign_request& r, const std::vector<reassign_fan>& fans) {
    std::vector<std::uint64_t> from = r.from_agents;
    std::sort(from.begin(), from.end());
    std::string text = std::string(to_string(r.role)) + "\n" + to_string(r.to.how) + "\n";
    for (const auto id : from) text += std::to_string(id) + ",";
    text += "\n";
    for (const auto id : r.to.to_agents) text += std::to_string(id) + ",";
    text += "\n";
    for (const auto& f : fans) {
        text += std::to_string(f.id) + " " + std::to_string(f.account_id) + " " + f.openid + " " +
                std::to_string(f.owner) + "\n";
    }
    return token_digest(text);
}

std::string plan_token(std::uint64_t seed, std::string_view fingerprint) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(16, '0');
    for (int i = 15; i >= 0; --i, seed >>= 4) out[static_cast<std::size_t>(i)] = digits[seed & 15];
    return out + "." + std::string(fingerprint);
}

std::optional<std::pair<std::uint64_t, std::string>> parse_plan_token(std::string_view token) {
    if (token.size() != 16 + 1 + 64 || token[16] != '.') return std::nullopt;
    const auto lower_hex = [](std::string_view s) {
        return std::all_of(s.begin(), s.end(),
                           [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
    };
    if (!lower_hex(token.substr(0, 16)) || !lower_hex(token.substr(17))) return std::nullopt;
    std::uint64_t seed = 0;
    std::from_chars(token.data(), token.data() + 16, seed, 16);
    return std::make_pair(seed, std::string(token.substr(17)));
}

namespace {

// A member that must be a string if present: its text, or nullopt (absent or null). `bad` is set
// when it is present but not a string.
std::optional<std::string> string_member(const rapidjson::Value& obj, const char* name, bool& bad) {
    const rapidjson::Value* v = member(obj, name);
    if (!v) return std::nullopt;
    if (!v->IsString()) {
        bad = true;
        return std::nullopt;
    }
    return std::string(v->GetString(), v->GetStringLength());
}

// "role": one of agent_roles, else a problem.
std::optional<std::string> role_problem(const std::optional<std::string>& role, bool bad) {
    if (bad || (role && !valid_agent_role(*role))) {
        return "角色（role）须为 admin（管理员）、front_desk（前台）、consultant（咨询师）或 "
               "service（客服）";
    }
    return std::nullopt;
}

// "store_id": a store's id or null (no store); nullopt (absent) or a problem.
std::optional<std::optional<std::uint64_t>> store_member(const rapidjson::Value& obj,
                                                         std::string& problem) {
    const auto it = obj.FindMember("store_id");
    if (it == obj.MemberEnd()) return std::nullopt;
    if (it->value.IsNull()) return std::optional<std::uint64_t>();
    if (it->value.IsUint64() && it->value.GetUint64() > 0) {
        return std::optional<std::uint64_t>(it->value.GetUint64());
    }
    problem = "门店（store_id）须为门店编号或 null（不属于任何门店）";
    return std::nullopt;
}

std::optional<bool> bool_member(const rapidjson::Value& obj, const char* name, bool& bad) {
    const rapidjson::Value* v = member(obj, name);
    if (!v) return std::nullopt;
    if (!v->IsBool()) {
        bad = true;
        return std::nullopt;
    }
    return v->GetBool();
}

template <class T>
parsed<T> refused(std::string problem) {
    parsed<T> out;
    out.problem = std::move(problem);
    return out;
}

}  // namespace

bool valid_agent_role(std::string_view role) noexcept {
    return std::any_of(std::begin(agent_roles), std::end(agent_roles),
                       [role](const char* r) { return role == r; });
}

parsed<agent_create> parse_agent_create(std::string_view body) {
    auto doc = parse_object(body);
    if (!doc) return refused<agent_create>("请求内容须为 JSON 对象");
    if (auto u = unknown_member(*doc, {"name", "role", "store_id", "can_receive", "password"})) {
        return refused<agent_create>("未知的字段：" + *u);
    }
    bool bad = false;
    agent_create a;
    const auto name = string_member(*doc, "name", bad);
    if (bad || !name || !valid_name(*name, agent_name_max)) {
        return refused<agent_create>("姓名（name）须为1至64个字符，不含控制字符，首尾不能是空格");
    }
    a.name = *name;
    const auto role = string_member(*doc, "role", bad);
    if (!role) bad = true;
    if (auto p = role_problem(role, bad)) return refused<agent_create>(*p);
    a.role = *role;
    std::string problem;
    if (auto store = store_member(*doc, problem)) a.store = *store;
    if (!problem.empty()) return refused<agent_create>(problem);
    if (auto receive = bool_member(*doc, "can_receive", bad)) a.can_receive = *receive;
    if (bad) return refused<agent_create>("接待在线咨询（can_receive）须为 true 或 false");
    const auto password = string_member(*doc, "password", bad);
    if (bad || !password) return refused<agent_create>("请填写密码（password）");
    if (auto p = password_problem(*password)) return refused<agent_create>(*p);
    a.password = *password;
    parsed<agent_create> out;
    out.value = std::move(a);
    return out;
}

parsed<agent_update> parse_agent_update(std::string_view body) {
    auto doc = parse_object(body);
    if (!doc) return refused<agent_update>("请求内容须为 JSON 对象");
    if (auto u = unknown_member(*doc, {"role", "store_id", "can_receive"})) {
        return refused<agent_update>("未知的字段：" + *u +
                                     "（可修改 role、store_id、can_receive）");
    }
    bool bad = false;
    agent_update a;
    a.role = string_member(*doc, "role", bad);
    if (auto p = role_problem(a.role, bad)) return refused<agent_update>(*p);
    std::string problem;
    a.store = store_member(*doc, problem);
    if (!problem.empty()) return refused<agent_update>(problem);
    a.can_receive = bool_member(*doc, "can_receive", bad);
    if (bad) return refused<agent_update>("接待在线咨询（can_receive）须为 true 或 false");
    if (!a.role && !a.store && !a.can_receive) {
        return refused<agent_update>("请至少填写一项：role、store_id 或 can_receive");
    }
    parsed<agent_update> out;
    out.value = std::move(a);
    return out;
}

parsed<std::string> parse_password_reset(std::string_view body) {
    auto doc = parse_object(body);
    if (!doc) return refused<std::string>("请求内容须为 JSON 对象");
    bool bad = false;
    auto password = string_member(*doc, "password", bad);
    if (bad || !password) return refused<std::string>("请填写新密码（password）");
    if (auto p = password_problem(*password)) return refused<std::string>(*p);
    parsed<std::string> out;
    out.value = std::move(password);
    return out;
}

parsed<std::string> parse_store_name(std::string_view body) {
    auto doc = parse_object(body);
    if (!doc) return refused<std::string>("请求内容须为 JSON 对象");
    if (auto u = unknown_member(*doc, {"name"})) return refused<std::string>("未知的字段：" + *u);
    bool bad = false;
    auto name = string_member(*doc, "name", bad);
    if (bad || !name || !valid_name(*name, store_name_max)) {
        return refused<std::string>(
            "门店名称（name）须为1至128个字符，不含控制字符，首尾不能是空格");
    }
    parsed<std::string> out;
    out.value = std::move(name);
    return out;
}

parsed<std::uint64_t> parse_qr_request(std::string_view body) {
    auto doc = parse_object(body);
    if (!doc) return refused<std::uint64_t>("请求内容须为 JSON 对象");
    const rapidjson::Value* v = member(*doc, "account_id");
    if (!v || !v->IsUint64() || v->GetUint64() == 0) {
        return refused<std::uint64_t>("请填写公众号编号（account_id）");
    }
    parsed<std::uint64_t> out;
    out.value = v->GetUint64();
    return out;
}

parsed<account_body> parse_account_body(std::string_view body, bool update) {
    auto doc = parse_object(body);
    if (!doc) return refused<account_body>("请求内容须为 JSON 对象");
    if (update && doc->HasMember("appid")) {
        return refused<account_body>("AppID（appid）不能修改；其他公众号请新增");
    }
    const auto unknown =
        update
            ? unknown_member(*doc, {"original_id", "token", "aes_key", "secret", "safe_mode_only"})
            : unknown_member(*doc, {"appid", "original_id", "token", "aes_key", "aes_key_previous",
                                    "secret", "safe_mode_only"});
    if (unknown) return refused<account_body>("未知的字段：" + *unknown);
    bool bad = false;
    account_body a;
    const std::pair<const char*, std::optional<std::string>*> texts[] = {
        {"appid", &a.appid},   {"original_id", &a.original_id},
        {"token", &a.token},   {"aes_key", &a.aes_key},
        {"secret", &a.secret}, {"aes_key_previous", &a.aes_key_previous}};
    for (const auto& [name, out] : texts) {
        *out = string_member(*doc, name, bad);
        if (bad) return refused<account_body>(std::string(name) + " 须为字符串");
    }
    a.safe_mode_only = bool_member(*doc, "safe_mode_only", bad);
    if (bad) return refused<account_body>("仅安全模式（safe_mode_only）须为 true 或 false");
    if (update && !a.original_id && !a.token && !a.aes_key && !a.secret && !a.safe_mode_only) {
        return refused<account_body>(
            "请至少填写一项：original_id、token、aes_key、secret 或 safe_mode_only");
    }
    parsed<account_body> out;
    out.value = std::move(a);
    return out;
}

const std::vector<person_needed>& person_needed_errors() {
    static const char* const token =
        "access_token 被判无效：请确认没有其他系统在用同一 AppSecret 刷新 access_token";
    static const char* const credentials =
        "AppID 或开发者密码（AppSecret）不正确：请在公众号设置中更新开发者密码";
    static const char* const templates = "模板无效或无权发送：请在微信公众平台检查模板消息设置";
    static const std::vector<person_needed> all{
        {40164, "ip_not_allowlisted",
         "网关的出口 IP 不在公众号的 IP 白名单中：请在微信公众平台「设置与开发 → 基本配置」中添加"},
        {48001, "unauthorized",
         "公众号没有该接口的权限（未认证或权限被收回）：请在微信公众平台检查"},
        {45009, "daily_quota", "接口调用次数已达今日上限：请在微信公众平台查看配额或次日再试"},
        {40001, "token_invalid", token},
        {40014, "token_invalid", token},
        {42001, "token_invalid", token},
        {40013, "bad_credentials", credentials},
        {40125, "bad_credentials", credentials},
        {40037, "template_rights", templates},
        {43116, "template_rights", templates},
    };
    return all;
}

const person_needed* person_needed_error(int errcode) noexcept {
    for (const auto& e : person_needed_errors()) {
        if (e.errcode == errcode) return &e;
    }
    return nullptr;
}

parsed<std::uint32_t> parse_health_query(std::string_view query) {
    parsed<std::uint32_t> out;
    std::uint32_t days = 7;
    if (auto d = query_param(query, "days"); d && !d->empty()) {
        const auto n = parse_id(*d);
        if (!n || *n > 90) {
            out.problem = "days 须为 1 至 90 之间的整数";
            return out;
        }
        days = static_cast<std::uint32_t>(*n);
    }
    out.value = days;
    return out;
}

parsed<std::optional<std::uint32_t>> parse_retention(std::string_view body) {
    using days = std::optional<std::uint32_t>;
    auto doc = parse_object(body);
    if (!doc) return refused<days>("请求内容须为 JSON 对象");
    if (auto u = unknown_member(*doc, {"message_retention_days"})) {
        return refused<days>("未知的字段：" + *u);
    }
    const auto it = doc->FindMember("message_retention_days");
    if (it == doc->MemberEnd())
        return refused<days>("请填写消息保留天数（message_retention_days）");
    parsed<days> out;
    if (it->value.IsNull()) {
        out.value = days();
        return out;
    }
    if (!it->value.IsUint() || it->value.GetUint() == 0 ||
        it->value.GetUint() > max_retention_days) {
        return refused<days>(
            "消息保留天数（message_retention_days）须为 1 至 3650 之间的整数，或 null（永久保留）");
    }
    out.value = days(it->value.GetUint());
    return out;
}

parsed<audit_query> parse_audit_query(std::string_view query) {
    parsed<audit_query> out;
    audit_query q;
    if (auto action = query_param(query, "action"); action && !action->empty()) {
        const bool ok =
            action->size() <= 64 && std::all_of(action->begin(), action->end(), [](char c) {
                return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_';
            });
        if (!ok) {
            out.problem = "action 须为操作名，如 fan.owner 或 fan.（前缀）";
            return out;
        }
        q.action = std::move(*action);
    }
    if (auto before = query_param(query, "before"); before && !before->empty()) {
        q.before = parse_id(*before);
        if (!q.before) {
            out.problem = "before 须为记录编号";
            return out;
        }
    }
    if (auto limit = query_param(query, "limit"); limit && !limit->empty()) {
        const auto n = parse_id(*limit);
        if (!n || *n > 200) {
            out.problem = "limit 须为 1 至 200 之间的整数";
            return out;
        }
        q.limit = static_cast<std::uint32_t>(*n);
    }
    out.value = std::move(q);
    return out;
}

std::string json_or_string(std::string_view text) {
    rapidjson::Document doc;
    doc.Parse(text.data(), text.size());
    if (!doc.HasParseError()) return json_text(doc);
    return json_quote(text);
}

}  // namespace scrm::gateway

// The SQL of template notifications and the sends (notifier.hpp). An event's whole effect is one
// READ COMMITTED transaction whose first statement claims the idempotency key: a second post of
// the key waits on the first's row lock and then finds it.
#include "scrm/templates/notifier.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>

#include "scrm/common/hex.hpp"
#include "scrm/common/log.hpp"
#include "scrm/storage/mysql.hpp"
#include "scrm/wechat/outbox.hpp"

namespace scrm::templates {

namespace asio = boost::asio;
using asio::awaitable;
using storage::mysql_session;
using storage::sql_value;

namespace {

constexpr std::string_view key_prefix = "sk_";

std::string sha256_hex(std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data.data(), data.size(), digest, &n, EVP_sha256(), nullptr);
    return to_hex(digest, n);
}

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

void put(json_writer& w, std::string_view key, std::string_view value) {
    w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

sql_value nullable(const std::optional<std::uint64_t>& v) {
    return v ? sql_value(*v) : sql_value(std::monostate{});
}

struct patient_row {
    std::uint64_t id = 0;
    std::string name;
};

struct recipient {
    std::uint64_t account_id = 0;
    std::string openid;
};

// The patient an event names: by record number, else (none given, or none found) by phone.
// nullopt with `ambiguous` set when a phone matches several patients.
result<std::optional<patient_row>> find_patient(mysql_session& db, std::uint64_t clinic,
                                                const patient_ref& p, bool& ambiguous) {
    ambiguous = false;
    if (!p.record_no.empty()) {
        auto r = db.query("SELECT id, name FROM patients WHERE clinic_id = ? AND record_no = ?",
                          {clinic, p.record_no});
        if (!r) return r.error();
        if (!r->rows.empty()) {
            return std::optional<patient_row>(
                patient_row{storage::sql_u64(r->rows[0][0]), r->rows[0][1].value_or("")});
        }
    }
    if (p.phone.empty()) return std::optional<patient_row>();
    auto r = db.query("SELECT id, name FROM patients WHERE clinic_id = ? AND phone = ? LIMIT 2",
                      {clinic, p.phone});
    if (!r) return r.error();
    if (r->rows.size() > 1) ambiguous = true;
    if (r->rows.size() != 1) return std::optional<patient_row>();
    return std::optional<patient_row>(
        patient_row{storage::sql_u64(r->rows[0][0]), r->rows[0][1].value_or("")});
}

// The patient's fans on this clinic's accounts who still follow (a fan never seen counts as
// following: it was bound by the clinic).
result<std::vector<recipient>> bound_fans(mysql_session& db, std::uint64_t clinic,
                                          std::uint64_t patient) {
    auto r = db.query(
        "SELECT fp.account_id, fp.openid FROM fan_patients fp "
        "JOIN official_accounts a ON a.id = fp.account_id "
        "LEFT JOIN fans f ON f.account_id = fp.account_id AND f.openid = fp.openid "
        "WHERE fp.patient_id = ? AND a.clinic_id = ? AND COALESCE(f.subscribed, 1) = 1 "
        "ORDER BY fp.account_id, fp.openid",
        {patient, clinic});
    if (!r) return r.error();
    std::vector<recipient> out;
    for (const auto& row : r->rows) {
        out.push_back({storage::sql_u64(row[0]), row[1].value_or("")});
    }
    return out;
}

struct log_row {
    std::uint64_t clinic = 0, event_id = 0;
    std::string kind;
    std::optional<std::uint64_t> patient_id;
    std::string patient_name;
    std::optional<std::uint64_t> account_id;
    std::string openid, template_id, state, reason;
    std::optional<std::uint64_t> outbox_id;
};

result<std::uint64_t> insert_log(mysql_session& db, const log_row& l) {
    auto r = db.query(
        "INSERT INTO template_log (clinic_id, event_id, kind, patient_id, patient_name, "
        "account_id, openid, template_id, state, reason, outbox_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        {l.clinic, l.event_id, l.kind, nullable(l.patient_id), l.patient_name,
         nullable(l.account_id), l.openid.empty() ? sql_value() : sql_value(l.openid),
         l.template_id.empty() ? sql_value() : sql_value(l.template_id), l.state,
         l.reason.empty() ? sql_value() : sql_value(l.reason), nullable(l.outbox_id)});
    if (!r) return r.error();
    return r->last_insert_id;
}

struct send_note {
    std::uint64_t log_id = 0, account_id = 0;
    std::string openid;
};

std::string result_json(std::uint64_t event_id, std::string_view state, std::string_view reason,
                        const std::vector<send_note>& sends, std::uint64_t log_id) {
    rapidjson::StringBuffer buf;
    json_writer w(buf);
    w.StartObject();
    w.Key("event_id");
    w.Uint64(event_id);
    put(w, "state", state);
    if (!reason.empty()) put(w, "reason", reason);
    if (log_id) {
        w.Key("log_id");
        w.Uint64(log_id);
    }
    w.Key("sends");
    w.StartArray();
    for (const auto& s : sends) {
        w.StartObject();
        w.Key("log_id");
        w.Uint64(s.log_id);
        w.Key("account_id");
        w.Uint64(s.account_id);
        put(w, "openid", s.openid);
        w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return {buf.GetString(), buf.GetSize()};
}

// The event's effects on an open transaction. A status other than accepted means: roll back.
result<event_outcome> apply_event(mysql_session& db, const api_key_owner& owner,
                                  const integration_event& e, const std::string& request_hash,
                                  const link_provider* links, std::vector<std::uint64_t>& queued) {
    const std::uint64_t clinic = owner.clinic;
    const std::string kind(e.kind->name);
    auto claimed = db.query(
        "INSERT IGNORE INTO integration_events (clinic_id, api_key_id, idempotency_key, kind, "
        "request_hash) VALUES (?, ?, ?, ?, ?)",
        {clinic, owner.key_id, e.idempotency_key, kind, request_hash});
    if (!claimed) return claimed.error();
    if (claimed->affected == 0) {
        auto first = db.query(
            "SELECT request_hash, result FROM integration_events WHERE clinic_id = ? AND "
            "idempotency_key = ?",
            {clinic, e.idempotency_key});
        if (!first) return first.error();
        if (first->rows.empty()) return make_error_code(errc::conflict);
        if (first->rows[0][0].value_or("") != request_hash) {
            return event_outcome{event_status::key_reused, {}};
        }
        return event_outcome{event_status::duplicate, first->rows[0][1].value_or("{}")};
    }
    const std::uint64_t event_id = claimed->last_insert_id;

    bool ambiguous = false;
    auto patient = find_patient(db, clinic, e.patient, ambiguous);
    if (!patient) return patient.error();
    if (!*patient) {
        return event_outcome{
            ambiguous ? event_status::ambiguous_phone : event_status::unknown_patient, {}};
    }
    auto setting = load_setting(db, clinic, kind);
    if (!setting) return setting.error();
    auto clinic_name = db.query("SELECT name FROM clinics WHERE id = ?", {clinic});
    if (!clinic_name) return clinic_name.error();

    field_values values = e.data;
    values["patient_name"] = (*patient)->name;
    if (!clinic_name->rows.empty()) values["clinic_name"] = clinic_name->rows[0][0].value_or("");

    log_row base;
    base.clinic = clinic;
    base.event_id = event_id;
    base.kind = kind;
    base.patient_id = (*patient)->id;
    base.patient_name = (*patient)->name;

    std::string state, reason;
    std::uint64_t single_log = 0;
    std::vector<send_note> sends;
    if (!*setting || !(*setting)->enabled) {
        state = "skipped";
        reason = *setting ? "该通知已关闭" : "该通知未配置模板";
    } else {
        const template_setting& s = **setting;
        std::string missing;
        for (const auto& f : used_fields(s)) {
            const auto it = values.find(f);
            if (it == values.end() || it->second.find_first_not_of(' ') == std::string::npos) {
                missing += (missing.empty() ? "" : ",") + f;
            }
        }
        if (!missing.empty()) return event_outcome{event_status::missing_fields, missing};
        auto fans = bound_fans(db, clinic, (*patient)->id);
        if (!fans) return fans.error();
        if (fans->empty()) {
            state = "no_recipient";
            reason = "患者没有绑定关注公众号的微信";
        } else {
            state = "queued";
            std::optional<std::string> link;
            if (links) {
                link_request lr;
                lr.clinic = clinic;
                lr.event_id = event_id;
                lr.patient_id = (*patient)->id;
                lr.idempotency_key = e.idempotency_key;
                lr.data = &e.data;
                lr.account_id = fans->front().account_id;
                lr.openid = fans->front().openid;
                auto made = (*links)(db, lr);
                if (!made) return made.error();
                link = std::move(*made);
            }
            std::size_t n = 0;
            for (const auto& fan : *fans) {
                // WeChat sends one message per openid + client_msg_id within 10 minutes: a retry
                // of this very send by the outbox is not shown twice.
                const std::string client_msg_id =
                    "scrm_e" + std::to_string(event_id) + "_" + std::to_string(n++);
                wechat::outbound_message m;
                m.account_id = fan.account_id;
                m.openid = fan.openid;
                m.kind = "template";
                m.api_path = std::string(wechat::template_send_path);
                wechat::template_message msg = render(s, values, fan.openid, client_msg_id);
                if (link) {
                    msg.url = *link;
                    msg.miniprogram.reset();
                }
                m.body = wechat::template_send_body(msg);
                m.origin = "template:" + kind;
                auto outbox_id = wechat::enqueue_on(db, m);
                if (!outbox_id) return outbox_id.error();
                queued.push_back(*outbox_id);
                log_row l = base;
                l.account_id = fan.account_id;
                l.openid = fan.openid;
                l.template_id = s.template_id;
                l.state = "queued";
                l.outbox_id = *outbox_id;
                auto id = insert_log(db, l);
                if (!id) return id.error();
                sends.push_back({*id, fan.account_id, fan.openid});
            }
        }
    }
    if (state != "queued") {
        log_row l = base;
        l.state = state;
        l.reason = reason;
        if (*setting) l.template_id = (*setting)->template_id;
        auto id = insert_log(db, l);
        if (!id) return id.error();
        single_log = *id;
    }
    std::string body = result_json(event_id, state, reason, sends, single_log);
    auto stored =
        db.execute("UPDATE integration_events SET result = ? WHERE id = ?", {body, event_id});
    if (!stored) return stored.error();
    return event_outcome{event_status::accepted, std::move(body)};
}

// A value cut to at most `max` bytes on a UTF-8 character boundary.
std::string cut_bytes(std::string_view s, std::size_t max) {
    if (s.size() <= max) return std::string(s);
    std::size_t n = max;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    return std::string(s.substr(0, n));
}

std::string like_pattern(std::string_view text) {
    std::string out = "%";
    for (char c : text) {
        if (c == '%' || c == '_' || c == '\\') out += '\\';
        out += c;
    }
    return out + "%";
}

const char* to_string(event_status s) noexcept {
    switch (s) {
        case event_status::accepted: return "accepted";
        case event_status::duplicate: return "duplicate";
        case event_status::key_reused: return "key_reused";
        case event_status::unknown_patient: return "unknown_patient";
        case event_status::ambiguous_phone: return "ambiguous_phone";
        case event_status::missing_fields: return "missing_fields";
    }
    return "?";
}

}  // namespace

std::optional<std::string> new_api_key() {
    unsigned char bytes[32];
    if (RAND_bytes(bytes, sizeof bytes) != 1) return std::nullopt;
    return std::string(key_prefix) + to_hex(bytes, sizeof bytes);
}

bool api_key_well_formed(std::string_view key) noexcept {
    if (key.size() != key_prefix.size() + 64 || key.substr(0, key_prefix.size()) != key_prefix) {
        return false;
    }
    const auto hex = key.substr(key_prefix.size());
    return std::all_of(hex.begin(), hex.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string api_key_hash(std::string_view key) {
    return sha256_hex(key);
}

std::string api_key_prefix(std::string_view key) {
    return std::string(key.substr(0, 10));
}

result<std::optional<template_setting>> load_setting(mysql_session& db, std::uint64_t clinic,
                                                     std::string_view kind) {
    auto r = db.query(
        "SELECT template_id, keywords, url, mp_appid, mp_page, enabled FROM template_settings "
        "WHERE clinic_id = ? AND kind = ?",
        {clinic, std::string(kind)});
    if (!r) return r.error();
    if (r->rows.empty()) return std::optional<template_setting>();
    const auto& row = r->rows[0];
    template_setting s;
    s.kind = std::string(kind);
    s.template_id = row[0].value_or("");
    // Stored only after validation: a row that does not parse is treated as having no keywords
    // (the send is then refused by WeChat and logged as failed) rather than guessed at.
    s.keywords =
        parse_keywords_json(row[1].value_or("[]")).value_or(std::vector<keyword_mapping>{});
    s.url = row[2].value_or("");
    s.mp_appid = row[3].value_or("");
    s.mp_page = row[4].value_or("");
    s.enabled = row[5].value_or("0") == "1";
    return std::optional<template_setting>(std::move(s));
}

notifier::notifier(storage::mysql_pool& mysql, wechat::outbox& outbox)
    : mysql_(mysql), outbox_(outbox) {}

awaitable<result<std::optional<api_key_owner>>> notifier::authenticate(std::string key) {
    if (!api_key_well_formed(key)) co_return std::optional<api_key_owner>();
    const std::string hash = api_key_hash(key);
    auto fn = [hash](mysql_session& db) {
        return db.query(
            "SELECT k.id, k.clinic_id FROM api_keys k WHERE k.key_hash = ? AND "
            "k.revoked_at IS NULL",
            {hash});
    };
    auto r = co_await mysql_.run(fn);
    if (!r) co_return r.error();
    if (r->rows.empty()) co_return std::optional<api_key_owner>();
    co_return std::optional<api_key_owner>(
        api_key_owner{storage::sql_u64(r->rows[0][0]), storage::sql_u64(r->rows[0][1])});
}

awaitable<result<event_outcome>> notifier::handle(api_key_owner owner, integration_event event) {
    const std::string request_hash = sha256_hex(canonical(event));
    std::vector<std::uint64_t> queued;
    const auto provider = links_.find(event.kind->name);
    const link_provider* links = provider == links_.end() ? nullptr : &provider->second;
    auto fn = [&owner, &event, &request_hash, links,
               &queued](mysql_session& db) -> result<event_outcome> {
        queued.clear();
        if (auto r = db.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"); !r) {
            return r.error();
        }
        if (auto r = db.begin(); !r) return r.error();
        auto out = apply_event(db, owner, event, request_hash, links, queued);
        if (!out || out->status != event_status::accepted) {
            (void)db.rollback();
            queued.clear();
            return out;
        }
        if (auto r = db.commit(); !r) {
            (void)db.rollback();
            queued.clear();
            return r.error();
        }
        return out;
    };
    auto r = co_await mysql_.run(fn);
    if (!r) co_return r.error();
    if (!queued.empty()) outbox_.wake();
    log::info("templates.event", {{"clinic", owner.clinic},
                                  {"kind", std::string(event.kind->name)},
                                  {"status", to_string(r->status)},
                                  {"queued", static_cast<std::uint64_t>(queued.size())}});
    co_return std::move(*r);
}

awaitable<result<void>> notifier::record_delivery(std::uint64_t account_id, std::string openid,
                                                  std::uint64_t msgid, std::string status) {
    const bool delivered = status == "success";
    const std::string verbatim = cut_bytes(status, 64);
    auto fn = [account_id, msgid, delivered, &verbatim,
               &openid](mysql_session& db) -> result<void> {
        auto r = db.execute(
            "UPDATE template_log l JOIN outbox o ON o.id = l.outbox_id "
            "SET l.delivery = ?, l.delivery_status = ?, "
            "l.delivered_at = COALESCE(l.delivered_at, NOW(3)) "
            "WHERE o.account_id = ? AND o.wx_msgid = ? AND o.kind = 'template'",
            {std::string(delivered ? "delivered" : "refused"), verbatim, account_id, msgid});
        if (!r) return r.error();
        if (*r > 0) return {};
        // WeChat may report before the worker has recorded the msgid of a send it just made: a
        // template send of this fan still 'sending' means "not yet", and the caller tries again.
        auto pending = db.query(
            "SELECT 1 FROM outbox WHERE account_id = ? AND openid = ? AND kind = 'template' AND "
            "state = 'sending' LIMIT 1",
            {account_id, openid});
        if (!pending) return pending.error();
        if (!pending->rows.empty()) return make_error_code(errc::conflict);
        return {};
    };
    auto r = co_await mysql_.run(fn);
    if (!r) co_return r.error();
    co_return result<void>{};
}

void notifier::set_link_provider(std::string kind, link_provider p) {
    links_[std::move(kind)] = std::move(p);
}

awaitable<result<log_page>> notifier::search(log_query q) {
    auto fn = [&q](mysql_session& db) -> result<log_page> {
        std::string where = " WHERE l.clinic_id = ?";
        std::vector<sql_value> p{q.clinic};
        if (!q.patient.empty()) {
            where += " AND l.patient_name LIKE ?";
            p.emplace_back(like_pattern(q.patient));
        }
        if (!q.openid.empty()) {
            where += " AND l.openid = ?";
            p.emplace_back(q.openid);
        }
        if (!q.kind.empty()) {
            where += " AND l.kind = ?";
            p.emplace_back(q.kind);
        }
        if (!q.from.empty()) {
            where += " AND l.created_at >= ?";
            p.emplace_back(q.from);
        }
        if (!q.to.empty()) {
            where += " AND l.created_at < ?";
            p.emplace_back(q.to);
        }
        auto count = db.query("SELECT COUNT(*) FROM template_log l" + where, p);
        if (!count) return count.error();
        log_page page;
        page.total = storage::sql_u64(count->rows[0][0]);
        const std::uint64_t size = std::clamp<std::uint64_t>(q.page_size, 1, 100);
        const std::uint64_t page_no = std::max<std::uint64_t>(q.page, 1);
        p.emplace_back(size);
        p.emplace_back((page_no - 1) * size);
        auto rows = db.query(
            "SELECT l.id, l.event_id, l.kind, l.patient_id, l.patient_name, l.account_id, "
            "l.openid, l.template_id, "
            "CASE WHEN l.state <> 'queued' THEN l.state "
            "WHEN l.delivery IS NOT NULL THEN l.delivery "
            "WHEN o.state IS NULL OR o.state IN ('queued', 'sending') THEN 'queued' "
            "ELSE o.state END, "
            "o.last_errcode, COALESCE(l.reason, o.last_error), l.delivery_status, l.created_at, "
            "l.delivered_at "
            "FROM template_log l LEFT JOIN outbox o ON o.id = l.outbox_id" +
                where + " ORDER BY l.created_at DESC, l.id DESC LIMIT ? OFFSET ?",
            p);
        if (!rows) return rows.error();
        for (const auto& r : rows->rows) {
            log_entry e;
            e.id = storage::sql_u64(r[0]);
            e.event_id = storage::sql_u64(r[1]);
            e.kind = r[2].value_or("");
            if (r[3]) e.patient_id = storage::sql_u64(r[3]);
            e.patient_name = r[4].value_or("");
            if (r[5]) e.account_id = storage::sql_u64(r[5]);
            e.openid = r[6].value_or("");
            e.template_id = r[7].value_or("");
            e.state = r[8].value_or("");
            if (r[9]) {
                int code = 0;
                std::from_chars(r[9]->data(), r[9]->data() + r[9]->size(), code);
                e.errcode = code;
            }
            e.reason = r[10].value_or("");
            e.delivery_status = r[11].value_or("");
            e.created_at = r[12].value_or("");
            e.delivered_at = r[13].value_or("");
            page.entries.push_back(std::move(e));
        }
        return page;
    };
    co_return co_await mysql_.run(fn);
}

}  // namespace scrm::templates

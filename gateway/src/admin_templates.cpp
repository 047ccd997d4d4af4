// scrm-admin template kinds|list|set and apikey add|list|revoke: a clinic's template notification
// settings (table template_settings, validated by templates/setting.hpp before anything is
// stored) and the API keys of its own systems (api_keys: only the key's SHA-256 is stored; `add`
// prints the key once). Changes are written to the audit log in the same transaction.
#include <iostream>

#include "admin_commands.hpp"
#include "scrm/gateway/audit_log.hpp"
#include "scrm/templates/clinic_admin.hpp"
#include "scrm/templates/notifier.hpp"

namespace scrm::gateway {
namespace {

std::string link_text(const templates::template_setting& s) {
    std::string out;
    if (!s.url.empty()) out += "url " + s.url;
    if (!s.mp_appid.empty()) {
        out +=
            std::string(out.empty() ? "" : ", ") + "mini program " + s.mp_appid + " " + s.mp_page;
    }
    return out.empty() ? "none" : out;
}

std::string keywords_text(const templates::template_setting& s) {
    std::string out;
    for (const auto& k : s.keywords) out += (out.empty() ? "" : ", ") + k.keyword + "=" + k.value;
    return out;
}

// The id of the clinic named `name` (locked with `lock`, see find_clinic); nullopt after saying
// why, with the exit status in `code`.
std::optional<std::uint64_t> lookup_clinic(storage::mysql_session& db, const std::string& name,
                                           const char* what, bool lock, int& code) {
    auto clinic = find_clinic(db, name, lock);
    if (!clinic) {
        code = complain(what, "cannot read clinics: " + why(db, clinic.error()), 1);
        return std::nullopt;
    }
    if (!*clinic) {
        code = complain(what, no_such_clinic("--clinic", name), 2);
        return std::nullopt;
    }
    return std::stoull(**clinic);
}

int template_kinds() {
    for (const auto& k : templates::catalog()) {
        std::cout << k.name << "  " << k.label << "\n    fields:";
        for (const auto& f : k.fields) {
            std::cout << " " << f.name << (f.required ? "*" : "") << "(" << f.label << ")";
        }
        std::cout << "\n";
    }
    std::cout << "built-in fields (every kind):";
    for (const auto& f : templates::builtin_fields()) {
        std::cout << " " << f.name << "(" << f.label << ")";
    }
    std::cout << "\n* = every event of the kind carries it\n";
    return 0;
}

int template_list(const config& cfg, const std::vector<std::string>& args) {
    const char* what = "template list";
    std::map<std::string, std::string> o;
    std::string error;
    if (!parse_options(args, 2, {"--clinic"}, {}, o, error)) return complain(what, error, 2);
    if (!o.count("--clinic")) return complain(what, "--clinic is required", 2);
    storage::mysql_session db(mysql_options_from(cfg.mysql));
    int code = 0;
    const auto clinic = lookup_clinic(db, o["--clinic"], what, false, code);
    if (!clinic) return code;
    const std::uint64_t clinic_id = *clinic;
    std::size_t shown = 0;
    for (const auto& k : templates::catalog()) {
        auto s = templates::load_setting(db, clinic_id, k.name);
        if (!s) return complain(what, "cannot read templates: " + why(db, s.error()), 1);
        if (!*s) continue;
        ++shown;
        std::cout << k.name << " (" << k.label << "): " << ((*s)->enabled ? "on" : "off")
                  << ", template " << (*s)->template_id << "\n  keywords: " << keywords_text(**s)
                  << "\n  link: " << link_text(**s) << "\n";
    }
    if (shown == 0)
        std::cout << "no template notifications set for clinic " << quoted(o["--clinic"]) << "\n";
    return 0;
}

int template_set(const config& cfg, const std::vector<std::string>& args) {
    const char* what = "template set";
    std::map<std::string, std::string> o;
    std::string error;
    if (!parse_options(args, 2,
                       {"--clinic", "--kind", "--template-id", "--keywords", "--url",
                        "--miniprogram", "--page", "--enabled"},
                       {"--no-url", "--no-miniprogram"}, o, error)) {
        return complain(what, error, 2);
    }
    for (const char* required : {"--clinic", "--kind"}) {
        if (!o.count(required)) return complain(what, std::string(required) + " is required", 2);
    }
    const std::string kind = o["--kind"];
    if (!templates::find_kind(kind)) {
        return complain(
            what,
            "--kind: unknown kind " + quoted(kind) + " (scrm-admin template kinds lists them)", 2);
    }
    std::vector<std::string> problems;
    if (o.count("--url") && o.count("--no-url")) problems.push_back("--url and --no-url conflict");
    if ((o.count("--miniprogram") || o.count("--page")) && o.count("--no-miniprogram")) {
        problems.push_back("--miniprogram/--page and --no-miniprogram conflict");
    }
    if (o.count("--enabled") && o["--enabled"] != "on" && o["--enabled"] != "off") {
        problems.push_back("--enabled: must be on or off");
    }
    templates::setting_update update;
    if (o.count("--keywords")) {
        update.keywords = templates::parse_keywords_json(o["--keywords"]);
        if (!update.keywords) {
            problems.push_back(
                R"(--keywords: must be JSON {"thing1":"{{doctor}}","time2":"{{appointment_time}}"} )"
                R"(or [{"keyword":"thing1","value":"…"},…])");
        }
    }
    if (o.count("--template-id")) update.template_id = o["--template-id"];
    if (o.count("--url")) update.url = o["--url"];
    if (o.count("--no-url")) update.url = "";
    if (o.count("--miniprogram")) update.mp_appid = o["--miniprogram"];
    if (o.count("--page")) update.mp_page = o["--page"];
    if (o.count("--no-miniprogram")) update.mp_appid = update.mp_page = "";
    if (o.count("--enabled")) update.enabled = o["--enabled"] == "on";
    if (!problems.empty()) {
        std::cerr << "scrm-admin template set: invalid input (nothing changed):\n";
        for (const auto& p : problems) std::cerr << "  " << p << "\n";
        return 2;
    }

    storage::mysql_session db(mysql_options_from(cfg.mysql));
    if (auto r = begin_transaction(db); !r)
        return complain(what, "cannot reach MySQL: " + why(db, r.error()), 1);
    int code = 0;
    const auto clinic = lookup_clinic(db, o["--clinic"], what, true, code);
    if (!clinic) return code;
    const std::uint64_t clinic_id = *clinic;
    auto before = templates::load_setting(db, clinic_id, kind);
    if (!before) return complain(what, "cannot read templates: " + why(db, before.error()), 1);

    // The setting after this command: the stored one (or a new one) with what was given.
    const templates::template_setting s = templates::updated(*before, kind, update);

    const auto found = templates::validate(s);
    if (!found.empty()) {
        std::cerr << "scrm-admin template set: invalid setting (nothing changed):\n";
        for (const auto& p : found) {
            const std::string flag = p.field.rfind("keywords", 0) == 0 ? "--keywords " + p.field
                                     : p.field == "template_id"        ? "--template-id"
                                     : p.field == "mp_appid"           ? "--miniprogram"
                                     : p.field == "mp_page"            ? "--page"
                                     : p.field == "miniprogram"        ? "--miniprogram/--page"
                                                                       : "--" + p.field;
            std::cerr << "  " << flag << ": " << p.en << "\n";
        }
        db.rollback();
        return 2;
    }
    if (*before && **before == s) {
        db.rollback();
        std::cout << "template " << kind << " of clinic " << quoted(o["--clinic"])
                  << " unchanged\n";
        return 0;
    }
    auto stored = templates::store_setting(db, clinic_id, s);
    if (!stored) return complain(what, "cannot store the template: " + why(db, stored.error()), 1);
    audit_entry a;
    a.clinic = clinic_id;
    a.actor = "scrm-admin";
    a.action = "template.set";
    a.subject = kind;
    a.detail_json = std::string("{\"enabled\":") + (s.enabled ? "true" : "false") + "}";
    if (auto r = append_audit(db, a); !r) {
        return complain(what, "cannot write the audit log: " + why(db, r.error()), 1);
    }
    if (auto r = db.commit(); !r) return complain(what, "cannot commit: " + why(db, r.error()), 1);
    std::cout << (*before ? "updated" : "added") << " template " << kind << " of clinic "
              << quoted(o["--clinic"]) << ": " << (s.enabled ? "on" : "off") << ", template "
              << s.template_id << ", keywords " << keywords_text(s) << ", link " << link_text(s)
              << "\n";
    return 0;
}

int apikey_add(const config& cfg, const std::vector<std::string>& args, bool revoke) {
    const char* what = revoke ? "apikey revoke" : "apikey add";
    std::map<std::string, std::string> o;
    std::string error;
    if (!parse_options(args, 2, {"--clinic", "--name"}, {}, o, error)) {
        return complain(what, error, 2);
    }
    for (const char* required : {"--clinic", "--name"}) {
        if (!o.count(required)) return complain(what, std::string(required) + " is required", 2);
    }
    if (auto p = name_problem("--name", o["--name"], 64)) return complain(what, *p, 2);
    storage::mysql_session db(mysql_options_from(cfg.mysql));
    if (auto r = begin_transaction(db); !r)
        return complain(what, "cannot reach MySQL: " + why(db, r.error()), 1);
    int code = 0;
    const auto clinic = lookup_clinic(db, o["--clinic"], what, true, code);
    if (!clinic) return code;
    const std::uint64_t clinic_id = *clinic;
    auto existing = templates::find_api_key(db, clinic_id, o["--name"], true);
    if (!existing) return complain(what, "cannot read API keys: " + why(db, existing.error()), 1);
    audit_entry a;
    a.clinic = clinic_id;
    a.actor = "scrm-admin";
    a.subject = o["--name"];
    if (revoke) {
        if (!*existing) {
            return complain(what,
                            "--name: clinic " + quoted(o["--clinic"]) + " has no API key named " +
                                quoted(o["--name"]),
                            2);
        }
        a.subject = (*existing)->name;
        auto r = templates::revoke_api_key(db, clinic_id, (*existing)->id);
        if (!r) return complain(what, "cannot revoke: " + why(db, r.error()), 1);
        if (!*r) {
            std::cout << "API key " << quoted(a.subject) << " was revoked already\n";
            return 0;
        }
        a.action = "apikey.revoke";
    } else {
        if (*existing) {
            std::cout << "API key " << quoted((*existing)->name) << " exists already ("
                      << (*existing)->prefix << "…" << ((*existing)->revoked_at ? ", revoked" : "")
                      << "); nothing changed. Keys are shown only when added: revoke it and add "
                         "one under another name to replace it.\n";
            return 0;
        }
        auto added = templates::add_api_key(db, clinic_id, o["--name"]);
        if (!added) return complain(what, "cannot store the key: " + why(db, added.error()), 1);
        a.action = "apikey.add";
        if (auto w = append_audit(db, a); !w) {
            return complain(what, "cannot write the audit log: " + why(db, w.error()), 1);
        }
        if (auto c = db.commit(); !c)
            return complain(what, "cannot commit: " + why(db, c.error()), 1);
        std::cerr << "added API key " << quoted(o["--name"]) << " for clinic "
                  << quoted(o["--clinic"])
                  << ". It is shown only now: give it to the clinic's system "
                     "(Authorization: Bearer <key>).\n";
        std::cout << added->key << "\n";
        return 0;
    }
    if (auto w = append_audit(db, a); !w) {
        return complain(what, "cannot write the audit log: " + why(db, w.error()), 1);
    }
    if (auto c = db.commit(); !c) return complain(what, "cannot commit: " + why(db, c.error()), 1);
    std::cout << "revoked API key " << quoted(a.subject) << "\n";
    return 0;
}

int apikey_list(const config& cfg, const std::vector<std::string>& args) {
    const char* what = "apikey list";
    std::map<std::string, std::string> o;
    std::string error;
    if (!parse_options(args, 2, {"--clinic"}, {}, o, error)) return complain(what, error, 2);
    if (!o.count("--clinic")) return complain(what, "--clinic is required", 2);
    storage::mysql_session db(mysql_options_from(cfg.mysql));
    int code = 0;
    const auto clinic = lookup_clinic(db, o["--clinic"], what, false, code);
    if (!clinic) return code;
    auto rows = templates::list_api_keys(db, *clinic);
    if (!rows) return complain(what, "cannot read API keys: " + why(db, rows.error()), 1);
    for (const auto& k : *rows) {
        std::cout << k.name << "  " << k.prefix << "…  added " << k.created_at << " UTC"
                  << (k.revoked_at ? "  revoked " + *k.revoked_at + " UTC" : std::string()) << "\n";
    }
    if (rows->empty()) std::cout << "no API keys for clinic " << quoted(o["--clinic"]) << "\n";
    return 0;
}

}  // namespace

int cmd_template(const config& cfg, const std::vector<std::string>& args) {
    const std::string sub = args.size() > 1 ? args[1] : "";
    if (sub == "kinds") return template_kinds();
    if (sub == "list") return template_list(cfg, args);
    if (sub == "set") return template_set(cfg, args);
    return complain("template", "expected kinds, list --clinic NAME or set --clinic NAME …", 2);
}

int cmd_apikey(const config& cfg, const std::vector<std::string>& args) {
    const std::string sub = args.size() > 1 ? args[1] : "";
    if (sub == "add") return apikey_add(cfg, args, false);
    if (sub == "revoke") return apikey_add(cfg, args, true);
    if (sub == "list") return apikey_list(cfg, args);
    return complain("apikey", "expected add, list or revoke --clinic NAME …", 2);
}

}  // namespace scrm::gateway

// scrm-admin template and apikey against the real MariaDB, running the real binary: settings
// stored only when valid (every bad value refused with its message, exit 2, nothing changed),
// re-runs idempotent, changes audited; API keys printed once, stored as SHA-256 only, listed
// without the key, revoked.
#include <catch2/catch.hpp>

#include <regex>

#include "child_process.hpp"
#include "clinic_fixture.hpp"
#include "scrm/templates/notifier.hpp"
#include "test_env.hpp"

using namespace scrm;
using namespace scrm::test;
using namespace std::chrono_literals;

namespace {

const std::string admin_bin = SCRM_ADMIN_BIN;

struct run_result {
    int code;
    std::string output;  // stdout and stderr
};

run_result admin(const std::vector<std::string>& args) {
    std::vector<std::string> argv{admin_bin, "--config", services_config_path().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto log = std::filesystem::temp_directory_path() / (unique_name("scrm_admin") + ".out");
    child_process p(std::move(argv), log, {});
    const auto code = p.wait(60s);
    REQUIRE(code.has_value());
    run_result r{*code, p.output()};
    std::filesystem::remove(log);
    UNSCOPED_INFO("scrm-admin exited " << r.code << ", output:\n" << r.output);
    return r;
}

// Removes this suite's rows before the fixture removes the clinic they refer to.
struct cleanup {
    clinic_fixture& c;
    ~cleanup() {
        c.execute("DELETE FROM template_settings WHERE clinic_id = ?", {c.clinic});
        c.execute("DELETE FROM api_keys WHERE clinic_id = ?", {c.clinic});
    }
};

const std::string keywords =
    R"({"time1":"{{appointment_time}}","thing2":"{{doctor}} {{store}}","name3":"{{patient_name}}"})";

}  // namespace

TEST_CASE("scrm-admin template set stores valid settings once and audits them") {
    clinic_fixture c;
    cleanup tidy{c};
    const auto row = [&c] {
        return c.value(
            "SELECT CONCAT_WS('|', template_id, keywords, IFNULL(url, '-'), enabled) FROM "
            "template_settings WHERE clinic_id = ? AND kind = 'appointment_created'",
            {c.clinic});
    };
    const std::vector<std::string> base{"template", "set",    "--clinic",
                                        c.name,     "--kind", "appointment_created"};
    auto with = [&base](std::vector<std::string> more) {
        auto args = base;
        args.insert(args.end(), more.begin(), more.end());
        return args;
    };

    // A new setting needs a template id and keywords.
    const auto incomplete = admin(with({"--keywords", keywords}));
    CHECK(incomplete.code == 2);
    CHECK(has(incomplete.output, "--template-id"));
    CHECK(c.value("SELECT COUNT(*) FROM template_settings WHERE clinic_id = ?", {c.clinic}) == "0");

    const auto added = admin(with({"--template-id", "TPL-1", "--keywords", keywords, "--url",
                                   "https://c.example/a?id={{appointment_id}}"}));
    REQUIRE(added.code == 0);
    CHECK(has(added.output, "added template appointment_created"));
    CHECK(
        row() ==
        R"(TPL-1|[{"keyword":"time1","value":"{{appointment_time}}"},{"keyword":"thing2","value":"{{doctor}} {{store}}"},{"keyword":"name3","value":"{{patient_name}}"}]|https://c.example/a?id={{appointment_id}}|1)");
    const std::string stored = row();

    const auto again = admin(with({"--template-id", "TPL-1", "--keywords", keywords}));
    CHECK(again.code == 0);
    CHECK(has(again.output, "unchanged"));
    CHECK(row() == stored);

    const auto off = admin(with({"--enabled", "off"}));
    CHECK(off.code == 0);
    CHECK(has(off.output, "updated template appointment_created"));
    CHECK(row() == stored.substr(0, stored.size() - 1) + "0");
    CHECK(c.value("SELECT COUNT(*) FROM audit_log WHERE clinic_id = ? AND action = 'template.set' "
                  "AND actor = 'scrm-admin'",
                  {c.clinic}) == "2");

    const auto listed = admin({"template", "list", "--clinic", c.name});
    CHECK(listed.code == 0);
    CHECK(has(listed.output, "appointment_created (预约创建提醒): off, template TPL-1"));
    CHECK(has(listed.output, "thing2={{doctor}} {{store}}"));

    const auto kinds = admin({"template", "kinds"});
    CHECK(kinds.code == 0);
    CHECK(has(kinds.output, "evaluation_invitation"));
    CHECK(has(kinds.output, "reply_waiting"));
}

TEST_CASE("scrm-admin template set refuses bad values and changes nothing") {
    clinic_fixture c;
    cleanup tidy{c};
    REQUIRE(admin({"template", "set", "--clinic", c.name, "--kind", "appointment_created",
                   "--template-id", "TPL-1", "--keywords", keywords})
                .code == 0);
    const auto snapshot = [&c] {
        return c.value(
            "SELECT CONCAT_WS('|', template_id, keywords, IFNULL(url, '-'), "
            "IFNULL(mp_appid, '-'), enabled) FROM template_settings WHERE clinic_id = ?",
            {c.clinic});
    };
    const std::string before = snapshot();
    struct row {
        std::string name;
        std::vector<std::string> args;
        std::string message;
    };
    auto r = GENERATE(values<row>({
        {"first", {"--keywords", R"({"first":"x"})"}, "first is ignored by WeChat"},
        {"remark", {"--keywords", R"({"time1":"x","remark":"y"})"}, "remark is ignored"},
        {"not a keyword", {"--keywords", R"({"title":"x"})"}, "is not a template keyword"},
        {"placeholder of another kind",
         {"--keywords", R"({"amount1":"{{amount}}"})"},
         "{{amount}} is not a field of appointment_created"},
        {"fixed text too long",
         {"--keywords", R"({"thing1":"一二三四五六七八九十一二三四五六七八九十一"})"},
         "WeChat cuts thing keywords after 20"},
        {"not JSON", {"--keywords", "thing1=x"}, "--keywords: must be JSON"},
        {"url", {"--url", "javascript:alert(1)"}, "--url: must be an http:// or https:// URL"},
        {"mini program without page",
         {"--miniprogram", "wx0123456789abcdef"},
         "give both the mini program's appid and its page"},
        {"bad appid", {"--miniprogram", "wxNOPE", "--page", "pages/a"}, "--miniprogram: must be"},
        {"enabled", {"--enabled", "yes"}, "--enabled: must be on or off"},
        {"template id", {"--template-id", "a b"}, "--template-id: must be"},
        {"conflict", {"--url", "https://a", "--no-url"}, "conflict"},
    }));
    CAPTURE(r.name);
    std::vector<std::string> args{"template", "set",    "--clinic",
                                  c.name,     "--kind", "appointment_created"};
    args.insert(args.end(), r.args.begin(), r.args.end());
    const auto out = admin(args);
    CHECK(out.code == 2);
    CHECK(has(out.output, r.message));
    CHECK(has(out.output, "nothing changed"));
    CHECK(snapshot() == before);

    const auto unknown = admin({"template", "set", "--clinic", c.name, "--kind", "birthday"});
    CHECK(unknown.code == 2);
    CHECK(has(unknown.output, "unknown kind"));
    const auto nobody = admin({"template", "set", "--clinic", unique_name("no clinic"), "--kind",
                               "appointment_created", "--enabled", "on"});
    CHECK(nobody.code == 2);
    CHECK(has(nobody.output, "no clinic named"));
}

TEST_CASE("scrm-admin apikey add prints the key once and stores only its hash") {
    clinic_fixture c;
    cleanup tidy{c};
    const auto added = admin({"apikey", "add", "--clinic", c.name, "--name", "PMS 系统"});
    REQUIRE(added.code == 0);
    std::smatch m;
    REQUIRE(std::regex_search(added.output, m, std::regex("sk_[0-9a-f]{64}")));
    const std::string key = m.str();
    CHECK(c.value("SELECT key_hash FROM api_keys WHERE clinic_id = ? AND name = 'PMS 系统'",
                  {c.clinic}) == templates::api_key_hash(key));
    CHECK(c.value("SELECT prefix FROM api_keys WHERE clinic_id = ?", {c.clinic}) ==
          key.substr(0, 10));
    CHECK(c.value("SELECT COUNT(*) FROM api_keys WHERE key_hash = ?", {key}) == "0");
    CHECK(c.value("SELECT COUNT(*) FROM audit_log WHERE clinic_id = ? AND action = 'apikey.add'",
                  {c.clinic}) == "1");

    const auto again = admin({"apikey", "add", "--clinic", c.name, "--name", "PMS 系统"});
    CHECK(again.code == 0);
    CHECK(has(again.output, "exists already"));
    CHECK_FALSE(std::regex_search(again.output, std::regex("sk_[0-9a-f]{64}")));
    CHECK(c.value("SELECT COUNT(*) FROM api_keys WHERE clinic_id = ?", {c.clinic}) == "1");

    const auto listed = admin({"apikey", "list", "--clinic", c.name});
    CHECK(listed.code == 0);
    CHECK(has(listed.output, "PMS 系统"));
    CHECK(has(listed.output, key.substr(0, 10)));
    CHECK_FALSE(has(listed.output, key));

    const auto revoked = admin({"apikey", "revoke", "--clinic", c.name, "--name", "PMS 系统"});
    CHECK(revoked.code == 0);
    CHECK(c.value("SELECT revoked_at IS NOT NULL FROM api_keys WHERE clinic_id = ?", {c.clinic}) ==
          "1");
    CHECK(has(admin({"apikey", "revoke", "--clinic", c.name, "--name", "PMS 系统"}).output,
              "revoked already"));

    CHECK(admin({"apikey", "revoke", "--clinic", c.name, "--name", "nope"}).code == 2);
    CHECK(admin({"apikey", "add", "--clinic", c.name, "--name", " padded"}).code == 2);
    CHECK(admin({"apikey", "add", "--clinic", c.name}).code == 2);
    CHECK(c.value("SELECT COUNT(*) FROM api_keys WHERE clinic_id = ?", {c.clinic}) == "1");
}

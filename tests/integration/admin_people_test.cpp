// scrm-admin clinic, store, agent, fan set-owner and routing against the real MariaDB, running the
// real binary: each success checked in MySQL, idempotent re-runs, every bad value refused with its
// message (exit 2) and nothing stored, passwords stored hashed and never printed.
#include <catch2/catch.hpp>

#include "child_process.hpp"
#include "clinic_fixture.hpp"
#include "scrm/gateway/audit_log.hpp"
#include "scrm/gateway/password.hpp"
#include "scrm/gateway/services.hpp"
#include "scrm/storage/mysql.hpp"
#include "test_env.hpp"

using namespace scrm;
using namespace scrm::test;
using namespace std::chrono_literals;

namespace {

const std::string admin_bin = SCRM_ADMIN_BIN;

struct run_result {
    int code;
    std::string output;
};

run_result run(std::vector<std::string> argv, std::vector<std::string> env) {
    const auto log = std::filesystem::temp_directory_path() / (unique_name("scrm_admin") + ".out");
    child_process p(std::move(argv), log, std::move(env));
    const auto code = p.wait(60s);
    REQUIRE(code.has_value());
    run_result r{*code, p.output()};
    std::filesystem::remove(log);
    // Shown with the next failed assertion: what the command said.
    UNSCOPED_INFO("scrm-admin exited " << r.code << ", output:\n" << r.output);
    return r;
}

run_result admin(const std::vector<std::string>& args, std::vector<std::string> env = {}) {
    std::vector<std::string> argv{admin_bin, "--config", services_config_path().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(std::move(argv), std::move(env));
}

// The same with `stdin_text` piped to the binary's standard input (through /bin/sh).
run_result admin_with_stdin(const std::vector<std::string>& args, const std::string& stdin_text) {
    std::vector<std::string> argv{"/bin/sh",
                                  "-c",
                                  "printf '%s\\n' \"$ADMIN_STDIN\" | \"$@\"",
                                  "sh",
                                  admin_bin,
                                  "--config",
                                  services_config_path().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(std::move(argv), {"ADMIN_STDIN=" + stdin_text});
}

storage::mysql_session& db() {
    static storage::mysql_session session(gateway::mysql_options_from(services_config().mysql));
    return session;
}

std::vector<std::vector<std::optional<std::string>>> rows(
    const std::string& sql, const std::vector<storage::sql_value>& p) {
    auto r = db().query(sql, p);
    REQUIRE(r.has_value());
    return r->rows;
}

std::string scalar(const std::string& sql, const std::vector<storage::sql_value>& p) {
    const auto r = rows(sql, p);
    REQUIRE(r.size() == 1);
    REQUIRE(r[0][0].has_value());
    return *r[0][0];
}

// The fan's exclusive agent as routing's live state in Redis holds it ("" for none), read with
// redis-cli over TCP.
std::string live_exclusive(const std::string& clinic_id, const std::string& openid) {
    const auto& r = services_config().redis;
    std::vector<std::string> argv{"/usr/bin/redis-cli", "-h", r.host, "-p", std::to_string(r.port)};
    if (!r.password.empty()) argv.insert(argv.end(), {"-a", r.password, "--no-auth-warning"});
    argv.insert(argv.end(), {"HGET", "scrm:{c" + clinic_id + "}:fan:" + openid, "exclusive"});
    auto out = run(std::move(argv), {});
    REQUIRE(out.code == 0);
    while (!out.output.empty() && out.output.back() == '\n') out.output.pop_back();
    return out.output;
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// Every test case runs in its own process (catch_discover_tests): migrate once per process
// (concurrent runs are serialised by the migration lock).
void migrated() {
    static const int code = admin({"migrate"}).code;
    REQUIRE(code == 0);
}

// A clinic made for one test, with everything hanging off it removed at the end.
struct test_clinic {
    std::string name;
    explicit test_clinic(const std::string& prefix) : name(unique_name(prefix)) { migrated(); }
    // With this exact name: a table test re-enters its body once per row, and the rows (made on
    // the first entry) name the clinic, so it must be the same on every entry.
    struct exact_name {};
    test_clinic(const std::string& exact, exact_name) : name(exact) { migrated(); }
    ~test_clinic() {
        const std::string id = "(SELECT id FROM clinics WHERE name = ?)";
        const std::vector<std::string> deletes = {
            "DELETE FROM fans WHERE account_id IN (SELECT id FROM official_accounts WHERE "
            "clinic_id = " +
                id + ")",
            "DELETE FROM clinic_routing WHERE clinic_id = " + id,
            "DELETE FROM agents WHERE clinic_id = " + id,
            "DELETE FROM stores WHERE clinic_id = " + id,
            "DELETE FROM official_accounts WHERE clinic_id = " + id,
            "DELETE FROM clinics WHERE name = ?"};
        for (const auto& sql : deletes) (void)db().execute(sql, {name});
    }
    test_clinic(const test_clinic&) = delete;
    test_clinic& operator=(const test_clinic&) = delete;
    std::string id() const { return scalar("SELECT id FROM clinics WHERE name = ?", {name}); }
};

const std::string password1 = "Secret-pass-1";
const std::string password2 = "Another-pass-2";

std::string agent_hash(const test_clinic& c, const std::string& agent) {
    return scalar("SELECT password_hash FROM agents WHERE clinic_id = ? AND name = ?",
                  {c.id(), agent});
}

}  // namespace

TEST_CASE("clinic add is idempotent and clinic list shows the clinic") {
    test_clinic c("诊所");
    auto r = admin({"clinic", "add", "--name", c.name});
    CHECK(r.code == 0);
    CHECK(contains(r.output, "added clinic \"" + c.name + "\""));
    CHECK(scalar("SELECT COUNT(*) FROM clinics WHERE name = ?", {c.name}) == "1");

    r = admin({"clinic", "add", "--name", c.name});
    CHECK(r.code == 0);
    CHECK(contains(r.output, "clinic \"" + c.name + "\" already exists (id " + c.id() + ")"));
    CHECK(scalar("SELECT COUNT(*) FROM clinics WHERE name = ?", {c.name}) == "1");

    r = admin({"clinic", "list"});
    CHECK(r.code == 0);
    CHECK(contains(r.output, c.id() + "\t" + c.name + "\t0\t0\t0\n"));
}

TEST_CASE("clinic and store add refuse bad names and store nothing") {
    struct row {
        std::string name;
        std::vector<std::string> args;
        std::string expected;
    };
    migrated();
    const std::string fresh = unique_name("never stored");
    auto [name, args, expected] = GENERATE_COPY(values<row>({
        {"clinic name empty",
         {"clinic", "add", "--name", ""},
         "scrm-admin clinic add: --name: must be 1-128 characters of UTF-8 text, without control "
         "characters or leading/trailing spaces\n"},
        {"clinic name too long",
         {"clinic", "add", "--name", std::string(129, 'x')},
         "scrm-admin clinic add: --name: must be 1-128"},
        {"clinic name control",
         {"clinic", "add", "--name", fresh + "\t"},
         "scrm-admin clinic add: --name: must be 1-128"},
        {"clinic name trailing space",
         {"clinic", "add", "--name", fresh + " "},
         "scrm-admin clinic add: --name: must be 1-128"},
        {"clinic name bad utf8",
         {"clinic", "add", "--name", fresh + "\xC3"},
         "scrm-admin clinic add: --name: must be 1-128"},
        {"clinic without name", {"clinic", "add"}, "scrm-admin clinic add: --name is required\n"},
        {"clinic name twice",
         {"clinic", "add", "--name", fresh, "--name", fresh},
         "scrm-admin clinic add: --name given twice\n"},
        {"store of unknown clinic",
         {"store", "add", "--clinic", fresh, "--name", "s"},
         "scrm-admin store add: --clinic: no clinic named \"" + fresh +
             "\" (add it with: scrm-admin clinic add --name \"" + fresh + "\")\n"},
        {"unknown option",
         {"clinic", "add", "--name", fresh, "--color", "red"},
         "scrm-admin clinic add: unexpected argument --color\n"},
    }));
    CAPTURE(name);
    const auto r = admin(args);
    CHECK(r.code == 2);
    CHECK(contains(r.output, expected));
    CHECK(scalar("SELECT COUNT(*) FROM clinics WHERE name LIKE ?", {fresh + "%"}) == "0");
}

TEST_CASE("store add is idempotent per clinic and store list shows the stores") {
    test_clinic c("clinic_s");
    test_clinic other("clinic_o");
    REQUIRE(admin({"clinic", "add", "--name", c.name}).code == 0);
    REQUIRE(admin({"clinic", "add", "--name", other.name}).code == 0);

    auto r = admin({"store", "add", "--clinic", c.name, "--name", "东门店"});
    CHECK(r.code == 0);
    CHECK(contains(r.output, "added store \"东门店\" to clinic \"" + c.name + "\""));
    r = admin({"store", "add", "--clinic", c.name, "--name", "东门店"});
    CHECK(r.code == 0);
    CHECK(contains(r.output, "store \"东门店\" of clinic \"" + c.name + "\" already exists"));
    // The same name in another clinic is another store.
    r = admin({"store", "add", "--clinic", other.name, "--name", "东门店"});
    CHECK(r.code == 0);
    CHECK(contains(r.output, "added store"));
    CHECK(scalar("SELECT COUNT(*) FROM stores WHERE clinic_id = ?", {c.id()}) == "1");
    CHECK(scalar("SELECT COUNT(*) FROM stores WHERE clinic_id = ?", {other.id()}) == "1");

    r = admin({"store", "list", "--clinic", c.name});
    CHECK(r.code == 0);
    const std::string store_id =
        scalar("SELECT id FROM stores WHERE clinic_id = ? AND name = ?", {c.id(), "东门店"});
    CHECK(contains(r.output, store_id + "\t东门店\t0\n"));

    r = admin({"store", "add", "--clinic", c.name, "--name", ""});
    CHECK(r.code == 2);
    CHECK(contains(r.output, "scrm-admin store add: --name: must be 1-128"));
    CHECK(scalar("SELECT COUNT(*) FROM stores WHERE clinic_id = ?", {c.id()}) == "1");
}

TEST_CASE("agent add hashes the password, never prints it and reports what it changed") {
    test_clinic c("clinic_a");
    REQUIRE(admin({"clinic", "add", "--name", c.name}).code == 0);
    REQUIRE(admin({"store", "add", "--clinic", c.name, "--name", "North"}).code == 0);
    const std::vector<std::string> base{"agent", "add", "--clinic", c.name, "--name", "王医生"};

    auto args = base;
    args.insert(args.end(), {"--role", "service", "--password", password1});
    auto r = admin(args);
    CHECK(r.code == 0);
    CHECK(contains(r.output, "added agent \"王医生\" to clinic \"" + c.name +
                                 "\": role service, store (none), online consultation yes\n"));
    CHECK_FALSE(contains(r.output, password1));
    auto hash = agent_hash(c, "王医生");
    CHECK(hash.rfind("pbkdf2-sha256$", 0) == 0);
    CHECK_FALSE(contains(hash, password1));
    CHECK(gateway::verify_password(password1, hash));
    CHECK(rows("SELECT role, store_id, can_receive, active FROM agents WHERE clinic_id = ? AND "
               "name = ?",
               {c.id(), "王医生"})[0] ==
          std::vector<std::optional<std::string>>{"service", std::nullopt, "1", "1"});

    // The same again: nothing changes, the hash is kept.
    r = admin(args);
    CHECK(r.code == 0);
    CHECK(contains(r.output, "agent \"王医生\" of clinic \"" + c.name + "\" unchanged\n"));
    CHECK(agent_hash(c, "王医生") == hash);

    // Role, store and permission as given; no password given: the password stays.
    args = base;
    args.insert(args.end(), {"--role", "consultant", "--store", "North", "--no-consultation"});
    r = admin(args);
    CHECK(r.code == 0);
    CHECK(contains(r.output, "updated agent \"王医生\" of clinic \"" + c.name +
                                 "\": role service -> consultant, store (none) -> \"North\", "
                                 "online consultation yes -> no\n"));
    const std::string north =
        scalar("SELECT id FROM stores WHERE clinic_id = ? AND name = 'North'", {c.id()});
    CHECK(rows("SELECT role, store_id, can_receive FROM agents WHERE clinic_id = ? AND name = ?",
               {c.id(), "王医生"})[0] ==
          std::vector<std::optional<std::string>>{"consultant", north, "0"});
    CHECK(agent_hash(c, "王医生") == hash);

    // A new password from SCRM_AGENT_PASSWORD.
    r = admin(args, {"SCRM_AGENT_PASSWORD=" + password2});
    CHECK(r.code == 0);
    CHECK(contains(r.output, "\": password changed\n"));
    CHECK_FALSE(contains(r.output, password2));
    hash = agent_hash(c, "王医生");
    CHECK(gateway::verify_password(password2, hash));
    CHECK_FALSE(gateway::verify_password(password1, hash));

    // And back from stdin (one trailing line break is not part of it).
    args.emplace_back("--password-stdin");
    r = admin_with_stdin(args, password1);
    CHECK(r.code == 0);
    CHECK(contains(r.output, "\": password changed\n"));
    CHECK_FALSE(contains(r.output, password1));
    CHECK(gateway::verify_password(password1, agent_hash(c, "王医生")));

    r = admin({"agent", "list", "--clinic", c.name});
    CHECK(r.code == 0);
    const std::string id =
        scalar("SELECT id FROM agents WHERE clinic_id = ? AND name = ?", {c.id(), "王医生"});
    CHECK(contains(r.output, "id\tname\trole\tstore\tonline_consultation\tactive\n" + id +
                                 "\t王医生\tconsultant\tNorth\tno\tyes\n"));
    CHECK_FALSE(contains(r.output, "pbkdf2"));

    // Deactivate (twice: the second says so), then add again reactivates.
    r = admin({"agent", "deactivate", "--clinic", c.name, "--name", "王医生"});
    CHECK(r.code == 0);
    CHECK(contains(r.output, "deactivated agent \"王医生\" of clinic \"" + c.name + "\"\n"));
    CHECK(scalar("SELECT active FROM agents WHERE id = ?", {id}) == "0");
    r = admin({"agent", "deactivate", "--clinic", c.name, "--name", "王医生"});
    CHECK(r.code == 0);
    CHECK(contains(r.output, "is already deactivated"));
    r = admin({"agent", "list", "--clinic", c.name});
    CHECK(contains(r.output, "\t王医生\tconsultant\tNorth\tno\tno\n"));
    r = admin({"agent", "add", "--clinic", c.name, "--name", "王医生", "--role", "consultant",
               "--store", "North", "--no-consultation"});
    CHECK(r.code == 0);
    CHECK(contains(r.output, "\": reactivated\n"));
    CHECK(scalar("SELECT active FROM agents WHERE id = ?", {id}) == "1");
    r = admin({"agent", "deactivate", "--clinic", c.name, "--name", "nobody"});
    CHECK(r.code == 2);
    CHECK(contains(r.output,
                   "scrm-admin agent deactivate: --name: no agent named \"nobody\" in "
                   "clinic \"" +
                       c.name + "\"\n"));
}

TEST_CASE("agent add refuses bad values, naming the field and the rule, and stores nothing") {
    static const std::string names[] = {unique_name("clinic_b"), unique_name("clinic_c")};
    test_clinic c(names[0], test_clinic::exact_name{});
    test_clinic other(names[1], test_clinic::exact_name{});
    REQUIRE(admin({"clinic", "add", "--name", c.name}).code == 0);
    REQUIRE(admin({"clinic", "add", "--name", other.name}).code == 0);
    REQUIRE(admin({"store", "add", "--clinic", other.name, "--name", "Elsewhere"}).code == 0);
    struct row {
        std::string name;
        std::vector<std::string> extra;  // replaces or adds to the valid arguments
        std::string expected;
    };
    const std::string missing_clinic = unique_name("no such clinic");
    const std::string cname = c.name;  // GENERATE_COPY copies what the table uses
    auto [name, extra, expected] = GENERATE_COPY(values<row>({
        {"bad role",
         {"--role", "boss"},
         "scrm-admin agent add: --role: must be one of admin, front_desk, consultant, service\n"},
        {"short password",
         {"--password", "short"},
         "scrm-admin agent add: --password: must be 8-128 bytes\n"},
        {"long password",
         {"--password", std::string(129, 'p')},
         "scrm-admin agent add: --password: must be 8-128 bytes\n"},
        {"no password",
         {"--password", ""},
         "scrm-admin agent add: --password: must be 8-128 bytes\n"},
        {"empty name", {"--name", ""}, "scrm-admin agent add: --name: must be 1-64 characters"},
        {"long name",
         {"--name", std::string(65, 'n')},
         "scrm-admin agent add: --name: must be 1-64 characters"},
        {"store of another clinic",
         {"--store", "Elsewhere"},
         "scrm-admin agent add: --store: no store named \"Elsewhere\" in clinic \"" + cname +
             "\" (add it with: scrm-admin store add --clinic \"" + cname +
             "\" --name \"Elsewhere\")\n"},
        {"unknown clinic",
         {"--clinic", missing_clinic},
         "scrm-admin agent add: --clinic: no clinic named \"" + missing_clinic + "\""},
        {"two password sources",
         {"--password-stdin"},
         "scrm-admin agent add: --password and --password-stdin exclude each other: give the "
         "password one way\n"},
    }));
    CAPTURE(name);
    std::vector<std::string> args{"agent", "add",    "--clinic",   c.name,       "--name",
                                  "Alice", "--role", "front_desk", "--password", password1};
    for (std::size_t i = 0; i < extra.size(); ++i) {
        const auto it = std::find(args.begin(), args.end(), extra[i]);
        const bool has_value = i + 1 < extra.size();
        if (it != args.end() && has_value) {
            *(it + 1) = extra[i + 1];
        } else {
            args.push_back(extra[i]);
            if (has_value) args.push_back(extra[i + 1]);
        }
        if (has_value) ++i;
    }
    const auto r = admin(args);
    CHECK(r.code == 2);
    CHECK(contains(r.output, expected));
    CHECK_FALSE(contains(r.output, password1));
    CHECK(scalar("SELECT COUNT(*) FROM agents WHERE clinic_id IN (?, ?)", {c.id(), other.id()}) ==
          "0");
}

TEST_CASE("agent add without any password for a new agent, or a bad one from the environment") {
    test_clinic c("clinic_p");
    REQUIRE(admin({"clinic", "add", "--name", c.name}).code == 0);
    const std::vector<std::string> args{"agent",  "add", "--clinic", c.name,
                                        "--name", "Bob", "--role",   "admin"};
    auto r = admin(args);
    CHECK(r.code == 2);
    CHECK(contains(r.output,
                   "scrm-admin agent add: --password: a new agent needs a password "
                   "(--password, --password-stdin or SCRM_AGENT_PASSWORD)\n"));
    r = admin(args, {"SCRM_AGENT_PASSWORD=1234567"});
    CHECK(r.code == 2);
    CHECK(contains(r.output, "scrm-admin agent add: SCRM_AGENT_PASSWORD: must be 8-128 bytes\n"));
    CHECK_FALSE(contains(r.output, "1234567"));
    auto stdin_args = args;
    stdin_args.emplace_back("--password-stdin");
    r = admin_with_stdin(stdin_args, "");
    CHECK(r.code == 2);
    CHECK(contains(r.output, "scrm-admin agent add: --password-stdin: must be 8-128 bytes\n"));
    CHECK(scalar("SELECT COUNT(*) FROM agents WHERE clinic_id = ?", {c.id()}) == "0");

    // An update may leave the password out; a bad one is still refused with nothing changed.
    r = admin(args, {"SCRM_AGENT_PASSWORD=" + password1});
    CHECK(r.code == 0);
    const auto hash = agent_hash(c, "Bob");
    auto update = args;
    update[7] = "service";
    update.insert(update.end(), {"--password", "short"});
    r = admin(update);
    CHECK(r.code == 2);
    CHECK(scalar("SELECT role FROM agents WHERE clinic_id = ? AND name = 'Bob'", {c.id()}) ==
          "admin");
    CHECK(agent_hash(c, "Bob") == hash);
}

namespace {

const std::string master_key = "SCRM_MASTER_KEY=" + std::string(64, 'c');

// A unique, valid appid: "wx" + 16 alphanumerics.
std::string make_appid() {
    static unsigned counter = 0;
    std::string tail = std::to_string(::getpid()) + "p" + std::to_string(counter++);
    while (tail.size() < 16) tail += "0";
    return "wx" + tail.substr(0, 16);
}

// An official account of clinic `c` (account add creates the clinic if needed).
std::string add_account(const test_clinic& c, const std::string& appid = make_appid()) {
    const auto r = admin({"account", "add", "--clinic", c.name, "--appid", appid, "--original-id",
                          "gh_0123456789ab", "--token", "token1", "--aes-key", std::string(43, 'k'),
                          "--secret", "0123456789abcdef0123456789abcdef"},
                         {master_key});
    REQUIRE(r.code == 0);
    return appid;
}

void add_agent(const test_clinic& c, const std::string& name, const std::string& store = "") {
    std::vector<std::string> args{"agent", "add",    "--clinic",   c.name,       "--name",
                                  name,    "--role", "consultant", "--password", password1};
    if (!store.empty()) args.insert(args.end(), {"--store", store});
    REQUIRE(admin(args).code == 0);
}

std::vector<std::optional<std::string>> owners(const std::string& appid,
                                               const std::string& openid) {
    const auto r = rows(
        "SELECT ca.name, ea.name, s.name FROM fans f "
        "JOIN official_accounts a ON a.id = f.account_id "
        "LEFT JOIN agents ca ON ca.id = f.consultant_agent_id "
        "LEFT JOIN agents ea ON ea.id = f.exclusive_agent_id "
        "LEFT JOIN stores s ON s.id = f.store_id WHERE a.appid = ? AND f.openid = ?",
        {appid, openid});
    REQUIRE(r.size() == 1);
    return r[0];
}

}  // namespace

TEST_CASE("fan set-owner creates the fan, sets and clears owners of the account's clinic") {
    test_clinic c("clinic_f");
    const std::string appid = add_account(c);
    REQUIRE(admin({"store", "add", "--clinic", c.name, "--name", "South"}).code == 0);
    add_agent(c, "Carol", "South");
    add_agent(c, "Dave");
    const std::string openid = "o" + unique_name("fan");

    auto r = admin({"fan", "set-owner", "--appid", appid, "--openid", openid, "--consultant",
                    "Carol", "--store", "South"});
    CHECK(r.code == 0);
    CHECK(contains(r.output, "created fan " + openid + " of " + appid + " (clinic \"" + c.name +
                                 "\"): consultant \"Carol\", exclusive agent (none), store "
                                 "\"South\"\n"));
    CHECK(owners(appid, openid) ==
          std::vector<std::optional<std::string>>{"Carol", std::nullopt, "South"});

    // Only the owners given change.
    r = admin({"fan", "set-owner", "--appid", appid, "--openid", openid, "--exclusive", "Dave"});
    CHECK(r.code == 0);
    CHECK(contains(r.output, "updated fan " + openid + " of " + appid + " (clinic \"" + c.name +
                                 "\"): consultant \"Carol\", exclusive agent \"Dave\", store "
                                 "\"South\"\n"));
    // Routing reads the exclusive agent from Redis first: it is there too.
    const std::string clinic_id = scalar("SELECT id FROM clinics WHERE name = ?", {c.name});
    const std::string dave =
        scalar("SELECT id FROM agents WHERE clinic_id = ? AND name = 'Dave'", {clinic_id});
    CHECK(live_exclusive(clinic_id, openid) == dave);
    r = admin({"fan", "set-owner", "--appid", appid, "--openid", openid, "--no-consultant",
               "--no-store"});
    CHECK(r.code == 0);
    CHECK(owners(appid, openid) ==
          std::vector<std::optional<std::string>>{std::nullopt, "Dave", std::nullopt});
    CHECK(scalar("SELECT COUNT(*) FROM fans f JOIN official_accounts a ON a.id = f.account_id "
                 "WHERE a.appid = ?",
                 {appid}) == "1");

    r = admin({"fan", "set-owner", "--appid", appid, "--openid", openid, "--no-exclusive"});
    CHECK(r.code == 0);
    CHECK(live_exclusive(clinic_id, openid).empty());
    r = admin({"fan", "set-owner", "--appid", appid, "--openid", openid, "--exclusive", "Dave"});
    CHECK(r.code == 0);

    // A deactivated agent says how many fans still name them.
    r = admin({"agent", "deactivate", "--clinic", c.name, "--name", "Dave"});
    CHECK(r.code == 0);
    CHECK(contains(r.output, "still named by 0 fan(s) as consultant and 1 as exclusive agent"));
}

TEST_CASE(
    "fan set-owner refuses agents and stores of another clinic, deactivated agents and bad "
    "values, changing nothing") {
    static const std::string names[] = {unique_name("clinic_g"), unique_name("clinic_h")};
    test_clinic c(names[0], test_clinic::exact_name{});
    test_clinic other(names[1], test_clinic::exact_name{});
    static const std::string fixed_appid = make_appid();  // the same on every entry
    const std::string appid = add_account(c, fixed_appid);
    REQUIRE(admin({"clinic", "add", "--name", other.name}).code == 0);
    REQUIRE(admin({"store", "add", "--clinic", other.name, "--name", "Far"}).code == 0);
    add_agent(c, "Erin");
    add_agent(c, "Gone");
    REQUIRE(admin({"agent", "deactivate", "--clinic", c.name, "--name", "Gone"}).code == 0);
    add_agent(other, "Frank");
    const std::string openid = "o" + unique_name("fan");
    REQUIRE(
        admin({"fan", "set-owner", "--appid", appid, "--openid", openid, "--consultant", "Erin"})
            .code == 0);

    struct row {
        std::string name;
        std::vector<std::string> args;
        std::string expected;
    };
    const std::string unknown_appid = "wx" + std::string(16, 'z');
    const std::string cname = c.name;  // GENERATE_COPY copies what the table uses
    auto [name, args, expected] = GENERATE_COPY(values<row>({
        {"consultant of another clinic",
         {"--consultant", "Frank"},
         "scrm-admin fan set-owner: --consultant: no agent named \"Frank\" in clinic \"" + cname +
             "\" (the clinic of " + appid + ")\n"},
        {"exclusive of another clinic",
         {"--exclusive", "Frank"},
         "scrm-admin fan set-owner: --exclusive: no agent named \"Frank\" in clinic \"" + cname +
             "\""},
        {"store of another clinic",
         {"--store", "Far"},
         "scrm-admin fan set-owner: --store: no store named \"Far\" in clinic \"" + cname + "\""},
        {"deactivated agent",
         {"--exclusive", "Gone"},
         "scrm-admin fan set-owner: --exclusive: agent \"Gone\" of clinic \"" + cname +
             "\" is deactivated\n"},
        {"set and clear",
         {"--consultant", "Erin", "--no-consultant"},
         "scrm-admin fan set-owner: --consultant and --no-consultant exclude each other\n"},
        {"nothing",
         {},
         "scrm-admin fan set-owner: nothing to set: give --consultant, --exclusive or --store"},
        {"bad appid",
         {"--appid", "wx123", "--no-consultant"},
         "scrm-admin fan set-owner: --appid: must be \"wx\" followed by 16 letters or digits\n"},
        {"unknown appid",
         {"--appid", unknown_appid, "--no-consultant"},
         "scrm-admin fan set-owner: --appid: no official account " + unknown_appid},
        {"bad openid",
         {"--openid", "o p", "--no-consultant"},
         "scrm-admin fan set-owner: --openid: must be 1-128 letters, digits, '-' or '_'\n"},
    }));
    CAPTURE(name);
    std::vector<std::string> argv{"fan", "set-owner"};
    if (std::find(args.begin(), args.end(), "--appid") == args.end()) {
        argv.insert(argv.end(), {"--appid", appid});
    }
    if (std::find(args.begin(), args.end(), "--openid") == args.end()) {
        argv.insert(argv.end(), {"--openid", openid});
    }
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = admin(argv);
    CHECK(r.code == 2);
    CHECK(contains(r.output, expected));
    CHECK(owners(appid, openid) ==
          std::vector<std::optional<std::string>>{"Erin", std::nullopt, std::nullopt});
    CHECK(scalar("SELECT COUNT(*) FROM fans f JOIN official_accounts a ON a.id = f.account_id "
                 "WHERE a.appid = ?",
                 {appid}) == "1");
}

TEST_CASE("routing show gives the defaults, routing set changes only what is given") {
    test_clinic c("clinic_r");
    REQUIRE(admin({"clinic", "add", "--name", c.name}).code == 0);
    auto r = admin({"routing", "show", "--clinic", c.name});
    CHECK(r.code == 0);
    CHECK(contains(r.output, "routing of clinic \"" + c.name + "\" (never set: the defaults)\n"));
    CHECK(contains(r.output, "\nexclusive-mode: off\n"));
    CHECK(contains(r.output, "\nutc-offset: +08:00\n"));
    CHECK(contains(r.output, "\nhours: []\n"));
    CHECK(scalar("SELECT COUNT(*) FROM clinic_routing WHERE clinic_id = ?", {c.id()}) == "0");

    r = admin({"routing",
               "set",
               "--clinic",
               c.name,
               "--exclusive-mode",
               "on",
               "--chain-store-mode",
               "on",
               "--auto-reply",
               "off",
               "--utc-offset",
               "-05:30",
               "--hours",
               R"([{"weekdays":[5,1,2],"start":"09:00","end":"18:00"},)"
               R"( {"weekdays":[6],"start":"20:00","end":"02:00"}])",
               "--closed-dates",
               R"(["2027-02-01","2027-01-01"])",
               "--welcome",
               "欢迎！\n请留言",
               "--timeout-after",
               "120"});
    CHECK(r.code == 0);
    CHECK(contains(r.output, "updated routing of clinic \"" + c.name +
                                 "\": exclusive-mode off "
                                 "-> on, chain-store-mode off -> on, auto-reply on -> off, welcome "
                                 "changed, utc-offset +08:00 -> -05:30, hours [] -> "));
    const auto stored = rows(
        "SELECT consultant_mode, exclusive_mode, chain_store_mode, auto_reply_enabled, "
        "utc_offset_minutes, work_hours, closed_dates, welcome_text, timeout_s, lock_ttl_s "
        "FROM clinic_routing WHERE clinic_id = ?",
        {c.id()});
    REQUIRE(stored.size() == 1);
    CHECK(stored[0] == std::vector<std::optional<std::string>>{
                           "0", "1", "1", "0", "-330",
                           R"([{"weekdays":[1,2,5],"start":"09:00","end":"18:00"},)"
                           R"({"weekdays":[6],"start":"20:00","end":"02:00"}])",
                           R"(["2027-01-01","2027-02-01"])", "欢迎！\n请留言", "120", "600"});

    // The same again: unchanged.
    r = admin({"routing", "set", "--clinic", c.name, "--exclusive-mode", "on"});
    CHECK(r.code == 0);
    CHECK(contains(r.output, "routing of clinic \"" + c.name + "\" unchanged\n"));
    r = admin({"routing", "show", "--clinic", c.name});
    CHECK(r.code == 0);
    CHECK_FALSE(contains(r.output, "never set"));
    CHECK(contains(r.output, "\nexclusive-mode: on\n"));
    CHECK(contains(r.output, "\nwelcome: 欢迎！\\n请留言\n"));
    CHECK(contains(r.output, "\nutc-offset: -05:30\n"));
}

TEST_CASE("routing set refuses bad values, naming the field and the rule, and changes nothing") {
    test_clinic c("clinic_q");
    REQUIRE(admin({"clinic", "add", "--name", c.name}).code == 0);
    REQUIRE(admin({"routing", "set", "--clinic", c.name, "--exclusive-mode", "on"}).code == 0);
    struct row {
        std::string name;
        std::vector<std::string> args;
        std::string expected;
    };
    auto [name, args, expected] = GENERATE(values<row>({
        {"switch", {"--exclusive-mode", "yes"}, "  --exclusive-mode: must be on or off\n"},
        {"offset",
         {"--utc-offset", "+8"},
         "  --utc-offset: must be a UTC offset \"+HH:MM\" or \"-HH:MM\" (e.g. +08:00)\n"},
        {"offset range", {"--utc-offset", "+24:00"}, "  --utc-offset: must be a UTC offset"},
        {"hours not json",
         {"--hours", "9-18"},
         "  --hours: must be a JSON array of {\"weekdays\":[1-7,…],\"start\":\"HH:MM\",\"end\":"
         "\"HH:MM\"} (1 = Monday)\n"},
        {"hours weekday",
         {"--hours", R"([{"weekdays":[0],"start":"09:00","end":"18:00"}])"},
         "  --hours[0].weekdays[0]: must be 1 (Monday) to 7 (Sunday)\n"},
        {"hours no weekdays",
         {"--hours", R"([{"weekdays":[],"start":"09:00","end":"18:00"}])"},
         "  --hours[0].weekdays: must be a non-empty array of 1 (Monday) to 7 (Sunday)\n"},
        {"hours weekday twice",
         {"--hours", R"([{"weekdays":[2,2],"start":"09:00","end":"18:00"}])"},
         "  --hours[0].weekdays[1]: 2 is listed twice\n"},
        {"hours start",
         {"--hours", R"([{"weekdays":[1],"start":"24:00","end":"18:00"}])"},
         "  --hours[0].start: must be \"HH:MM\" from 00:00 to 23:59\n"},
        {"hours end",
         {"--hours", R"([{"weekdays":[1],"start":"09:00","end":"9:00"}])"},
         "  --hours[0].end: must be \"HH:MM\" from 00:00 to 24:00\n"},
        {"hours missing end",
         {"--hours", R"([{"weekdays":[1],"start":"09:00"}])"},
         "  --hours[0].end: must be \"HH:MM\" from 00:00 to 24:00\n"},
        {"hours unknown key",
         {"--hours", R"([{"weekdays":[1],"start":"09:00","end":"10:00","tz":"+08:00"}])"},
         "  --hours[0]: unknown key \"tz\" (weekdays, start, end)\n"},
        {"date",
         {"--closed-dates", R"(["2027-02-30"])"},
         "  --closed-dates[0]: must be a date \"YYYY-MM-DD\" that exists\n"},
        {"date form",
         {"--closed-dates", R"(["2027/01/01"])"},
         "  --closed-dates[0]: must be a date \"YYYY-MM-DD\" that exists\n"},
        {"dates not array",
         {"--closed-dates", R"("2027-01-01")"},
         "  --closed-dates: must be a JSON array of dates like [\"2027-01-01\"]\n"},
        {"date twice",
         {"--closed-dates", R"(["2027-01-01","2027-01-01"])"},
         "  --closed-dates[1]: 2027-01-01 is listed twice\n"},
        {"text empty",
         {"--welcome", ""},
         "  --welcome: must be 1-600 characters of UTF-8 text (line breaks allowed, no other "
         "control characters)\n"},
        {"text long", {"--no-agent", std::string(601, 'x')}, "  --no-agent: must be 1-600"},
        {"seconds", {"--lock-ttl", "0"}, "  --lock-ttl: must be whole seconds from 1 to 86400\n"},
        {"seconds text",
         {"--timeout-after", "5m"},
         "  --timeout-after: must be whole seconds from 1 to 86400\n"},
        {"nothing", {}, "scrm-admin routing set: nothing to set: give at least one setting"},
    }));
    CAPTURE(name);
    std::vector<std::string> argv{"routing", "set", "--clinic", c.name, "--chain-store-mode", "on"};
    if (args.empty()) argv.resize(4);
    argv.insert(argv.end(), args.begin(), args.end());
    const auto before = rows("SELECT * FROM clinic_routing WHERE clinic_id = ?", {c.id()});
    const auto r = admin(argv);
    CHECK(r.code == 2);
    CHECK(contains(r.output, expected));
    CHECK(rows("SELECT * FROM clinic_routing WHERE clinic_id = ?", {c.id()}) == before);
}

TEST_CASE(
    "account add, agent add and fan set-owner run side by side in two clinics without failing") {
    // Under REPEATABLE READ, the lookups of rows not there yet locked the same index gap, and
    // concurrent adds in different clinics deadlocked (exit 1). Started together, all must pass.
    test_clinic a("clinic_x");
    test_clinic b("clinic_y");
    const std::string appid_a = add_account(a);
    const std::string appid_b = add_account(b);
    struct started {
        std::filesystem::path log;
        std::unique_ptr<child_process> process;
    };
    auto start = [](std::vector<std::string> args, std::vector<std::string> env = {}) {
        std::vector<std::string> argv{admin_bin, "--config", services_config_path().string()};
        argv.insert(argv.end(), args.begin(), args.end());
        started s;
        s.log = std::filesystem::temp_directory_path() / (unique_name("scrm_admin") + ".out");
        s.process = std::make_unique<child_process>(std::move(argv), s.log, std::move(env));
        return s;
    };
    auto finish_all = [](std::vector<started>& all) {
        for (auto& s : all) {
            const auto code = s.process->wait(60s);
            const auto output = s.process->output();
            std::filesystem::remove(s.log);
            CAPTURE(output);
            CHECK(code == std::optional<int>(0));
        }
        all.clear();
    };
    std::vector<started> all;
    for (const auto* c : {&a, &b}) {
        for (int i = 0; i < 3; ++i) {
            all.push_back(
                start({"account", "add", "--clinic", c->name, "--appid", make_appid(),
                       "--original-id", "gh_0123456789ab", "--token", "token1", "--aes-key",
                       std::string(43, 'k'), "--secret", "0123456789abcdef0123456789abcdef"},
                      {master_key}));
        }
    }
    finish_all(all);
    CHECK(scalar("SELECT COUNT(*) FROM official_accounts WHERE clinic_id IN (?, ?)",
                 {a.id(), b.id()}) == "8");
    for (const auto* c : {&a, &b}) {
        for (int i = 0; i < 3; ++i) {
            all.push_back(start({"agent", "add", "--clinic", c->name, "--name",
                                 "agent" + std::to_string(i), "--role", "service"},
                                {"SCRM_AGENT_PASSWORD=" + password1}));
        }
    }
    finish_all(all);
    CHECK(scalar("SELECT COUNT(*) FROM agents WHERE clinic_id IN (?, ?)", {a.id(), b.id()}) == "6");
    for (const auto& appid : {appid_a, appid_b}) {
        for (int i = 0; i < 3; ++i) {
            all.push_back(
                start({"fan", "set-owner", "--appid", appid, "--openid", "o" + unique_name("fan"),
                       "--exclusive", "agent" + std::to_string(i)}));
        }
    }
    finish_all(all);
    CHECK(scalar("SELECT COUNT(*) FROM fans f JOIN official_accounts o ON o.id = f.account_id "
                 "WHERE o.appid IN (?, ?) AND f.exclusive_agent_id IS NOT NULL",
                 {appid_a, appid_b}) == "6");
}

TEST_CASE("the audit log: an entry commits or rolls back with the change it records") {
    clinic_fixture c;
    const auto agent = c.add_agent("审计员", "");
    storage::mysql_session s(gateway::mysql_options_from(c.cfg.mysql));
    const auto count = [&] {
        return c.value("SELECT COUNT(*) FROM audit_log WHERE clinic_id = ?", {c.clinic});
    };

    REQUIRE(s.begin().has_value());
    REQUIRE(gateway::append_audit(
                s, {c.clinic, agent, "agent", "fan.owner", "1/oA", R"({"before":null,"after":7})"})
                .has_value());
    REQUIRE(s.rollback().has_value());
    CHECK(count() == "0");

    REQUIRE(s.begin().has_value());
    REQUIRE(gateway::append_audit(
                s, {c.clinic, agent, "agent", "fan.owner", "1/oA", R"({"before":null,"after":7})"})
                .has_value());
    REQUIRE(gateway::append_audit(s, {c.clinic, std::nullopt, "scrm-admin", "routing.set", "", ""})
                .has_value());
    REQUIRE(s.commit().has_value());
    CHECK(count() == "2");
    CHECK(c.value("SELECT CONCAT_WS('|', actor_agent_id, actor, action, subject, detail) FROM "
                  "audit_log WHERE clinic_id = ? AND action = 'fan.owner'",
                  {c.clinic}) ==
          std::to_string(agent) + R"(|agent|fan.owner|1/oA|{"before":null,"after":7})");
    CHECK(c.value("SELECT CONCAT(IFNULL(actor_agent_id, 'none'), ' ', IFNULL(detail, 'none')) "
                  "FROM audit_log WHERE clinic_id = ? AND action = 'routing.set'",
                  {c.clinic}) == "none none");
    // A clinic that does not exist is refused by the foreign key.
    CHECK_FALSE(gateway::append_audit(s, {0, std::nullopt, "system", "x", "", ""}).has_value());
}

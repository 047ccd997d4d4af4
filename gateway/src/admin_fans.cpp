// scrm-admin fan set-owner: who owns a fan for routing (DESIGN.md §5) — the consultant, the
// exclusive agent and the store. The agents must be active agents of the account's clinic and the
// store one of its stores; the fan row is created if the fan has not written yet.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <cctype>
#include <iostream>

#include "admin_commands.hpp"
#include "scrm/routing/live.hpp"
#include "scrm/storage/redis.hpp"

namespace scrm::gateway {
namespace {

constexpr const char* what = "fan set-owner";

bool valid_appid(const std::string& s) {
    if (s.size() != 18 || s.rfind("wx", 0) != 0) return false;
    for (unsigned char c : s) {
        if (!std::isalnum(c)) return false;
    }
    return true;
}

// WeChat openids are 28 characters of [A-Za-z0-9_-]; the column allows 128.
bool valid_openid(const std::string& s) {
    if (s.empty() || s.size() > 128) return false;
    for (unsigned char c : s) {
        if (!std::isalnum(c) && c != '-' && c != '_') return false;
    }
    return true;
}

// One owner field: what the operator asked for.
struct owner_change {
    const char* flag;     // "--consultant"
    const char* no_flag;  // "--no-consultant"
    const char* column;   // fans column
    bool given = false;
    std::optional<std::string> name = std::nullopt;  // nullopt with given = clear it
    storage::sql_value id = std::monostate{};
};

// The exclusive agent lives in Redis too: routing commits its picks there with a compare-and-set
// and prefers Redis's value (routing_live). An operator's choice is written there as well, before
// MySQL commits, or routing would keep the old agent.
result<void> set_live_exclusive(const config& cfg, std::uint64_t clinic, const std::string& openid,
                                std::optional<std::string> agent) {
    namespace asio = boost::asio;
    asio::io_context io;
    auto client = storage::redis_client::create(io.get_executor(), redis_options_from(cfg.redis));
    client->start();
    routing::live_state live(client, {});
    auto task = [&]() -> asio::awaitable<result<void>> {
        auto up = co_await client->wait_connected(cfg.redis.connect_timeout);
        if (!up) co_return up.error();
        co_return co_await live.set_exclusive(clinic, openid, agent);
    };
    auto done = asio::co_spawn(io, task(), asio::use_future);
    // The client keeps work on the loop (its reader, reconnects): run until the task is done.
    while (done.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        io.run_one_for(std::chrono::milliseconds(50));
    }
    client->stop();
    io.restart();
    io.run_for(std::chrono::seconds(1));
    return done.get();
}

int set_owner(const config& cfg, const std::vector<std::string>& args) {
    std::map<std::string, std::string> o;
    std::string error;
    if (!parse_options(args, 2, {"--appid", "--openid", "--consultant", "--exclusive", "--store"},
                       {"--no-consultant", "--no-exclusive", "--no-store"}, o, error)) {
        return complain(what, error, 2);
    }
    for (const char* required : {"--appid", "--openid"}) {
        if (!o.count(required)) return complain(what, std::string(required) + " is required", 2);
    }
    const std::string appid = o["--appid"];
    const std::string openid = o["--openid"];
    if (!valid_appid(appid)) {
        return complain(what, "--appid: must be \"wx\" followed by 16 letters or digits", 2);
    }
    if (!valid_openid(openid)) {
        return complain(what, "--openid: must be 1-128 letters, digits, '-' or '_'", 2);
    }
    owner_change changes[] = {{"--consultant", "--no-consultant", "consultant_agent_id"},
                              {"--exclusive", "--no-exclusive", "exclusive_agent_id"},
                              {"--store", "--no-store", "store_id"}};
    bool any = false;
    for (auto& c : changes) {
        const bool set = o.count(c.flag) > 0;
        const bool clear = o.count(c.no_flag) > 0;
        if (set && clear) {
            return complain(what, std::string(c.flag) + " and " + c.no_flag + " exclude each other",
                            2);
        }
        c.given = set || clear;
        if (set) {
            c.name = o[c.flag];
            const std::size_t max = c.column == std::string_view("store_id") ? 128 : 64;
            if (auto p = name_problem(c.flag, *c.name, max)) return complain(what, *p, 2);
        }
        any = any || c.given;
    }
    if (!any) {
        return complain(what,
                        "nothing to set: give --consultant, --exclusive or --store (or "
                        "--no-consultant, --no-exclusive, --no-store)",
                        2);
    }

    storage::mysql_session db(mysql_options_from(cfg.mysql));
    if (auto r = begin_transaction(db); !r)
        return complain(what, "cannot reach MySQL: " + why(db, r.error()), 1);
    auto account = db.query(
        "SELECT a.id, a.clinic_id, c.name FROM official_accounts a "
        "JOIN clinics c ON c.id = a.clinic_id WHERE a.appid = ?",
        {appid});
    if (!account) return complain(what, "cannot read accounts: " + why(db, account.error()), 1);
    if (account->rows.empty()) {
        return complain(
            what,
            "--appid: no official account " + appid + " (add it with: scrm-admin account add)", 2);
    }
    const std::string account_id = *account->rows[0][0];
    const std::string clinic_id = *account->rows[0][1];
    const std::string clinic = *account->rows[0][2];
    // One writer per clinic at a time (admin_commands.hpp, find_clinic).
    if (auto r = db.query("SELECT id FROM clinics WHERE id = ? FOR UPDATE", {clinic_id}); !r) {
        return complain(what, "cannot lock the clinic: " + why(db, r.error()), 1);
    }

    // Shared locks: an agent deactivated (or a store removed) concurrently waits for this commit.
    for (auto& c : changes) {
        if (!c.name) continue;
        const bool is_store = c.column == std::string_view("store_id");
        auto r =
            db.query(is_store ? "SELECT id, 1 FROM stores WHERE clinic_id = ? AND name = ? "
                                "LOCK IN SHARE MODE"
                              : "SELECT id, active FROM agents WHERE clinic_id = ? AND name = ? "
                                "LOCK IN SHARE MODE",
                     {clinic_id, *c.name});
        if (!r) return complain(what, "cannot read the clinic's staff: " + why(db, r.error()), 1);
        if (r->rows.empty()) {
            return complain(what,
                            std::string(c.flag) + ": no " + (is_store ? "store" : "agent") +
                                " named " + quoted(*c.name) + " in clinic " + quoted(clinic) +
                                " (the clinic of " + appid + ")",
                            2);
        }
        if (*r->rows[0][1] != "1") {
            return complain(what,
                            std::string(c.flag) + ": agent " + quoted(*c.name) + " of clinic " +
                                quoted(clinic) + " is deactivated",
                            2);
        }
        c.id = *r->rows[0][0];
    }

    // Lock the fan's row if it exists (the webhook may be updating it), else add it.
    auto fan = db.query("SELECT id FROM fans WHERE account_id = ? AND openid = ? FOR UPDATE",
                        {account_id, openid});
    if (!fan) return complain(what, "cannot read the fan: " + why(db, fan.error()), 1);
    const bool created = fan->rows.empty();
    if (created) {
        auto added =
            db.execute("INSERT INTO fans (account_id, openid) VALUES (?, ?)", {account_id, openid});
        if (!added) return complain(what, "cannot store the fan: " + why(db, added.error()), 1);
    }
    std::string sql = "UPDATE fans SET ";
    std::vector<storage::sql_value> params;
    bool first = true;
    for (const auto& c : changes) {
        if (!c.given) continue;
        sql += std::string(first ? "" : ", ") + c.column + " = ?";
        params.push_back(c.id);
        first = false;
    }
    sql += " WHERE account_id = ? AND openid = ?";
    params.emplace_back(account_id);
    params.emplace_back(openid);
    if (auto r = db.execute(sql, params); !r) {
        return complain(what, "cannot update the fan: " + why(db, r.error()), 1);
    }
    auto owners = db.query(
        "SELECT ca.name, ea.name, s.name FROM fans f "
        "LEFT JOIN agents ca ON ca.id = f.consultant_agent_id "
        "LEFT JOIN agents ea ON ea.id = f.exclusive_agent_id "
        "LEFT JOIN stores s ON s.id = f.store_id WHERE f.account_id = ? AND f.openid = ?",
        {account_id, openid});
    if (!owners || owners->rows.empty()) return complain(what, "cannot read the fan back", 1);
    if (changes[1].given) {
        std::optional<std::string> agent;
        if (const auto* id = std::get_if<std::string>(&changes[1].id)) agent = *id;
        if (auto r = set_live_exclusive(cfg, std::stoull(clinic_id), openid, agent); !r) {
            return complain(what, "cannot reach Redis: " + r.error().message(), 1);
        }
    }
    if (auto r = db.commit(); !r) return complain(what, "cannot commit: " + why(db, r.error()), 1);
    const auto& row = owners->rows[0];
    auto show = [](const std::optional<std::string>& v) { return v ? quoted(*v) : "(none)"; };
    std::cout << (created ? "created" : "updated") << " fan " << openid << " of " << appid
              << " (clinic " << quoted(clinic) << "): consultant " << show(row[0])
              << ", exclusive agent " << show(row[1]) << ", store " << show(row[2]) << "\n";
    return 0;
}

}  // namespace

int cmd_fan(const config& cfg, const std::vector<std::string>& args) {
    const std::string sub = args.size() > 1 ? args[1] : "";
    if (sub == "set-owner") return set_owner(cfg, args);
    return complain("fan", "expected \"set-owner --appid wx… --openid OPENID …\"", 2);
}

}  // namespace scrm::gateway

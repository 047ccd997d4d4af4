// scrm-admin evaluation invite: an evaluation invitation for a fan's visit, made by the function
// the "visit finished" event calls (create_evaluation_invitation), for clinics whose own system
// does not send that event yet and for tests. It prints the link; it sends nothing to the fan.
#include <iostream>

#include "admin_commands.hpp"
#include "scrm/gateway/evaluation_rules.hpp"
#include "scrm/gateway/evaluations.hpp"
#include "scrm/gateway/secret_box.hpp"

namespace scrm::gateway {
namespace {

constexpr const char* what = "evaluation invite";

int invite(const config& cfg, const std::vector<std::string>& args) {
    std::map<std::string, std::string> o;
    std::string error;
    if (!parse_options(args, 2, {"--appid", "--openid", "--visit"}, {}, o, error)) {
        return complain(what, error, 2);
    }
    for (const char* required : {"--appid", "--openid", "--visit"}) {
        if (!o.count(required)) return complain(what, std::string(required) + " is required", 2);
    }
    auto box = secret_box::from_env();
    if (!box) {
        return complain(what,
                        box.error() == errc::not_found
                            ? "SCRM_MASTER_KEY is not set (64 hex digits; it signs the links)"
                            : "SCRM_MASTER_KEY must be 64 hex digits",
                        1);
    }
    storage::mysql_session db(mysql_options_from(cfg.mysql));
    auto account =
        db.query("SELECT id, clinic_id FROM official_accounts WHERE appid = ?", {o["--appid"]});
    if (!account) return complain(what, "cannot read accounts: " + why(db, account.error()), 1);
    if (account->rows.empty()) {
        return complain(what, "--appid: no official account " + quoted(o["--appid"]), 2);
    }
    evaluation_invite in{storage::sql_u64(account->rows[0][1]),
                         storage::sql_u64(account->rows[0][0]), o["--openid"], std::nullopt,
                         o["--visit"]};
    const evaluation_tokens tokens(box->derive_key(evaluation_key_label));
    auto made = create_evaluation_invitation(db, tokens, in, cfg.evaluation_link_ttl);
    if (!made) {
        if (made.error() == errc::bad_input) {
            return complain(what, "--openid and --visit: 1-128 characters each", 2);
        }
        return complain(what, "cannot store the invitation: " + why(db, made.error()), 1);
    }
    std::cout << (made->created ? "invited" : "already invited") << ": evaluation " << made->id
              << " " << made->path << " expires " << made->expires_at << "\n";
    return 0;
}

}  // namespace

int cmd_evaluation(const config& cfg, const std::vector<std::string>& args) {
    if (args.size() > 1 && args[1] == "invite") return invite(cfg, args);
    std::cerr << "scrm-admin evaluation: expected \"invite …\"\n";
    return 2;
}

}  // namespace scrm::gateway

// admin_api's shared state for its files: admin_api.cpp (authentication, routing settings,
// route preview, the audit log), admin_reassign.cpp (owner reassignment and deactivation) and the
// route groups declared below.
#pragma once

#include <memory>

#include "agent_api_impl.hpp"
#include "scrm/gateway/admin_api.hpp"
#include "scrm/gateway/audit_log.hpp"
#include "scrm/gateway/secret_box.hpp"

namespace scrm::gateway {

struct admin_api::impl {
    std::shared_ptr<agent_api::impl> agents;  // sessions, live state, routing stage, hash pool
    storage::mysql_pool& mysql;
    wechat_clients& clients;        // the accounts' WeChat clients (stores' QR codes)
    std::optional<secret_box> box;  // SCRM_MASTER_KEY: seals accounts' secrets (none: 503)

    // The request's agent if it is an admin; else the refusal (401 as agent_api's, 403 for other
    // roles, 503).
    boost::asio::awaitable<auth_result> admin(const http_request& req);
};

using admin_ptr = std::shared_ptr<admin_api::impl>;

// {"id":…,"name":…} of an agent.
std::string agent_ref_json(std::uint64_t id, const std::string& name);

// The id in "<prefix><id><suffix>" (suffix may be empty), nullopt when the path is not so.
std::optional<std::uint64_t> path_id(std::string_view path, std::string_view prefix,
                                     std::string_view suffix);

// ---- helpers of the people, places and accounts endpoints (admin_people_api.cpp) -------------

// `body` as a JSON answer with `status`.
http_response ok_json(std::string body, unsigned status = 200);
std::string bool_json(bool b);
// Appends `"member":{"before":…,"after":…}` (JSON values) to the members in `out` — nothing when
// they are equal. Wrapped in {} it is an answer's and an audit row's `changed`.
void change(std::string& out, const char* member, const std::string& before,
            const std::string& after);

// What a change inside one transaction comes to: a refusal (status, Chinese text), or the JSON
// answer.
struct change_result {
    std::optional<std::pair<unsigned, std::string>> refused;
    std::string body;
};
change_result refuse_change(unsigned status, std::string text);
change_result answered(std::string body);
http_response answer(const change_result& r, unsigned ok_status = 200);
// Appends `e`, commits, and answers `body`.
result<change_result> audited_commit(storage::mysql_session& db, const audit_entry& e,
                                     std::string body);

// admin_people_api.cpp: agents and stores (GET|POST /api/admin/agents, PUT …/{id}, GET|POST
// /api/admin/stores, PUT …/{id}, POST …/{id}/qr) and the password reset below.
void add_people_routes(const admin_ptr& self, router& routes);
// POST /api/admin/agents/{id}/password (admin_api.cpp routes it with deactivate).
boost::asio::awaitable<http_response> reset_password(admin_ptr self, http_request req,
                                                     std::uint64_t agent);

// admin_accounts_api.cpp: GET|POST /api/admin/accounts, PUT /api/admin/accounts/{id}, GET
// /api/admin/health, GET|PUT /api/admin/retention.
void add_account_routes(const admin_ptr& self, router& routes);

// admin_templates_api.cpp: GET /api/admin/templates, PUT /api/admin/templates/{kind}, GET|POST
// /api/admin/api-keys, POST /api/admin/api-keys/{name or id}/revoke.
void add_template_routes(const admin_ptr& self, router& routes);

// snippets_api.cpp: the clinic's snippet groups (/api/admin/snippet-groups…, /api/admin/snippets/…)
// and every agent's view and own snippets (GET /api/snippets, /api/agent/snippets…).
void add_snippet_routes(const admin_ptr& self, router& routes);

// admin_reassign.cpp
boost::asio::awaitable<http_response> reassign(admin_ptr self, http_request req, bool apply);
boost::asio::awaitable<http_response> deactivate_agent(admin_ptr self, http_request req);

}  // namespace scrm::gateway

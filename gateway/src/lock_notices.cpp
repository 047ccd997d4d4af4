// See lock_notices.hpp. MySQL follows Redis here, as in the conversation endpoints: the live
// state's scripts decide (once, across instances), then the history is written and the pushes go.
#include "scrm/gateway/lock_notices.hpp"

#include "scrm/common/log.hpp"
#include "scrm/gateway/agent_repository.hpp"
#include "scrm/gateway/agent_requests.hpp"
#include "scrm/gateway/http.hpp"

namespace scrm::gateway {

namespace asio = boost::asio;

namespace {

asio::awaitable<void> push_to_online(routing::live_state& live, std::uint64_t clinic,
                                     std::string payload, routing::instant now,
                                     std::string except) {
    auto sent = co_await live.push_online(clinic, std::move(payload), now, std::move(except));
    if (!sent) log::warn("agent.push_failed", {{"reason", sent.error().message()}});
}

}  // namespace

std::string lock_ended_note(std::uint64_t account, std::string_view openid,
                            std::string_view reason) {
    return "{\"type\":\"lock\",\"account_id\":" + std::to_string(account) +
           ",\"openid\":" + json_quote(openid) + ",\"holder\":null,\"reason\":" +
           json_quote(reason) + "}";
}

std::string presence_note(std::uint64_t agent, std::string_view name, bool online) {
    return "{\"type\":\"presence\",\"agent\":{\"id\":" + std::to_string(agent) +
           ",\"name\":" + json_quote(name) + "},\"online\":" + (online ? "true" : "false") + "}";
}

asio::awaitable<void> announce_offline(storage::mysql_pool& mysql, routing::live_state& live,
                                       std::uint64_t clinic, std::uint64_t agent,
                                       std::string name, std::vector<std::string> released,
                                       std::string reason, routing::instant now,
                                       bool presence) {
    agent_repository repo(mysql);
    auto ended = co_await repo.agent_sessions_ended(clinic, agent, "offline");
    if (!ended) log::warn("agent.session_not_recorded", {{"clinic", clinic}});
    const std::size_t locks = released.size();
    auto fans = co_await repo.fan_accounts(clinic, std::move(released));
    if (!fans) log::warn("agent.push_failed", {{"reason", fans.error().message()}});
    if (fans) {
        for (const auto& [account, openid] : *fans) {
            co_await push_to_online(live, clinic, lock_ended_note(account, openid, reason), now,
                                    "");
        }
    }
    if (presence && name.empty()) {
        auto row = co_await repo.agent(clinic, agent);
        if (row && *row) name = (*row)->name;
    }
    if (presence) {
        co_await push_to_online(live, clinic, presence_note(agent, name, false), now,
                                std::to_string(agent));
    }
    log::info("agent.went_offline", {{"clinic", clinic},
                                     {"agent", agent},
                                     {"reason", reason},
                                     {"locks_released", static_cast<std::uint64_t>(locks)}});
}

asio::awaitable<void> announce_online(routing::live_state& live, std::uint64_t clinic,
                                      std::uint64_t agent, std::string name,
                                      routing::instant now) {
    co_await push_to_online(live, clinic, presence_note(agent, name, true), now,
                            std::to_string(agent));
}

asio::awaitable<result<std::size_t>> end_silent_locks(storage::mysql_pool& mysql,
                                                      routing::live_state& live,
                                                      std::uint64_t clinic, std::size_t limit,
                                                      routing::instant now) {
    auto expired = co_await live.claim_expired_locks(clinic, limit);
    if (!expired) co_return expired.error();
    agent_repository repo(mysql);
    for (const auto& l : *expired) {
        const auto holder = parse_id(l.holder);
        if (!holder) continue;
        auto account = co_await repo.silent_session_ended(
            clinic, l.fan, *holder, l.due.time_since_epoch().count());
        if (!account) {
            log::warn("agent.session_not_recorded", {{"clinic", clinic}});
            continue;
        }
        if (!*account) continue;  // the fan is gone (retention): nothing to show
        co_await push_to_online(live, clinic, lock_ended_note(**account, l.fan, "silence"), now,
                                "");
        log::info("agent.lock_silent", {{"clinic", clinic}, {"agent", *holder}});
    }
    co_return expired->size();
}

}  // namespace scrm::gateway

// Console pushes about session locks and presence that no request's own answer covers
// (docs/api.md "The console WebSocket"): a lock that ended by silence or because its holder went
// offline, and an agent coming online or going offline. Shared by the timer worker
// (routing_stage) and the agent endpoints (sign-out, the switch, the WebSocket).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "scrm/common/error.hpp"
#include "scrm/routing/live.hpp"

namespace scrm::storage {
class mysql_pool;
}

namespace scrm::gateway {

// {"type":"lock","account_id":…,"openid":"…","holder":null,"reason":"…"}
std::string lock_ended_note(std::uint64_t account, std::string_view openid,
                            std::string_view reason);
// {"type":"presence","agent":{"id":…,"name":"…"},"online":true|false}
std::string presence_note(std::uint64_t agent, std::string_view name, bool online);

// Agent `agent` (named `name`; "" looks it up) of `clinic` went offline — presence ran out, the
// switch turned off, signed out — and the live state released `released` (its locks): its open
// chat_sessions end (`offline`), each released fan's lock end is pushed with `reason` to the
// clinic's agents online at `now`, then the presence change (unless `presence` is false: its
// going offline was announced already, e.g. by the switch). Called by whichever caller the
// live state reported the change to, so each is announced once. Failures are logged (a push is a
// hint; pages reload on "resync").
boost::asio::awaitable<void> announce_offline(storage::mysql_pool& mysql,
                                              routing::live_state& live, std::uint64_t clinic,
                                              std::uint64_t agent, std::string name,
                                              std::vector<std::string> released,
                                              std::string reason, routing::instant now,
                                              bool presence = true);

// Agent `agent` came online (connected, or switched accepting on): the clinic's other agents
// online at `now` are told. Failures are logged.
boost::asio::awaitable<void> announce_online(routing::live_state& live, std::uint64_t clinic,
                                             std::uint64_t agent, std::string name,
                                             routing::instant now);

// Locks of `clinic` that ran out by silence, at most `limit` (> 0) per call: each claimed once
// across instances (live_state::claim_expired_locks), its holding's chat_sessions row ended
// (`silence`) and its end pushed (reason `silence`) to the clinic's agents online at `now`. The
// number claimed; the error when the claim itself failed.
boost::asio::awaitable<result<std::size_t>> end_silent_locks(storage::mysql_pool& mysql,
                                                             routing::live_state& live,
                                                             std::uint64_t clinic,
                                                             std::size_t limit,
                                                             routing::instant now);

}  // namespace scrm::gateway

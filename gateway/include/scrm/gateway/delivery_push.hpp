// Delivery ticks for the console: each state change the outbox worker records (sent, failed,
// uncertain, queued again for a retry) pushed to the consoles of the agent who sent the message
// and of the agent holding the fan's session, through their event streams (any instance, resumed
// after a reconnect like every push).
#pragma once

#include <string>

#include "scrm/wechat/outbox.hpp"

namespace scrm::routing {
class live_state;
}

namespace scrm::gateway {

// {"type":"delivery","outbox_id":…,"account_id":…,"openid":…,"kind":…,"state":…,
//  "errcode":…|null,"reason":…|null} (live_state::push puts "event_id" first).
std::string delivery_event(const wechat::delivery_change& c);

// The outbox hook (outbox_options::on_change): pushes delivery_event to the sender (origin
// "agent:<id>") and to the session's holder when that is someone else; other origins
// (auto-replies, templates) only to the holder. Failures are logged, never thrown: the history
// shows the state in any case. `live` must outlive the outbox.
wechat::delivery_hook delivery_push(routing::live_state& live);

}  // namespace scrm::gateway

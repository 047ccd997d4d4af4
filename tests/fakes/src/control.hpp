// The /control/ endpoints as pure functions: JSON in, api_state changes, JSON out. The few that
// need I/O (deliveries, refusing connections) come back as commands the shell performs.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "scrm/fakes/fake_wechat.hpp"
#include "scrm/fakes/http_listener.hpp"

namespace scrm::fakes::detail {

struct control_reply {
    unsigned status = 200;
    std::string body;
};

struct deliver_command {
    std::string appid;
    inbound_spec spec;
    delivery_options opts;
};

struct template_finish_command {
    std::uint64_t msgid = 0;
    std::string status;  // empty: the template's own
    delivery_options opts;
};

struct refuse_command {
    std::chrono::milliseconds duration{0};
};

struct deliveries_command {};

using control_outcome = std::variant<control_reply, deliver_command, template_finish_command,
                                     refuse_command, deliveries_command>;

control_outcome handle_control(api_state& state, const listener_request& req);

std::string to_json(const delivery_result& d);
std::string to_json(const std::vector<delivery_result>& all);

}  // namespace scrm::fakes::detail

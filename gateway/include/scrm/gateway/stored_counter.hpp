// The stage after storage until routing (DESIGN.md §5) takes its place: counts stored messages
// for /metrics and logs their ids (never their content).
#pragma once

#include <atomic>
#include <cstdint>

#include "scrm/gateway/webhook.hpp"

namespace scrm::gateway {

class stored_counter final : public stored_message_sink {
public:
    boost::asio::awaitable<std::optional<passive_reply>> on_stored(stored_message m) override;
    std::uint64_t count() const { return count_.load(); }

private:
    std::atomic<std::uint64_t> count_{0};
};

}  // namespace scrm::gateway

// See stored_counter.hpp.
#include "scrm/gateway/stored_counter.hpp"

#include "scrm/common/log.hpp"

namespace scrm::gateway {

boost::asio::awaitable<std::optional<passive_reply>> stored_counter::on_stored(stored_message m) {
    ++count_;
    log::debug("message.stored",
               {{"id", m.id}, {"appid", m.account->appid}, {"type", m.message.msg_type}});
    co_return std::nullopt;
}

}  // namespace scrm::gateway

// See agent_push.hpp. The listener table is shared by the subscriber's handlers (its strand) and
// the connections attaching and detaching (their strands): a mutex, held only to copy or edit it.
#include "scrm/gateway/agent_push.hpp"

#include <algorithm>

#include "scrm/common/log.hpp"
#include "scrm/gateway/http.hpp"
#include "scrm/storage/redis.hpp"

namespace scrm::gateway {

struct agent_push::hub {
    mutable std::mutex mutex;
    std::map<std::string, std::vector<std::shared_ptr<ws_session>>> listeners;
    bool lost = false;  // the subscriber was disconnected since it last connected

    std::vector<std::shared_ptr<ws_session>> of(const std::string& channel) const {
        std::lock_guard lock(mutex);
        const auto it = listeners.find(channel);
        return it == listeners.end() ? std::vector<std::shared_ptr<ws_session>>{} : it->second;
    }
    std::vector<std::shared_ptr<ws_session>> all() const {
        std::lock_guard lock(mutex);
        std::vector<std::shared_ptr<ws_session>> out;
        for (const auto& [channel, sessions] : listeners) {
            out.insert(out.end(), sessions.begin(), sessions.end());
        }
        return out;
    }
};

agent_push::agent_push(const boost::asio::any_io_executor& ex, const storage::redis_options& redis)
    : hub_(std::make_shared<hub>()) {
    std::weak_ptr<hub> weak = hub_;
    auto on_message = [weak](storage::redis_message m) {
        const auto h = weak.lock();
        if (!h) return;
        for (const auto& s : h->of(m.channel)) s->send(m.payload);
    };
    auto on_state = [weak](bool connected) {
        const auto h = weak.lock();
        if (!h) return;
        bool resync = false;
        {
            std::lock_guard lock(h->mutex);
            if (!connected) {
                h->lost = true;
            } else if (h->lost) {
                h->lost = false;
                resync = true;
            }
        }
        if (!resync) return;
        log::info("push.resync");
        for (const auto& s : h->all()) s->send(std::string(resync_message));
    };
    subscriber_ = storage::redis_subscriber::create(ex, redis, on_message, on_state);
}

agent_push::~agent_push() {
    subscriber_->stop();
}

void agent_push::start() {
    subscriber_->start();
}

void agent_push::stop() {
    subscriber_->stop();
}

boost::asio::awaitable<result<void>> agent_push::attach(std::string channel,
                                                        std::shared_ptr<ws_session> session) {
    {
        std::lock_guard lock(hub_->mutex);
        hub_->listeners[channel].push_back(std::move(session));
    }
    // Every attach confirms the subscription (cheap when already subscribed): a connection that
    // attached while an earlier subscribe was still in flight must not miss the confirmation.
    std::vector<std::string> channels{std::move(channel)};
    co_return co_await subscriber_->subscribe(std::move(channels));
}

void agent_push::detach(const std::string& channel, const ws_session* session) {
    // Unsubscribing under the lock orders it with a concurrent attach of the same channel (a page
    // reload: the old connection leaves as the new one arrives): either the attach finds the list
    // empty and subscribes after this, or this finds the list not empty and keeps the channel.
    std::lock_guard lock(hub_->mutex);
    const auto it = hub_->listeners.find(channel);
    if (it == hub_->listeners.end()) return;
    auto& list = it->second;
    list.erase(std::remove_if(list.begin(), list.end(),
                              [session](const auto& s) { return s.get() == session; }),
               list.end());
    if (list.empty()) {
        hub_->listeners.erase(it);
        subscriber_->unsubscribe({channel});
    }
}

std::size_t agent_push::listeners() const {
    std::lock_guard lock(hub_->mutex);
    std::size_t n = 0;
    for (const auto& [channel, sessions] : hub_->listeners) n += sessions.size();
    return n;
}

bool agent_push::connected() const {
    return subscriber_->connected();
}

}  // namespace scrm::gateway

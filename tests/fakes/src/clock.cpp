// The fake's adjustable clock.
#include "scrm/fakes/clock.hpp"

namespace scrm::fakes {

sys_time fake_clock::now() const noexcept {
    const std::chrono::nanoseconds v(value_ns_.load());
    if (manual_) return sys_time(std::chrono::duration_cast<sys_time::duration>(v));
    return std::chrono::system_clock::now() + std::chrono::duration_cast<sys_time::duration>(v);
}

std::int64_t fake_clock::unix_now() const noexcept {
    return std::chrono::duration_cast<std::chrono::seconds>(now().time_since_epoch()).count();
}

void fake_clock::advance(std::chrono::nanoseconds d) noexcept {
    value_ns_.fetch_add(d.count());
}

}  // namespace scrm::fakes

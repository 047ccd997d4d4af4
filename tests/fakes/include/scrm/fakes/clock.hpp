// The fake WeChat's notion of "now": its token lifetimes, customer-service windows, quotas and
// de-duplication windows read this clock, so tests move time forward instead of sleeping.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace scrm::fakes {

using sys_time = std::chrono::system_clock::time_point;

// Either a manual clock (stands still until advanced; for unit-level tests) or the system clock
// plus an adjustable offset (for the executable, whose control endpoint can still move time
// forward). Thread-safe.
class fake_clock {
public:
    // The system clock, offset 0.
    fake_clock() = default;
    // A manual clock that reads `start` until advanced.
    explicit fake_clock(sys_time start)
        : manual_(true), value_ns_(start.time_since_epoch() / std::chrono::nanoseconds(1)) {}

    sys_time now() const noexcept;
    // now() in whole unix seconds.
    std::int64_t unix_now() const noexcept;
    // Moves the clock forward (or back, with a negative duration).
    void advance(std::chrono::nanoseconds d) noexcept;
    bool is_manual() const noexcept { return manual_; }

private:
    bool manual_ = false;
    // Manual: the time since the epoch. System: the offset added to the system clock.
    std::atomic<std::int64_t> value_ns_{0};
};

}  // namespace scrm::fakes

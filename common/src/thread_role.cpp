// A thread_local flag: cheap enough to check on every blocking call.
#include "scrm/common/thread_role.hpp"

#include <cstdlib>

#include "scrm/common/log.hpp"

namespace scrm {
namespace {
thread_local bool io_thread = false;
}

void mark_io_thread(bool is_io) noexcept {
    io_thread = is_io;
}
bool on_io_thread() noexcept {
    return io_thread;
}

void expect_blocking_allowed(const char* what) noexcept {
    if (!io_thread) return;
    log::error("blocking_call_on_io_thread", {{"call", what}});
    std::abort();
}

}  // namespace scrm

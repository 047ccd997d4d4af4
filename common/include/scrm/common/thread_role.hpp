// Marks the threads that run the I/O loop, so blocking calls (MySQL statements, fsync, file reads)
// can check they are not on one. A blocking call on an I/O thread stalls every connection that
// thread serves: it is a programming error, and the guard aborts with a message naming the call.
#pragma once

namespace scrm {

// Call at the start of every thread that runs io_context::run() (false undoes it, for tests).
void mark_io_thread(bool is_io = true) noexcept;
bool on_io_thread() noexcept;

// Aborts the process (after logging `what`) when called on a thread marked as I/O.
void expect_blocking_allowed(const char* what) noexcept;

}  // namespace scrm

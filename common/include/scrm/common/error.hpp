// Project error codes: expected failures (bad input, timeouts, unavailable servers) are values,
// carried as boost::system::error_code in boost::system::result<T>.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

namespace scrm {

enum class errc {
    ok = 0,
    timeout = 1,         // the operation did not finish within its deadline
    unavailable = 2,     // the server is down or disconnected; fails fast while reconnecting
    overloaded = 3,      // a bounded queue is full; retry later
    bad_input = 4,       // the caller's input was invalid
    not_found = 5,       // the thing asked for does not exist
    server_error = 6,    // the server answered with an error (Redis error reply, SQL error)
    protocol_error = 7,  // the peer answered something we cannot understand
    shutting_down = 8,   // the component is stopping
    conflict = 9,        // a unique key or compare-and-set lost
};

const boost::system::error_category& scrm_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), scrm_category()};
}

template <class T>
using result = boost::system::result<T, boost::system::error_code>;

}  // namespace scrm

template <>
struct boost::system::is_error_code_enum<scrm::errc> : std::true_type {};

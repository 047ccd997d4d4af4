// A small asynchronous HTTP/1.1 client over plain TCP or TLS, used by the fake WeChat's sender to
// POST callbacks (with WeChat's answer timeout) and by tests to call the fake over HTTPS. One
// request per connection; Beast stays inside http_fetch.cpp.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <iosfwd>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "scrm/common/error.hpp"

namespace scrm::fakes {

struct fetch_request {
    std::string method = "GET";
    std::string url;  // http://host[:port]/path?query or https://…
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
};

struct fetch_options {
    // The whole exchange (connect, TLS handshake, write, read) must finish within this; when it
    // does not, the connection is closed (as WeChat drops a callback that takes too long).
    std::chrono::milliseconds timeout{5000};
    // https: the CA certificates to trust (PEM). Empty: the system's default trust store. The
    // server's certificate must also match the URL's host (IP address or DNS name).
    std::string ca_file;
};

struct fetch_reply {
    unsigned status = 0;
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
    std::string body;
    std::string header(std::string_view lower_name) const;  // first value, or ""
};
std::ostream& operator<<(std::ostream& os, const fetch_reply& r);  // status and body size

// Performs one request on the calling coroutine's executor. Fails with errc::bad_input for a URL
// that is not http(s)://host[:port]/…, errc::timeout when the deadline passed, and otherwise with
// the underlying error as is (connection refused, end of stream when the server closed without
// answering, an SSL error such as "certificate verify failed", …).
boost::asio::awaitable<scrm::result<fetch_reply>> fetch(fetch_request req, fetch_options opts);

}  // namespace scrm::fakes

// A small blocking HTTP/1.1 client for tests: one request per connection (Connection: close),
// Content-Length bodies, a bounded wait. Talks to real servers on 127.0.0.1.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace scrm::test {

struct http_reply {
    int status = 0;  // 0 when the connection failed or closed without an answer
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
    std::string body;
    std::string header(const std::string& lower_name) const;
};

http_reply http_call(std::uint16_t port, const std::string& method, const std::string& target,
                     const std::string& body = {},
                     std::vector<std::pair<std::string, std::string>> headers = {},
                     std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Polls GET target until the status equals `status` or `limit` passes; returns the last reply.
http_reply wait_for_status(std::uint16_t port, const std::string& target, int status,
                           std::chrono::milliseconds limit = std::chrono::seconds(30));

}  // namespace scrm::test

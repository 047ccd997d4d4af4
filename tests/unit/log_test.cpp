// The structured logger renders one valid JSON object per line and escapes what it is given.
#include <catch2/catch.hpp>

#include "scrm/common/log.hpp"

using scrm::log::format_line;
using scrm::log::level;

TEST_CASE("log lines are JSON objects with escaped strings and raw numbers") {
    const std::string line =
        format_line(level::warn, "redis.reconnect",
                    {{"host", "127.0.0.1"},
                     {"attempt", 3},
                     {"ok", false},
                     {"why", "quote \" backslash \\ newline \n tab \t ctl \x01"}});
    CAPTURE(line);
    CHECK(line.rfind("{\"ts\":\"", 0) == 0);
    CHECK(line.find("\"level\":\"warn\"") != std::string::npos);
    CHECK(line.find("\"event\":\"redis.reconnect\"") != std::string::npos);
    CHECK(line.find("\"attempt\":3") != std::string::npos);
    CHECK(line.find("\"ok\":false") != std::string::npos);
    CHECK(line.find(R"("why":"quote \" backslash \\ newline \n tab \t ctl \u0001")") !=
          std::string::npos);
    CHECK(line.find('\n') == std::string::npos);
    CHECK(line.back() == '}');
}

TEST_CASE("log levels parse by name and reject anything else") {
    level out = level::info;
    CHECK(scrm::log::parse_level("debug", out));
    CHECK(out == level::debug);
    CHECK(scrm::log::parse_level("error", out));
    CHECK(out == level::error);
    CHECK_FALSE(scrm::log::parse_level("verbose", out));
    CHECK_FALSE(scrm::log::parse_level("", out));
}

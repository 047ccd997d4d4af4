// The local spool: records come back in order after seal, survive a restart (a new spool on the
// same folder), a torn tail is ignored, and replayed segments are removed.
#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <fstream>

#include "scrm/storage/spool.hpp"
#include "test_env.hpp"

namespace asio = boost::asio;
using namespace scrm;
namespace fs = std::filesystem;

namespace {

asio::awaitable<std::vector<std::string>> append_and_read(storage::spool& s,
                                                          std::vector<std::string> records) {
    for (auto& r : records) {
        auto ok = co_await s.append(r);
        REQUIRE(ok.has_value());
    }
    auto segments = co_await s.seal();
    REQUIRE(segments.has_value());
    std::vector<std::string> out;
    for (const auto& seg : *segments) {
        auto got = co_await s.read(seg);
        REQUIRE(got.has_value());
        out.insert(out.end(), got->begin(), got->end());
    }
    co_return out;
}

asio::awaitable<bool> append_only(storage::spool& s, std::string record) {
    auto r = co_await s.append(std::move(record));
    co_return r.has_value();
}

asio::awaitable<std::vector<fs::path>> seal(storage::spool& s) {
    auto segments = co_await s.seal();
    REQUIRE(segments.has_value());
    co_return *segments;
}

asio::awaitable<std::vector<std::string>> read(storage::spool& s, fs::path p) {
    auto got = co_await s.read(p);
    REQUIRE(got.has_value());
    co_return *got;
}

asio::awaitable<bool> remove(storage::spool& s, fs::path p) {
    auto r = co_await s.remove(p);
    co_return r.has_value();
}

struct temp_dir {
    temp_dir() : path(fs::temp_directory_path() / test::unique_name("scrm_spool")) {}
    ~temp_dir() { fs::remove_all(path); }
    fs::path path;
};

}  // namespace

TEST_CASE("spooled records come back in order, binary-safe, across a restart") {
    temp_dir dir;
    asio::io_context io;
    const std::vector<std::string> first{"wx1\n<xml>一</xml>", std::string("\0\x01\xff", 3), ""};
    {
        storage::spool s(dir.path);
        const auto got = test::run_sync(io, append_and_read(s, first));
        CHECK(got == first);
    }
    // The process "restarted" before the segment was replayed: it is still there, intact.
    storage::spool again(dir.path);
    auto segments = test::run_sync(io, seal(again));
    REQUIRE(segments.size() == 1);
    CHECK(test::run_sync(io, read(again, segments[0])) == first);
    CHECK(test::run_sync(io, remove(again, segments[0])));
    CHECK(test::run_sync(io, seal(again)).empty());
}

TEST_CASE("a torn record at the end of a segment is ignored") {
    temp_dir dir;
    asio::io_context io;
    {
        storage::spool s(dir.path);
        CHECK(test::run_sync(io, append_only(s, "complete record")));
    }
    {
        // A crash in the middle of the next append: the length says 64 bytes, 7 arrived.
        std::ofstream out(dir.path / "current.spool", std::ios::binary | std::ios::app);
        out << std::string("\x40\x00\x00\x00\x12\x34\x56\x78partial", 15);
    }
    storage::spool s(dir.path);
    auto segments = test::run_sync(io, seal(s));
    REQUIRE(segments.size() == 1);
    CHECK(test::run_sync(io, read(s, segments[0])) == std::vector<std::string>{"complete record"});
}

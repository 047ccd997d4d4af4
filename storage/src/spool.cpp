// The spool thread: a queue of tasks run in order; adjacent appends are written together and made
// durable with one fdatasync (group commit on disk, like the MySQL loop).
#include "scrm/storage/spool.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "scrm/common/log.hpp"

namespace scrm::storage {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

std::uint32_t crc32(std::string_view data) {
    static const auto table = [] {
        std::array<std::uint32_t, 256> t{};
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    std::uint32_t c = 0xFFFFFFFFu;
    for (unsigned char b : data) c = table[(c ^ b) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

void put_u32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

std::uint32_t get_u32(const char* p) {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}

bool write_all(int fd, const std::string& data) {
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

void sync_dir(const fs::path& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

using void_channel = asio::experimental::concurrent_channel<void(boost::system::error_code)>;

}  // namespace

struct spool::impl {
    struct append_job {
        std::string record;
        std::shared_ptr<void_channel> done;
    };
    using task = std::variant<append_job, std::function<void()>>;

    explicit impl(fs::path d) : dir(std::move(d)) {
        fs::create_directories(dir);
        open_current();
        if (fd < 0)
            throw std::runtime_error("spool: cannot open " + (dir / "current.spool").string());
        worker = std::thread([this] { loop(); });
    }
    ~impl() {
        {
            std::lock_guard lock(mutex);
            stopping = true;
        }
        cv.notify_all();
        worker.join();
        if (fd >= 0) ::close(fd);
    }

    void open_current() {
        fd = ::open((dir / "current.spool").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                    0600);
    }

    void push(task t) {
        {
            std::lock_guard lock(mutex);
            tasks.push_back(std::move(t));
        }
        cv.notify_one();
    }

    void loop() {
        for (;;) {
            std::deque<task> batch;
            {
                std::unique_lock lock(mutex);
                cv.wait(lock, [&] { return stopping || !tasks.empty(); });
                if (tasks.empty()) return;
                batch.swap(tasks);
            }
            while (!batch.empty()) {
                if (auto* fn = std::get_if<std::function<void()>>(&batch.front())) {
                    (*fn)();
                    batch.pop_front();
                    continue;
                }
                std::vector<append_job> appends;
                while (!batch.empty() && std::holds_alternative<append_job>(batch.front())) {
                    appends.push_back(std::move(std::get<append_job>(batch.front())));
                    batch.pop_front();
                }
                std::string data;
                for (const auto& a : appends) {
                    put_u32(data, static_cast<std::uint32_t>(a.record.size()));
                    put_u32(data, crc32(a.record));
                    data += a.record;
                }
                const bool ok = fd >= 0 && write_all(fd, data) && ::fdatasync(fd) == 0;
                if (!ok)
                    log::error("spool.write_failed", {{"dir", dir.string()}, {"errno", errno}});
                for (auto& a : appends) {
                    a.done->try_send(ok ? boost::system::error_code{}
                                        : make_error_code(errc::unavailable));
                }
            }
        }
    }

    std::vector<fs::path> sealed_segments() const {
        std::vector<fs::path> out;
        for (const auto& e : fs::directory_iterator(dir)) {
            const auto name = e.path().filename().string();
            if (name != "current.spool" && e.path().extension() == ".spool")
                out.push_back(e.path());
        }
        std::sort(out.begin(), out.end());
        return out;
    }

    fs::path dir;
    int fd = -1;
    std::mutex mutex;
    std::condition_variable cv;
    std::deque<task> tasks;
    bool stopping = false;
    std::thread worker;
};

namespace {

// Runs fn on the spool thread and resumes the caller with its result.
template <class R, class Fn>
asio::awaitable<result<R>> on_spool_thread(spool::impl& s, Fn fn) {
    using channel = asio::experimental::concurrent_channel<void(boost::system::error_code, R)>;
    auto ch = std::make_shared<channel>(co_await asio::this_coro::executor, 1);
    s.push(std::function<void()>([ch, fn]() mutable {
        result<R> r = fn();
        if (r) {
            ch->try_send(boost::system::error_code{}, std::move(*r));
        } else {
            ch->try_send(r.error(), R{});
        }
    }));
    auto [ec, value] = co_await ch->async_receive(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return result<R>(boost::system::in_place_error, ec);
    co_return result<R>(boost::system::in_place_value, std::move(value));
}

}  // namespace

spool::spool(fs::path dir) : impl_(std::make_shared<impl>(std::move(dir))) {}
spool::~spool() = default;

asio::awaitable<result<void>> spool::append(std::string record) {
    auto done = std::make_shared<void_channel>(co_await asio::this_coro::executor, 1);
    impl_->push(impl::append_job{std::move(record), done});
    auto [ec] = co_await done->async_receive(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return ec;
    co_return result<void>{};
}

asio::awaitable<result<std::vector<fs::path>>> spool::seal() {
    impl* s = impl_.get();
    // g++ 12: a capturing lambda must be named before co_await (a temporary one is freed twice).
    auto fn = [s]() -> result<std::vector<fs::path>> {
        std::error_code ec;
        const auto size = fs::file_size(s->dir / "current.spool", ec);
        if (!ec && size > 0) {
            auto existing = s->sealed_segments();
            std::uint64_t next = 1;
            if (!existing.empty()) next = std::stoull(existing.back().stem().string()) + 1;
            char name[32];
            std::snprintf(name, sizeof name, "%010llu.spool",
                          static_cast<unsigned long long>(next));
            ::close(s->fd);
            fs::rename(s->dir / "current.spool", s->dir / name, ec);
            s->open_current();
            sync_dir(s->dir);
            if (ec || s->fd < 0) return errc::unavailable;
        }
        return s->sealed_segments();
    };
    co_return co_await on_spool_thread<std::vector<fs::path>>(*s, fn);
}

asio::awaitable<result<std::vector<std::string>>> spool::read(fs::path segment) {
    impl* s = impl_.get();
    auto fn = [segment]() -> result<std::vector<std::string>> {
        std::ifstream in(segment, std::ios::binary);
        if (!in) return errc::unavailable;
        const std::string data((std::istreambuf_iterator<char>(in)),
                               std::istreambuf_iterator<char>());
        std::vector<std::string> out;
        std::size_t pos = 0;
        while (pos + 8 <= data.size()) {
            const std::uint32_t len = get_u32(data.data() + pos);
            const std::uint32_t crc = get_u32(data.data() + pos + 4);
            if (pos + 8 + len > data.size()) break;  // torn tail
            std::string record = data.substr(pos + 8, len);
            if (crc32(record) != crc) break;
            out.push_back(std::move(record));
            pos += 8 + len;
        }
        if (pos != data.size()) {
            log::warn("spool.torn_tail",
                      {{"segment", segment.filename().string()},
                       {"ignored_bytes", static_cast<std::uint64_t>(data.size() - pos)}});
        }
        return out;
    };
    co_return co_await on_spool_thread<std::vector<std::string>>(*s, fn);
}

asio::awaitable<result<void>> spool::remove(fs::path segment) {
    impl* s = impl_.get();
    auto fn = [segment, s]() -> result<int> {
        std::error_code ec;
        fs::remove(segment, ec);
        sync_dir(s->dir);
        if (ec) return errc::unavailable;
        return 0;
    };
    auto r = co_await on_spool_thread<int>(*s, fn);
    if (!r) co_return r.error();
    co_return result<void>{};
}

}  // namespace scrm::storage

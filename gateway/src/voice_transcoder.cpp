// See voice_transcoder.hpp. ffmpeg runs through posix_spawnp with stdin/stdout/stderr on
// /dev/null (no pipe to drain, no output in our logs); the worker thread polls waitpid until the
// process ends or the deadline passes, then kills it.
#include "scrm/gateway/voice_transcoder.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <thread>
#include <vector>

#include "scrm/common/log.hpp"

extern char** environ;

namespace scrm::gateway {

namespace asio = boost::asio;
using asio::awaitable;

std::filesystem::path mp3_cache_path(const std::filesystem::path& source) {
    std::filesystem::path out = source;
    out += ".mp3";
    return out;
}

namespace {

std::optional<std::string> read_whole(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return std::nullopt;
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Runs ffmpeg on `source` into `target`; the exit status, or the error.
result<void> run_ffmpeg(const transcode_options& o, const std::filesystem::path& source,
                        const std::filesystem::path& target) {
    std::vector<std::string> args{o.ffmpeg,
                                  "-nostdin",
                                  "-hide_banner",
                                  "-loglevel",
                                  "error",
                                  "-y",
                                  "-i",
                                  source.string(),
                                  "-vn",
                                  "-map_metadata",
                                  "-1",
                                  "-ac",
                                  "1",
                                  "-c:a",
                                  "libmp3lame",
                                  "-b:a",
                                  "32k",
                                  "-id3v2_version",
                                  "0",
                                  "-f",
                                  "mp3",
                                  target.string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    for (int fd : {0, 1, 2}) {
        posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0);
    }
    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, o.ffmpeg.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        log::error("voice.ffmpeg_not_started", {{"reason", std::string(std::strerror(rc))}});
        return make_error_code(errc::server_error);
    }
    const auto deadline = std::chrono::steady_clock::now() + o.timeout;
    int status = 0;
    for (;;) {
        const pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) return make_error_code(errc::server_error);
        if (std::chrono::steady_clock::now() >= deadline) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            log::warn("voice.ffmpeg_timeout", {{"timeout_ms", o.timeout.count()}});
            return make_error_code(errc::timeout);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        log::warn("voice.ffmpeg_failed", {{"exit", WIFEXITED(status) ? WEXITSTATUS(status) : -1}});
        return make_error_code(errc::server_error);
    }
    return {};
}

// The whole job, on a transcoder thread.
result<std::string> transcode(const transcode_options& o, const std::filesystem::path& source,
                              std::uint64_t seq) {
    const auto cached = mp3_cache_path(source);
    if (auto kept = read_whole(cached)) return std::move(*kept);
    std::error_code ec;
    if (!std::filesystem::exists(source, ec)) return make_error_code(errc::not_found);
    auto temp = cached;
    temp += ".tmp" + std::to_string(::getpid()) + "-" + std::to_string(seq);
    auto ran = run_ffmpeg(o, source, temp);
    auto made = ran ? read_whole(temp) : std::nullopt;
    if (!ran || !made || made->empty()) {
        std::filesystem::remove(temp, ec);
        return ran ? make_error_code(errc::server_error) : ran.error();
    }
    std::filesystem::rename(temp, cached, ec);  // a whole file or none
    if (ec) std::filesystem::remove(temp, ec);
    return std::move(*made);
}

}  // namespace

struct voice_transcoder::impl {
    explicit impl(transcode_options o) : opts(std::move(o)), pool(std::max(1u, opts.workers)) {}
    transcode_options opts;
    asio::thread_pool pool;
    std::atomic<std::size_t> in_flight{0};
    std::atomic<std::uint64_t> seq{0};
};

voice_transcoder::voice_transcoder(transcode_options opts)
    : impl_(std::make_shared<impl>(std::move(opts))) {}

voice_transcoder::~voice_transcoder() {
    impl_->pool.join();
}

awaitable<result<std::string>> voice_transcoder::mp3(std::filesystem::path source) {
    auto self = impl_;
    if (self->in_flight.fetch_add(1) >= self->opts.queue_limit) {
        self->in_flight.fetch_sub(1);
        co_return make_error_code(errc::overloaded);
    }
    const std::uint64_t n = ++self->seq;
    auto job = [self, source = std::move(source), n]() -> awaitable<result<std::string>> {
        co_return transcode(self->opts, source, n);
    };
    auto out = co_await asio::co_spawn(self->pool, job, asio::use_awaitable);
    self->in_flight.fetch_sub(1);
    co_return out;
}

}  // namespace scrm::gateway

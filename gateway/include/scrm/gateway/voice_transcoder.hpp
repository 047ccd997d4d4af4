// Inbound voice (AMR, Speex) made playable in a browser: Debian's ffmpeg, run as a child process
// on the transcoder's own threads (never an I/O thread), with a timeout after which it is killed.
// The MP3 is made once per file and kept beside it; later requests read the kept file.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>

#include "scrm/common/error.hpp"

namespace scrm::gateway {

struct transcode_options {
    std::string ffmpeg = "ffmpeg";             // the program: a path, or a name looked up in PATH
    std::chrono::milliseconds timeout{20000};  // a run longer than this is killed
    unsigned workers = 1;                      // ffmpeg processes at once
    std::size_t queue_limit = 8;               // runs waiting or running; more are refused at once
};

// Where the MP3 of `source` is kept: "<source>.mp3" (e.g. "wx…/123.amr.mp3"), so the retention
// purge, which removes "<source>", also removes "<source>.mp3".
std::filesystem::path mp3_cache_path(const std::filesystem::path& source);

// Thread-safe. Must outlive the calls in flight (its destructor waits for its threads).
class voice_transcoder {
public:
    explicit voice_transcoder(transcode_options opts);
    ~voice_transcoder();
    voice_transcoder(const voice_transcoder&) = delete;
    voice_transcoder& operator=(const voice_transcoder&) = delete;

    // The MP3 bytes of the audio file `source`: the kept file when it exists, else ffmpeg writes
    // it (to a temporary name, renamed when whole). Completes on the caller's executor. Errors:
    // errc::overloaded (queue_limit runs already waiting), errc::timeout (ffmpeg ran past the
    // timeout and was killed), errc::not_found (no source file), errc::server_error (ffmpeg could
    // not start or failed: e.g. a file it cannot decode). Nothing is kept after a failure.
    boost::asio::awaitable<result<std::string>> mp3(std::filesystem::path source);

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace scrm::gateway

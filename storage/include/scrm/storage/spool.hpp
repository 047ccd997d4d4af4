// A local durable spool: records appended and fsynced to disk before the caller goes on, for
// messages that must not be lost while MySQL is unavailable; read back later in order. All file
// work runs on the spool's own thread (write and fdatasync block), never on an I/O thread.
//
// Layout: DIR/current.spool receives appends; seal() renames it to DIR/NNNNNNNNNN.spool (a
// sealed segment) so that replay can read a file nobody writes; remove() deletes a replayed
// segment. Each record is [u32 length][u32 crc32][bytes]; a torn record at the end of a segment
// (a crash mid-append, before the append was acknowledged) ends the segment.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "scrm/common/error.hpp"

namespace scrm::storage {

class spool {
public:
    // Creates DIR if needed. Throws std::runtime_error when DIR cannot be created or written.
    explicit spool(std::filesystem::path dir);
    ~spool();  // joins the spool thread
    spool(const spool&) = delete;
    spool& operator=(const spool&) = delete;

    // Appends one record and fdatasyncs it (appends waiting together share one fdatasync).
    // Completes on the caller's executor once the record is on disk; errc::unavailable when the
    // write or the sync failed (then nothing is acknowledged).
    boost::asio::awaitable<result<void>> append(std::string record);

    // Seals the current file if it holds records. Returns the sealed segments, oldest first.
    boost::asio::awaitable<result<std::vector<std::filesystem::path>>> seal();

    // The records of a sealed segment, in order.
    boost::asio::awaitable<result<std::vector<std::string>>> read(std::filesystem::path segment);

    // Deletes a replayed segment.
    boost::asio::awaitable<result<void>> remove(std::filesystem::path segment);

    struct impl;  // opaque

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace scrm::storage

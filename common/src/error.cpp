// The scrm error category: names for errc values.
#include "scrm/common/error.hpp"

#include <string>

namespace scrm {
namespace {

class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "scrm"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::ok: return "ok";
            case errc::timeout: return "timed out";
            case errc::unavailable: return "unavailable";
            case errc::overloaded: return "overloaded";
            case errc::bad_input: return "bad input";
            case errc::not_found: return "not found";
            case errc::server_error: return "server error";
            case errc::protocol_error: return "protocol error";
            case errc::shutting_down: return "shutting down";
            case errc::conflict: return "conflict";
        }
        return "unknown scrm error";
    }
};

}  // namespace

const boost::system::error_category& scrm_category() noexcept {
    static const category instance;
    return instance;
}

}  // namespace scrm

// The catalog of template notifications (issue 6, seeds/003 "微信通知"): each kind the gateway can
// send and the fields its events carry. Pure data: no I/O, thread-safe.
#pragma once

#include <span>
#include <string_view>

namespace scrm::templates {

struct field_info {
    std::string_view name;   // as events and keyword mappings name it: "appointment_time"
    std::string_view label;  // for people (admin pages): "预约时间"
    bool required = false;   // events of the kind must carry it (non-empty)
};

struct kind_info {
    std::string_view name;   // "appointment_created"
    std::string_view label;  // "预约创建提醒"
    std::span<const field_info> fields;
};

// Fields every kind has, filled by the gateway (never by the event): the patient's name and the
// clinic's name.
std::span<const field_info> builtin_fields() noexcept;

// Every kind, in the seed's order, then reply_waiting (the console's "you have a reply" notice).
std::span<const kind_info> catalog() noexcept;

// The kind named `name`, or nullptr.
const kind_info* find_kind(std::string_view name) noexcept;

// The field `name` of `kind` or a built-in one, or nullptr.
const field_info* find_field(const kind_info& kind, std::string_view name) noexcept;
bool is_builtin_field(std::string_view name) noexcept;

}  // namespace scrm::templates

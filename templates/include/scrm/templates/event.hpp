// An event from a clinic's own system (POST /api/integration/events, docs/integration.md) as a
// plain value: parsing with clear problems, and its canonical form for the idempotency check.
// Pure: no I/O, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "scrm/templates/catalog.hpp"
#include "scrm/templates/setting.hpp"

namespace scrm::templates {

struct patient_ref {
    std::string record_no;  // the clinic's medical record number; empty: not given
    std::string phone;      // used when no record number is given
    friend bool operator==(const patient_ref&, const patient_ref&) = default;
};

struct integration_event {
    const kind_info* kind = nullptr;
    std::string idempotency_key;
    patient_ref patient;
    field_values data;  // the kind's fields (never built-ins)
};

struct parsed_event {
    std::optional<integration_event> event;
    std::optional<problem> error;  // set when event is not
};

inline constexpr std::size_t max_idempotency_key = 128;
inline constexpr std::size_t max_field_chars = 200;

// {"kind":…, "idempotency_key":…, "patient":{"record_no":…|"phone":…}, "data":{field: value}}.
// Rules: a JSON object of valid UTF-8 with only these members; kind from the catalog;
// idempotency_key 1–128 of [A-Za-z0-9._:-]; patient with record_no (1–64 characters, no control
// characters) and/or phone (5–32 of digits, '+', '-', ' '); data an object whose members are
// fields of the kind (not built-ins), each a string of at most max_field_chars characters without
// control characters, or an integer; every required field present and not blank. The first
// problem found is reported.
parsed_event parse_event(std::string_view body);

// A canonical text of the event (kind, patient, data in name order; lengths prefixed): two posts
// of the same event give the same text whatever their JSON spacing or member order.
std::string canonical(const integration_event& e);

}  // namespace scrm::templates

// The routing policy of DESIGN.md §5 as a pure function: snapshot in, decision out. No I/O, no
// clock reads, no logging, no exceptions; the same snapshot always gives the same decision.
#pragma once

#include "scrm/routing/decision.hpp"
#include "scrm/routing/snapshot.hpp"

namespace scrm::routing {

enum class with_receipt : bool { no = false, yes = true };

// Decides where the message described by `s` goes. With with_receipt::yes the decision carries a
// receipt; without it the hot path builds only the five decision fields. Thread-safe (reads `s`
// only). `s` should satisfy validate(); if it does not, a decision is still returned (an unknown
// consultant counts as offline, an unknown session holder or exclusive agent as unavailable).
// Allocation failure terminates (noexcept).
decision decide(const snapshot& s, with_receipt r = with_receipt::no) noexcept;

// The same, reusing `out`'s buffers (targets, ids, receipt vectors): in a loop over messages this
// allocates nothing once the buffers have grown. `out` is fully overwritten.
void decide(const snapshot& s, decision& out, with_receipt r = with_receipt::no) noexcept;

}  // namespace scrm::routing

// Round-robin: each new flow takes the next eligible backend. The cursor is per lcore
// and per VIP, so with several workers the global order interleaves but every worker's
// share is balanced.
#pragma once

#include <cstdint>

namespace rondo::dp {

struct RoundRobin {
  /// Index in [0, n) for the next flow; n > 0.
  static uint32_t pick(uint32_t* cursor, uint32_t n) {
    // The pool can shrink between snapshots: wrap the cursor before using it.
    uint32_t i = *cursor < n ? *cursor : 0;
    *cursor = i + 1 < n ? i + 1 : 0;
    return i;
  }
};

}  // namespace rondo::dp

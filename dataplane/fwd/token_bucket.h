// A rate limit on the caller's clock, for replies rondo makes itself (ARP, ICMP echo): at
// most `rate` per second on average, in bursts of at most `burst`. It is the generic cell
// rate algorithm: one "theoretical arrival time" instead of a token count, integers only.
// One per worker; a single writer, so no atomics.
#pragma once

#include <algorithm>
#include <cstdint>

namespace rondo::dp {

class TokenBucket {
 public:
  /// rate 0: nothing passes.
  TokenBucket(uint64_t rate_per_s, uint64_t burst, uint64_t hz)
      : interval_(rate_per_s ? std::max<uint64_t>(hz / rate_per_s, 1) : 0),
        tolerance_(interval_ * (burst ? burst - 1 : 0)) {}

  /// True if one more event may happen at `now` (and count it).
  bool take(uint64_t now) {
    if (interval_ == 0) return false;
    const uint64_t tat = std::max(tat_, now);
    if (tat - now > tolerance_) return false;
    tat_ = tat + interval_;
    return true;
  }

 private:
  uint64_t interval_;   // ticks per event at the sustained rate
  uint64_t tolerance_;  // how far ahead of `now` the schedule may run (the burst)
  uint64_t tat_ = 0;    // when the next event is due at the sustained rate
};

}  // namespace rondo::dp

// Recent drops: per worker and per drop reason, the last few dropped frames (their first
// 128 bytes), so that an operator sees what is dropped, not only how many
// (`rondoctl drops --reason tcp_no_flow`).
//
// Rate-limited per reason (at most one sample every kIntervalMs): a flood costs one
// comparison per dropped packet and a copy ten times a second, nothing more.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "dataplane/stats/drop_reason.h"

namespace rondo::dp {

struct DropRaw {
  static constexpr uint32_t kKeep = 128;
  uint64_t at = 0;  // ticks
  DropReason reason = DropReason::kCount;
  uint16_t in_port = 0;
  uint32_t len = 0;
  uint8_t bytes[kKeep] = {};
};

class DropSampler {
 public:
  static constexpr uint32_t kPerReason = 4;
  static constexpr uint64_t kIntervalMs = 100;

  explicit DropSampler(uint64_t hz) : interval_(hz * kIntervalMs / 1000) {}

  /// A frame dropped for `r` at `now`: kept if its reason's last sample is old enough.
  void offer(DropReason r, const uint8_t* f, uint32_t len, uint16_t in_port, uint64_t now) {
    const auto i = static_cast<uint32_t>(r);
    if (i >= kDropReasonCount || now < next_[i]) return;
    next_[i] = now + interval_;
    DropRaw& d = ring_[i][head_[i]++ % kPerReason];
    d.at = now;
    d.reason = r;
    d.in_port = in_port;
    d.len = len;
    std::memcpy(d.bytes, f, std::min(len, DropRaw::kKeep));
  }

  /// Every sample kept (of reason `only`, or all when it is kDropReasonCount or more),
  /// newest first within a reason.
  std::vector<DropRaw> samples(uint32_t only = kDropReasonCount) const {
    std::vector<DropRaw> out;
    for (uint32_t i = 0; i < kDropReasonCount; ++i) {
      if (only < kDropReasonCount && i != only) continue;
      const uint32_t n = std::min(head_[i], kPerReason);
      for (uint32_t k = 0; k < n; ++k) out.push_back(ring_[i][(head_[i] - 1 - k) % kPerReason]);
    }
    return out;
  }

 private:
  uint64_t interval_;
  std::array<uint64_t, kDropReasonCount> next_{};
  std::array<uint32_t, kDropReasonCount> head_{};
  std::array<std::array<DropRaw, kPerReason>, kDropReasonCount> ring_{};
};

}  // namespace rondo::dp

// Latency histogram in TSC ticks: log2 buckets, each split into 16 linear sub-buckets
// (an HDR-histogram layout with ~6% resolution), fixed size, no allocation, O(1) add.
#pragma once

#include <array>
#include <bit>
#include <cstdint>

namespace rondo::gen {

class LatencyHistogram {
 public:
  static constexpr uint32_t kSubBits = 4;
  static constexpr uint32_t kSub = 1u << kSubBits;
  static constexpr uint32_t kBuckets = (64 - kSubBits + 1) * kSub;

  void add(uint64_t ticks) {
    ++counts_[index(ticks)];
    ++count_;
    if (ticks > max_) max_ = ticks;
  }
  void clear() { *this = LatencyHistogram(); }

  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }

  /// The smallest value v such that at least fraction q (0..1] of the samples are <= v,
  /// to the resolution of a sub-bucket (its upper bound, capped at the maximum seen).
  uint64_t quantile(double q) const {
    if (count_ == 0) return 0;
    auto want = static_cast<uint64_t>(q * static_cast<double>(count_) + 0.5);
    if (want == 0) want = 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= want) {
        const uint64_t hi = upper(i);
        return hi < max_ ? hi : max_;
      }
    }
    return max_;
  }

 private:
  // Values below 2^kSubBits get one bucket each; above, bucket = (exponent, top 4 bits
  // below the leading one).
  static uint32_t index(uint64_t v) {
    if (v < kSub) return static_cast<uint32_t>(v);
    const uint32_t msb = 63u - static_cast<uint32_t>(std::countl_zero(v));
    const uint32_t shift = msb - kSubBits;
    const auto sub = static_cast<uint32_t>((v >> shift) & (kSub - 1));
    return (shift + 1) * kSub + sub;
  }
  static uint64_t upper(uint32_t i) {
    if (i < kSub) return i;
    const uint32_t shift = i / kSub - 1;
    const uint64_t sub = i % kSub;
    return (((kSub | sub) + 1) << shift) - 1;
  }

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t max_ = 0;
};

}  // namespace rondo::gen

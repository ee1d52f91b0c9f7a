// Least connections, weighted: a new flow goes to the eligible backend with the fewest
// active flows per unit of weight. The counts are the workers' per-backend active flows
// (stats/counters.h), summed by the main lcore every kLoadRefreshMs and published to the
// workers read-only (BackendLoad, through an RcuSlot like the next hops). Between two
// publications each worker adds the flows it placed itself (LcDelta), so a burst of new
// connections within one interval spreads instead of all going to the backend that was
// least loaded when the counts were taken. Other workers' new flows in the interval are
// seen only at the next publication.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "dataplane/state/snapshot.h"
#include "dataplane/stats/counters.h"

namespace rondo::dp {

/// How often the main lcore sums and publishes the counts (only while some VIP uses lc).
inline constexpr uint32_t kLoadRefreshMs = 100;

/// Active flows per backend id, summed over the workers: built by the main lcore, read-only
/// to the workers.
struct BackendLoad {
  uint64_t epoch = 0;           // distinct for every publication, never 0
  std::vector<uint32_t> flows;  // by backend id; ids past the end count 0
  uint32_t at(uint32_t id) const { return id < flows.size() ? flows[id] : 0; }
};

/// A worker's own new flows for one backend since the publication numbered `epoch` (the low
/// 32 bits of BackendLoad::epoch; 0 before the first). An entry tagged with another epoch
/// counts 0: a publication resets every delta without touching them.
struct LcDelta {
  uint32_t epoch = 0;
  uint32_t flows = 0;
};

struct LeastConn {
  /// Index in [0, n) minimising flows(i) / weight(i); n > 0, weights > 0. Compared as
  /// flows(a) * weight(b) < flows(b) * weight(a) in 64 bits (flows < 2^33, weights < 2^16):
  /// no division, no rounding. Ties go to the lowest index (with the worker's delta, the
  /// next pick of a tie goes to the next one). O(n).
  template <class Weight, class Flows>
  static uint32_t pick(uint32_t n, Weight&& weight, Flows&& flows) {
    uint32_t best = 0;
    uint64_t best_flows = flows(0), best_weight = weight(0);
    for (uint32_t i = 1; i < n; ++i) {
      const uint64_t f = flows(i), w = weight(i);
      if (f * best_weight < best_flows * w) {
        best = i;
        best_flows = f;
        best_weight = w;
      }
    }
    return best;
  }
};

/// The counts to publish for snapshot s: for every backend of an lc VIP, its active flows
/// summed over `workers` (each worker's BackendCounters array, by backend id, read with
/// relaxed loads as the stats are). Null when s has no lc VIP (nothing to publish).
std::unique_ptr<BackendLoad> sum_backend_load(const Snapshot& s,
                                              std::span<const BackendCounters* const> workers,
                                              uint64_t epoch);

}  // namespace rondo::dp

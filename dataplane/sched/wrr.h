// Smooth weighted round-robin (nginx's upstream algorithm): at each pick every eligible
// backend's current value grows by its weight, the largest current wins and gives back the
// sum of the weights. Over a cycle of sum(weights) picks each backend is chosen exactly
// weight times, and the choices interleave (3:2:1 gives A B A C B A, not A A A B B C).
// The current values are per lcore and per backend (by stable id; a backend belongs to one
// VIP), so with several workers each worker's shares are exact and the global order
// interleaves, as with rr.
#pragma once

#include <cstdint>

namespace rondo::dp {

struct SmoothWrr {
  /// Index in [0, n) for the next flow; n > 0. weight(i) is backend i's weight (> 0) and
  /// current(i) a reference to its current value (int64_t: the weights of 65536 backends
  /// sum past INT32_MAX). Ties go to the lowest index. O(n).
  template <class Weight, class Current>
  static uint32_t pick(uint32_t n, Weight&& weight, Current&& current) {
    int64_t total = 0;
    uint32_t best = 0;
    int64_t best_value = INT64_MIN;
    for (uint32_t i = 0; i < n; ++i) {
      const int64_t w = weight(i);
      int64_t& c = current(i);
      c += w;
      total += w;
      if (c > best_value) {
        best_value = c;
        best = i;
      }
    }
    current(best) -= total;
    return best;
  }
};

}  // namespace rondo::dp

// The lc scheduler's counts (sched/lc.h) at work on the main lcore: every kLoadRefreshMs,
// while the current snapshot has an lc VIP, sum the workers' per-backend active flows and
// publish them to the workers through an RcuSlot (the Publisher's QSBR variable: the
// quiescent state every worker reports once per loop covers it). Owned by the Dataplane;
// poll() is called from the main lcore's loop.
#pragma once

#include <cstdint>
#include <vector>

#include "dataplane/sched/lc.h"
#include "dataplane/state/rcu_slot.h"

namespace rondo::dp {

class LoadPublisher {
 public:
  /// hz: TSC ticks per second. workers: each worker's BackendCounters (by backend id).
  LoadPublisher(rte_rcu_qsbr* qs, uint64_t hz) : slot_(qs), period_(hz / 1000 * kLoadRefreshMs) {}

  void set_workers(std::vector<const BackendCounters*> workers) { workers_ = std::move(workers); }
  const RcuSlot<BackendLoad>* slot() const { return &slot_; }

  /// One turn: publish new counts if the period has passed and s has an lc VIP (this
  /// waits for the workers' quiescent states, about one worker loop).
  void poll(const Snapshot* s, uint64_t now) {
    if (!s || now - last_ < period_) return;
    last_ = now;
    if (auto load = sum_backend_load(*s, workers_, epoch_ + 1)) {
      ++epoch_;
      slot_.publish(std::move(load));
    }
  }

 private:
  RcuSlot<BackendLoad> slot_;
  uint64_t period_;
  uint64_t last_ = 0;
  uint64_t epoch_ = 0;
  std::vector<const BackendCounters*> workers_;
};

}  // namespace rondo::dp

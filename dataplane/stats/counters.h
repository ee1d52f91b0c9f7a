// Per-lcore counters. Each lcore is the only writer of its own counters, so they are
// plain integers (no atomics, no locks). The control agent reads them from another thread
// with relaxed atomic loads (read_counter): an aligned 64-bit load does not tear on the
// CPUs DPDK supports, and a reader only needs a recent value, not a consistent set.
#pragma once

#include <array>
#include <cstdint>

#include "dataplane/api/ctl.h"
#include "dataplane/stats/drop_reason.h"

namespace rondo::dp {

struct alignas(64) LcoreCounters {
  uint64_t rx_packets = 0;
  uint64_t rx_bytes = 0;
  uint64_t tx_packets = 0;
  uint64_t tx_bytes = 0;
  uint64_t consumed = 0;  // ARP replies and the like: taken by the dataplane itself
  uint64_t steered_out = 0;  // handed to the owning worker (counted in rx here)
  uint64_t steered_in = 0;   // from another worker (not counted in rx here)
  uint64_t originated = 0;   // frames the worker made itself (ARP requests)
  // Every frame is counted once on the way in and once on the way out:
  //   rx + steered_in + originated == tx + drops + consumed + steered_out
  uint64_t busy_cycles = 0;
  uint64_t idle_cycles = 0;
  uint64_t flows_active = 0;
  std::array<uint64_t, kDropReasonCount> drops{};

  void drop(DropReason r) { ++drops[static_cast<uint32_t>(r)]; }
};

struct BackendCounters {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t connections = 0;
  uint64_t active_flows = 0;  // incremented on flow creation, decremented on removal
};

inline constexpr uint32_t kBackendSlots = api::kMaxBackendId + 1;

/// Read a counter another lcore writes (see the file comment).
inline uint64_t read_counter(const uint64_t& c) { return __atomic_load_n(&c, __ATOMIC_RELAXED); }

}  // namespace rondo::dp

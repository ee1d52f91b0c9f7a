// Per-interface traffic counters (an interface: a port plus an optional VLAN, api::Interface).
// One array per worker, indexed by interface id; the worker is the only writer (plain
// integers, no atomics), the control agent sums the workers' arrays into Stats::interfaces
// with relaxed loads, as it does LcoreCounters and BackendCounters.
#pragma once

#include <array>
#include <cstdint>

#include "dataplane/api/ctl.h"

namespace rondo::dp {

struct IfaceCounters {
  uint64_t rx_packets = 0;  // classified to the interface
  uint64_t rx_bytes = 0;
  uint64_t tx_packets = 0;  // queued for TX on it
  uint64_t tx_bytes = 0;
};
static_assert(sizeof(IfaceCounters) == 32);

inline constexpr uint32_t kIfaceSlots = api::kMaxInterfaces;
/// One worker's counters, indexed by interface id (8 KB).
using IfaceCounterArray = std::array<IfaceCounters, kIfaceSlots>;

}  // namespace rondo::dp

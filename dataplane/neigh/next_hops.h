// The resolved next hops as the workers see them: an immutable copy of the neighbour
// table's entries that have a MAC (reachable or static), built by the neighbour manager on
// the main lcore and published by pointer with RCU (state/rcu_slot.h), like the config
// snapshot. A worker looks a next hop up once per forwarded packet: one keyed hash, a short
// linear probe, no writes, no locks.
#pragma once

#include <cstdint>
#include <vector>

#include "dataplane/flow/siphash.h"
#include "dataplane/neigh/neigh.h"

namespace rondo::dp {

struct NextHop {
  uint32_t ip = 0;  // network order; 0 marks an empty slot (0.0.0.0 is never a next hop)
  uint8_t mac[6] = {};
  uint16_t port_id = 0;
};

// A next hop a worker found unresolved: the main lcore is asked to resolve it.
struct NeighAsk {
  uint32_t ip;  // network order
  uint16_t port_id;
};

class NextHopMap {
 public:
  /// Copy the entries of t that have a MAC. key keys the slot hash (as the table's).
  NextHopMap(const NeighTable& t, const HashKey& key);

  /// The next hop for ip (network order), or nullptr if it is not resolved.
  const NextHop* find(uint32_t ip) const {
    for (uint32_t i = home(ip);; i = (i + 1) & mask_) {
      const NextHop& h = slots_[i];
      if (h.ip == ip) return &h;
      if (h.ip == 0) return nullptr;
    }
  }
  uint32_t size() const { return used_; }
  /// NeighTable::version() it was built from.
  uint64_t version() const { return version_; }

 private:
  uint32_t home(uint32_t ip) const { return static_cast<uint32_t>(siphash13_u32(key_, ip)) & mask_; }

  std::vector<NextHop> slots_;  // power-of-two size, at most half full
  uint32_t mask_ = 0;
  uint32_t used_ = 0;
  uint64_t version_ = 0;
  HashKey key_;
};

}  // namespace rondo::dp

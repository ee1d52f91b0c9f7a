// The resolved next hops as the workers see them: an immutable copy of a neighbour table's
// entries that have a MAC (reachable or static), built by the neighbour manager on the main
// lcore and published by pointer with RCU (state/rcu_slot.h), like the config snapshot. One
// map per family (NextHopMap for IPv4, NextHopMap6 for IPv6), keyed like the table by
// (interface, address). A worker looks a next hop up (the route's interface and next hop)
// once per forwarded packet: one keyed hash, a short linear probe, no writes, no locks.
#pragma once

#include <cstdint>
#include <vector>

#include "dataplane/flow/siphash.h"
#include "dataplane/neigh/neigh.h"
#include "dataplane/pkt/ip6.h"

namespace rondo::dp {

inline bool neigh_ip_zero(uint32_t ip) { return ip == 0; }
inline bool neigh_ip_zero(const Ip6& ip) { return ip.is_zero(); }

/// A: uint32_t (IPv4, network order) or Ip6. The zero address marks an empty slot (0.0.0.0
/// and :: are never next hops).
template <class A>
struct BasicNextHop {
  A ip{};
  uint16_t iface = 0;  // IfaceConf index
  uint8_t mac[6] = {};
};
using NextHop = BasicNextHop<uint32_t>;
using NextHop6 = BasicNextHop<Ip6>;

// A next hop a worker found unresolved: the main lcore is asked to resolve it. One type for
// both families, so that one ring per worker carries them (NeighService).
struct NeighAsk {
  uint32_t ip = 0;  // family 4: network order
  uint16_t iface = 0;  // the route's interface
  uint8_t family = 4;  // 4 or 6
  uint8_t pad = 0;
  Ip6 ip6;  // family 6

  static NeighAsk v6(const Ip6& a, uint16_t iface) {
    NeighAsk k;
    k.family = 6;
    k.ip6 = a;
    k.iface = iface;
    return k;
  }
};
static_assert(sizeof(NeighAsk) == 24);

template <class A>
class BasicNextHopMap {
 public:
  /// Copy the entries of t that have a MAC. key keys the slot hash (as the table's).
  BasicNextHopMap(const BasicNeighTable<A>& t, const HashKey& key);

  /// The next hop for ip (network order) on iface, or nullptr if it is not resolved.
  const BasicNextHop<A>* find(uint16_t iface, const A& ip) const {
    for (uint32_t i = home(iface, ip);; i = (i + 1) & mask_) {
      const BasicNextHop<A>& h = slots_[i];
      if (h.ip == ip && h.iface == iface) return &h;
      if (neigh_ip_zero(h.ip)) return nullptr;
    }
  }
  uint32_t size() const { return used_; }
  /// The table's version() it was built from.
  uint64_t version() const { return version_; }

 private:
  uint32_t home(uint16_t iface, const A& ip) const {
    return static_cast<uint32_t>(neigh_hash(key_, iface, ip)) & mask_;
  }

  std::vector<BasicNextHop<A>> slots_;  // power-of-two size, at most half full
  uint32_t mask_ = 0;
  uint32_t used_ = 0;
  uint64_t version_ = 0;
  HashKey key_;
};

extern template class BasicNextHopMap<uint32_t>;
extern template class BasicNextHopMap<Ip6>;
using NextHopMap = BasicNextHopMap<uint32_t>;
using NextHopMap6 = BasicNextHopMap<Ip6>;

}  // namespace rondo::dp

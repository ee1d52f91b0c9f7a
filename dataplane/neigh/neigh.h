// The neighbour tables: (interface, next hop) -> MAC, one for IPv4 (ARP) and one for IPv6 (NDP),
// the same code over a 4- or 16-byte key. Both are owned by the neighbour manager on the main
// lcore (manager.h); workers read a copy of their resolved entries published with RCU
// (next_hops.h).
//
// What it learns, and from whom (docs/security.md; for IPv6 read "ARP" as "neighbour
// advertisement" and "request" as "neighbour solicitation"):
//   - Entries are created only for addresses rondo is about to send to (want_request: a
//     backend's next hop, a client on the link) or from the configuration (static). An ARP
//     frame never creates an entry: a flood of requests from random senders cannot fill it.
//   - An ARP frame fills an entry rondo asked for (incomplete, or a request outstanding to
//     re-check a reachable one). Unasked for, it may refresh an entry with the same MAC but
//     never change it: an unsolicited (gratuitous, forged) ARP cannot redirect a backend.
//     A MAC that really changed is picked up when the entry goes stale and is re-requested.
//   - The caller checks the sender (unicast, non-zero, equal to the Ethernet source).
//   - Bounded: when full, an entry that is neither static nor in use (an unanswered
//     request, or a MAC not confirmed for a while) is evicted to make room.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "dataplane/flow/siphash.h"
#include "dataplane/pkt/ip6.h"

namespace rondo::dp {

enum class NeighState : uint8_t { kEmpty = 0, kIncomplete, kReachable, kStatic };

enum class NeighLearned : uint8_t {
  kFilled,     // an entry we asked for got its MAC (or a changed one)
  kRefreshed,  // same MAC, confirmed again
  kIgnored,    // no entry for it, or a static one
  kRefused,    // unsolicited, and it would change a known MAC
};

/// The slot hash of a next hop on an interface: SipHash-1-3 of the address's bytes as stored
/// (network order) followed by the interface id (little-endian): 6 or 18 bytes. The v4 form
/// is one block, as the address alone was (siphash13_u32): the key costs no extra round.
inline uint64_t neigh_hash(const HashKey& key, uint16_t iface, uint32_t ip) {
  sip::State s = sip::init(key);
  sip::absorb<1>(s, sip::load_le(&ip, 4) | uint64_t{iface} << 32 | uint64_t{6} << 56);
  return sip::finish<3>(s);
}
inline uint64_t neigh_hash(const HashKey& key, uint16_t iface, const Ip6& ip) {
  uint8_t b[18];
  std::memcpy(b, ip.b, 16);
  b[16] = static_cast<uint8_t>(iface);
  b[17] = static_cast<uint8_t>(iface >> 8);
  return siphash<1, 3>(key, b, sizeof b);
}

/// A: uint32_t (IPv4, network order) or Ip6.
template <class A>
struct BasicNeigh {
  using State = NeighState;
  A ip{};  // network order
  uint8_t mac[6] = {};
  uint16_t iface = 0;  // the interface it is on (IfaceConf index)
  State state = State::kEmpty;
  uint64_t updated = 0;       // when the MAC was last confirmed
  uint64_t last_request = 0;  // when we last sent a request for it
  bool requested = false;     // a request is outstanding: the next answer is solicited
  bool has_mac() const { return state == State::kReachable || state == State::kStatic; }
};
using Neigh = BasicNeigh<uint32_t>;
using Neigh6 = BasicNeigh<Ip6>;

template <class A>
class BasicNeighTable {
 public:
  using Entry = BasicNeigh<A>;
  using Learned = NeighLearned;

  /// capacity: entries at most. When the table is full, an incomplete entry whose request
  /// went unanswered for `stale_incomplete` ticks, or a reachable one not confirmed for
  /// `stale_reachable` ticks, may be evicted (the oldest of those looked at). key keys the
  /// slot hash (the dataplane derives it from its secret, HashUse::kNeighbours), so nobody
  /// can pick addresses that pile onto one probing chain.
  explicit BasicNeighTable(uint32_t capacity = 4096, uint64_t stale_incomplete = 0,
                      uint64_t stale_reachable = 0, const HashKey& key = {});

  /// The entry for (iface, ip) (ip in network order), or nullptr. The same address on two
  /// interfaces (fe80::1 behind two VLANs) is two entries.
  const Entry* find(uint16_t iface, const A& ip) const;

  /// An ARP frame (or neighbour advertisement) that came in on iface says ip is at mac (see
  /// the file comment for what is taken). Only (iface, ip) is looked at: an answer on
  /// another interface (the wrong VLAN) fills nothing, and no entry ever moves between
  /// interfaces.
  Learned learn(uint16_t iface, const A& ip, const uint8_t mac[6], uint64_t now);

  /// Replace all static entries (configuration change). Learned entries are kept.
  void set_static(const std::vector<std::pair<A, Entry>>& entries);

  /// Forget every entry on iface but the static ones (its port or VLAN changed, or the id
  /// went to another interface: what was learned there is another link's). Returns how
  /// many went; the version grows when one had a MAC.
  uint32_t erase_iface(uint16_t iface);

  /// Should a request for ip on iface go out now? True at most once per `interval` per entry;
  /// creates an incomplete entry to remember the request (evicting a stale one if the
  /// table is full). False when nothing can be evicted.
  bool want_request(uint16_t iface, const A& ip, uint64_t now, uint64_t interval);

  /// Visit every entry (any state) in slot order.
  template <class F>
  void for_each(F&& f) const {
    for (const Entry& n : slots_)
      if (n.state != NeighState::kEmpty) f(n);
  }

  /// Grows whenever what a resolved entry says changes (filled, MAC changed, static
  /// entries replaced, one evicted): the manager republishes when it moved.
  uint64_t version() const { return version_; }

  uint32_t size() const { return used_; }
  uint32_t capacity() const { return capacity_; }
  /// Entries evicted to make room since start.
  uint64_t evictions() const { return evictions_; }

 private:
  uint32_t home(uint16_t iface, const A& ip) const {
    return static_cast<uint32_t>(neigh_hash(key_, iface, ip)) & mask_;
  }
  Entry* find_slot(uint16_t iface, const A& ip);
  Entry* insert(uint16_t iface, const A& ip, uint64_t now, bool may_evict);
  bool evict_one(uint64_t now);
  void erase(uint32_t i);

  std::vector<Entry> slots_;  // open addressing (linear probing), power-of-two size
  uint32_t mask_;
  uint32_t used_ = 0;
  uint32_t capacity_;
  uint64_t stale_incomplete_;
  uint64_t stale_reachable_;
  uint32_t hand_ = 0;  // where the next eviction scan starts
  HashKey key_;
  uint64_t evictions_ = 0;
  uint64_t version_ = 0;
};

extern template class BasicNeighTable<uint32_t>;
extern template class BasicNeighTable<Ip6>;
using NeighTable = BasicNeighTable<uint32_t>;
using NeighTable6 = BasicNeighTable<Ip6>;

}  // namespace rondo::dp

// The neighbour (ARP) table: IPv4 next hop -> MAC and port. There is one, owned by the
// neighbour manager on the main lcore (manager.h); workers read a copy of its resolved
// entries published with RCU (next_hops.h).
//
// What it learns, and from whom (docs/security.md):
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
#include <vector>

#include "dataplane/flow/siphash.h"

namespace rondo::dp {

struct Neigh {
  enum class State : uint8_t { kEmpty = 0, kIncomplete, kReachable, kStatic };
  uint32_t ip = 0;  // network order
  uint8_t mac[6] = {};
  uint16_t port_id = 0;
  State state = State::kEmpty;
  uint64_t updated = 0;       // when the MAC was last confirmed
  uint64_t last_request = 0;  // when we last sent a request for it
  bool requested = false;     // a request is outstanding: the next answer is solicited
  bool has_mac() const { return state == State::kReachable || state == State::kStatic; }
};

class NeighTable {
 public:
  enum class Learned : uint8_t {
    kFilled,     // an entry we asked for got its MAC (or a changed one)
    kRefreshed,  // same MAC, confirmed again
    kIgnored,    // no entry for it, or a static one
    kRefused,    // unsolicited, and it would change a known MAC
  };

  /// capacity: entries at most. When the table is full, an incomplete entry whose request
  /// went unanswered for `stale_incomplete` ticks, or a reachable one not confirmed for
  /// `stale_reachable` ticks, may be evicted (the oldest of those looked at). key keys the
  /// slot hash (the dataplane derives it from its secret, HashUse::kNeighbours), so nobody
  /// can pick addresses that pile onto one probing chain.
  explicit NeighTable(uint32_t capacity = 4096, uint64_t stale_incomplete = 0,
                      uint64_t stale_reachable = 0, const HashKey& key = {});

  /// The entry for ip (network order), or nullptr.
  const Neigh* find(uint32_t ip) const;

  /// An ARP frame says ip is at mac (see the file comment for what is taken).
  Learned learn(uint32_t ip, const uint8_t mac[6], uint16_t port_id, uint64_t now);

  /// Replace all static entries (configuration change). Learned entries are kept.
  void set_static(const std::vector<std::pair<uint32_t, Neigh>>& entries);

  /// Should a request for ip go out now? True at most once per `interval` per address;
  /// creates an incomplete entry to remember the request (evicting a stale one if the
  /// table is full). False when nothing can be evicted.
  bool want_request(uint32_t ip, uint16_t port_id, uint64_t now, uint64_t interval);

  /// Visit every entry (any state) in slot order.
  template <class F>
  void for_each(F&& f) const {
    for (const Neigh& n : slots_)
      if (n.state != Neigh::State::kEmpty) f(n);
  }

  /// Grows whenever what a resolved entry says changes (filled, MAC or port moved, static
  /// entries replaced, one evicted): the manager republishes when it moved.
  uint64_t version() const { return version_; }

  uint32_t size() const { return used_; }
  uint32_t capacity() const { return capacity_; }
  /// Entries evicted to make room since start.
  uint64_t evictions() const { return evictions_; }

 private:
  uint32_t home(uint32_t ip) const { return static_cast<uint32_t>(siphash13_u32(key_, ip)) & mask_; }
  Neigh* find_slot(uint32_t ip);
  Neigh* insert(uint32_t ip, uint64_t now, bool may_evict);
  bool evict_one(uint64_t now);
  void erase(uint32_t i);

  std::vector<Neigh> slots_;  // open addressing (linear probing), power-of-two size
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

}  // namespace rondo::dp

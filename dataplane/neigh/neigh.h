// Per-lcore neighbour (ARP) table: IPv4 next hop -> MAC and port.
// Entries are learned from ARP (replies to our requests, and requests aimed at our own
// addresses, as Linux does), or installed statically from the configuration. An entry
// older than the refresh interval is still used while a new request is sent for it.
#pragma once

#include <cstdint>
#include <vector>

namespace rondo::dp {

struct Neigh {
  enum class State : uint8_t { kEmpty = 0, kIncomplete, kReachable, kStatic };
  uint32_t ip = 0;  // network order
  uint8_t mac[6] = {};
  uint16_t port_id = 0;
  State state = State::kEmpty;
  uint64_t updated = 0;       // when the MAC was last confirmed
  uint64_t last_request = 0;  // when we last sent a request for it
  bool requested = false;
  bool has_mac() const { return state == State::kReachable || state == State::kStatic; }
};

class NeighTable {
 public:
  explicit NeighTable(uint32_t capacity = 4096);

  /// The entry for ip (network order), or nullptr.
  const Neigh* find(uint32_t ip) const;

  /// Record ip -> mac. Creates the entry only if `create`; never overrides a static one.
  void learn(uint32_t ip, const uint8_t mac[6], uint16_t port_id, uint64_t now, bool create);

  /// Replace all static entries (configuration change). Learned entries are kept.
  void set_static(const std::vector<std::pair<uint32_t, Neigh>>& entries);

  /// Should a request for ip go out now? True at most once per `interval` per address;
  /// creates an incomplete entry to remember the request. False when the table is full.
  bool want_request(uint32_t ip, uint16_t port_id, uint64_t now, uint64_t interval);

  uint32_t size() const { return used_; }

 private:
  Neigh* slot(uint32_t ip, bool create);
  std::vector<Neigh> slots_;  // open addressing, power-of-two size, never shrinks
  uint32_t mask_;
  uint32_t used_ = 0;
  uint32_t capacity_;
};

}  // namespace rondo::dp

// Local ports for full-NAT: one pool per (lcore, local ip). A port returns to the pool only
// when its flow is gone, and is handed out again as late as possible (FIFO), so a backend
// sees a reused (local ip, port) pair as rarely as the range allows.
#pragma once

#include <cstdint>
#include <vector>

namespace rondo::dp {

class PortOwnership;

class PortPool {
 public:
  /// All ports in [lo, hi] (host order, inclusive) start free.
  PortPool(uint16_t lo, uint16_t hi);
  /// The ports in [lo, hi] that `worker` owns under `own`.
  PortPool(uint16_t lo, uint16_t hi, const PortOwnership& own, uint32_t worker);

  /// Take the port freed longest ago. false if none is free.
  bool get(uint16_t* port);
  /// Give a port back. Ports outside [lo, hi] or already free are ignored (returns false).
  bool put(uint16_t port);

  uint32_t available() const { return count_; }
  uint16_t lo() const { return lo_; }
  uint16_t hi() const { return hi_; }

 private:
  uint16_t lo_, hi_;
  std::vector<uint16_t> ring_;
  std::vector<uint8_t> in_pool_;  // per port offset: 1 free, 0 taken, 2 another worker's
  uint32_t head_ = 0, count_ = 0;
};

/// Which worker owns a local port: decided by the port's low bits (port & mask), so that
/// a NIC can steer every worker's replies to its queue with one masked match per residue
/// (rte_flow), and so that software steering needs one table lookup. mask + 1 is the
/// smallest power of two >= the number of workers; residues are dealt round-robin.
class PortOwnership {
 public:
  static constexpr uint32_t kMaxWorkers = 64;
  explicit PortOwnership(uint32_t n_workers);
  uint32_t owner(uint16_t port) const { return owner_[port & mask_]; }
  uint16_t mask() const { return mask_; }
  uint32_t workers() const { return n_; }

 private:
  uint32_t n_;
  uint16_t mask_ = 0;
  uint8_t owner_[kMaxWorkers] = {};
};

}  // namespace rondo::dp

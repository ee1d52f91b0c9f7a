// Local ports for full-NAT: one pool per (lcore, local ip). A port returns to the pool only
// when its flow is gone, and is handed out again as late as possible (FIFO), so a backend
// sees a reused (local ip, port) pair as rarely as the range allows.
#pragma once

#include <cstdint>
#include <vector>

namespace rondo::dp {

class PortPool {
 public:
  /// All ports in [lo, hi] (host order, inclusive) start free.
  PortPool(uint16_t lo, uint16_t hi);

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
  std::vector<uint8_t> in_pool_;  // per port offset: 1 if free (guards double put)
  uint32_t head_ = 0, count_ = 0;
};

/// The slice of [lo, hi] owned by worker `index` of `n` (contiguous, sizes differ by at most 1).
/// A worker left without ports (n larger than the range) gets an empty slice, slice_lo > slice_hi.
void port_slice(uint16_t lo, uint16_t hi, uint32_t index, uint32_t n, uint16_t* slice_lo,
                uint16_t* slice_hi);

}  // namespace rondo::dp

// Local-port pool: a FIFO ring over [lo, hi]; see port_pool.h for why FIFO.
#include "dataplane/flow/port_pool.h"

#include <algorithm>

namespace rondo::dp {

PortPool::PortPool(uint16_t lo, uint16_t hi) : lo_(lo), hi_(hi) {
  // lo > hi is an empty range (what port_slice() gives a worker with no ports).
  uint32_t n = lo <= hi ? uint32_t{hi} - lo + 1 : 0;
  ring_.resize(n);
  in_pool_.assign(n, 1);
  for (uint32_t i = 0; i < n; i++) ring_[i] = static_cast<uint16_t>(lo + i);
  count_ = n;
}

PortPool::PortPool(uint16_t lo, uint16_t hi, const PortOwnership& own, uint32_t worker)
    : PortPool(lo, hi) {
  // Keep only this worker's ports, in ascending order.
  uint32_t kept = 0;
  for (uint32_t i = 0; i < count_; ++i) {
    const uint16_t p = ring_[i];
    if (own.owner(p) == worker)
      ring_[kept++] = p;
    else
      in_pool_[p - lo_] = 2;  // another worker's: never taken, never put back here
  }
  count_ = kept;
  ring_.resize(std::max<uint32_t>(kept, 1));
}

bool PortPool::get(uint16_t* port) {
  if (count_ == 0) return false;
  uint16_t p = ring_[head_];
  head_ = head_ + 1 == ring_.size() ? 0 : head_ + 1;
  count_--;
  in_pool_[p - lo_] = 0;
  *port = p;
  return true;
}

bool PortPool::put(uint16_t port) {
  if (port < lo_ || port > hi_ || in_pool_[port - lo_] != 0) return false;
  // A port can only be out of the pool if it was taken, so count_ < size and the ring has room.
  uint32_t tail = head_ + count_;
  if (tail >= ring_.size()) tail -= static_cast<uint32_t>(ring_.size());
  ring_[tail] = port;
  in_pool_[port - lo_] = 1;
  count_++;
  return true;
}

PortOwnership::PortOwnership(uint32_t n_workers) : n_(std::clamp<uint32_t>(n_workers, 1, kMaxWorkers)) {
  uint32_t span = 1;
  while (span < n_) span <<= 1;
  mask_ = static_cast<uint16_t>(span - 1);
  for (uint32_t r = 0; r < span; ++r) owner_[r] = static_cast<uint8_t>(r % n_);
}

}  // namespace rondo::dp

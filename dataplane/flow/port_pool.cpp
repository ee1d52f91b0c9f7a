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

void port_slice(uint16_t lo, uint16_t hi, uint32_t index, uint32_t n, uint16_t* slice_lo,
                uint16_t* slice_hi) {
  uint32_t total = lo <= hi ? uint32_t{hi} - lo + 1 : 0;
  uint32_t base = n != 0 ? total / n : 0;
  uint32_t extra = n != 0 ? total % n : 0;  // the first `extra` slices get one more port
  uint32_t size = index < n ? base + (index < extra ? 1 : 0) : 0;
  if (size == 0) {
    // Empty (more workers than ports, or a bad index): lo > hi, which PortPool reads as empty.
    *slice_lo = 1;
    *slice_hi = 0;
    return;
  }
  uint32_t start = lo + index * base + std::min(index, extra);
  *slice_lo = static_cast<uint16_t>(start);
  *slice_hi = static_cast<uint16_t>(start + size - 1);
}

}  // namespace rondo::dp

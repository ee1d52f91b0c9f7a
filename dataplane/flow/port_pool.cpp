// Local ports: ownership, the quarantine, the keyed search order (see port_pool.h).
#include "dataplane/flow/port_pool.h"

#include <algorithm>
#include <stdexcept>

namespace rondo::dp {

PortOwnership::PortOwnership(uint32_t n_workers) : n_(std::clamp<uint32_t>(n_workers, 1, kMaxWorkers)) {
  uint32_t span = 1;
  while (span < n_) span <<= 1;
  mask_ = static_cast<uint16_t>(span - 1);
  for (uint32_t r = 0; r < span; ++r) owner_[r] = static_cast<uint8_t>(r % n_);
}

// ---- Quarantine ----

Quarantine::Quarantine(uint32_t capacity, const HashKey& key, LeaveFn leave, void* ctx)
    : cap_(capacity), key_(key), leave_(leave), ctx_(ctx) {
  if (capacity == 0 || capacity > (1u << 30)) throw std::invalid_argument("quarantine capacity out of range");
  ring_.resize(capacity);
  uint32_t n = 2;
  while (n < 2 * capacity) n <<= 1;  // at most half full: short probe runs
  index_.assign(n, 0);
  index_mask_ = n - 1;
}

uint32_t Quarantine::hash_of(const PortTuple& t) const {
  return static_cast<uint32_t>(siphash<1, 3>(key_, &t, sizeof t));
}

void Quarantine::pop_head() {
  const Entry& e = ring_[head_];
  // Find the head's index slot, then close the gap (backward shift): every later entry of
  // the run that may move into the gap without passing its home slot moves up.
  uint32_t i = e.hash & index_mask_;
  while (index_[i] != head_ + 1) i = (i + 1) & index_mask_;
  for (uint32_t j = (i + 1) & index_mask_; index_[j] != 0; j = (j + 1) & index_mask_) {
    const uint32_t home = ring_[index_[j] - 1].hash & index_mask_;
    // j's entry may fill i if its home is not cyclically in (i, j].
    const bool home_in = i < j ? (home > i && home <= j) : (home > i || home <= j);
    if (!home_in) {
      index_[i] = index_[j];
      i = j;
    }
  }
  index_[i] = 0;
  const uint32_t id = e.backend_id;
  head_ = head_ + 1 == cap_ ? 0 : head_ + 1;
  --count_;
  if (leave_) leave_(ctx_, id);
}

void Quarantine::expire(uint64_t now) {
  while (count_ && ring_[head_].until <= now) pop_head();
}

void Quarantine::add(const PortTuple& t, uint32_t backend_id, uint64_t until, uint64_t now) {
  expire(now);
  if (count_ == cap_) {
    pop_head();
    ++released_early_;
  }
  uint32_t pos = head_ + count_;
  if (pos >= cap_) pos -= cap_;
  ring_[pos] = Entry{t, backend_id, hash_of(t), until};
  uint32_t i = ring_[pos].hash & index_mask_;
  while (index_[i] != 0) i = (i + 1) & index_mask_;
  index_[i] = pos + 1;
  ++count_;
}

bool Quarantine::holds(const PortTuple& t, uint64_t now) {
  expire(now);
  if (count_ == 0) return false;
  for (uint32_t i = hash_of(t) & index_mask_; index_[i] != 0; i = (i + 1) & index_mask_)
    if (ring_[index_[i] - 1].t == t) return true;
  return false;
}

// ---- PortPicker ----

PortPicker::PortPicker(uint16_t lo, uint16_t hi, const PortOwnership& own, uint32_t worker,
                       const HashKey& key, uint64_t seed)
    : lo_(lo), range_(lo <= hi ? uint32_t{hi} - lo + 1 : 0), mask_(own.mask()), worker_(worker),
      own_(own), key_(key) {
  for (uint32_t i = 0; i < range_; ++i)
    if (own.owner(static_cast<uint16_t>(lo + i)) == worker) ++share_;
  // Counters start where the seed says: a restarted process takes other ports first.
  uint64_t x = seed;
  for (auto& c : perturb_) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;  // LCG: spreads one seed
    c = static_cast<uint16_t>(x >> 48);
  }
}

}  // namespace rondo::dp

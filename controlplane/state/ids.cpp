#include "controlplane/state/ids.h"

#include <algorithm>

namespace rondo::cp {

std::optional<uint32_t> IdAllocator::allocate(const std::set<uint32_t>& in_use, Seconds now,
                                               Seconds quarantine,
                                               const std::function<bool(uint32_t)>& may_have_flows) {
  prune(now, quarantine);
  // Fresh ids first: skipping ids in use covers a state restored with gaps.
  while (next_ <= max_id_) {
    const uint32_t id = next_++;
    if (!in_use.count(id) && !retired_.count(id)) return id;
  }
  // All ids were used once: reuse the lowest one that is provably idle.
  for (uint32_t id = 0; id <= max_id_; ++id) {
    if (in_use.count(id) || retired_.count(id)) continue;
    if (may_have_flows && may_have_flows(id)) continue;
    return id;
  }
  return std::nullopt;
}

void IdAllocator::retire(uint32_t id, Seconds now) { retired_[id] = now; }

void IdAllocator::reserve(uint32_t id) { next_ = std::max(next_, id + 1); }

void IdAllocator::restore(uint32_t next, std::map<uint32_t, Seconds> retired) {
  next_ = std::min(next, max_id_ + 1);
  retired_ = std::move(retired);
}

void IdAllocator::prune(Seconds now, Seconds quarantine) {
  // A clock stepped backwards makes `now - at` negative: such an entry stays, which errs on
  // the side of not reusing.
  std::erase_if(retired_, [&](const auto& e) { return now - e.second > quarantine; });
}

}  // namespace rondo::cp

#include "dataplane/neigh/neigh.h"

#include <cstring>

namespace rondo::dp {
namespace {

// How many slots one eviction looks at: bounded work on a full table, and the oldest
// evictable entry among them goes.
constexpr uint32_t kEvictScan = 64;

}  // namespace

template <class A>
BasicNeighTable<A>::BasicNeighTable(uint32_t capacity, uint64_t stale_incomplete, uint64_t stale_reachable,
                       const HashKey& key)
    : capacity_(capacity), stale_incomplete_(stale_incomplete), stale_reachable_(stale_reachable),
      key_(key) {
  uint32_t size = 16;
  while (size < capacity * 2) size <<= 1;  // keep probing chains short
  slots_.resize(size);
  mask_ = size - 1;
}

template <class A>
typename BasicNeighTable<A>::Entry* BasicNeighTable<A>::find_slot(uint16_t iface, const A& ip) {
  for (uint32_t i = home(iface, ip);; i = (i + 1) & mask_) {
    Entry& n = slots_[i];
    if (n.state == Neigh::State::kEmpty) return nullptr;
    if (n.ip == ip && n.iface == iface) return &n;
  }
}

template <class A>
const typename BasicNeighTable<A>::Entry* BasicNeighTable<A>::find(uint16_t iface,
                                                                    const A& ip) const {
  return const_cast<BasicNeighTable*>(this)->find_slot(iface, ip);
}

template <class A>
typename BasicNeighTable<A>::Entry* BasicNeighTable<A>::insert(uint16_t iface, const A& ip,
                                                               uint64_t now, bool may_evict) {
  if (Entry* n = find_slot(iface, ip)) return n;
  if (used_ >= capacity_ && !(may_evict && evict_one(now))) return nullptr;
  for (uint32_t i = home(iface, ip);; i = (i + 1) & mask_) {
    Entry& n = slots_[i];
    if (n.state != Neigh::State::kEmpty) continue;
    ++used_;
    n = Entry{};
    n.ip = ip;
    n.iface = iface;
    n.state = Neigh::State::kIncomplete;
    return &n;
  }
}

template <class A>
bool BasicNeighTable<A>::evict_one(uint64_t now) {
  uint32_t victim = UINT32_MAX;
  uint64_t oldest = UINT64_MAX;
  for (uint32_t k = 0; k < kEvictScan; ++k) {
    const uint32_t i = (hand_ + k) & mask_;
    const Entry& n = slots_[i];
    if (n.state == Neigh::State::kEmpty || n.state == Neigh::State::kStatic) continue;
    // The last time this entry was of use: confirmed, or asked for.
    const uint64_t seen = n.updated > n.last_request ? n.updated : n.last_request;
    const uint64_t stale = n.state == Neigh::State::kIncomplete ? stale_incomplete_ : stale_reachable_;
    if (now - seen < stale || seen >= oldest) continue;
    oldest = seen;
    victim = i;
  }
  hand_ = (hand_ + kEvictScan) & mask_;
  if (victim == UINT32_MAX) return false;
  erase(victim);
  ++evictions_;
  return true;
}

// Linear probing without tombstones: close the gap by moving back every later entry of the
// run whose home is not between the gap and itself (Knuth 6.4, algorithm R).
template <class A>
void BasicNeighTable<A>::erase(uint32_t i) {
  if (slots_[i].has_mac()) ++version_;
  slots_[i] = Entry{};
  --used_;
  for (uint32_t j = (i + 1) & mask_; slots_[j].state != Neigh::State::kEmpty; j = (j + 1) & mask_) {
    const uint32_t h = home(slots_[j].iface, slots_[j].ip);
    // Does h lie cyclically in (i, j]? Then j stays.
    const bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
    if (stays) continue;
    slots_[i] = slots_[j];
    slots_[j] = Entry{};
    i = j;
  }
}

template <class A>
NeighLearned BasicNeighTable<A>::learn(uint16_t iface, const A& ip, const uint8_t mac[6],
                                       uint64_t now) {
  // Keyed by (iface, ip): the answer fills the entry of the interface it came in on, if
  // rondo asked there, and nothing on any other interface.
  Entry* n = find_slot(iface, ip);
  if (!n || n->state == Neigh::State::kStatic) return Learned::kIgnored;
  const bool same = n->state == Neigh::State::kReachable && std::memcmp(n->mac, mac, 6) == 0;
  if (!same && !n->requested && n->state == Neigh::State::kReachable) return Learned::kRefused;
  if (!same && n->state == Neigh::State::kIncomplete && !n->requested) return Learned::kIgnored;
  if (!same) ++version_;
  std::memcpy(n->mac, mac, 6);
  n->state = Neigh::State::kReachable;
  n->updated = now;
  n->requested = false;
  return same ? Learned::kRefreshed : Learned::kFilled;
}

template <class A>
void BasicNeighTable<A>::set_static(const std::vector<std::pair<A, Entry>>& entries) {
  // A static entry that left the configuration becomes an incomplete one and is resolved
  // by ARP again.
  ++version_;
  for (auto& n : slots_)
    if (n.state == Neigh::State::kStatic) n.state = Neigh::State::kIncomplete;
  for (const auto& [ip, e] : entries) {
    Entry* n = insert(e.iface, ip, 0, false);
    if (!n) return;
    std::memcpy(n->mac, e.mac, 6);
    n->state = Neigh::State::kStatic;
  }
}

template <class A>
uint32_t BasicNeighTable<A>::erase_iface(uint16_t iface) {
  // erase() moves later entries back into the gap: collect first, then erase by key.
  std::vector<A> gone;
  for (const Entry& n : slots_)
    if (n.state != Neigh::State::kEmpty && n.state != Neigh::State::kStatic && n.iface == iface)
      gone.push_back(n.ip);
  for (const A& ip : gone) erase(static_cast<uint32_t>(find_slot(iface, ip) - slots_.data()));
  return static_cast<uint32_t>(gone.size());
}

template <class A>
bool BasicNeighTable<A>::want_request(uint16_t iface, const A& ip, uint64_t now,
                                      uint64_t interval) {
  Entry* n = insert(iface, ip, now, true);
  if (!n || n->state == Neigh::State::kStatic) return false;
  if (n->requested && now - n->last_request < interval) return false;
  n->requested = true;
  n->last_request = now;
  return true;
}

template class BasicNeighTable<uint32_t>;
template class BasicNeighTable<Ip6>;

}  // namespace rondo::dp

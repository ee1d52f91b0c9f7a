#include "dataplane/neigh/neigh.h"

#include <cstring>

namespace rondo::dp {

NeighTable::NeighTable(uint32_t capacity) : capacity_(capacity) {
  uint32_t size = 16;
  while (size < capacity * 2) size <<= 1;  // keep probing chains short
  slots_.resize(size);
  mask_ = size - 1;
}

Neigh* NeighTable::slot(uint32_t ip, bool create) {
  for (uint32_t i = (ip * 0x9e3779b1u) >> 7 & mask_;; i = (i + 1) & mask_) {
    Neigh& n = slots_[i];
    if (n.state == Neigh::State::kEmpty) {
      if (!create || used_ >= capacity_) return nullptr;
      ++used_;
      n.ip = ip;
      n.state = Neigh::State::kIncomplete;
      return &n;
    }
    if (n.ip == ip) return &n;
  }
}

const Neigh* NeighTable::find(uint32_t ip) const {
  return const_cast<NeighTable*>(this)->slot(ip, false);
}

void NeighTable::learn(uint32_t ip, const uint8_t mac[6], uint16_t port_id, uint64_t now,
                       bool create) {
  Neigh* n = slot(ip, create);
  if (!n || n->state == Neigh::State::kStatic) return;
  std::memcpy(n->mac, mac, 6);
  n->port_id = port_id;
  n->state = Neigh::State::kReachable;
  n->updated = now;
}

void NeighTable::set_static(const std::vector<std::pair<uint32_t, Neigh>>& entries) {
  // Entries are never deleted (open addressing without tombstones): a static entry that
  // left the configuration becomes an incomplete one and is resolved by ARP again.
  for (auto& n : slots_)
    if (n.state == Neigh::State::kStatic) n.state = Neigh::State::kIncomplete;
  for (const auto& [ip, e] : entries) {
    Neigh* n = slot(ip, true);
    if (!n) return;
    std::memcpy(n->mac, e.mac, 6);
    n->port_id = e.port_id;
    n->state = Neigh::State::kStatic;
  }
}

bool NeighTable::want_request(uint32_t ip, uint16_t port_id, uint64_t now, uint64_t interval) {
  Neigh* n = slot(ip, true);
  if (!n || n->state == Neigh::State::kStatic) return false;
  if (n->requested && now - n->last_request < interval) return false;
  n->requested = true;
  n->last_request = now;
  if (n->state == Neigh::State::kIncomplete) n->port_id = port_id;
  return true;
}

}  // namespace rondo::dp

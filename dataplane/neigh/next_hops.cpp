#include "dataplane/neigh/next_hops.h"

#include <cstring>

namespace rondo::dp {

NextHopMap::NextHopMap(const NeighTable& t, const HashKey& key) : version_(t.version()), key_(key) {
  uint32_t n = 0;
  t.for_each([&](const Neigh& e) { n += e.has_mac() && e.ip != 0; });
  uint32_t size = 16;
  while (size < n * 2) size <<= 1;  // at least one empty slot ends every probe
  slots_.resize(size);
  mask_ = size - 1;
  t.for_each([&](const Neigh& e) {
    if (!e.has_mac() || e.ip == 0) return;
    uint32_t i = home(e.ip);
    while (slots_[i].ip != 0) i = (i + 1) & mask_;
    slots_[i].ip = e.ip;
    std::memcpy(slots_[i].mac, e.mac, 6);
    slots_[i].port_id = e.port_id;
    ++used_;
  });
}

}  // namespace rondo::dp

#include "dataplane/neigh/next_hops.h"

#include <cstring>

namespace rondo::dp {

template <class A>
BasicNextHopMap<A>::BasicNextHopMap(const BasicNeighTable<A>& t, const HashKey& key)
    : version_(t.version()), key_(key) {
  uint32_t n = 0;
  t.for_each([&](const BasicNeigh<A>& e) { n += e.has_mac() && !neigh_ip_zero(e.ip); });
  uint32_t size = 16;
  while (size < n * 2) size <<= 1;  // at least one empty slot ends every probe
  slots_.resize(size);
  mask_ = size - 1;
  t.for_each([&](const BasicNeigh<A>& e) {
    if (!e.has_mac() || neigh_ip_zero(e.ip)) return;
    uint32_t i = home(e.iface, e.ip);
    while (!neigh_ip_zero(slots_[i].ip)) i = (i + 1) & mask_;
    slots_[i].ip = e.ip;
    std::memcpy(slots_[i].mac, e.mac, 6);
    slots_[i].iface = e.iface;
    ++used_;
  });
}

template class BasicNextHopMap<uint32_t>;
template class BasicNextHopMap<Ip6>;

}  // namespace rondo::dp

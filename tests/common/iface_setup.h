// Interfaces (a port and an optional VLAN) put into a built snapshot by hand, for tests of
// what consumes them (neighbours, multicast lists, the XDP filter) without the control
// side's builder of declared interfaces (state/snapshot.cpp): only the snapshot's types.
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "dataplane/state/snapshot.h"

namespace rondo::test {

/// Make interface `id` of s: on `port`, VLAN `vid` (0: untagged), with these addresses
/// (IPv4 in network order); and make (port, vid) classify to it.
inline void set_iface(dp::Snapshot& s, uint16_t id, uint16_t port, uint16_t vid,
                      std::vector<uint32_t> v4 = {}, std::vector<dp::Ip6> v6 = {}) {
  if (s.ifaces.size() <= id) s.ifaces.resize(id + 1u);
  dp::IfaceConf& c = s.ifaces[id];
  c = dp::IfaceConf{};
  c.port = port;
  c.tagged = vid != 0;
  c.tci = htons(vid);
  c.in_use = true;
  c.mtu = 1500;
  c.addrs = std::move(v4);
  c.addr_lens.assign(c.addrs.size(), 24);
  c.addrs6 = std::move(v6);
  c.addr_lens6.assign(c.addrs6.size(), 64);
  if (s.port_ifaces.size() <= port) s.port_ifaces.resize(port + 1u);
  dp::PortIfaces& p = s.port_ifaces[port];
  if (vid == 0) {
    p.untagged = id;
    return;
  }
  if (!p.by_vid) {
    p.by_vid = std::make_unique<uint16_t[]>(4096);
    std::fill(p.by_vid.get(), p.by_vid.get() + 4096, dp::kNoIface);
  }
  p.by_vid[vid] = id;
}

}  // namespace rondo::test

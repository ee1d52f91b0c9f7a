#include "dataplane/port/multicast.h"

#include <rte_errno.h>
#include <rte_ethdev.h>

#include <algorithm>
#include <cstring>

namespace rondo::dp {

PortAddrs port_addrs(const Snapshot& s, uint16_t port) {
  PortAddrs out;
  bool any = false;
  for (const IfaceConf& ifc : s.ifaces) any = any || (ifc.in_use && ifc.port == port);
  if (!any) return out;  // no interface: every frame on it is vlan_mismatch, nothing answered
  out.v4 = s.vip_ips;
  out.v4.insert(out.v4.end(), s.local_ips.begin(), s.local_ips.end());
  out.v6 = s.vip_ips6;
  out.v6.insert(out.v6.end(), s.local_ips6.begin(), s.local_ips6.end());
  for (const IfaceConf& ifc : s.ifaces) {
    if (!ifc.in_use || ifc.port != port) continue;
    out.v4.insert(out.v4.end(), ifc.addrs.begin(), ifc.addrs.end());
    out.v6.insert(out.v6.end(), ifc.addrs6.begin(), ifc.addrs6.end());
  }
  std::sort(out.v4.begin(), out.v4.end());
  out.v4.erase(std::unique(out.v4.begin(), out.v4.end()), out.v4.end());
  std::sort(out.v6.begin(), out.v6.end());
  out.v6.erase(std::unique(out.v6.begin(), out.v6.end()), out.v6.end());
  return out;
}

std::vector<MacAddr> ndp_multicast_macs(const MacAddr& port_mac, const std::vector<Ip6>& addrs) {
  std::vector<MacAddr> out;
  if (addrs.empty()) return out;
  Ip6 all_nodes;
  all_nodes.b[0] = 0xff;
  all_nodes.b[1] = 0x02;
  all_nodes.b[15] = 0x01;
  out.push_back(multicast_mac6(all_nodes));
  auto add = [&](const Ip6& a) {
    const MacAddr m = multicast_mac6(solicited_node(a));
    if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
  };
  add(eui64_link_local(port_mac));
  for (const Ip6& a : addrs) add(a);
  return out;
}

bool apply_mc_list(uint16_t port_id, const std::vector<Ip6>& addrs, std::string* err) {
  rte_ether_addr mac;
  int rc = rte_eth_macaddr_get(port_id, &mac);
  if (rc != 0) {
    *err = "port " + std::to_string(port_id) + ": no MAC address: " + rte_strerror(-rc);
    return false;
  }
  MacAddr pm;
  std::memcpy(pm.data(), mac.addr_bytes, 6);
  const auto macs = ndp_multicast_macs(pm, addrs);
  std::vector<rte_ether_addr> list(macs.size());
  for (size_t i = 0; i < macs.size(); ++i) std::memcpy(list[i].addr_bytes, macs[i].data(), 6);
  rc = rte_eth_dev_set_mc_addr_list(port_id, list.empty() ? nullptr : list.data(),
                                    static_cast<uint32_t>(list.size()));
  if (rc == 0 || list.empty()) return true;  // nothing to receive when there is no IPv6 address
  const int arc = rte_eth_allmulticast_enable(port_id);
  if (arc == 0) return true;
  *err = "port " + std::to_string(port_id) + ": multicast list: " + rte_strerror(-rc) +
         "; all-multicast: " + rte_strerror(-arc);
  return false;
}

}  // namespace rondo::dp

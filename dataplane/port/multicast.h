// The multicast groups a port must receive for IPv6 neighbour discovery: all-nodes
// (ff02::1, 33:33:00:00:00:01) and the solicited-node group of each address rondo answers
// for on it (RFC 4861 7.2.1), the port's own EUI-64 link-local address included. A port
// carries several interfaces (VLANs) but has one multicast filter: its list is the union
// over its interfaces (port_addrs). rondo sends no MLD reports (it is no router, and the
// groups are link-scoped): a switch that snoops MLD may not flood these groups to it
// (docs/operations.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/pkt/ip6.h"
#include "dataplane/pkt/mac.h"
#include "dataplane/state/snapshot.h"

namespace rondo::dp {

/// The addresses rondo answers ARP and neighbour solicitations for on a port: the VIPs and
/// local ips (answered on every interface) when the port has an interface at all, and the
/// own addresses of each of its interfaces; sorted, distinct. IPv4 in network order.
struct PortAddrs {
  std::vector<uint32_t> v4;
  std::vector<Ip6> v6;
};
PortAddrs port_addrs(const Snapshot& s, uint16_t port);

/// The Ethernet addresses of those groups (RFC 2464 7), all-nodes first, without
/// duplicates (addresses with the same low 24 bits share a group). Empty when addrs is.
std::vector<MacAddr> ndp_multicast_macs(const MacAddr& port_mac, const std::vector<Ip6>& addrs);

/// Program the port's multicast filter with ndp_multicast_macs (rte_eth_dev_set_mc_addr_list;
/// no IPv6 address: the list is emptied). addrs: port_addrs(s, port_id).v6. A PMD that cannot filter by list (-ENOTSUP, or a
/// list longer than it takes) gets all-multicast instead (rte_eth_allmulticast_enable): the
/// manager checks every NDP frame anyway. False with *err if neither worked.
bool apply_mc_list(uint16_t port_id, const std::vector<Ip6>& addrs, std::string* err);

}  // namespace rondo::dp

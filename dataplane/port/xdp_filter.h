// Sharing a NIC with the host (AF_XDP ports): the XDP program in bpf/rondo_xdp.bpf.c sends
// to rondo only the frames for rondo's own addresses, listed in its `rondo_addrs` (IPv4)
// and `rondo_addrs6` (IPv6) maps, and passes the rest to the kernel. This keeps those maps
// equal to the addresses rondo answers for on the port (port/multicast.h port_addrs: VIPs,
// local ips, and the own addresses of the port's interfaces, every VLAN of the port: the
// program walks one tag and one map serves them all), plus the port's link-local address
// for NDP only (the value kNdpOnly, see the program). An interface address is rondo's
// alone: everything to it goes to rondo (which answers ARP, NDP and echo, and drops TCP and
// UDP as not_for_vip), none of it to the host.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "dataplane/pkt/ip6.h"

namespace rondo::dp {

class XdpAddressFilter {
 public:
  /// rondo_addrs6's values (bpf/rondo_xdp.bpf.c): every frame to the address, or only
  /// neighbour solicitations and advertisements.
  static constexpr uint8_t kAll = 1, kNdpOnly = 2;

  /// The filter of the XDP program attached to interface `ifindex`; nullptr with *why when
  /// there is none, or the program has no `rondo_addrs` map (the PMD's default program
  /// sends every frame to the dataplane). `link_local`: the port's own link-local address
  /// (NDP only). A program without `rondo_addrs6` (an older object) passes IPv6 to the
  /// kernel: *why then says so and the filter is returned all the same.
  /// `port`: the dataplane port it filters for (port()).
  static std::unique_ptr<XdpAddressFilter> attach(uint32_t ifindex, uint16_t port,
                                                  const Ip6& link_local, std::string* why);
  /// The same over maps already open (tests: a program loaded by hand); fd6 -1: none.
  static std::unique_ptr<XdpAddressFilter> over(int map_fd, int map6_fd, const Ip6& link_local,
                                                uint16_t port = 0);
  ~XdpAddressFilter();
  XdpAddressFilter(const XdpAddressFilter&) = delete;
  XdpAddressFilter& operator=(const XdpAddressFilter&) = delete;

  /// Make the maps hold exactly these addresses (IPv4 network order; IPv6 as on the wire),
  /// and, when addrs6 is not empty, the link-local address for NDP. The control agent passes
  /// port_addrs(snapshot, port()) (port/multicast.h).
  bool apply(const std::vector<uint32_t>& addrs, const std::vector<Ip6>& addrs6, std::string* err);
  uint16_t port() const { return port_; }
  size_t size() const { return current_.size(); }
  size_t size6() const { return current6_.size(); }
  bool has_v6() const { return map6_fd_ >= 0; }

 private:
  XdpAddressFilter(int map_fd, int map6_fd, const Ip6& link_local, uint16_t port)
      : map_fd_(map_fd), map6_fd_(map6_fd), link_local_(link_local), port_(port) {}
  int map_fd_;
  int map6_fd_;  // -1: the program has no rondo_addrs6
  Ip6 link_local_;
  uint16_t port_;
  std::set<std::pair<uint32_t, uint8_t>> current_;  // what the maps hold: key, value
  std::set<std::pair<Ip6, uint8_t>> current6_;
};

/// After a kill -9 the XDP program a net_af_xdp port attached stays on its interface (the
/// kernel detaches it only when the socket's owner closes the port cleanly), and the PMD of
/// the next process refuses to attach its own over it ("XDP program already attached": the
/// port fails, the start fails). Call before the EAL probes the vdevs: for every
/// `net_af_xdp...,iface=NAME` argument, detach the program on NAME if it is rondo's
/// (named rondo_xdp: a program someone else attached is left alone). One line per interface
/// touched or left alone goes to *log.
void detach_stale_xdp(const std::vector<std::string>& vdevs, std::vector<std::string>* log);

}  // namespace rondo::dp

// Sharing a NIC with the host (AF_XDP ports): the XDP program in bpf/rondo_xdp.bpf.c sends
// to rondo only the frames for rondo's own addresses, listed in its `rondo_addrs` map, and
// passes the rest to the kernel. This keeps that map equal to the VIPs and local ips of
// the configuration being applied.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace rondo::dp {

class XdpAddressFilter {
 public:
  /// The filter of the XDP program attached to interface `ifindex`; nullptr with *why when
  /// there is none, or the program has no `rondo_addrs` map (the PMD's default program
  /// sends every frame to the dataplane).
  static std::unique_ptr<XdpAddressFilter> attach(uint32_t ifindex, std::string* why);
  ~XdpAddressFilter();
  XdpAddressFilter(const XdpAddressFilter&) = delete;
  XdpAddressFilter& operator=(const XdpAddressFilter&) = delete;

  /// Make the map hold exactly these addresses (network order).
  bool apply(const std::vector<uint32_t>& addrs, std::string* err);
  size_t size() const { return current_.size(); }

 private:
  explicit XdpAddressFilter(int map_fd) : map_fd_(map_fd) {}
  int map_fd_;
  std::set<uint32_t> current_;
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

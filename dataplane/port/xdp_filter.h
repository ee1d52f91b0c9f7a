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

}  // namespace rondo::dp

// The kernel side of DSR health checks (dsr_checks.h): bpf/rondo_hc_encap.bpf.o loaded with
// the mark base, attached to the egress hook of the interface marked packets are routed to,
// and its map `hc_backends` kept as DsrChecks says. The control plane owns the program: it
// attaches it when it starts (replacing one a previous run left) and removes it when it
// stops; the map lives as long as the program.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "bpf/hc_encap/hc_encap.h"
#include "controlplane/health/dsr_checks.h"

struct bpf_object;

namespace rondo::cp {

/// The map's value for `e` (addresses and port in network order).
hc_backend to_value(const TunnelEntry& e);

class BpfTunnel : public TunnelMap {
 public:
  /// The program's place on the egress hook: priority 1 (before tc's defaults), a handle
  /// of its own ("HC").
  static constexpr uint32_t kPriority = 1;
  static constexpr uint32_t kHandle = 0x4843;

  /// Load `object` with `mark_base` and attach it on `ifname`'s egress hook. Null with *err
  /// when the interface is missing or not Ethernet, when its net.ipv4.conf.IF.forwarding
  /// is 0 (bpf_fib_lookup refuses to route from it), or when the kernel refuses. Its
  /// net.ipv6.conf.IF.forwarding at 0 is logged (IPv6 backends' checks would fail).
  static std::unique_ptr<BpfTunnel> attach(const std::string& ifname, const std::string& object,
                                           uint32_t mark_base, std::string* err);
  ~BpfTunnel() override;  // detaches the program

  bool sync(const std::vector<TunnelEntry>& entries, std::string* err) override;

  /// hc_stats summed over the CPUs, in enum hc_counter order.
  std::array<uint64_t, HC_COUNTERS> counters() const;

 private:
  BpfTunnel() = default;
  bpf_object* obj_ = nullptr;
  int ifindex_ = 0;
  int map_fd_ = -1;
  int stats_fd_ = -1;
  std::map<uint32_t, TunnelEntry> current_;  // what the map holds, by mark
};

}  // namespace rondo::cp

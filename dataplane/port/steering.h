// Steering on the NIC: full-NAT replies are addressed to a local ip and a local port, and
// the worker that owns a local port is given by its low bits (PortOwnership). One rte_flow
// rule per (local ip, protocol, residue of the port mask) sends those replies straight to
// the owner's RX queue:  eth / ipv4 dst is <local ip> / tcp|udp dst port & mask is r  ->
// queue owner(r); for an IPv6 local ip  eth / ipv6 dst is <local ip> / tcp|udp ...  the same
// way, when the device takes such a pattern (probe()). Client traffic to the VIPs keeps
// flowing by RSS. A reply that no rule catches (IPv6 with extension headers, a device
// without IPv6 patterns) is steered in software, as on every virtual device.
// Devices without rte_flow (all virtual ones) fall back to software steering
// (runtime/worker.cpp); the choice is made once at start.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dataplane/flow/port_pool.h"
#include "dataplane/pkt/ip6.h"

struct rte_flow;

namespace rondo::dp {

/// One rule, before it becomes an rte_flow (kept separate so it can be checked in tests).
struct SteeringRule {
  uint32_t local_ip = 0;  // network order (IPv4)
  bool v6 = false;        // local_ip6 instead of local_ip
  Ip6 local_ip6{};
  uint8_t proto = 0;      // IPPROTO_TCP or IPPROTO_UDP
  uint16_t port_spec = 0;  // host order: residue
  uint16_t port_mask = 0;  // host order: PortOwnership::mask()
  uint16_t queue = 0;
  bool operator==(const SteeringRule&) const = default;
};

/// The rules that steer every reply for these local ips to its owner's queue (IPv4 ones
/// first).
std::vector<SteeringRule> steering_rules(const std::vector<uint32_t>& local_ips,
                                         const PortOwnership& own,
                                         const std::vector<Ip6>& local_ips6 = {});

class NicSteering {
 public:
  explicit NicSteering(uint16_t port_id) : port_id_(port_id) {}
  ~NicSteering();
  NicSteering(const NicSteering&) = delete;
  NicSteering& operator=(const NicSteering&) = delete;

  /// Whether the device accepts such a rule (rte_flow_validate); *why says why not. The
  /// IPv6 pattern is asked about too: without it, IPv6 local ips get no rules (v6()).
  bool probe(uint16_t n_queues, std::string* why);
  /// Make the installed rules match these local ips: create what is missing, destroy what
  /// is no longer wanted. false with *err if a rule could not be created. `local_ips6` are
  /// left to software steering unless probe() found the IPv6 pattern accepted.
  bool apply(const std::vector<uint32_t>& local_ips, const PortOwnership& own, std::string* err,
             const std::vector<Ip6>& local_ips6 = {});
  size_t installed() const { return rules_.size(); }
  /// Whether the device takes IPv6 rules (probe()).
  bool v6() const { return v6_; }

 private:
  uint16_t port_id_;
  bool v6_ = false;
  std::vector<std::pair<SteeringRule, rte_flow*>> rules_;
};

}  // namespace rondo::dp

// The dataplane's configuration as the workers see it: an immutable object built by the
// control agent from an api::State and published by pointer (see publisher.h). Workers
// never see a half-applied change: they see the old snapshot or the new one.
// Addresses and ports are kept in network order, as they are compared with packet bytes.
// IPv4 stays a uint32_t (the v4 fast path is not touched by v6); IPv6 is an Ip6 beside it,
// with lookups of its own (find_vip6, is_local_ip6, route6).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/api/ctl.h"
#include "dataplane/flow/siphash.h"
#include "dataplane/pkt/ip6.h"
#include "dataplane/route/route4.h"
#include "dataplane/route/route6.h"
#include "dataplane/sched/maglev.h"

namespace rondo::dp {

struct BackendConf {
  uint32_t id = 0;
  uint32_t ip = 0;    // network order; 0 for an IPv6 backend
  uint16_t port = 0;  // network order
  uint16_t weight = 1;
  bool drained = false;
  bool down = false;
  Ip6 ip6;  // an IPv6 backend's address (zero for IPv4)
};

/// Address families of a VIP and its backends (VipConf::handler): client side, backend side.
enum class Families : uint8_t { k44 = 0, k66 = 1, k46 = 2, k64 = 3 };
inline constexpr uint32_t kFamilies = 4;
/// The client handler of a mode and families: Pipeline's kClientFns index.
inline constexpr uint8_t client_handler(api::Mode m, Families f) {
  return static_cast<uint8_t>((static_cast<uint32_t>(m) - 1) * kFamilies + static_cast<uint32_t>(f));
}

struct VipConf {
  uint32_t id = 0;
  uint32_t ip = 0;    // network order; 0 for an IPv6 VIP
  uint16_t port = 0;  // network order
  uint8_t proto = 0;
  api::Mode mode = api::Mode::kFullNat;
  api::Sched sched = api::Sched::kRoundRobin;
  api::SynCookies syncookies = api::SynCookies::kOff;  // TCP VIPs only (validated)
  api::ProxyProtocol proxy_protocol = api::ProxyProtocol::kOff;  // TCP VIPs only (validated)
  // on_all_down open, and every backend is down: the eligible set is the down backends
  // (weight > 0, not drained), and each new flow counts as fail_open_flows.
  bool failing_open = false;
  // Backends that may take new flows (weight > 0, not drained, not down), as indices
  // into Snapshot::backends: [eligible_first, eligible_first + eligible_count).
  uint32_t eligible_first = 0;
  uint32_t eligible_count = 0;
  // Identifies the eligible set (ids and weights, in order; never 0): per-lcore scheduler
  // state built for another set is reset (wrr's current values).
  uint64_t pool_sig = 0;
  // maglev and sh: the VIP's lookup table is Snapshot::maglev[table_first, + maglev_size).
  uint32_t table_first = 0;
  Families families = Families::k44;
  // The client handler (client_handler(mode, families)), chosen here once, so the worker
  // makes one indexed call per packet and tests neither mode nor family.
  uint8_t handler = 0;
  Ip6 ip6;  // an IPv6 VIP's address (zero for IPv4): last, the v4 path never reads it
};
// What every packet of a VIP reads (ip, port, mode, handler, ...) is in its first 40 bytes,
// in the padding before ip6 (8-aligned): 56 bytes in all.
static_assert(offsetof(VipConf, handler) < offsetof(VipConf, ip6) &&
              offsetof(VipConf, ip6) == 40 && sizeof(VipConf) == 56);

struct NeighConf {
  uint32_t ip = 0;  // network order
  uint8_t mac[6] = {};
  uint16_t iface = 0;  // IfaceConf index
};

struct NeighConf6 {
  Ip6 ip;
  uint8_t mac[6] = {};
  uint16_t iface = 0;
};

/// "No interface": what iface_of answers for a (port, VID) that names none (vlan_mismatch).
inline constexpr uint16_t kNoIface = 0xffff;

/// An interface as the workers see it (api::Interface), indexed by its id in Snapshot::ifaces.
struct IfaceConf {
  uint16_t port = 0;
  uint16_t tci = 0;     // network order, PCP 0, DEI 0: the tag written on output when tagged
  bool tagged = false;  // VID 1-4094; false: untagged
  bool in_use = false;  // an interface has this id (ids may have holes)
  uint32_t mtu = 0;     // this interface's MTU (its own, or --mtu)
  std::vector<uint32_t> addrs;     // its IPv4 addresses, network order
  std::vector<uint8_t> addr_lens;  // their prefix lengths, like addrs
  std::vector<Ip6> addrs6;         // its IPv6 addresses
  std::vector<uint8_t> addr_lens6;
};

/// Classify's table for one port: (port, VID) -> interface id. VID 0 (priority tag) is
/// untagged (802.1Q); by_vid exists only on ports with tagged interfaces (4096 entries, 8 KB).
struct PortIfaces {
  uint16_t untagged = kNoIface;
  std::unique_ptr<uint16_t[]> by_vid;  // kNoIface where no interface has the VID

  /// The interface of a frame with VID `vid` (0: untagged or priority tagged); kNoIface if
  /// none (vlan_mismatch).
  uint16_t iface_of(uint16_t vid) const {
    if (vid == 0) return untagged;
    return by_vid ? by_vid[vid] : kNoIface;
  }
};

struct Snapshot {
  uint64_t generation = 0;  // from the control plane
  uint64_t epoch = 0;       // set by the Publisher: distinct for every published snapshot
  std::vector<VipConf> vips;
  std::vector<BackendConf> backends;
  // Each backend's share of its VIP's Maglev table, indexed like backends: for `rondoctl
  // show`, never read on the fast path.
  struct TableShare {
    uint32_t entries = 0;
    uint32_t size = 0;  // 0: the VIP has no table (not maglev or sh, or nothing eligible)
  };
  std::vector<TableShare> table_shares;
  std::vector<uint32_t> eligible;   // indices into backends, grouped per VIP
  std::vector<uint32_t> vip_ips;    // distinct VIP addresses (network order), sorted
  std::vector<uint32_t> local_ips;  // network order, in configured order
  Route4Table routes;               // longest prefix first; empty: everything on-link
  std::vector<NeighConf> neighbours;
  // IPv6: VIP addresses (sorted, distinct), local ips (configured order), routes (empty:
  // everything on-link on port 0), static neighbours. The neighbour manager answers NS for
  // vip_ips6 and local_ips6 (and each port's link-local address, from its MAC).
  std::vector<Ip6> vip_ips6;
  std::vector<Ip6> local_ips6;
  Route6Table routes6;
  std::vector<NeighConf6> neighbours6;
  // A VIP translates between families (NAT46 or NAT64, decision 4 of the v6 plan); nat46 is
  // also set by a v4 VIP's DSR to v6 backends (IPv4 in IPv6): its flows are in flows6_ too.
  bool nat46 = false;
  bool nat64 = false;
  api::Timeouts timeouts;
  // Lookup tables of the maglev and sh VIPs, maglev_size entries each: eligible-backend
  // indices. Keyed, like the per-packet hashes of those VIPs, by sched_key (from the seed).
  std::vector<uint16_t> maglev;
  uint32_t maglev_size = kMaglevSize;
  HashKey sched_key;

  /// The VIP for (dst ip, dst port, proto), all in network order; nullptr if none.
  const VipConf* find_vip(uint32_t ip, uint16_t port, uint8_t proto) const;
  bool is_vip_ip(uint32_t ip) const;
  bool is_local_ip(uint32_t ip) const;
  /// Next hop for dst (network order): fills the interface and the on-link address to resolve.
  bool route(uint32_t dst, uint16_t* iface, uint32_t* nexthop) const {
    if (routes.empty()) {  // no routes configured: everything is on-link on the first interface
      *iface = first_iface;
      *nexthop = dst;
      return true;
    }
    // A tail call: the on-link case above stays free of the lookup's register saves.
    return routes.next_hop(dst, iface, nexthop);
  }
  const BackendConf& eligible_backend(const VipConf& v, uint32_t i) const {
    return backends[eligible[v.eligible_first + i]];
  }

  /// The IPv6 VIP for (dst, dst port, proto), port in network order; nullptr if none.
  const VipConf* find_vip6(const Ip6& ip, uint16_t port, uint8_t proto) const;
  bool is_vip_ip6(const Ip6& ip) const;
  bool is_local_ip6(const Ip6& ip) const;
  /// Next hop for an IPv6 dst: the interface and the address to resolve (gateway or dst).
  bool route6(const Ip6& dst, uint16_t* iface, Ip6* nexthop) const {
    if (routes6.empty()) {  // no v6 routes configured: everything is on-link on the first interface
      *iface = first_iface;
      *nexthop = dst;
      return true;
    }
    return routes6.next_hop(dst, iface, nexthop);
  }

  /// The interface a frame that came in on `port` with VID `vid` (0: untagged or priority
  /// tagged) belongs to; kNoIface if none (vlan_mismatch). port < port_ifaces.size().
  uint16_t iface_of(uint16_t port, uint16_t vid) const { return port_ifaces[port].iface_of(vid); }
  /// Whether ip (network order) is one of interface `iface`'s own addresses.
  bool is_iface_ip(uint16_t iface, uint32_t ip) const {
    for (uint32_t a : ifaces[iface].addrs)
      if (a == ip) return true;
    return false;
  }
  bool is_iface_ip6(uint16_t iface, const Ip6& ip) const {
    for (const Ip6& a : ifaces[iface].addrs6)
      if (a == ip) return true;
    return false;
  }

  // Interfaces (decision 1 of the VLAN plan): ifaces indexed by id (in_use marks the ids
  // that exist), port_ifaces indexed by port id (SnapshotParams::n_ports entries), the
  // interface routes fall back to without routes, and the smallest MTU of all interfaces
  // (an egress check at or below it needs no route lookup).
  std::vector<IfaceConf> ifaces;
  std::vector<PortIfaces> port_ifaces;
  uint16_t first_iface = 0;
  uint32_t min_mtu = 1500;

  // Open-addressed index over vips (built once; power-of-two size, linear probing): the
  // IPv4 VIPs in vip_index, the IPv6 ones in vip_index6.
  std::vector<int32_t> vip_index;
  std::vector<int32_t> vip_index6;
};

/// What a snapshot is built with besides the state: the dataplane's own settings.
struct SnapshotParams {
  uint64_t maglev_seed = kDefaultMaglevSeed;  // --maglev-seed
  uint32_t maglev_size = kMaglevSize;         // prime, larger than any VIP's pool
  // Routes in an rte_lpm (route/route4.h): needs a running EAL, so the dataplane's control
  // agent sets it; unit tests and fuzzers build snapshots without EAL, and their routes are
  // scanned (same answers).
  bool route_lpm = false;
  // Ports the dataplane drives (the implicit interfaces: one per port; the default, for
  // tests and fuzzers, is every port a worker may have: runtime/worker.h kMaxPorts) and
  // --mtu (every interface's default MTU).
  uint16_t n_ports = 8;
  uint32_t default_mtu = 1500;
};

/// Build a snapshot from a validated state (see api::validate_state). Builds the Maglev
/// table of each maglev and sh VIP (about 2 ms for 65537 entries) and the routes' rte_lpm:
/// call it off the fast path.
std::unique_ptr<Snapshot> build_snapshot(const api::State& s, const SnapshotParams& p = {});

}  // namespace rondo::dp

// The neighbour manager: ARP, NDP and the neighbour tables (one per family), on the main
// lcore (as grout keeps its nexthops on the control thread). Workers never parse or learn
// ARP or NDP: they hand every ARP frame and every neighbour solicitation/advertisement aimed
// at one of rondo's addresses (or its solicited-node groups) to the manager, and ask it for
// next hops they could not find in the published NextHopMap/NextHopMap6. The manager answers
// ARP requests and neighbour solicitations for VIPs and local ips (rate-limited, one budget),
// and solicitations for each port's link-local address (EUI-64 from the port's MAC: routers
// use fe80:: next hops); learns what its own requests bring back (rules in neigh.h); asks for
// configured next hops (routes' `via`, backends' on-link next hops) and for the next hops
// workers ask about, and republishes a map when an entry of its table changes.
//
// Interfaces (a port and an optional VLAN, state/snapshot.h): workers hand over the frame as
// received, tag included, and the manager finds its interface (Snapshot::iface_of; none:
// vlan_mismatch). On interface I it answers for VIPs and local ips (every interface: the
// weak-host model) and for I's own addresses (only on I); it learns only into I's entries
// (the table is keyed by (interface, address): an answer on the wrong VLAN fills nothing);
// its replies leave on I with I's tag (PCP 0; none on an untagged interface, a priority tag
// in included). Its requests and solicitations go out with the tag of the interface they are
// for; an ARP request's sender is the interface's first IPv4 address, else the first local
// ip. Solicitations come from the port's link-local address (one MAC per port, so one
// link-local address on each of its VLANs).
//
// NDP (RFC 4861): solicitations and advertisements are checked as 7.1 says (hop limit 255,
// code 0, ICMPv6 length, checksum, target not multicast, option lengths non-zero, an `::`
// source only towards a solicited-node group and without a source link-layer option); a
// link-layer option must name the Ethernet source (as ARP's sender must). Anything else
// (router solicitation/advertisement, redirect, MLD) is dropped as ndp_ignored: rondo is no
// router and joins no group by MLD. Extension headers in front of NDP are not taken
// (ndp_invalid). rondo does no duplicate address detection of its own (docs/security.md).
// Its solicitations go to the target's solicited-node group from the port's link-local
// address, with a source link-layer option.
//
// It works on plain bytes and a clock passed in, like the Pipeline, so unit tests drive it
// without DPDK running; runtime/neigh_service.cpp moves the frames (rings, mbufs, RCU).
//
// Its counters are a row of their own (the main lcore's): steered_in (ARP and NDP frames
// taken from workers), consumed (answers to our requests), drops by reason, originated (ARP
// requests and neighbour solicitations made), steered_out (frames handed to a worker for TX:
// replies and requests), so rx + steered_in + originated == tx + drops + consumed +
// steered_out still holds over all rows; arp_replies/arp_requests and
// ndp_adverts/ndp_solicits count what was sent. The frame of an answered ARP request or
// neighbour solicitation is turned into the reply in place.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/flow/siphash.h"
#include "dataplane/fwd/token_bucket.h"
#include "dataplane/neigh/neigh.h"
#include "dataplane/neigh/next_hops.h"
#include "dataplane/pkt/ip6.h"
#include "dataplane/route/route6.h"
#include "dataplane/state/snapshot.h"
#include "dataplane/stats/counters.h"

namespace rondo::dp {

struct NeighManagerParams {
  uint64_t hz = 1000;  // ticks per second of the `now` values passed in
  std::vector<std::array<uint8_t, 6>> port_macs;  // indexed by port id (every interface of a port uses its MAC)
  uint32_t capacity = 4096;  // neighbour entries at most
  // ARP replies the dataplane sends, all ports together: a request flood must not turn
  // rondo into an amplifier or fill the TX ring.
  uint32_t reply_rate = 1000;  // per second
  uint32_t reply_burst = 64;
  HashKey hash_key{};  // the deployment's secret; the table's slot hash is derived from it
};

struct ArpRequest {
  uint16_t iface;      // sent out of this interface's port, with its tag
  uint32_t target_ip;  // network order
  uint32_t sender_ip;  // network order
};

// NeighConf6 (a static v6 entry) is the snapshot's (state/snapshot.h).

/// What the manager needs of the IPv6 configuration. NeighService makes it from each new
/// snapshot (ndp_conf()); the ports' link-local addresses are the manager's own.
struct NdpConf {
  std::vector<Ip6> own;  // VIPs and local ips: solicitations for them are answered (and for
                         // each interface's own addresses, on it: Snapshot::ifaces)
  std::vector<RouteConf6> routes;  // empty: everything on-link on first_iface (as for IPv4)
  uint16_t first_iface = 0;        // Snapshot::first_iface
  std::vector<Ip6> backends;       // their next hops are resolved ahead of traffic
  std::vector<NeighConf6> neighbours;  // static entries
};

/// The IPv6 part of a snapshot as the manager takes it.
NdpConf ndp_conf(const Snapshot& s);

struct NsRequest {
  uint16_t iface;  // sent out of this interface's port, with its tag
  Ip6 target;
};

class NeighManager {
 public:
  /// Frame lengths of what the manager writes for IPv6 (Ethernet + 40 + 24 + an 8-byte
  /// link-layer option), untagged; kNdpFrameMax with an 802.1Q tag: a buffer given to
  /// handle_ndp or the builders must hold kNdpFrameMax.
  static constexpr uint32_t kNdpFrameLen = 14 + 40 + 24 + 8;
  static constexpr uint32_t kNdpFrameMax = kNdpFrameLen + 4;
  /// An ARP request: the minimum Ethernet frame (60 bytes, zero padded), 64 when tagged (the
  /// same 46-byte payload: a switch that strips the tag leaves a valid frame).
  static constexpr uint32_t kArpFrameLen = 60;
  static constexpr uint32_t kArpFrameMax = kArpFrameLen + 4;

  /// What became of an ARP or NDP frame.
  struct Verdict {
    enum class Kind : uint8_t { kReply, kConsumed, kDrop };
    Kind kind = Kind::kDrop;
    DropReason reason = DropReason::kCount;
    uint16_t port = 0;  // kReply: send the rewritten frame out of this port
    uint32_t len = 0;   // kReply: the frame's new length (0: unchanged, as for most ARP)
  };

  explicit NeighManager(const NeighManagerParams& p);

  /// A new config snapshot: interfaces, static entries, and requests for configured next
  /// hops.
  void on_snapshot(const Snapshot& s, uint64_t now);

  /// An ARP frame a worker received on in_port, as received (tagged or not). A request for
  /// one of our addresses on its interface is rewritten into the reply in place (kReply;
  /// Verdict::len set only when a priority tag was dropped).
  Verdict handle_arp(const Snapshot* s, uint8_t* frame, uint32_t len, uint16_t in_port,
                     uint64_t now);

  /// A worker found no next hop for ip on interface iface: request it (at most once a
  /// second per entry, only for an address a route makes on-link on that interface).
  void want(const Snapshot* s, uint32_t ip, uint16_t iface, uint64_t now);

  /// The IPv6 configuration changed: own addresses, static entries, and solicitations for
  /// configured next hops.
  void on_conf6(const NdpConf& c, uint64_t now);

  /// A frame a worker handed over, as received (an 802.1Q tag included): ARP or IPv6
  /// (handle_arp or handle_ndp, by the EtherType after the tag). cap: the bytes the buffer
  /// at f holds (an NDP reply may be longer than the solicitation).
  Verdict handle_frame(const Snapshot* s, uint8_t* f, uint32_t len, uint32_t cap,
                       uint16_t in_port, uint64_t now);

  /// A neighbour solicitation or advertisement (or another ICMPv6 message) a worker received
  /// on in_port, tagged or not. A solicitation for one of our addresses on its interface is
  /// rewritten into the advertisement in place (kReply, Verdict::len bytes, with the
  /// interface's tag; cap >= kNdpFrameMax); an advertisement is learned from (kConsumed).
  Verdict handle_ndp(const Snapshot* s, uint8_t* f, uint32_t len, uint32_t cap, uint16_t in_port,
                     uint64_t now);

  /// The IPv6 want(): only for an address a v6 route makes on-link on that interface, or a
  /// configured gateway (a link-local one included) on that interface.
  void want6(const Ip6& ip, uint16_t iface, uint64_t now);

  /// Is a one of ours on interface iface of s (VIP, local ip, one of the interface's
  /// addresses, its port's link-local address)?
  bool is_own6(const Snapshot& s, const Ip6& a, uint16_t iface) const;
  /// The port's link-local address (EUI-64 from its MAC).
  const Ip6& link_local(uint16_t port) const { return link_local_.at(port); }
  /// The port interface iface is on (the last snapshot's), for handing a built frame over.
  uint16_t port_of(uint16_t iface) const { return iface < ifaces_.size() ? ifaces_[iface].port : 0; }

  /// Housekeeping, about once per main-loop turn: once a second, re-request configured next
  /// hops that are unresolved or not confirmed for a minute; refresh the gauges.
  void tick(const Snapshot* s, uint64_t now);

  /// ARP requests to send; the caller builds them (build_request) and clears the list.
  std::vector<ArpRequest>& requests() { return requests_; }
  /// Build a broadcast ARP request into buf (kArpFrameMax bytes: 60, zero padded, or 64 with
  /// the interface's tag), out of port_of(r.iface); counts it as originated and handed to a
  /// worker. Returns its length; 0 (nothing built, nothing counted) for an interface the
  /// last snapshot does not have.
  uint32_t build_request(const ArpRequest& r, uint8_t* buf);
  /// Neighbour solicitations to send; the caller builds them (build_ns) and clears the list.
  std::vector<NsRequest>& ns_requests() { return ns_requests_; }
  /// Build a neighbour solicitation into buf (kNdpFrameMax bytes: kNdpFrameLen, + 4 with the
  /// interface's tag): to the target's solicited-node group, from the port's link-local
  /// address, with a source link-layer option. Counts it as originated and handed to a
  /// worker. Returns its length (0 as build_request).
  uint32_t build_ns(const NsRequest& r, uint8_t* buf);
  /// Unsolicited neighbour advertisements to send (announcements of our own addresses, e.g.
  /// after a bond's failover: NeighService::announce); the caller builds them
  /// (build_unsolicited_na) and clears the list. NsRequest::target is the address announced.
  std::vector<NsRequest>& adverts() { return adverts_; }
  /// Build an unsolicited neighbour advertisement (RFC 4861 7.2.6; kNdpFrameLen bytes, + 4
  /// with the interface's tag) into buf: from the target to all nodes (ff02::1), S = 0,
  /// O = 1, with the port's MAC as the target link-layer address. Counts it as originated
  /// and handed to a worker. Returns its length (0 as build_request).
  uint32_t build_unsolicited_na(const NsRequest& r, uint8_t* buf);
  /// A frame counted as handed to a worker did not fit in the ring: count it dropped.
  void handover_failed();

  /// A new NextHopMap if the table changed since the last one (the first call always gives
  /// one), else nullptr.
  std::unique_ptr<NextHopMap> next_hops_if_changed();
  /// The same for IPv6.
  std::unique_ptr<NextHopMap6> next_hops6_if_changed();

  const NeighTable& table() const { return table_; }
  const NeighTable6& table6() const { return table6_; }
  const LcoreCounters& counters() const { return counters_; }
  LcoreCounters& counters() { return counters_; }

 private:
  void resolve_configured(const Snapshot& s, uint64_t now);
  void request(const Snapshot& s, uint32_t ip, uint16_t iface, uint64_t now);
  void resolve_configured6(uint64_t now);
  void request6(const Ip6& ip, uint16_t iface, uint64_t now);
  bool route6(const Ip6& dst, uint16_t* iface, Ip6* nh) const;
  /// The interface of a frame received on in_port (its tag, if any, at f + 12: one VLAN
  /// header, VID 0 untagged), or kNoIface with *why.
  uint16_t classify(const Snapshot& s, const uint8_t* f, uint16_t in_port, DropReason* why) const;
  /// The last snapshot's interface iface, or nullptr.
  const IfaceConf* iface(uint16_t iface) const;
  Verdict drop(DropReason r);

  NeighManagerParams params_;
  HashKey key_;
  std::vector<IfaceConf> ifaces_;  // the last snapshot's, for what the manager builds
  NeighTable table_;
  TokenBucket replies_;
  std::vector<ArpRequest> requests_;
  LcoreCounters counters_;
  uint64_t published_ = 0;
  bool published_once_ = false;
  uint64_t next_resolve_ = 0;

  NeighTable6 table6_;
  std::vector<Ip6> link_local_;  // per port
  std::vector<Ip6> own6_;        // VIPs and local ips, sorted
  Route6Table routes6_;          // scanned (no rte_lpm6): the main lcore asks rarely
  uint16_t first_iface6_ = 0;    // routes6_ empty: everything on-link on it
  std::vector<std::pair<Ip6, uint16_t>> vias6_;  // configured gateways and their interfaces
  std::vector<Ip6> backends6_;
  bool conf6_ = false;
  std::vector<NsRequest> ns_requests_;
  std::vector<NsRequest> adverts_;
  uint64_t published6_ = 0;
  bool published6_once_ = false;
};

}  // namespace rondo::dp

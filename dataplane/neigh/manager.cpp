#include "dataplane/neigh/manager.h"

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_ether.h>

#include <algorithm>
#include <cstring>

#include "dataplane/pkt/csum.h"
#include "dataplane/pkt/parse.h"

namespace rondo::dp {
namespace {

constexpr uint32_t kRequestsMax = 64;      // ARP requests per turn at most
constexpr uint64_t kRefreshS = 60;         // re-request a configured next hop after this long
constexpr uint64_t kIncompleteS = 3;       // an unanswered request may be evicted after this
constexpr uint32_t kTagLen = 4;            // an 802.1Q tag: TPID 0x8100, TCI

// The Ethernet header of a frame out of interface `ifc`: dst, src, the interface's tag
// (TPID 0x8100, its TCI: PCP 0) when it has one, then `type`. Returns its length (14, 18).
uint32_t put_l2(uint8_t* f, const uint8_t* dst, const uint8_t* src, const IfaceConf& ifc,
                uint16_t type) {
  std::memcpy(f, dst, 6);
  std::memcpy(f + 6, src, 6);
  uint32_t off = 12;
  if (ifc.tagged) {
    f[12] = 0x81;
    f[13] = 0x00;
    std::memcpy(f + 14, &ifc.tci, 2);  // network order already
    off += kTagLen;
  }
  f[off] = static_cast<uint8_t>(type >> 8);
  f[off + 1] = static_cast<uint8_t>(type);
  return off + 2;
}

// A sender that cannot be a host's (group or zero MAC), or that claims a MAC other than
// the one it sends from, is neither learned nor answered.
bool arp_sender_ok(const uint8_t* f, const Parsed& p) {
  const auto* arp = reinterpret_cast<const rte_arp_hdr*>(f + p.l3_off);
  const uint8_t* sha = arp->arp_data.arp_sha.addr_bytes;
  static constexpr uint8_t kZero[6] = {};
  return !(sha[0] & 1) && std::memcmp(sha, kZero, 6) != 0 && std::memcmp(sha, f + 6, 6) == 0;
}

// NDP (RFC 4861 4.3, 4.4, 4.6.1).
constexpr uint32_t kEthLen = 14;
constexpr uint32_t kIp6Len = 40;
constexpr uint8_t kIcmp6 = 58;
constexpr uint8_t kNdpHopLimit = 255;
constexpr uint32_t kNdpMinLen = 24;  // type, code, checksum, 4 bytes, target
constexpr uint8_t kTypeNs = 135, kTypeNa = 136;
constexpr uint8_t kOptSll = 1, kOptTll = 2;
constexpr uint8_t kNaSolicited = 0x40, kNaOverride = 0x20;

// Write the IPv6 header and the checksum of an ICMPv6 message of icmp_len bytes at ip + 40.
void finish_icmp6(uint8_t* ip, const Ip6& src, const Ip6& dst, uint32_t icmp_len) {
  ip[0] = 0x60;  // version 6, traffic class 0, flow label 0
  ip[1] = ip[2] = ip[3] = 0;
  ip[4] = static_cast<uint8_t>(icmp_len >> 8);
  ip[5] = static_cast<uint8_t>(icmp_len);
  ip[6] = kIcmp6;
  ip[7] = kNdpHopLimit;
  std::memcpy(ip + 8, src.b, 16);
  std::memcpy(ip + 24, dst.b, 16);
  uint8_t* icmp = ip + kIp6Len;
  icmp[2] = icmp[3] = 0;
  csum_put(icmp + 2, csum_pseudo6(src.b, dst.b, icmp_len, kIcmp6) + csum_sum(icmp, icmp_len));
}

// A link-layer address option that can be a host's and names the frame's own source (as
// ARP's sender must, arp_sender_ok).
bool lla_ok(const uint8_t* lla, const uint8_t* f) {
  static constexpr uint8_t kZero[6] = {};
  return !(lla[0] & 1) && std::memcmp(lla, kZero, 6) != 0 && std::memcmp(lla, f + 6, 6) == 0;
}

Ip6 all_nodes() {
  Ip6 a;
  a.b[0] = 0xff;
  a.b[1] = 0x02;
  a.b[15] = 0x01;
  return a;
}

// A neighbour advertisement at f for `target`, from it to `dst` (eth_dst) with `flags` (R,
// S, O), out of interface ifc (its tag), our MAC `mine` as the frame's source and the target
// link-layer option (RFC 4861 4.4). Returns its length (kNdpFrameLen, + 4 when tagged).
uint32_t put_na(uint8_t* f, const uint8_t* eth_dst, const uint8_t* mine, const IfaceConf& ifc,
                const Ip6& target, const Ip6& dst, uint8_t flags) {
  const uint32_t l2 = ifc.tagged ? kEthLen + kTagLen : kEthLen;
  std::memset(f + l2, 0, kIp6Len + kNdpMinLen + 8);
  put_l2(f, eth_dst, mine, ifc, 0x86dd);
  uint8_t* na = f + l2 + kIp6Len;
  na[0] = kTypeNa;
  na[4] = flags;
  std::memcpy(na + 8, target.b, 16);
  na[24] = kOptTll;
  na[25] = 1;
  std::memcpy(na + 26, mine, 6);
  finish_icmp6(f + l2, target, dst, kNdpMinLen + 8);
  return l2 + kIp6Len + kNdpMinLen + 8;
}

}  // namespace

NdpConf ndp_conf(const Snapshot& s) {
  NdpConf c;
  c.own = s.vip_ips6;
  c.own.insert(c.own.end(), s.local_ips6.begin(), s.local_ips6.end());
  c.routes.assign(s.routes6.begin(), s.routes6.end());
  c.first_iface = s.first_iface;
  for (const BackendConf& b : s.backends)
    if (!b.ip6.is_zero()) c.backends.push_back(b.ip6);
  c.neighbours = s.neighbours6;
  return c;
}

NeighManager::NeighManager(const NeighManagerParams& p)
    : params_(p),
      key_(derive_hash_key(p.hash_key, HashUse::kNeighbours)),
      table_(p.capacity, kIncompleteS * p.hz, 2 * kRefreshS * p.hz, key_),
      replies_(p.reply_rate, p.reply_burst, p.hz),
      table6_(p.capacity, kIncompleteS * p.hz, 2 * kRefreshS * p.hz, key_) {
  requests_.reserve(kRequestsMax);
  ns_requests_.reserve(kRequestsMax);
  counters_.neigh_capacity = table_.capacity();  // per family
  for (const auto& mac : p.port_macs) link_local_.push_back(eui64_link_local(mac));
}

NeighManager::Verdict NeighManager::drop(DropReason r) {
  counters_.drop(r);
  return Verdict{Verdict::Kind::kDrop, r, 0};
}

const IfaceConf* NeighManager::iface(uint16_t id) const {
  if (id >= ifaces_.size() || !ifaces_[id].in_use || ifaces_[id].port >= params_.port_macs.size())
    return nullptr;
  return &ifaces_[id];
}

uint16_t NeighManager::classify(const Snapshot& s, const uint8_t* f, uint16_t in_port,
                                DropReason* why) const {
  if (in_port >= s.port_ifaces.size() || in_port >= params_.port_macs.size()) {
    *why = DropReason::kNoRoute;  // not a port the dataplane drives
    return kNoIface;
  }
  // The callers checked the header's length (14, or 18 with the tag).
  const bool tagged = f[12] == 0x81 && f[13] == 0x00;
  const uint16_t vid = tagged ? static_cast<uint16_t>((f[14] << 8 | f[15]) & 0xfff) : 0;
  const uint16_t id = s.iface_of(in_port, vid);
  if (id >= s.ifaces.size()) {  // kNoIface among them
    *why = DropReason::kVlanMismatch;
    return kNoIface;
  }
  return id;
}

void NeighManager::on_snapshot(const Snapshot& s, uint64_t now) {
  // Entries are keyed by (interface id, address): an id whose port, VLAN or use changed is
  // another link now, and what was learned on it (a MAC on the old VLAN) goes, in both
  // families; erasing one with a MAC moves the version, so the workers' maps drop it too.
  const IfaceConf none;
  for (size_t id = 0; id < std::max(ifaces_.size(), s.ifaces.size()); ++id) {
    const IfaceConf& a = id < ifaces_.size() ? ifaces_[id] : none;
    const IfaceConf& b = id < s.ifaces.size() ? s.ifaces[id] : none;
    if (a.in_use == b.in_use && (!a.in_use || (a.port == b.port && a.tagged == b.tagged &&
                                               a.tci == b.tci)))
      continue;
    table_.erase_iface(static_cast<uint16_t>(id));
    table6_.erase_iface(static_cast<uint16_t>(id));
  }
  ifaces_ = s.ifaces;
  std::vector<std::pair<uint32_t, Neigh>> statics;
  for (const auto& n : s.neighbours) {
    Neigh e;
    std::memcpy(e.mac, n.mac, 6);
    e.iface = n.iface;
    statics.emplace_back(n.ip, e);
  }
  table_.set_static(statics);
  resolve_configured(s, now);
}

void NeighManager::request(const Snapshot& s, uint32_t ip, uint16_t id, uint64_t now) {
  const IfaceConf* ifc = iface(id);
  if (!ifc || requests_.size() >= kRequestsMax) return;
  // From the interface's own address (what its neighbours know us by), else the first
  // local ip; with neither, no request can be answered to us.
  const uint32_t sender = !ifc->addrs.empty()       ? ifc->addrs.front()
                          : !s.local_ips.empty() ? s.local_ips.front()
                                                 : 0;
  if (sender == 0) return;
  if (table_.want_request(id, ip, now, params_.hz)) requests_.push_back(ArpRequest{id, ip, sender});
}

// What forwarding needs and nothing else: the routes' gateways and the backends' next hops.
void NeighManager::resolve_configured(const Snapshot& s, uint64_t now) {
  auto maybe = [&](uint32_t nh, uint16_t id) {
    const Neigh* n = table_.find(id, nh);
    const bool stale = n && n->state == Neigh::State::kReachable &&
                       now - n->updated > kRefreshS * params_.hz;
    if (!(n && n->has_mac() && !stale)) request(s, nh, id, now);
  };
  for (const auto& r : s.routes)
    if (r.via) maybe(r.via, r.iface);
  for (const auto& b : s.backends) {
    uint16_t id;
    uint32_t nh;
    if (b.ip == 0) continue;  // an IPv6 backend: resolve_configured6's
    if (s.route(b.ip, &id, &nh)) maybe(nh, id);
  }
}

void NeighManager::want(const Snapshot* s, uint32_t ip, uint16_t id, uint64_t now) {
  if (!s || ip == 0) return;
  // Only an address a route puts on that interface's link: rondo never ARPs for an address
  // it would not forward to, whatever a worker asks.
  uint16_t rid;
  uint32_t nh;
  if (!s->route(ip, &rid, &nh) || nh != ip || rid != id) return;
  const Neigh* n = table_.find(id, ip);
  if (n && n->has_mac()) return;  // resolved meanwhile: the worker sees it once published
  request(*s, ip, id, now);
}

void NeighManager::tick(const Snapshot* s, uint64_t now) {
  if ((s || conf6_) && now >= next_resolve_) {
    next_resolve_ = now + params_.hz;
    if (s) resolve_configured(*s, now);
    if (conf6_) resolve_configured6(now);
  }
  counters_.neigh_entries = table_.size() + table6_.size();
  counters_.neigh_evictions = table_.evictions() + table6_.evictions();
}

void NeighManager::on_conf6(const NdpConf& c, uint64_t now) {
  own6_ = c.own;
  std::sort(own6_.begin(), own6_.end());
  routes6_.build(c.routes, false);
  first_iface6_ = c.first_iface;
  vias6_.clear();
  for (const auto& r : c.routes)
    if (!r.via.is_zero()) vias6_.emplace_back(r.via, r.iface);
  backends6_ = c.backends;
  std::vector<std::pair<Ip6, Neigh6>> statics;
  for (const auto& n : c.neighbours) {
    Neigh6 e;
    std::memcpy(e.mac, n.mac, 6);
    e.iface = n.iface;
    statics.emplace_back(n.ip, e);
  }
  table6_.set_static(statics);
  conf6_ = true;
  resolve_configured6(now);
}

bool NeighManager::is_own6(const Snapshot& s, const Ip6& a, uint16_t id) const {
  if (id >= s.ifaces.size()) return false;
  const uint16_t port = s.ifaces[id].port;
  if (port < link_local_.size() && a == link_local_[port]) return true;
  return std::binary_search(own6_.begin(), own6_.end(), a) || s.is_iface_ip6(id, a);
}

bool NeighManager::route6(const Ip6& dst, uint16_t* id, Ip6* nh) const {
  if (routes6_.empty()) {  // as Snapshot::route6: everything on-link on the first interface
    *id = first_iface6_;
    *nh = dst;
    return true;
  }
  return routes6_.next_hop(dst, id, nh);
}

void NeighManager::request6(const Ip6& ip, uint16_t id, uint64_t now) {
  if (!iface(id) || ns_requests_.size() >= kRequestsMax) return;
  if (table6_.want_request(id, ip, now, params_.hz)) ns_requests_.push_back(NsRequest{id, ip});
}

void NeighManager::resolve_configured6(uint64_t now) {
  auto maybe = [&](const Ip6& nh, uint16_t id) {
    const Neigh6* n = table6_.find(id, nh);
    const bool stale = n && n->state == Neigh::State::kReachable &&
                       now - n->updated > kRefreshS * params_.hz;
    if (!(n && n->has_mac() && !stale)) request6(nh, id, now);
  };
  for (const auto& [via, id] : vias6_) maybe(via, id);
  for (const Ip6& b : backends6_) {
    uint16_t id;
    Ip6 nh;
    if (route6(b, &id, &nh)) maybe(nh, id);
  }
}

void NeighManager::want6(const Ip6& ip, uint16_t id, uint64_t now) {
  if (ip.is_zero() || is_multicast6(ip)) return;
  // Only an address forwarding would send to on that interface: on-link by a route, or a
  // configured gateway (link-local gateways match no route).
  uint16_t rid;
  Ip6 nh;
  bool ok = route6(ip, &rid, &nh) && nh == ip && rid == id;
  for (const auto& [via, vid] : vias6_) ok = ok || (via == ip && vid == id);
  if (!ok) return;
  const Neigh6* n = table6_.find(id, ip);
  if (n && n->has_mac()) return;  // resolved meanwhile: the worker sees it once published
  request6(ip, id, now);
}

NeighManager::Verdict NeighManager::handle_frame(const Snapshot* s, uint8_t* f, uint32_t len,
                                                 uint32_t cap, uint16_t in_port, uint64_t now) {
  // The EtherType after one 802.1Q tag, if there is one (a second tag, or 0x88a8, is
  // handle_arp's parser's to refuse).
  const uint32_t t = len >= kEthLen + kTagLen && f[12] == 0x81 && f[13] == 0x00 ? 16 : 12;
  if (len >= t + 2 && f[t] == 0x86 && f[t + 1] == 0xdd)
    return handle_ndp(s, f, len, cap, in_port, now);
  return handle_arp(s, f, len, in_port, now);
}

NeighManager::Verdict NeighManager::handle_ndp(const Snapshot* s, uint8_t* f, uint32_t len,
                                               uint32_t cap, uint16_t in_port, uint64_t now) {
  ++counters_.steered_in;
  // Parsed here, whoever handed it over: Ethernet (one 802.1Q tag at most), IPv6, ICMPv6
  // right after.
  if (len < kEthLen) return drop(DropReason::kMalformedL2);
  const bool tagged = f[12] == 0x81 && f[13] == 0x00;
  const uint32_t l2 = tagged ? kEthLen + kTagLen : kEthLen;
  if (len < l2) return drop(DropReason::kMalformedL2);
  if (f[l2 - 2] != 0x86 || f[l2 - 1] != 0xdd) return drop(DropReason::kUnsupportedL3);
  if (f[6] & 1) return drop(DropReason::kBadSourceMac);
  if (len < l2 + kIp6Len) return drop(DropReason::kMalformedL3);
  const uint8_t* ip = f + l2;
  const uint32_t plen = static_cast<uint32_t>(ip[4] << 8 | ip[5]);
  if ((ip[0] >> 4) != 6 || l2 + kIp6Len + plen > len) return drop(DropReason::kMalformedL3);
  if (ip[6] != kIcmp6) return drop(DropReason::kNdpInvalid);  // no extension headers taken
  const uint8_t* icmp = ip + kIp6Len;
  if (plen < 4) return drop(DropReason::kMalformedL4);
  const uint8_t type = icmp[0];
  if (type != kTypeNs && type != kTypeNa) return drop(DropReason::kNdpIgnored);
  if (!s) return drop(DropReason::kNoState);
  DropReason why = DropReason::kCount;
  const uint16_t id = classify(*s, f, in_port, &why);
  if (id == kNoIface) return drop(why);

  // RFC 4861 7.1.1 and 7.1.2.
  const Ip6 src = Ip6::from(ip + 8);
  const Ip6 dst = Ip6::from(ip + 24);
  if (ip[7] != kNdpHopLimit || icmp[1] != 0 || plen < kNdpMinLen)
    return drop(DropReason::kNdpInvalid);
  if (!l4_csum_ok6(ip, icmp, plen, kIcmp6)) return drop(DropReason::kNdpInvalid);
  const Ip6 target = Ip6::from(icmp + 8);
  if (is_multicast6(target)) return drop(DropReason::kNdpInvalid);
  // The source (NS) or target (NA) link-layer address; other options are skipped (4.3, 4.4).
  const uint8_t* lla = nullptr;
  for (uint32_t off = kNdpMinLen; off < plen;) {
    if (off + 2 > plen) return drop(DropReason::kNdpInvalid);
    const uint32_t olen = icmp[off + 1] * 8u;
    if (olen == 0 || off + olen > plen) return drop(DropReason::kNdpInvalid);
    const uint8_t want = type == kTypeNs ? kOptSll : kOptTll;
    if (icmp[off] == want && olen == 8) lla = icmp + off + 2;
    off += olen;
  }
  if (lla && !lla_ok(lla, f)) return drop(DropReason::kNdpInvalid);

  if (type == kTypeNa) {
    // 7.1.2: a multicast destination carries S = 0; the source is a unicast address.
    if (martian_source6(src)) return drop(DropReason::kNdpInvalid);
    if (is_multicast6(dst) && (icmp[4] & kNaSolicited)) return drop(DropReason::kNdpInvalid);
    // Only entries rondo asked for are filled; unsolicited, a known MAC never changes.
    if (lla) table6_.learn(id, target, lla, now);
    ++counters_.consumed;
    return Verdict{Verdict::Kind::kConsumed, DropReason::kCount, 0, 0};
  }

  // A solicitation. From `::` (duplicate address detection): only to the target's
  // solicited-node group, and without a source link-layer option (7.1.1).
  const bool dad = src.is_zero();
  if (dad && (dst != solicited_node(target) || lla)) return drop(DropReason::kNdpInvalid);
  if (!dad && martian_source6(src)) return drop(DropReason::kNdpInvalid);
  if (!is_own6(*s, target, id)) return drop(DropReason::kNdpNotForUs);
  if (!dad && lla) table6_.learn(id, src, lla, now);
  const IfaceConf& ifc = s->ifaces[id];
  if (cap < (ifc.tagged ? kNdpFrameMax : kNdpFrameLen)) return drop(DropReason::kNoMbuf);
  if (!replies_.take(now)) return drop(DropReason::kRateLimited);

  // The advertisement (7.2.4), written over the solicitation: to the solicitation's source
  // with S = 1, or to all nodes with S = 0 when that was `::`; O = 1; our MAC as the target
  // link-layer address; out of the interface it came in on, with its tag (PCP 0).
  uint8_t eth_dst[6];
  if (dad) {
    const MacAddr m = multicast_mac6(all_nodes());
    std::memcpy(eth_dst, m.data(), 6);
  } else {
    std::memcpy(eth_dst, lla ? lla : f + 6, 6);
  }
  const Ip6 na_dst = dad ? all_nodes() : src;
  const uint32_t out_len = put_na(f, eth_dst, params_.port_macs[in_port].data(), ifc, target, na_dst,
                                  static_cast<uint8_t>((dad ? 0 : kNaSolicited) | kNaOverride));
  ++counters_.ndp_adverts;
  ++counters_.steered_out;
  return Verdict{Verdict::Kind::kReply, DropReason::kCount, in_port, out_len};
}

uint32_t NeighManager::build_ns(const NsRequest& r, uint8_t* buf) {
  const IfaceConf* ifc = iface(r.iface);
  if (!ifc) return 0;
  const auto& mine = params_.port_macs[ifc->port];
  const Ip6 group = solicited_node(r.target);
  const MacAddr gmac = multicast_mac6(group);
  const uint32_t l2 = put_l2(buf, gmac.data(), mine.data(), *ifc, 0x86dd);
  std::memset(buf + l2, 0, kIp6Len + kNdpMinLen + 8);
  uint8_t* ns = buf + l2 + kIp6Len;
  ns[0] = kTypeNs;
  std::memcpy(ns + 8, r.target.b, 16);
  ns[24] = kOptSll;
  ns[25] = 1;
  std::memcpy(ns + 26, mine.data(), 6);
  finish_icmp6(buf + l2, link_local_[ifc->port], group, kNdpMinLen + 8);
  ++counters_.originated;
  ++counters_.ndp_solicits;
  ++counters_.steered_out;
  return l2 + kIp6Len + kNdpMinLen + 8;
}

uint32_t NeighManager::build_unsolicited_na(const NsRequest& r, uint8_t* buf) {
  // RFC 4861 7.2.6: to all nodes, S = 0 (nobody asked), O = 1 (replace what caches hold:
  // the point is to move our address to this port), the target link-layer option.
  const IfaceConf* ifc = iface(r.iface);
  if (!ifc) return 0;
  const MacAddr all = multicast_mac6(all_nodes());
  const uint32_t len = put_na(buf, all.data(), params_.port_macs[ifc->port].data(), *ifc, r.target,
                              all_nodes(), kNaOverride);
  ++counters_.originated;
  ++counters_.ndp_adverts;
  ++counters_.steered_out;
  return len;
}

NeighManager::Verdict NeighManager::handle_arp(const Snapshot* s, uint8_t* f, uint32_t len,
                                               uint16_t in_port, uint64_t now) {
  ++counters_.steered_in;
  Parsed p;
  DropReason why;
  // Parsed again here: the manager trusts no frame, whoever handed it over.
  if (!parse_frame(f, len, &p, &why)) return drop(why);
  if (p.kind != PktKind::kArp) return drop(DropReason::kMalformedArp);
  if (!s) return drop(DropReason::kNoState);
  const uint16_t id = classify(*s, f, in_port, &why);
  if (id == kNoIface) return drop(why);
  if (!arp_sender_ok(f, p)) return drop(DropReason::kArpBadSender);
  auto* arp = reinterpret_cast<rte_arp_hdr*>(f + p.l3_off);
  const uint32_t sip = arp->arp_data.arp_sip;
  const uint32_t tip = arp->arp_data.arp_tip;
  // VIPs and local ips on every interface, an interface's own addresses on it alone.
  if (!s->is_vip_ip(tip) && !s->is_local_ip(tip) && !s->is_iface_ip(id, tip))
    return drop(DropReason::kArpNotForUs);
  // Only entries rondo asked for (on this interface) are filled, and an unsolicited frame
  // never changes a known MAC (neigh.h); a request for our address answered here creates
  // nothing.
  if (sip) table_.learn(id, sip, arp->arp_data.arp_sha.addr_bytes, now);
  if (arp->arp_opcode != RTE_BE16(RTE_ARP_OP_REQUEST)) {
    ++counters_.consumed;
    return Verdict{Verdict::Kind::kConsumed, DropReason::kCount, 0};
  }
  if (!replies_.take(now)) return drop(DropReason::kRateLimited);

  const auto& mine = params_.port_macs[in_port];
  const uint8_t* smac = arp->arp_data.arp_sha.addr_bytes;
  auto* eth = reinterpret_cast<rte_ether_hdr*>(f);
  std::memcpy(eth->dst_addr.addr_bytes, eth->src_addr.addr_bytes, 6);
  std::memcpy(eth->src_addr.addr_bytes, mine.data(), 6);
  arp->arp_opcode = RTE_BE16(RTE_ARP_OP_REPLY);
  std::memcpy(arp->arp_data.arp_tha.addr_bytes, smac, 6);  // before sha is overwritten
  std::memcpy(arp->arp_data.arp_sha.addr_bytes, mine.data(), 6);
  arp->arp_data.arp_tip = sip;
  arp->arp_data.arp_sip = tip;
  // Back out of the interface it came in on: its TCI (PCP 0) over the one received; a
  // priority-tagged request (VID 0) on an untagged interface gets an untagged reply.
  uint32_t out_len = 0;
  const IfaceConf& ifc = s->ifaces[id];
  const bool tagged_in = p.l3_off > kEthLen;
  if (tagged_in && ifc.tagged) {
    std::memcpy(f + 14, &ifc.tci, 2);
  } else if (tagged_in) {
    std::memmove(f + 12, f + 16, len - 16);
    out_len = len - kTagLen;
  }
  ++counters_.arp_replies;
  ++counters_.steered_out;
  return Verdict{Verdict::Kind::kReply, DropReason::kCount, in_port, out_len};
}

uint32_t NeighManager::build_request(const ArpRequest& r, uint8_t* buf) {
  const IfaceConf* ifc = iface(r.iface);
  if (!ifc) return 0;
  const auto& mine = params_.port_macs[ifc->port];
  static constexpr uint8_t kBroadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  const uint32_t l2 = put_l2(buf, kBroadcast, mine.data(), *ifc, RTE_ETHER_TYPE_ARP);
  const uint32_t len = l2 - kEthLen + kArpFrameLen;  // the same padded payload, tagged or not
  std::memset(buf + l2, 0, len - l2);
  auto* arp = reinterpret_cast<rte_arp_hdr*>(buf + l2);
  arp->arp_hardware = RTE_BE16(RTE_ARP_HRD_ETHER);
  arp->arp_protocol = RTE_BE16(RTE_ETHER_TYPE_IPV4);
  arp->arp_hlen = RTE_ETHER_ADDR_LEN;
  arp->arp_plen = 4;
  arp->arp_opcode = RTE_BE16(RTE_ARP_OP_REQUEST);
  std::memcpy(arp->arp_data.arp_sha.addr_bytes, mine.data(), 6);
  arp->arp_data.arp_sip = r.sender_ip;
  arp->arp_data.arp_tip = r.target_ip;
  ++counters_.originated;
  ++counters_.arp_requests;
  ++counters_.steered_out;
  return len;
}

void NeighManager::handover_failed() {
  --counters_.steered_out;
  counters_.drop(DropReason::kArpQueueFull);
}

std::unique_ptr<NextHopMap> NeighManager::next_hops_if_changed() {
  if (published_once_ && table_.version() == published_) return nullptr;
  published_once_ = true;
  published_ = table_.version();
  return std::make_unique<NextHopMap>(table_, key_);
}

std::unique_ptr<NextHopMap6> NeighManager::next_hops6_if_changed() {
  if (published6_once_ && table6_.version() == published6_) return nullptr;
  published6_once_ = true;
  published6_ = table6_.version();
  return std::make_unique<NextHopMap6>(table6_, key_);
}

}  // namespace rondo::dp

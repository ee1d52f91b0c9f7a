#include "dataplane/fwd/pipeline.h"

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <type_traits>
#include <utility>

#include "dataplane/flow/tcp_state.h"
#include "dataplane/frag/steer.h"
#include "dataplane/fwd/fullnat.h"
#include "dataplane/fwd/fullnat6.h"
#include "dataplane/fwd/icmp_error.h"
#include "dataplane/fwd/icmp_error6.h"
#include "dataplane/fwd/icmp_xlate.h"
#include "dataplane/fwd/nat64.h"
#include "dataplane/pkt/csum.h"
#include "dataplane/pkt/tcp_opts.h"

namespace rondo::dp {
namespace {

constexpr uint8_t kIcmpEchoReply = 0, kIcmpEchoRequest = 8;
constexpr uint8_t kDefaultTtl = 64;
// ICMPv6 types (RFC 4443, RFC 4861, RFC 2710/3810).
constexpr uint8_t kIcmp6EchoRequest = 128, kIcmp6EchoReply = 129;
constexpr uint8_t kIcmp6MldQuery = 130, kIcmp6MldReport = 131, kIcmp6MldDone = 132;
constexpr uint8_t kIcmp6RouterSolicit = 133, kIcmp6RouterAdvert = 134;
constexpr uint8_t kIcmp6NeighSolicit = 135, kIcmp6NeighAdvert = 136, kIcmp6Redirect = 137;
constexpr uint8_t kIcmp6Mld2Report = 143;
constexpr uint32_t kAsksMax = 64;  // next hops asked for per loop at most
// Flows looked at per reclaim class when a backend's local ports run out (the one freed must
// be that backend's): a bound on the work per refused connection.
constexpr uint32_t kReclaimScan = 64;

inline Action drop(LcoreCounters& c, DropReason r) {
  c.drop(r);
  return Action{Action::Kind::kDrop, r, 0};
}

// A flow whose end leaves its tuple in the quarantine: a TCP connection the backend
// accepted, which may leave the tuple in the backend's TIME_WAIT (or LAST_ACK). One that
// never completed is free at once (so reclaiming half-open flows gives their tuples to real
// clients); reclaiming one that did would free nothing usable (handle_client).
template <class Table>
inline bool quarantined_after(const Table& t, uint32_t idx) {
  return !t.one_key(idx) && t.at(idx).rev.proto == IPPROTO_TCP && tcp_was_established(t.tcp(idx));
}
// A flow whose end frees no local-port tuple: quarantined, or a DSR flow (which has none).
template <class Table>
inline bool frees_no_tuple(const Table& t, uint32_t idx) {
  return t.one_key(idx) || quarantined_after(t, idx);
}

// A v6 address folded to 32 bits (a backend's identity for its counters).
inline uint32_t fold6(const Ip6& a) {
  uint32_t w[4];
  std::memcpy(w, a.b, 16);
  return w[0] ^ w[1] ^ w[2] ^ w[3];
}

inline PortTuple6 port_tuple6(const uint8_t* local_ip, const uint8_t* backend_ip, uint16_t lport,
                              uint16_t bport) {
  PortTuple6 t;
  std::memcpy(t.local_ip, local_ip, 16);
  std::memcpy(t.backend_ip, backend_ip, 16);
  t.local_port = lport;
  t.backend_port = bport;
  return t;
}

// Interface ifc's Ethernet header in front of the L3 header at l3 (decision 6 of the VLAN
// plan): destination dmac, source smac (the port's), and an 802.1Q tag with the interface's
// TCI when it has one, over whatever was there. The ethertype just in front of l3 is kept:
// the frame's own when forwarded in place, its writer's otherwise (encapsulation, NAT46/64,
// the outbox). Returns where the frame now starts: 14 or 18 bytes before l3, so a frame that
// came in tagged and leaves untagged (or the other way round) moves by 4 bytes and nothing
// else moves. dmac must not lie in the bytes overwritten.
inline uint8_t* put_l2(uint8_t* l3, const IfaceConf& ifc, const uint8_t* dmac,
                       const uint8_t* smac) {
  uint8_t* start = l3 - 14;
  if (ifc.tagged) {
    start -= 4;
    start[12] = 0x81;
    start[13] = 0x00;
    std::memcpy(start + 14, &ifc.tci, 2);
  }
  std::memcpy(start, dmac, 6);
  std::memcpy(start + 6, smac, 6);
  return start;
}

// The frame given at f, now starting at `start`, goes out of interface `iface` (on `port`):
// it starts before f (it grew: Action::prepend), after it (it shrank: Action::trim) or at f.
// (One whole Action: GCC builds one changed field by field through the stack.)
inline Action sent(uint16_t port, uint16_t iface, const uint8_t* f, const uint8_t* start) {
  const auto i = static_cast<uint8_t>(iface);
  if (__builtin_expect(start == f, 1)) return Action{Action::Kind::kTx, DropReason::kCount, port, 0, 0, i, 0};
  const ptrdiff_t d = f - start;
  return Action{Action::Kind::kTx, DropReason::kCount, port, 0,
                static_cast<uint8_t>(d > 0 ? d : 0), i, static_cast<uint16_t>(d < 0 ? -d : 0)};
}

inline uint32_t flow6_capacity(const PipelineParams& p) {
  return p.flow6_capacity ? p.flow6_capacity : std::max<uint32_t>(p.flow_capacity / 4, 1024);
}

// Whole seconds first: ms * hz overflows 64 bits for long timeouts on fast TSCs.
inline uint64_t ms_to_ticks(uint32_t ms, uint64_t hz) { return ms / 1000 * hz + ms % 1000 * hz / 1000; }

}  // namespace

// The most a frame grows at its front (Action::prepend): an untagged frame leaving GUE over
// IPv6 on a tagged interface (dsr6.cpp, encapsulate6), 56 bytes; NAT46 (20 bytes more of IP
// header, 4 of tag) and ipip stay below.
static_assert(18 + Gue6Encap<true>::kOverhead - 14 <= Pipeline::kHeadroom);
static_assert(18 + 40 - 20 - 14 <= Pipeline::kHeadroom);

Pipeline::Pipeline(const PipelineParams& p)
    : params_(p),
      n_ports_(static_cast<uint32_t>(p.port_macs.size())),
      ownership_(p.n_workers),
      flows_(make_flows(p, this)),
      backends_(new BackendCounters[kBackendSlots]()),
      ports_(p.lport_lo, p.lport_hi, ownership_, p.worker,
             derive_hash_key(p.hash_key, HashUse::kLocalPort), p.port_seed),
      quarantine_(make_quarantine(p, this)),
      flows6_(make_flows6(p, this)),
      quarantine6_(make_quarantine6(p, this)),
      backend_ident_(new uint64_t[kBackendSlots]()),
      replies_(p.reply_rate, p.reply_burst, p.hz),
      cookie_key_(derive_hash_key(p.hash_key, HashUse::kSynCookie)),
      syn_guard_(p.syncookie_embryonic_on, p.syncookie_syn_rate_on, p.hz) {
  static_assert(IpipEncap::kMode == api::Mode::kIpip && GueEncap::kMode == api::Mode::kGue &&
                    L2Encap::kMode == api::Mode::kL2Dsr,
                "one row of client handlers per mode, at the mode's wire value - 1");
  asks_.reserve(kAsksMax);
  flows_.set_sweep(std::max<uint64_t>(ms_to_ticks(p.age_sweep_ms, p.hz), 1),
                   std::max<uint32_t>(p.age_max_per_loop, 1));
  flows6_.set_sweep(std::max<uint64_t>(ms_to_ticks(p.age_sweep_ms, p.hz), 1),
                    std::max<uint32_t>(p.age_max_per_loop, 1));
  ms_div_ = std::max<uint64_t>(p.hz / 1000, 1);
  counters_.flow_capacity = flows_.capacity();
  counters_.flow6_capacity = flows6_.capacity();
  for (const MacAddr& m : p.port_macs) link_local6_.push_back(eui64_link_local(m));
  frag_key_ = derive_hash_key(p.hash_key, HashUse::kFlowTable);
  adopt_flows();
}

FlowTable Pipeline::make_flows(const PipelineParams& p, Pipeline* self) {
  const HashKey key = derive_hash_key(p.hash_key, HashUse::kFlowTable);
  if (p.flow_store.empty())
    return FlowTable(p.flow_capacity, key, &Pipeline::on_release, self, p.flow_meters);
  return FlowTable(p.flow_capacity, key, &Pipeline::on_release, self, p.flow_meters,
                   FlowStore{p.flow_store, p.store_adopt}, p.start_now);
}

FlowTable6 Pipeline::make_flows6(const PipelineParams& p, Pipeline* self) {
  const HashKey key = derive_hash_key(p.hash_key, HashUse::kFlowTable);
  if (p.flow6_store.empty())
    return FlowTable6(flow6_capacity(p), key, &Pipeline::on_release6, self, p.flow_meters);
  return FlowTable6(flow6_capacity(p), key, &Pipeline::on_release6, self, p.flow_meters,
                    FlowStore{p.flow6_store, p.store_adopt}, p.start_now);
}

Quarantine6 Pipeline::make_quarantine6(const PipelineParams& p, Pipeline* self) {
  const uint32_t cap = std::max<uint32_t>(flow6_capacity(p) / 4, 1024);
  const HashKey key = derive_hash_key(p.hash_key, HashUse::kLocalPort);
  if (p.quarantine6_store.empty())
    return Quarantine6(cap, key, &Pipeline::on_quarantine_leave, self);
  return Quarantine6(cap, key, &Pipeline::on_quarantine_leave, self,
                     QuarantineStore{p.quarantine6_store, p.store_adopt}, p.start_now);
}

Quarantine Pipeline::make_quarantine(const PipelineParams& p, Pipeline* self) {
  const uint32_t cap = p.quarantine_capacity ? p.quarantine_capacity
                                             : std::max<uint32_t>(p.flow_capacity / 4, 1024);
  const HashKey key = derive_hash_key(p.hash_key, HashUse::kLocalPort);
  if (p.quarantine_store.empty()) return Quarantine(cap, key, &Pipeline::on_quarantine_leave, self);
  return Quarantine(cap, key, &Pipeline::on_quarantine_leave, self,
                    QuarantineStore{p.quarantine_store, p.store_adopt}, p.start_now);
}

// The table adopted its records and buckets and nothing else (table.cpp, adopt()); what the
// previous process kept beside them, privately, is rebuilt here from the flows themselves:
//   - each backend's active_flows (lc's load, the stats): one per live flow;
//   - backend_ident_ starts unknown, so the first snapshot records every id without
//     resetting a counter; packets, bytes and connections restart at 0 (docs/operations.md);
//   - the local ports in use need nothing: alloc_local() takes a port as taken when a live
//     flow holds its tuple (a lookup of the reverse key in this very table) or the quarantine
//     does, so the adopted flows are the in-use index, and a discarded flow, gone from the
//     buckets, frees its port by being gone;
//   - a PROXY v2 flow's header state (proxy_, where its header sits in the stream) lived in
//     private memory and cannot be recovered: translating its sequence numbers wrongly
//     would corrupt the stream, so it is dropped (its client's next segment is tcp_no_flow);
//   - a record naming a backend id out of range (a corrupted word the table does not
//     check) is dropped too.
//   - each backend's quarantined count: one per tuple the adopted quarantine holds (its
//     file, PipelineParams::quarantine_store; the entries it dropped were never counted).
// The IPv6 table and quarantine likewise (no v6 flow has PROXY v2 state).
void Pipeline::adopt_flows() {
  auto count_quarantined = [this](const auto&, uint32_t backend_id, uint64_t) {
    if (backend_id < kBackendSlots) ++backends_[backend_id].quarantined;
  };
  if (quarantine_.adoption().outcome == QuarantineAdoption::Outcome::kAdopted)
    quarantine_.for_each(count_quarantined);
  if (quarantine6_.adoption().outcome == QuarantineAdoption::Outcome::kAdopted)
    quarantine6_.for_each(count_quarantined);
  if (quarantine6_.adoption().outcome == QuarantineAdoption::Outcome::kAdopted)
    quarantine6_.for_each([this](const PortTuple6& t, uint32_t, uint64_t until) {
      if (is_v4_mapped6(Ip6::from(t.local_ip)))
        mapped_q6_until_ = std::max(mapped_q6_until_, until);
    });
  auto adopt = [this](auto& table, uint32_t& dropped) {
    if (table.adoption().outcome != FlowAdoption::Outcome::kAdopted) return;
    for (uint32_t i = 0; i < table.capacity(); ++i) {
      const auto& f = table.at(i);
      if (f.state == FlowState::kFree) continue;
      if (f.backend_id >= kBackendSlots || (f.user & ProxyV2::kFlowBit)) {
        table.erase(i);
        ++dropped;
        continue;
      }
      ++backends_[f.backend_id].active_flows;
      if constexpr (std::is_same_v<std::decay_t<decltype(f)>, Flow6>)
        mapped6_ += is_v4_mapped6(Ip6::from(f.rev.dst_ip)) ? 1 : 0;
    }
  };
  adopt(flows_, adopt_dropped_);
  adopt(flows6_, adopt_dropped6_);
}

void Pipeline::on_release(void* ctx, const Flow& f) {
  auto* self = static_cast<Pipeline*>(ctx);
  --self->backends_[f.backend_id].active_flows;
  // The tuple is not handed out again for the quarantine (see quarantined_after).
  const auto idx = static_cast<uint32_t>(&f - &self->flows_.at(0));
  if (quarantined_after(self->flows_, idx)) {
    ++self->backends_[f.backend_id].quarantined;
    self->quarantine_.add(PortTuple{f.rev.dst_ip, f.rev.src_ip, f.rev.dst_port, f.rev.src_port},
                          f.backend_id, self->now_ + self->t_quarantine_, self->now_);
  }
}

void Pipeline::on_release6(void* ctx, const Flow6& f) {
  auto* self = static_cast<Pipeline*>(ctx);
  --self->backends_[f.backend_id].active_flows;
  const bool mapped = is_v4_mapped6(Ip6::from(f.rev.dst_ip));  // a NAT64 flow
  self->mapped6_ -= mapped ? 1 : 0;
  const auto idx = static_cast<uint32_t>(&f - &self->flows6_.at(0));
  if (quarantined_after(self->flows6_, idx)) {
    ++self->backends_[f.backend_id].quarantined;
    self->quarantine6_.add(port_tuple6(f.rev.dst_ip, f.rev.src_ip, f.rev.dst_port, f.rev.src_port),
                           f.backend_id, self->now_ + self->t_quarantine_, self->now_);
    if (mapped)
      self->mapped_q6_until_ = std::max(self->mapped_q6_until_, self->now_ + self->t_quarantine_);
  }
}

void Pipeline::on_quarantine_leave(void* ctx, uint32_t backend_id) {
  --static_cast<Pipeline*>(ctx)->backends_[backend_id].quarantined;
}

void Pipeline::count_reclaim(Reclaim kind) {
  switch (kind) {
    case Reclaim::kEmbryonic: ++counters_.reclaimed_embryonic; break;
    case Reclaim::kClosed: ++counters_.reclaimed_closed; break;
    case Reclaim::kIdleUdp: ++counters_.reclaimed_udp; break;
    case Reclaim::kNone: break;
  }
}

void Pipeline::on_snapshot(const Snapshot& s, uint64_t /*now*/) {
  t_syn_ = ms_to_ticks(s.timeouts.tcp_syn_ms, params_.hz);
  t_est_ = ms_to_ticks(s.timeouts.tcp_established_ms, params_.hz);
  t_closing_ = ms_to_ticks(s.timeouts.tcp_closing_ms, params_.hz);
  t_time_wait_ = ms_to_ticks(s.timeouts.tcp_time_wait_ms, params_.hz);
  t_reset_ = ms_to_ticks(s.timeouts.tcp_reset_ms, params_.hz);
  t_udp_ = ms_to_ticks(s.timeouts.udp_ms, params_.hz);
  t_quarantine_ = ms_to_ticks(s.timeouts.port_quarantine_ms, params_.hz);
  vip_cookies_on_ = vip_cookies_auto_ = false;
  for (const VipConf& v : s.vips) {
    vip_cookies_on_ |= v.syncookies == api::SynCookies::kOn;
    vip_cookies_auto_ |= v.syncookies == api::SynCookies::kAuto;
    // Once, on the worker (the first snapshot with such a VIP): 16 bytes per flow record.
    if (v.proxy_protocol == api::ProxyProtocol::kV2 && !proxy_)
      proxy_.reset(new ProxyHdr[flows_.capacity()]());
  }

  // An id the control plane hands to another backend (after its own quarantine) starts
  // with fresh counters; flows and quarantined tuples of the old one are long gone, and the
  // gauges that track live state stay as they are.
  for (const auto& b : s.backends) {
    const uint32_t ip = b.ip ? b.ip : fold6(b.ip6);
    const uint64_t ident = uint64_t{1} << 48 | uint64_t{ip} << 16 | b.port;
    uint64_t& known = backend_ident_[b.id];
    if (known != ident && known != 0) {
      BackendCounters& c = backends_[b.id];
      c.packets = c.bytes = c.connections = 0;
    }
    known = ident;
  }
}

void Pipeline::tick(const Snapshot* s, uint64_t now) {
  now_ = now;
  if (proxy_ && s) proxy_sweep(*s, now, kProxySweepPerLoop);
  flows_.sweep(now);
  flows6_.sweep(now);
  housekeep(s, now);
}

void Pipeline::tick(const Snapshot* s, uint64_t now, uint32_t budget) {
  now_ = now;
  if (proxy_ && s) proxy_sweep(*s, now, budget * 4);
  flows_.age(now, budget);
  flows6_.age(now, budget);
  housekeep(s, now);
}

void Pipeline::housekeep(const Snapshot*, uint64_t now) {
  quarantine_.expire(now);
  quarantine6_.expire(now);
  counters_.quarantined_tuples = quarantine_.size() + quarantine6_.size();
  counters_.quarantine_released_early = quarantine_.released_early() + quarantine6_.released_early();
  counters_.flows_active = flows_.size();
  counters_.flows6_active = flows6_.size();
  syn_guard_.update(now, flows_.embryonic());
  // 1 while SYNs to some VIP are answered with cookies: an `on` VIP, or an `auto` one with
  // the switch on (the switch alone says nothing when no VIP follows it).
  counters_.syncookies_active = vip_cookies_on_ || (vip_cookies_auto_ && syn_guard_.active());
}

bool Pipeline::cookies_for_syn(const VipConf& vip, uint64_t now) {
  switch (vip.syncookies) {
    case api::SynCookies::kOff: return false;
    case api::SynCookies::kOn: break;
    case api::SynCookies::kAuto:
      if (!syn_guard_.on_syn(now, flows_.embryonic())) return false;
      counters_.syncookies_active = 1;
      break;
  }
  last_cookie_ = now;
  sent_cookie_ = true;
  return true;
}

bool Pipeline::cookies_checked(const VipConf& vip, uint64_t now) const {
  switch (vip.syncookies) {
    case api::SynCookies::kOff: return false;
    case api::SynCookies::kOn: return true;
    case api::SynCookies::kAuto:
      // A cookie lives two slots at most: after that no ACK can be one of ours, and a stray
      // ACK is tcp_no_flow as without cookies.
      return sent_cookie_ && now - last_cookie_ < 2 * SynCookie::kSlotSeconds * params_.hz;
  }
  return false;
}

Action Pipeline::process(const Snapshot* s, uint8_t* f, uint32_t len, uint16_t in_port,
                         uint64_t now, bool steered) {
  Action a;
  process_burst(s, &f, &len, 1, in_port, now, steered, &a);
  return a;
}

// Stage 1 for one frame: count it, parse it, decide what it is, and for flow traffic hash
// its key and start fetching the two buckets it will be looked up in.
void Pipeline::classify(const Burst& b, const uint8_t* f, uint32_t len, Pending* pd) {
  if (b.steered) {
    ++counters_.steered_in;
  } else {
    ++counters_.rx_packets;
    counters_.rx_bytes += len;
  }
  pd->cls = Pending::Cls::kDrop;
  Parsed& p = pd->p;
  if (!parse_frame(f, len, &p, &pd->why, params_.mtu)) return;
  if (__builtin_expect(!b.pi, 0)) {
    // No snapshot yet, or a port that is not one of its and this pipeline's.
    if (!(f[0] & 1) && b.in_port < n_ports_ &&
        std::memcmp(f, params_.port_macs[b.in_port].data(), 6) != 0)
      pd->why = DropReason::kNotOurMac;
    else
      pd->why = b.s ? DropReason::kNoRoute : DropReason::kNoState;
    return;
  }
  // The interface (decision 4 of the VLAN plan): the port's entry was read once for the
  // burst, the VID picks from it (0: untagged, or priority-tagged: 802.1Q says untagged). A
  // tag, or none, that names no interface of the port is a network rondo is not on.
  const uint16_t iface = b.pi->iface_of(p.vid);
  if (iface == kNoIface) {
    pd->why = DropReason::kVlanMismatch;
    return;
  }
  // Unicast frames for another MAC reach us on devices that see the whole segment.
  if (!(f[0] & 1) && std::memcmp(f, b.mac, 6) != 0) {
    pd->why = DropReason::kNotOurMac;
    return;
  }
  const Snapshot* s = b.s;
  pd->iface = iface;
  if (b.count_rx) {
    IfaceCounters& ic = ifc_[iface];
    ++ic.rx_packets;
    ic.rx_bytes += len;
  }
  if (p.kind == PktKind::kArp) {
    // Classification only: an ARP frame about one of our addresses goes to the main lcore,
    // which checks the sender, learns and answers (neigh/manager.h). The rest is not ours.
    // The interface's own addresses are ours on that interface only (decision 3).
    const auto* arp = reinterpret_cast<const rte_arp_hdr*>(f + p.l3_off);
    const uint32_t tip = arp->arp_data.arp_tip;
    if (s->is_vip_ip(tip) || s->is_local_ip(tip) || s->is_iface_ip(iface, tip))
      pd->cls = Pending::Cls::kToMain;
    else
      pd->why = DropReason::kArpNotForUs;
    return;
  }
  const uint32_t dst = p.key.dst_ip;
  if (p.kind == PktKind::kIpv4Tcp || p.kind == PktKind::kIpv4Udp) {
    if ((pd->vip = s->find_vip(dst, p.key.dst_port, p.key.proto))) {
      pd->cls = Pending::Cls::kClient;
    } else if (s->is_local_ip(dst)) {
      // Replies come back to the worker that owns the local port; one that lands
      // elsewhere (no NIC steering) is handed over.
      const uint32_t owner = ownership_.owner(rte_be_to_cpu_16(p.key.dst_port));
      if (owner != params_.worker && !b.steered) {
        pd->cls = Pending::Cls::kSteer;
        pd->steer_to = static_cast<uint16_t>(owner);
        return;
      }
      pd->cls = Pending::Cls::kReply;
    } else {
      pd->why = s->is_vip_ip(dst) ? DropReason::kNoService : DropReason::kNotForVip;
      return;
    }
    pd->probe = flows_.probe(p.key);
    flows_.prefetch(pd->probe);
    return;
  }
  if (is_ipv6(p.kind)) {
    classify6(*s, f, b.in_port, b.steered, pd);
    return;
  }
  if (p.kind == PktKind::kIpv4Frag) {
    classify_frag(s->is_vip_ip(dst) || s->is_local_ip(dst), b.steered, pd);
    return;
  }
  if (!s->is_vip_ip(dst) && !s->is_local_ip(dst)) {
    // An address of the interface it came in on answers echo (handle_icmp; an error about
    // a flow never comes to it: no flow uses it). TCP and UDP to it are the host's, not ours.
    if (p.kind == PktKind::kIpv4Icmp && s->is_iface_ip(iface, dst))
      pd->cls = Pending::Cls::kIcmp;
    else
      pd->why = DropReason::kNotForVip;
    return;
  }
  if (p.kind == PktKind::kIpv4Icmp) {
    pd->cls = Pending::Cls::kIcmp;
    // An error about a full-NAT flow's backend side quotes the local port: its owner has
    // the flow (as for the flow's own replies).
    IcmpError::Quote q;
    uint8_t* icmp = const_cast<uint8_t*>(f) + p.l4_off;
    if (s->is_local_ip(dst) && IcmpError::is_error(icmp[0]) &&
        IcmpError::quote(icmp, p.l4_len(), &q)) {
      const uint32_t owner = ownership_.owner(rte_be_to_cpu_16(q.answer.dst_port));
      if (owner != params_.worker && !b.steered) {
        pd->cls = Pending::Cls::kSteer;
        pd->steer_to = static_cast<uint16_t>(owner);
      }
    }
    return;
  }
  pd->why = DropReason::kUnsupportedL4;
}

void Pipeline::classify6(const Snapshot& s, const uint8_t* f, uint16_t in_port, bool steered,
                         Pending* pd) {
  const Parsed& p = pd->p;
  const Ip6 dst = Ip6::from(p.key6.dst_ip);
  if (p.kind == PktKind::kIpv6Tcp || p.kind == PktKind::kIpv6Udp) {
    if ((pd->vip = s.find_vip6(dst, p.key6.dst_port, p.key6.proto))) {
      pd->cls = Pending::Cls::kClient6;
    } else if (s.is_local_ip6(dst)) {
      // As for IPv4: the local port's owner has the flow.
      const uint32_t owner = ownership_.owner(rte_be_to_cpu_16(p.key6.dst_port));
      if (owner != params_.worker && !steered) {
        pd->cls = Pending::Cls::kSteer;
        pd->steer_to = static_cast<uint16_t>(owner);
        return;
      }
      pd->cls = Pending::Cls::kReply6;
    } else {
      pd->why = s.is_vip_ip6(dst) ? DropReason::kNoService : DropReason::kNotForVip;
      return;
    }
    pd->probe6 = flows6_.probe(p.key6);
    flows6_.prefetch(pd->probe6);
    return;
  }
  const bool ours = s.is_vip_ip6(dst) || s.is_local_ip6(dst);
  if (p.kind == PktKind::kIpv6Frag) {
    // rte_ip_frag finds the fragment header right after the fixed one only: a fragment with
    // other extension headers before it is refused (docs/architecture.md, "Fragments").
    classify_frag(ours && p.ext_len == 8, steered, pd);
    return;
  }
  if (p.kind == PktKind::kIpv6Icmp) {
    uint8_t* icmp = const_cast<uint8_t*>(f) + p.l4_off;
    switch (icmp[0]) {
      case kIcmp6NeighSolicit: {
        // The main lcore answers solicitations for our addresses, the port's link-local
        // one included (neigh/manager.h); it checks the rest (RFC 4861 7.1.1).
        if (p.l4_len() < 24) {
          pd->why = DropReason::kNdpInvalid;
          return;
        }
        const Ip6 target = Ip6::from(icmp + 8);
        if (s.is_vip_ip6(target) || s.is_local_ip6(target) || target == link_local6_[in_port] ||
            s.is_iface_ip6(pd->iface, target))
          pd->cls = Pending::Cls::kToMain;
        else
          pd->why = DropReason::kNdpNotForUs;
        return;
      }
      case kIcmp6NeighAdvert:
        // An answer to one of our solicitations (to an address of ours), or unsolicited to
        // all nodes: the manager learns or refuses it.
        if (ours || dst == link_local6_[in_port] || is_multicast6(dst) ||
            s.is_iface_ip6(pd->iface, dst))
          pd->cls = Pending::Cls::kToMain;
        else
          pd->why = DropReason::kNdpNotForUs;
        return;
      case kIcmp6RouterSolicit:
      case kIcmp6RouterAdvert:
      case kIcmp6Redirect:
      case kIcmp6MldQuery:
      case kIcmp6MldReport:
      case kIcmp6MldDone:
      case kIcmp6Mld2Report:
        pd->why = DropReason::kNdpIgnored;
        return;
      default: break;
    }
    if (!ours) {
      // Echo to an address of the interface it came in on (as for IPv4).
      if (s.is_iface_ip6(pd->iface, dst))
        pd->cls = Pending::Cls::kIcmp6;
      else
        pd->why = DropReason::kNotForVip;
      return;
    }
    pd->cls = Pending::Cls::kIcmp6;
    // An error about a flow's backend side quotes the local port: its owner has the flow.
    IcmpError6::Quote q;
    if (s.is_local_ip6(dst) && IcmpError6::is_error(icmp[0]) &&
        IcmpError6::quote(icmp, p.l4_len(), &q)) {
      const uint32_t owner = ownership_.owner(rte_be_to_cpu_16(q.answer.dst_port));
      if (owner != params_.worker && !steered) {
        pd->cls = Pending::Cls::kSteer;
        pd->steer_to = static_cast<uint16_t>(owner);
      }
    }
    return;
  }
  pd->why = ours ? DropReason::kUnsupportedL4 : DropReason::kNotForVip;
}

void Pipeline::classify_frag(bool ours, bool steered, Pending* pd) {
  if (!ours) {
    pd->why = DropReason::kIpFragment;
    return;
  }
  const uint32_t owner = frag_owner(pd->p, params_.n_workers, frag_key_);
  if (owner != params_.worker && !steered) {
    pd->cls = Pending::Cls::kSteer;
    pd->steer_to = static_cast<uint16_t>(owner);
    return;
  }
  pd->cls = Pending::Cls::kFrag;
}

void Pipeline::process_burst(const Snapshot* s, uint8_t* const* frames, const uint32_t* lens,
                             uint32_t n, uint16_t in_port, uint64_t now, bool steered, Action* out) {
  now_ = now;
  // Three passes over the burst so that memory latency overlaps: (1) parse, hash, prefetch
  // buckets; (2) read the buckets, prefetch the flow records they point at; (3) do the work.
  Pending pd[kMaxBurst];
  Burst b{s, nullptr, nullptr, in_port, steered, !(steered || reassembled_)};
  if (s && in_port < s->port_ifaces.size() && in_port < n_ports_) {
    b.pi = &s->port_ifaces[in_port];
    b.mac = params_.port_macs[in_port].data();
  }
  for (uint32_t base = 0; base < n; base += kMaxBurst) {
    const uint32_t m = std::min(n - base, kMaxBurst);
    for (uint32_t i = 0; i < m; ++i) {
      if (i + 1 < m) __builtin_prefetch(frames[base + i + 1], 1, 3);
      classify(b, frames[base + i], lens[base + i], &pd[i]);
    }
    for (uint32_t i = 0; i < m; ++i) {
      if (pd[i].cls == Pending::Cls::kClient || pd[i].cls == Pending::Cls::kReply)
        flows_.prefetch_record(pd[i].probe, pd[i].p.kind == PktKind::kIpv4Tcp);
      else if (pd[i].cls == Pending::Cls::kClient6 || pd[i].cls == Pending::Cls::kReply6)
        flows6_.prefetch_record(pd[i].probe6, pd[i].p.kind == PktKind::kIpv6Tcp);
    }
    for (uint32_t i = 0; i < m; ++i) {
      uint8_t* f = frames[base + i];
      const uint32_t len = lens[base + i];
      Action& a = out[base + i];
      switch (pd[i].cls) {
        case Pending::Cls::kDrop: a = drop(counters_, pd[i].why); break;
        case Pending::Cls::kToMain:
          ++counters_.steered_out;
          a = Action{Action::Kind::kToMain, DropReason::kCount, 0};
          break;
        case Pending::Cls::kIcmp: a = handle_icmp(*s, f, pd[i].p, pd[i].iface, now); break;
        case Pending::Cls::kClient:
        case Pending::Cls::kClient6:
          a = kClientFns[pd[i].vip->handler](*this, *s, f, len, pd[i], now);
          break;
        case Pending::Cls::kReply: a = handle_reply(*s, f, len, pd[i].p, pd[i].probe, now); break;
        case Pending::Cls::kReply6: a = handle_reply6(*s, f, len, pd[i].p, pd[i].probe6, now); break;
        case Pending::Cls::kIcmp6: a = handle_icmp6(*s, f, pd[i].p, pd[i].iface, now); break;
        case Pending::Cls::kSteer:
          ++counters_.steered_out;
          a = Action{Action::Kind::kSteer, DropReason::kCount, pd[i].steer_to};
          break;
        case Pending::Cls::kFrag:
          ++counters_.consumed;
          a = Action{Action::Kind::kFragment, DropReason::kCount, 0};
          break;
      }
      if (a.kind == Action::Kind::kTx) {  // queued for TX on its interface
        IfaceCounters& ic = ifc_[a.iface];
        ++ic.tx_packets;
        ic.tx_bytes += out_len(a, len);
      }
    }
  }
}

Action Pipeline::handle_icmp(const Snapshot& s, uint8_t* f, const Parsed& p, uint16_t iface,
                             uint64_t now) {
  uint8_t* icmp = f + p.l4_off;
  if (IcmpError::is_error(icmp[0])) return handle_icmp_error(s, f, p, now);
  if (icmp[0] != kIcmpEchoRequest || icmp[1] != 0)
    return drop(counters_, DropReason::kIcmpUnsupported);
  if (!replies_.take(now)) return drop(counters_, DropReason::kRateLimited);
  // Echo reply straight back to the sender: swap addresses (the checksum does not change
  // when the same words swap places), reset TTL, flip the type.
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(f + p.l3_off);
  uint32_t a = ip->src_addr;
  ip->src_addr = ip->dst_addr;
  ip->dst_addr = a;
  uint16_t old_word, new_word;
  std::memcpy(&old_word, &ip->time_to_live, 2);
  ip->time_to_live = kDefaultTtl;
  std::memcpy(&new_word, &ip->time_to_live, 2);
  ip->hdr_checksum = csum_replace16(ip->hdr_checksum, old_word, new_word);

  return echo_back(s, f, p, kIcmpEchoReply, iface);
}

// The end of an echo reply in either family: the type flipped (its checksum updated; both
// checksums cover the type word), back to the sender's MAC out of the interface it came in
// on, with that interface's tag (PCP 0; a priority-tagged request is answered untagged).
Action Pipeline::echo_back(const Snapshot& s, uint8_t* f, const Parsed& p, uint8_t reply_type,
                           uint16_t iface) {
  uint8_t* icmp = f + p.l4_off;
  uint16_t old_word, new_word, c;
  std::memcpy(&old_word, icmp, 2);
  icmp[0] = reply_type;
  std::memcpy(&new_word, icmp, 2);
  std::memcpy(&c, icmp + 2, 2);
  c = csum_replace16(c, old_word, new_word);
  std::memcpy(icmp + 2, &c, 2);
  const IfaceConf& ifc = s.ifaces[iface];
  uint8_t sender[6];  // in the bytes put_l2 writes when the tag comes off
  std::memcpy(sender, f + 6, 6);
  uint8_t* start = put_l2(f + p.l3_off, ifc, sender, params_.port_macs[ifc.port].data());
  return sent(ifc.port, iface, f, start);
}

Action Pipeline::handle_icmp_error(const Snapshot& s, uint8_t* f, const Parsed& p, uint64_t now) {
  uint8_t* icmp = f + p.l4_off;
  IcmpError::Quote q;
  if (!IcmpError::quote(icmp, p.l4_len(), &q)) return drop(counters_, DropReason::kIcmpUnsupported);
  // The error goes to the quoted packet's sender: an error about a packet that was not ours
  // (its source is not the address the error came to) names no flow of ours.
  if (q.answer.dst_ip != p.key.dst_ip) return drop(counters_, DropReason::kIcmpNoFlow);
  if (p.ttl <= 1) return drop(counters_, DropReason::kTtlExceeded);
  const FlowTable::Hit hit = flows_.lookup(q.answer, now);
  if (!hit.found()) {
    // About a NAT46 flow's client side or a NAT64 flow's backend side: in flows6_, the other
    // end is IPv6 (looked for only when the snapshot has such VIPs).
    if (s.nat46 || nat64_live(s, now)) return icmp_error46(s, f, p, mapped_key(q.answer), now);
    return drop(counters_, DropReason::kIcmpNoFlow);
  }
  const Flow& fl = flows_.at(hit.idx);
  ++counters_.icmp_errors_forwarded;
  if (flows_.one_key(hit.idx)) {
    // DSR: the backend sent the quoted packet (from the VIP); the error goes to it as the
    // client's packets do, in the VIP's encapsulation.
    const VipConf* vip = s.find_vip(fl.fwd.dst_ip, fl.fwd.dst_port, fl.fwd.proto);
    if (!vip) return drop(counters_, DropReason::kIcmpNoFlow);  // the VIP is gone
    switch (vip->mode) {
      case api::Mode::kIpip: return relay_dsr<IpipEncap>(s, f, p, fl, now);
      case api::Mode::kGue: return relay_dsr<GueEncap>(s, f, p, fl, now);
      case api::Mode::kL2Dsr: return relay_dsr<L2Encap>(s, f, p, fl, now);
      case api::Mode::kFullNat: break;
    }
    return drop(counters_, DropReason::kIcmpNoFlow);
  }
  if (hit.dir == FlowDir::kForward) {
    // From the client's side, about a packet rondo sent the client (VIP -> client): to the
    // backend, about the packet the backend sent (backend -> local ip:port).
    IcmpError::translate(f + p.l3_off, icmp, p.l4_len(), q, fl.rev.dst_ip, fl.rev.src_ip,
                         fl.rev.src_ip, fl.rev.dst_ip, fl.rev.src_port, fl.rev.dst_port);
    return output(s, f, f + p.l3_off, fl.rev.src_ip, now);
  }
  // From the backend's side, about a packet rondo sent the backend: to the client, about
  // the packet the client sent (client -> VIP).
  IcmpError::translate(f + p.l3_off, icmp, p.l4_len(), q, fl.fwd.dst_ip, fl.fwd.src_ip,
                       fl.fwd.src_ip, fl.fwd.dst_ip, fl.fwd.src_port, fl.fwd.dst_port);
  return output(s, f, f + p.l3_off, fl.fwd.src_ip, now);
}

template <class Encap>
Action Pipeline::relay_dsr(const Snapshot& s, uint8_t* f, const Parsed& p, const Flow& fl,
                           uint64_t now) {
  if constexpr (Encap::kOverhead == 0) {
    return output(s, f, f + p.l3_off, fl.rev.src_ip, now);
  } else {
    // Cut to what fits once encapsulated: the quote is what matters, not its length.
    const uint32_t mtu = std::min(egress_mtu(s, fl.rev.src_ip), params_.mtu);
    const uint32_t len = std::min<uint32_t>(p.ip_len, mtu - Encap::kOverhead);
    uint8_t* inner = f + p.l3_off;
    if (len < p.ip_len) {
      inner[2] = static_cast<uint8_t>(len >> 8);
      inner[3] = static_cast<uint8_t>(len);
      inner[10] = inner[11] = 0;
      csum_put(inner + 10, csum_sum(inner, (inner[0] & 0x0fu) * 4));
      uint8_t* icmp = f + p.l4_off;
      const uint32_t icmp_len = len - (p.l4_off - p.l3_off);
      icmp[2] = icmp[3] = 0;
      csum_put(icmp + 2, csum_sum(icmp, icmp_len));
    }
    return encapsulate<Encap>(s, f, p.l3_off, len, fl, now);
  }
}

bool Pipeline::alloc_local(const Snapshot& s, FlowKey* rev, FlowTable::Probe* rev_probe,
                           uint64_t now) {
  const uint32_t n = static_cast<uint32_t>(s.local_ips.size());
  const bool tcp = rev->proto == IPPROTO_TCP;
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t lip = s.local_ips[(local_cursor_ + i) % n];
    // Taken: a live flow has the tuple (its reverse key), or (TCP) it is quarantined.
    // The last candidate looked up is the port picked: its probe goes to insert_new, and its
    // lookup (which also released an expired holder) is the check that the key is new.
    auto taken = [&](uint16_t lport) {
      FlowKey k = *rev;
      k.dst_ip = lip;
      k.dst_port = lport;
      *rev_probe = flows_.probe(k);
      if (flows_.lookup(k, *rev_probe, now).found()) return true;
      if (tcp && quarantine_.holds(PortTuple{lip, rev->src_ip, lport, rev->src_port}, now))
        return true;
      // NAT64 flows hold v4 tuples in flows6_ (IPv4-mapped): a tuple is unique across both.
      if (!nat64_live(s, now)) return false;
      FlowKey6 m = mapped_key(k);
      if (flows6_.lookup(m, now).found()) return true;
      return tcp && quarantine6_.holds(port_tuple6(m.dst_ip, m.src_ip, lport, rev->src_port), now);
    };
    uint16_t lport;
    if (ports_.pick(lip, rev->src_ip, rev->src_port, taken, &lport)) {
      local_cursor_ = (local_cursor_ + i + 1) % n;
      rev->dst_ip = lip;
      rev->dst_port = lport;
      return true;
    }
  }
  return false;
}

uint64_t Pipeline::tcp_timeout(FlowState st) const {
  switch (st) {
    case FlowState::kSynSent:
    case FlowState::kSynRecv: return t_syn_;
    case FlowState::kEstablished:
    case FlowState::kHalfClosed: return t_est_;
    case FlowState::kTimeWait: return t_time_wait_;
    case FlowState::kReset: return t_reset_;
    default: return t_closing_;
  }
}

template <class Table>
bool Pipeline::track_tcp_in(Table& t, uint32_t idx, FlowDir dir, const uint8_t* f,
                            const Parsed& p, uint64_t now) {
  const TcpSegment seg = read_tcp_segment(f + p.l4_off, p.l4_len());
  FlowState st = t.at(idx).state;
  switch (tcp_track(t.tcp(idx), &st, dir, seg)) {
    case TcpVerdict::kDrop: return false;
    case TcpVerdict::kPass: return true;  // forwarded, but it moves nothing (not even expiry)
    case TcpVerdict::kOk: break;
  }
  t.update(idx, st, now + tcp_timeout(st));
  return true;
}

Action Pipeline::handle_client(const Snapshot& s, const VipConf& vip, uint8_t* f, uint32_t len,
                               const Parsed& p, const FlowTable::Probe& probe, uint64_t now) {
  if (p.ttl <= 1) return drop(counters_, DropReason::kTtlExceeded);
  FlowTable::Hit hit = flows_.lookup(p.key, probe, now);
  const bool tcp = p.kind == PktKind::kIpv4Tcp;
  if (hit.found() && hit.dir != FlowDir::kForward) return drop(counters_, DropReason::kReplyNoFlow);
  // Full-NAT keeps the length: longer than the backend's interface allows, the packet goes
  // back as it came (quoted before the tracker or a sequence translation touches it). A new
  // flow's first packet is looked at once its backend is known, below.
  if (hit.found()) {
    if (const uint32_t mtu = too_long(s, p.ip_len, flows_.at(hit.idx).rev.src_ip))
      return too_big4(s, f, p, mtu, now);
  }
  // A SYN on a flow that is over (reset, closed, time-wait), or on one the client has
  // half-closed, is the client reusing its port for a new connection: it is scheduled afresh
  // (and counted) like any new connection, not glued to the old backend.
  if (hit.found() && tcp && (p.tcp_flags & (kTcpSyn | kTcpAck)) == kTcpSyn &&
      tcp_syn_reopens(flows_.tcp(hit.idx), flows_.at(hit.idx).state)) {
    on_release(this, flows_.at(hit.idx));
    flows_.erase(hit.idx);
    hit = FlowTable::Hit{};
  }

  const bool fresh = !hit.found();
  if (fresh) {
    // SYN proxy hook: on a VIP with SYN cookies a bare ACK without a flow may return one.
    bool cookie_ack = false;
    if (tcp && (p.tcp_flags & (kTcpSyn | kTcpAck | kTcpRst)) != kTcpSyn) {
      // (A FIN on that ACK, a client that closes at once, is no reason to refuse it: the FIN
      // goes on with the backend's handshake, unless data came before it: SynProxy::user_for_ack.)
      if ((p.tcp_flags & (kTcpSyn | kTcpAck | kTcpRst)) != kTcpAck || !cookies_checked(vip, now))
        return drop(counters_, DropReason::kTcpNoFlow);
      cookie_ack = true;
    }
    // Before a packet takes a flow and a port: it is not from one of our own addresses
    // (land), and its L4 checksum verifies (corrupt or forged junk never holds state).
    if (s.is_vip_ip(p.key.src_ip) || s.is_local_ip(p.key.src_ip))
      return drop(counters_, DropReason::kMartianSource);
    if (!l4_csum_ok(f + p.l3_off, f + p.l4_off, p.l4_len(), p.key.proto))
      return drop(counters_, DropReason::kBadL4Checksum);
    // SYN proxy hook: a SYN under cookies is answered here and keeps nothing; an ACK opens a
    // flow only with a valid cookie.
    SynOpts cookie_opts;
    if (cookie_ack) {
      if (!SynProxy::check_ack(f, p, cookie_key_, SynCookie::slot(now, params_.hz), &cookie_opts))
        return drop(counters_, DropReason::kSynCookieInvalid);
      ++counters_.syncookies_ok;
    } else if (tcp && cookies_for_syn(vip, now)) {
      ++counters_.syncookies_sent;
      const uint32_t n = SynProxy::answer_syn(f, p, cookie_key_, SynCookie::slot(now, params_.hz));
      Action a = output(s, f, f + p.l3_off, p.key.src_ip, now);
      ends_at(&a, f, f + n);
      return a;
    }
    const uint32_t pick = sched_pick(s, vip, &sched_, p.key, probe.hash);
    if (pick == kNoPick) return drop(counters_, DropReason::kNoBackend);
    counters_.fail_open_flows += vip.failing_open;
    const BackendConf& b = s.eligible_backend(vip, pick);
    FlowKey rev;
    rev.src_ip = b.ip;
    rev.src_port = b.port;
    rev.proto = p.key.proto;
    // Out of local ports: as with table space, one flow gives its tuple up, in the table's
    // reclaim order (half-open, closed, idle UDP; never established), so neither a SYN
    // flood nor spoofed SYN+FIN pairs nor random-port UDP lock out real clients. A flow
    // whose connection had completed is passed over: its tuple would go to the quarantine,
    // never to a new client.
    FlowTable::Probe rev_probe;
    bool have_port = alloc_local(s, &rev, &rev_probe, now);
    Reclaim freed = Reclaim::kNone;
    // A half-open flow gives its tuple up only after a quiet second: a real handshake takes
    // a round trip, and reusing a tuple the backend still has in SYN_RECV or ESTABLISHED is
    // a collision (its answer is not a SYN-ACK). A flood's flows are quiet between the
    // backend's SYN-ACK retransmissions.
    const uint64_t quiet = now + t_syn_ > params_.hz ? now + t_syn_ - params_.hz : 0;
    flows_.set_embryonic_bound(quiet);  // for the port shortage here and a full table below
    if (!have_port && flows_.reclaim_matching(rev, kReclaimScan, &frees_no_tuple, &freed)) {
      count_reclaim(freed);
      have_port = alloc_local(s, &rev, &rev_probe, now);
    }
    if (!have_port) return drop(counters_, DropReason::kNoLocalPort);
    const FlowState st = tcp ? FlowState::kSynSent : FlowState::kUdp;
    // Both keys are new: the lookup above missed p.key, and alloc_local's missed rev.
    auto r = flows_.insert_new(p.key, probe, rev, rev_probe, st, now + (tcp ? t_syn_ : t_udp_),
                               now);
    count_reclaim(r.reclaimed);
    if (r.status != FlowTable::InsertStatus::kOk) return drop(counters_, DropReason::kTableFull);
    Flow& fl = flows_.at(r.idx);
    if (cookie_ack) {
      // The flow stays kSynSent until the backend's SYN-ACK is absorbed (handle_reply).
      fl.user = SynProxy::user_for_ack(f, p);
      SynProxy::track_init(flows_.tcp(r.idx), f, p, cookie_opts);
    } else if (tcp) {
      tcp_track_syn(flows_.tcp(r.idx), read_tcp_segment(f + p.l4_off, p.l4_len()));
    }
    if (tcp && vip.proxy_protocol == api::ProxyProtocol::kV2 && proxy_) {
      // The header goes at the client's ISN + 1: the SYN's seq + 1, or the cookie ACK's seq.
      fl.user |= ProxyV2::kFlowBit;
      ProxyHdr h;
      h.seq = tcp_rd32(f + p.l4_off + 4) + (cookie_ack ? 0 : 1);
      h.phase = ProxyHdr::kAwait;
      proxy_[r.idx] = h;
    }
    fl.backend_id = b.id;
    fl.vip_id = static_cast<uint16_t>(vip.id);
    BackendCounters& bc = backends_[b.id];
    ++bc.connections;
    ++bc.active_flows;
    hit.idx = r.idx;
    if (cookie_ack) {  // the ACK becomes the SYN to the backend
      ++bc.packets;
      bc.bytes += len;
      flows_.count(r.idx, FlowDir::kForward, len);
      const uint32_t n = SynProxy::open_backend(f, p, fl, flows_.tcp(r.idx), cookie_opts);
      Action a = output(s, f, f + p.l3_off, fl.rev.src_ip, now);
      ends_at(&a, f, f + n);
      return a;
    }
  } else if (tcp) {
    // SYN proxy hook: nothing of the client's but an RST goes to a backend that has not
    // answered yet (the client retransmits its data once the connection is up).
    const bool proxied = SynProxy::proxied(flows_.at(hit.idx).user);
    if (proxied && flows_.at(hit.idx).state == FlowState::kSynSent && !(p.tcp_flags & kTcpRst))
      return drop(counters_, DropReason::kTcpNoFlow);
    if (!track_tcp(hit.idx, FlowDir::kForward, f, p, now))
      return drop(counters_, DropReason::kTcpOutOfWindow);
    if (proxied) SynProxy::to_backend(f, p, flows_.at(hit.idx), flows_.tcp(hit.idx));
    if (flows_.at(hit.idx).user & ProxyV2::kFlowBit) {
      ProxyHdr& h = proxy_[hit.idx];
      uint8_t* tcph = f + p.l4_off;
      if (h.phase != ProxyHdr::kAcked) ProxyV2::note_client(h, tcph);
      if (h.phase == ProxyHdr::kAwait) {
        // The client's handshake is complete: the header goes now, and takes the place of
        // a pure ACK (proxy_v2.h).
        const FlowState st = flows_.at(hit.idx).state;
        if ((p.tcp_flags & (kTcpAck | kTcpRst)) == kTcpAck && st != FlowState::kSynSent &&
            st != FlowState::kSynRecv) {
          proxy_send(s, hit.idx, now);
          if (p.l4_len() == tcp_hlen(tcph) && !(p.tcp_flags & kTcpFin)) {
            ++counters_.consumed;
            return Action{Action::Kind::kConsumed, DropReason::kCount, 0};
          }
        }
      } else if (h.phase == ProxyHdr::kSent && proxy_timer(s, hit.idx, now)) {
        return drop(counters_, DropReason::kProxyHeaderLost);
      }
      ProxyV2::to_backend(tcph);
    }
  } else {
    flows_.touch_idle(hit.idx, now, t_udp_);
  }
  // A new flow's first packet too long for its backend's interface: the flow stays (it came
  // through every check); the sender learns what fits and sends again.
  if (fresh) {
    if (const uint32_t mtu = too_long(s, p.ip_len, flows_.at(hit.idx).rev.src_ip))
      return too_big4(s, f, p, mtu, now);
  }

  const Flow& fl = count_packet(hit.idx, FlowDir::kForward, len);
  FullNat::rewrite(f + p.l3_off, f + p.l4_off, p.key.proto, fl.rev.dst_ip, fl.rev.src_ip,
                   fl.rev.dst_port, fl.rev.src_port);
  return output(s, f, f + p.l3_off, fl.rev.src_ip, now);
}

Action Pipeline::handle_reply(const Snapshot& s, uint8_t* f, uint32_t len, const Parsed& p,
                              const FlowTable::Probe& probe, uint64_t now) {
  if (p.ttl <= 1) return drop(counters_, DropReason::kTtlExceeded);
  FlowTable::Hit hit = flows_.lookup(p.key, probe, now);
  if (!hit.found() || hit.dir != FlowDir::kReverse) {
    // A NAT64 flow's backend answers a v4 local ip too: its flow is in flows6_ (decision 4
    // of the IPv6 plan: looked for only on a miss, and only while NAT64 flows may live).
    if (!hit.found() && nat64_live(s, now)) return handle_reply64(s, f, len, p, now);
    return drop(counters_, DropReason::kReplyNoFlow);
  }
  // After the lookup: a packet of no flow (a spoofed source) is never answered with ICMP.
  if (const uint32_t mtu = too_long(s, p.ip_len, flows_.at(hit.idx).fwd.src_ip))
    return too_big4(s, f, p, mtu, now);
  if (p.kind == PktKind::kIpv4Tcp) {
    // SYN proxy hook: the backend's answer to the proxy's SYN is absorbed; later segments
    // are translated into the client's sequence space before they are tracked.
    Flow& pf = flows_.at(hit.idx);
    if (SynProxy::proxied(pf.user)) {
      if (pf.state == FlowState::kSynSent) {
        uint32_t n = 0;
        switch (SynProxy::absorb(f, p, pf, flows_.tcp(hit.idx), &n)) {
          case SynProxy::Absorb::kDrop: return drop(counters_, DropReason::kTcpOutOfWindow);
          case SynProxy::Absorb::kAck: {
            // Established, or half-closed when the client's FIN went with the ACK.
            const bool fin = (flows_.tcp(hit.idx).dir[0].flags & TcpDir::kFin) != 0;
            flows_.update(hit.idx, fin ? FlowState::kHalfClosed : FlowState::kEstablished,
                          now + t_est_);
            if (pf.user & ProxyV2::kFlowBit) {
              // The client's ACK came first (the cookie's): the header follows this ACK. A
              // FIN held since the cookie ACK sits after the header in the backend's space.
              uint8_t* t = f + p.l3_off + 20;  // absorb wrote a 20-byte IPv4 header
              if (fin) ProxyV2::to_backend(t);
              ProxyV2::note_client(proxy_[hit.idx], t);
              proxy_send(s, hit.idx, now);
            }
            Action a = output(s, f, f + p.l3_off, pf.rev.src_ip, now);
            ends_at(&a, f, f + n);
            return a;
          }
          case SynProxy::Absorb::kReset: break;
        }
      } else {
        SynProxy::to_client(f, p, pf, flows_.tcp(hit.idx));
      }
    }
    if (pf.user & ProxyV2::kFlowBit) ProxyV2::to_client(f + p.l4_off, proxy_[hit.idx]);
    if (!track_tcp(hit.idx, FlowDir::kReverse, f, p, now))
      return drop(counters_, DropReason::kTcpOutOfWindow);
  } else
    flows_.touch_idle(hit.idx, now, t_udp_);

  const Flow& fl = count_packet(hit.idx, FlowDir::kReverse, len);
  FullNat::rewrite(f + p.l3_off, f + p.l4_off, p.key.proto, fl.fwd.dst_ip, fl.fwd.src_ip,
                   fl.fwd.dst_port, fl.fwd.src_port);
  return output(s, f, f + p.l3_off, fl.fwd.src_ip, now);
}

Action Pipeline::output(const Snapshot& s, uint8_t* f, uint8_t* l3, uint32_t dst_ip,
                        uint64_t now) {
  uint16_t iface;
  uint32_t nh;
  if (!s.route(dst_ip, &iface, &nh)) return drop(counters_, DropReason::kNoRoute);
  const IfaceConf& ifc = s.ifaces[iface];
  if (ifc.port >= n_ports_) return drop(counters_, DropReason::kNoRoute);
  const NextHop* n = next_hops_ ? next_hops_->find(iface, nh) : nullptr;
  if (!n) {
    ask_neigh(nh, iface, now);
    return drop(counters_, DropReason::kNeighUnresolved);
  }
  uint8_t* start = put_l2(l3, ifc, n->mac, params_.port_macs[ifc.port].data());
  return sent(ifc.port, iface, f, start);
}

uint32_t Pipeline::egress_mtu(const Snapshot& s, uint32_t dst) const {
  uint16_t iface;
  uint32_t nh;
  return s.route(dst, &iface, &nh) ? s.ifaces[iface].mtu : UINT32_MAX;
}

uint32_t Pipeline::egress_mtu6(const Snapshot& s, const Ip6& dst) const {
  uint16_t iface;
  Ip6 nh;
  return s.route6(dst, &iface, &nh) ? s.ifaces[iface].mtu : UINT32_MAX;
}

OutFrame* Pipeline::out_frame() {
  ++counters_.originated;
  if (out_len_ == kOutMax) {  // the worker drains it every burst: this is a burst of 64 sends
    counters_.drop(DropReason::kTxFull);
    return nullptr;
  }
  OutFrame* o = &out_[out_len_++];
  o->off = OutFrame::kSpare;
  return o;
}

bool Pipeline::send_frame(const Snapshot& s, OutFrame* o, uint32_t len, uint32_t dst_ip,
                          uint64_t now) {
  o->data()[12] = 0x08;  // IPv4
  o->data()[13] = 0x00;
  const Action a = output(s, o->data(), o->data() + 14, dst_ip, now);  // counts its own drop
  return queue_frame(o, a, len);
}

bool Pipeline::queue_frame(OutFrame* o, const Action& a, uint32_t len) {
  if (a.kind != Action::Kind::kTx) {
    --out_len_;
    return false;
  }
  // Its interface's L2 starts it kSpare bytes earlier when tagged.
  o->port = a.port;
  o->off = static_cast<uint8_t>(OutFrame::kSpare - a.prepend + a.trim);
  o->len = static_cast<uint16_t>(out_len(a, len));
  IfaceCounters& ic = ifc_[a.iface];
  ++ic.tx_packets;
  ic.tx_bytes += o->len;
  return true;
}

bool Pipeline::emit(const Snapshot& s, const SynProxy::Segment& seg, uint32_t dst_ip,
                    uint64_t now) {
  OutFrame* o = out_frame();
  return o && send_frame(s, o, SynProxy::write(o->data(), 14, seg), dst_ip, now);
}

void Pipeline::send_too_big(const Snapshot& s, const uint8_t* f, const Parsed& p, uint16_t mtu,
                            uint64_t now) {
  if (!replies_.take(now)) return;  // the echo replies' budget: no amplification either
  OutFrame* o = out_frame();
  if (!o) return;
  // From the VIP, which the client's stack and firewall relate to its connection.
  const uint32_t n = write_frag_needed(o->data() + 14, f + p.l3_off, p.ip_len, p.key.dst_ip, mtu);
  send_frame(s, o, 14 + n, p.key.src_ip, now);
}

template <class Table>
void Pipeline::track_dsr_in(Table& t, uint32_t idx, uint8_t flags, uint64_t now) {
  // Only the client's segments are seen: no windows, no sequence checks (an in-window RST
  // cannot be told from a forged one), so the states only say how long to keep the flow.
  // A FIN leaves it closing, kept as long as the client still sends (it acknowledges the
  // backend's data after its own FIN).
  FlowState st = t.at(idx).state;
  if (flags & kTcpRst)
    st = FlowState::kReset;
  else if (flags & kTcpFin)
    st = FlowState::kClosing;
  else if (st == FlowState::kSynSent && !(flags & kTcpSyn))
    st = FlowState::kEstablished;
  t.update(idx, st, now + tcp_timeout(st));
}
// The v6 DSR flows' (fwd/dsr6.cpp).
template void Pipeline::track_dsr_in(FlowTable6&, uint32_t, uint8_t, uint64_t);

template <class Encap>
Action Pipeline::encapsulate(const Snapshot& s, uint8_t* f, uint32_t l3_off, uint32_t ip_len,
                             const Flow& fl, uint64_t now) {
  // The outer headers go in front of the inner IPv4 packet, over the old Ethernet header
  // and into the headroom; what followed the IPv4 datagram (Ethernet padding) is cut.
  // The ethertype and output() first: they write only in front of the outer header, in the
  // headroom (the outer header is longer than any Ethernet header with its tag), so a frame
  // that cannot go (no route, neighbour unresolved) is dropped as it came (the drop capture
  // shows it) and its action says nothing about a new start or length.
  static_assert(Encap::kOverhead >= 18);
  uint8_t* inner = f + l3_off;
  uint8_t* outer = inner - Encap::kOverhead;
  EncapArgs args;
  args.src = fl.rev.dst_ip;
  args.dst = fl.rev.src_ip;
  args.sport = fl.rev.dst_port;
  outer[-2] = 0x08;  // IPv4
  outer[-1] = 0x00;
  Action a = output(s, f, outer, args.dst, now);
  if (a.kind != Action::Kind::kTx) return a;
  Encap::write(outer, inner, ip_len, args);
  ends_at(&a, f, inner + ip_len);
  return a;
}

template <class Encap>
Action Pipeline::handle_dsr(const Snapshot& s, const VipConf& vip, uint8_t* f, uint32_t len,
                            const Parsed& p, const FlowTable::Probe& probe, uint64_t now) {
  if (p.ttl <= 1) return drop(counters_, DropReason::kTtlExceeded);
  const bool tcp = p.kind == PktKind::kIpv4Tcp;
  const bool syn = (p.tcp_flags & (kTcpSyn | kTcpAck)) == kTcpSyn;
  FlowTable::Hit hit = flows_.lookup(p.key, probe, now);
  if (hit.found() && hit.dir != FlowDir::kForward) return drop(counters_, DropReason::kReplyNoFlow);
  // A SYN on a flow that is over is the client reusing its port: scheduled afresh.
  if (hit.found() && tcp && syn) {
    const FlowState st = flows_.at(hit.idx).state;
    if (st == FlowState::kReset || st == FlowState::kClosing || st == FlowState::kTimeWait) {
      on_release(this, flows_.at(hit.idx));
      flows_.erase(hit.idx);
      hit = FlowTable::Hit{};
    }
  }
  // Never fragmented and never sent over the backend interface's MTU: encapsulated, the
  // client learns what fits before encapsulation; as it came (l2), it goes back as
  // handle_client's (too_big4). Looked at before a flow is made or its tracker moves (a
  // packet that does not leave changes nothing): a new flow's once its backend is known.
  const auto refuse = [&](uint32_t mtu) -> Action {
    if constexpr (Encap::kOverhead > 0) {
      send_too_big(s, f, p, static_cast<uint16_t>(mtu - Encap::kOverhead), now);
      return drop(counters_, DropReason::kEncapTooBig);
    } else {
      return too_big4(s, f, p, mtu, now);
    }
  };
  if (hit.found()) {
    if (const uint32_t mtu =
            too_long(s, p.ip_len + Encap::kOverhead, flows_.at(hit.idx).rev.src_ip))
      return refuse(mtu);
  }
  if (!hit.found()) {
    // A segment of a connection this host has no state for: another rondo host had it
    // before an ECMP change, or this one restarted. A hashing scheduler picks the backend
    // every host picks for the tuple, so it is forwarded; any other would pick at random.
    const bool midflow = tcp && !syn;
    if (midflow && vip.sched != api::Sched::kMaglev && vip.sched != api::Sched::kSourceHash)
      return drop(counters_, DropReason::kTcpNoFlow);
    if (s.is_vip_ip(p.key.src_ip) || s.is_local_ip(p.key.src_ip))
      return drop(counters_, DropReason::kMartianSource);
    if (!l4_csum_ok(f + p.l3_off, f + p.l4_off, p.l4_len(), p.key.proto))
      return drop(counters_, DropReason::kBadL4Checksum);
    const uint32_t pick = sched_pick(s, vip, &sched_, p.key, probe.hash);
    if (pick == kNoPick) return drop(counters_, DropReason::kNoBackend);
    const BackendConf& b = s.eligible_backend(vip, pick);
    if (const uint32_t mtu = too_long(s, p.ip_len + Encap::kOverhead, b.ip)) return refuse(mtu);
    counters_.fail_open_flows += vip.failing_open;
    counters_.midflow_flows += midflow;
    // The record's notes, not a key (never looked up): the backend, and the outer source
    // address and (gue) port. Those come from the deployment's seeded hash of the tuple, not
    // this host's secret: every rondo host sends a flow with the same outer header, so the
    // backend's RSS keeps it on one queue whichever host forwards it.
    FlowKey to;
    to.src_ip = b.ip;
    to.src_port = b.port;
    to.proto = p.key.proto;
    if constexpr (Encap::kOverhead > 0) {
      const uint64_t h = maglev_flow_hash(p.key, s.sched_key);
      const uint32_t n = static_cast<uint32_t>(s.local_ips.size());
      if (n == 0) return drop(counters_, DropReason::kNoLocalPort);  // validated: never
      to.dst_ip = s.local_ips[(h >> 32) % n];
      to.dst_port = htons(static_cast<uint16_t>(0xc000 | (h & 0x3fff)));
    }
    const FlowState st = !tcp ? FlowState::kUdp : syn ? FlowState::kSynSent : FlowState::kEstablished;
    const uint64_t timeout = !tcp ? t_udp_ : syn ? t_syn_ : t_est_;
    auto r = flows_.insert_one(p.key, probe, to, st, now + timeout, now);
    count_reclaim(r.reclaimed);
    if (r.status != FlowTable::InsertStatus::kOk) return drop(counters_, DropReason::kTableFull);
    Flow& fl = flows_.at(r.idx);
    fl.backend_id = b.id;
    fl.vip_id = static_cast<uint16_t>(vip.id);
    if (tcp) flows_.tcp(r.idx) = TcpTrack{};
    BackendCounters& bc = backends_[b.id];
    ++bc.connections;
    ++bc.active_flows;
    hit.idx = r.idx;
    if (midflow) track_dsr(r.idx, p.tcp_flags, now);
  } else if (tcp) {
    track_dsr(hit.idx, p.tcp_flags, now);
  } else {
    flows_.touch_idle(hit.idx, now, t_udp_);
  }

  const Flow& fl = count_packet(hit.idx, FlowDir::kForward, len);
  if constexpr (Encap::kOverhead == 0) {
    return output(s, f, f + p.l3_off, fl.rev.src_ip, now);
  } else {
    return encapsulate<Encap>(s, f, p.l3_off, p.ip_len, fl, now);
  }
}

// [mode - 1][families]: families 44, 66, 46, 64 (state/snapshot.h, client_handler).
const Pipeline::ClientFn Pipeline::kClientFns[] = {
    &Pipeline::client_fullnat,         &Pipeline::client_fullnat6,
    &Pipeline::client_fullnat46,       &Pipeline::client_fullnat64,
    &Pipeline::client_dsr<IpipEncap>,  &Pipeline::client_dsr6<Ipip6Encap<true>, true>,
    &Pipeline::client_dsr6<Ipip6Encap<false>, false>,  &Pipeline::client_refused,
    &Pipeline::client_dsr<GueEncap>,   &Pipeline::client_dsr6<Gue6Encap<true>, true>,
    &Pipeline::client_dsr6<Gue6Encap<false>, false>,   &Pipeline::client_refused,
    &Pipeline::client_dsr<L2Encap>,    &Pipeline::client_dsr6<L2Encap6, true>,
    &Pipeline::client_refused,         &Pipeline::client_refused,
};
static_assert(client_handler(api::Mode::kFullNat, Families::k66) == 1 &&
              client_handler(api::Mode::kL2Dsr, Families::k44) == 12);

// A VIP whose mode and families have no handler: validation refuses it, so this is never
// reached with a state that went through api::validate_state.
Action Pipeline::drop_refused() { return drop(counters_, DropReason::kNoService); }


void Pipeline::proxy_send(const Snapshot& s, uint32_t idx, uint64_t now) {
  ProxyHdr& h = proxy_[idx];
  const Flow& fl = flows_.at(idx);
  h.phase = ProxyHdr::kSent;
  h.sent_ms = ms(now);
  ++h.tries;
  uint8_t hdr[ProxyV2::kLen];
  ProxyV2::write(hdr, fl.fwd.src_ip, fl.fwd.dst_ip, fl.fwd.src_port, fl.fwd.dst_port);
  SynProxy::Segment seg = SynProxy::Segment::to_backend(fl);
  seg.seq = h.seq;
  seg.ack = h.ack;
  seg.flags = kTcpAck | kTcpPsh;  // PSH: the backend's stack hands it over at once
  seg.win = h.win;
  seg.payload = hdr;
  seg.payload_len = ProxyV2::kLen;
  emit(s, seg, fl.rev.src_ip, now);  // not sent: the RTO brings it back
}

void Pipeline::proxy_give_up(const Snapshot& s, uint32_t idx, uint64_t now) {
  ProxyHdr& h = proxy_[idx];
  const Flow& fl = flows_.at(idx);
  const TcpTrack& t = flows_.tcp(idx);
  h.phase = ProxyHdr::kNone;
  // Both ends learn that the connection is gone: the backend at the header's place, the
  // client at the backend's next sequence number in its view (in window for both).
  SynProxy::Segment b = SynProxy::Segment::to_backend(fl);
  b.seq = h.seq;
  b.ack = h.ack;
  b.flags = kTcpRst | kTcpAck;
  SynProxy::Segment c = SynProxy::Segment::to_client(fl);
  c.seq = t.dir[1].end;
  c.ack = t.dir[0].end;
  c.flags = kTcpRst | kTcpAck;
  emit(s, b, fl.rev.src_ip, now);
  emit(s, c, fl.fwd.src_ip, now);
  flows_.update(idx, FlowState::kReset, now + t_reset_);
}

bool Pipeline::proxy_timer(const Snapshot& s, uint32_t idx, uint64_t now) {
  switch (ProxyV2::resend_due(proxy_[idx], ms(now))) {
    case ProxyV2::Resend::kWait: return false;
    case ProxyV2::Resend::kResend: proxy_send(s, idx, now); return false;
    case ProxyV2::Resend::kGiveUp: proxy_give_up(s, idx, now); return true;
  }
  return false;
}

void Pipeline::proxy_sweep(const Snapshot& s, uint64_t now, uint32_t budget) {
  // A walk over the records like the ageing's: a lost header is noticed within an RTO plus
  // one walk (capacity / budget ticks) when no client segment comes first.
  const uint32_t cap = flows_.capacity();
  for (uint32_t i = 0; i < budget && i < cap; ++i) {
    const uint32_t idx = proxy_cursor_;
    proxy_cursor_ = proxy_cursor_ + 1 == cap ? 0 : proxy_cursor_ + 1;
    ProxyHdr& h = proxy_[idx];
    if (h.phase != ProxyHdr::kSent) continue;
    const Flow& fl = flows_.at(idx);
    if (!(fl.user & ProxyV2::kFlowBit) ||
        (fl.state != FlowState::kEstablished && fl.state != FlowState::kHalfClosed)) {
      h.phase = ProxyHdr::kNone;  // the flow ended (or the record holds another one now)
      continue;
    }
    if (proxy_timer(s, idx, now)) {
      // Counted as the header segment that is not sent again.
      ++counters_.originated;
      counters_.drop(DropReason::kProxyHeaderLost);
    }
  }
}

void Pipeline::ask_neigh(uint32_t ip, uint16_t iface, uint64_t now) {
  Asked& a = asked_[(ip * 0x9e3779b1u) >> 24];
  if (a.ip == ip && a.iface == iface && now - a.at < params_.hz) return;
  if (asks_.size() >= kAsksMax) return;
  a.ip = ip;
  a.iface = static_cast<uint8_t>(iface);
  a.at = now;
  asks_.push_back(NeighAsk{ip, iface});
}

// ---- IPv6 (full-NAT v6 -> v6). The TCP tracker, the timeouts, the reclaim order and the
// counters are those of IPv4; the flows live in flows6_.

namespace {

inline void put_mapped(uint8_t* a, uint32_t ip) {
  std::memset(a, 0, 10);
  a[10] = a[11] = 0xff;
  std::memcpy(a + 12, &ip, 4);
}
inline uint32_t mapped_v4(const uint8_t* a) {
  uint32_t ip;
  std::memcpy(&ip, a + 12, 4);
  return ip;
}

}  // namespace

FlowKey6 Pipeline::mapped_key(const FlowKey& k) {
  FlowKey6 m;
  put_mapped(m.src_ip, k.src_ip);
  put_mapped(m.dst_ip, k.dst_ip);
  m.src_port = k.src_port;
  m.dst_port = k.dst_port;
  m.proto = k.proto;
  return m;
}

template <bool kCli6, bool kBe6>
Action Pipeline::handle_fullnat6(const Snapshot& s, const VipConf& vip, uint8_t* f, uint32_t len,
                                 const Parsed& p, const FlowKey6& key,
                                 const FlowTable6::Probe& probe, uint64_t now) {
  if (p.ttl <= 1) return drop(counters_, DropReason::kTtlExceeded);
  FlowTable6::Hit hit = flows6_.lookup(key, probe, now);
  const bool tcp = p.kind == (kCli6 ? PktKind::kIpv6Tcp : PktKind::kIpv4Tcp);
  if (hit.found() && hit.dir != FlowDir::kForward) return drop(counters_, DropReason::kReplyNoFlow);
  // A SYN reusing the port of a flow that is over is a new connection (handle_client).
  if (hit.found() && tcp && (p.tcp_flags & (kTcpSyn | kTcpAck)) == kTcpSyn &&
      tcp_syn_reopens(flows6_.tcp(hit.idx), flows6_.at(hit.idx).state)) {
    on_release6(this, flows6_.at(hit.idx));
    flows6_.erase(hit.idx);
    hit = FlowTable6::Hit{};
  }

  if (!hit.found()) {
    if (tcp && (p.tcp_flags & (kTcpSyn | kTcpAck | kTcpRst)) != kTcpSyn)
      return drop(counters_, DropReason::kTcpNoFlow);
    uint32_t pick;
    if constexpr (kCli6) {
      const Ip6 src = Ip6::from(p.key6.src_ip);
      if (s.is_vip_ip6(src) || s.is_local_ip6(src))
        return drop(counters_, DropReason::kMartianSource);
      // The upper-layer length of the pseudo-header is L4's, extension headers excluded.
      if (!l4_csum_ok6(f + p.l3_off, f + p.l4_off, p.l4_len(), p.key6.proto))
        return drop(counters_, DropReason::kBadL4Checksum);
      pick = sched_pick6(s, vip, &sched_, p.key6);
    } else {
      if (s.is_vip_ip(p.key.src_ip) || s.is_local_ip(p.key.src_ip))
        return drop(counters_, DropReason::kMartianSource);
      if (!l4_csum_ok(f + p.l3_off, f + p.l4_off, p.l4_len(), p.key.proto))
        return drop(counters_, DropReason::kBadL4Checksum);
      pick = sched_pick(s, vip, &sched_, p.key, probe.hash);
    }
    if (pick == kNoPick) return drop(counters_, DropReason::kNoBackend);
    counters_.fail_open_flows += vip.failing_open;
    const BackendConf& b = s.eligible_backend(vip, pick);
    FlowKey6 rev;
    if constexpr (kBe6)
      std::memcpy(rev.src_ip, b.ip6.b, 16);
    else
      put_mapped(rev.src_ip, b.ip);
    rev.src_port = b.port;
    rev.proto = key.proto;
    // Out of local ports: one flow of that backend gives its tuple up (handle_client).
    auto alloc = [&](FlowTable6::Probe* rp) {
      if constexpr (kBe6)
        return alloc_local6(s, &rev, rp, now);
      else
        return alloc_local64(s, &rev, rp, now);
    };
    FlowTable6::Probe rev_probe;
    bool have_port = alloc(&rev_probe);
    Reclaim freed = Reclaim::kNone;
    const uint64_t quiet = now + t_syn_ > params_.hz ? now + t_syn_ - params_.hz : 0;
    flows6_.set_embryonic_bound(quiet);
    if (!have_port &&
        flows6_.reclaim_matching(rev, kReclaimScan, &frees_no_tuple<FlowTable6>, &freed)) {
      count_reclaim(freed);
      have_port = alloc(&rev_probe);
    }
    if (!have_port) return drop(counters_, DropReason::kNoLocalPort);
    const FlowState st = tcp ? FlowState::kSynSent : FlowState::kUdp;
    auto r = flows6_.insert_new(key, probe, rev, rev_probe, st, now + (tcp ? t_syn_ : t_udp_), now);
    count_reclaim(r.reclaimed);
    if (r.status != FlowTable6::InsertStatus::kOk) return drop(counters_, DropReason::kTableFull);
    Flow6& fl = flows6_.at(r.idx);
    fl.user = 0;
    mapped6_ += is_v4_mapped6(Ip6::from(rev.dst_ip)) ? 1 : 0;
    if (tcp) tcp_track_syn(flows6_.tcp(r.idx), read_tcp_segment(f + p.l4_off, p.l4_len()));
    fl.backend_id = b.id;
    fl.vip_id = static_cast<uint16_t>(vip.id);
    BackendCounters& bc = backends_[b.id];
    ++bc.connections;
    ++bc.active_flows;
    hit.idx = r.idx;
  } else if (tcp) {
    if (!track_tcp_in(flows6_, hit.idx, FlowDir::kForward, f, p, now))
      return drop(counters_, DropReason::kTcpOutOfWindow);
  } else {
    flows6_.touch_idle(hit.idx, now, t_udp_);
  }
  return nat_out<kCli6>(s, f, p, count_in(flows6_, hit.idx, FlowDir::kForward, len), false, now);
}

template <bool kFrom6>
Action Pipeline::nat_out(const Snapshot& s, uint8_t* f, const Parsed& p, const Flow6& fl,
                         bool to_client, uint64_t now) {
  // The flow's other end as it sees the packet: from `src`:sport to `dst`:dport.
  const FlowKey6& k = to_client ? fl.fwd : fl.rev;
  const uint8_t* src = k.dst_ip;
  const uint8_t* dst = k.src_ip;
  const bool to6 = !is_v4_mapped6(Ip6::from(dst));
  const uint8_t proto = kFrom6 ? p.key6.proto : p.key.proto;
  if constexpr (kFrom6) {
    // Longer than the egress interface allows once in the other end's family (NAT64 loses
    // the IPv6 header and its extension headers, gains 20 bytes): the sender learns what
    // fits (egress_mtu.cpp).
    if (const uint32_t mtu = to6 ? too_long6(s, p.ip_len, Ip6::from(dst))
                                 : too_long(s, p.l4_len() + 20, mapped_v4(dst)))
      return too_big6(s, f, p, to6 ? mtu : mtu + 20, now);
    if (to6) {
      FullNat6::rewrite(f + p.l3_off, f + p.l4_off, proto, Ip6::from(src), Ip6::from(dst),
                        k.dst_port, k.src_port);
      return output6(s, f, f + p.l3_off, Ip6::from(dst), now);
    }
    // NAT64 (RFC 7915 5.1): the frame shrinks to a 20-byte IPv4 header.
    ip_id_ = static_cast<uint16_t>(ip_id_ + 1);
    const Xlated x = Xlate64::header(f, p.l3_off, p.l4_off, p.l4_len(), proto, mapped_v4(src),
                                     mapped_v4(dst), k.dst_port, k.src_port, htons(ip_id_));
    Action a = output(s, f, x.frame + p.l3_off, mapped_v4(dst), now);
    ends_at(&a, f, x.frame + x.len);
    return a;
  } else {
    // NAT46 (RFC 7915 4.1): the IPv4 header and its options become a 40-byte IPv6 header,
    // which must fit the egress; a DF packet that does not tells its sender what fits (as
    // the DSR encapsulations do). A reassembled datagram leaves in fragments (set_reassembled).
    if (const uint32_t mtu = too_long6(s, p.l4_len() + 40u, Ip6::from(dst))) {
      if (f[p.l3_off + 6] & 0x40) send_too_big(s, f, p, static_cast<uint16_t>(mtu - 20), now);
      return drop(counters_, DropReason::kEgressTooBig);
    }
    const Xlated x = Xlate46::header(f, p.l3_off, p.l4_len(), Ip6::from(src), Ip6::from(dst),
                                     k.dst_port, k.src_port);
    Action a = output6(s, f, x.frame + p.l3_off, Ip6::from(dst), now);
    ends_at(&a, f, x.frame + x.len);
    return a;
  }
}

template <bool kBe6>
Action Pipeline::reply6(const Snapshot& s, uint8_t* f, uint32_t len, const Parsed& p,
                        const FlowKey6& key, const FlowTable6::Probe& probe, uint64_t now) {
  if (p.ttl <= 1) return drop(counters_, DropReason::kTtlExceeded);
  FlowTable6::Hit hit = flows6_.lookup(key, probe, now);
  if (!hit.found() || hit.dir != FlowDir::kReverse) return drop(counters_, DropReason::kReplyNoFlow);
  if (p.kind == (kBe6 ? PktKind::kIpv6Tcp : PktKind::kIpv4Tcp)) {
    if (!track_tcp_in(flows6_, hit.idx, FlowDir::kReverse, f, p, now))
      return drop(counters_, DropReason::kTcpOutOfWindow);
  } else {
    flows6_.touch_idle(hit.idx, now, t_udp_);
  }
  return nat_out<kBe6>(s, f, p, count_in(flows6_, hit.idx, FlowDir::kReverse, len), true, now);
}

Action Pipeline::handle_reply6(const Snapshot& s, uint8_t* f, uint32_t len, const Parsed& p,
                               const FlowTable6::Probe& probe, uint64_t now) {
  return reply6<true>(s, f, len, p, p.key6, probe, now);
}

Action Pipeline::handle_reply64(const Snapshot& s, uint8_t* f, uint32_t len, const Parsed& p,
                                uint64_t now) {
  // The size towards the v6 client is checked once the flow is found (nat_out<false>).
  const FlowKey6 key = mapped_key(p.key);
  return reply6<false>(s, f, len, p, key, flows6_.probe(key), now);
}

Action Pipeline::handle_icmp6(const Snapshot& s, uint8_t* f, const Parsed& p, uint16_t iface,
                              uint64_t now) {
  uint8_t* icmp = f + p.l4_off;
  if (IcmpError6::is_error(icmp[0])) return handle_icmp_error6(s, f, p, now);
  if (icmp[0] != kIcmp6EchoRequest || icmp[1] != 0)
    return drop(counters_, DropReason::kIcmpUnsupported);
  if (!replies_.take(now)) return drop(counters_, DropReason::kRateLimited);
  // Echo reply straight back: swap the addresses (the pseudo-header's sum does not change
  // when they swap places), a fresh hop limit (in no checksum), flip the type.
  uint8_t* ip = f + p.l3_off;
  uint8_t a[16];
  std::memcpy(a, ip + 8, 16);
  std::memcpy(ip + 8, ip + 24, 16);
  std::memcpy(ip + 24, a, 16);
  ip[7] = kDefaultTtl;
  return echo_back(s, f, p, kIcmp6EchoReply, iface);
}

Action Pipeline::handle_icmp_error6(const Snapshot& s, uint8_t* f, const Parsed& p, uint64_t now) {
  uint8_t* icmp = f + p.l4_off;
  IcmpError6::Quote q;
  if (!IcmpError6::quote(icmp, p.l4_len(), &q)) return drop(counters_, DropReason::kIcmpUnsupported);
  // About a packet we did not send from the address the error came to: no flow of ours.
  if (std::memcmp(q.answer.dst_ip, p.key6.dst_ip, 16) != 0)
    return drop(counters_, DropReason::kIcmpNoFlow);
  if (p.ttl <= 1) return drop(counters_, DropReason::kTtlExceeded);
  const FlowTable6::Hit hit = flows6_.lookup(q.answer, now);
  if (!hit.found()) return drop(counters_, DropReason::kIcmpNoFlow);
  if (flows6_.one_key(hit.idx)) return relay_dsr6(s, f, p, hit.idx, now);  // DSR (fwd/dsr6.cpp)
  const Flow6& fl = flows6_.at(hit.idx);
  ++counters_.icmp_errors_forwarded;
  const FlowKey6& k = hit.dir == FlowDir::kForward ? fl.rev : fl.fwd;
  // From the client's side (about rondo's packet to the client) it goes to the backend about
  // the backend's packet; from the backend's side, to the client about the client's.
  const Ip6 to = Ip6::from(k.src_ip), from = Ip6::from(k.dst_ip);
  if (is_v4_mapped6(to)) {
    // A NAT46 flow's client or a NAT64 flow's backend: ICMPv4 (RFC 7915 5.2).
    ip_id_ = static_cast<uint16_t>(ip_id_ + 1);
    const Xlated x = IcmpXlate::to_v4(f, p.l3_off, p.l4_off, p.l4_len(), mapped_v4(k.dst_ip),
                                      mapped_v4(k.src_ip), mapped_v4(k.src_ip),
                                      mapped_v4(k.dst_ip), k.src_port, k.dst_port, htons(ip_id_));
    if (!x.frame) return drop(counters_, DropReason::kIcmpUntranslatable);
    Action a = output(s, f, x.frame + p.l3_off, mapped_v4(k.src_ip), now);
    ends_at(&a, f, x.frame + x.len);
    return a;
  }
  IcmpError6::translate(f + p.l3_off, icmp, p.l4_len(), q, from, to, to, from, k.src_port,
                        k.dst_port);
  return output6(s, f, f + p.l3_off, to, now);
}

Action Pipeline::icmp_error46(const Snapshot& s, uint8_t* f, const Parsed& p, const FlowKey6& key,
                              uint64_t now) {
  const FlowTable6::Hit hit = flows6_.lookup(key, now);
  if (!hit.found()) return drop(counters_, DropReason::kIcmpNoFlow);
  if (flows6_.one_key(hit.idx)) return relay_dsr6(s, f, p, hit.idx, now);  // IPv4 in IPv6
  const Flow6& fl = flows6_.at(hit.idx);
  const FlowKey6& k = hit.dir == FlowDir::kForward ? fl.rev : fl.fwd;
  // The other end is IPv6 (both ends v4 would be a v4 flow): ICMPv6 (RFC 7915 4.2).
  const Ip6 to = Ip6::from(k.src_ip), from = Ip6::from(k.dst_ip);
  const Xlated x = IcmpXlate::to_v6(f, p.l3_off, p.l4_len(), from, to, to, from, k.src_port,
                                    k.dst_port);
  if (!x.frame) return drop(counters_, DropReason::kIcmpUntranslatable);
  ++counters_.icmp_errors_forwarded;
  Action a = output6(s, f, x.frame + p.l3_off, to, now);
  ends_at(&a, f, x.frame + x.len);
  return a;
}

Action Pipeline::output6(const Snapshot& s, uint8_t* f, uint8_t* l3, const Ip6& dst,
                         uint64_t now) {
  uint16_t iface;
  Ip6 nh;
  if (!s.route6(dst, &iface, &nh)) return drop(counters_, DropReason::kNoRoute);
  const IfaceConf& ifc = s.ifaces[iface];
  if (ifc.port >= n_ports_) return drop(counters_, DropReason::kNoRoute);
  const NextHop6* n = next_hops6_ ? next_hops6_->find(iface, nh) : nullptr;
  if (!n) {
    ask_neigh6(nh, iface, now);
    return drop(counters_, DropReason::kNeighUnresolved);
  }
  uint8_t* start = put_l2(l3, ifc, n->mac, params_.port_macs[ifc.port].data());
  return sent(ifc.port, iface, f, start);
}

bool Pipeline::alloc_local6(const Snapshot& s, FlowKey6* rev, FlowTable6::Probe* rev_probe,
                            uint64_t now) {
  const uint32_t n = static_cast<uint32_t>(s.local_ips6.size());
  const bool tcp = rev->proto == IPPROTO_TCP;
  for (uint32_t i = 0; i < n; ++i) {
    const Ip6& lip = s.local_ips6[(local_cursor6_ + i) % n];
    // As alloc_local: taken by a live flow's reverse key or (TCP) the quarantine; the last
    // candidate's probe goes to insert_new.
    auto taken = [&](uint16_t lport) {
      FlowKey6 k = *rev;
      std::memcpy(k.dst_ip, lip.b, 16);
      k.dst_port = lport;
      *rev_probe = flows6_.probe(k);
      if (flows6_.lookup(k, *rev_probe, now).found()) return true;
      return tcp && quarantine6_.holds(port_tuple6(lip.b, rev->src_ip, lport, rev->src_port), now);
    };
    uint16_t lport;
    if (ports_.pick6(lip.b, rev->src_ip, rev->src_port, taken, &lport)) {
      local_cursor6_ = (local_cursor6_ + i + 1) % n;
      std::memcpy(rev->dst_ip, lip.b, 16);
      rev->dst_port = lport;
      return true;
    }
  }
  return false;
}

bool Pipeline::alloc_local64(const Snapshot& s, FlowKey6* rev, FlowTable6::Probe* rev_probe,
                             uint64_t now) {
  const uint32_t n = static_cast<uint32_t>(s.local_ips.size());
  const bool tcp = rev->proto == IPPROTO_TCP;
  const uint32_t backend = mapped_v4(rev->src_ip);
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t lip = s.local_ips[(local_cursor_ + i) % n];
    // The tuple is a v4 one on the wire: free in the v4 table and quarantine (v4 flows) and
    // in flows6_ and its quarantine (NAT64 flows); the last probe is flows6_'s.
    auto taken = [&](uint16_t lport) {
      FlowKey k4;
      k4.src_ip = backend;
      k4.dst_ip = lip;
      k4.src_port = rev->src_port;
      k4.dst_port = lport;
      k4.proto = rev->proto;
      if (flows_.lookup(k4, now).found()) return true;
      if (tcp && quarantine_.holds(PortTuple{lip, backend, lport, rev->src_port}, now)) return true;
      FlowKey6 k = *rev;
      put_mapped(k.dst_ip, lip);
      k.dst_port = lport;
      *rev_probe = flows6_.probe(k);
      if (flows6_.lookup(k, *rev_probe, now).found()) return true;
      return tcp && quarantine6_.holds(port_tuple6(k.dst_ip, k.src_ip, lport, rev->src_port), now);
    };
    uint16_t lport;
    if (ports_.pick(lip, backend, rev->src_port, taken, &lport)) {
      local_cursor_ = (local_cursor_ + i + 1) % n;
      put_mapped(rev->dst_ip, lip);
      rev->dst_port = lport;
      return true;
    }
  }
  return false;
}

void Pipeline::ask_neigh6(const Ip6& ip, uint16_t iface, uint64_t now) {
  Asked6& a = asked6_[fold6(ip) * 0x9e3779b1u >> 26];
  if (a.ip == ip && a.iface == iface && now - a.at < params_.hz) return;
  if (asks_.size() >= kAsksMax) return;
  a.ip = ip;
  a.iface = static_cast<uint8_t>(iface);
  a.at = now;
  asks_.push_back(NeighAsk::v6(ip, iface));
}

}  // namespace rondo::dp

// Direct server return to IPv6 backends (docs/modes.md): ipip (IPv6 in IPv6, IPv4 in IPv6),
// gue over IPv6 and l2dsr for a v6 vip. handle_dsr's twin: the same one-sided flow state, kept
// in flows6_ (a v4 vip's client key IPv4-mapped, as NAT46's), the same mid-flow rule for the
// hashing schedulers, and an IPv6 outer header instead of an IPv4 one (encap.h); ICMP errors
// about such a flow go to the backend the same way (relay_dsr6).
#include <rte_byteorder.h>

#include <algorithm>
#include <cstring>

#include "dataplane/fwd/pipeline.h"
#include "dataplane/fwd/too_big.h"
#include "dataplane/pkt/csum.h"
#include "dataplane/pkt/ip6.h"
#include "dataplane/sched/maglev.h"

namespace rondo::dp {
namespace {

inline Action drop(LcoreCounters& c, DropReason r) {
  c.drop(r);
  return Action{Action::Kind::kDrop, r, 0};
}

}  // namespace

template <class Encap, bool kCli6>
Action Pipeline::client_dsr6(Pipeline& pl, const Snapshot& s, uint8_t* f, uint32_t len,
                             const Pending& pd, uint64_t now) {
  if constexpr (kCli6) {
    return pl.handle_dsr6<Encap, true>(s, *pd.vip, f, len, pd.p, pd.p.key6, pd.probe6, now);
  } else {
    // Classified as IPv4 (its v4 probe unused): the flow is in flows6_.
    const FlowKey6 key = mapped_key(pd.p.key);
    return pl.handle_dsr6<Encap, false>(s, *pd.vip, f, len, pd.p, key, pl.flows6_.probe(key),
                                        now);
  }
}

template <class Encap, bool kCli6>
Action Pipeline::handle_dsr6(const Snapshot& s, const VipConf& vip, uint8_t* f, uint32_t len,
                             const Parsed& p, const FlowKey6& key, const FlowTable6::Probe& probe,
                             uint64_t now) {
  if (p.ttl <= 1) return drop(counters_, DropReason::kTtlExceeded);
  const bool tcp = p.kind == (kCli6 ? PktKind::kIpv6Tcp : PktKind::kIpv4Tcp);
  const bool syn = (p.tcp_flags & (kTcpSyn | kTcpAck)) == kTcpSyn;
  FlowTable6::Hit hit = flows6_.lookup(key, probe, now);
  if (hit.found() && hit.dir != FlowDir::kForward) return drop(counters_, DropReason::kReplyNoFlow);
  // A SYN on a flow that is over is the client reusing its port: scheduled afresh.
  if (hit.found() && tcp && syn) {
    const FlowState st = flows6_.at(hit.idx).state;
    if (st == FlowState::kReset || st == FlowState::kClosing || st == FlowState::kTimeWait) {
      on_release6(this, flows6_.at(hit.idx));
      flows6_.erase(hit.idx);
      hit = FlowTable6::Hit{};
    }
  }
  // As handle_dsr: never fragmented, never over the backend interface's MTU, the client
  // told what fits in its family; looked at before a flow is made or its tracker moves.
  const auto refuse = [&](uint32_t mtu) -> Action {
    if constexpr (Encap::kOverhead > 0) {
      if constexpr (kCli6)
        send_too_big6(s, f, p, mtu - Encap::kOverhead, now);
      else
        send_too_big(s, f, p, static_cast<uint16_t>(mtu - Encap::kOverhead), now);
      return drop(counters_, DropReason::kEncapTooBig);
    } else if constexpr (kCli6) {
      return too_big6(s, f, p, mtu, now);
    } else {
      return too_big4(s, f, p, mtu, now);
    }
  };
  if (hit.found()) {
    if (const uint32_t mtu = too_long6(s, p.ip_len + Encap::kOverhead,
                                       Ip6::from(flows6_.at(hit.idx).rev.src_ip)))
      return refuse(mtu);
  }
  if (!hit.found()) {
    // As handle_dsr: a mid-flow segment is forwarded for a hashing scheduler only.
    const bool midflow = tcp && !syn;
    if (midflow && vip.sched != api::Sched::kMaglev && vip.sched != api::Sched::kSourceHash)
      return drop(counters_, DropReason::kTcpNoFlow);
    uint32_t pick;
    uint64_t h;  // the seed's hash of the tuple: every rondo host computes it alike
    if constexpr (kCli6) {
      const Ip6 src = Ip6::from(p.key6.src_ip);
      if (s.is_vip_ip6(src) || s.is_local_ip6(src))
        return drop(counters_, DropReason::kMartianSource);
      if (!l4_csum_ok6(f + p.l3_off, f + p.l4_off, p.l4_len(), p.key6.proto))
        return drop(counters_, DropReason::kBadL4Checksum);
      pick = sched_pick6(s, vip, &sched_, p.key6);
      h = flow_hash6(p.key6, s.sched_key);
    } else {
      if (s.is_vip_ip(p.key.src_ip) || s.is_local_ip(p.key.src_ip))
        return drop(counters_, DropReason::kMartianSource);
      if (!l4_csum_ok(f + p.l3_off, f + p.l4_off, p.l4_len(), p.key.proto))
        return drop(counters_, DropReason::kBadL4Checksum);
      pick = sched_pick(s, vip, &sched_, p.key, probe.hash);
      h = maglev_flow_hash(p.key, s.sched_key);
    }
    if (pick == kNoPick) return drop(counters_, DropReason::kNoBackend);
    const BackendConf& b = s.eligible_backend(vip, pick);
    if (const uint32_t mtu = too_long6(s, p.ip_len + Encap::kOverhead, b.ip6)) return refuse(mtu);
    counters_.fail_open_flows += vip.failing_open;
    counters_.midflow_flows += midflow;
    // The record's notes (never looked up): the backend, and the outer source and entropy
    // (the gue source port, whose value is also the flow label), from the seed's hash as
    // for IPv4, so every rondo host sends a flow with the same outer header.
    FlowKey6 to;
    std::memcpy(to.src_ip, b.ip6.b, 16);
    to.src_port = b.port;
    to.proto = key.proto;
    if constexpr (Encap::kOverhead > 0) {
      const uint32_t n = static_cast<uint32_t>(s.local_ips6.size());
      if (n == 0) return drop(counters_, DropReason::kNoLocalPort);  // validated: never
      std::memcpy(to.dst_ip, s.local_ips6[(h >> 32) % n].b, 16);
      to.dst_port = rte_cpu_to_be_16(static_cast<uint16_t>(0xc000 | (h & 0x3fff)));
    }
    const FlowState st = !tcp ? FlowState::kUdp : syn ? FlowState::kSynSent : FlowState::kEstablished;
    const uint64_t timeout = !tcp ? t_udp_ : syn ? t_syn_ : t_est_;
    auto r = flows6_.insert_one(key, probe, to, st, now + timeout, now);
    count_reclaim(r.reclaimed);
    if (r.status != FlowTable6::InsertStatus::kOk) return drop(counters_, DropReason::kTableFull);
    Flow6& fl = flows6_.at(r.idx);
    fl.user = 0;
    fl.backend_id = b.id;
    fl.vip_id = static_cast<uint16_t>(vip.id);
    if (tcp) flows6_.tcp(r.idx) = TcpTrack{};
    BackendCounters& bc = backends_[b.id];
    ++bc.connections;
    ++bc.active_flows;
    hit.idx = r.idx;
    if (midflow) track_dsr_in(flows6_, r.idx, p.tcp_flags, now);
  } else if (tcp) {
    track_dsr_in(flows6_, hit.idx, p.tcp_flags, now);
  } else {
    flows6_.touch_idle(hit.idx, now, t_udp_);
  }

  const Flow6& fl = count_in(flows6_, hit.idx, FlowDir::kForward, len);
  if constexpr (Encap::kOverhead == 0) {
    return output6(s, f, f + p.l3_off, Ip6::from(fl.rev.src_ip), now);
  } else {
    return encapsulate6<Encap>(s, f, p.l3_off, p.ip_len, fl, now);
  }
}

template <class Encap>
Action Pipeline::encapsulate6(const Snapshot& s, uint8_t* f, uint32_t l3_off, uint32_t ip_len,
                              const Flow6& fl, uint64_t now) {
  // As encapsulate: the outer headers over the old Ethernet header and into the headroom
  // (kHeadroom is 64: at most 56 of it used, gue's from an untagged frame to a tagged
  // interface), the ethertype and output6 first so that a frame that cannot go is dropped as
  // it came.
  static_assert(Encap::kOverhead >= 18);
  static_assert(18 + Encap::kOverhead - 14 <= Pipeline::kHeadroom);
  uint8_t* inner = f + l3_off;
  uint8_t* outer = inner - Encap::kOverhead;
  EncapArgs6 args;
  args.src = Ip6::from(fl.rev.dst_ip);
  args.dst = Ip6::from(fl.rev.src_ip);
  args.sport = fl.rev.dst_port;
  args.label = rte_be_to_cpu_16(fl.rev.dst_port);
  outer[-2] = 0x86;  // IPv6
  outer[-1] = 0xdd;
  Action a = output6(s, f, outer, args.dst, now);
  if (a.kind != Action::Kind::kTx) return a;
  Encap::write(outer, inner, ip_len, args);
  ends_at(&a, f, inner + ip_len);
  return a;
}

Action Pipeline::relay_dsr6(const Snapshot& s, uint8_t* f, const Parsed& p, uint32_t idx,
                            uint64_t now) {
  // The flow's VIP says the encapsulation; its client key says the family (a v4 vip's is
  // IPv4-mapped, and so is the error about it: ICMP, not ICMPv6).
  const Flow6& fl = flows6_.at(idx);
  const Ip6 vip_ip = Ip6::from(fl.fwd.dst_ip);
  const bool cli6 = !is_v4_mapped6(vip_ip);
  uint32_t vip4;
  std::memcpy(&vip4, fl.fwd.dst_ip + 12, 4);
  const VipConf* vip = cli6 ? s.find_vip6(vip_ip, fl.fwd.dst_port, fl.fwd.proto)
                            : s.find_vip(vip4, fl.fwd.dst_port, fl.fwd.proto);
  if (!vip) return drop(counters_, DropReason::kIcmpNoFlow);  // the VIP is gone
  ++counters_.icmp_errors_forwarded;
  switch (vip->mode) {
    case api::Mode::kIpip:
      return cli6 ? relay_dsr6_in<Ipip6Encap<true>>(s, f, p, fl, now)
                  : relay_dsr6_in<Ipip6Encap<false>>(s, f, p, fl, now);
    case api::Mode::kGue:
      return cli6 ? relay_dsr6_in<Gue6Encap<true>>(s, f, p, fl, now)
                  : relay_dsr6_in<Gue6Encap<false>>(s, f, p, fl, now);
    case api::Mode::kL2Dsr:
      if (cli6) return output6(s, f, f + p.l3_off, Ip6::from(fl.rev.src_ip), now);
      break;
    case api::Mode::kFullNat: break;
  }
  return drop(counters_, DropReason::kIcmpNoFlow);  // the VIP changed mode under the flow
}

template <class Encap>
Action Pipeline::relay_dsr6_in(const Snapshot& s, uint8_t* f, const Parsed& p, const Flow6& fl,
                               uint64_t now) {
  // Cut to what fits once encapsulated (as relay_dsr): the quote is what matters.
  const uint32_t mtu = std::min(egress_mtu6(s, Ip6::from(fl.rev.src_ip)), params_.mtu);
  const uint32_t len = std::min<uint32_t>(p.ip_len, mtu - Encap::kOverhead);
  if (len < p.ip_len) {
    uint8_t* ip = f + p.l3_off;
    uint8_t* icmp = f + p.l4_off;
    const uint32_t icmp_len = len - (p.l4_off - p.l3_off);
    icmp[2] = icmp[3] = 0;
    if ((ip[0] >> 4) == 6) {
      const uint32_t payload = len - 40;
      ip[4] = static_cast<uint8_t>(payload >> 8);
      ip[5] = static_cast<uint8_t>(payload);
      csum_put(icmp + 2, csum_pseudo6(ip + 8, ip + 24, icmp_len, 58) + csum_sum(icmp, icmp_len));
    } else {
      ip[2] = static_cast<uint8_t>(len >> 8);
      ip[3] = static_cast<uint8_t>(len);
      ip[10] = ip[11] = 0;
      csum_put(ip + 10, csum_sum(ip, (ip[0] & 0x0fu) * 4));
      csum_put(icmp + 2, csum_sum(icmp, icmp_len));
    }
  }
  return encapsulate6<Encap>(s, f, p.l3_off, len, fl, now);
}

void Pipeline::send_too_big6(const Snapshot& s, const uint8_t* f, const Parsed& p, uint32_t mtu,
                             uint64_t now) {
  if (!replies_.take(now)) return;  // the echo replies' budget, as send_too_big
  OutFrame* o = out_frame();
  if (!o) return;
  // From the VIP, which the client relates to its connection.
  const uint32_t n = write_packet_too_big6(o->data() + 14, f + p.l3_off, p.ip_len,
                                           Ip6::from(p.key6.dst_ip), mtu, kIcmp6QuoteMax);
  send_frame6(s, o, 14 + n, Ip6::from(p.key6.src_ip), now);
}

bool Pipeline::send_frame6(const Snapshot& s, OutFrame* o, uint32_t len, const Ip6& dst,
                           uint64_t now) {
  o->data()[12] = 0x86;  // IPv6
  o->data()[13] = 0xdd;
  const Action a = output6(s, o->data(), o->data() + 14, dst, now);  // counts its own drop
  return queue_frame(o, a, len);
}

// The rows of kClientFns (pipeline.cpp).
template Action Pipeline::client_dsr6<Ipip6Encap<true>, true>(Pipeline&, const Snapshot&,
                                                                uint8_t*, uint32_t,
                                                                const Pending&, uint64_t);
template Action Pipeline::client_dsr6<Ipip6Encap<false>, false>(Pipeline&, const Snapshot&,
                                                                  uint8_t*, uint32_t,
                                                                  const Pending&, uint64_t);
template Action Pipeline::client_dsr6<Gue6Encap<true>, true>(Pipeline&, const Snapshot&,
                                                               uint8_t*, uint32_t,
                                                               const Pending&, uint64_t);
template Action Pipeline::client_dsr6<Gue6Encap<false>, false>(Pipeline&, const Snapshot&,
                                                                 uint8_t*, uint32_t,
                                                                 const Pending&, uint64_t);
template Action Pipeline::client_dsr6<L2Encap6, true>(Pipeline&, const Snapshot&, uint8_t*,
                                                        uint32_t, const Pending&, uint64_t);

}  // namespace rondo::dp

#include "dataplane/inspect/trace.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "dataplane/inspect/flows.h"
#include "dataplane/pkt/parse.h"

namespace rondo::dp {

void Tracer::arm(const api::FlowFilter& q, uint32_t packets, uint64_t now, uint64_t until) {
  filter_ = q;
  left_ = packets;
  started_ = now;
  until_ = until;
  records_.clear();
  records_.reserve(std::min<uint32_t>(packets, 1024));
  armed_ = packets > 0;
}

namespace {

// A v4 key written IPv4-mapped: how flows6_ keeps a NAT46 flow's client side and a NAT64
// flow's backend side (Pipeline::mapped_key).
FlowKey6 mapped(const FlowKey& k) {
  FlowKey6 m;
  auto put = [](uint8_t* d, uint32_t net) {
    d[10] = d[11] = 0xff;
    std::memcpy(d + 12, &net, 4);
  };
  put(m.src_ip, k.src_ip);
  put(m.dst_ip, k.dst_ip);
  m.src_port = k.src_port;
  m.dst_port = k.dst_port;
  m.proto = k.proto;
  return m;
}

// What the filter is matched against: the flow if there is one, else what the packet says,
// in the record type of the table it was looked up in.
struct Probe {
  bool v6 = false;
  Flow f4{};
  Flow6 f6{};
  bool matches(const api::FlowFilter& q) const { return v6 ? flow_matches(f6, q) : flow_matches(f4, q); }
};

}  // namespace

void Tracer::before(const Pipeline& pl, const Snapshot* s, uint8_t* const* frames,
                    const uint32_t* lens, uint32_t n, uint16_t in_port, bool steered, uint64_t now) {
  if (now >= until_) {
    armed_ = false;
    std::fill_n(slot_, std::min(n, kMaxBurst), -1);
    return;
  }
  const api::FlowFilter none{};
  const bool any = filter_ == none;
  const FlowTable& t = pl.flows();
  const FlowTable6& t6 = pl.flows6();
  for (uint32_t i = 0; i < n && i < kMaxBurst; ++i) {
    slot_[i] = -1;
    if (left_ == 0) continue;
    Parsed p;
    DropReason why;
    TraceKind kind = TraceKind::kOther;
    Probe probe;
    bool in6 = false, hit = false;
    FlowKey6 key6{};
    // A v6 frame, or a v4 one that no v4 flow has: its key in the v6 table.
    auto look6 = [&](const FlowKey6& k, bool fwd) {
      in6 = true;
      key6 = k;
      probe.v6 = true;
      (fwd ? probe.f6.fwd : probe.f6.rev) = k;
      const FlowHit h = t6.find(k, now);
      if ((hit = h.found())) probe.f6 = t6.at(h.idx);
    };
    if (parse_frame(frames[i], lens[i], &p, &why)) {
      if (p.kind == PktKind::kArp) {
        kind = TraceKind::kArp;
      } else if (is_ipv6(p.kind)) {
        const Ip6 dst = Ip6::from(p.key6.dst_ip);
        const bool vip = s && s->is_vip_ip6(dst), local = s && s->is_local_ip6(dst);
        if (p.kind == PktKind::kIpv6Icmp && (vip || local)) {
          kind = TraceKind::kIcmp;
          probe.v6 = true;
          probe.f6.fwd = p.key6;
        } else if (vip || local) {
          kind = vip ? TraceKind::kClient : TraceKind::kReply;
          look6(p.key6, vip);
        }
      } else if (s && p.kind == PktKind::kIpv4Icmp &&
                 (s->is_vip_ip(p.key.dst_ip) || s->is_local_ip(p.key.dst_ip))) {
        kind = TraceKind::kIcmp;
        probe.f4.fwd = p.key;
      } else if (s && (s->is_vip_ip(p.key.dst_ip) || s->is_local_ip(p.key.dst_ip))) {
        const bool vip = s->is_vip_ip(p.key.dst_ip);
        kind = vip ? TraceKind::kClient : TraceKind::kReply;
        const FlowHit h = t.find(p.key, now);
        (vip ? probe.f4.fwd : probe.f4.rev) = p.key;
        if ((hit = h.found())) {
          probe.f4 = t.at(h.idx);
        } else if (const FlowKey6 m = mapped(p.key); t6.find(m, now).found()) {
          look6(m, vip);  // NAT46's client, NAT64's backend
        }
      }
    }
    // ARP, and what is neither ours nor parseable, is traced only without a filter.
    const bool match = any || (kind != TraceKind::kOther && kind != TraceKind::kArp &&
                                probe.matches(filter_));
    if (!match) continue;
    TraceRaw r;
    r.at = now;
    r.in_port = in_port;
    // The interface classify finds for it (tags are in the bytes: the worker put back any a
    // device stripped); none for a port the snapshot has no entry for.
    const uint16_t vid = lens[i] >= 18 && frames[i][12] == 0x81 && frames[i][13] == 0x00
                             ? static_cast<uint16_t>((frames[i][14] & 0x0f) << 8 | frames[i][15])
                             : 0;
    if (s && in_port < s->port_ifaces.size()) r.iface = s->iface_of(in_port, vid);
    r.steered = steered;
    r.kind = kind;
    r.flow = kind == TraceKind::kClient || kind == TraceKind::kReply
                 ? (hit ? TraceFlow::kHit : TraceFlow::kMiss)
                 : TraceFlow::kNone;
    r.len = lens[i];
    std::memcpy(r.pre, frames[i], std::min(lens[i], TraceRaw::kKeep));
    in6_[i] = in6;
    key_[i] = p.key;
    key6_[i] = key6;
    slot_[i] = static_cast<int32_t>(records_.size());
    records_.push_back(r);
    if (--left_ == 0) armed_ = false;
  }
}

void Tracer::after(const Pipeline& pl, uint8_t* const* frames, const uint32_t* lens,
                   const Action* actions, uint32_t n) {
  for (uint32_t i = 0; i < n && i < kMaxBurst; ++i) {
    if (slot_[i] < 0) continue;
    TraceRaw& r = records_[static_cast<uint32_t>(slot_[i])];
    r.action = actions[i];
    if (actions[i].kind == Action::Kind::kTx) {
      r.out_len = out_len(actions[i], lens[i]);
      // An encapsulated (or newly tagged) frame starts before the buffer it came in, a NAT64
      // (or untagged) one after it.
      std::memcpy(r.post, out_start(actions[i], frames[i]), std::min(r.out_len, TraceRaw::kKeep));
    }
    if (r.flow == TraceFlow::kNone) continue;
    // A v4 client's miss may have made a NAT46 flow: look in the v6 table too.
    const FlowKey6 k6 = in6_[i] ? key6_[i] : mapped(key_[i]);
    if (!in6_[i]) {
      const FlowHit h = pl.flows().find(key_[i], r.at);
      if (h.found()) {
        const Flow& f = pl.flows().at(h.idx);
        r.has_flow = true;
        r.state = f.state;
        r.backend_ip = api::Addr::from_v4(ntohl(f.rev.src_ip));
        r.backend_port = f.rev.src_port;
      }
    }
    if (!r.has_flow) {
      const FlowHit h = pl.flows6().find(k6, r.at);
      if (h.found()) {
        const Flow6& f = pl.flows6().at(h.idx);
        r.has_flow = true;
        r.state = f.state;
        std::memcpy(r.backend_ip.b.data(), f.rev.src_ip, 16);
        r.backend_port = f.rev.src_port;
      }
    }
    if (r.has_flow && r.flow == TraceFlow::kMiss) r.flow = TraceFlow::kNew;
  }
}

}  // namespace rondo::dp

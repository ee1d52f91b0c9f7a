#include "dataplane/inspect/trace.h"

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
  for (uint32_t i = 0; i < n && i < kMaxBurst; ++i) {
    slot_[i] = -1;
    if (left_ == 0) continue;
    Parsed p;
    DropReason why;
    TraceKind kind = TraceKind::kOther;
    Flow probe{};  // what the filter is matched against: the flow, or what the packet says
    FlowTable::Hit hit;
    if (parse_frame(frames[i], lens[i], &p, &why)) {
      if (p.kind == PktKind::kArp) {
        kind = TraceKind::kArp;
      } else if (s && p.kind == PktKind::kIpv4Icmp &&
                 (s->is_vip_ip(p.key.dst_ip) || s->is_local_ip(p.key.dst_ip))) {
        kind = TraceKind::kIcmp;
        probe.fwd = p.key;
      } else if (s && s->is_vip_ip(p.key.dst_ip)) {
        kind = TraceKind::kClient;
        hit = t.find(p.key, now);
        probe.fwd = p.key;
      } else if (s && s->is_local_ip(p.key.dst_ip)) {
        kind = TraceKind::kReply;
        hit = t.find(p.key, now);
        probe.rev = p.key;
      }
      if (hit.found()) probe = t.at(hit.idx);
    }
    // ARP, and what is neither ours nor parseable, is traced only without a filter.
    const bool match = any || (kind != TraceKind::kOther && kind != TraceKind::kArp &&
                                flow_matches(probe, filter_));
    if (!match) continue;
    TraceRaw r;
    r.at = now;
    r.in_port = in_port;
    r.steered = steered;
    r.kind = kind;
    r.flow = kind == TraceKind::kClient || kind == TraceKind::kReply
                 ? (hit.found() ? TraceFlow::kHit : TraceFlow::kMiss)
                 : TraceFlow::kNone;
    r.len = lens[i];
    std::memcpy(r.pre, frames[i], std::min(lens[i], TraceRaw::kKeep));
    key_[i] = p.key;
    slot_[i] = static_cast<int32_t>(records_.size());
    records_.push_back(r);
    if (--left_ == 0) armed_ = false;
  }
}

void Tracer::after(const Pipeline& pl, uint8_t* const* frames, const uint32_t* lens,
                   const Action* actions, uint32_t n) {
  const FlowTable& t = pl.flows();
  for (uint32_t i = 0; i < n && i < kMaxBurst; ++i) {
    if (slot_[i] < 0) continue;
    TraceRaw& r = records_[static_cast<uint32_t>(slot_[i])];
    r.action = actions[i];
    if (actions[i].kind == Action::Kind::kTx) {
      r.out_len = actions[i].len ? actions[i].len : lens[i];
      // An encapsulated frame starts before the buffer it came in (Action::prepend).
      std::memcpy(r.post, frames[i] - actions[i].prepend, std::min(r.out_len, TraceRaw::kKeep));
    }
    if (r.flow == TraceFlow::kNone) continue;
    const FlowTable::Hit h = t.find(key_[i], r.at);
    if (!h.found()) continue;
    const Flow& f = t.at(h.idx);
    r.has_flow = true;
    r.state = f.state;
    r.backend_ip = f.rev.src_ip;
    r.backend_port = f.rev.src_port;
    if (r.flow == TraceFlow::kMiss) r.flow = TraceFlow::kNew;
  }
}

}  // namespace rondo::dp

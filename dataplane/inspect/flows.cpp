#include "dataplane/inspect/flows.h"

#include <arpa/inet.h>

namespace rondo::dp {
namespace {

// An IPv6 address in the filter matches no flow of this (IPv4) table.
bool field(const api::Addr& want, uint32_t net) {
  return want.is_zero() || (want.is_v4() && want.v4() == ntohl(net));
}
bool set_v4(const api::Addr& a) { return a.is_v4(); }
bool field(uint16_t want, uint16_t net) { return want == 0 || want == ntohs(net); }

uint64_t ms(uint64_t ticks, uint64_t hz) { return hz ? ticks * 1000 / hz : 0; }

}  // namespace

std::string_view flow_state_name(FlowState s) {
  switch (s) {
    case FlowState::kFree: return "free";
    case FlowState::kSynSent: return "syn_sent";
    case FlowState::kSynRecv: return "syn_recv";
    case FlowState::kEstablished: return "established";
    case FlowState::kClosing: return "closing";
    case FlowState::kUdp: return "udp";
    case FlowState::kHalfClosed: return "half_closed";
    case FlowState::kTimeWait: return "time_wait";
    case FlowState::kReset: return "reset";
  }
  return "unknown";
}

bool flow_matches(const Flow& f, const api::FlowFilter& q) {
  return (q.proto == 0 || q.proto == f.fwd.proto) && field(q.client_ip, f.fwd.src_ip) &&
         field(q.client_port, f.fwd.src_port) && field(q.vip_ip, f.fwd.dst_ip) &&
         field(q.vip_port, f.fwd.dst_port) && field(q.backend_ip, f.rev.src_ip) &&
         field(q.backend_port, f.rev.src_port) && field(q.local_ip, f.rev.dst_ip) &&
         field(q.local_port, f.rev.dst_port);
}

std::optional<FlowKey> exact_key(const api::FlowFilter& q) {
  if (q.proto == 0) return std::nullopt;
  FlowKey k;
  k.proto = q.proto;
  if (set_v4(q.client_ip) && q.client_port && set_v4(q.vip_ip) && q.vip_port) {
    k.src_ip = htonl(q.client_ip.v4());
    k.src_port = htons(q.client_port);
    k.dst_ip = htonl(q.vip_ip.v4());
    k.dst_port = htons(q.vip_port);
    return k;
  }
  if (set_v4(q.backend_ip) && q.backend_port && set_v4(q.local_ip) && q.local_port) {
    k.src_ip = htonl(q.backend_ip.v4());
    k.src_port = htons(q.backend_port);
    k.dst_ip = htonl(q.local_ip.v4());
    k.dst_port = htons(q.local_port);
    return k;
  }
  return std::nullopt;
}

api::FlowInfo flow_info(const FlowTable& t, uint32_t idx, uint64_t now, uint64_t hz, uint32_t lcore) {
  const Flow& f = t.at(idx);
  api::FlowInfo i;
  i.lcore = lcore;
  i.proto = f.fwd.proto;
  i.client_ip = api::Addr::from_v4(ntohl(f.fwd.src_ip));
  i.client_port = ntohs(f.fwd.src_port);
  i.vip_ip = api::Addr::from_v4(ntohl(f.fwd.dst_ip));
  i.vip_port = ntohs(f.fwd.dst_port);
  i.backend_ip = api::Addr::from_v4(ntohl(f.rev.src_ip));
  i.backend_port = ntohs(f.rev.src_port);
  i.local_ip = api::Addr::from_v4(ntohl(f.rev.dst_ip));
  i.local_port = ntohs(f.rev.dst_port);
  i.backend_id = f.backend_id;
  i.vip_id = f.vip_id;
  i.state = flow_state_name(f.state);
  i.expires_ms = f.expires > now ? ms(f.expires - now, hz) : 0;
  if (const FlowMeter* m = t.meter(idx)) {
    i.metered = true;
    i.age_ms = now > m->created ? ms(now - m->created, hz) : 0;
    i.packets_in = m->packets[0];
    i.bytes_in = m->bytes[0];
    i.packets_out = m->packets[1];
    i.bytes_out = m->bytes[1];
  }
  return i;
}

}  // namespace rondo::dp

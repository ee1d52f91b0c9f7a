#include "dataplane/inspect/flows.h"

#include <arpa/inet.h>

#include <cstring>

namespace rondo::dp {
namespace {

// Filter fields against a v4 record's fields (network order): an IPv6 address matches none.
bool field(const api::Addr& want, uint32_t net) {
  return want.is_zero() || (want.is_v4() && want.v4() == ntohl(net));
}
// Against a v6 record's: the 16 bytes as they are (IPv4-mapped or IPv6, as api::Addr).
bool field(const api::Addr& want, const uint8_t (&ip)[16]) {
  return want.is_zero() || std::memcmp(want.b.data(), ip, 16) == 0;
}
bool field(uint16_t want, uint16_t net) { return want == 0 || want == ntohs(net); }

api::Addr addr(uint32_t net) { return api::Addr::from_v4(ntohl(net)); }
api::Addr addr(const uint8_t (&ip)[16]) {
  api::Addr a;
  std::memcpy(a.b.data(), ip, 16);
  return a;
}

uint64_t ms(uint64_t ticks, uint64_t hz) { return hz ? ticks * 1000 / hz : 0; }

template <typename Rec>
bool matches(const Rec& f, const api::FlowFilter& q) {
  return (q.proto == 0 || q.proto == f.fwd.proto) && field(q.client_ip, f.fwd.src_ip) &&
         field(q.client_port, f.fwd.src_port) && field(q.vip_ip, f.fwd.dst_ip) &&
         field(q.vip_port, f.fwd.dst_port) && field(q.backend_ip, f.rev.src_ip) &&
         field(q.backend_port, f.rev.src_port) && field(q.local_ip, f.rev.dst_ip) &&
         field(q.local_port, f.rev.dst_port);
}

// The key of one whole side of the filter (src, dst as the packet carries them), if it
// names one and `put` can write its addresses.
template <typename Key, typename Put>
std::optional<Key> side_key(const api::FlowFilter& q, Put&& put) {
  if (q.proto == 0) return std::nullopt;
  auto make = [&](const api::Addr& src, uint16_t sport, const api::Addr& dst,
                  uint16_t dport) -> std::optional<Key> {
    Key k;
    k.proto = q.proto;
    if (!put(&k.src_ip, src) || !put(&k.dst_ip, dst)) return std::nullopt;
    k.src_port = htons(sport);
    k.dst_port = htons(dport);
    return k;
  };
  if (!q.client_ip.is_zero() && q.client_port && !q.vip_ip.is_zero() && q.vip_port)
    return make(q.client_ip, q.client_port, q.vip_ip, q.vip_port);
  if (!q.backend_ip.is_zero() && q.backend_port && !q.local_ip.is_zero() && q.local_port)
    return make(q.backend_ip, q.backend_port, q.local_ip, q.local_port);
  return std::nullopt;
}

template <typename Table>
api::FlowInfo info(const Table& t, uint32_t idx, uint64_t now, uint64_t hz, uint32_t lcore) {
  const auto& f = t.at(idx);
  api::FlowInfo i;
  i.lcore = lcore;
  i.proto = f.fwd.proto;
  i.client_ip = addr(f.fwd.src_ip);
  i.client_port = ntohs(f.fwd.src_port);
  i.vip_ip = addr(f.fwd.dst_ip);
  i.vip_port = ntohs(f.fwd.dst_port);
  i.backend_ip = addr(f.rev.src_ip);
  i.backend_port = ntohs(f.rev.src_port);
  i.local_ip = addr(f.rev.dst_ip);
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

bool flow_matches(const Flow& f, const api::FlowFilter& q) { return matches(f, q); }
bool flow_matches(const Flow6& f, const api::FlowFilter& q) { return matches(f, q); }

std::optional<FlowKey> exact_key(const api::FlowFilter& q) {
  return side_key<FlowKey>(q, [](uint32_t* ip, const api::Addr& a) {
    if (!a.is_v4()) return false;
    *ip = htonl(a.v4());
    return true;
  });
}

std::optional<FlowKey6> exact_key6(const api::FlowFilter& q) {
  return side_key<FlowKey6>(q, [](uint8_t (*ip)[16], const api::Addr& a) {
    std::memcpy(*ip, a.b.data(), 16);
    return true;
  });
}

api::FlowInfo flow_info(const FlowTable& t, uint32_t idx, uint64_t now, uint64_t hz, uint32_t lcore) {
  return info(t, idx, now, hz, lcore);
}
api::FlowInfo flow_info(const FlowTable6& t, uint32_t idx, uint64_t now, uint64_t hz, uint32_t lcore) {
  return info(t, idx, now, hz, lcore);
}

}  // namespace rondo::dp

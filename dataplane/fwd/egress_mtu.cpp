// The egress MTU of the forwarding paths (the MTU of the interface the route leaves on:
// IfaceConf::mtu, --mtu by default): what happens to a packet that would leave longer than
// it. rondo never fragments what it forwards (decided for now: docs/operations.md "MTU and
// jumbo frames"): an IPv4 packet with DF set and every IPv6 packet are refused with the ICMP error that lets the sender's path MTU discovery
// (RFC 1191, RFC 8201) find what fits; an IPv4 packet without DF is dropped and counted,
// which a sender without path MTU discovery never learns from (named in the docs).
#include "dataplane/fwd/pipeline.h"

namespace rondo::dp {

Action Pipeline::too_big4(const Snapshot& s, const uint8_t* f, const Parsed& p, uint32_t mtu,
                          uint64_t now) {
  if (f[p.l3_off + 6] & 0x40)  // DF (RFC 791 3.1: bit 1 of the flags)
    send_too_big(s, f, p, static_cast<uint16_t>(mtu), now);
  counters_.drop(DropReason::kEgressTooBig);
  return Action{Action::Kind::kDrop, DropReason::kEgressTooBig, 0};
}

Action Pipeline::too_big6(const Snapshot& s, const uint8_t* f, const Parsed& p, uint32_t mtu,
                          uint64_t now) {
  counters_.drop(DropReason::kEgressTooBig);
  const Action dropped{Action::Kind::kDrop, DropReason::kEgressTooBig, 0};
  if (!replies_.take(now)) return dropped;  // the echo replies' budget: no amplification
  OutFrame* o = out_frame();
  if (!o) return dropped;
  // From the address the packet went to (a VIP or a local ip), which the sender relates to
  // its connection.
  const Ip6 from = Ip6::from(p.key6.dst_ip);
  const uint32_t n = write_packet_too_big6(o->data() + 14, f + p.l3_off, p.ip_len, from, mtu);
  send_frame6(s, o, 14 + n, Ip6::from(p.key6.src_ip), now);  // counts its own drop
  return dropped;
}

}  // namespace rondo::dp

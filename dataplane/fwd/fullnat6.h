// Full-NAT rewrite for IPv6 (v6 client -> v6 VIP becomes local6:lport -> backend6:bport, and
// back). IPv6 has no header checksum: only the TCP/UDP checksum changes, through its
// pseudo-header (RFC 8200 8.1: source, destination, upper-layer length, next header). The
// upper-layer length and next header are the same before and after, so one delta of the 16
// address words and the two ports updates it (RFC 1624); extension headers between the fixed
// header and L4 are left as they are (the caller gives L4's position). A UDP checksum of 0 is
// illegal in IPv6 (the parser drops it); a computed 0 is written 0xffff.
#pragma once

#include <cstdint>
#include <cstring>

#include "dataplane/pkt/csum.h"
#include "dataplane/pkt/ip6.h"

namespace rondo::dp {

/// Checksum delta of replacing the 16 bytes at `p` with `v` (eight 16-bit words, as they sit
/// in the packet), writing `v` there.
inline uint64_t csum_swap_addr6(uint8_t* p, const Ip6& v) {
  uint64_t d = 0;
  for (int i = 0; i < 16; i += 2) {
    uint16_t from, to;
    std::memcpy(&from, p + i, 2);
    std::memcpy(&to, v.b + i, 2);
    d += csum_delta16(from, to);
  }
  std::memcpy(p, v.b, 16);
  return d;
}

struct FullNat6 {
  /// Rewrite addresses and ports (network order) of an IPv6 TCP/UDP packet in place and
  /// decrement its hop limit. `ip` is the fixed header, `l4` the TCP/UDP header after any
  /// extension headers. The caller has checked hop limit > 1 and the header lengths.
  static void rewrite(uint8_t* ip, uint8_t* l4, uint8_t proto, const Ip6& src, const Ip6& dst,
                      uint16_t sport, uint16_t dport) {
    ip[7]--;  // hop limit: in no checksum
    uint64_t d = csum_swap_addr6(ip + 8, src) + csum_swap_addr6(ip + 24, dst);
    uint16_t old_sport, old_dport;
    std::memcpy(&old_sport, l4, 2);
    std::memcpy(&old_dport, l4 + 2, 2);
    std::memcpy(l4, &sport, 2);
    std::memcpy(l4 + 2, &dport, 2);
    d += csum_delta16(old_sport, sport) + csum_delta16(old_dport, dport);

    uint8_t* csum_at = l4 + (proto == 6 ? 16 : 6);  // TCP (RFC 9293) or UDP (RFC 768)
    uint16_t c;
    std::memcpy(&c, csum_at, 2);
    c = csum_apply(c, d);
    if (proto == 17 && c == 0) c = 0xffff;
    std::memcpy(csum_at, &c, 2);
  }
};

}  // namespace rondo::dp

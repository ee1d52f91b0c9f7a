// "Your packet does not fit my egress" for the IPv6 side: ICMPv6 packet too big (RFC 4443
// 3.2), the twin of write_frag_needed (encap.h). rondo sends it when a packet it would
// forward is longer than the egress MTU (--mtu, docs/operations.md "MTU and jumbo frames"):
// IPv6 routers never fragment, so this is how the sender learns what fits.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "dataplane/fwd/nat64.h"
#include "dataplane/pkt/csum.h"
#include "dataplane/pkt/ip6.h"

namespace rondo::dp {

/// Bytes of the offending packet a packet too big quotes at most: its fixed header, its
/// extension headers and the first 8 bytes of TCP/UDP (what a receiver needs to find the
/// connection, RFC 4443 2.4 asks for "as much as fits" in 1280, which rondo's outbox has no
/// room for and no receiver needs).
inline constexpr uint32_t kTooBigQuote6 = 128;
/// The longest packet too big written: IPv6 header, ICMPv6 header, quote.
inline constexpr uint32_t kTooBigMax6 = 40 + 8 + kTooBigQuote6;

/// ICMPv6 packet too big (type 2, code 0) about the IPv6 packet at `orig` (`orig_len` bytes,
/// its fixed header first), from `src` to the packet's source, reporting `mtu`; written
/// into `out` at the IPv6 header, quoting at most `quote_max` bytes. Returns the IPv6 length
/// (at most 48 + quote_max).
inline uint32_t write_packet_too_big6(uint8_t* out, const uint8_t* orig, uint32_t orig_len,
                                      const Ip6& src, uint32_t mtu,
                                      uint32_t quote_max = kTooBigQuote6) {
  const uint32_t quote = std::min(orig_len, quote_max);
  const uint32_t icmp_len = 8 + quote;
  const Ip6 dst = Ip6::from(orig + 8);  // back to the sender
  // Hop limit 64, as the echo replies; traffic class 0.
  xlate_detail::write_ipv6_header(out, 0, static_cast<uint16_t>(icmp_len), 58, 64, src, dst);
  uint8_t* icmp = out + 40;
  icmp[0] = 2;  // packet too big
  icmp[1] = 0;
  icmp[2] = icmp[3] = 0;
  icmp[4] = static_cast<uint8_t>(mtu >> 24);
  icmp[5] = static_cast<uint8_t>(mtu >> 16);
  icmp[6] = static_cast<uint8_t>(mtu >> 8);
  icmp[7] = static_cast<uint8_t>(mtu);
  std::memcpy(icmp + 8, orig, quote);
  // The ICMPv6 checksum covers the pseudo-header (RFC 4443 2.3).
  csum_put(icmp + 2, csum_pseudo6(src.b, dst.b, icmp_len, 58) + csum_sum(icmp, icmp_len));
  return 40 + icmp_len;
}

}  // namespace rondo::dp

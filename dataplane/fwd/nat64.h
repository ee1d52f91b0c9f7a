// NAT46 / NAT64 through full-NAT (RFC 7915 4.1 and 5.1): a TCP/UDP packet's IP header is
// rebuilt in the other family, with the addresses and ports full-NAT chose. The L4 header and
// payload stay where they are; the new IP header is written in front of L4 and the frame's
// L2 header (Ethernet, an 802.1Q tag) is moved in front of it, so the frame grows 20 bytes at
// the front (v4 -> v6 without options) or shrinks by 20 + the extension headers (v6 -> v4).
// The caller owns the buffer: it moves the mbuf's start to the returned frame (it must have
// the headroom) and writes the MACs.
//
// Checksums: the TCP/UDP checksum covers the pseudo-header, whose length and protocol words
// are the same in both families (the length is the L4 length in both, RFC 768/9293 and RFC
// 8200 8.1), so one delta of the addresses and ports updates it. A v4 UDP datagram without a
// checksum (0) gets one computed in full (RFC 7915 4.5: it is mandatory in v6); a computed 0
// is written 0xffff in both families.
#pragma once

#include <cstdint>
#include <cstring>

#include "dataplane/fwd/icmp_error6.h"
#include "dataplane/pkt/csum.h"
#include "dataplane/pkt/ip6.h"

namespace rondo::dp {

/// A translated frame: its new start and length (L2 header included). frame == nullptr:
/// not translated (the caller drops it).
struct Xlated {
  uint8_t* frame = nullptr;
  uint32_t len = 0;
};

namespace xlate_detail {

/// Sum of the 16-bit words of `n` bytes at `p` (n even), for checksum deltas.
inline uint64_t words(const uint8_t* p, uint32_t n) { return csum_sum(p, n); }

/// Update the checksum at `at` (network order) for words that went away (`removed`, their
/// plain sum) and words that came in (`added`): the pseudo-header's addresses change width
/// across families, so this takes sums rather than pairs of equal-width fields. A UDP result
/// of 0 is written 0xffff (0 means "no checksum" in v4 and is illegal in v6).
inline void csum_update(uint8_t* at, uint64_t added, uint64_t removed, bool udp) {
  // HC' = ~(~HC + ~m + m') (RFC 1624 eqn. 3), m folded first so that its complement is
  // taken of one 16-bit value.
  const uint16_t c = static_cast<uint16_t>(at[0] << 8 | at[1]);
  const uint16_t r = csum_fold64(removed);
  uint64_t sum = static_cast<uint16_t>(~c);
  sum += static_cast<uint16_t>(~r);
  sum += added;
  uint16_t out = static_cast<uint16_t>(~csum_fold64(sum));
  if (udp && out == 0) out = 0xffff;
  at[0] = static_cast<uint8_t>(out >> 8);
  at[1] = static_cast<uint8_t>(out);
}

/// Write the IPv6 fixed header (version 6, traffic class, flow label 0).
inline void write_ipv6_header(uint8_t* ip, uint8_t tclass, uint16_t payload_len,
                              uint8_t next_header, uint8_t hop_limit, const Ip6& src,
                              const Ip6& dst) {
  ip[0] = static_cast<uint8_t>(0x60 | tclass >> 4);
  ip[1] = static_cast<uint8_t>(tclass << 4);
  ip[2] = ip[3] = 0;
  ip[4] = static_cast<uint8_t>(payload_len >> 8);
  ip[5] = static_cast<uint8_t>(payload_len);
  ip[6] = next_header;
  ip[7] = hop_limit;
  std::memcpy(ip + 8, src.b, 16);
  std::memcpy(ip + 24, dst.b, 16);
}

/// The DF rule of RFC 7915 5.1: a translated v4 packet of at most 1260 bytes may be
/// fragmented on the v4 side (its v6 sender sized it for the v6 minimum MTU of 1280 and
/// cannot learn a smaller one: no PTB below 1280 reaches it); above that, DF is set and path
/// MTU discovery works as in v6.
inline constexpr uint32_t kDfAbove = 1260;

}  // namespace xlate_detail

struct Xlate46 {
  /// Translate the IPv4 TCP/UDP packet of frame `f` (its IP header at `l3_off`, `l4_len`
  /// bytes after that header) into IPv6 from src:sport to dst:dport (ports network order):
  /// traffic class = TOS, flow label 0, hop limit = TTL - 1 (the caller checked TTL > 1),
  /// options dropped. The frame grows by 20 bytes minus the options at the front. For other
  /// protocols (ICMP: icmp_xlate.h) only the IP header is translated (ports ignored, next
  /// header 58 for ICMP).
  static Xlated header(uint8_t* f, uint32_t l3_off, uint32_t l4_len, const Ip6& src,
                       const Ip6& dst, uint16_t sport, uint16_t dport) {
    using namespace xlate_detail;
    uint8_t* ip = f + l3_off;
    const uint32_t ihl = (ip[0] & 0x0fu) * 4;
    const uint8_t tos = ip[1], ttl = ip[8], proto = ip[9];
    uint8_t old_addrs[8];
    std::memcpy(old_addrs, ip + 12, 8);
    uint8_t* l4 = ip + ihl;
    uint8_t l2[32];
    std::memcpy(l2, f, l3_off);

    uint8_t* ip6 = l4 - 40;
    write_ipv6_header(ip6, tos, static_cast<uint16_t>(l4_len), proto == 1 ? 58 : proto,
                      static_cast<uint8_t>(ttl - 1), src, dst);
    uint8_t* nf = ip6 - l3_off;
    std::memcpy(nf, l2, l3_off);
    nf[l3_off - 2] = 0x86;
    nf[l3_off - 1] = 0xdd;

    if (proto == 6 || proto == 17) {
      const bool udp = proto == 17;
      uint8_t* csum = l4 + (udp ? 6 : 16);
      const uint64_t removed = words(old_addrs, 8) + words(l4, 4);
      std::memcpy(l4, &sport, 2);
      std::memcpy(l4 + 2, &dport, 2);
      if (udp && csum[0] == 0 && csum[1] == 0) {
        // No checksum on the v4 side: v6 requires one (RFC 7915 4.5), computed in full.
        const uint64_t sum = csum_pseudo6(ip6 + 8, ip6 + 24, l4_len, 17) + words(l4, l4_len);
        const auto c = static_cast<uint16_t>(~csum_fold64(sum));
        csum[0] = static_cast<uint8_t>((c ? c : 0xffff) >> 8);
        csum[1] = static_cast<uint8_t>(c ? c : 0xffff);
      } else {
        csum_update(csum, words(ip6 + 8, 32) + words(l4, 4), removed, udp);
      }
    }
    return {nf, l3_off + 40 + l4_len};
  }
};

struct Xlate64 {
  /// Translate the IPv6 TCP/UDP packet of frame `f` (fixed header at `l3_off`, L4 of
  /// protocol `proto` at `l4_off` after any extension headers, `l4_len` bytes) into IPv4
  /// from src:sport to dst:dport (addresses and ports network order): TOS = traffic class,
  /// TTL = hop limit - 1 (the caller checked it is above 1), extension headers dropped, DF
  /// set above 1260 bytes (RFC 7915 5.1) and otherwise `id` (network order, a per-worker
  /// counter) as identification, header checksum computed. The frame shrinks by 20 bytes
  /// plus the extension headers at the front. For ICMPv6 (58) only the IP header is
  /// translated (protocol 1; icmp_xlate.h does the rest).
  static Xlated header(uint8_t* f, uint32_t l3_off, uint32_t l4_off, uint32_t l4_len,
                       uint8_t proto, uint32_t src, uint32_t dst, uint16_t sport,
                       uint16_t dport, uint16_t id) {
    using namespace xlate_detail;
    uint8_t* ip6 = f + l3_off;
    uint8_t* l4 = f + l4_off;
    const uint8_t tclass = static_cast<uint8_t>(ip6[0] << 4 | ip6[1] >> 4);
    const uint8_t hop = ip6[7];
    const uint64_t removed_addrs = words(ip6 + 8, 32);
    uint8_t l2[32];
    std::memcpy(l2, f, l3_off);

    uint8_t* ip = l4 - 20;
    const uint32_t total = 20 + l4_len;
    Ipv4Fields h;
    h.tos = tclass;
    h.df = total > kDfAbove;
    if (!h.df) std::memcpy(h.id, &id, 2);
    h.ttl = static_cast<uint8_t>(hop - 1);
    h.proto = proto == 58 ? 1 : proto;
    h.src = src;
    h.dst = dst;
    write_ipv4_header(ip, static_cast<uint16_t>(total), h);
    uint8_t* nf = ip - l3_off;
    std::memcpy(nf, l2, l3_off);
    nf[l3_off - 2] = 0x08;
    nf[l3_off - 1] = 0x00;

    if (proto == 6 || proto == 17) {
      const bool udp = proto == 17;
      const uint64_t removed = removed_addrs + words(l4, 4);
      std::memcpy(l4, &sport, 2);
      std::memcpy(l4 + 2, &dport, 2);
      csum_update(l4 + (udp ? 6 : 16), words(ip + 12, 8) + words(l4, 4), removed, udp);
    }
    return {nf, l3_off + total};
  }
};

}  // namespace rondo::dp

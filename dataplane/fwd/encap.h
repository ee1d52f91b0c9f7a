// The DSR modes' rewrites (docs/modes.md): what each does to a client's packet on its way to
// the backend. The backend answers the client directly, so nothing comes back this way and
// the inner packet is never changed: no NAT, no checksum update, no TTL decrement (rondo
// is a tunnel ingress here, not a router hop; the outer TTL starts at 64).
//
// Each mode is a type with the same shape, used as the template argument of the pipeline's
// DSR handler (one instantiation per mode, chosen per VIP when the snapshot is built):
//   kOverhead        bytes the frame grows by (written before it: the caller has the room);
//   write(...)       the outer headers, in front of the inner packet at `inner`.
// To a v4 backend (IpipEncap, GueEncap, L2Encap) the inner packet is IPv4 and the outer header
// IPv4 (EncapArgs); to a v6 backend (Ipip6Encap, Gue6Encap, L2Encap6) the outer header is IPv6
// (EncapArgs6) and the inner packet IPv6 or, for a v4 vip, IPv4.
#pragma once

#include <cstdint>
#include <algorithm>
#include <cstring>

#include "dataplane/api/ctl.h"
#include "dataplane/pkt/csum.h"
#include "dataplane/pkt/ip6.h"

namespace rondo::dp {

/// What a DSR rewrite needs besides the packet (addresses network order).
struct EncapArgs {
  uint32_t src = 0;      // outer source: one of rondo's local ips, chosen per flow
  uint32_t dst = 0;      // outer destination: the backend
  uint16_t sport = 0;    // gue: the UDP source port (network order), per flow: it spreads the
                         // flows over the backend's RSS queues
};

/// The same for an IPv6 outer header (a v6 backend): addresses, and the flow label.
struct EncapArgs6 {
  Ip6 src;             // outer source: one of rondo's v6 local ips, chosen per flow
  Ip6 dst;             // the backend
  uint16_t sport = 0;  // gue: the UDP source port (network order), per flow
  uint32_t label = 0;  // the flow label (20 bits, host order), per flow: RSS on the backend
};

namespace encap {

inline constexpr uint8_t kOuterTtl = 64;

// An outer IPv4 header at `o` for `payload` bytes of protocol `proto`: ToS (DSCP, ECN), the
// DF bit and the id copied from the inner header (so a DF packet stays DF and path MTU
// discovery keeps working through the tunnel; the id only matters for fragments).
inline void write_ipv4(uint8_t* o, const uint8_t* inner, uint32_t payload, uint8_t proto,
                       const EncapArgs& a) {
  Ipv4Fields h;
  h.tos = inner[1];
  h.id[0] = inner[4];
  h.id[1] = inner[5];
  h.df = (inner[6] & 0x40) != 0;  // DF only: the outer packet is not a fragment
  h.ttl = kOuterTtl;
  h.proto = proto;
  h.src = a.src;
  h.dst = a.dst;
  write_ipv4_header(o, static_cast<uint16_t>(20 + payload), h);
}

// An outer IPv6 header at `o` for `payload` bytes of next header `next` (RFC 8200 3): the
// traffic class copied from the inner packet (its IPv4 ToS or IPv6 traffic class: DSCP and
// ECN, RFC 6040's normal mode), the flow label the caller chose for the flow (RFC 6437: the
// same for every packet of a flow, so a backend's RSS, which hashes it with the addresses,
// keeps the flow on one queue), hop limit 64. IPv6 has no DF: nothing is fragmented, an outer
// packet over the MTU is never written (the caller answers packet-too-big).
inline void write_ipv6(uint8_t* o, const uint8_t* inner, uint32_t payload, uint8_t next,
                       const EncapArgs6& a) {
  const uint8_t tc = (inner[0] >> 4) == 6 ? static_cast<uint8_t>(inner[0] << 4 | inner[1] >> 4)
                                          : inner[1];
  o[0] = static_cast<uint8_t>(0x60 | tc >> 4);
  o[1] = static_cast<uint8_t>(tc << 4 | ((a.label >> 16) & 0x0f));
  o[2] = static_cast<uint8_t>(a.label >> 8);
  o[3] = static_cast<uint8_t>(a.label);
  o[4] = static_cast<uint8_t>(payload >> 8);
  o[5] = static_cast<uint8_t>(payload);
  o[6] = next;
  o[7] = kOuterTtl;
  std::memcpy(o + 8, a.src.b, 16);
  std::memcpy(o + 24, a.dst.b, 16);
}

// The IP protocol / next header that says what the inner packet is: 4 (IPv4) or 41 (IPv6).
inline constexpr uint8_t inner_proto(bool inner6) { return inner6 ? 41 : 4; }

// UDP to kGuePort and the 4-byte GUE header (variant 0, no extension words) at `u`, for an
// inner packet of `inner_len` bytes of family `proto` (inner_proto). Checksum field 0.
inline void write_udp_gue(uint8_t* u, uint16_t sport, uint32_t inner_len, uint8_t proto) {
  const uint32_t udp_len = 8 + 4 + inner_len;
  std::memcpy(u, &sport, 2);
  u[2] = static_cast<uint8_t>(api::kGuePort >> 8);
  u[3] = static_cast<uint8_t>(api::kGuePort & 0xff);
  u[4] = static_cast<uint8_t>(udp_len >> 8);
  u[5] = static_cast<uint8_t>(udp_len);
  u[6] = u[7] = 0;
  uint8_t* g = u + 8;
  g[0] = 0;  // version 0, C 0, hlen 0
  g[1] = proto;
  g[2] = g[3] = 0;
}

}  // namespace encap

/// ipip: IPv4 in IPv4 (IP protocol 4), decapsulated by Linux's `ipip` (tunl0) or rondo-decap.
struct IpipEncap {
  static constexpr api::Mode kMode = api::Mode::kIpip;
  static constexpr uint32_t kOverhead = 20;
  static void write(uint8_t* outer, const uint8_t* inner, uint32_t inner_len, const EncapArgs& a) {
    encap::write_ipv4(outer, inner, inner_len, 4, a);
  }
};

/// gue: IPv4 + UDP to kGuePort + a GUE header (RFC draft-ietf-intarea-gue, variant 0: version
/// 0, no control bit, no extension words, proto/ctype 4 for an IPv4 payload). Decapsulated by
/// Linux's `fou` (`ip fou add port 6080 gue`) or rondo-decap. The UDP source port carries the
/// flow's entropy (49152-65535, chosen by the caller), so a backend NIC's RSS on the UDP
/// 4-tuple spreads the flows;
/// the UDP checksum is 0 (allowed for IPv4, RFC 768; the inner packet has its own).
struct GueEncap {
  static constexpr api::Mode kMode = api::Mode::kGue;
  static constexpr uint32_t kGueLen = 4;
  static constexpr uint32_t kOverhead = 20 + 8 + kGueLen;
  static void write(uint8_t* outer, const uint8_t* inner, uint32_t inner_len, const EncapArgs& a) {
    encap::write_ipv4(outer, inner, 8 + kGueLen + inner_len, 17, a);
    encap::write_udp_gue(outer + 20, a.sport, inner_len, 4);
  }
};

/// l2dsr: nothing but the Ethernet header changes (the output stage writes the backend's
/// MAC); the backend is on-link (validated) and has the VIP on its loopback.
struct L2Encap {
  static constexpr api::Mode kMode = api::Mode::kL2Dsr;
  static constexpr uint32_t kOverhead = 0;
  static void write(uint8_t*, const uint8_t*, uint32_t, const EncapArgs&) {}
};

/// ipip to an IPv6 backend (RFC 2473): IPv6 in IPv6 (next header 41) when the vip is IPv6,
/// IPv4 in IPv6 (next header 4) when it is IPv4 (`kInner6`). Decapsulated by Linux's
/// `ip6_tunnel` (`ip -6 tunnel add ... mode any`, or ip6tnl0) or rondo-decap.
template <bool kInner6>
struct Ipip6Encap {
  static constexpr api::Mode kMode = api::Mode::kIpip;
  static constexpr uint32_t kOverhead = 40;
  static void write(uint8_t* outer, const uint8_t* inner, uint32_t inner_len, const EncapArgs6& a) {
    encap::write_ipv6(outer, inner, inner_len, encap::inner_proto(kInner6), a);
  }
};

/// gue to an IPv6 backend: IPv6 + UDP to kGuePort + GUE (proto/ctype 41 or 4 for the inner
/// packet). Unlike IPv4, IPv6 makes the UDP checksum mandatory (RFC 8200 8.1; a zero one is
/// dropped by a receiver that does not opt in to RFC 6935's exception, Linux's fou among
/// them), so it is computed over the pseudo-header, UDP, GUE and the whole inner packet.
template <bool kInner6>
struct Gue6Encap {
  static constexpr api::Mode kMode = api::Mode::kGue;
  static constexpr uint32_t kOverhead = 40 + 8 + GueEncap::kGueLen;
  static void write(uint8_t* outer, const uint8_t* inner, uint32_t inner_len, const EncapArgs6& a) {
    const uint32_t udp_len = 8 + GueEncap::kGueLen + inner_len;
    encap::write_ipv6(outer, inner, udp_len, 17, a);
    uint8_t* u = outer + 40;
    encap::write_udp_gue(u, a.sport, inner_len, encap::inner_proto(kInner6));
    const uint64_t sum = csum_pseudo6(a.src.b, a.dst.b, udp_len, 17) +
                         csum_sum(u, 8 + GueEncap::kGueLen) + csum_sum(inner, inner_len);
    uint16_t c = static_cast<uint16_t>(~csum_fold64(sum));
    if (c == 0) c = 0xffff;  // 0 would mean "no checksum" (RFC 768), which IPv6 forbids
    u[6] = static_cast<uint8_t>(c >> 8);
    u[7] = static_cast<uint8_t>(c);
  }
};

/// l2dsr to an IPv6 backend: as L2Encap (the backend's MAC comes from NDP).
struct L2Encap6 {
  static constexpr api::Mode kMode = api::Mode::kL2Dsr;
  static constexpr uint32_t kOverhead = 0;
  static void write(uint8_t*, const uint8_t*, uint32_t, const EncapArgs6&) {}
};

/// ICMP destination unreachable / fragmentation needed (type 3 code 4, RFC 1191) about the
/// IPv4 packet at `orig` (its header and the first 8 bytes of its payload are quoted), from
/// `src` to the packet's source, into `out` at the IPv4 header. Returns the IPv4 length
/// (at most 20 + 8 + 60 + 8 = 96 bytes).
inline constexpr uint32_t kIcmpErrMax = 20 + 8 + 60 + 8;
inline uint32_t write_frag_needed(uint8_t* out, const uint8_t* orig, uint32_t orig_len,
                                  uint32_t src, uint16_t mtu) {
  const uint32_t ihl = (orig[0] & 0x0fu) * 4;
  const uint32_t quote = std::min<uint32_t>(orig_len, ihl + 8);
  const uint32_t icmp_len = 8 + quote;
  uint8_t* icmp = out + 20;
  icmp[0] = 3;  // destination unreachable
  icmp[1] = 4;  // fragmentation needed and DF set
  icmp[2] = icmp[3] = 0;
  icmp[4] = icmp[5] = 0;
  icmp[6] = static_cast<uint8_t>(mtu >> 8);
  icmp[7] = static_cast<uint8_t>(mtu);
  std::memcpy(icmp + 8, orig, quote);
  csum_put(icmp + 2, csum_sum(icmp, icmp_len));
  Ipv4Fields h;  // ToS 0, id 0, DF clear, TTL 64
  h.proto = 1;
  h.src = src;
  std::memcpy(&h.dst, orig + 12, 4);  // back to the sender
  write_ipv4_header(out, static_cast<uint16_t>(20 + icmp_len), h);
  return 20 + icmp_len;
}

/// ICMPv6 packet too big for a DSR client (write_packet_too_big6, fwd/too_big.h): the quote
/// is the packet's start, at most kIcmp6QuoteMax bytes (RFC 4443 asks for as much as fits in
/// 1280; the sender's stack needs the headers up to the ports to find its socket).
inline constexpr uint32_t kIcmp6QuoteMax = 40 + 64 + 20;
inline constexpr uint32_t kIcmp6ErrMax = 40 + 8 + kIcmp6QuoteMax;

}  // namespace rondo::dp

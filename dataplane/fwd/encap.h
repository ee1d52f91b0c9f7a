// The DSR modes' rewrites (docs/modes.md): what each does to a client's packet on its way to
// the backend. The backend answers the client directly, so nothing comes back this way and
// the inner packet is never changed: no NAT, no checksum update, no TTL decrement (rondo
// is a tunnel ingress here, not a router hop; the outer TTL starts at 64).
//
// Each mode is a type with the same shape, used as the template argument of the pipeline's
// DSR handler (one instantiation per mode, chosen per VIP when the snapshot is built):
//   kOverhead        bytes the frame grows by (written before it: the caller has the room);
//   write(...)       the outer headers, in front of the inner IPv4 packet at `inner`.
#pragma once

#include <cstdint>
#include <algorithm>
#include <cstring>

#include "dataplane/api/ctl.h"
#include "dataplane/pkt/csum.h"

namespace rondo::dp {

/// What a DSR rewrite needs besides the packet (addresses network order).
struct EncapArgs {
  uint32_t src = 0;      // outer source: one of rondo's local ips, chosen per flow
  uint32_t dst = 0;      // outer destination: the backend
  uint16_t sport = 0;    // gue: the UDP source port (network order), per flow: it spreads the
                         // flows over the backend's RSS queues
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
    const uint32_t udp_len = 8 + kGueLen + inner_len;
    encap::write_ipv4(outer, inner, udp_len, 17, a);
    uint8_t* u = outer + 20;
    std::memcpy(u, &a.sport, 2);
    u[2] = static_cast<uint8_t>(api::kGuePort >> 8);
    u[3] = static_cast<uint8_t>(api::kGuePort & 0xff);
    u[4] = static_cast<uint8_t>(udp_len >> 8);
    u[5] = static_cast<uint8_t>(udp_len);
    u[6] = u[7] = 0;
    uint8_t* g = u + 8;
    g[0] = 0;  // version 0, C 0, hlen 0
    g[1] = 4;  // IPv4 inside
    g[2] = g[3] = 0;
  }
};

/// l2dsr: nothing but the Ethernet header changes (the output stage writes the backend's
/// MAC); the backend is on-link (validated) and has the VIP on its loopback.
struct L2Encap {
  static constexpr api::Mode kMode = api::Mode::kL2Dsr;
  static constexpr uint32_t kOverhead = 0;
  static void write(uint8_t*, const uint8_t*, uint32_t, const EncapArgs&) {}
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

}  // namespace rondo::dp

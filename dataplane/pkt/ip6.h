// IPv6 addresses as the fast path holds them: 16 bytes in network order, compared as two
// 64-bit words. The wire and control-plane type is api::Addr (dataplane/api/ctl.h); this one
// has no family flag, since everything that holds an Ip6 is v6 by construction.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

#include "dataplane/pkt/mac.h"

namespace rondo::dp {

struct alignas(8) Ip6 {
  uint8_t b[16] = {};

  bool operator==(const Ip6& o) const {
    uint64_t x[2], y[2];
    std::memcpy(x, b, 16);
    std::memcpy(y, o.b, 16);
    return ((x[0] ^ y[0]) | (x[1] ^ y[1])) == 0;
  }
  bool operator<(const Ip6& o) const { return std::memcmp(b, o.b, 16) < 0; }
  bool is_zero() const { return *this == Ip6{}; }

  static Ip6 from(const uint8_t* p) {
    Ip6 a;
    std::memcpy(a.b, p, 16);
    return a;
  }
};
static_assert(sizeof(Ip6) == 16);

/// ff00::/8.
inline bool is_multicast6(const Ip6& a) { return a.b[0] == 0xff; }
/// fe80::/10.
inline bool is_link_local6(const Ip6& a) { return a.b[0] == 0xfe && (a.b[1] & 0xc0) == 0x80; }
/// ::ffff:0:0/96 (an IPv4 address written as IPv6; never on the wire from a v6 host).
inline bool is_v4_mapped6(const Ip6& a) {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a.b, kPrefix, 12) == 0;
}
/// ::1.
inline bool is_loopback6(const Ip6& a) {
  Ip6 one;
  one.b[15] = 1;
  return a == one;
}

/// A source no host may send from (RFC 4291 2.5.2, 2.5.3, 2.7, 2.5.5.2): the unspecified
/// address (callers allow it for DAD's neighbour solicitations), loopback, multicast and
/// IPv4-mapped. Link-local sources are legal on the link and are checked by the caller.
inline bool martian_source6(const Ip6& a) {
  return a.is_zero() || is_loopback6(a) || is_multicast6(a) || is_v4_mapped6(a);
}

/// The solicited-node multicast group of `a` (RFC 4291 2.7.1): ff02::1:ffXX:XXXX with the
/// low 24 bits of `a`.
inline Ip6 solicited_node(const Ip6& a) {
  Ip6 g;
  g.b[0] = 0xff;
  g.b[1] = 0x02;
  g.b[11] = 0x01;
  g.b[12] = 0xff;
  g.b[13] = a.b[13];
  g.b[14] = a.b[14];
  g.b[15] = a.b[15];
  return g;
}

/// The Ethernet address a v6 multicast group maps to (RFC 2464 7): 33:33 + low 32 bits.
inline MacAddr multicast_mac6(const Ip6& g) {
  return {0x33, 0x33, g.b[12], g.b[13], g.b[14], g.b[15]};
}

/// The link-local address of an interface with MAC `mac` (modified EUI-64, RFC 4291
/// appendix A): fe80::(mac[0]^2)mac[1]:mac[2]ff:fe mac[3]:mac[4]mac[5].
inline Ip6 eui64_link_local(const MacAddr& mac) {
  Ip6 a;
  a.b[0] = 0xfe;
  a.b[1] = 0x80;
  a.b[8] = mac[0] ^ 0x02;
  a.b[9] = mac[1];
  a.b[10] = mac[2];
  a.b[11] = 0xff;
  a.b[12] = 0xfe;
  a.b[13] = mac[3];
  a.b[14] = mac[4];
  a.b[15] = mac[5];
  return a;
}

}  // namespace rondo::dp

// ICMP across families for NAT46/NAT64 flows (RFC 7915 4.2-4.3 and 5.2-5.3): the type,
// code and the word after the checksum (MTU, pointer) mapped by the RFC's tables, and for
// errors the quoted packet translated too (its IP header rebuilt in the other family with the
// flow's addresses on that side, its ports, its TCP/UDP checksum). Everything the RFC drops
// (or that names no TCP/UDP flow) is untranslatable: the caller drops it as
// icmp_untranslatable. ICMPv6 errors are capped at 1280 bytes (RFC 4443 2.4 c), ICMPv4 ones
// at 576 (RFC 1812 4.3.2.3): the quote is cut.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

#include "dataplane/fwd/icmp_error.h"
#include "dataplane/fwd/icmp_error6.h"
#include "dataplane/fwd/nat64.h"
#include "dataplane/pkt/csum.h"

namespace rondo::dp {

struct IcmpXlate {
  static constexpr uint8_t kNone = 0xff;  // no mapping: untranslatable
  struct Map {
    uint8_t type, code;
  };

  /// ICMPv4 destination unreachable (3), by code (RFC 7915 4.2).
  static constexpr std::array<Map, 16> kUnreach4to6 = {{
      {1, 0},          // 0 net unreachable -> no route
      {1, 0},          // 1 host unreachable -> no route
      {4, 1},          // 2 protocol unreachable -> parameter problem, next header (pointer 6)
      {1, 4},          // 3 port unreachable
      {2, 0},          // 4 fragmentation needed -> packet too big (MTU + 20)
      {1, 0},          // 5 source route failed
      {1, 0},          // 6 destination network unknown
      {1, 0},          // 7 destination host unknown
      {1, 0},          // 8 source host isolated
      {1, 1},          // 9 network administratively prohibited
      {1, 1},          // 10 host administratively prohibited
      {1, 0},          // 11 network unreachable for TOS
      {1, 0},          // 12 host unreachable for TOS
      {1, 1},          // 13 communication administratively prohibited
      {kNone, kNone},  // 14 host precedence violation: dropped
      {1, 1},          // 15 precedence cutoff in effect
  }};
  /// ICMPv6 destination unreachable (1), by code (RFC 7915 5.2).
  static constexpr std::array<Map, 5> kUnreach6to4 = {{
      {3, 1},   // 0 no route -> host unreachable
      {3, 10},  // 1 administratively prohibited -> host administratively prohibited
      {3, 1},   // 2 beyond scope of source address -> host unreachable
      {3, 1},   // 3 address unreachable -> host unreachable
      {3, 3},   // 4 port unreachable
  }};
  /// Parameter problem pointers: IPv4 header byte -> IPv6 header byte (RFC 7915 4.2 figure 3)
  /// and back (5.2 figure 6). kNone: a field the other header does not have (dropped).
  static constexpr std::array<uint8_t, 20> kPointer4to6 = {
      0, 1, 4, 4,                          // version/IHL, TOS, total length
      kNone, kNone, kNone, kNone,          // identification, flags/fragment offset
      7, 6, kNone, kNone,                  // TTL, protocol, header checksum
      8, 8, 8, 8, 24, 24, 24, 24};         // source, destination
  static constexpr std::array<uint8_t, 40> kPointer6to4 = {
      0, 1, kNone, kNone, 2, 2, 9, 8,      // version/class, class/label, label, length, nh, hops
      12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,   // source
      16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16};  // destination
  /// RFC 1191 section 7 plateaus at or above the v6 minimum MTU, largest first: for a
  /// fragmentation-needed without an MTU (an RFC 792 router), the largest one below the quoted
  /// packet's total length, 1280 if none (RFC 7915 4.2).
  static constexpr std::array<uint16_t, 7> kPlateaus = {65535, 32000, 17914, 8166,
                                                        4352,  2002,  1492};
  static constexpr uint32_t kMinMtu6 = 1280;
  static constexpr uint32_t kMaxError6 = 1280, kMaxError4 = 576;  // whole IP packet

  /// An ICMP header's type, code and the word after the checksum (host order).
  struct Header {
    uint8_t type = 0, code = 0;
    uint32_t word = 0;
  };

  static uint32_t plateau(uint32_t quoted_total) {
    for (uint16_t p : kPlateaus)
      if (p < quoted_total) return p;
    return kMinMtu6;
  }

  /// ICMPv4 -> ICMPv6 header (RFC 7915 4.2). `quoted_total` is the quoted packet's total
  /// length field (for the MTU plateau). false: untranslatable.
  static bool map46(const Header& in, uint32_t quoted_total, Header* out) {
    *out = Header{};
    switch (in.type) {
      case 8:
      case 0:
        *out = {static_cast<uint8_t>(in.type == 8 ? 128 : 129), 0, in.word};
        return in.code == 0;
      case 3: {
        if (in.code >= kUnreach4to6.size() || kUnreach4to6[in.code].type == kNone) return false;
        const Map m = kUnreach4to6[in.code];
        *out = {m.type, m.code, 0};
        if (in.code == 2) out->word = 6;  // the v6 header's next header field
        if (in.code == 4) {
          const uint32_t mtu4 = in.word & 0xffff;
          out->word = mtu4 ? mtu4 + 20 : plateau(quoted_total);
        }
        return true;
      }
      case 11:
        *out = {3, in.code, 0};
        return in.code <= 1;
      case 12: {
        if (in.code != 0 && in.code != 2) return false;  // 1: missing option, dropped
        const uint32_t ptr = in.word >> 24;
        if (ptr >= kPointer4to6.size() || kPointer4to6[ptr] == kNone) return false;
        *out = {4, 0, kPointer4to6[ptr]};
        return true;
      }
      default:
        return false;  // obsolete, single-hop or unknown types (RFC 7915 4.2): dropped
    }
  }

  /// ICMPv6 -> ICMPv4 header (RFC 7915 5.2). false: untranslatable.
  static bool map64(const Header& in, Header* out) {
    *out = Header{};
    switch (in.type) {
      case 128:
      case 129:
        *out = {static_cast<uint8_t>(in.type == 128 ? 8 : 0), 0, in.word};
        return in.code == 0;
      case 1:
        if (in.code >= kUnreach6to4.size()) return false;
        *out = {kUnreach6to4[in.code].type, kUnreach6to4[in.code].code, 0};
        return true;
      case 2:
        // The v4 MTU is 16 bits; a v6 MTU under 20 + 68 names no usable v4 path.
        if (in.code != 0 || in.word < 20 + 68) return false;
        *out = {3, 4, in.word - 20 > 0xffff ? 0xffffu : in.word - 20};
        return true;
      case 3:
        *out = {11, in.code, 0};
        return in.code <= 1;
      case 4:
        if (in.code == 1) {
          *out = {3, 2, 0};  // unrecognized next header -> protocol unreachable
          return true;
        }
        if (in.code != 0 || in.word >= kPointer6to4.size() || kPointer6to4[in.word] == kNone)
          return false;  // 2 (unrecognized option) and unknown codes: dropped
        *out = {12, 0, uint32_t{kPointer6to4[in.word]} << 24};
        return true;
      default:
        return false;  // MLD, NDP, unknown: dropped
    }
  }

  /// Translate the ICMPv4 message of frame `f` (IPv4 header at `l3_off`, `icmp_len` bytes of
  /// ICMP after it) into ICMPv6: the outer header from src to dst (hop limit = TTL - 1, the
  /// caller checked TTL > 1); for an error, the quoted TCP/UDP packet becomes an IPv6 one
  /// from qsrc:qsport to qdst:qdport (its hop limit as quoted, traffic class = its TOS,
  /// options dropped, its checksum updated when quoted). The message ends where it ended (cut
  /// at 1280 bytes for an error); the frame's start moves back (the caller has the headroom).
  static Xlated to_v6(uint8_t* f, uint32_t l3_off, uint32_t icmp_len, const Ip6& src,
                      const Ip6& dst, const Ip6& qsrc, const Ip6& qdst, uint16_t qsport,
                      uint16_t qdport) {
    using namespace xlate_detail;
    uint8_t* ip = f + l3_off;
    uint8_t* icmp = ip + (ip[0] & 0x0fu) * 4;
    if (icmp_len < 8 || icmp_len > sizeof(Scratch::b)) return {};
    const Header in{icmp[0], icmp[1], load32(icmp + 4)};
    const bool error = in.type == 3 || in.type == 11 || in.type == 12;
    IcmpError::Quote q{};
    if (error && !IcmpError::quote(icmp, icmp_len, &q)) return {};
    Header h;
    if (!map46(in, error ? (q.ip[2] << 8 | q.ip[3]) : 0, &h)) return {};

    Scratch s;
    uint32_t m = 8;
    if (error) {
      const uint32_t qihl = (q.ip[0] & 0x0fu) * 4;
      const uint32_t qtotal = static_cast<uint32_t>(q.ip[2] << 8 | q.ip[3]);
      if (qtotal < qihl) return {};  // shorter than its own header: no length to write
      uint8_t* qip6 = s.b + 8;
      write_ipv6_header(qip6, q.ip[1], static_cast<uint16_t>(qtotal - qihl), q.ip[9], q.ip[8],
                        qsrc, qdst);
      const uint32_t l4n = std::min(q.l4_avail, kMaxError6 - 40 - 8 - 40);
      std::memcpy(qip6 + 40, q.l4, l4n);
      requote(qip6 + 40, l4n, q.ip[9], words(q.ip + 12, 8), words(qip6 + 8, 32), qsport, qdport);
      m += 40 + l4n;
    } else {
      std::memcpy(s.b + 8, icmp + 8, icmp_len - 8);
      m = icmp_len;
    }
    put_header(s.b, h);

    uint8_t* end = icmp + icmp_len;
    const uint8_t tos = ip[1], ttl = ip[8];
    uint8_t l2[32];
    std::memcpy(l2, f, l3_off);
    uint8_t* ip6 = end - m - 40;
    std::memmove(ip6 + 40, s.b, m);
    write_ipv6_header(ip6, tos, static_cast<uint16_t>(m), 58, static_cast<uint8_t>(ttl - 1), src,
                      dst);
    csum_put(ip6 + 40 + 2, csum_pseudo6(ip6 + 8, ip6 + 24, m, 58) + csum_sum(ip6 + 40, m));
    return {put_l2(ip6, l2, l3_off, 0x86, 0xdd), l3_off + 40 + m};
  }

  /// Translate the ICMPv6 message of frame `f` (fixed header at `l3_off`, the ICMPv6 at
  /// `l4_off` after any extension headers, `icmp_len` bytes) into ICMPv4: the outer header
  /// from src to dst (TTL = hop limit - 1, the caller checked it is above 1; identification
  /// `id`, network order; DF by the rule of RFC 7915 5.1); for an error, the quoted TCP/UDP
  /// packet becomes an IPv4 one from qsrc:qsport to qdst:qdport (addresses and ports network
  /// order; TTL as quoted, TOS = its traffic class, extension headers dropped,
  /// identification 0 and DF by the same rule, its checksums computed or updated). Cut at
  /// 576 bytes for an error; the frame's start moves forward.
  static Xlated to_v4(uint8_t* f, uint32_t l3_off, uint32_t l4_off, uint32_t icmp_len,
                      uint32_t src, uint32_t dst, uint32_t qsrc, uint32_t qdst, uint16_t qsport,
                      uint16_t qdport, uint16_t id) {
    using namespace xlate_detail;
    uint8_t* ip6 = f + l3_off;
    uint8_t* icmp = f + l4_off;
    if (icmp_len < 8 || icmp_len > sizeof(Scratch::b)) return {};
    const Header in{icmp[0], icmp[1], load32(icmp + 4)};
    IcmpError6::Quote q{};
    if (IcmpError6::is_error(in.type) && !IcmpError6::quote(icmp, icmp_len, &q)) return {};
    Header h;
    if (!map64(in, &h)) return {};

    Scratch s;
    uint32_t m = 8;
    if (IcmpError6::is_error(in.type)) {
      const uint32_t qext = static_cast<uint32_t>(q.l4 - q.ip) - 40;
      const uint32_t qpayload = static_cast<uint32_t>(q.ip[4] << 8 | q.ip[5]);
      if (qpayload < qext) return {};  // shorter than its extension headers
      const uint32_t qtotal = 20 + qpayload - qext;
      uint8_t* qip = s.b + 8;
      Ipv4Fields qh;
      qh.tos = static_cast<uint8_t>(q.ip[0] << 4 | q.ip[1] >> 4);
      qh.df = qtotal > kDfAbove;
      qh.ttl = q.ip[7];
      qh.proto = q.answer.proto;
      qh.src = qsrc;
      qh.dst = qdst;
      write_ipv4_header(qip, static_cast<uint16_t>(qtotal), qh);
      const uint32_t l4n = std::min(q.l4_avail, kMaxError4 - 20 - 8 - 20);
      std::memcpy(qip + 20, q.l4, l4n);
      requote(qip + 20, l4n, q.answer.proto, words(q.ip + 8, 32), words(qip + 12, 8), qsport,
              qdport);
      m += 20 + l4n;
    } else {
      std::memcpy(s.b + 8, icmp + 8, icmp_len - 8);
      m = icmp_len;
    }
    put_header(s.b, h);
    csum_put(s.b + 2, csum_sum(s.b, m));  // ICMPv4: no pseudo-header

    uint8_t* end = icmp + icmp_len;
    const uint8_t tclass = static_cast<uint8_t>(ip6[0] << 4 | ip6[1] >> 4), hop = ip6[7];
    uint8_t l2[32];
    std::memcpy(l2, f, l3_off);
    uint8_t* ip = end - m - 20;
    std::memmove(ip + 20, s.b, m);
    Ipv4Fields oh;
    oh.tos = tclass;
    oh.df = 20 + m > kDfAbove;
    if (!oh.df) std::memcpy(oh.id, &id, 2);
    oh.ttl = static_cast<uint8_t>(hop - 1);
    oh.proto = 1;
    oh.src = src;
    oh.dst = dst;
    write_ipv4_header(ip, static_cast<uint16_t>(20 + m), oh);
    return {put_l2(ip, l2, l3_off, 0x08, 0x00), l3_off + 20 + m};
  }

 private:
  struct Scratch {
    uint8_t b[2048];
  };
  static uint32_t load32(const uint8_t* p) {
    return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
  }
  static void put_header(uint8_t* icmp, const Header& h) {
    icmp[0] = h.type;
    icmp[1] = h.code;
    icmp[2] = icmp[3] = 0;
    for (int i = 0; i < 4; ++i) icmp[4 + i] = static_cast<uint8_t>(h.word >> (24 - 8 * i));
  }
  static uint8_t* put_l2(uint8_t* l3, const uint8_t* l2, uint32_t l3_off, uint8_t t0,
                         uint8_t t1) {
    uint8_t* nf = l3 - l3_off;
    std::memcpy(nf, l2, l3_off);
    nf[l3_off - 2] = t0;
    nf[l3_off - 1] = t1;
    return nf;
  }
  /// The quoted L4 header (`n` bytes at `l4`) after its addresses' word sum went from
  /// `old_addrs` to `new_addrs`: new ports, and its checksum updated when it is quoted (a
  /// quoted UDP checksum of 0 stays 0: nothing to update, the payload is not all there).
  static void requote(uint8_t* l4, uint32_t n, uint8_t proto, uint64_t old_addrs,
                      uint64_t new_addrs, uint16_t sport, uint16_t dport) {
    using namespace xlate_detail;
    const uint64_t removed = old_addrs + words(l4, 4);
    std::memcpy(l4, &sport, 2);
    std::memcpy(l4 + 2, &dport, 2);
    const bool udp = proto == 17;
    const uint32_t at = udp ? 6 : 16;
    if (n < at + 2 || (udp && l4[6] == 0 && l4[7] == 0)) return;
    csum_update(l4 + at, new_addrs + words(l4, 4), removed, udp);
  }
};

}  // namespace rondo::dp

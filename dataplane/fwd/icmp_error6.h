// ICMPv6 errors about a flow (RFC 4443: destination unreachable, packet too big, time
// exceeded, parameter problem): the v6 twin of icmp_error.h. Found by the packet they quote,
// and sent on to the flow's other end so that path MTU discovery (packet too big is the only
// way a v6 sender learns it: routers never fragment) and unreachable ports work through
// rondo. In full-NAT the error is translated as the quoted packet was (RFC 5508 section 4):
// the outer addresses, the quoted packet's addresses and ports, its TCP/UDP checksum, and the
// ICMPv6 checksum, which covers the IPv6 pseudo-header and is computed again in full.
#pragma once

#include <cstdint>
#include <cstring>

#include "dataplane/flow/key.h"
#include "dataplane/fwd/fullnat6.h"
#include "dataplane/pkt/csum.h"
#include "dataplane/pkt/ip6.h"

namespace rondo::dp {

struct IcmpError6 {
  static constexpr uint8_t kUnreachable = 1, kPacketTooBig = 2, kTimeExceeded = 3,
                           kParamProblem = 4;
  /// The error types rondo relays (RFC 4443 3.1-3.4); informational types are >= 128.
  static bool is_error(uint8_t type) { return type >= kUnreachable && type <= kParamProblem; }

  /// The quoted packet of the ICMPv6 error at `icmp` (`len` bytes): its fixed header, the
  /// extension headers it had (hop-by-hop, routing, destination options; a first fragment),
  /// and at least the first 8 bytes of its TCP or UDP header. The key is the flow key the
  /// quoted packet's *answer* would have (addresses and ports swapped): the key rondo looks
  /// the flow up by. false: too short (a truncated quote), not IPv6, a fragment that is not
  /// the first, a chain rondo does not walk, or not TCP/UDP.
  struct Quote {
    uint8_t* ip;
    uint8_t* l4;
    uint32_t l4_avail;  // quoted L4 bytes present (at least 8)
    FlowKey6 answer;
  };
  static bool quote(uint8_t* icmp, uint32_t len, Quote* q) {
    if (len < 8 + 40 + 8) return false;
    uint8_t* ip = icmp + 8;
    if ((ip[0] >> 4) != 6) return false;
    uint8_t nh = ip[6];
    uint32_t off = 8 + 40;  // from icmp
    // The quoted packet is one rondo or a peer sent: its extension headers are those of a
    // packet rondo forwarded (it never adds any). At most 8, as the parser allows.
    for (int n = 0; n < 8 && nh != 6 && nh != 17; ++n) {
      if (len < off + 8) return false;
      const uint8_t* e = icmp + off;
      if (nh == 0 || nh == 43 || nh == 60) {
        off += (uint32_t{e[1]} + 1) * 8;
      } else if (nh == 44) {
        if (((e[2] << 8 | e[3]) & 0xfff8) != 0) return false;  // a later fragment: no ports
        off += 8;
      } else {
        return false;
      }
      nh = e[0];
    }
    if ((nh != 6 && nh != 17) || len < off + 8) return false;
    q->ip = ip;
    q->l4 = icmp + off;
    q->l4_avail = len - off;
    q->answer = FlowKey6{};
    std::memcpy(q->answer.src_ip, ip + 24, 16);
    std::memcpy(q->answer.dst_ip, ip + 8, 16);
    std::memcpy(&q->answer.src_port, q->l4 + 2, 2);
    std::memcpy(&q->answer.dst_port, q->l4, 2);
    q->answer.proto = nh;
    return true;
  }

  /// Translate an ICMPv6 error in place for full-NAT: the outer header goes from `src` to
  /// `dst` (hop limit one less; the caller checked it is above 1), and the quoted packet
  /// becomes the one the other end sent: from qsrc:qsport to qdst:qdport (ports network
  /// order). The quoted TCP/UDP checksum is updated incrementally when it is quoted; the
  /// ICMPv6 checksum is computed again over the pseudo-header and the `icmp_len` bytes.
  static void translate(uint8_t* ip, uint8_t* icmp, uint32_t icmp_len, const Quote& q,
                        const Ip6& src, const Ip6& dst, const Ip6& qsrc, const Ip6& qdst,
                        uint16_t qsport, uint16_t qdport) {
    ip[7]--;
    std::memcpy(ip + 8, src.b, 16);
    std::memcpy(ip + 24, dst.b, 16);
    // Quoted: addresses and ports, and its L4 checksum when it is there (UDP's is in the
    // first 8 bytes, TCP's at 16). A quoted UDP checksum of 0 (illegal, but it is what was
    // sent) stays 0.
    uint64_t d = csum_swap_addr6(q.ip + 8, qsrc) + csum_swap_addr6(q.ip + 24, qdst);
    d += swap16(q.l4, qsport) + swap16(q.l4 + 2, qdport);
    const bool tcp = q.answer.proto == 6;
    const uint32_t csum_off = tcp ? 16 : 6;
    if (q.l4_avail >= csum_off + 2 && (tcp || q.l4[6] != 0 || q.l4[7] != 0)) {
      uint16_t c;
      std::memcpy(&c, q.l4 + csum_off, 2);
      c = csum_apply(c, d);
      if (!tcp && c == 0) c = 0xffff;
      std::memcpy(q.l4 + csum_off, &c, 2);
    }
    icmp[2] = icmp[3] = 0;
    csum_put(icmp + 2, csum_pseudo6(ip + 8, ip + 24, icmp_len, 58) + csum_sum(icmp, icmp_len));
  }

 private:
  static uint64_t swap16(uint8_t* p, uint16_t v) {
    uint16_t old;
    std::memcpy(&old, p, 2);
    std::memcpy(p, &v, 2);
    return csum_delta16(old, v);
  }
};

}  // namespace rondo::dp

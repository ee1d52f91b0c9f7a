// ICMP errors about a flow (RFC 792: destination unreachable, fragmentation needed among
// them, and time exceeded): found by the packet they quote, and sent on to the flow's other
// end, so that path MTU discovery and unreachable ports work through rondo. In full-NAT the
// error is translated as the quoted packet was (RFC 5508 section 4: the outer addresses, the
// quoted packet's addresses and ports, their checksums, and the ICMP checksum); in the DSR
// modes it goes to the backend unchanged inside the mode's encapsulation (the backend's
// stack matches it to its socket, which talks from the VIP).
#pragma once

#include <cstdint>
#include <cstring>

#include "dataplane/flow/key.h"
#include "dataplane/pkt/csum.h"

namespace rondo::dp {

struct IcmpError {
  static constexpr uint8_t kUnreachable = 3, kTimeExceeded = 11;
  static bool is_error(uint8_t type) { return type == kUnreachable || type == kTimeExceeded; }

  /// The quoted packet of the ICMP message at `icmp` (`len` bytes): its IPv4 header and the
  /// first 8 bytes of its TCP or UDP header at least (RFC 792 promises them). The key is the
  /// flow key the quoted packet's *answer* would have (its addresses and ports swapped): the
  /// key rondo looks the flow up by. false: too short, not IPv4, a fragment that is not the
  /// first, or not TCP/UDP.
  struct Quote {
    uint8_t* ip;
    uint8_t* l4;
    uint32_t l4_avail;  // quoted L4 bytes present (at least 8)
    FlowKey answer;
  };
  static bool quote(uint8_t* icmp, uint32_t len, Quote* q) {
    if (len < 8 + 20 + 8) return false;
    uint8_t* ip = icmp + 8;
    const uint32_t ihl = (ip[0] & 0x0fu) * 4;
    if ((ip[0] >> 4) != 4 || ihl < 20 || len < 8 + ihl + 8) return false;
    if (((ip[6] & 0x1f) | ip[7]) != 0) return false;  // a later fragment quotes no ports
    if (ip[9] != 6 && ip[9] != 17) return false;
    q->ip = ip;
    q->l4 = ip + ihl;
    q->l4_avail = len - 8 - ihl;
    q->answer = FlowKey{};
    std::memcpy(&q->answer.src_ip, ip + 16, 4);
    std::memcpy(&q->answer.dst_ip, ip + 12, 4);
    std::memcpy(&q->answer.src_port, q->l4 + 2, 2);
    std::memcpy(&q->answer.dst_port, q->l4, 2);
    q->answer.proto = ip[9];
    return true;
  }

  /// Translate an ICMP error in place for full-NAT: the outer header goes from `src` to `dst`
  /// (TTL one less; the caller checked it is above 1), and the quoted packet becomes the one
  /// the other end sent: from qsrc:qsport to qdst:qdport (all network order). The quoted
  /// header's checksum and (when quoted) its TCP/UDP checksum are updated incrementally; the
  /// ICMP checksum is computed again over the whole message.
  static void translate(uint8_t* ip, uint8_t* icmp, uint32_t icmp_len, const Quote& q,
                        uint32_t src, uint32_t dst, uint32_t qsrc, uint32_t qdst, uint16_t qsport,
                        uint16_t qdport) {
    // Outer: addresses and TTL (header checksum, incrementally).
    uint64_t d = swap32(ip + 12, src) + swap32(ip + 16, dst);
    uint16_t ttl_word_old, ttl_word_new;
    std::memcpy(&ttl_word_old, ip + 8, 2);
    ip[8]--;
    std::memcpy(&ttl_word_new, ip + 8, 2);
    d += csum_delta16(ttl_word_old, ttl_word_new);
    apply(ip + 10, d);
    // Quoted: addresses (its header checksum), ports, and its L4 checksum when it is there
    // (UDP's is in the first 8 bytes, TCP's at 16; a UDP checksum of 0 stays 0).
    const uint64_t da = swap32(q.ip + 12, qsrc) + swap32(q.ip + 16, qdst);
    apply(q.ip + 10, da);
    const uint64_t dp = da + swap16(q.l4, qsport) + swap16(q.l4 + 2, qdport);
    const uint32_t csum_off = q.ip[9] == 6 ? 16 : 6;
    if (q.l4_avail >= csum_off + 2 && !(q.ip[9] == 17 && q.l4[6] == 0 && q.l4[7] == 0))
      apply(q.l4 + csum_off, dp);
    // The ICMP checksum covers the whole message: computed again.
    icmp[2] = icmp[3] = 0;
    csum_put(icmp + 2, csum_sum(icmp, icmp_len));
  }

 private:
  // Replace a 32/16-bit field (network order) and return its checksum delta.
  static uint64_t swap32(uint8_t* p, uint32_t v) {
    uint32_t old;
    std::memcpy(&old, p, 4);
    std::memcpy(p, &v, 4);
    return csum_delta32(old, v);
  }
  static uint64_t swap16(uint8_t* p, uint16_t v) {
    uint16_t old;
    std::memcpy(&old, p, 2);
    std::memcpy(p, &v, 2);
    return csum_delta16(old, v);
  }
  static void apply(uint8_t* field, uint64_t delta) {
    uint16_t c;
    std::memcpy(&c, field, 2);
    c = csum_apply(c, delta);
    std::memcpy(field, &c, 2);
  }
};

}  // namespace rondo::dp

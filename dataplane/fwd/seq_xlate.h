// Sequence translation: shifting a TCP connection's sequence space in one direction, for
// anything that makes the two ends see different numbers. SYN cookies (synproxy.h) answer the
// client with their own ISN, so the backend's numbers differ from the client's view by a
// constant. Inserting N bytes at the start of a client's stream (a header for the backend)
// is the same thing the other way round: the client's numbers grow by N towards the backend.
//
// One call shifts one segment: its sequence number by `seq_add`, its acknowledgement and
// every SACK block edge (RFC 2018, option 5: they acknowledge the peer's data, like ack) by
// `ack_add`. Both are modulo 2^32 (a negative shift is its two's complement). The TCP
// checksum is updated incrementally (RFC 1624), once for all fields.
//   SYN cookies, delta = backend ISN - cookie:  backend -> client: seq_add = -delta;
//                                               client -> backend: ack_add = +delta.
//   N bytes inserted towards the backend:        client -> backend: seq_add = +N;
//                                               backend -> client: ack_add = -N.
#pragma once

#include <cstdint>
#include <cstring>

#include "dataplane/pkt/csum.h"
#include "dataplane/pkt/tcp_opts.h"

namespace rondo::dp {

namespace seqx {

inline uint32_t ld32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;  // as stored (network order)
}
inline uint32_t be_add(uint32_t stored, uint32_t add) {
  return __builtin_bswap32(__builtin_bswap32(stored) + add);
}

}  // namespace seqx

/// Shift a TCP segment's sequence space in place. tcp points at the header, hlen is its length
/// (the data offset in bytes, checked by the parser). ack_add applies only when ACK is set
/// (otherwise the field means nothing and is left alone). SACK edges move by sack_add (the
/// same as ack_add but where the ack is clamped: ProxyV2::to_client).
inline void tcp_seq_shift(uint8_t* tcp, uint32_t hlen, uint32_t seq_add, uint32_t ack_add,
                          uint32_t sack_add) {
  constexpr uint8_t kAckFlag = 0x10;
  uint64_t d = 0;
  if (seq_add != 0) {
    const uint32_t o = seqx::ld32(tcp + 4), n = seqx::be_add(o, seq_add);
    std::memcpy(tcp + 4, &n, 4);
    d += csum_delta32(o, n);
  }
  if (ack_add != 0 && (tcp[13] & kAckFlag)) {
    const uint32_t o = seqx::ld32(tcp + 8), n = seqx::be_add(o, ack_add);
    std::memcpy(tcp + 8, &n, 4);
    d += csum_delta32(o, n);
  }
  if (sack_add != 0 && (tcp[13] & kAckFlag)) {
    // SACK blocks: pairs of 32-bit edges.
    tcp_for_each_option(tcp, hlen, [&](uint8_t kind, uint32_t i, uint8_t len) {
      if (kind != kTcpOptSack || len < 10 || (len - 2) % 8 != 0) return;
      for (uint32_t e = i + 2; e + 4 <= i + len; e += 4) {
        const uint32_t eo = seqx::ld32(tcp + e), en = seqx::be_add(eo, sack_add);
        std::memcpy(tcp + e, &en, 4);
        d += csum_delta32(eo, en);
      }
    });
  }
  if (d == 0) return;
  uint16_t c;
  std::memcpy(&c, tcp + 16, 2);
  c = csum_apply(c, d);
  std::memcpy(tcp + 16, &c, 2);
}

/// The same with SACK edges moving with the ack.
inline void tcp_seq_shift(uint8_t* tcp, uint32_t hlen, uint32_t seq_add, uint32_t ack_add) {
  tcp_seq_shift(tcp, hlen, seq_add, ack_add, ack_add);
}

/// Set a TCP segment's window field (host order value) with its checksum.
inline void tcp_set_window(uint8_t* tcp, uint16_t win) {
  uint16_t o, n = static_cast<uint16_t>(win << 8 | win >> 8);
  std::memcpy(&o, tcp + 14, 2);
  if (o == n) return;
  std::memcpy(tcp + 14, &n, 2);
  uint16_t c;
  std::memcpy(&c, tcp + 16, 2);
  c = csum_replace16(c, o, n);
  std::memcpy(tcp + 16, &c, 2);
}

}  // namespace rondo::dp

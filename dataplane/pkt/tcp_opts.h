// TCP header fields and options (RFC 9293 3.1) read from plain bytes: the one option walker
// the tracker (window scale), the SYN proxy (MSS, window scale, SACK-permitted) and sequence
// translation (SACK blocks) share.
#pragma once

#include <cstdint>

namespace rondo::dp {

inline constexpr uint8_t kTcpOptEnd = 0, kTcpOptNop = 1, kTcpOptMss = 2, kTcpOptWscale = 3,
                         kTcpOptSackPerm = 4, kTcpOptSack = 5;

inline uint16_t tcp_rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t tcp_rd32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
/// Header length in bytes, from the data offset.
inline uint32_t tcp_hlen(const uint8_t* tcp) { return static_cast<uint32_t>(tcp[12] >> 4) * 4; }

/// Call fn(kind, offset, length) for every option of a TCP header of hlen bytes that has a
/// length byte (offset: of the kind byte, from the start of the header). NOPs are skipped;
/// END, or a length that is too short or runs past the header, ends the walk: what follows
/// is ignored, as an endpoint ignores it.
template <typename Fn>
inline void tcp_for_each_option(const uint8_t* tcp, uint32_t hlen, Fn&& fn) {
  for (uint32_t i = 20; i < hlen;) {
    const uint8_t kind = tcp[i];
    if (kind == kTcpOptEnd) break;
    if (kind == kTcpOptNop) {
      ++i;
      continue;
    }
    if (i + 1 >= hlen) break;
    const uint8_t len = tcp[i + 1];
    if (len < 2 || i + len > hlen) break;
    fn(kind, i, len);
    i += len;
  }
}

}  // namespace rondo::dp

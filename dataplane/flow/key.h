// Flow keys: the 5-tuple of a packet as it is received, in network byte order, and their
// keyed hash.
#pragma once

#include <cstdint>
#include <cstring>

#include "dataplane/flow/siphash.h"

namespace rondo::dp {

struct FlowKey {
  uint32_t src_ip = 0;  // network order
  uint32_t dst_ip = 0;
  uint16_t src_port = 0;  // network order
  uint16_t dst_port = 0;
  uint8_t proto = 0;
  uint8_t pad[3] = {};  // always zero, so keys compare as 16 plain bytes

  bool operator==(const FlowKey& o) const { return std::memcmp(this, &o, sizeof o) == 0; }
};
static_assert(sizeof(FlowKey) == 16);

/// Bytes of a FlowKey that carry the tuple (the rest is padding).
inline constexpr size_t kFlowKeyBytes = 13;

/// 64-bit keyed hash of a flow key: SipHash-1-3 of its 13 tuple bytes, equal to
/// siphash<1, 3>(key, &k, 13). Two message blocks (bytes 0-7; bytes 8-12 with the length in
/// the top byte) and three finishing rounds: five SipRounds (the padded 16 bytes would take
/// six). The flow table takes its two bucket choices from the two
/// 32-bit halves (docs/security.md, "Keyed hashing").
inline uint64_t flow_hash(const FlowKey& k, const HashKey& key) {
  uint64_t w[2];
  std::memcpy(w, &k, sizeof w);
  sip::State s = sip::init(key);
  if constexpr (std::endian::native == std::endian::big) {
    w[0] = __builtin_bswap64(w[0]);
    w[1] = __builtin_bswap64(w[1]);
  }
  sip::absorb<1>(s, w[0]);
  // Bytes 13-15 are padding: masked off (not trusted to be zero), then the length byte.
  sip::absorb<1>(s, (w[1] & 0x000000ffffffffffull) | uint64_t{kFlowKeyBytes} << 56);
  return sip::finish<3>(s);
}

/// The 5-tuple of an IPv6 packet (and of a NAT46/NAT64 flow, its v4 side written
/// IPv4-mapped), network order. v6 flows live in a table of their own (FlowTable6), so the
/// v4 key and record keep their size.
struct FlowKey6 {
  uint8_t src_ip[16] = {};
  uint8_t dst_ip[16] = {};
  uint16_t src_port = 0;  // network order
  uint16_t dst_port = 0;
  uint8_t proto = 0;
  uint8_t pad[3] = {};  // always zero, so keys compare as 40 plain bytes

  bool operator==(const FlowKey6& o) const { return std::memcmp(this, &o, sizeof o) == 0; }
};
static_assert(sizeof(FlowKey6) == 40);

/// Bytes of a FlowKey6 that carry the tuple.
inline constexpr size_t kFlowKey6Bytes = 37;

/// 64-bit keyed hash of a v6 flow key: SipHash-1-3 of its 37 tuple bytes under the same
/// secret as flow_hash (equal to siphash<1, 3>(key, &k, 37)).
inline uint64_t flow_hash6(const FlowKey6& k, const HashKey& key) {
  uint64_t w[5];
  std::memcpy(w, &k, sizeof w);
  if constexpr (std::endian::native == std::endian::big) {
    for (auto& x : w) x = __builtin_bswap64(x);
  }
  sip::State s = sip::init(key);
  for (int i = 0; i < 4; ++i) sip::absorb<1>(s, w[i]);
  // Bytes 37-39 are padding: masked off, then the length byte.
  sip::absorb<1>(s, (w[4] & 0x000000ffffffffffull) | uint64_t{kFlowKey6Bytes} << 56);
  return sip::finish<3>(s);
}

}  // namespace rondo::dp

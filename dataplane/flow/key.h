// Flow keys: the 5-tuple of a packet as it is received, in network byte order.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

namespace rondo::dp {

struct FlowKey {
  uint32_t src_ip = 0;  // network order
  uint32_t dst_ip = 0;
  uint16_t src_port = 0;  // network order
  uint16_t dst_port = 0;
  uint8_t proto = 0;
  uint8_t pad[3] = {};  // always zero, so keys compare and hash as 16 plain bytes

  bool operator==(const FlowKey& o) const { return std::memcmp(this, &o, sizeof o) == 0; }
};
static_assert(sizeof(FlowKey) == 16);

#if defined(__x86_64__) && defined(__SSE4_2__)
// CRC32-C over the 16 key bytes. With SSE4.2 known at compile time (DPDK builds with
// -march=corei7) the instruction is used inline: rte_hash_crc() gives the same value but
// branches on a runtime flag per call and drags librte_eal into every binary that links
// the table (its RTE_INIT probe), unit tests included.

/// 32-bit hash of a key. Never returns 0: 0 marks an empty slot in the table.
inline uint32_t flow_hash(const FlowKey& k) {
  uint64_t w[2];
  std::memcpy(w, &k, sizeof w);
  uint64_t h = _mm_crc32_u64(0xdeadbeef, w[0]);
  h = _mm_crc32_u64(h, w[1]);
  const auto h32 = static_cast<uint32_t>(h);
  return h32 != 0 ? h32 : 1;
}

/// A second hash derived from a flow hash (picks the table's second bucket).
inline uint32_t flow_rehash(uint32_t hash) { return _mm_crc32_u32(0x9e3779b9, hash); }
#else
uint32_t flow_hash(const FlowKey& k);
uint32_t flow_rehash(uint32_t hash);
#endif

}  // namespace rondo::dp

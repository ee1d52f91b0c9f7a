// Flow keys: the 5-tuple of a packet as it is received, in network byte order.
#pragma once

#include <cstdint>
#include <cstring>

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

/// 32-bit hash of a key (CRC32-C where the CPU has it). Never returns 0:
/// 0 marks an empty slot in the table.
uint32_t flow_hash(const FlowKey& k);

}  // namespace rondo::dp

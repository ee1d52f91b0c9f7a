// Incremental Internet checksum update (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')).
// All values are taken as they sit in the packet (network order): one's complement
// addition is byte-order independent as long as every operand has the same order.
#pragma once

#include <cstdint>

namespace rondo::dp {

inline uint16_t csum_fold(uint32_t sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

/// Checksum after one 16-bit field changed from `from` to `to`.
inline uint16_t csum_replace16(uint16_t csum, uint16_t from, uint16_t to) {
  uint32_t sum = static_cast<uint16_t>(~csum);
  sum += static_cast<uint16_t>(~from);
  sum += to;
  return static_cast<uint16_t>(~csum_fold(sum));
}

/// Checksum after one 32-bit field (an IPv4 address) changed from `from` to `to`.
inline uint16_t csum_replace32(uint16_t csum, uint32_t from, uint32_t to) {
  uint32_t sum = static_cast<uint16_t>(~csum);
  sum += static_cast<uint16_t>(~from & 0xffff);
  sum += static_cast<uint16_t>(~from >> 16);
  sum += to & 0xffff;
  sum += to >> 16;
  return static_cast<uint16_t>(~csum_fold(sum));
}

}  // namespace rondo::dp

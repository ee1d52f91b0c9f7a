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

/// Fold a 64-bit one's complement accumulator (of 16- or 32-bit words) to 16 bits.
inline uint16_t csum_fold64(uint64_t sum) {
  sum = (sum & 0xffffffff) + (sum >> 32);
  sum = (sum & 0xffffffff) + (sum >> 32);
  return csum_fold(static_cast<uint32_t>(sum & 0xffff) + static_cast<uint32_t>(sum >> 16));
}

/// The accumulated change of a 32-bit field from `from` to `to`: add several of these,
/// then apply them at once with csum_apply (RFC 1624 eqn. 3, for many fields).
inline uint64_t csum_delta32(uint32_t from, uint32_t to) { return uint64_t{~from} + to; }
inline uint64_t csum_delta16(uint16_t from, uint16_t to) {
  return uint64_t{static_cast<uint16_t>(~from)} + to;
}
/// Checksum after the changes summed in `delta`.
inline uint16_t csum_apply(uint16_t csum, uint64_t delta) {
  return static_cast<uint16_t>(~csum_fold64(uint64_t{static_cast<uint16_t>(~csum)} + delta));
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

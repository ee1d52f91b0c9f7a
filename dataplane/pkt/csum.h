// Incremental Internet checksum update (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')).
// All values are taken as they sit in the packet (network order): one's complement
// addition is byte-order independent as long as every operand has the same order.
#pragma once

#include <cstdint>
#include <cstring>

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

/// One's complement sum of `len` bytes (an odd last byte padded with zero), unfolded.
inline uint64_t csum_sum(const uint8_t* p, uint32_t len) {
  uint64_t sum = 0;
  for (; len >= 2; p += 2, len -= 2) sum += static_cast<uint32_t>(p[0] << 8 | p[1]);
  if (len) sum += static_cast<uint32_t>(p[0] << 8);
  return sum;
}

/// Store the checksum of a csum_sum (with the field zeroed) at p, in network order.
inline void csum_put(uint8_t* p, uint64_t sum) {
  const auto c = static_cast<uint16_t>(~csum_fold64(sum));
  p[0] = static_cast<uint8_t>(c >> 8);
  p[1] = static_cast<uint8_t>(c);
}

/// The fields of an IPv4 header rondo writes itself (no options). Addresses network order.
struct Ipv4Fields {
  uint8_t tos = 0;
  uint8_t id[2] = {};  // as on the wire
  bool df = false;
  uint8_t ttl = 64;
  uint8_t proto = 0;
  uint32_t src = 0, dst = 0;
};

/// Write a 20-byte IPv4 header for `total` bytes (header included), its checksum computed:
/// the one writer of the headers rondo makes (SYN proxy segments, encapsulation, ICMP).
inline void write_ipv4_header(uint8_t* ip, uint16_t total, const Ipv4Fields& f) {
  ip[0] = 0x45;
  ip[1] = f.tos;
  ip[2] = static_cast<uint8_t>(total >> 8);
  ip[3] = static_cast<uint8_t>(total);
  ip[4] = f.id[0];
  ip[5] = f.id[1];
  ip[6] = f.df ? 0x40 : 0;
  ip[7] = 0;
  ip[8] = f.ttl;
  ip[9] = f.proto;
  ip[10] = ip[11] = 0;
  std::memcpy(ip + 12, &f.src, 4);
  std::memcpy(ip + 16, &f.dst, 4);
  csum_put(ip + 10, csum_sum(ip, 20));
}

/// True if an IPv4 header of `ihl` bytes (checksum field included) verifies.
inline bool ipv4_header_csum_ok(const uint8_t* ip, uint32_t ihl) {
  return csum_fold64(csum_sum(ip, ihl)) == 0xffff;
}

/// True if the TCP or UDP checksum of a segment verifies (RFC 9293 3.1, RFC 768): the
/// pseudo-header (addresses, protocol, length) plus the segment, checksum field included.
/// A UDP checksum of 0 means "none sent" and passes.
inline bool l4_csum_ok(const uint8_t* ip, const uint8_t* l4, uint32_t l4_len, uint8_t proto) {
  if (proto == 17 && l4_len >= 8 && l4[6] == 0 && l4[7] == 0) return true;
  uint64_t sum = csum_sum(ip + 12, 8) + proto + l4_len + csum_sum(l4, l4_len);
  return csum_fold64(sum) == 0xffff;
}

/// The IPv6 pseudo-header's sum (RFC 8200 8.1), unfolded: source and destination address,
/// the upper-layer length as 32 bits and the next header. `upper_len` is the length of the
/// TCP/UDP/ICMPv6 packet itself, which is the payload length less any extension headers.
inline uint64_t csum_pseudo6(const uint8_t* src, const uint8_t* dst, uint32_t upper_len,
                             uint8_t next_header) {
  return csum_sum(src, 16) + csum_sum(dst, 16) + (upper_len >> 16) + (upper_len & 0xffff) +
         next_header;
}

/// True if the TCP, UDP or ICMPv6 checksum of an upper-layer packet in the IPv6 datagram at
/// `ip6` verifies: the pseudo-header plus the packet, checksum field included. `l4_len` is
/// the upper-layer length (Parsed::l4_len()). A UDP checksum of 0 fails: IPv6 has no
/// "none sent" (RFC 8200 8.1).
inline bool l4_csum_ok6(const uint8_t* ip6, const uint8_t* l4, uint32_t l4_len,
                        uint8_t next_header) {
  if (next_header == 17 && l4_len >= 8 && l4[6] == 0 && l4[7] == 0) return false;
  const uint64_t sum = csum_pseudo6(ip6 + 8, ip6 + 24, l4_len, next_header) + csum_sum(l4, l4_len);
  return csum_fold64(sum) == 0xffff;
}

}  // namespace rondo::dp

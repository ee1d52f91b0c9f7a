// Full-NAT rewrite: client -> VIP:vport becomes local_ip:lport -> backend:bport, and the
// backend's reply is translated back. Checksums are updated incrementally (RFC 1624):
// the IPv4 header checksum for the addresses and TTL, the TCP/UDP checksum for the
// pseudo-header addresses and the ports. A UDP checksum of 0 means "none" (RFC 768) and
// stays 0; a computed 0 is sent as 0xffff.
#pragma once

#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include <cstdint>
#include <cstring>

#include "dataplane/pkt/csum.h"

namespace rondo::dp {

struct FullNat {
  /// Rewrite addresses and ports (all network order) of an IPv4 TCP/UDP packet in place
  /// and decrement its TTL. The caller has checked TTL > 1 and the header lengths.
  static void rewrite(uint8_t* ip, uint8_t* l4, uint8_t proto, uint32_t src, uint32_t dst,
                      uint16_t sport, uint16_t dport) {
    auto* h = reinterpret_cast<rte_ipv4_hdr*>(ip);
    uint32_t old_src, old_dst;
    std::memcpy(&old_src, &h->src_addr, 4);
    std::memcpy(&old_dst, &h->dst_addr, 4);
    uint16_t old_ttl_word, new_ttl_word;
    std::memcpy(&old_ttl_word, &h->time_to_live, 2);  // TTL and protocol share a word
    h->time_to_live--;
    std::memcpy(&new_ttl_word, &h->time_to_live, 2);

    // The addresses are in both checksums (the L4 one through the pseudo-header): sum
    // their change once, fold once per checksum.
    const uint64_t addrs = csum_delta32(old_src, src) + csum_delta32(old_dst, dst);
    h->hdr_checksum = csum_apply(h->hdr_checksum, addrs + csum_delta16(old_ttl_word, new_ttl_word));
    std::memcpy(&h->src_addr, &src, 4);
    std::memcpy(&h->dst_addr, &dst, 4);

    uint16_t old_sport, old_dport;
    std::memcpy(&old_sport, l4, 2);
    std::memcpy(&old_dport, l4 + 2, 2);
    std::memcpy(l4, &sport, 2);
    std::memcpy(l4 + 2, &dport, 2);

    uint8_t* csum_at = proto == IPPROTO_TCP ? l4 + offsetof(rte_tcp_hdr, cksum)
                                            : l4 + offsetof(rte_udp_hdr, dgram_cksum);
    uint16_t l4c;
    std::memcpy(&l4c, csum_at, 2);
    if (proto == IPPROTO_UDP && l4c == 0) return;
    l4c = csum_apply(l4c, addrs + csum_delta16(old_sport, sport) + csum_delta16(old_dport, dport));
    if (proto == IPPROTO_UDP && l4c == 0) l4c = 0xffff;
    std::memcpy(csum_at, &l4c, 2);
  }
};

}  // namespace rondo::dp

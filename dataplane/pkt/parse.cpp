#include "dataplane/pkt/parse.h"

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include <cstring>

#include "dataplane/pkt/csum.h"

namespace rondo::dp {
namespace {

inline bool fail(DropReason* why, DropReason r) {
  *why = r;
  return false;
}

inline uint16_t load_be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

}  // namespace

bool parse_frame(const uint8_t* f, uint32_t len, Parsed* p, DropReason* why) {
  if (len < sizeof(rte_ether_hdr)) return fail(why, DropReason::kMalformedL2);
  // No station sends from a group address: answering one would broadcast the answer.
  if (f[6] & 1) return fail(why, DropReason::kBadSourceMac);
  uint32_t off = sizeof(rte_ether_hdr);
  uint16_t ethertype = load_be16(f + 12);
  p->vlan = false;
  if (ethertype == RTE_ETHER_TYPE_VLAN) {
    if (len < off + sizeof(rte_vlan_hdr)) return fail(why, DropReason::kMalformedL2);
    p->vlan = true;
    ethertype = load_be16(f + off + 2);
    off += sizeof(rte_vlan_hdr);
  }
  p->l3_off = static_cast<uint16_t>(off);

  if (ethertype == RTE_ETHER_TYPE_ARP) {
    if (len < off + sizeof(rte_arp_hdr)) return fail(why, DropReason::kMalformedArp);
    rte_arp_hdr arp;
    std::memcpy(&arp, f + off, sizeof arp);
    if (arp.arp_hardware != RTE_BE16(RTE_ARP_HRD_ETHER) ||
        arp.arp_protocol != RTE_BE16(RTE_ETHER_TYPE_IPV4) || arp.arp_hlen != RTE_ETHER_ADDR_LEN ||
        arp.arp_plen != 4)
      return fail(why, DropReason::kMalformedArp);
    p->kind = PktKind::kArp;
    return true;
  }
  if (ethertype != RTE_ETHER_TYPE_IPV4) return fail(why, DropReason::kUnsupportedL3);

  if (len < off + sizeof(rte_ipv4_hdr)) return fail(why, DropReason::kMalformedL3);
  const uint8_t* ip = f + off;
  const uint8_t version = ip[0] >> 4;
  const uint32_t ihl = (ip[0] & 0x0f) * 4u;
  const uint16_t total = load_be16(ip + 2);
  // A datagram longer than an Ethernet MTU of which the frame holds less is what an
  // af_packet reader gets of a GSO/GRO super-frame (segmentation offloads left on at the
  // interface): named, so that the operator sees why (docs/deploy.md, "Host preparation").
  if (version == 4 && total > kEthernetMtu && off + total > len) return fail(why, DropReason::kGsoFrame);
  // The frame may carry Ethernet padding after the datagram, never less than it claims.
  if (version != 4 || ihl < sizeof(rte_ipv4_hdr) || total < ihl || off + total > len)
    return fail(why, DropReason::kMalformedL3);
  if (!ipv4_header_csum_ok(ip, ihl)) return fail(why, DropReason::kBadIpChecksum);
  // No host sends from these (RFC 1122 3.2.1.3, RFC 5735): spoofed or broken, never a flow.
  const uint8_t src_net = ip[12];
  if (src_net == 0 || src_net == 127 || src_net >= 224) return fail(why, DropReason::kMartianSource);
  const uint16_t frag = load_be16(ip + 6);
  if (frag & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK))
    return fail(why, DropReason::kIpFragment);

  p->ip_len = total;
  p->ttl = ip[8];
  p->l4_off = static_cast<uint16_t>(off + ihl);
  p->tcp_flags = 0;
  p->key = FlowKey{};
  std::memcpy(&p->key.src_ip, ip + 12, 4);
  std::memcpy(&p->key.dst_ip, ip + 16, 4);
  p->key.proto = ip[9];
  const uint8_t* l4 = ip + ihl;
  const uint32_t l4_len = total - ihl;

  switch (ip[9]) {
    case IPPROTO_TCP: {
      if (l4_len < sizeof(rte_tcp_hdr)) return fail(why, DropReason::kMalformedL4);
      const uint32_t doff = (l4[12] >> 4) * 4u;
      if (doff < sizeof(rte_tcp_hdr) || doff > l4_len) return fail(why, DropReason::kMalformedL4);
      std::memcpy(&p->key.src_port, l4, 2);
      std::memcpy(&p->key.dst_port, l4 + 2, 2);
      if (!p->key.src_port || !p->key.dst_port) return fail(why, DropReason::kPortZero);
      p->tcp_flags = l4[13];
      if (!tcp_flags_sane(p->tcp_flags)) return fail(why, DropReason::kBadTcpFlags);
      p->kind = PktKind::kIpv4Tcp;
      return true;
    }
    case IPPROTO_UDP: {
      if (l4_len < sizeof(rte_udp_hdr)) return fail(why, DropReason::kMalformedL4);
      const uint16_t ulen = load_be16(l4 + 4);
      if (ulen < sizeof(rte_udp_hdr) || ulen > l4_len) return fail(why, DropReason::kMalformedL4);
      std::memcpy(&p->key.src_port, l4, 2);
      std::memcpy(&p->key.dst_port, l4 + 2, 2);
      if (!p->key.src_port || !p->key.dst_port) return fail(why, DropReason::kPortZero);
      p->kind = PktKind::kIpv4Udp;
      return true;
    }
    case IPPROTO_ICMP:
      if (l4_len < sizeof(rte_icmp_hdr)) return fail(why, DropReason::kMalformedL4);
      p->kind = PktKind::kIpv4Icmp;
      return true;
    default:
      p->kind = PktKind::kIpv4Other;
      return true;
  }
}

}  // namespace rondo::dp

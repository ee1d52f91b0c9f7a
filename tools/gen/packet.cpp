#include "tools/gen/packet.h"

#include <rte_arp.h>

#include <algorithm>

namespace rondo::gen {
namespace {

constexpr uint8_t kTtl = 64;
constexpr uint8_t kIpProtoIpip = 4;

inline uint32_t be32(uint32_t v) { return rte_cpu_to_be_32(v); }
inline uint16_t be16(uint16_t v) { return rte_cpu_to_be_16(v); }

void swap_bytes(uint8_t* a, uint8_t* b, size_t n) {
  uint8_t tmp[8];
  std::memcpy(tmp, a, n);
  std::memcpy(a, b, n);
  std::memcpy(b, tmp, n);
}

// Common part of tcp_reply/udp_reply: Ethernet and IPv4 turned around.
void turn_around(Rx* rx, const Mac& src_mac, const Mac& dst_mac) {
  auto* eth = reinterpret_cast<rte_ether_hdr*>(rx->frame);
  std::memcpy(eth->dst_addr.addr_bytes, dst_mac.data(), 6);
  std::memcpy(eth->src_addr.addr_bytes, src_mac.data(), 6);
  swap_bytes(reinterpret_cast<uint8_t*>(&rx->ip->src_addr), reinterpret_cast<uint8_t*>(&rx->ip->dst_addr), 4);
  std::swap(rx->src, rx->dst);
  rx->ip->time_to_live = kTtl;
  swap_bytes(rx->l4, rx->l4 + 2, 2);
  std::swap(rx->sport, rx->dport);
}

void set_frame_len(rte_mbuf* m, uint32_t len) {
  len = std::max<uint32_t>(len, kMinFrame);  // Ethernet padding; IPv4 total length says the rest
  m->data_len = static_cast<uint16_t>(len);
  m->pkt_len = len;
}

}  // namespace

Template make_template(const TemplateSpec& s) {
  Template t;
  t.tcp = s.proto == IPPROTO_TCP;
  t.stamped = s.ip_id == kStampMark;
  const uint16_t hdrs = t.tcp ? kTcpDataOff : kUdpDataOff;
  t.len = std::max<uint16_t>(s.frame_len, kMinFrame);
  // Control segments carry no payload: only Ethernet padding up to the minimum frame.
  const bool has_payload = !t.tcp || t.stamped;
  t.payload_off = hdrs;
  t.payload_len = has_payload ? static_cast<uint16_t>(t.len - hdrs) : 0;
  if (!has_payload) t.len = std::max<uint16_t>(hdrs, kMinFrame);

  uint8_t* f = t.bytes.data();
  auto* eth = reinterpret_cast<rte_ether_hdr*>(f);
  std::memcpy(eth->dst_addr.addr_bytes, s.dst_mac.data(), 6);
  std::memcpy(eth->src_addr.addr_bytes, s.src_mac.data(), 6);
  eth->ether_type = be16(RTE_ETHER_TYPE_IPV4);

  const uint16_t ip_len = static_cast<uint16_t>(hdrs - kIpOff + t.payload_len);
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(f + kIpOff);
  ip->version_ihl = RTE_IPV4_VHL_DEF;
  ip->total_length = be16(ip_len);
  ip->packet_id = be16(s.ip_id);
  ip->fragment_offset = 0;
  ip->time_to_live = kTtl;
  ip->next_proto_id = s.proto;
  ip->dst_addr = be32(s.dst_ip);
  t.ip_sum = sum_words(ip, sizeof *ip);  // src_addr and hdr_checksum are still zero

  const uint16_t l4_len = static_cast<uint16_t>(ip_len - sizeof(rte_ipv4_hdr));
  if (t.tcp) {
    auto* tcp = reinterpret_cast<rte_tcp_hdr*>(f + kL4Off);
    tcp->dst_port = be16(s.dst_port);
    tcp->data_off = (sizeof(rte_tcp_hdr) / 4) << 4;
    tcp->tcp_flags = s.tcp_flags;
    tcp->rx_win = be16(65535);
  } else {
    auto* udp = reinterpret_cast<rte_udp_hdr*>(f + kL4Off);
    udp->dst_port = be16(s.dst_port);
    udp->dgram_len = be16(l4_len);
  }
  // Pseudo-header without the source address: destination, protocol, L4 length.
  uint32_t sum = words32(ip->dst_addr);
  sum += be16(s.proto);
  sum += be16(l4_len);
  t.l4_sum = sum_words(f + kL4Off, l4_len, sum);
  return t;
}

RxKind parse(rte_mbuf* m, Rx* rx) {
  const uint32_t len = rte_pktmbuf_data_len(m);
  auto* f = rte_pktmbuf_mtod(m, uint8_t*);
  rx->frame = f;
  if (len < kIpOff) return RxKind::kOther;
  const uint16_t type = reinterpret_cast<rte_ether_hdr*>(f)->ether_type;
  if (type == be16(RTE_ETHER_TYPE_ARP)) return RxKind::kArp;
  if (type != be16(RTE_ETHER_TYPE_IPV4) || len < kL4Off) return RxKind::kOther;
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(f + kIpOff);
  const uint32_t ihl = (ip->version_ihl & 0xf) * 4u;
  const uint32_t ip_len = rte_be_to_cpu_16(ip->total_length);
  if ((ip->version_ihl >> 4) != 4 || ihl < 20 || ip_len < ihl || kIpOff + ip_len > len)
    return RxKind::kOther;
  rx->ip = ip;
  rx->ip_id = rte_be_to_cpu_16(ip->packet_id);
  rx->proto = ip->next_proto_id;
  rx->src = rte_be_to_cpu_32(ip->src_addr);
  rx->dst = rte_be_to_cpu_32(ip->dst_addr);
  rx->l4 = nullptr;
  rx->payload = nullptr;
  rx->payload_len = 0;
  rx->tcp_flags = 0;
  uint8_t* l4 = f + kIpOff + ihl;
  const uint32_t l4_len = ip_len - ihl;
  if (rx->proto == IPPROTO_TCP && l4_len >= sizeof(rte_tcp_hdr)) {
    auto* tcp = reinterpret_cast<rte_tcp_hdr*>(l4);
    const uint32_t doff = (tcp->data_off >> 4) * 4u;
    if (doff < sizeof(rte_tcp_hdr) || doff > l4_len) return RxKind::kOther;
    rx->l4 = l4;
    rx->tcp_flags = tcp->tcp_flags;
    rx->payload = l4 + doff;
    rx->payload_len = l4_len - doff;
  } else if (rx->proto == IPPROTO_UDP && l4_len >= sizeof(rte_udp_hdr)) {
    rx->l4 = l4;
    rx->payload = l4 + sizeof(rte_udp_hdr);
    rx->payload_len = l4_len - sizeof(rte_udp_hdr);
  }
  if (rx->l4) {
    uint16_t p;
    std::memcpy(&p, rx->l4, 2);
    rx->sport = rte_be_to_cpu_16(p);
    std::memcpy(&p, rx->l4 + 2, 2);
    rx->dport = rte_be_to_cpu_16(p);
  }
  return RxKind::kIpv4;
}

bool decapsulate(rte_mbuf* m, Rx* rx, uint16_t gue_port) {
  const uint32_t ihl = (rx->ip->version_ihl & 0xf) * 4u;
  uint32_t outer = 0;
  if (rx->proto == kIpProtoIpip) {
    outer = ihl;
  } else if (rx->proto == IPPROTO_UDP && rx->l4 && rx->dport == gue_port && rx->payload_len >= 1) {
    // GUE (draft-ietf-intarea-gue): variant 1 puts the inner IPv4 header right after UDP;
    // variant 0 has a 4-byte header plus hlen 32-bit words of extensions.
    const uint8_t first = rx->payload[0];
    if ((first >> 6) == 1) {
      outer = ihl + sizeof(rte_udp_hdr);
    } else if ((first >> 6) == 0 && rx->payload_len >= 4) {
      outer = ihl + sizeof(rte_udp_hdr) + 4 + (first & 0x1f) * 4u;
    } else {
      return false;
    }
  } else {
    return false;
  }
  if (kIpOff + outer >= rte_pktmbuf_data_len(m)) return false;
  // Keep the Ethernet header: move it up to sit right before the inner IPv4 header.
  std::memmove(rx->frame + outer, rx->frame, kIpOff);
  rte_pktmbuf_adj(m, static_cast<uint16_t>(outer));
  return parse(m, rx) == RxKind::kIpv4;
}

void tcp_reply(rte_mbuf* m, Rx* rx, const Mac& src_mac, const Mac& dst_mac, uint32_t seq_be,
               uint32_t ack_be, uint8_t flags, bool keep_payload) {
  turn_around(rx, src_mac, dst_mac);
  auto* tcp = reinterpret_cast<rte_tcp_hdr*>(rx->l4);
  tcp->sent_seq = seq_be;
  tcp->recv_ack = ack_be;
  tcp->tcp_flags = flags;
  tcp->data_off = (sizeof(rte_tcp_hdr) / 4) << 4;  // options (if any) are dropped with the payload
  uint32_t l4_len = sizeof(rte_tcp_hdr);
  if (keep_payload && rx->payload_len) {
    // Payload moves up if the segment had options.
    uint8_t* to = rx->l4 + sizeof(rte_tcp_hdr);
    if (to != rx->payload) std::memmove(to, rx->payload, rx->payload_len);
    rx->payload = to;
    l4_len += rx->payload_len;
  } else {
    rx->payload_len = 0;
  }
  const uint32_t ihl = (rx->ip->version_ihl & 0xf) * 4u;
  rx->ip->total_length = be16(static_cast<uint16_t>(ihl + l4_len));
  rx->ip->hdr_checksum = 0;
  rx->ip->hdr_checksum = rte_ipv4_cksum(rx->ip);
  tcp->cksum = 0;
  tcp->cksum = rte_ipv4_udptcp_cksum(rx->ip, tcp);
  rx->tcp_flags = flags;
  set_frame_len(m, kIpOff + ihl + l4_len);
}

void udp_reply(Rx* rx, const Mac& src_mac, const Mac& dst_mac) {
  turn_around(rx, src_mac, dst_mac);
  rx->ip->hdr_checksum = 0;
  rx->ip->hdr_checksum = rte_ipv4_cksum(rx->ip);
  auto* udp = reinterpret_cast<rte_udp_hdr*>(rx->l4);
  udp->dgram_cksum = 0;
  udp->dgram_cksum = rte_ipv4_udptcp_cksum(rx->ip, udp);
}

bool arp_request_target(rte_mbuf* m, uint32_t* target_ip) {
  if (rte_pktmbuf_data_len(m) < kIpOff + sizeof(rte_arp_hdr)) return false;
  const auto* arp = rte_pktmbuf_mtod_offset(m, const rte_arp_hdr*, kIpOff);
  if (arp->arp_hardware != be16(RTE_ARP_HRD_ETHER) || arp->arp_protocol != be16(RTE_ETHER_TYPE_IPV4) ||
      arp->arp_hlen != 6 || arp->arp_plen != 4 || arp->arp_opcode != be16(RTE_ARP_OP_REQUEST))
    return false;
  *target_ip = rte_be_to_cpu_32(arp->arp_data.arp_tip);
  return true;
}

void arp_answer(rte_mbuf* m, const Mac& own_mac) {
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  auto* arp = rte_pktmbuf_mtod_offset(m, rte_arp_hdr*, kIpOff);
  std::memcpy(eth->dst_addr.addr_bytes, eth->src_addr.addr_bytes, 6);
  std::memcpy(eth->src_addr.addr_bytes, own_mac.data(), 6);
  arp->arp_opcode = be16(RTE_ARP_OP_REPLY);
  std::memcpy(arp->arp_data.arp_tha.addr_bytes, arp->arp_data.arp_sha.addr_bytes, 6);
  std::memcpy(arp->arp_data.arp_sha.addr_bytes, own_mac.data(), 6);
  swap_bytes(reinterpret_cast<uint8_t*>(&arp->arp_data.arp_tip),
             reinterpret_cast<uint8_t*>(&arp->arp_data.arp_sip), 4);
}

}  // namespace rondo::gen

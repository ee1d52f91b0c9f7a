// Frames rondo-gen sends and answers: Ethernet (untagged) / IPv4 (no options) / TCP or
// UDP, and ARP replies.
//
// Wire conventions the generator relies on (the middle box leaves them alone: a full-NAT
// load balancer rewrites addresses, ports and checksums only):
//  - IPv4 ID kStampMark: a data packet whose payload starts with the sender's TSC (low 48
//    bits, little-endian, kStampLen bytes). Both ends are this process, so one clock.
//  - IPv4 ID kFloodMark: a SYN flood packet (or the backend's answer to one): not tracked
//    in the in-flight window, no client state.
//  - Client initial sequence number = (slot generation << slot bits) | slot, so a SYN-ACK
//    names its slot by ack - 1; the backend's ISN is the client's XOR kBackendIsnXor, so
//    the backend side keeps no state at all.
#pragma once

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include <array>
#include <cstdint>
#include <cstring>

namespace rondo::gen {

inline constexpr uint16_t kStampMark = 0x5247;  // "RG"
inline constexpr uint16_t kFloodMark = 0x464c;  // "FL"
inline constexpr uint32_t kStampLen = 6;
inline constexpr uint32_t kBackendIsnXor = 0x5a5a5a5a;
inline constexpr uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04, kTcpPsh = 0x08, kTcpAck = 0x10;

inline constexpr uint16_t kIpOff = sizeof(rte_ether_hdr);                // 14
inline constexpr uint16_t kL4Off = kIpOff + sizeof(rte_ipv4_hdr);        // 34
inline constexpr uint16_t kTcpDataOff = kL4Off + sizeof(rte_tcp_hdr);    // 54
inline constexpr uint16_t kUdpDataOff = kL4Off + sizeof(rte_udp_hdr);    // 42
inline constexpr uint16_t kMinFrame = 60;                                // without FCS
inline constexpr uint16_t kMaxFrame = 1514;

using Mac = std::array<uint8_t, 6>;

/// What a template describes; addresses and ports in host order.
struct TemplateSpec {
  Mac src_mac{};
  Mac dst_mac{};
  uint32_t dst_ip = 0;
  uint16_t dst_port = 0;
  uint8_t proto = IPPROTO_TCP;
  uint8_t tcp_flags = 0;
  uint16_t ip_id = 0;
  uint16_t frame_len = kMinFrame;  // without FCS; the L4 payload fills what headers leave
};

/// A pre-built client packet. Per packet only the source address and port, the TCP
/// sequence and acknowledgement numbers and the timestamp change; the checksums are
/// finished from partial sums taken over everything else.
struct Template {
  alignas(64) std::array<uint8_t, kMaxFrame> bytes{};
  uint16_t len = 0;
  uint16_t payload_off = 0;
  uint16_t payload_len = 0;
  bool tcp = true;
  bool stamped = false;  // carries a timestamp (ip_id == kStampMark)
  uint32_t ip_sum = 0;   // IPv4 header sum, source address and checksum zeroed
  uint32_t l4_sum = 0;   // pseudo-header + L4 header + payload, variable fields zeroed
};

Template make_template(const TemplateSpec& spec);

/// One's complement sum of 16-bit words as they sit in memory (byte-order independent).
inline uint32_t sum_words(const void* p, size_t n, uint32_t sum = 0) {
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i + 1 < n; i += 2) {
    uint16_t w;
    std::memcpy(&w, b + i, 2);
    sum += w;
  }
  if (n & 1) {
    uint16_t w = 0;
    std::memcpy(&w, b + n - 1, 1);
    sum += w;
  }
  return sum;
}

inline uint16_t fold_sum(uint64_t sum) {
  sum = (sum & 0xffffffff) + (sum >> 32);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

inline uint64_t words32(uint32_t v) { return (v & 0xffff) + (v >> 16); }

/// Fill m from template t for one flow. Network-order arguments; `stamp` is a TSC value.
inline void emit(rte_mbuf* m, const Template& t, uint32_t src_ip_be, uint16_t sport_be,
                 uint32_t seq_be, uint32_t ack_be, uint64_t stamp) {
  auto* f = rte_pktmbuf_mtod(m, uint8_t*);
  std::memcpy(f, t.bytes.data(), t.len);
  m->data_len = t.len;
  m->pkt_len = t.len;
  std::memcpy(f + kIpOff + offsetof(rte_ipv4_hdr, src_addr), &src_ip_be, 4);
  const uint16_t ip_csum = static_cast<uint16_t>(~fold_sum(t.ip_sum + words32(src_ip_be)));
  std::memcpy(f + kIpOff + offsetof(rte_ipv4_hdr, hdr_checksum), &ip_csum, 2);

  uint64_t sum = t.l4_sum + words32(src_ip_be) + sport_be;
  uint8_t* l4 = f + kL4Off;
  std::memcpy(l4, &sport_be, 2);
  if (t.stamped) {
    uint8_t* p = f + t.payload_off;
    std::memcpy(p, &stamp, kStampLen);  // little-endian low bytes on x86 and arm64
    uint16_t w[3];
    std::memcpy(w, p, 6);
    sum += static_cast<uint64_t>(w[0]) + w[1] + w[2];
  }
  if (t.tcp) {
    std::memcpy(l4 + offsetof(rte_tcp_hdr, sent_seq), &seq_be, 4);
    std::memcpy(l4 + offsetof(rte_tcp_hdr, recv_ack), &ack_be, 4);
    sum += words32(seq_be) + words32(ack_be);
    const uint16_t c = static_cast<uint16_t>(~fold_sum(sum));
    std::memcpy(l4 + offsetof(rte_tcp_hdr, cksum), &c, 2);
  } else {
    uint16_t c = static_cast<uint16_t>(~fold_sum(sum));
    if (c == 0) c = 0xffff;  // RFC 768: 0 means "no checksum"
    std::memcpy(l4 + offsetof(rte_udp_hdr, dgram_cksum), &c, 2);
  }
}

/// A received frame, parsed in place (pointers into the mbuf).
struct Rx {
  uint8_t* frame = nullptr;
  rte_ipv4_hdr* ip = nullptr;
  uint8_t* l4 = nullptr;
  uint8_t* payload = nullptr;
  uint32_t payload_len = 0;
  uint16_t ip_id = 0;   // host order
  uint8_t proto = 0;
  uint8_t tcp_flags = 0;
  uint32_t src = 0, dst = 0;  // host order
  uint16_t sport = 0, dport = 0;
};

enum class RxKind : uint8_t { kIpv4, kArp, kOther };

/// Parse an untagged Ethernet frame: IPv4 TCP/UDP (any other IPv4 protocol with l4 null)
/// or ARP. kOther for anything else or anything truncated.
RxKind parse(rte_mbuf* m, Rx* rx);

/// Strip an IPIP or GUE outer header (DSR encapsulation) in place and re-parse the inner
/// packet. False if m is not such a packet or the inner one does not parse.
bool decapsulate(rte_mbuf* m, Rx* rx, uint16_t gue_port);

/// Turn a received TCP segment around in place: MACs (to dst_mac, from src_mac), addresses
/// and ports swapped, TTL reset; then set seq/ack/flags, keep the payload or drop it, and
/// recompute both checksums. Network-order seq and ack.
void tcp_reply(rte_mbuf* m, Rx* rx, const Mac& src_mac, const Mac& dst_mac, uint32_t seq_be,
               uint32_t ack_be, uint8_t flags, bool keep_payload);

/// Turn a received UDP datagram around in place (payload kept), checksums recomputed.
void udp_reply(Rx* rx, const Mac& src_mac, const Mac& dst_mac);

/// True if m is an Ethernet/IPv4 ARP request; *target_ip (host order) is the address asked.
bool arp_request_target(rte_mbuf* m, uint32_t* target_ip);
/// Turn the ARP request m into the reply "target_ip is at own_mac", in place.
void arp_answer(rte_mbuf* m, const Mac& own_mac);

}  // namespace rondo::gen

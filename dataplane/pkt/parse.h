// Frame parser: Ethernet (+ one 802.1Q tag), ARP, IPv4, IPv6 (+ extension headers), TCP,
// UDP, ICMP, ICMPv6.
// Works on plain bytes so that it runs the same in unit tests, fuzzers and the worker.
// Every length is checked before it is read; a frame that fails a check is reported with
// the DropReason to count.
#pragma once

#include <cstdint>

#include "dataplane/flow/key.h"
#include "dataplane/stats/drop_reason.h"

namespace rondo::dp {

enum class PktKind : uint8_t {
  kArp,
  kIpv4Tcp,
  kIpv4Udp,
  kIpv4Icmp,
  kIpv4Other,  // well-formed IPv4 with another protocol
  kIpv4Frag,   // an IPv4 fragment (MF or an offset): no L4 header is looked at
  kIpv6Tcp,
  kIpv6Udp,
  kIpv6Icmp,   // ICMPv6 (NDP included: the pipeline tells it apart by type)
  kIpv6Other,  // well-formed IPv6 with another upper-layer protocol
  kIpv6Frag,   // an IPv6 fragment (a fragment header with an offset or M): no L4 looked at
};

inline bool is_ipv6(PktKind k) { return k >= PktKind::kIpv6Tcp; }

struct Parsed {
  PktKind kind = PktKind::kIpv4Other;
  bool vlan = false;       // one 802.1Q tag (its bytes stay in the frame)
  uint16_t vid = 0;        // its VLAN id (TCI & 0xfff); 0: no tag, or a priority tag
  uint16_t l3_off = 0;     // offset of the ARP or IPv4 header
  uint16_t l4_off = 0;     // offset of the TCP/UDP/ICMP header
  uint16_t ip_len = 0;     // IPv4 total length (host order)
  uint8_t tcp_flags = 0;
  uint8_t ttl = 0;
  FlowKey key;             // 5-tuple (network order); ports 0 for ICMP
  // IPv6 only (kIpv6*): `ip_len` is 40 + payload length, `l4_off` is past every extension
  // header, `ttl` is the hop limit, `key` stays zero.
  uint16_t ext_len = 0;    // bytes of extension headers between the fixed header and L4
  FlowKey6 key6;           // 5-tuple (network order); ports 0 for ICMPv6
  // Fragments (kIpv4Frag, kIpv6Frag): the key's addresses and protocol (the fragment
  // header's next header for IPv6) are set, its ports are 0; `l4_off` is where the fragment's
  // data starts (past the fragment header for IPv6, `ext_len` counts it); the identification
  // (network order; IPv4's 16 bits in the low half). Only the reassembly reads it.
  uint32_t frag_id = 0;

  /// Bytes from the L4 header to the end of the IP payload (TCP header + data); for IPv6
  /// the upper-layer length of the pseudo-header (RFC 8200 8.1), extension headers excluded.
  uint32_t l4_len() const { return ip_len - (l4_off - l3_off); }
};

/// The largest IP datagram a standard Ethernet frame carries: the default MTU (--mtu).
inline constexpr uint32_t kEthernetMtu = 1500;

// TCP flag bits (RFC 9293 3.1).
inline constexpr uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04, kTcpPsh = 0x08,
                         kTcpAck = 0x10;

/// False for flag sets no conforming stack sends: SYN with FIN or RST, and segments with
/// none of SYN, ACK or RST (null and FIN/PSH/URG scans: after the SYN every segment
/// carries ACK, RFC 9293 3.10.7). Such segments are scans or forgeries and are dropped.
inline bool tcp_flags_sane(uint8_t f) {
  if ((f & kTcpSyn) && (f & (kTcpFin | kTcpRst))) return false;
  return (f & (kTcpSyn | kTcpAck | kTcpRst)) != 0;
}

/// Parse a frame of `len` bytes. Returns true and fills `*p`, or false with `*why` set.
/// Besides lengths it checks what must hold before any lookup: the IPv4 header checksum,
/// a source that can be a host's, TCP/UDP ports non-zero, TCP flags that make sense.
/// `mtu` is the link's (--mtu): a datagram claiming more than it of which the frame holds
/// less is named kGsoFrame (a GSO/GRO super-frame, or a frame cut by a receive buffer too
/// small for it), one claiming no more is kMalformedL3. A frame longer than `mtu` that holds
/// all of its datagram is parsed as any other: what leaves is checked against the egress
/// MTU by the pipeline.
bool parse_frame(const uint8_t* frame, uint32_t len, Parsed* p, DropReason* why,
                 uint32_t mtu = kEthernetMtu);

}  // namespace rondo::dp

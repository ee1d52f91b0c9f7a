// Why a packet was not forwarded. Each reason is a per-lcore counter and a Prometheus
// label value; the names are part of the metrics API: append, never renumber or rename.
#pragma once

#include <cstdint>
#include <string_view>

namespace rondo::dp {

enum class DropReason : uint8_t {
  kMalformedL2 = 0,   // shorter than an Ethernet (+VLAN) header
  kMalformedArp,      // truncated ARP, or not Ethernet/IPv4 ARP
  kMalformedL3,       // truncated IPv4 header, bad version, IHL < 5, bad total length
  kMalformedL4,       // truncated TCP/UDP/ICMP header, TCP data offset < 5, bad UDP length
  kUnsupportedL3,     // not IPv4, IPv6 or ARP
  kUnsupportedL4,     // IP protocol other than TCP/UDP/ICMP towards a VIP
  kIpFragment,        // a fragment to an address that is neither a VIP nor a local ip, or one
                      // rondo does not reassemble (docs/architecture.md, "Fragments")
  kTtlExceeded,
  kNotForVip,         // destination is neither a VIP nor a local address
  kNoService,         // VIP address, but no VIP on that port/protocol
  kIcmpUnsupported,   // ICMP other than echo request and the errors rondo forwards
  kArpNotForUs,       // ARP for an address we do not own
  kNoState,           // no configuration received yet
  kNoBackend,         // VIP has no eligible backend
  kNoLocalPort,       // every local port of every local ip is in use
  kTableFull,         // flow table full and nothing evictable
  kTcpNoFlow,         // non-SYN TCP segment for an unknown flow
  kReplyNoFlow,       // packet to a local ip:port that belongs to no flow
  kNeighUnresolved,   // next hop MAC not known yet (ARP request sent)
  kNoRoute,
  kTxFull,            // TX queue did not take the packet
  kMultiSegment,      // chained mbufs (jumbo frames are not enabled)
  kNotOurMac,         // unicast frame for another MAC (shared segment, af_packet)
  kSteerFull,         // the owning worker's hand-over ring was full
  // Sanity before state (docs/security.md): checked before any lookup, or (L4 checksum,
  // land) before a packet may create a flow.
  kBadIpChecksum,     // IPv4 header checksum does not verify
  kMartianSource,     // source is 0/8, loopback, multicast, 240/4 or broadcast, or ours (land)
  kPortZero,          // TCP/UDP source or destination port 0
  kBadTcpFlags,       // SYN+FIN, SYN+RST, or none of SYN/ACK/RST
  kBadL4Checksum,     // a SYN or first UDP datagram whose TCP/UDP checksum does not verify
  kBadSourceMac,      // Ethernet source is a multicast or broadcast address
  kRateLimited,       // an ARP or ICMP echo reply over the worker's reply budget
  kArpBadSender,      // ARP sender MAC multicast, zero, or not the Ethernet source
  kTcpOutOfWindow,    // a TCP segment (RST, FIN, data) outside the tracked window of its flow
  kVlanMismatch,      // a tag, or none, that names no interface of the port (VID 0 = none)
  kSynCookieInvalid,  // an ACK with no flow whose SYN cookie does not verify (cookies on)
  kArpQueueFull,      // an ARP frame between a worker and the main lcore found its ring full
  kGsoFrame,          // IPv4 datagram longer than 1500 bytes of which the frame holds less: a
                      // GSO/GRO super-frame cut short by an af_packet reader (offloads on)
  kProxyHeaderLost,   // a PROXY v2 header the backend never acknowledged (fwd/proxy_v2.h):
                      // the client's segment that found the flow given up (the flow is reset)
  kNoMbuf,            // a frame the worker made (PROXY v2 header, RST) found no free mbuf
  kEncapTooBig,       // longer than the egress MTU once encapsulated (ipip, gue): the client
                      // is sent ICMP fragmentation-needed with the MTU that fits
  kNoHeadroom,        // an mbuf with less headroom than an encapsulation needs (a PMD's pool)
  kIcmpNoFlow,        // an ICMP error (unreachable, time exceeded) that quotes no flow of ours
  // IPv6 (docs/security.md, "IPv6").
  kIpv6ExtChain,      // more than 8 extension headers, or L4 past the first 256 bytes
  kIpv6BadOption,     // a hop-by-hop/destination option rondo must not skip (action bits)
  kIpv6RoutingType0,  // a type 0 routing header (deprecated, RFC 5095)
  kIpv6RoutingHeader, // a routing header with segments left: rondo is not the last hop
  kNdpInvalid,        // NS/NA failing RFC 4861 7.1 (hop limit 255, code 0, lengths, options)
  kNdpNotForUs,       // an NS for an address we do not own
  kNdpIgnored,        // RS, RA, redirect, MLD: rondo is no router and joins no group by MLD
  kIcmpUntranslatable,// an ICMP message with no equivalent in the other family (RFC 7915)
  kEgressTooBig,      // a full-NAT packet over the egress MTU (--mtu): with DF, or IPv6, the
                      // sender gets fragmentation-needed / packet-too-big; without DF, dropped
  // Fragments (dataplane/frag/reassembly.h, docs/architecture.md "Fragments").
  kFragTableFull,     // a fragment of a new datagram when the worker's reassembly table is full
  kFragInvalid,       // a fragment that breaks its datagram (overlap, more than 8 fragments),
                      // or a length that is not a multiple of 8 or reaches past 65535 bytes
  kFragTooBig,        // a reassembled datagram longer than the reassembly buffer (16 KB)
  kFragDuplicate,     // an exact copy of a fragment seen lately (RFC 8200 4.5: dropped alone)
  kCount
};

inline constexpr uint32_t kDropReasonCount = static_cast<uint32_t>(DropReason::kCount);

/// snake_case name of a reason, as used in metrics and rondo-dpstat output.
std::string_view drop_reason_name(DropReason r);

}  // namespace rondo::dp

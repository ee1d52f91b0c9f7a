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
#include "dataplane/pkt/ip6.h"

namespace rondo::dp {
namespace {

inline bool fail(DropReason* why, DropReason r) {
  *why = r;
  return false;
}

// The TCP header of either family: its length and data offset, ports non-zero, flags a
// conforming stack sends. Fills the ports of the family's key, the flags and the kind.
[[gnu::always_inline]] inline bool parse_tcp(const uint8_t* l4, uint32_t l4_len,
                                             uint16_t* sport, uint16_t* dport, PktKind kind,
                                             Parsed* p, DropReason* why) {
  if (l4_len < sizeof(rte_tcp_hdr)) return fail(why, DropReason::kMalformedL4);
  const uint32_t doff = (l4[12] >> 4) * 4u;
  if (doff < sizeof(rte_tcp_hdr) || doff > l4_len) return fail(why, DropReason::kMalformedL4);
  std::memcpy(sport, l4, 2);
  std::memcpy(dport, l4 + 2, 2);
  if (!*sport || !*dport) return fail(why, DropReason::kPortZero);
  p->tcp_flags = l4[13];
  if (!tcp_flags_sane(p->tcp_flags)) return fail(why, DropReason::kBadTcpFlags);
  p->kind = kind;
  return true;
}

inline uint16_t load_be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

// IPv6 next-header values (IANA "Assigned Internet Protocol Numbers").
constexpr uint8_t kNhHopByHop = 0, kNhRouting = 43, kNhFragment = 44, kNhDestOpts = 60,
                  kNhIcmp6 = 58;
constexpr uint32_t kIpv6Hdr = 40;
// At most this many extension headers, all within the first kMaxExtBytes after the fixed
// header (docs/security.md, "IPv6"): the walk's cost is bounded whatever the chain says.
constexpr uint32_t kMaxExtHeaders = 8;
constexpr uint32_t kMaxExtBytes = 256;
// ICMPv6 neighbour solicitation: the one message a host sends from :: (DAD, RFC 4862 5.4.2).
constexpr uint8_t kIcmp6NeighSolicit = 135;
constexpr uint8_t kIcmp6EchoRequest = 128, kIcmp6EchoReply = 129;

// Walk the TLV options of a hop-by-hop or destination options header (RFC 8200 4.2) in
// [q, end). Pad1 and PadN are skipped, and so is an unknown option whose action bits (the
// type's two high bits) are 00; any other action asks for the packet to be discarded (01,
// or 10/11 with an ICMP error rondo does not send), and so does an option rondo would have
// to act on (jumbo payload, 0xc2).
bool walk_options6(const uint8_t* q, const uint8_t* end, DropReason* why) {
  while (q < end) {
    const uint8_t type = q[0];
    if (type == 0) {  // Pad1
      ++q;
      continue;
    }
    if (end - q < 2 || end - q - 2 < q[1]) return fail(why, DropReason::kMalformedL3);
    if ((type >> 6) != 0) return fail(why, DropReason::kIpv6BadOption);  // PadN (1) is 00
    q += 2 + q[1];
  }
  return true;
}

// Walk the extension headers of the IPv6 datagram at `ip`, `dgram` bytes long (fixed header
// included), starting from the fixed header's next-header field (RFC 8200 4.1). On success
// `*nh` is the upper-layer protocol (or one rondo does not walk: AH, ESP, no next header,
// anything unknown) and `*l4` its offset from `ip`; for a fragment, `*frag` is the offset of
// its fragment header (else 0), `*nh` the header's next header and `*l4` the fragment's data.
bool walk_ext6(const uint8_t* ip, uint32_t dgram, uint8_t* nh, uint32_t* l4, uint32_t* frag,
               DropReason* why) {
  uint8_t next = ip[6];
  uint32_t pos = kIpv6Hdr;
  for (uint32_t n = 0;; ++n) {
    switch (next) {
      case kNhHopByHop:
        // Only right after the fixed header (RFC 8200 4.1): elsewhere it is a broken chain.
        if (n != 0) return fail(why, DropReason::kIpv6ExtChain);
        break;
      case kNhDestOpts:
      case kNhRouting:
        break;
      case kNhFragment: {
        if (n == kMaxExtHeaders) return fail(why, DropReason::kIpv6ExtChain);
        if (dgram - pos < 8) return fail(why, DropReason::kMalformedL3);
        const uint8_t* h = ip + pos;
        const uint16_t w = load_be16(h + 2);  // offset (13 bits), 2 reserved, M
        if ((w & 0xfff9) == 0) {
          // An atomic fragment (offset 0, M 0; RFC 6946): the whole datagram, the header is
          // skipped like an empty option header.
          next = h[0];
          pos += 8;
          continue;
        }
        // The fragmentable part of every fragment but the last is a multiple of 8 bytes, and
        // no fragment reaches past 65535 bytes of it (RFC 8200 4.5).
        const uint32_t data = dgram - pos - 8;
        if (data == 0 || ((w & 1) && data % 8 != 0) || (w & 0xfff8) + data > 0xffff)
          return fail(why, DropReason::kFragInvalid);
        *frag = pos;
        *nh = h[0];
        *l4 = pos + 8;
        return true;
      }
      default:
        *nh = next;
        *l4 = pos;
        return true;
    }
    if (n == kMaxExtHeaders) return fail(why, DropReason::kIpv6ExtChain);
    if (dgram - pos < 2) return fail(why, DropReason::kMalformedL3);
    const uint32_t hlen = (ip[pos + 1] + 1u) * 8;
    if (dgram - pos < hlen) return fail(why, DropReason::kMalformedL3);
    if (pos + hlen > kIpv6Hdr + kMaxExtBytes) return fail(why, DropReason::kIpv6ExtChain);
    const uint8_t* h = ip + pos;
    if (next == kNhRouting) {
      // Type 0 is deprecated outright (RFC 5095). With segments left rondo would have to
      // forward to the next one: it is the final destination of what it accepts.
      if (h[2] == 0) return fail(why, DropReason::kIpv6RoutingType0);
      if (h[3] != 0) return fail(why, DropReason::kIpv6RoutingHeader);
    } else if (!walk_options6(h + 2, h + hlen, why)) {
      return false;
    }
    next = h[0];
    pos += hlen;
  }
}

// The IPv6 half of parse_frame, from the fixed header at f + off. Kept out of line so that
// the IPv4 path stays as it was.
[[gnu::noinline]] bool parse_ipv6(const uint8_t* f, uint32_t len, uint32_t off, Parsed* p,
                                  DropReason* why, uint32_t mtu) {
  if (len < off + kIpv6Hdr) return fail(why, DropReason::kMalformedL3);
  const uint8_t* ip = f + off;
  const uint32_t dgram = kIpv6Hdr + load_be16(ip + 4);
  // As for IPv4: a GSO/GRO super-frame cut by an af_packet reader is named.
  if ((ip[0] >> 4) == 6 && dgram > mtu && off + dgram > len)
    return fail(why, DropReason::kGsoFrame);
  // Ethernet padding after the datagram is fine, a datagram cut short is not. (A datagram
  // over 64 KiB cannot come in one Ethernet frame and does not fit ip_len.)
  if ((ip[0] >> 4) != 6 || off + dgram > len || dgram > 0xffff)
    return fail(why, DropReason::kMalformedL3);
  const Ip6 src = Ip6::from(ip + 8);
  // Unspecified and link-local sources are legal for some ICMPv6: checked below.
  const bool unspecified = src.is_zero();
  if (!unspecified && martian_source6(src)) return fail(why, DropReason::kMartianSource);

  uint8_t nh;
  uint32_t l4_rel, frag = 0;
  if (!walk_ext6(ip, dgram, &nh, &l4_rel, &frag, why)) return false;

  p->ip_len = static_cast<uint16_t>(dgram);
  p->ttl = ip[7];
  p->l4_off = static_cast<uint16_t>(off + l4_rel);
  p->ext_len = static_cast<uint16_t>(l4_rel - kIpv6Hdr);
  p->tcp_flags = 0;
  p->key = FlowKey{};
  p->key6 = FlowKey6{};
  std::memcpy(p->key6.src_ip, ip + 8, 16);
  std::memcpy(p->key6.dst_ip, ip + 24, 16);
  p->key6.proto = nh;
  if (frag != 0) {
    // Fragments carry no L4 header to check (only the first has one): the reassembled
    // datagram is parsed again. Their sources follow the non-ICMPv6 rule below.
    if (unspecified || is_link_local6(src)) return fail(why, DropReason::kMartianSource);
    std::memcpy(&p->frag_id, ip + frag + 4, 4);
    p->kind = PktKind::kIpv6Frag;
    return true;
  }
  const uint8_t* l4 = ip + l4_rel;
  const uint32_t l4_len = dgram - l4_rel;

  if (nh == kNhIcmp6) {
    if (l4_len < 4) return fail(why, DropReason::kMalformedL4);
    const uint8_t type = l4[0];
    if ((type == kIcmp6EchoRequest || type == kIcmp6EchoReply) && l4_len < 8)
      return fail(why, DropReason::kMalformedL4);
    // Only DAD's solicitation comes from :: (the NDP code checks the rest, RFC 4861 7.1.1);
    // link-local sources are NDP and errors from the link.
    if (unspecified && type != kIcmp6NeighSolicit) return fail(why, DropReason::kMartianSource);
    p->kind = PktKind::kIpv6Icmp;
    return true;
  }
  // Nothing but ICMPv6 comes from :: or from a link-local address to rondo: its VIPs and
  // local ips are global, and a flow from fe80:: could not be answered off the link.
  if (unspecified || is_link_local6(src)) return fail(why, DropReason::kMartianSource);

  switch (nh) {
    case IPPROTO_TCP: {
      return parse_tcp(l4, l4_len, &p->key6.src_port, &p->key6.dst_port, PktKind::kIpv6Tcp, p, why);
    }
    case IPPROTO_UDP: {
      // The UDP length is the upper-layer length (RFC 8200 8.1): no padding inside it.
      if (l4_len < sizeof(rte_udp_hdr) || load_be16(l4 + 4) != l4_len)
        return fail(why, DropReason::kMalformedL4);
      std::memcpy(&p->key6.src_port, l4, 2);
      std::memcpy(&p->key6.dst_port, l4 + 2, 2);
      if (!p->key6.src_port || !p->key6.dst_port) return fail(why, DropReason::kPortZero);
      // "No checksum" does not exist in IPv6 (RFC 8200 8.1): a zero one is discarded.
      if (l4[6] == 0 && l4[7] == 0) return fail(why, DropReason::kBadL4Checksum);
      p->kind = PktKind::kIpv6Udp;
      return true;
    }
    default:
      // AH, ESP, no next header (59) and the rest: as IPv4's other protocols, the pipeline
      // decides (unsupported_l4 towards a VIP).
      p->kind = PktKind::kIpv6Other;
      return true;
  }
}

// An IPv4 fragment, its header checked by parse_frame: described for the reassembly (the
// key's addresses and protocol, the identification), its data not looked at. Out of line:
// the path of whole datagrams stays as it was.
[[gnu::noinline]] bool parse_frag4(const uint8_t* ip, uint32_t off, uint32_t ihl, uint32_t total,
                                   uint16_t frag, Parsed* p, DropReason* why) {
  // Every fragment but the last carries a multiple of 8 bytes, none reaches past 65535
  // bytes of datagram (RFC 791: a fragment offset counts 8-byte units).
  const uint32_t data = total - ihl;
  const uint32_t at = (frag & RTE_IPV4_HDR_OFFSET_MASK) * 8u;
  if (data == 0 || ((frag & RTE_IPV4_HDR_MF_FLAG) && data % 8 != 0) || at + data + ihl > 0xffff)
    return fail(why, DropReason::kFragInvalid);
  p->ip_len = static_cast<uint16_t>(total);
  p->ttl = ip[8];
  p->l4_off = static_cast<uint16_t>(off + ihl);
  p->tcp_flags = 0;
  p->key = FlowKey{};
  std::memcpy(&p->key.src_ip, ip + 12, 4);
  std::memcpy(&p->key.dst_ip, ip + 16, 4);
  p->key.proto = ip[9];
  p->frag_id = 0;
  std::memcpy(reinterpret_cast<uint8_t*>(&p->frag_id) + 2, ip + 4, 2);
  p->kind = PktKind::kIpv4Frag;
  return true;
}

}  // namespace

bool parse_frame(const uint8_t* f, uint32_t len, Parsed* p, DropReason* why, uint32_t mtu) {
  if (len < sizeof(rte_ether_hdr)) return fail(why, DropReason::kMalformedL2);
  // No station sends from a group address: answering one would broadcast the answer.
  if (f[6] & 1) return fail(why, DropReason::kBadSourceMac);
  uint32_t off = sizeof(rte_ether_hdr);
  uint16_t ethertype = load_be16(f + 12);
  p->vlan = false;
  p->vid = 0;
  if (ethertype == RTE_ETHER_TYPE_VLAN) {
    if (len < off + sizeof(rte_vlan_hdr)) return fail(why, DropReason::kMalformedL2);
    p->vlan = true;
    // The VLAN id names the interface; priority (PCP) and DEI do not. VID 0 is a priority
    // tag (802.1Q): the frame belongs to the port's untagged interface.
    p->vid = load_be16(f + off) & 0xfff;
    ethertype = load_be16(f + off + 2);
    off += sizeof(rte_vlan_hdr);
  }
  // One tag at most: QinQ (an 802.1ad S-tag, or a second C-tag) is not supported.
  if (ethertype == RTE_ETHER_TYPE_VLAN || ethertype == RTE_ETHER_TYPE_QINQ)
    return fail(why, DropReason::kUnsupportedL3);
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
  if (ethertype != RTE_ETHER_TYPE_IPV4) {
    if (ethertype == RTE_ETHER_TYPE_IPV6) return parse_ipv6(f, len, off, p, why, mtu);
    return fail(why, DropReason::kUnsupportedL3);
  }

  if (len < off + sizeof(rte_ipv4_hdr)) return fail(why, DropReason::kMalformedL3);
  const uint8_t* ip = f + off;
  const uint8_t version = ip[0] >> 4;
  const uint32_t ihl = (ip[0] & 0x0f) * 4u;
  const uint16_t total = load_be16(ip + 2);
  // A datagram longer than the MTU of which the frame holds less is what an af_packet reader
  // gets of a GSO/GRO super-frame (segmentation offloads left on at the interface), or of a
  // jumbo frame longer than its ring's frames (framesz): named, so that the operator sees
  // why (docs/deploy.md, "Host preparation"; docs/operations.md, "MTU and jumbo frames").
  if (version == 4 && total > mtu && off + total > len) return fail(why, DropReason::kGsoFrame);
  // The frame may carry Ethernet padding after the datagram, never less than it claims.
  if (version != 4 || ihl < sizeof(rte_ipv4_hdr) || total < ihl || off + total > len)
    return fail(why, DropReason::kMalformedL3);
  if (!ipv4_header_csum_ok(ip, ihl)) return fail(why, DropReason::kBadIpChecksum);
  // No host sends from these (RFC 1122 3.2.1.3, RFC 5735): spoofed or broken, never a flow.
  const uint8_t src_net = ip[12];
  if (src_net == 0 || src_net == 127 || src_net >= 224) return fail(why, DropReason::kMartianSource);
  const uint16_t frag = load_be16(ip + 6);
  if (frag & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK))
    return parse_frag4(ip, off, ihl, total, frag, p, why);

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
      return parse_tcp(l4, l4_len, &p->key.src_port, &p->key.dst_port, PktKind::kIpv4Tcp, p, why);
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

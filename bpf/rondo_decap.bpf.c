// SPDX-License-Identifier: BSD-3-Clause
//
// rondo's backend-side decapsulator, a tc (cls_bpf, direct-action) ingress program. In the
// direct-server-return modes rondo sends a client's packet to the backend inside an outer
// IPv4 header (mode ipip) or inside IPv4 + UDP + GUE (mode gue). This program strips that
// outer part, so the kernel's stack receives the client's own packet (source: the client,
// destination: the VIP on lo) and answers the client directly. It does what Linux's ipip
// and fou modules do, for hosts that lack them or would rather not create tunnel devices.
//
// What is decapsulated (outer IPv4 or IPv6, Ethernet devices only, frames addressed to this
// host; rondo-decap refuses other device types):
//   - IPIP: protocol / next header 4 (inner IPv4) and 41 (inner IPv6), RFC 2003 and 2473;
//   - GUE (draft-ietf-intarea-gue-09) over UDP to `gue_port`: variant 0 (version bits 00,
//     C=0, Hlen extension words skipped whatever the flags say, proto 4 or 41) and variant
//     1 (version bits 01: the IPv4 or IPv6 header follows the UDP header directly).
//
// An outer IPv6 header is the fixed header alone (rondo adds no extension headers; a packet
// with some is not rondo's and is passed untouched): its payload length must fit the frame.
//
// The rule for the rest, counted in `decap_stats` (bpf/decap/counters.h):
//   - not IPIP and not UDP to gue_port: passed untouched, not counted (passed: on to the
//     next tc filter, if any, then the stack; see PASS);
//   - a fragment of the outer packet: passed untouched and counted. tc ingress runs
//     before reassembly, so this program never sees the whole packet; where the ipip/fou
//     modules are loaded they take the reassembled one, elsewhere the kernel drops it: the
//     path from rondo to the backend must carry the encapsulated packet unfragmented. (Only
//     a first fragment shows the UDP port: later GUE fragments are not recognised at all.)
//   - encapsulation we cannot decapsulate (outer header bad, GUE version 2/3, a control
//     message or another protocol, inner header bad or longer than what carries it):
//     dropped. It was aimed at the decapsulator, and without the ipip/fou modules the
//     kernel could only answer it with an ICMP error.
//
// The outer header is checked as ip_rcv() would (this runs before it): IHL, lengths and
// the header checksum. A non-zero outer UDP checksum is not verified; the inner packet's
// own checksums are, by the stack after decapsulation (bpf_skb_adjust_room resets
// CHECKSUM_UNNECESSARY). ECN is carried from the outer to the inner header as RFC 6040
// says (and Linux's tunnels do): outer CE sets CE on an ECN-capable inner packet and
// drops a Not-ECT one.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <stdbool.h>
#include <stddef.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "common/count.bpf.h"
#include "decap/counters.h"

// bpf_skb_adjust_room's BPF_F_ADJ_ROOM_DECAP_L3_IPV4/IPV6 (Linux 6.3): the packet left after
// the shrink is IPv4 / IPv6, so skb->protocol becomes ETH_P_IP / ETH_P_IPV6. Debian 12's uapi
// headers (Linux 6.1) do not name them yet.
#define ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#define ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)
#define IPV6_FRAGMENT 44

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

// The verdict for every packet that goes on, decapsulated or untouched: TC_ACT_UNSPEC, not
// TC_ACT_OK. OK would end the ingress chain, so that no filter at a later priority (rondo-decap
// attaches at 1) saw any packet; UNSPEC lets the next filter run (on the inner packet, once
// decapsulated), and after the last one the packet goes to the stack.
enum { PASS = TC_ACT_UNSPEC };

enum { ECN_NOT_ECT = 0, ECN_ECT_1 = 1, ECN_ECT_0 = 2, ECN_CE = 3 };

// The UDP port GUE arrives on (host order). rondo-decap writes it before loading
// (--gue-port, by default rondo's api::kGuePort); 6080, the same port, is for loaders that
// do not (tc filter add ... bpf obj rondo_decap.bpf.o).
const volatile __u16 gue_port = 6080;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DECAP_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} decap_stats SEC(".maps");

// Count one packet under `c` and return `verdict`.
static __always_inline int count(enum decap_counter c, int verdict)
{
	count_in(&decap_stats, c);
	return verdict;
}

static __always_inline __u16 csum_fold(__u64 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

// What ip_rcv() checks of an IPv4 header: IHL, total length within the frame, checksum.
static __always_inline bool outer_ok(struct __sk_buff *skb, const struct iphdr *ip)
{
	__u32 hdr[15] = {};
	__u32 hlen = ip->ihl * 4;
	__u32 tot = bpf_ntohs(ip->tot_len);

	if (hlen < sizeof(struct iphdr) || hlen > sizeof hdr || tot < hlen ||
	    ETH_HLEN + tot > skb->len)
		return false;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, hdr, hlen) < 0)
		return false;
	// A correct header sums to 0xffff (RFC 1071), so its folded complement is 0.
	return csum_fold((__u32)bpf_csum_diff(NULL, 0, hdr, hlen, 0)) == 0;
}

// RFC 6040 section 4.2 (normal mode): the inner ECN field after decapsulation, or -1 when
// the packet must be dropped (congestion marked on a transport that cannot see it).
static __always_inline int ecn_decap(__u8 outer, __u8 inner)
{
	if (outer == ECN_CE)
		return inner == ECN_NOT_ECT ? -1 : ECN_CE;
	if (outer == ECN_ECT_1 && inner == ECN_ECT_0)
		return ECN_ECT_1;
	return inner;
}

// Rewrite the ECN field of the (now outermost) IP header at ETH_HLEN.
static __always_inline void set_ecn(struct __sk_buff *skb, bool v6, __u8 ecn)
{
	__u8 b;

	if (bpf_skb_load_bytes(skb, ETH_HLEN + 1, &b, 1) < 0)
		return;
	if (v6) {
		// Traffic class straddles bytes 0 and 1; its ECN bits are bits 5..4 of byte 1.
		b = (b & ~0x30) | (ecn << 4);
		bpf_skb_store_bytes(skb, ETH_HLEN + 1, &b, 1, 0);
		return;
	}
	__u8 nb = (b & ~0x03) | ecn;
	// TOS is the low byte of the header's first 16-bit word: the checksum changes by it.
	bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), bpf_htons(b),
			    bpf_htons(nb), 2);
	bpf_skb_store_bytes(skb, ETH_HLEN + 1, &nb, 1, 0);
}

// Where the inner packet is, once the outer headers have been parsed.
struct inner {
	__u32 off;	// offset of the inner IP header
	__u32 end;	// offset just past what the outer headers say they carry
	__u8 proto;	// IPPROTO_IPIP (inner IPv4) or IPPROTO_IPV6
	__u8 ecn;
	enum decap_counter kind;
};

// GUE after the UDP header at `off`: sets in->off, in->proto and in->kind. False: malformed.
static __always_inline bool parse_gue(struct __sk_buff *skb, __u32 off, struct inner *in)
{
	__u8 h[2];

	if (bpf_skb_load_bytes(skb, off, h, sizeof h) < 0)
		return false;
	switch (h[0] >> 6) {
	case 0:
		// Variant 0: |ver 2|C 1|hlen 5|proto 8|flags 16|, then hlen 32-bit words.
		if (h[0] & 0x20)
			return false;	// a control message: nothing to deliver
		in->proto = h[1];
		in->off = off + 4 + (h[0] & 0x1f) * 4;
		in->kind = DECAP_GUE;
		break;
	case 1:
		// Variant 1: the IP header itself; its version nibble is 4 (0100) or 6 (0110).
		in->proto = (h[0] >> 4) == 4 ? IPPROTO_IPIP : (h[0] >> 4) == 6 ? IPPROTO_IPV6 : 0;
		in->off = off;
		in->kind = DECAP_GUE_DIRECT;
		break;
	default:
		return false;
	}
	return (in->proto == IPPROTO_IPIP || in->proto == IPPROTO_IPV6) && in->off < in->end;
}

// The inner header: the version it was announced as, and it fits in what carries it.
static __always_inline bool inner_ok(struct __sk_buff *skb, struct inner *in)
{
	if (in->proto == IPPROTO_IPIP) {
		struct iphdr ip;
		if (bpf_skb_load_bytes(skb, in->off, &ip, sizeof ip) < 0)
			return false;
		__u32 tot = bpf_ntohs(ip.tot_len);
		in->ecn = ip.tos & 3;
		return ip.version == 4 && ip.ihl >= 5 && tot >= ip.ihl * 4u && in->off + tot <= in->end;
	}
	struct ipv6hdr ip6;
	if (bpf_skb_load_bytes(skb, in->off, &ip6, sizeof ip6) < 0)
		return false;
	in->ecn = (ip6.flow_lbl[0] >> 4) & 3;
	return ip6.version == 6 && in->off + sizeof ip6 + bpf_ntohs(ip6.payload_len) <= in->end;
}

// Strip everything between the Ethernet header and the inner packet `in` (checked), carry the
// outer ECN field `outer_ecn` over, and count in->kind. `outer6`: the outer header is IPv6.
static __always_inline int strip(struct __sk_buff *skb, struct inner *in, bool outer6,
				 __u8 outer_ecn)
{
	const int ecn = ecn_decap(outer_ecn, in->ecn);
	if (ecn < 0)
		return count(DROP_ECN, TC_ACT_SHOT);

	// FIXED_GSO: a GRO'd packet keeps its segment size (the inner payload per segment is
	// unchanged). The L3 flag says what skb->protocol becomes: needed whenever the family
	// changes; an IPv4-in-IPv4 packet needs none, so that case also works on kernels before
	// 6.3.
	const bool v6 = in->proto == IPPROTO_IPV6;
	__u64 flags = BPF_F_ADJ_ROOM_FIXED_GSO;
	if (v6)
		flags |= ADJ_ROOM_DECAP_L3_IPV6;
	else if (outer6)
		flags |= ADJ_ROOM_DECAP_L3_IPV4;
	if (bpf_skb_adjust_room(skb, -(__s32)(in->off - ETH_HLEN), BPF_ADJ_ROOM_MAC, flags) < 0)
		return count(DROP_ADJUST_FAILED, TC_ACT_SHOT);
	if (v6 != outer6) {
		// skb->protocol changed; the Ethernet header says so too, so the frame stays
		// consistent for whatever reads its MAC header later.
		__be16 proto = bpf_htons(v6 ? ETH_P_IPV6 : ETH_P_IP);
		bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &proto, sizeof proto, 0);
	}
	if (ecn != in->ecn)
		set_ecn(skb, v6, ecn);
	return count(in->kind, PASS);
}

// An outer IPv6 header: IPIP (next header 4 or 41) or GUE over UDP, as for IPv4.
static __always_inline int decap6(struct __sk_buff *skb)
{
	struct ipv6hdr ip6;
	struct udphdr udp;
	struct inner in = {};
	const __u32 off = ETH_HLEN + sizeof ip6;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof ip6) < 0 || ip6.version != 6)
		return PASS;
	switch (ip6.nexthdr) {
	case IPPROTO_IPIP:
	case IPPROTO_IPV6:
		break;
	case IPPROTO_UDP:
		if (bpf_skb_load_bytes(skb, off, &udp, sizeof udp) < 0 ||
		    udp.dest != bpf_htons(gue_port))
			return PASS;
		break;
	case IPV6_FRAGMENT: {
		// Counted when the fragment would have been a tunnel's (its next header says).
		__u8 next;
		if (bpf_skb_load_bytes(skb, off, &next, 1) < 0)
			return PASS;
		if (next == IPPROTO_IPIP || next == IPPROTO_IPV6 || next == IPPROTO_UDP)
			return count(PASS_OUTER_FRAGMENT, PASS);
		return PASS;
	}
	default:
		return PASS;
	}
	in.off = off;
	in.end = off + bpf_ntohs(ip6.payload_len);
	if (in.end > skb->len || in.end == off)
		return count(MALFORMED_OUTER, TC_ACT_SHOT);
	if (ip6.nexthdr == IPPROTO_UDP) {
		// The UDP checksum (mandatory over IPv6) is not verified here: the inner packet's
		// own checksums are, by the stack.
		__u32 ulen = bpf_ntohs(udp.len);
		if (ulen <= sizeof udp || in.off + ulen > in.end)
			return count(MALFORMED_OUTER, TC_ACT_SHOT);
		in.end = in.off + ulen;
		if (!parse_gue(skb, in.off + sizeof udp, &in))
			return count(MALFORMED_GUE, TC_ACT_SHOT);
		in.kind = DECAP_GUE_OUT6;
	} else {
		in.proto = ip6.nexthdr;
		in.kind = ip6.nexthdr == IPPROTO_IPIP ? DECAP_IPIP_OUT6 : DECAP_IPIP6_OUT6;
	}
	if (!inner_ok(skb, &in))
		return count(MALFORMED_INNER, TC_ACT_SHOT);
	return strip(skb, &in, true, (ip6.flow_lbl[0] >> 4) & 3);
}

SEC("tc")
int rondo_decap(struct __sk_buff *skb)
{
	struct iphdr ip;
	struct udphdr udp;
	struct inner in = {};

	// PACKET_HOST: unicast to this host; a host that routes does not decapsulate transit.
	if (skb->pkt_type != PACKET_HOST)
		return PASS;
	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return decap6(skb);
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return PASS;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof ip) < 0 || ip.version != 4)
		return PASS;
	switch (ip.protocol) {
	case IPPROTO_IPIP:
	case IPPROTO_IPV6:
		break;
	case IPPROTO_UDP:
		// Only an unfragmented packet or a first fragment shows its port.
		if (ip.ihl < 5 || (ip.frag_off & bpf_htons(IP_OFFSET)) ||
		    bpf_skb_load_bytes(skb, ETH_HLEN + ip.ihl * 4, &udp, sizeof udp) < 0 ||
		    udp.dest != bpf_htons(gue_port))
			return PASS;
		break;
	default:
		return PASS;
	}
	if (ip.frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return count(PASS_OUTER_FRAGMENT, PASS);
	if (!outer_ok(skb, &ip))
		return count(MALFORMED_OUTER, TC_ACT_SHOT);

	in.off = ETH_HLEN + ip.ihl * 4;
	in.end = ETH_HLEN + bpf_ntohs(ip.tot_len);
	if (ip.protocol == IPPROTO_UDP) {
		__u32 ulen = bpf_ntohs(udp.len);
		if (ulen <= sizeof udp || in.off + ulen > in.end)
			return count(MALFORMED_OUTER, TC_ACT_SHOT);
		in.end = in.off + ulen;
		if (!parse_gue(skb, in.off + sizeof udp, &in))
			return count(MALFORMED_GUE, TC_ACT_SHOT);
	} else {
		in.proto = ip.protocol;
		in.kind = ip.protocol == IPPROTO_IPIP ? DECAP_IPIP : DECAP_IPIP6;
	}
	if (!inner_ok(skb, &in))
		return count(MALFORMED_INNER, TC_ACT_SHOT);
	return strip(skb, &in, false, ip.tos & 3);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

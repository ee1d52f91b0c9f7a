// SPDX-License-Identifier: BSD-3-Clause
//
// Health checks of DSR backends through their tunnel, a tc (cls_bpf, direct-action) egress
// program on the control plane's host. In the modes ipip, gue and l2dsr a client's packet
// reaches the backend encapsulated (or re-addressed at layer 2) and addressed to the VIP,
// which the backend holds on lo; a check of the backend's own address:port would pass
// with the tunnel or the VIP broken. So the control plane checks VIP:port instead, from a
// socket with SO_MARK set to a per-backend mark, and this program sends each packet of that
// socket the way rondo's dataplane sends a client's (dataplane/fwd/encap.h):
//   - ipip to an IPv4 backend: inside an outer IPv4 header (protocol 4, TTL 64, ToS, id and
//     DF from the inner header) from `src` (or the inner source) to the backend;
//   - gue to an IPv4 backend: inside IPv4 + UDP (source port 49152-65535 from the flow's
//     hash, destination `gue_port`, checksum 0) + a 4-byte GUE header (variant 0, proto 4);
//   - ipip to an IPv6 backend: inside an outer IPv6 header (next header 41 for an IPv6 VIP's
//     check, 4 for an IPv4 VIP's; hop limit 64, traffic class from the inner packet, flow
//     label from the flow's hash);
//   - gue to an IPv6 backend: inside IPv6 + UDP + GUE (proto 41 or 4), the UDP checksum
//     computed (mandatory over IPv6; gue6_checksum says how);
//   - l2dsr: unchanged (the backend must be on-link from this host too);
// then, in every mode, to the backend's next hop: bpf_fib_lookup on the backend's address
// gives the interface and MACs, bpf_redirect sends it there; when the next hop's MAC is not
// known yet, bpf_redirect_neigh lets the kernel resolve it (ARP or NDP). The reply comes
// from the VIP straight to the checker's address, unencapsulated, and the kernel gives it
// to the socket.
//
// Outer source: `src`, else the inner packet's (the checker's address). An IPv4 VIP's check
// to an IPv6 backend has no IPv6 source of its own: the fib lookup picks the one the kernel
// would use towards the backend (BPF_FIB_LOOKUP_SRC, Linux 6.7).
//
// Which packets: skb->mark in rondo's range ((mark & HC_MARK_MASK) == mark_base). A mark in
// the range with no entry in `hc_backends`, a packet whose family the backend's mode cannot
// carry, a backend with no route, an l2dsr backend behind a gateway: dropped and counted,
// never sent on as it is (to the VIP, it would reach some backend through the load balancer
// and pass whatever this backend's state). Other packets: untouched. The mark is cleared
// once the packet is handled, so that a packet redirected out of the interface it came from
// is not taken a second time.
//
// Where it runs: on the egress hook of the interface the kernel routes marked packets to
// (docs/modes.md, "Health checks in the DSR modes"): a device of its own selected by a
// fwmark rule (one per family), or the interface of the route to the VIPs. Ethernet devices
// only.
#include <linux/bpf.h>
#include <linux/if_ether.h>
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
#include "hc_encap/hc_encap.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

// TC_ACT_UNSPEC, not OK, for what is not ours: a later filter on the hook still runs.
enum { PASS = TC_ACT_UNSPEC };

enum { IPV4_HLEN = 20, IPV6_HLEN = 40, UDP_HLEN = 8, GUE_HLEN = 4, OUTER_TTL = 64 };

// The marks taken: (mark & HC_MARK_MASK) == mark_base. The control plane writes it before
// loading (--dsr-check-mark-base); the default is for loaders that do not.
const volatile __u32 mark_base = HC_MARK_BASE_DEFAULT;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);	// one per mark in the range
	__type(key, __u32);
	__type(value, struct hc_backend);
} hc_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HC_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} hc_stats SEC(".maps");

// Count one packet under `c` and return `verdict`.
static __always_inline int count(enum hc_counter c, int verdict)
{
	count_in(&hc_stats, c);
	return verdict;
}

// The outer IPv4 header for `payload` bytes of protocol `proto`, as encap.h writes it.
static __always_inline void outer_ipv4(struct iphdr *o, const struct iphdr *in, __u32 payload,
				       __u8 proto, __u32 src, __u32 dst)
{
	o->version = 4;
	o->ihl = 5;
	o->tos = in->tos;
	o->tot_len = bpf_htons(IPV4_HLEN + payload);
	o->id = in->id;
	o->frag_off = in->frag_off & bpf_htons(0x4000);	// DF only
	o->ttl = OUTER_TTL;
	o->protocol = proto;
	o->check = 0;
	o->saddr = src;
	o->daddr = dst;
	__u64 sum = bpf_csum_diff(NULL, 0, (__be32 *)o, IPV4_HLEN, 0);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	o->check = (__u16)~sum;
}

// What the program needs of the packet a marked socket sent.
struct inner {
	union {
		struct iphdr v4;
		struct ipv6hdr v6;
	} h;
	bool v6;
	__u32 len;	// the whole packet, IP header included
	__u8 tos;	// its ToS or traffic class
	__u8 proto;	// its transport protocol (an IPv6 packet: the first next header)
};

// Read the IP header after the Ethernet header. False: neither IPv4 nor IPv6.
static __always_inline bool read_inner(struct __sk_buff *skb, struct inner *in)
{
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN, &in->h.v4, sizeof in->h.v4) < 0 ||
		    in->h.v4.version != 4)
			return false;
		in->v6 = false;
		in->len = bpf_ntohs(in->h.v4.tot_len);
		in->tos = in->h.v4.tos;
		in->proto = in->h.v4.protocol;
		return true;
	}
	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN, &in->h.v6, sizeof in->h.v6) < 0 ||
		    in->h.v6.version != 6)
			return false;
		in->v6 = true;
		in->len = IPV6_HLEN + bpf_ntohs(in->h.v6.payload_len);
		in->tos = in->h.v6.priority << 4 | in->h.v6.flow_lbl[0] >> 4;
		in->proto = in->h.v6.nexthdr;
		return true;
	}
	return false;
}

// A 64-bit running ones' complement sum folded to 16 bits.
static __always_inline __u16 fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

// The outer UDP checksum of gue over IPv6, which IPv6 makes mandatory (RFC 8200 8.1; Linux's
// fou drops a zero one, and the dataplane computes it in full). It covers the inner packet,
// whose TCP checksum is still CHECKSUM_PARTIAL here on tc egress (the socket's stack leaves
// it to the device: the field holds only the pseudo-header's sum). So, as the kernel's own
// UDP tunnels do (local checksum offload, lco_csum in include/linux/skbuff.h): once the
// device fills the inner checksum in, the inner TCP segment sums to the complement of its
// pseudo-header, whatever its bytes; that stands for the segment, and the result is right
// whether the inner checksum is partial or already complete. The inner IPv4 header, checksummed,
// sums to zero and is left out; an inner IPv6 header is summed. The inner packet must be TCP
// (a UDP one could carry no checksum), which the caller checks.
static __always_inline __u16 gue6_checksum(const struct ipv6hdr *outer, const void *udp_gue,
					   const struct inner *in)
{
	struct {
		__u32 src[4];
		__u32 dst[4];
		__be32 len;
		__u8 zero[3];
		__u8 next;
	} ph6 = {};
	struct {
		__be32 src;
		__be32 dst;
		__u8 zero;
		__u8 proto;
		__be16 len;
	} ph4 = {};
	__s64 s;
	__u64 sum = 0;

	// The inner segment's pseudo-header (RFC 793 / RFC 8200 8.1).
	if (in->v6) {
		__builtin_memcpy(ph6.src, &in->h.v6.saddr, 16);
		__builtin_memcpy(ph6.dst, &in->h.v6.daddr, 16);
		ph6.len = bpf_htonl(in->len - IPV6_HLEN);
		ph6.next = in->proto;
		s = bpf_csum_diff(NULL, 0, (__be32 *)&ph6, sizeof ph6, 0);
	} else {
		ph4.src = in->h.v4.saddr;
		ph4.dst = in->h.v4.daddr;
		ph4.proto = in->proto;
		ph4.len = bpf_htons(in->len - in->h.v4.ihl * 4);
		s = bpf_csum_diff(NULL, 0, (__be32 *)&ph4, sizeof ph4, 0);
	}
	if (s < 0)
		return 0;
	sum += (__u16)~fold(s);	// the inner segment, checksum included

	if (in->v6) {
		s = bpf_csum_diff(NULL, 0, (__be32 *)&in->h.v6, IPV6_HLEN, 0);
		if (s < 0)
			return 0;
		sum += s;
	}
	s = bpf_csum_diff(NULL, 0, (__be32 *)udp_gue, UDP_HLEN + GUE_HLEN, 0);	// check = 0
	if (s < 0)
		return 0;
	sum += s;

	// The outer pseudo-header.
	__builtin_memcpy(ph6.src, &outer->saddr, 16);
	__builtin_memcpy(ph6.dst, &outer->daddr, 16);
	ph6.len = bpf_htonl(bpf_ntohs(outer->payload_len));
	ph6.next = IPPROTO_UDP;
	s = bpf_csum_diff(NULL, 0, (__be32 *)&ph6, sizeof ph6, 0);
	if (s < 0)
		return 0;
	sum += s;
	const __u16 c = ~fold(sum);
	return c ? c : 0xffff;	// 0 means "no checksum" (RFC 768)
}

// Push the outer IPv4 headers of `b` in front of the inner IPv4 packet `in`. False: refused.
static __always_inline bool encapsulate4(struct __sk_buff *skb, const struct hc_backend *b,
					 const struct iphdr *in, __u16 entropy)
{
	struct {
		struct iphdr ip;
		struct udphdr udp;
		__u8 gue[GUE_HLEN];
	} h = {};	// 20 + 8 + 4 bytes, no padding (asserted below)
	_Static_assert(sizeof h == IPV4_HLEN + UDP_HLEN + GUE_HLEN, "outer headers unpadded");
	const __u32 inner_len = bpf_ntohs(in->tot_len);
	const __u32 src = b->src[0] ? b->src[0] : in->saddr;
	const bool gue = b->mode == HC_MODE_GUE;
	const __u32 len = gue ? sizeof h : IPV4_HLEN;
	__u64 flags = BPF_F_ADJ_ROOM_ENCAP_L3_IPV4;

	if (gue) {
		flags |= BPF_F_ADJ_ROOM_ENCAP_L4_UDP;
		outer_ipv4(&h.ip, in, UDP_HLEN + GUE_HLEN + inner_len, IPPROTO_UDP, src, b->addr[0]);
		h.udp.source = bpf_htons(entropy);
		h.udp.dest = b->gue_port;
		h.udp.len = bpf_htons(UDP_HLEN + GUE_HLEN + inner_len);
		h.udp.check = 0;
		h.gue[1] = IPPROTO_IPIP;	// variant 0, no extension words, proto 4: IPv4 inside
	} else {
		outer_ipv4(&h.ip, in, inner_len, IPPROTO_IPIP, src, b->addr[0]);
	}
	if (bpf_skb_adjust_room(skb, len, BPF_ADJ_ROOM_MAC, flags) < 0)
		return false;
	return bpf_skb_store_bytes(skb, ETH_HLEN, &h, len, 0) == 0;
}

// Push the outer IPv6 headers of `b` (from `src`) in front of the inner packet `in`, IPv4 or
// IPv6, as dataplane/fwd/encap.h's write_ipv6 does: traffic class from the inner packet, the
// flow label the GUE source port's value (one per flow), hop limit 64. False: refused.
static __always_inline bool encapsulate6(struct __sk_buff *skb, const struct hc_backend *b,
					 const struct inner *in, const __u32 *src, __u16 entropy)
{
	struct {
		struct ipv6hdr ip;
		struct udphdr udp;
		__u8 gue[GUE_HLEN];
	} h = {};	// 40 + 8 + 4 bytes, no padding (asserted below)
	_Static_assert(sizeof h == IPV6_HLEN + UDP_HLEN + GUE_HLEN, "outer headers unpadded");
	const bool gue = b->mode == HC_MODE_GUE;
	const __u8 inside = in->v6 ? IPPROTO_IPV6 : IPPROTO_IPIP;	// 41 or 4
	const __u32 len = gue ? sizeof h : IPV6_HLEN;
	const __u32 payload = gue ? UDP_HLEN + GUE_HLEN + in->len : in->len;
	__u64 flags = BPF_F_ADJ_ROOM_ENCAP_L3_IPV6;

	h.ip.version = 6;
	h.ip.priority = in->tos >> 4;
	h.ip.flow_lbl[0] = (__u8)(in->tos << 4);	// the label's top 4 bits: 0 (16-bit value)
	h.ip.flow_lbl[1] = entropy >> 8;
	h.ip.flow_lbl[2] = (__u8)entropy;
	h.ip.payload_len = bpf_htons(payload);
	h.ip.nexthdr = gue ? IPPROTO_UDP : inside;
	h.ip.hop_limit = OUTER_TTL;
	__builtin_memcpy(&h.ip.saddr, src, 16);
	__builtin_memcpy(&h.ip.daddr, b->addr, 16);
	if (gue) {
		flags |= BPF_F_ADJ_ROOM_ENCAP_L4_UDP;
		h.udp.source = bpf_htons(entropy);
		h.udp.dest = b->gue_port;
		h.udp.len = bpf_htons(payload);
		h.gue[1] = inside;	// variant 0, no extension words
		h.udp.check = gue6_checksum(&h.ip, &h.udp, in);
		if (h.udp.check == 0)
			return false;
	}
	if (bpf_skb_adjust_room(skb, len, BPF_ADJ_ROOM_MAC, flags) < 0)
		return false;
	// adjust_room set skb->protocol to IPv6; the frame's EtherType is ours to set.
	const __be16 type = bpf_htons(ETH_P_IPV6);
	if (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &type, sizeof type, 0) < 0)
		return false;
	return bpf_skb_store_bytes(skb, ETH_HLEN, &h, len, 0) == 0;
}

// Whether a backend of `b`'s family and mode can take a packet of `in`'s family: the
// combinations the dataplane sends (docs/modes.md, the table of families).
static __always_inline bool family_fits(const struct hc_backend *b, const struct inner *in)
{
	if (b->family == HC_FAMILY_V4)
		return !in->v6;
	if (b->family == HC_FAMILY_V6)
		return b->mode != HC_MODE_L2DSR || in->v6;
	return false;
}

SEC("tc")
int rondo_hc_encap(struct __sk_buff *skb)
{
	const __u32 mark = skb->mark;
	struct inner in = {};

	if ((mark & HC_MARK_MASK) != mark_base)
		return PASS;
	skb->mark = 0;
	const struct hc_backend *found = bpf_map_lookup_elem(&hc_backends, &mark);
	if (!found)
		return count(HC_DROP_NO_ENTRY, TC_ACT_SHOT);
	const struct hc_backend b = *found;	// the control plane may replace it meanwhile
	if (!read_inner(skb, &in) || !family_fits(&b, &in))
		return count(HC_DROP_NOT_IP, TC_ACT_SHOT);
	const bool v6 = b.family == HC_FAMILY_V6;
	if (v6 && b.mode == HC_MODE_GUE && in.proto != IPPROTO_TCP)
		return count(HC_DROP_NOT_TCP, TC_ACT_SHOT);
	// The flow's entropy, as the dataplane puts its hash in the GUE source port (and, over
	// IPv6, the flow label).
	const __u16 entropy = 0xc000 | (bpf_get_hash_recalc(skb) & 0x3fff);

	// The way to the backend, looked up as for a packet that arrived on this interface and
	// is forwarded (BPF_FIB_LOOKUP_OUTPUT would only take routes out of this interface). The
	// kernel does it only where net.ipv4.conf.<this interface>.forwarding (IPv6:
	// net.ipv6.conf) is 1, which the control plane checks before attaching. Mark 0: the main
	// tables, not the fwmark rule that brought the packet here.
	struct bpf_fib_lookup fib = {};
	__u32 flags = 0;
	fib.ifindex = skb->ifindex;
	if (v6) {
		fib.family = AF_INET6;
		if (b.src[0] | b.src[1] | b.src[2] | b.src[3])
			__builtin_memcpy(fib.ipv6_src, b.src, 16);
		else if (in.v6)
			__builtin_memcpy(fib.ipv6_src, &in.h.v6.saddr, 16);
		else
			flags = BPF_FIB_LOOKUP_SRC;	// an IPv4 VIP's check: the route's source
		__builtin_memcpy(fib.ipv6_dst, b.addr, 16);
	} else {
		fib.family = AF_INET;
		fib.ipv4_src = b.src[0] ? b.src[0] : in.h.v4.saddr;
		fib.ipv4_dst = b.addr[0];
	}
	const long rc = bpf_fib_lookup(skb, &fib, sizeof fib, flags);
	if (rc == BPF_FIB_LKUP_RET_NO_SRC_ADDR)
		return count(HC_DROP_NO_SOURCE, TC_ACT_SHOT);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return count(HC_DROP_NO_ROUTE, TC_ACT_SHOT);

	// fib's destination is the next hop now: the backend, or the gateway towards it. l2dsr
	// sends the packet as it is, to the VIP: only the backend's own MAC gets it there.
	if (b.mode == HC_MODE_L2DSR &&
	    (v6 ? (fib.ipv6_dst[0] != b.addr[0] || fib.ipv6_dst[1] != b.addr[1] ||
		   fib.ipv6_dst[2] != b.addr[2] || fib.ipv6_dst[3] != b.addr[3])
		: fib.ipv4_dst != b.addr[0]))
		return count(HC_DROP_NOT_ON_LINK, TC_ACT_SHOT);

	enum hc_counter sent = HC_SENT_L2DSR;
	if (b.mode == HC_MODE_IPIP || b.mode == HC_MODE_GUE) {
		const bool gue = b.mode == HC_MODE_GUE;
		bool ok;
		if (v6) {
			ok = encapsulate6(skb, &b, &in, fib.ipv6_src, entropy);
			sent = gue ? HC_ENCAP_GUE6 : HC_ENCAP_IPIP6;
		} else {
			ok = encapsulate4(skb, &b, &in.h.v4, entropy);
			sent = gue ? HC_ENCAP_GUE : HC_ENCAP_IPIP;
		}
		if (!ok)
			return count(HC_DROP_ADJUST_FAILED, TC_ACT_SHOT);
	}
	count(sent, 0);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		struct bpf_redir_neigh nh = {};
		if (v6) {
			nh.nh_family = AF_INET6;
			__builtin_memcpy(nh.ipv6_nh, fib.ipv6_dst, 16);
		} else {
			nh.nh_family = AF_INET;
			nh.ipv4_nh = fib.ipv4_dst;
		}
		count(HC_NEIGH_PENDING, 0);
		return bpf_redirect_neigh(fib.ifindex, &nh, sizeof nh, 0);
	}
	bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_dest), fib.dmac, ETH_ALEN, 0);
	bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_source), fib.smac, ETH_ALEN, 0);
	return bpf_redirect(fib.ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

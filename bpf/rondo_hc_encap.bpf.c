// SPDX-License-Identifier: BSD-3-Clause
//
// Health checks of DSR backends through their tunnel, a tc (cls_bpf, direct-action) egress
// program on the control plane's host. In the modes ipip, gue and l2dsr a client's packet
// reaches the backend encapsulated (or re-addressed at layer 2) and addressed to the VIP,
// which the backend holds on lo; a check of the backend's own address:port would pass
// with the tunnel or the VIP broken. So the control plane checks VIP:port instead, from a
// socket with SO_MARK set to a per-backend mark, and this program sends each packet of that
// socket the way rondo's dataplane sends a client's (dataplane/fwd/encap.h):
//   - ipip: inside an outer IPv4 header (protocol 4, TTL 64, ToS, id and DF from the inner
//     header) from `src` (or the inner source) to the backend;
//   - gue: inside IPv4 + UDP (source port 49152-65535 from the flow's hash, destination
//     `gue_port`, checksum 0) + a 4-byte GUE header (variant 0, proto 4);
//   - l2dsr: unchanged (the backend must be on-link from this host too);
// then, in every mode, to the backend's next hop: bpf_fib_lookup on the backend's address
// gives the interface and MACs, bpf_redirect sends it there; when the next hop's MAC is not
// known yet, bpf_redirect_neigh lets the kernel resolve it. The reply comes from the VIP
// straight to the checker's address, unencapsulated, and the kernel gives it to the socket.
//
// Which packets: skb->mark in rondo's range ((mark & HC_MARK_MASK) == mark_base). A mark in
// the range with no entry in `hc_backends`, a packet that is not IPv4, a backend with no
// route, an l2dsr backend behind a gateway: dropped and counted, never sent on as it is
// (to the VIP, it would reach some backend through the load balancer and pass whatever this
// backend's state). Other packets: untouched. The mark is cleared once the packet is handled, so that a packet
// redirected out of the interface it came from is not taken a second time.
//
// Where it runs: on the egress hook of the interface the kernel routes marked packets to
// (docs/modes.md, "Health checks in the DSR modes"): a device of its own selected by a
// fwmark rule, or the interface of the route to the VIPs. Ethernet devices only.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
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

// TC_ACT_UNSPEC, not OK, for what is not ours: a later filter on the hook still runs.
enum { PASS = TC_ACT_UNSPEC };

enum { IPV4_HLEN = 20, UDP_HLEN = 8, GUE_HLEN = 4, OUTER_TTL = 64 };

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

// Push the outer headers of `b` in front of the inner IPv4 packet `in`. False: refused.
static __always_inline bool encapsulate(struct __sk_buff *skb, const struct hc_backend *b,
					const struct iphdr *in)
{
	struct {
		struct iphdr ip;
		struct udphdr udp;
		__u8 gue[GUE_HLEN];
	} h = {};	// 20 + 8 + 4 bytes, no padding (asserted below)
	_Static_assert(sizeof h == IPV4_HLEN + UDP_HLEN + GUE_HLEN, "outer headers unpadded");
	const __u32 inner_len = bpf_ntohs(in->tot_len);
	const __u32 src = b->src ? b->src : in->saddr;
	const bool gue = b->mode == HC_MODE_GUE;
	const __u32 len = gue ? sizeof h : IPV4_HLEN;
	__u64 flags = BPF_F_ADJ_ROOM_ENCAP_L3_IPV4;

	if (gue) {
		flags |= BPF_F_ADJ_ROOM_ENCAP_L4_UDP;
		outer_ipv4(&h.ip, in, UDP_HLEN + GUE_HLEN + inner_len, IPPROTO_UDP, src, b->addr);
		// The flow's entropy in the source port, as the dataplane does with its hash.
		h.udp.source = bpf_htons(0xc000 | (bpf_get_hash_recalc(skb) & 0x3fff));
		h.udp.dest = b->gue_port;
		h.udp.len = bpf_htons(UDP_HLEN + GUE_HLEN + inner_len);
		h.udp.check = 0;
		h.gue[1] = 4;	// variant 0, no extension words, proto 4: IPv4 inside
	} else {
		outer_ipv4(&h.ip, in, inner_len, IPPROTO_IPIP, src, b->addr);
	}
	if (bpf_skb_adjust_room(skb, len, BPF_ADJ_ROOM_MAC, flags) < 0)
		return false;
	return bpf_skb_store_bytes(skb, ETH_HLEN, &h, len, 0) == 0;
}

SEC("tc")
int rondo_hc_encap(struct __sk_buff *skb)
{
	const __u32 mark = skb->mark;
	struct iphdr in;

	if ((mark & HC_MARK_MASK) != mark_base)
		return PASS;
	skb->mark = 0;
	const struct hc_backend *found = bpf_map_lookup_elem(&hc_backends, &mark);
	if (!found)
		return count(HC_DROP_NO_ENTRY, TC_ACT_SHOT);
	const struct hc_backend b = *found;	// the control plane may replace it meanwhile
	if (skb->protocol != bpf_htons(ETH_P_IP) ||
	    bpf_skb_load_bytes(skb, ETH_HLEN, &in, sizeof in) < 0 || in.version != 4)
		return count(HC_DROP_NOT_IPV4, TC_ACT_SHOT);

	// The way to the backend, looked up as for a packet that arrived on this interface and
	// is forwarded (BPF_FIB_LOOKUP_OUTPUT would only take routes out of this interface). The
	// kernel does it only where net.ipv4.conf.<this interface>.forwarding is 1, which the
	// control plane checks before attaching. Mark 0: the main tables, not the fwmark rule
	// that brought the packet here.
	struct bpf_fib_lookup fib = {};
	fib.family = AF_INET;
	fib.ipv4_src = b.src ? b.src : in.saddr;
	fib.ipv4_dst = b.addr;
	fib.ifindex = skb->ifindex;
	const long rc = bpf_fib_lookup(skb, &fib, sizeof fib, 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return count(HC_DROP_NO_ROUTE, TC_ACT_SHOT);

	// l2dsr sends the packet as it is, to the VIP: only the backend's own MAC gets it there.
	if (b.mode == HC_MODE_L2DSR && fib.ipv4_dst != b.addr)
		return count(HC_DROP_NOT_ON_LINK, TC_ACT_SHOT);

	enum hc_counter sent = HC_SENT_L2DSR;
	if (b.mode == HC_MODE_IPIP || b.mode == HC_MODE_GUE) {
		if (!encapsulate(skb, &b, &in))
			return count(HC_DROP_ADJUST_FAILED, TC_ACT_SHOT);
		sent = b.mode == HC_MODE_GUE ? HC_ENCAP_GUE : HC_ENCAP_IPIP;
	}
	count(sent, 0);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		// fib.ipv4_dst is the next hop now (the backend, or the gateway towards it).
		struct bpf_redir_neigh nh = {.nh_family = AF_INET, .ipv4_nh = fib.ipv4_dst};
		count(HC_NEIGH_PENDING, 0);
		return bpf_redirect_neigh(fib.ifindex, &nh, sizeof nh, 0);
	}
	bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_dest), fib.dmac, ETH_ALEN, 0);
	bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_source), fib.smac, ETH_ALEN, 0);
	return bpf_redirect(fib.ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

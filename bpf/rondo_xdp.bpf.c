// SPDX-License-Identifier: BSD-3-Clause
//
// rondo's XDP program: share a NIC (or veth) between the host kernel and rondo's AF_XDP
// dataplane. Frames for rondo's own addresses (VIPs and full-NAT local ips, and ARP asking
// for them; for IPv6 the neighbour solicitations asking for them) are redirected to the
// AF_XDP socket of the receive queue; everything else (SSH, BGP, the host's own ARP and
// NDP, other multicast) passes to the kernel untouched.
//
// Loaded by DPDK's net_af_xdp PMD (`xdp_prog=`), which fills `xsks_map` with its sockets.
// rondo-dataplane fills `rondo_addrs` and `rondo_addrs6` from every configuration it
// applies (port/xdp_filter.h).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/icmpv6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

// IPv4 addresses (network order) that rondo owns. The value is unused (1).
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} rondo_addrs SEC(".maps");

// IPv6 addresses rondo owns (16 bytes, as on the wire). The value says what goes to rondo:
// RONDO_ALL everything (VIPs, local ips); RONDO_NDP only neighbour solicitations and
// advertisements (the port's link-local address, while rondo has IPv6 addresses: the host
// derives the same one from the same MAC, and the advertisements answering rondo's own
// solicitations come to it; those answering the host's solicitations from that address go
// to rondo too, so on a shared NIC the host should reach its IPv6 neighbours from a global
// address).
enum { RONDO_ALL = 1, RONDO_NDP = 2 };
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct in6_addr);
	__type(value, __u8);
} rondo_addrs6 SEC(".maps");

// What bpf_redirect_map returns when the queue has no socket yet: the frame goes to the
// kernel. A test (BPF_PROG_TEST_RUN has no AF_XDP socket) sets it to XDP_DROP before
// loading, to tell "for rondo" from "for the host".
const volatile __u32 no_socket_action = XDP_PASS;

struct vlan_hdr {
	__be16 tci;
	__be16 proto;
};

// The start of a neighbour solicitation or advertisement (RFC 4861 4.3, 4.4).
struct nd_msg_hdr {
	__u8 type, code;
	__be16 csum;
	__be32 flags;
	struct in6_addr target;
};

// ARP for Ethernet/IPv4 (RFC 826), the fields up to the target address.
struct arp_eth_ipv4 {
	__be16 htype, ptype;
	__u8 hlen, plen;
	__be16 op;
	__u8 sha[6];
	__be32 spa;
	__u8 tha[6];
	__be32 tpa;
} __attribute__((packed));

static __always_inline int to_rondo(struct xdp_md *ctx)
{
	// No socket on this queue (not started yet): let the kernel have it.
	return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, no_socket_action);
}

static __always_inline int ipv6(struct xdp_md *ctx, struct ipv6hdr *ip, void *end)
{
	struct nd_msg_hdr *nd = (void *)(ip + 1);
	__u8 *what;
	int ndp;

	if ((void *)(ip + 1) > end)
		return XDP_PASS;
	// NDP: ICMPv6 135/136 right after the fixed header (RFC 4861 forbids nothing in
	// between in practice: every implementation sends them bare).
	ndp = ip->nexthdr == IPPROTO_ICMPV6 && (void *)(nd + 1) <= end &&
	      (nd->type == 135 || nd->type == 136);
	what = bpf_map_lookup_elem(&rondo_addrs6, &ip->daddr);
	if (what && (*what == RONDO_ALL || ndp))
		return to_rondo(ctx);
	// A solicitation for one of ours goes to the target's solicited-node group (ff02::1:ffXX:XXXX,
	// RFC 4291 2.7.1): multicast, so it is found by its target. Any other multicast (the
	// host's MLD, router advertisements, someone else's solicitations) is the host's.
	if (ndp && nd->type == 135 && ip->daddr.in6_u.u6_addr8[0] == 0xff &&
	    bpf_map_lookup_elem(&rondo_addrs6, &nd->target))
		return to_rondo(ctx);
	return XDP_PASS;
}

SEC("xdp")
int rondo_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *l3 = eth + 1;
	__be16 proto;

	if (l3 > end)
		return XDP_PASS;
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_hdr *v = l3;
		if ((void *)(v + 1) > end)
			return XDP_PASS;
		proto = v->proto;
		l3 = v + 1;
	}
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;
		if ((void *)(ip + 1) > end)
			return XDP_PASS;
		if (bpf_map_lookup_elem(&rondo_addrs, &ip->daddr))
			return to_rondo(ctx);
		return XDP_PASS;
	}
	if (proto == bpf_htons(ETH_P_IPV6))
		return ipv6(ctx, l3, end);
	if (proto == bpf_htons(ETH_P_ARP)) {
		struct arp_eth_ipv4 *a = l3;
		__be32 tpa;
		if ((void *)(a + 1) > end)
			return XDP_PASS;
		tpa = a->tpa;
		if (bpf_map_lookup_elem(&rondo_addrs, &tpa))
			return to_rondo(ctx);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

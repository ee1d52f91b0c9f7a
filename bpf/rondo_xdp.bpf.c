// SPDX-License-Identifier: BSD-3-Clause
//
// rondo's XDP program: share a NIC (or veth) between the host kernel and rondo's AF_XDP
// dataplane. Frames for rondo's own addresses (VIPs and full-NAT local ips, and ARP asking
// for them) are redirected to the AF_XDP socket of the receive queue; everything else (SSH,
// BGP, the host's own ARP) passes to the kernel untouched.
//
// Loaded by DPDK's net_af_xdp PMD (`xdp_prog=`), which fills `xsks_map` with its sockets.
// rondo-dataplane fills `rondo_addrs` from every configuration it applies.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>

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

struct vlan_hdr {
	__be16 tci;
	__be16 proto;
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
	return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
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

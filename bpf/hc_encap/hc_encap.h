// SPDX-License-Identifier: BSD-3-Clause
//
// What bpf/rondo_hc_encap.bpf.c and the control plane (controlplane/health/dsr_tunnel.*)
// share: the layout of the map `hc_backends` (skb->mark -> where and how to send a health
// check's packet) and the counters of `hc_stats`, so that both sides read them alike.
#pragma once

#include <linux/types.h>

// The marks the program takes: (mark & mask) == base. The control plane gives each checked
// backend of a DSR VIP one mark in it (base | index) and writes base into the program's
// .rodata before loading; the mask is fixed, so the range is base .. base + 0xffff.
#define HC_MARK_MASK 0xffff0000u
#define HC_MARK_BASE_DEFAULT 0x52440000u	// "RD" in the top 16 bits

enum hc_mode {
	HC_MODE_IPIP = 2,	// the values of api::Mode (dataplane/api/ctl.h)
	HC_MODE_GUE = 3,
	HC_MODE_L2DSR = 4,
};

// The backend's family: the outer header's (ipip, gue) or the next hop's (l2dsr).
enum hc_family {
	HC_FAMILY_V4 = 4,
	HC_FAMILY_V6 = 6,
};

// The value of `hc_backends`, keyed by the mark (__u32). Addresses and ports network order;
// an IPv4 address in the first word of its array, the rest 0.
struct hc_backend {
	__u32 addr[4];		// the backend: outer destination (ipip, gue) or next hop (l2dsr)
	__u32 src[4];		// outer source; all 0: the inner packet's source (the checker's
				// address), or for an IPv4 packet to an IPv6 backend the source
				// the kernel picks for the route to the backend
	__u16 gue_port;		// gue: the UDP destination port the backend decapsulates on
	__u8 mode;		// enum hc_mode
	__u8 family;		// enum hc_family
};

enum hc_counter {
	HC_ENCAP_IPIP,		// encapsulated in IPv4 (protocol 4) and sent
	HC_ENCAP_GUE,		// encapsulated in IPv4 + UDP + GUE and sent
	HC_SENT_L2DSR,		// sent unchanged to the backend's MAC
	HC_NEIGH_PENDING,	// of those sent: the next hop's MAC was not known yet, sent with
				// bpf_redirect_neigh (the kernel resolves it, as for its own packets)
	HC_DROP_NO_ENTRY,	// dropped: a mark in the range that no backend has (a removed one)
	HC_DROP_NOT_IP,		// dropped: a marked packet that is neither IPv4 nor IPv6, or
				// whose family the backend's mode cannot carry (IPv6 to an IPv4
				// backend, IPv4 in l2dsr to an IPv6 one: validation refuses both)
	HC_DROP_NO_ROUTE,	// dropped: bpf_fib_lookup found no way to the backend
	HC_DROP_ADJUST_FAILED,	// dropped: bpf_skb_adjust_room refused the packet
	HC_DROP_NOT_ON_LINK,	// dropped: an l2dsr backend reached through a gateway (the
				// gateway would route the VIP: to the load balancer, not to it)
	HC_ENCAP_IPIP6,		// encapsulated in IPv6 (next header 41 or 4) and sent
	HC_ENCAP_GUE6,		// encapsulated in IPv6 + UDP (checksummed) + GUE and sent
	HC_DROP_NO_SOURCE,	// dropped: an IPv4 packet to an IPv6 backend, and the kernel has
				// no IPv6 source address for the route to it
	HC_DROP_NOT_TCP,	// dropped: gue over IPv6, a packet that is not TCP (the outer UDP
				// checksum is derived from the inner TCP checksum's)
	HC_COUNTERS,
};

#ifdef __cplusplus
// In enum order, as the control plane logs and tests name them.
inline constexpr const char* kHcCounterNames[] = {
    "encap_ipip",       "encap_gue",       "sent_l2dsr",      "neigh_pending",
    "drop_no_entry",    "drop_not_ip",     "drop_no_route",   "drop_adjust_failed",
    "drop_not_on_link", "encap_ipip6",     "encap_gue6",      "drop_no_source",
    "drop_not_tcp",
};
static_assert(sizeof kHcCounterNames / sizeof kHcCounterNames[0] == HC_COUNTERS,
              "one name per counter");
#endif

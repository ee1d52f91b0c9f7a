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

// The value of `hc_backends`, keyed by the mark (__u32). Addresses and ports network order.
struct hc_backend {
	__u32 addr;		// the backend: outer destination (ipip, gue) or next hop (l2dsr)
	__u32 src;		// outer source; 0: the inner packet's source (the checker's address)
	__u16 gue_port;		// gue: the UDP destination port the backend decapsulates on
	__u8 mode;		// enum hc_mode
	__u8 pad;
};

enum hc_counter {
	HC_ENCAP_IPIP,		// encapsulated in IPv4 (protocol 4) and sent
	HC_ENCAP_GUE,		// encapsulated in IPv4 + UDP + GUE and sent
	HC_SENT_L2DSR,		// sent unchanged to the backend's MAC
	HC_NEIGH_PENDING,	// of those sent: the next hop's MAC was not known yet, sent with
				// bpf_redirect_neigh (the kernel resolves it, as for its own packets)
	HC_DROP_NO_ENTRY,	// dropped: a mark in the range that no backend has (a removed one)
	HC_DROP_NOT_IPV4,	// dropped: a marked packet that is not IPv4
	HC_DROP_NO_ROUTE,	// dropped: bpf_fib_lookup found no way to the backend
	HC_DROP_ADJUST_FAILED,	// dropped: bpf_skb_adjust_room refused the packet
	HC_DROP_NOT_ON_LINK,	// dropped: an l2dsr backend reached through a gateway (the
				// gateway would route the VIP: to the load balancer, not to it)
	HC_COUNTERS,
};

#ifdef __cplusplus
// In enum order, as the control plane logs and tests name them.
inline constexpr const char* kHcCounterNames[] = {
    "encap_ipip",       "encap_gue",       "sent_l2dsr",      "neigh_pending",
    "drop_no_entry",    "drop_not_ipv4",   "drop_no_route",   "drop_adjust_failed",
    "drop_not_on_link",
};
static_assert(sizeof kHcCounterNames / sizeof kHcCounterNames[0] == HC_COUNTERS,
              "one name per counter");
#endif

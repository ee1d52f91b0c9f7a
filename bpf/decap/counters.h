// SPDX-License-Identifier: BSD-3-Clause
//
// The counters of bpf/rondo_decap.bpf.c, shared by the program (C, clang -target bpf) and
// rondo-decap (C++), so that an index means the same thing on both sides. Each is a slot of
// the per-CPU array `decap_stats`; the loader sums the CPUs.
#pragma once

enum decap_counter {
	DECAP_IPIP,		// IPv4 in IPv4 (protocol 4), decapsulated
	DECAP_IPIP6,		// IPv6 in IPv4 (protocol 41), decapsulated
	DECAP_GUE,		// GUE variant 0 (4-byte header + extension words), decapsulated
	DECAP_GUE_DIRECT,	// GUE variant 1 (IPv4/IPv6 right after the UDP header), decapsulated
	PASS_OUTER_FRAGMENT,	// a fragment of the outer packet: passed to the kernel untouched
	MALFORMED_OUTER,	// dropped: outer IPv4/UDP header bad (IHL, lengths, checksum)
	MALFORMED_GUE,		// dropped: GUE version 2/3, control message, protocol not 4/41
	MALFORMED_INNER,	// dropped: inner header truncated, wrong version, longer than its outer
	DROP_ECN,		// dropped: outer CE over a Not-ECT inner packet (RFC 6040 section 4.2)
	DROP_ADJUST_FAILED,	// dropped: bpf_skb_adjust_room refused the packet
	DECAP_IPIP_OUT6,	// IPv4 in IPv6 (next header 4), decapsulated
	DECAP_IPIP6_OUT6,	// IPv6 in IPv6 (next header 41), decapsulated
	DECAP_GUE_OUT6,		// GUE (either variant) over UDP/IPv6, decapsulated
	DECAP_COUNTERS,
};

#ifdef __cplusplus
// Printed by `rondo-decap stats`, in enum order.
inline constexpr const char* kDecapCounterNames[] = {
    "decap_ipip",       "decap_ipip6",     "decap_gue",       "decap_gue_direct",
    "pass_outer_fragment", "malformed_outer", "malformed_gue", "malformed_inner",
    "drop_ecn",         "drop_adjust_failed", "decap_ipip_out6", "decap_ipip6_out6",
    "decap_gue_out6",
};
static_assert(sizeof kDecapCounterNames / sizeof kDecapCounterNames[0] == DECAP_COUNTERS,
              "one name per counter");
#endif

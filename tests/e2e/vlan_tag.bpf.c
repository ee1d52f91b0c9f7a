// SPDX-License-Identifier: BSD-3-Clause
//
// An 802.1Q access port in a tc program, for the e2e tests (the test kernel has no 8021q
// module): attached with clsact to a host's interface (tools/lib/topo.sh up TAG --vlan OBJ),
// it makes that host a member of VLAN `VID` (a compile-time constant, -DVID=N) and of
// nothing else:
//   - egress: every frame leaves tagged VID (TPID 0x8100, PCP 0);
//   - ingress: a frame tagged VID is untagged and passed on; any other frame (untagged,
//     priority-tagged VID 0, another VID) is dropped, so whatever reaches the host's stack
//     was tagged VID on the wire.
//
// Where the tag is: bpf_skb_vlan_push puts it in the skb's metadata (vlan_tci), and the
// device or the stack writes it into the bytes when the frame leaves without a VLAN offload
// (a veth with txvlan off, a bridge port, an af_packet reader's PACKET_AUXDATA says which).
// On ingress the kernel has already taken a tag out of the bytes into the metadata
// (__netif_receive_skb_core runs skb_vlan_untag before tc), so vlan_present is the test, never
// the ethertype in the bytes. Only one tag: a second one (QinQ) would still be in the bytes
// after the pop, and the stack drops that frame as a protocol it does not speak.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#ifndef VID
#error "build with -DVID=N (1-4094): the VLAN this host is a member of"
#endif
#if VID < 1 || VID > 4094
#error "VID must be 1-4094"
#endif

#define VLAN_VID_MASK 0x0fff

SEC("tc/egress")
int vlan_tag(struct __sk_buff *skb) {
	// A frame that is tagged already (the metadata holds a tag) gets a second, outer tag: the
	// host here never tags by itself, so that would be a test's own QinQ frame.
	if (bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), VID) != 0)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

SEC("tc/ingress")
int vlan_untag(struct __sk_buff *skb) {
	if (!skb->vlan_present || (skb->vlan_tci & VLAN_VID_MASK) != VID)
		return TC_ACT_SHOT;
	if (bpf_skb_vlan_pop(skb) != 0)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";

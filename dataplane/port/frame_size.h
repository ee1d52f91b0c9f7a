// How long a frame the ports must carry at the configured MTU (--mtu), how big the mbufs
// must be to hold one whole (rondo does not chain mbufs: a multi-segment frame is dropped,
// multi_segment), and whether the virtual devices' own buffers are big enough. Plain
// arithmetic on the options and the --vdev strings, so the unit tests check it without EAL.
// docs/operations.md, "MTU and jumbo frames".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rondo::dp {

/// The longest frame an MTU makes: Ethernet header and one 802.1Q tag (no FCS: PMDs strip it).
inline uint32_t max_frame(uint32_t mtu) { return mtu + 14 + 4; }

/// net_af_packet's ring frames: framesz= of its --vdev (2048 if unset); nullopt if `vdev`
/// is not an af_packet device (or framesz= is not a number).
std::optional<uint32_t> af_packet_framesz(const std::string& vdev);
/// The longest Ethernet frame an af_packet ring frame of `framesz` bytes receives whole:
/// the kernel puts the frame at offset 66 (TPACKET_V2: its 52-byte header and address
/// aligned to 16, minus the 14-byte Ethernet header, net/packet/af_packet.c tpacket_rcv)
/// and cuts what does not fit.
inline uint32_t af_packet_max_frame(uint32_t framesz) { return framesz > 66 ? framesz - 66 : 0; }
/// The mbuf room net_af_packet's RX queue setup asks for: framesz less the 32 bytes of
/// TPACKET_V2 header it never copies (rte_eth_af_packet.c: a smaller mbuf fails with ENOMEM).
inline uint32_t af_packet_mbuf_need(uint32_t framesz) { return framesz > 32 ? framesz - 32 : 0; }
/// The longest frame net_af_packet sends from a ring frame of `framesz` bytes: framesz less
/// the TPACKET_V2 header in front of the data (32 bytes, rte_eth_af_packet.c
/// frame_data_size); it frees a longer mbuf unsent. What rondo sends carries its VLAN tag
/// in the bytes (the kernel received it untagged: the tag was metadata), so TX must hold
/// max_frame(mtu), RX mtu + 14.
inline uint32_t af_packet_tx_max_frame(uint32_t framesz) { return framesz > 32 ? framesz - 32 : 0; }

struct FrameSizing {
  uint32_t frame = 0;      // max_frame(mtu)
  uint32_t data_room = 0;  // each mbuf's data room, headroom included
};

/// Size the mbufs for `mtu` and the devices `vdevs` (the --vdev arguments): room for
/// `headroom` plus the largest of a whole frame, 2048 bytes (DPDK's default, what the
/// SYN-proxy and PROXY v2 frames assume) and what each af_packet device's RX needs.
/// false with `*err` when an af_packet device's frames cannot hold a frame of this MTU (its
/// framesz to set is named); `*notes` gets what the operator should know (AF_XDP's limit).
bool size_frames(uint32_t mtu, const std::vector<std::string>& vdevs, uint32_t headroom,
                 FrameSizing* out, std::string* err, std::vector<std::string>* notes);

}  // namespace rondo::dp

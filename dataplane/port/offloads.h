// The kernel-side offloads of an interface an af_packet or AF_XDP port reads. Left on (a
// veth's defaults), the kernel hands the reader GSO/GRO super-frames and segments with
// partial checksums, which rondo cannot forward: it drops them as gso_frame and
// bad_l4_checksum. The dataplane checks at start and says so (docs/deploy.md, "Host
// preparation"); deploy/rondo-host-prep turns them off.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rondo::dp {

/// The offloads on at interface `if_index`, by their ethtool -k names (rx-checksumming,
/// tx-checksumming, tcp-segmentation-offload, generic-segmentation-offload,
/// generic-receive-offload, large-receive-offload). *ifname is set to its name. false with
/// *err when the interface cannot be asked.
bool offloads_on(uint32_t if_index, std::string* ifname, std::vector<std::string>* on, std::string* err);

}  // namespace rondo::dp

// Ethernet ports: configure, start, describe, count. Works for any PMD (PCI NICs,
// net_af_packet / net_af_xdp on a veth, net_tap, net_memif, net_ring), and for bonds of
// ports (net_bonding: active-backup, 802.3ad; docs/operations.md "Bonding").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/api/ctl.h"
#include "dataplane/pkt/mac.h"

struct rte_mempool;

namespace rondo::dp {

struct PortSetup {
  uint16_t n_queues = 1;  // RX and TX queues: one of each per worker
  uint16_t rx_desc = 1024;
  uint16_t tx_desc = 1024;
  rte_mempool* pool = nullptr;
};

/// A net_bonding port: its members are driven by the bonding PMD, never by rondo.
struct BondInfo {
  uint8_t mode = 0;                  // BONDING_MODE_*: 1 active-backup, 4 802.3ad, ...
  std::vector<uint16_t> members;     // port ids
  // 802.3ad without dedicated queues: the bonding PMD sends LACPDUs only from inside a TX
  // burst on the bond, so every worker bursts on it (empty if need be) at least every 100 ms.
  bool lacp_in_bursts = false;
  static constexpr uint16_t kNone = UINT16_MAX;
  // As last seen by port_bond_watch:
  std::vector<uint16_t> active;        // members the bond uses (link up)
  uint16_t primary = kNone;            // the member active-backup sends on
  std::vector<uint16_t> distributing;  // 802.3ad: members LACP lets carry traffic
};

struct PortInfo {
  uint16_t id = 0;
  std::string name;    // device name, e.g. net_af_packet0 or 0000:3b:00.0
  std::string driver;
  MacAddr mac{};
  uint16_t n_queues = 0;
  bool rss = false;    // flows spread over queues by the NIC's RSS
  uint32_t if_index = 0;  // kernel interface behind the port (af_xdp, af_packet, tap), or 0
  std::optional<BondInfo> bond;  // set for a net_bonding port
};

/// Before any port is configured: have bonds poll the link of members whose driver claims
/// link-change interrupts it never raises (net_tap), so that they fail over.
void bond_prepare_members();
/// Port ids in the order to start them: bonds first, since a bond takes its members (its
/// slave= devargs) when it is configured.
std::vector<uint16_t> port_start_order();
/// The bond port that `port_id` is a member of, if any (known once the bonds are configured).
std::optional<uint16_t> port_bond_of(uint16_t port_id);
/// Log a change of a bond's active members, of the member it sends on (active-backup) or
/// of those distributing (802.3ad) since the last call; true if there was one.
bool port_bond_watch(PortInfo* bond);

/// Configure and start one port; false with *err naming the device and the reason.
bool port_start(uint16_t port_id, const PortSetup& setup, PortInfo* info, std::string* err);
/// Stop and close every started port.
void port_stop_all(const std::vector<PortInfo>& ports);
/// ethdev counters of a port.
api::PortStats port_stats(const PortInfo& p);

}  // namespace rondo::dp

// Ethernet ports: configure, start, describe, count. Works for any PMD (PCI NICs,
// net_af_packet / net_af_xdp on a veth, net_tap, net_memif, net_ring).
#pragma once

#include <cstdint>
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
  // The MTU the port is set to when above 1500 (rte_eth_dev_set_mtu; a device that cannot
  // set it, ENOTSUP, is logged and kept as it is: its link must carry such frames already).
  // At 1500 or below the device keeps its own (a port may receive more than rondo sends).
  uint32_t mtu = 1500;
};

struct PortInfo {
  uint16_t id = 0;
  std::string name;    // device name, e.g. net_af_packet0 or 0000:3b:00.0
  std::string driver;
  MacAddr mac{};
  uint16_t n_queues = 0;
  bool rss = false;    // flows spread over queues by the NIC's RSS
  uint32_t if_index = 0;  // kernel interface behind the port (af_xdp, af_packet, tap), or 0
};

/// Configure and start one port; false with *err naming the device and the reason.
bool port_start(uint16_t port_id, const PortSetup& setup, PortInfo* info, std::string* err);
/// Stop and close every started port.
void port_stop_all(const std::vector<PortInfo>& ports);
/// ethdev counters of a port.
api::PortStats port_stats(const PortInfo& p);

}  // namespace rondo::dp

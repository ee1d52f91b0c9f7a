#include "dataplane/port/port.h"

#include <rte_ethdev.h>
#include <rte_errno.h>

#include <cstring>

namespace rondo::dp {
namespace {

bool fail(std::string* err, const std::string& name, const char* what, int rc) {
  *err = "port " + name + ": " + what + ": " + rte_strerror(rc < 0 ? -rc : rc);
  return false;
}

}  // namespace

bool port_start(uint16_t port_id, const PortSetup& setup, PortInfo* info, std::string* err) {
  char name[RTE_ETH_NAME_MAX_LEN] = "?";
  rte_eth_dev_get_name_by_port(port_id, name);
  info->id = port_id;
  info->name = name;

  rte_eth_dev_info dev{};
  if (int rc = rte_eth_dev_info_get(port_id, &dev); rc != 0)
    return fail(err, info->name, "cannot read device info", rc);
  info->driver = dev.driver_name ? dev.driver_name : "?";
  info->if_index = dev.if_index;
  if (setup.n_queues > dev.max_rx_queues || setup.n_queues > dev.max_tx_queues) {
    *err = "port " + info->name + ": needs " + std::to_string(setup.n_queues) +
           " rx/tx queues (one per worker), device has " + std::to_string(dev.max_rx_queues) +
           "/" + std::to_string(dev.max_tx_queues) + " (net_af_packet: qpairs=N)";
    return false;
  }

  rte_eth_conf conf{};
  // RSS spreads client flows over the workers' queues; without it (virtual devices) one
  // queue per worker still works, and software steering hands packets to their owner.
  const uint64_t want_rss = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
  if (setup.n_queues > 1 && (dev.flow_type_rss_offloads & want_rss)) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = dev.flow_type_rss_offloads & want_rss;
    info->rss = true;
  }
  if (int rc = rte_eth_dev_configure(port_id, setup.n_queues, setup.n_queues, &conf); rc != 0)
    return fail(err, info->name, "configure failed", rc);

  uint16_t rx_desc = setup.rx_desc, tx_desc = setup.tx_desc;
  rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &rx_desc, &tx_desc);
  const int socket = rte_eth_dev_socket_id(port_id);
  for (uint16_t q = 0; q < setup.n_queues; ++q) {
    if (int rc = rte_eth_rx_queue_setup(port_id, q, rx_desc, socket, nullptr, setup.pool); rc != 0)
      return fail(err, info->name, "rx queue setup failed", rc);
    if (int rc = rte_eth_tx_queue_setup(port_id, q, tx_desc, socket, nullptr); rc != 0)
      return fail(err, info->name, "tx queue setup failed", rc);
  }
  if (int rc = rte_eth_dev_start(port_id); rc != 0) return fail(err, info->name, "start failed", rc);
  // Not promiscuous: VIP traffic and ARP replies are addressed to our MAC. Devices that
  // see every frame anyway (af_packet) are covered by the pipeline's own MAC check.

  rte_ether_addr mac;
  if (int rc = rte_eth_macaddr_get(port_id, &mac); rc != 0)
    return fail(err, info->name, "cannot read MAC address", rc);
  std::memcpy(info->mac.data(), mac.addr_bytes, 6);
  info->n_queues = setup.n_queues;
  return true;
}

void port_stop_all(const std::vector<PortInfo>& ports) {
  for (const auto& p : ports) {
    rte_eth_dev_stop(p.id);
    rte_eth_dev_close(p.id);
  }
}

api::PortStats port_stats(const PortInfo& p) {
  api::PortStats out;
  out.port_id = p.id;
  out.name = p.name;
  rte_eth_stats st{};
  if (rte_eth_stats_get(p.id, &st) == 0) {
    out.ipackets = st.ipackets;
    out.opackets = st.opackets;
    out.ibytes = st.ibytes;
    out.obytes = st.obytes;
    out.imissed = st.imissed;
    out.ierrors = st.ierrors;
    out.oerrors = st.oerrors;
    out.rx_nombuf = st.rx_nombuf;
  }
  return out;
}

}  // namespace rondo::dp

#include "dataplane/port/port.h"

#include <rte_ethdev.h>
#include <rte_errno.h>
#include <rte_log.h>

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace rondo::dp {
namespace {

bool fail(std::string* err, const std::string& name, const char* what, int rc) {
  *err = "port " + name + ": " + what + ": " + rte_strerror(rc < 0 ? -rc : rc);
  return false;
}

// The MTU of the kernel interface `if_index` (af_packet, af_xdp, tap ports), or 0.
uint32_t kernel_mtu(uint32_t if_index, std::string* ifname) {
  char name[IF_NAMESIZE] = {};
  if (if_index == 0 || !if_indextoname(if_index, name)) return 0;
  *ifname = name;
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return 0;
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name, sizeof ifr.ifr_name);
  const int rc = ioctl(fd, SIOCGIFMTU, &ifr);
  close(fd);
  return rc == 0 ? static_cast<uint32_t>(ifr.ifr_mtu) : 0;
}

// Set a port's MTU above 1500 (after configure, which ethdev wants first, and before the
// queues, which a PMD sizes from it).
bool set_mtu(uint16_t port_id, const rte_eth_dev_info& dev, uint32_t mtu, const PortInfo& info,
             std::string* err) {
  const int rc = rte_eth_dev_set_mtu(port_id, static_cast<uint16_t>(mtu));
  if (rc == 0) {
    RTE_LOG(NOTICE, USER1, "port %s: MTU %u\n", info.name.c_str(), mtu);
    return true;
  }
  if (rc == -ENOTSUP) {
    RTE_LOG(NOTICE, USER1, "port %s: the device cannot set its MTU: its link must already "
            "carry frames of MTU %u\n", info.name.c_str(), mtu);
    return true;
  }
  // A device in front of a kernel interface carries what that interface does: DPDK 22.11's
  // net_af_packet says frames of 1518 bytes at most (max_rx_pktlen), so ethdev refuses any
  // MTU above 1500 before the PMD sees it, though its ring frames (framesz) and the
  // interface may carry 9000. The interface's MTU is what counts then; rondo does not change
  // a host interface behind the operator's back.
  std::string ifname;
  const uint32_t kmtu = kernel_mtu(info.if_index, &ifname);
  if (kmtu >= mtu) {
    RTE_LOG(NOTICE, USER1, "port %s: the device refuses MTU %u (%s) but its interface %s has "
            "MTU %u: it carries such frames\n", info.name.c_str(), mtu, rte_strerror(-rc),
            ifname.c_str(), kmtu);
    return true;
  }
  *err = "port " + info.name + ": cannot set MTU " + std::to_string(mtu) + " (device: at most " +
         std::to_string(dev.max_mtu) + ", frames of " + std::to_string(dev.max_rx_pktlen) +
         " bytes): " + rte_strerror(-rc);
  if (kmtu != 0)
    *err += "; its interface " + ifname + " has MTU " + std::to_string(kmtu) +
            ": ip link set dev " + ifname + " mtu " + std::to_string(mtu);
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

  if (setup.mtu > RTE_ETHER_MTU && !set_mtu(port_id, dev, setup.mtu, *info, err)) return false;
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

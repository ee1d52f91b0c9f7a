#include "tools/gen/port.h"

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <chrono>
#include <cstdio>
#include <thread>

namespace rondo::gen {
namespace {

bool fail(std::string* err, const GenPort& p, const char* what, int rc) {
  *err = "port " + p.name + ": " + what + ": " + rte_strerror(rc < 0 ? -rc : rc);
  return false;
}

}  // namespace

bool port_open(const Options& o, GenPort* p, std::string* err) {
  p->id = o.port;
  if (!rte_eth_dev_is_valid_port(o.port)) {
    *err = "no port " + std::to_string(o.port) + " (add a device: --vdev=net_memif0,... or a PCI NIC)";
    return false;
  }
  char name[RTE_ETH_NAME_MAX_LEN] = "?";
  rte_eth_dev_get_name_by_port(o.port, name);
  p->name = name;
  p->pool = rte_pktmbuf_pool_create("gen_mbufs", o.mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                    rte_eth_dev_socket_id(o.port));
  if (!p->pool) {
    *err = "cannot create a pool of " + std::to_string(o.mbufs) + " mbufs: " + rte_strerror(rte_errno);
    return false;
  }
  rte_eth_conf conf{};
  if (int rc = rte_eth_dev_configure(o.port, 1, 1, &conf); rc != 0) return fail(err, *p, "configure failed", rc);
  uint16_t rx_desc = o.rx_desc, tx_desc = o.tx_desc;
  rte_eth_dev_adjust_nb_rx_tx_desc(o.port, &rx_desc, &tx_desc);
  const int socket = rte_eth_dev_socket_id(o.port);
  if (int rc = rte_eth_rx_queue_setup(o.port, 0, rx_desc, socket, nullptr, p->pool); rc != 0)
    return fail(err, *p, "rx queue setup failed", rc);
  if (int rc = rte_eth_tx_queue_setup(o.port, 0, tx_desc, socket, nullptr); rc != 0)
    return fail(err, *p, "tx queue setup failed", rc);
  if (int rc = rte_eth_dev_start(o.port); rc != 0) return fail(err, *p, "start failed", rc);
  rte_eth_promiscuous_enable(o.port);  // not every device has it (memif: not needed)
  rte_ether_addr mac;
  if (int rc = rte_eth_macaddr_get(o.port, &mac); rc != 0) return fail(err, *p, "cannot read MAC address", rc);
  std::memcpy(p->mac.data(), mac.addr_bytes, 6);
  return true;
}

bool port_wait_link(const GenPort& p, double timeout_s, const std::atomic<bool>& stop) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (!stop.load(std::memory_order_relaxed)) {
    rte_eth_link link{};
    if (rte_eth_link_get_nowait(p.id, &link) == 0 && link.link_status == RTE_ETH_LINK_UP) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

PortSummary port_summary(const GenPort& p) {
  PortSummary s;
  s.name = p.name;
  char mac[RTE_ETHER_ADDR_FMT_SIZE];
  rte_ether_addr a;
  std::memcpy(a.addr_bytes, p.mac.data(), 6);
  rte_ether_format_addr(mac, sizeof mac, &a);
  s.mac = mac;
  rte_eth_stats st{};
  if (rte_eth_stats_get(p.id, &st) == 0) {
    s.imissed = st.imissed;
    s.ierrors = st.ierrors;
    s.oerrors = st.oerrors;
    s.rx_nombuf = st.rx_nombuf;
  }
  return s;
}

void port_close(GenPort* p) {
  rte_eth_dev_stop(p->id);
  rte_eth_dev_close(p->id);
  if (p->pool) rte_mempool_free(p->pool);
  p->pool = nullptr;
}

}  // namespace rondo::gen

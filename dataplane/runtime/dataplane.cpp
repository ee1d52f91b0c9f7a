#include "dataplane/runtime/dataplane.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_mbuf.h>

#include "dataplane/flow/port_pool.h"

namespace rondo::dp {

Dataplane::~Dataplane() {
  agent_.reset();
  workers_.clear();
  port_stop_all(ports_);
  publisher_.reset();
  if (pool_) rte_mempool_free(pool_);
}

bool Dataplane::init(std::string* err) {
  unsigned lcore;
  RTE_LCORE_FOREACH_WORKER(lcore) worker_lcores_.push_back(lcore);
  const auto n_workers = static_cast<uint16_t>(worker_lcores_.size());
  if (n_workers == 0) {
    *err = "no worker lcore: give at least two lcores (e.g. -l 0,1); the main lcore only serves control";
    return false;
  }
  const uint16_t n_ports = rte_eth_dev_count_avail();
  if (n_ports == 0) {
    *err = "no ports: add a device (PCI, or e.g. --vdev=net_af_packet0,iface=eth1)";
    return false;
  }
  if (n_ports > kMaxPorts) {
    *err = "too many ports: " + std::to_string(n_ports) + " (at most " + std::to_string(kMaxPorts) + ")";
    return false;
  }

  uint32_t mbufs = opts_.mbufs;
  if (mbufs == 0)  // every RX/TX ring full, plus every worker's bursts in flight, plus slack
    mbufs = n_ports * n_workers * (opts_.rx_desc + opts_.tx_desc + 4u * kBurst) + 4096;
  pool_ = rte_pktmbuf_pool_create("rondo_mbufs", mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                  static_cast<int>(rte_socket_id()));
  if (!pool_) {
    *err = "cannot create mbuf pool of " + std::to_string(mbufs) + " mbufs: " + rte_strerror(rte_errno) +
           " (more memory: -m or hugepages)";
    return false;
  }

  PortSetup ps;
  ps.n_queues = n_workers;
  ps.rx_desc = opts_.rx_desc;
  ps.tx_desc = opts_.tx_desc;
  ps.pool = pool_;
  uint16_t pid;
  RTE_ETH_FOREACH_DEV(pid) {
    PortInfo info;
    if (!port_start(pid, ps, &info, err)) return false;
    RTE_LOG(NOTICE, USER1, "port %u: %s (%s) mac %02x:%02x:%02x:%02x:%02x:%02x, %u queues, %s\n",
            info.id, info.name.c_str(), info.driver.c_str(), info.mac[0], info.mac[1], info.mac[2],
            info.mac[3], info.mac[4], info.mac[5], info.n_queues,
            info.rss ? "RSS" : "no RSS");
    ports_.push_back(info);
  }

  publisher_ = std::make_unique<Publisher>(n_workers);
  std::vector<Worker*> raw;
  for (uint16_t i = 0; i < n_workers; ++i) {
    WorkerSetup ws;
    ws.index = i;
    ws.n_ports = n_ports;
    for (const auto& p : ports_) ws.rx.push_back(RxQueue{p.id, i});
    ws.pool = pool_;
    ws.publisher = publisher_.get();
    ws.idle_sleep_us = opts_.idle_sleep_us;
    ws.pipeline.flow_capacity = opts_.flows_per_worker;
    ws.pipeline.hz = rte_get_tsc_hz();
    port_slice(opts_.lport_lo, opts_.lport_hi, i, n_workers, &ws.pipeline.lport_lo,
               &ws.pipeline.lport_hi);
    for (const auto& p : ports_) ws.pipeline.port_macs.push_back(p.mac);
    workers_.push_back(std::make_unique<Worker>(ws));
    raw.push_back(workers_.back().get());
    RTE_LOG(NOTICE, USER1, "worker %u on lcore %u: %u flows, local ports %u-%u\n", i,
            worker_lcores_[i], opts_.flows_per_worker, ws.pipeline.lport_lo, ws.pipeline.lport_hi);
  }
  if (n_workers > 1)
    RTE_LOG(WARNING, USER1,
            "%u workers: reply steering to the owning worker is not implemented yet; "
            "full-NAT needs a single worker for now\n", n_workers);

  agent_ = std::make_unique<ControlAgent>(opts_.ctl_socket, publisher_.get(), raw, ports_);
  return agent_->listen(err);
}

void Dataplane::run(std::atomic<bool>* stop) {
  for (size_t i = 0; i < workers_.size(); ++i) {
    workers_[i]->stop = stop;
    rte_eal_remote_launch(worker_main, workers_[i].get(), worker_lcores_[i]);
  }
  RTE_LOG(NOTICE, USER1, "ready: %zu ports, %zu workers, control socket %s\n", ports_.size(),
          workers_.size(), opts_.ctl_socket.c_str());
  agent_->run(*stop);
  rte_eal_mp_wait_lcore();
}

}  // namespace rondo::dp

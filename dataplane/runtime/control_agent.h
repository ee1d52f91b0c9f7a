// The control agent runs on the main lcore (which never polls ports), beside the neighbour
// manager (neigh/service.h). It serves the control socket: applies a new desired state by
// building a snapshot and publishing it (RCU), and answers hello and stats requests with
// the per-lcore counters (the workers', and the main lcore's: neighbours and ARP).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/api/ctl.h"
#include "dataplane/port/port.h"
#include "dataplane/port/steering.h"
#include "dataplane/port/xdp_filter.h"
#include "dataplane/runtime/control_server.h"
#include "dataplane/runtime/inspect_agent.h"
#include "dataplane/runtime/worker.h"
#include "dataplane/stats/counters.h"
#include "dataplane/state/publisher.h"

namespace rondo::dp {

class ControlAgent {
 public:
  ControlAgent(std::string socket_path, Publisher* publisher, std::vector<Worker*> workers,
               std::vector<PortInfo> ports);
  ~ControlAgent();

  /// Create the listening socket (ControlServer: one dataplane per path, a stale socket
  /// file is replaced, mode 0660 before it listens). false with *err.
  bool listen(std::string* err);
  /// Serve until *stop; wakes at least every 200 ms to check it.
  void run(const std::atomic<bool>& stop);
  /// Serve what is pending, waiting at most `timeout` for it (the main lcore's loop).
  void poll_once(std::chrono::milliseconds timeout) { server_.poll_once(timeout); }

  /// The main lcore's counters (the neighbour manager's), reported as lcore `lcore`.
  void use_main_counters(const LcoreCounters* c, uint32_t lcore) {
    main_counters_ = c;
    main_lcore_ = lcore;
  }

  /// Build snapshots with these settings (the Maglev seed).
  void use_snapshot_params(const SnapshotParams& p) { snapshot_params_ = p; }

  /// Answer inspection requests (flows, trace, drop samples) through the workers' query rings.
  void use_inspector(std::unique_ptr<InspectAgent> inspector) { inspector_ = std::move(inspector); }

  /// Handle one request; returns the reply frame's type and fills *reply. Public for tests.
  api::MsgType handle(const api::MsgHeader& h, const std::vector<uint8_t>& payload,
                      std::vector<uint8_t>* reply);
  api::Stats collect_stats() const;

  /// AF_XDP ports shared with the host: keep their XDP programs' address maps equal to
  /// the VIPs and local ips of every applied state.
  void use_xdp_filters(std::vector<std::unique_ptr<XdpAddressFilter>> filters) {
    xdp_filters_ = std::move(filters);
  }

  /// Steer replies on the NIC: rules follow the local ips of every applied state.
  void use_nic_steering(std::vector<std::unique_ptr<NicSteering>> ports, uint32_t n_workers) {
    nic_steering_ = std::move(ports);
    n_workers_ = n_workers;
  }

 private:
  Publisher* publisher_;
  std::vector<Worker*> workers_;
  std::vector<PortInfo> ports_;
  uint64_t instance_;
  uint64_t generation_ = 0;
  std::vector<std::unique_ptr<NicSteering>> nic_steering_;
  uint32_t n_workers_ = 1;
  std::vector<std::unique_ptr<XdpAddressFilter>> xdp_filters_;
  const LcoreCounters* main_counters_ = nullptr;
  uint32_t main_lcore_ = 0;
  SnapshotParams snapshot_params_{.route_lpm = true};  // the agent runs on an EAL lcore
  std::unique_ptr<InspectAgent> inspector_;
  ControlServer server_;  // last: its handler calls handle()
};

}  // namespace rondo::dp

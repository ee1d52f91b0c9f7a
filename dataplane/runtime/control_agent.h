// The control agent runs on the main lcore (which never polls ports), beside the neighbour
// manager (neigh/service.h). It serves the control socket: applies a new desired state by
// building a snapshot and publishing it (RCU), and answers hello and stats requests with
// the per-lcore counters (the workers', and the main lcore's: neighbours and ARP).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <span>
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

  /// Build snapshots with these settings (the Maglev seed, --mtu; the port count is the
  /// agent's own ports').
  void use_snapshot_params(const SnapshotParams& p) { snapshot_params_ = p; }

  /// Answer inspection requests (flows, trace, drop samples) through the workers' query rings.
  void use_inspector(std::unique_ptr<InspectAgent> inspector) { inspector_ = std::move(inspector); }

  /// Keep every state applied in `path` (--flow-dir's state file: written to a temporary
  /// file, then renamed), so that the next process forwards with it before the control
  /// plane reconnects (apply_state_file).
  void use_state_file(std::string path) { state_file_ = std::move(path); }
  /// Apply the state kept in the state file, as a kSetState would. true if one was applied;
  /// a missing file is false quietly, one that does not decode or validate is logged and
  /// ignored (the dataplane then waits for the control plane, as on a fresh start).
  bool apply_state_file();

  /// What kRestart does: `restart` is called (the main loop stops, and the process execs
  /// itself again) after the reply is queued. Without one (no --flow-dir), kRestart is
  /// refused with `refusal`.
  void use_restart(std::function<void()> restart, std::string refusal) {
    restart_ = std::move(restart);
    restart_refusal_ = std::move(refusal);
  }

  /// What this process took over at start (DataplaneInfo's adopted_flows, discarded_flows,
  /// start_kind, gap_ms), told in every hello reply.
  void set_start_info(uint64_t adopted, uint64_t discarded, uint8_t kind, uint32_t gap_ms) {
    start_ = {adopted, discarded, kind, gap_ms};
  }

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
  // Decode, validate and apply a kSetState body (bytes: kept in the state file when it
  // applies, unless `from_file`). false with *err.
  bool apply_state(std::span<const uint8_t> bytes, bool from_file, std::string* err);
  void save_state(std::span<const uint8_t> bytes);

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
  std::vector<std::string> iface_names_;  // by interface id, of the state in force
  std::string state_file_;
  std::function<void()> restart_;
  std::string restart_refusal_ = "restart needs --flow-dir";
  struct {
    uint64_t adopted = 0, discarded = 0;
    uint8_t kind = 0;
    uint32_t gap_ms = 0;
  } start_;
  ControlServer server_;  // last: its handler calls handle()
};

}  // namespace rondo::dp

// What the rest of the daemon (health checker, metrics exporter) may see of the control
// plane, and the one thing it may change (health). Stable interface: code against it.
//
//   ControlPlaneView v = handle.view();        // a consistent copy, taken under the lock
//   for (const auto& vip : v.desired.vips) ... // names, ids, addresses, drain, health
//   if (v.stats) ... v.stats->backends ...     // latest dataplane counters (shared, read-only)
//   handle.set_health(backend_id, Health::kDown);
//
// All calls are thread-safe and cheap (no dataplane I/O): the snapshot is refreshed by the
// controller thread every sync interval.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "controlplane/state/model.h"
#include "dataplane/api/ctl.h"

namespace rondo::cp {

struct ControlPlaneView {
  using WallClock = std::chrono::system_clock;

  /// The desired state: vips by name with ids, backends with ids, weight, drain and
  /// health, health-check settings per vip.
  DesiredState desired;

  /// Generation of the desired state (1 at start, +1 per change pushed).
  uint64_t generation = 0;
  /// True while the controller holds a working connection to rondo-dataplane.
  bool dataplane_connected = false;
  /// True when connected and the dataplane acknowledged `generation`.
  bool in_sync = false;
  /// The dataplane's last hello (pid, instance, workers, ports); nullopt while not connected.
  std::optional<api::DataplaneInfo> dataplane;
  /// When the control plane first saw the current dataplane instance (within a sync
  /// interval of its start if the control plane was running then); nullopt while none.
  std::optional<WallClock::time_point> dataplane_since;
  /// New dataplane instances seen since the control plane started (the first one not
  /// counted), by how each said it started: [0] fresh (no flows kept), [1] planned restart,
  /// [2] after a crash (api::DataplaneInfo::start_kind).
  std::array<uint64_t, std::size(api::kStartKindNames)> dataplane_restarts{};
  /// True from a restart the dataplane accepted until its new instance answers.
  bool restart_expected = false;
  /// When a push was last acknowledged by the dataplane; nullopt if never.
  std::optional<WallClock::time_point> last_push;
  /// Pushes acknowledged / failed (rejected or transport error) since start.
  uint64_t pushes = 0;
  uint64_t push_failures = 0;
  /// Config reloads applied / refused (bad file) since start.
  uint64_t reloads = 0;
  uint64_t reload_failures = 0;

  /// Latest dataplane counters (summed per backend over lcores, per lcore, per port) and
  /// when they were fetched; null / nullopt until the first successful poll. Counters
  /// restart from 0 when the dataplane restarts (instance changes).
  std::shared_ptr<const api::Stats> stats;
  std::optional<WallClock::time_point> stats_time;
};

/// One interface as `rondoctl show`, `stats` and the metrics present it.
struct InterfaceRow {
  /// Id, name, port, vlan; mtu in force (its own, else the dataplane's --mtu; 0 while that
  /// is unknown); rx/tx counters (0 unless `counted`).
  api::IfaceStats iface;
  std::vector<api::Prefix> addresses;
  bool implicit = false;  // no interfaces declared: the dataplane's one per port
  bool counted = false;   // counters come from a connected dataplane's latest stats
  std::string device;     // the port's device name from the stats ("" unknown)
};

/// The declared interfaces, or without any the dataplane's implicit ones (from its stats,
/// else one per port it said it has), with their counters from the latest stats (matched
/// by id and name: a state the dataplane has not taken yet counts nothing).
std::vector<InterfaceRow> interface_rows(const ControlPlaneView& v);

/// The daemon's side of the interface (implemented by ControlPlane; fakes in tests).
class ControlPlaneHandle {
 public:
  virtual ~ControlPlaneHandle() = default;

  /// A consistent copy of the current view.
  virtual ControlPlaneView view() const = 0;
  /// Report a backend's health. A change of up/down is pushed to the dataplane at once
  /// (kDown sets api::Backend::down); unknown ids (a backend removed meanwhile) are ignored.
  virtual void set_health(uint32_t backend_id, Health health) = 0;
};

}  // namespace rondo::cp

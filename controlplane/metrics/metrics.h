// Prometheus exporter of the control plane (prometheus-cpp's Exposer serving /metrics).
//
// MetricsCollector builds every metric family afresh on each scrape from a ControlPlaneView
// (view.h): the dataplane's counters are exported with their exact values as counters, the
// desired state (weights, drain, health) as gauges. Names start with `rondo_`, carry their
// unit, and counters end in `_total`; the output passes `promtool check metrics`.
//
//   rondo_controlplane_config_generation, _dataplane_connected, _dataplane_in_sync,
//     _last_push_timestamp_seconds, _pushes_total, _push_failures_total, _reloads_total,
//     _reload_failures_total, _stats_timestamp_seconds*; rondo_dataplane_config_generation*,
//     rondo_dataplane_restarts_total{kind} (the control plane's count: it survives dataplane
//     restarts), _adopted_flows**, _discarded_flows**, _restart_gap_seconds**
//   {vip}          rondo_vip_info (address, mode, on_all_down, scheduler labels),
//                  rondo_vip_backends,
//                  _backends_available, _packets_total*, _bytes_total*, _connections_total*,
//                  _active_flows*
//   {backend,vip}  rondo_backend_packets_total*, _bytes_total*, _connections_total*,
//                  _active_flows*, _up, _health_state{state}, _drained, _weight
//   {lcore}        rondo_lcore_rx_packets_total*, _tx_packets_total*, _rx_bytes_total*,
//                  _tx_bytes_total*, _dropped_packets_total{reason}*, _busy_cycles_total*,
//                  _idle_cycles_total*, _active_flows*, _flow_capacity*
//   {name,port}    rondo_port_rx_packets_total*, _tx_packets_total*, _rx_bytes_total*,
//                  _tx_bytes_total*, _rx_missed_packets_total*, _rx_errors_total*,
//                  _tx_errors_total*, _rx_mbuf_allocation_failures_total*
// Label values: vip="<vip name>", backend="<address>:<port>" (IPv6: "[<RFC 5952>]:<port>"),
// lcore="<lcore id>", reason="<drop reason name>", port="<port id>", name="<device name>".
// * dataplane series: exported only while the dataplane is connected and its counters were
// fetched (no stale values from a dataplane that may be gone); ** while connected (from
// its hello); the rest always. The dataplane's counters start again at 0 in each new process
// (a restart, planned or not): Prometheus' rate() and increase() read that as a reset.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "controlplane/state/view.h"

namespace prometheus {
class Exposer;
}  // namespace prometheus

namespace rondo::cp {

/// The metric families of one scrape (prometheus::Collectable).
class MetricsCollector final : public prometheus::Collectable {
 public:
  /// Returns the current view; called once per scrape, from an exporter thread, so it must
  /// be thread-safe (ControlPlaneHandle::view() is).
  using Source = std::function<ControlPlaneView()>;

  explicit MetricsCollector(Source source);

  /// prometheus::Collectable: collect(source()).
  std::vector<prometheus::MetricFamily> Collect() const override;

  /// The families for `view`. Also advances the per-vip totals (see below), as a scrape
  /// does; concurrent calls are serialized.
  std::vector<prometheus::MetricFamily> collect(const ControlPlaneView& view) const;

 private:
  struct Traffic {
    uint64_t packets = 0;
    uint64_t bytes = 0;
    uint64_t connections = 0;
  };

  // Per-vip counters cannot simply be the sum of the vip's backends: removing a backend
  // would lower the sum, which Prometheus reads as a counter reset (and rate() as a spike
  // of the whole value). So each vip accumulates the increases of its backends' counters
  // since the previous scrape, and keeps them when a backend goes.
  void advance_vip_totals(const ControlPlaneView& view) const;

  Source source_;
  mutable std::mutex mu_;  // guards the members below, and serializes scrapes
  mutable std::map<uint32_t, Traffic> last_seen_;   // backend id -> counters at the last scrape
  mutable std::map<uint32_t, Traffic> vip_totals_;  // vip id -> accumulated increases
  mutable std::optional<uint64_t> instance_;        // dataplane instance of last_seen_
};

/// Serves /metrics over HTTP (civetweb, inside prometheus-cpp's Exposer) until destroyed.
/// Besides rondo_*, the endpoint carries prometheus-cpp's own exposer_* families.
class MetricsServer {
 public:
  static constexpr const char* kDefaultListen = "127.0.0.1:9842";

  /// Listen on `listen`, "address:port" (port 0: any free port, see port()). Throws
  /// std::runtime_error naming the address if it cannot listen.
  explicit MetricsServer(MetricsCollector::Source source,
                         const std::string& listen = kDefaultListen);
  /// Stops serving; may block up to 2 s (civetweb's accept loop polls with that timeout).
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  /// The port actually listened on.
  uint16_t port() const;

 private:
  std::shared_ptr<MetricsCollector> collector_;  // the Exposer holds a weak_ptr to it
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace rondo::cp

#include "controlplane/metrics/metrics.h"

#include <prometheus/client_metric.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_type.h>

#include <chrono>
#include <deque>
#include <set>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace rondo::cp {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

// Families in the order they are exported; empty ones are left out.
class Families {
 public:
  MetricFamily& counter(std::string name, std::string help) {
    return add(std::move(name), std::move(help), MetricType::Counter);
  }
  MetricFamily& gauge(std::string name, std::string help) {
    return add(std::move(name), std::move(help), MetricType::Gauge);
  }
  std::vector<MetricFamily> take() {
    std::vector<MetricFamily> out;
    for (auto& f : families_)
      if (!f.metric.empty()) out.push_back(std::move(f));
    return out;
  }

 private:
  MetricFamily& add(std::string name, std::string help, MetricType type) {
    families_.push_back({std::move(name), std::move(help), type, {}});
    return families_.back();
  }
  std::deque<MetricFamily> families_;  // references stay valid as families are added
};

// One sample. Label names must be given in alphabetical order, as prometheus-cpp's own
// registry writes them: the text is then the same whatever produced it.
void sample(MetricFamily& f, Labels labels, double value) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f.type == MetricType::Counter)
    m.counter.value = value;
  else
    m.gauge.value = value;
  f.metric.push_back(std::move(m));
}

// Exposition values are doubles: exact up to 2^53 (9e15 bytes is 9 PB), which is enough.
double num(uint64_t v) { return static_cast<double>(v); }

std::string vip_address(const VipSpec& v) {
  return format_endpoint(v.ip, v.port) + "/" + std::string(proto_name(v.proto));
}

}  // namespace

MetricsCollector::MetricsCollector(Source source) : source_(std::move(source)) {}

std::vector<MetricFamily> MetricsCollector::Collect() const { return collect(source_()); }

void MetricsCollector::advance_vip_totals(const ControlPlaneView& view) const {
  // A new dataplane process starts its counters from zero: forget what the old one said.
  if (view.dataplane) {
    if (instance_ && *instance_ != view.dataplane->instance) last_seen_.clear();
    instance_ = view.dataplane->instance;
  }
  std::unordered_map<uint32_t, uint32_t> vip_of;  // backend id -> vip id
  std::set<uint32_t> vip_ids;
  for (const auto& v : view.desired.vips) {
    vip_ids.insert(v.id);
    for (const auto& b : v.backends) vip_of.emplace(b.id, v.id);
  }
  for (const auto& s : view.stats->backends) {
    Traffic& last = last_seen_[s.id];
    // A counter below its last value restarted (dataplane restart not seen as a new
    // instance): everything it holds now is new.
    auto increase = [](uint64_t now, uint64_t before) {
      return now >= before ? now - before : now;
    };
    const Traffic delta{increase(s.packets, last.packets), increase(s.bytes, last.bytes),
                        increase(s.connections, last.connections)};
    last = {s.packets, s.bytes, s.connections};
    auto it = vip_of.find(s.id);
    if (it == vip_of.end()) continue;  // a backend no vip has any more: its traffic is counted
    Traffic& total = vip_totals_[it->second];
    total.packets += delta.packets;
    total.bytes += delta.bytes;
    total.connections += delta.connections;
  }
  // A vip that is gone starts again from zero if it comes back.
  std::erase_if(vip_totals_, [&](const auto& kv) { return !vip_ids.count(kv.first); });
}

std::vector<MetricFamily> MetricsCollector::collect(const ControlPlaneView& view) const {
  std::lock_guard lock(mu_);
  // Dataplane counters are exported only while they are live.
  const api::Stats* stats = view.dataplane_connected && view.stats ? view.stats.get() : nullptr;
  if (stats) advance_vip_totals(view);

  Families fams;

  // ---- control plane -------------------------------------------------------------------
  sample(fams.gauge("rondo_controlplane_config_generation",
                    "Generation of the desired state; +1 on every change."),
         {}, num(view.generation));
  sample(fams.gauge("rondo_controlplane_dataplane_connected",
                    "1 while the control plane holds a working connection to rondo-dataplane."),
         {}, view.dataplane_connected ? 1 : 0);
  sample(
      fams.gauge("rondo_controlplane_dataplane_in_sync",
                 "1 when the dataplane acknowledged the current generation of the desired state."),
      {}, view.in_sync ? 1 : 0);
  {
    double t = 0;
    if (view.last_push)
      t = std::chrono::duration<double>(view.last_push->time_since_epoch()).count();
    sample(fams.gauge("rondo_controlplane_last_push_timestamp_seconds",
                      "Unix time of the last push acknowledged by the dataplane; 0 if none yet."),
           {}, t);
  }
  sample(fams.counter("rondo_controlplane_pushes_total",
                      "Pushes of the desired state acknowledged by the dataplane."),
         {}, num(view.pushes));
  sample(fams.counter("rondo_controlplane_push_failures_total",
                      "Pushes of the desired state refused by the dataplane or lost in transport."),
         {}, num(view.push_failures));
  sample(fams.counter("rondo_controlplane_reloads_total", "Config file reloads applied."), {},
         num(view.reloads));
  sample(fams.counter("rondo_controlplane_reload_failures_total",
                      "Config file reloads refused (the file had errors; nothing was applied)."),
         {}, num(view.reload_failures));
  {
    // Counted by the control plane: they survive dataplane restarts, unlike the
    // dataplane's own counters, which start again at 0 in each new process.
    auto& restarts = fams.counter(
        "rondo_dataplane_restarts_total",
        "New dataplane processes the control plane saw since it started, by how each started: "
        "planned (rondoctl dataplane restart), crash (took over after a crash), fresh (kept no "
        "flows).");
    for (size_t k = 0; k < view.dataplane_restarts.size(); ++k)
      sample(restarts, {{"kind", api::kStartKindNames[k]}}, num(view.dataplane_restarts[k]));
  }
  if (view.dataplane) {
    const api::DataplaneInfo& d = *view.dataplane;
    sample(fams.gauge("rondo_dataplane_adopted_flows",
                      "Flows the running dataplane process took over from the one before it."),
           {}, num(d.adopted_flows));
    sample(fams.gauge("rondo_dataplane_discarded_flows",
                      "Flows the running dataplane process found but could not take over."),
           {}, num(d.discarded_flows));
    sample(fams.gauge("rondo_dataplane_restart_gap_seconds",
                      "Time without forwarding before the running dataplane process started "
                      "forwarding (0 on a fresh start)."),
           {}, d.gap_ms / 1000.0);
  }
  if (stats) {
    if (view.stats_time)
      sample(fams.gauge("rondo_controlplane_stats_timestamp_seconds",
                        "Unix time at which the exported dataplane counters were fetched."),
             {}, std::chrono::duration<double>(view.stats_time->time_since_epoch()).count());
    sample(fams.gauge("rondo_dataplane_config_generation",
                      "Generation of the desired state the dataplane forwards with."),
           {}, num(stats->generation));
  }

  // ---- vips ------------------------------------------------------------------------------
  auto& vip_info = fams.gauge(
      "rondo_vip_info", "Always 1; labels describe the vip (address is address:port/protocol).");
  auto& vip_backends = fams.gauge("rondo_vip_backends", "Backends configured for the vip.");
  auto& vip_available = fams.gauge(
      "rondo_vip_backends_available",
      "Backends that may get new flows: not down by health checks, not drained, weight above 0.");
  auto& vip_packets = fams.counter("rondo_vip_packets_total",
                                   "Packets forwarded for the vip, both directions, all backends.");
  auto& vip_bytes = fams.counter("rondo_vip_bytes_total",
                                 "Bytes forwarded for the vip, both directions, all backends.");
  auto& vip_conns =
      fams.counter("rondo_vip_connections_total", "New flows scheduled to a backend of the vip.");
  auto& vip_flows = fams.gauge("rondo_vip_active_flows", "Flows of the vip in the flow tables.");

  // ---- backends --------------------------------------------------------------------------
  auto& be_packets =
      fams.counter("rondo_backend_packets_total", "Packets forwarded to and from the backend.");
  auto& be_bytes =
      fams.counter("rondo_backend_bytes_total", "Bytes forwarded to and from the backend.");
  auto& be_conns =
      fams.counter("rondo_backend_connections_total", "New flows scheduled to the backend.");
  auto& be_flows =
      fams.gauge("rondo_backend_active_flows", "Flows of the backend in the flow tables.");
  auto& be_ports_free = fams.gauge(
      "rondo_backend_local_ports_free",
      "(local ip, local port) pairs the backend can still get: capacity minus its flows and "
      "its quarantined tuples. Near 0, new connections to it are refused (no_local_port).");
  auto& be_ports = fams.gauge(
      "rondo_backend_local_ports",
      "(local ip, local port) pairs the backend may hold at once, all workers together; "
      "local-port fill = 1 - rondo_backend_local_ports_free / rondo_backend_local_ports.");
  auto& be_up = fams.gauge("rondo_backend_up",
                           "0 when health checks took the backend down (no new flows), else 1 "
                           "(up, or not checked yet or at all).");
  auto& be_health = fams.gauge("rondo_backend_health_state",
                               "1 for the backend's current health-check state: up, down or "
                               "unknown (not checked yet, or no checks configured).");
  auto& be_drained = fams.gauge("rondo_backend_drained",
                                "1 when the operator drained the backend: no new flows, existing "
                                "flows continue.");
  auto& be_weight = fams.gauge("rondo_backend_weight", "Scheduling weight; 0 takes no new flows.");

  std::unordered_map<uint32_t, const api::BackendStats*> by_id;
  if (stats)
    for (const auto& b : stats->backends) by_id.emplace(b.id, &b);

  std::set<std::string> vip_names_seen;
  for (const auto& v : view.desired.vips) {
    // Names are unique in the model; a duplicate would make the exposition invalid.
    if (!vip_names_seen.insert(v.name).second) continue;
    const ClientMetric::Label vip{"vip", v.name};
    sample(vip_info,
           {{"address", vip_address(v)},
            {"mode", std::string(mode_name(v.mode))},
            {"on_all_down", std::string(on_all_down_name(v.on_all_down))},
            {"scheduler", std::string(sched_name(v.sched))},
            vip},
           1);
    size_t available = 0;
    uint64_t vip_active = 0;
    std::set<std::pair<api::Addr, uint16_t>> seen;
    for (const auto& b : v.backends) {
      if (!seen.insert({b.ip, b.port}).second) continue;
      const Labels labels{{"backend", format_endpoint(b.ip, b.port)}, vip};
      if (b.health != Health::kDown && !b.drained && b.weight > 0) ++available;
      sample(be_up, labels, b.health == Health::kDown ? 0 : 1);
      for (Health h : {Health::kUp, Health::kDown, Health::kUnknown})
        sample(be_health, {labels[0], {"state", std::string(health_name(h))}, vip},
               b.health == h ? 1 : 0);
      sample(be_drained, labels, b.drained ? 1 : 0);
      sample(be_weight, labels, b.weight);
      if (stats) {
        // A backend that has seen no packet yet is not in the stats: its counters are 0.
        static const api::BackendStats kNone{};
        auto it = by_id.find(b.id);
        const api::BackendStats& s = it == by_id.end() ? kNone : *it->second;
        sample(be_packets, labels, num(s.packets));
        sample(be_bytes, labels, num(s.bytes));
        sample(be_conns, labels, num(s.connections));
        sample(be_flows, labels, num(s.active_flows));
        if (s.port_capacity) {
          const uint64_t used = s.active_flows + s.quarantined;
          sample(be_ports_free, labels, num(used < s.port_capacity ? s.port_capacity - used : 0));
          sample(be_ports, labels, num(s.port_capacity));
        }
        vip_active += s.active_flows;
      }
    }
    sample(vip_backends, {vip}, num(v.backends.size()));
    sample(vip_available, {vip}, num(available));
    if (stats) {
      auto it = vip_totals_.find(v.id);
      const Traffic t = it == vip_totals_.end() ? Traffic{} : it->second;
      sample(vip_packets, {vip}, num(t.packets));
      sample(vip_bytes, {vip}, num(t.bytes));
      sample(vip_conns, {vip}, num(t.connections));
      sample(vip_flows, {vip}, num(vip_active));
    }
  }

  // ---- worker lcores ---------------------------------------------------------------------
  if (stats) {
    // Every lcore counter the dataplane describes (its table: dataplane/stats/counters.h),
    // then the drops by reason.
    std::vector<MetricFamily*> lcore_fams;
    for (const auto& c : stats->counters)
      lcore_fams.push_back(c.gauge ? &fams.gauge(c.metric, c.help) : &fams.counter(c.metric, c.help));
    auto& dropped = fams.counter("rondo_lcore_dropped_packets_total",
                                 "Packets the worker did not forward, by reason.");
    for (const auto& l : stats->lcores) {
      const ClientMetric::Label lcore{"lcore", std::to_string(l.lcore_id)};
      for (size_t i = 0; i < lcore_fams.size() && i < l.counters.size(); ++i)
        sample(*lcore_fams[i], {lcore}, num(l.counters[i]));
      // Every reason, zeros included, so that rate() has a series from the start.
      for (size_t r = 0; r < l.drops.size(); ++r) {
        std::string reason =
            r < stats->drop_names.size() ? stats->drop_names[r] : "reason_" + std::to_string(r);
        sample(dropped, {lcore, {"reason", std::move(reason)}}, num(l.drops[r]));
      }
    }

    // ---- ports ---------------------------------------------------------------------------
    struct PortCounter {
      const char* name;
      const char* help;
      uint64_t api::PortStats::*field;
    };
    static constexpr PortCounter kPortCounters[] = {
        {"rondo_port_rx_packets_total", "Packets received by the port (ethdev ipackets).",
         &api::PortStats::ipackets},
        {"rondo_port_tx_packets_total", "Packets sent by the port (ethdev opackets).",
         &api::PortStats::opackets},
        {"rondo_port_rx_bytes_total", "Bytes received by the port (ethdev ibytes).",
         &api::PortStats::ibytes},
        {"rondo_port_tx_bytes_total", "Bytes sent by the port (ethdev obytes).",
         &api::PortStats::obytes},
        {"rondo_port_rx_missed_packets_total",
         "Packets the port dropped because the RX queues were full (ethdev imissed).",
         &api::PortStats::imissed},
        {"rondo_port_rx_errors_total", "Erroneous packets received (ethdev ierrors).",
         &api::PortStats::ierrors},
        {"rondo_port_tx_errors_total", "Packets that failed to be sent (ethdev oerrors).",
         &api::PortStats::oerrors},
        {"rondo_port_rx_mbuf_allocation_failures_total",
         "RX mbuf allocation failures (ethdev rx_nombuf).", &api::PortStats::rx_nombuf},
    };
    for (const auto& c : kPortCounters) {
      auto& f = fams.counter(c.name, c.help);
      for (const auto& p : stats->ports)
        sample(f, {{"name", p.name}, {"port", std::to_string(p.port_id)}}, num(p.*c.field));
    }
  }

  // ---- interfaces ------------------------------------------------------------------------
  // The declared ones (from the desired state, so also without a dataplane), else the
  // dataplane's implicit one per port; counters while the dataplane's are live.
  auto& if_info = fams.gauge(
      "rondo_interface_info",
      "Always 1; labels describe the interface: its port, vlan (0: untagged) and the MTU in "
      "force (0 while the dataplane's default is not known).");
  struct IfaceCounter {
    const char* name;
    const char* help;
    uint64_t api::IfaceStats::*field;
  };
  static constexpr IfaceCounter kIfaceCounters[] = {
      {"rondo_interface_rx_packets_total", "Packets received on the interface (its port and VLAN).",
       &api::IfaceStats::rx_packets},
      {"rondo_interface_rx_bytes_total", "Bytes received on the interface (its port and VLAN).",
       &api::IfaceStats::rx_bytes},
      {"rondo_interface_tx_packets_total", "Packets queued for sending on the interface.",
       &api::IfaceStats::tx_packets},
      {"rondo_interface_tx_bytes_total", "Bytes queued for sending on the interface.",
       &api::IfaceStats::tx_bytes},
  };
  std::vector<MetricFamily*> if_counters;
  for (const auto& c : kIfaceCounters) if_counters.push_back(&fams.counter(c.name, c.help));
  std::set<std::string> iface_names_seen;
  for (const auto& r : interface_rows(view)) {
    const api::IfaceStats& i = r.iface;
    if (!iface_names_seen.insert(i.name).second) continue;  // unique labels, as for vips
    const std::string port = std::to_string(i.port_id), vlan = std::to_string(i.vlan);
    sample(if_info,
           {{"interface", i.name}, {"mtu", std::to_string(i.mtu)}, {"port", port}, {"vlan", vlan}}, 1);
    if (!r.counted) continue;
    for (size_t k = 0; k < std::size(kIfaceCounters); ++k)
      sample(*if_counters[k], {{"interface", i.name}, {"port", port}, {"vlan", vlan}},
             num(i.*kIfaceCounters[k].field));
  }

  return fams.take();
}

// ---------------------------------------------------------------------------------------

MetricsServer::MetricsServer(MetricsCollector::Source source, const std::string& listen)
    : collector_(std::make_shared<MetricsCollector>(std::move(source))) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(listen);
  } catch (const std::exception& e) {
    // civetweb's message is terse ("null context when constructing CivetServer..."): say what
    // we tried.
    throw std::runtime_error("metrics: cannot listen on " + listen + ": " + e.what());
  }
  exposer_->RegisterCollectable(collector_);
}

MetricsServer::~MetricsServer() {
  // Stop serving before the collector goes (members die in reverse order: exposer_ first).
  exposer_.reset();
}

uint16_t MetricsServer::port() const {
  const auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : static_cast<uint16_t>(ports.front());
}

}  // namespace rondo::cp

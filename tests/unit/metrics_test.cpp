// Metrics exporter: a hand-built ControlPlaneView serialized as Prometheus text, checked line
// by line, by `promtool check metrics` when it is installed, and over HTTP.
#include "controlplane/metrics/metrics.h"
#include "tests/common/lcore_stats.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace rondo::cp {
namespace {

api::Addr ip(const char* s) {
  auto a = api::parse_addr(s);
  EXPECT_TRUE(a) << s;
  return a.value_or(api::Addr{});
}

// Two vips, four backends (one drained, one down, one never seen by the dataplane), two
// lcores, one port.
ControlPlaneView sample_view() {
  ControlPlaneView v;
  VipSpec web{.name = "web", .id = 0, .ip = ip("203.0.113.10"), .port = 80};
  web.backends = {
      {.id = 0, .ip = ip("198.51.100.3"), .port = 3000, .weight = 1, .health = Health::kUp},
      {.id = 1, .ip = ip("198.51.100.3"), .port = 3001, .weight = 2, .drained = true},
      {.id = 2, .ip = ip("198.51.100.4"), .port = 3000, .weight = 1, .health = Health::kDown},
  };
  VipSpec dns{
      .name = "dns", .id = 1, .ip = ip("203.0.113.53"), .port = 53, .proto = api::Proto::kUdp};
  dns.mode = api::Mode::kGue;
  dns.on_all_down = api::OnAllDown::kOpen;
  dns.backends = {{.id = 3, .ip = ip("198.51.100.5"), .port = 53, .weight = 0}};
  v.desired.vips = {web, dns};

  v.generation = 7;
  v.dataplane_connected = true;
  v.in_sync = true;
  v.dataplane = api::DataplaneInfo{.pid = 100,
                                   .n_workers = 2,
                                   .n_ports = 1,
                                   .n_drop_reasons = 2,
                                   .instance = 42,
                                   .generation = 7};
  v.last_push =
      ControlPlaneView::WallClock::time_point(std::chrono::milliseconds(1'700'000'000'500));
  v.pushes = 3;
  v.push_failures = 1;
  v.reloads = 2;
  v.reload_failures = 1;

  auto s = std::make_shared<api::Stats>();
  s->generation = 7;
  s->drop_names = {"malformed_l2", "no_backend"};
  s->counters = test::lcore_counter_descs();
  s->lcores = {
      test::lcore_stats(1,
                        {{"rx_packets", 1000}, {"tx_packets", 990}, {"rx_bytes", 64000},
                         {"tx_bytes", 63000}, {"busy_cycles", 5'000'000},
                         {"idle_cycles", 15'000'000}, {"flows_active", 7},
                         {"flow_capacity", 65536}},
                        {0, 5}),
      test::lcore_stats(2,
                        {{"rx_packets", 10}, {"tx_packets", 10}, {"rx_bytes", 640},
                         {"tx_bytes", 640}, {"busy_cycles", 1}, {"idle_cycles", 2},
                         {"flows_active", 0}, {"flow_capacity", 65536}},
                        {3, 0}),
  };
  s->backends = {
      {.id = 0, .packets = 1500, .bytes = 1ull << 40, .connections = 10, .active_flows = 2},
      {.id = 1, .packets = 200, .bytes = 9000, .connections = 100, .active_flows = 0},
      {.id = 2, .quarantined = 5, .port_capacity = 100},
  };
  s->ports = {{.port_id = 0,
               .name = "0000:01:00.0",
               .ipackets = 12345,
               .opackets = 12000,
               .ibytes = 800000,
               .obytes = 790000,
               .imissed = 4,
               .ierrors = 1,
               .oerrors = 2,
               .rx_nombuf = 3}};
  v.stats = s;
  v.stats_time = ControlPlaneView::WallClock::time_point(std::chrono::seconds(1'700'000'001));
  return v;
}

// sample_view() with two declared interfaces on port 0 (clients tagged 100 with the
// dataplane's MTU, backends untagged with its own) and their counters.
ControlPlaneView vlan_view() {
  ControlPlaneView v = sample_view();
  v.desired.interfaces = {
      {.id = 0, .name = "clients", .port_id = 0, .vlan = 100,
       .addresses = {{.addr = ip("192.0.2.1"), .len = 24}}},
      {.id = 3, .name = "backends", .port_id = 0, .mtu = 9000},
  };
  v.dataplane->mtu = 1500;
  auto s = std::make_shared<api::Stats>(*v.stats);
  s->interfaces = {
      {.id = 0, .name = "clients", .port_id = 0, .vlan = 100, .mtu = 1500, .rx_packets = 10,
       .rx_bytes = 1000, .tx_packets = 20, .tx_bytes = 2000},
      {.id = 3, .name = "backends", .port_id = 0, .mtu = 9000, .rx_packets = 30, .rx_bytes = 3000,
       .tx_packets = 40, .tx_bytes = 4000},
  };
  v.stats = s;
  return v;
}

std::string text(const std::vector<prometheus::MetricFamily>& families) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const auto& l : lines_of(text))
    if (l == line) return true;
  return false;
}

#define EXPECT_LINE(text, line) \
  EXPECT_TRUE(has_line(text, line)) << "missing: " << (line) << "\n" << (text)
#define EXPECT_NO_LINE(text, line) EXPECT_FALSE(has_line(text, line)) << "unexpected: " << (line)

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

TEST(Metrics, BackendSeries) {
  MetricsCollector c([] { return sample_view(); });
  const std::string t = text(c.Collect());
  EXPECT_LINE(t, R"(rondo_backend_connections_total{backend="198.51.100.3:3001",vip="web"} 100)");
  EXPECT_LINE(t, R"(rondo_backend_packets_total{backend="198.51.100.3:3000",vip="web"} 1500)");
  EXPECT_LINE(t,
              R"(rondo_backend_bytes_total{backend="198.51.100.3:3000",vip="web"} 1099511627776)");
  EXPECT_LINE(t, R"(rondo_backend_active_flows{backend="198.51.100.3:3000",vip="web"} 2)");
  // Configured but not seen by the dataplane yet: zeros, so the series exist from the start.
  EXPECT_LINE(t, R"(rondo_backend_packets_total{backend="198.51.100.4:3000",vip="web"} 0)");
  EXPECT_LINE(t, R"(rondo_backend_connections_total{backend="198.51.100.5:53",vip="dns"} 0)");

  EXPECT_LINE(t, R"(rondo_backend_up{backend="198.51.100.3:3000",vip="web"} 1)");
  EXPECT_LINE(t, R"(rondo_backend_up{backend="198.51.100.3:3001",vip="web"} 1)");  // unknown
  EXPECT_LINE(t, R"(rondo_backend_up{backend="198.51.100.4:3000",vip="web"} 0)");
  EXPECT_LINE(
      t, R"(rondo_backend_health_state{backend="198.51.100.4:3000",state="down",vip="web"} 1)");
  EXPECT_LINE(t,
              R"(rondo_backend_health_state{backend="198.51.100.4:3000",state="up",vip="web"} 0)");
  EXPECT_LINE(
      t, R"(rondo_backend_health_state{backend="198.51.100.4:3000",state="unknown",vip="web"} 0)");
  EXPECT_LINE(
      t, R"(rondo_backend_health_state{backend="198.51.100.3:3001",state="unknown",vip="web"} 1)");
  EXPECT_LINE(t, R"(rondo_backend_drained{backend="198.51.100.3:3001",vip="web"} 1)");
  EXPECT_LINE(t, R"(rondo_backend_drained{backend="198.51.100.3:3000",vip="web"} 0)");
  EXPECT_LINE(t, R"(rondo_backend_weight{backend="198.51.100.3:3001",vip="web"} 2)");
  EXPECT_LINE(t, R"(rondo_backend_weight{backend="198.51.100.5:53",vip="dns"} 0)");

  // Local ports: capacity, and what is left of it after the flows and the quarantine.
  EXPECT_LINE(t, R"(rondo_backend_local_ports{backend="198.51.100.4:3000",vip="web"} 100)");
  EXPECT_LINE(t, R"(rondo_backend_local_ports_free{backend="198.51.100.4:3000",vip="web"} 95)");
  // No capacity known (not seen by the dataplane, or no local ports): no series.
  EXPECT_FALSE(contains(t, R"(rondo_backend_local_ports{backend="198.51.100.3:3001")"));
  EXPECT_FALSE(contains(t, R"(rondo_backend_local_ports_free{backend="198.51.100.5:53")"));
}

TEST(Metrics, VipSeries) {
  MetricsCollector c([] { return sample_view(); });
  const std::string t = text(c.Collect());
  EXPECT_LINE(t,
              R"(rondo_vip_info{address="203.0.113.10:80/tcp",mode="fullnat",on_all_down="drop",)"
              R"(scheduler="rr",vip="web"} 1)");
  EXPECT_LINE(t,
              R"(rondo_vip_info{address="203.0.113.53:53/udp",mode="gue",on_all_down="open",)"
              R"(scheduler="rr",vip="dns"} 1)");
  EXPECT_LINE(t, R"(rondo_vip_packets_total{vip="web"} 1700)");
  EXPECT_LINE(t, R"(rondo_vip_bytes_total{vip="web"} 1099511636776)");
  EXPECT_LINE(t, R"(rondo_vip_connections_total{vip="web"} 110)");
  EXPECT_LINE(t, R"(rondo_vip_active_flows{vip="web"} 2)");
  EXPECT_LINE(t, R"(rondo_vip_packets_total{vip="dns"} 0)");
  EXPECT_LINE(t, R"(rondo_vip_backends{vip="web"} 3)");
  // 3000 is up; 3001 is drained; 4:3000 is down.
  EXPECT_LINE(t, R"(rondo_vip_backends_available{vip="web"} 1)");
  EXPECT_LINE(t, R"(rondo_vip_backends_available{vip="dns"} 0)");  // weight 0
}

// An IPv6 vip and backend: labels carry RFC 5952 text, endpoints in brackets
// (api::format_endpoint), whatever spelling the address was given in.
ControlPlaneView dual_stack_view() {
  ControlPlaneView v = sample_view();
  VipSpec web6{.name = "web6", .id = 2, .ip = ip("2001:0db8:0000::0010"), .port = 80};
  web6.backends = {{.id = 30, .ip = ip("2001:db8:100:0:0:0:0:3"), .port = 3000, .weight = 1,
                    .health = Health::kUp}};
  v.desired.vips.push_back(web6);
  auto s = std::make_shared<api::Stats>(*v.stats);
  s->backends.push_back({.id = 30, .packets = 7, .bytes = 700, .connections = 1, .active_flows = 1});
  v.stats = s;
  return v;
}

TEST(Metrics, Ipv6LabelsAreRfc5952Endpoints) {
  MetricsCollector c([] { return dual_stack_view(); });
  const std::string t = text(c.Collect());
  EXPECT_LINE(t,
              R"(rondo_vip_info{address="[2001:db8::10]:80/tcp",mode="fullnat",on_all_down="drop",)"
              R"(scheduler="rr",vip="web6"} 1)");
  EXPECT_LINE(t, R"(rondo_backend_packets_total{backend="[2001:db8:100::3]:3000",vip="web6"} 7)");
  EXPECT_LINE(t, R"(rondo_backend_up{backend="[2001:db8:100::3]:3000",vip="web6"} 1)");
  EXPECT_LINE(t, R"(rondo_vip_active_flows{vip="web6"} 1)");
  // The v4 vips beside it are as they were.
  EXPECT_LINE(t, R"(rondo_backend_packets_total{backend="198.51.100.3:3000",vip="web"} 1500)");
}

TEST(Metrics, LcoreAndPortSeries) {
  MetricsCollector c([] { return sample_view(); });
  const std::string t = text(c.Collect());
  EXPECT_LINE(t, R"(rondo_lcore_rx_packets_total{lcore="1"} 1000)");
  EXPECT_LINE(t, R"(rondo_lcore_tx_packets_total{lcore="1"} 990)");
  EXPECT_LINE(t, R"(rondo_lcore_rx_bytes_total{lcore="2"} 640)");
  EXPECT_LINE(t, R"(rondo_lcore_tx_bytes_total{lcore="1"} 63000)");
  EXPECT_LINE(t, R"(rondo_lcore_dropped_packets_total{lcore="1",reason="no_backend"} 5)");
  EXPECT_LINE(t, R"(rondo_lcore_dropped_packets_total{lcore="1",reason="malformed_l2"} 0)");
  EXPECT_LINE(t, R"(rondo_lcore_dropped_packets_total{lcore="2",reason="malformed_l2"} 3)");
  EXPECT_LINE(t, R"(rondo_lcore_busy_cycles_total{lcore="1"} 5000000)");
  EXPECT_LINE(t, R"(rondo_lcore_idle_cycles_total{lcore="1"} 15000000)");
  EXPECT_LINE(t, R"(rondo_lcore_active_flows{lcore="1"} 7)");
  EXPECT_LINE(t, R"(rondo_lcore_flow_capacity{lcore="2"} 65536)");

  const std::string port = R"({name="0000:01:00.0",port="0"})";
  EXPECT_LINE(t, "rondo_port_rx_packets_total" + port + " 12345");
  EXPECT_LINE(t, "rondo_port_tx_packets_total" + port + " 12000");
  EXPECT_LINE(t, "rondo_port_rx_bytes_total" + port + " 800000");
  EXPECT_LINE(t, "rondo_port_tx_bytes_total" + port + " 790000");
  EXPECT_LINE(t, "rondo_port_rx_missed_packets_total" + port + " 4");
  EXPECT_LINE(t, "rondo_port_rx_errors_total" + port + " 1");
  EXPECT_LINE(t, "rondo_port_tx_errors_total" + port + " 2");
  EXPECT_LINE(t, "rondo_port_rx_mbuf_allocation_failures_total" + port + " 3");
}

TEST(Metrics, InterfaceSeries) {
  ControlPlaneView v = vlan_view();
  MetricsCollector c([&] { return v; });
  std::string t = text(c.Collect());
  EXPECT_LINE(t, R"(rondo_interface_info{interface="clients",mtu="1500",port="0",vlan="100"} 1)");
  EXPECT_LINE(t, R"(rondo_interface_info{interface="backends",mtu="9000",port="0",vlan="0"} 1)");
  const std::string clients = R"({interface="clients",port="0",vlan="100"})";
  const std::string backends = R"({interface="backends",port="0",vlan="0"})";
  EXPECT_LINE(t, "rondo_interface_rx_packets_total" + clients + " 10");
  EXPECT_LINE(t, "rondo_interface_rx_bytes_total" + clients + " 1000");
  EXPECT_LINE(t, "rondo_interface_tx_packets_total" + clients + " 20");
  EXPECT_LINE(t, "rondo_interface_tx_bytes_total" + clients + " 2000");
  EXPECT_LINE(t, "rondo_interface_rx_packets_total" + backends + " 30");
  EXPECT_LINE(t, "rondo_interface_tx_bytes_total" + backends + " 4000");

  // No dataplane: the declared interfaces are still described (the default MTU unknown:
  // 0), their counters are not exported.
  v.dataplane_connected = false;
  v.dataplane.reset();
  t = text(c.Collect());
  EXPECT_LINE(t, R"(rondo_interface_info{interface="clients",mtu="0",port="0",vlan="100"} 1)");
  EXPECT_LINE(t, R"(rondo_interface_info{interface="backends",mtu="9000",port="0",vlan="0"} 1)");
  EXPECT_FALSE(contains(t, "rondo_interface_rx_packets_total")) << t;

  // None declared: the dataplane's implicit one per port, as it reports them.
  ControlPlaneView plain = sample_view();
  auto s = std::make_shared<api::Stats>(*plain.stats);
  s->interfaces = {{.id = 0, .name = "port0", .port_id = 0, .mtu = 1500, .rx_packets = 12345}};
  plain.stats = s;
  MetricsCollector p([&] { return plain; });
  t = text(p.Collect());
  EXPECT_LINE(t, R"(rondo_interface_info{interface="port0",mtu="1500",port="0",vlan="0"} 1)");
  EXPECT_LINE(t, R"(rondo_interface_rx_packets_total{interface="port0",port="0",vlan="0"} 12345)");
  EXPECT_LINE(t, R"(rondo_interface_tx_packets_total{interface="port0",port="0",vlan="0"} 0)");
}

// The exporter renders whatever lcore counters the dataplane describes: a counter added
// to the dataplane's table (and so to the wire) is exported with no change here.
TEST(Metrics, EveryDescribedLcoreCounterIsExported) {
  MetricsCollector c([] {
    auto v = sample_view();
    auto s = std::make_shared<api::Stats>(*v.stats);
    s->counters.push_back({"widgets", "rondo_lcore_widgets_total", "Widgets seen.", false});
    s->counters.push_back({"gizmos", "rondo_lcore_gizmos", "Gizmos held.", true});
    for (auto& l : s->lcores) {
      l.counters.push_back(40 + l.lcore_id);
      l.counters.push_back(7);
    }
    v.stats = s;
    return v;
  });
  const std::string t = text(c.Collect());
  EXPECT_LINE(t, "# TYPE rondo_lcore_widgets_total counter");
  EXPECT_LINE(t, "# HELP rondo_lcore_widgets_total Widgets seen.");
  EXPECT_LINE(t, R"(rondo_lcore_widgets_total{lcore="1"} 41)");
  EXPECT_LINE(t, R"(rondo_lcore_widgets_total{lcore="2"} 42)");
  EXPECT_LINE(t, "# TYPE rondo_lcore_gizmos gauge");
  EXPECT_LINE(t, R"(rondo_lcore_gizmos{lcore="2"} 7)");
}

TEST(Metrics, ControlPlaneSeries) {
  MetricsCollector c([] { return sample_view(); });
  const std::string t = text(c.Collect());
  EXPECT_LINE(t, "rondo_controlplane_config_generation 7");
  EXPECT_LINE(t, "rondo_controlplane_dataplane_connected 1");
  EXPECT_LINE(t, "rondo_controlplane_dataplane_in_sync 1");
  EXPECT_LINE(t, "rondo_controlplane_last_push_timestamp_seconds 1700000000.5");
  EXPECT_LINE(t, "rondo_controlplane_pushes_total 3");
  EXPECT_LINE(t, "rondo_controlplane_push_failures_total 1");
  EXPECT_LINE(t, "rondo_controlplane_reloads_total 2");
  EXPECT_LINE(t, "rondo_controlplane_reload_failures_total 1");
  EXPECT_LINE(t, "rondo_controlplane_stats_timestamp_seconds 1700000001");
  EXPECT_LINE(t, "rondo_dataplane_config_generation 7");
}

TEST(Metrics, DataplaneStartSeries) {
  ControlPlaneView v = sample_view();
  v.dataplane->adopted_flows = 12345;
  v.dataplane->discarded_flows = 6;
  v.dataplane->start_kind = 1;
  v.dataplane->gap_ms = 180;
  v.dataplane_restarts = {0, 2, 1};
  MetricsCollector c([&] { return v; });
  std::string t = text(c.Collect());
  EXPECT_LINE(t, "rondo_dataplane_adopted_flows 12345");
  EXPECT_LINE(t, "rondo_dataplane_discarded_flows 6");
  EXPECT_LINE(t, "rondo_dataplane_restart_gap_seconds 0.18");
  EXPECT_LINE(t, R"(rondo_dataplane_restarts_total{kind="planned"} 2)");
  EXPECT_LINE(t, R"(rondo_dataplane_restarts_total{kind="crash"} 1)");
  EXPECT_LINE(t, R"(rondo_dataplane_restarts_total{kind="fresh"} 0)");
  // The control plane's count outlives the connection; the hello's figures do not.
  v.dataplane_connected = false;
  v.dataplane.reset();
  t = text(c.Collect());
  EXPECT_LINE(t, R"(rondo_dataplane_restarts_total{kind="planned"} 2)");
  EXPECT_EQ(t.find("rondo_dataplane_adopted_flows"), std::string::npos);
  EXPECT_EQ(t.find("rondo_dataplane_restart_gap_seconds"), std::string::npos);
}

// Every sample belongs to a family with HELP and TYPE; names follow the conventions.
TEST(Metrics, EveryFamilyHasHelpAndTypeAndConventionalNames) {
  MetricsCollector c([] { return sample_view(); });
  const auto families = c.Collect();
  std::set<std::string> names;
  for (const auto& f : families) {
    EXPECT_TRUE(names.insert(f.name).second) << "family twice: " << f.name;
    EXPECT_EQ(f.name.rfind("rondo_", 0), 0u) << f.name;
    EXPECT_FALSE(f.help.empty()) << f.name;
    EXPECT_FALSE(f.metric.empty()) << f.name;
    const bool total = f.name.size() > 6 && f.name.substr(f.name.size() - 6) == "_total";
    if (f.type == prometheus::MetricType::Counter)
      EXPECT_TRUE(total) << f.name;
    else
      EXPECT_TRUE(f.type == prometheus::MetricType::Gauge && !total) << f.name;
  }

  const std::string t = text(families);
  std::map<std::string, std::string> help, type;
  for (const auto& l : lines_of(t)) {
    if (l.rfind("# HELP ", 0) == 0) {
      const std::string rest = l.substr(7);
      help[rest.substr(0, rest.find(' '))] = rest.substr(rest.find(' ') + 1);
    } else if (l.rfind("# TYPE ", 0) == 0) {
      const std::string rest = l.substr(7);
      type[rest.substr(0, rest.find(' '))] = rest.substr(rest.find(' ') + 1);
    } else if (!l.empty()) {
      const std::string name = l.substr(0, l.find_first_of("{ "));
      EXPECT_TRUE(help.count(name) && !help[name].empty()) << "no HELP before " << l;
      EXPECT_TRUE(type[name] == "counter" || type[name] == "gauge") << "no TYPE before " << l;
    }
  }
  EXPECT_EQ(help.size(), families.size());
  EXPECT_EQ(type.size(), families.size());
}

TEST(Metrics, WithoutDataplaneOnlyConfigAndControlPlaneSeries) {
  ControlPlaneView v = sample_view();
  v.dataplane_connected = false;
  v.in_sync = false;
  v.dataplane.reset();
  v.last_push.reset();
  MetricsCollector c([&] { return v; });
  const std::string t = text(c.Collect());
  EXPECT_LINE(t, "rondo_controlplane_dataplane_connected 0");
  EXPECT_LINE(t, "rondo_controlplane_last_push_timestamp_seconds 0");
  EXPECT_LINE(t, R"(rondo_backend_up{backend="198.51.100.4:3000",vip="web"} 0)");
  EXPECT_LINE(t, R"(rondo_vip_backends{vip="web"} 3)");
  for (const char* gone :
       {"rondo_backend_packets_total", "rondo_vip_packets_total", "rondo_lcore_", "rondo_port_",
        "rondo_interface_rx_", "rondo_interface_tx_",
        "rondo_dataplane_config_generation", "rondo_controlplane_stats_timestamp_seconds"})
    EXPECT_FALSE(contains(t, gone)) << gone;
}

TEST(Metrics, NoStatsYet) {
  ControlPlaneView v = sample_view();
  v.stats.reset();
  v.stats_time.reset();
  MetricsCollector c([&] { return v; });
  const std::string t = text(c.Collect());
  EXPECT_FALSE(contains(t, "rondo_lcore_"));
  EXPECT_LINE(t, "rondo_controlplane_dataplane_connected 1");
}

// The per-vip counters never go down: not when a backend is removed, not when the
// dataplane restarts.
TEST(Metrics, VipCountersAreMonotonic) {
  ControlPlaneView v = sample_view();
  auto stats = [&]() -> api::Stats& { return const_cast<api::Stats&>(*v.stats); };
  MetricsCollector c([&] { return v; });
  EXPECT_LINE(text(c.Collect()), R"(rondo_vip_packets_total{vip="web"} 1700)");

  // Backend 1 (200 packets) is removed; backend 0 gets 10 more packets.
  v.desired.vips[0].backends.erase(v.desired.vips[0].backends.begin() + 1);
  stats().backends[0].packets += 10;
  std::string t = text(c.Collect());
  EXPECT_LINE(t, R"(rondo_vip_packets_total{vip="web"} 1710)");
  EXPECT_LINE(t, R"(rondo_vip_connections_total{vip="web"} 110)");
  EXPECT_NO_LINE(t, R"(rondo_backend_packets_total{backend="198.51.100.3:3001",vip="web"} 200)");

  // The dataplane restarts: new instance, counters from zero, already 50 packets.
  v.dataplane->instance = 43;
  stats().backends = {{.id = 0, .packets = 50, .bytes = 5000, .connections = 1}};
  t = text(c.Collect());
  EXPECT_LINE(t, R"(rondo_vip_packets_total{vip="web"} 1760)");
  EXPECT_LINE(t, R"(rondo_backend_packets_total{backend="198.51.100.3:3000",vip="web"} 50)");

  // A counter going down without a new instance is a restart too.
  stats().backends[0].packets = 5;
  t = text(c.Collect());
  EXPECT_LINE(t, R"(rondo_vip_packets_total{vip="web"} 1765)");

  // A scrape with no change changes nothing.
  EXPECT_LINE(text(c.Collect()), R"(rondo_vip_packets_total{vip="web"} 1765)");
}

TEST(Metrics, LabelValuesAreEscaped) {
  ControlPlaneView v = sample_view();
  v.stats = nullptr;
  api::Stats s;
  s.ports = {{.port_id = 1, .name = "net_\"odd\\name"}};
  v.stats = std::make_shared<api::Stats>(s);
  MetricsCollector c([&] { return v; });
  EXPECT_LINE(text(c.Collect()),
              R"(rondo_port_rx_packets_total{name="net_\"odd\\name",port="1"} 0)");
}

// ---- promtool ---------------------------------------------------------------------------

constexpr const char* kPromtool = "/usr/bin/promtool";

// Run `promtool check metrics` on `text`; returns its exit status and output.
std::pair<int, std::string> promtool_check(const std::string& text) {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string in = (dir / ("rondo_metrics_" + std::to_string(::getpid()) + ".txt")).string();
  const std::string out = in + ".out";
  std::ofstream(in) << text;
  const std::string cmd = std::string(kPromtool) + " check metrics < " + in + " > " + out + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream f(out);
  std::stringstream ss;
  ss << f.rdbuf();
  std::filesystem::remove(in);
  std::filesystem::remove(out);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, ss.str()};
}

TEST(Metrics, PromtoolCheckMetricsIsClean) {
  if (::access(kPromtool, X_OK) != 0)
    GTEST_SKIP() << kPromtool << " not installed (Debian package prometheus)";
  MetricsCollector c([] { return sample_view(); });
  const auto [rc, output] = promtool_check(text(c.Collect()));
  EXPECT_EQ(rc, 0) << output;
  EXPECT_EQ(output, "");

  // IPv6 labels ([, ], : inside label values) are valid exposition too.
  MetricsCollector c6([] { return dual_stack_view(); });
  const auto [rc6, output6] = promtool_check(text(c6.Collect()));
  EXPECT_EQ(rc6, 0) << output6;
  EXPECT_EQ(output6, "");

  // Interfaces, declared with VLANs.
  MetricsCollector cv([] { return vlan_view(); });
  const auto [rcv, outputv] = promtool_check(text(cv.Collect()));
  EXPECT_EQ(rcv, 0) << outputv;
  EXPECT_EQ(outputv, "");

  // And with no dataplane (the other set of families).
  ControlPlaneView v = sample_view();
  v.dataplane_connected = false;
  MetricsCollector c2([&] { return v; });
  const auto [rc2, output2] = promtool_check(text(c2.Collect()));
  EXPECT_EQ(rc2, 0) << output2;
  EXPECT_EQ(output2, "");
}

// ---- HTTP -------------------------------------------------------------------------------

// GET `path` from 127.0.0.1:port with HTTP/1.0; returns the whole response.
std::string http_get(uint16_t port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  timeval tv{5, 0};  // a hung server fails the test instead of hanging it
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    EXPECT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
      response.append(buf, static_cast<size_t>(n));
  } else {
    ADD_FAILURE() << "connect to port " << port << ": " << std::strerror(errno);
  }
  ::close(fd);
  return response;
}

TEST(MetricsServer, ServesMetricsOverHttp) {
  MetricsServer server([] { return sample_view(); }, "127.0.0.1:0");
  ASSERT_NE(server.port(), 0);
  const std::string response = http_get(server.port(), "/metrics");
  ASSERT_EQ(response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << response;
  const size_t body_at = response.find("\r\n\r\n");
  ASSERT_NE(body_at, std::string::npos);
  const std::string body = response.substr(body_at + 4);
  EXPECT_LINE(body, "rondo_controlplane_config_generation 7");
  EXPECT_LINE(body,
              R"(rondo_backend_connections_total{backend="198.51.100.3:3001",vip="web"} 100)");

  // The whole endpoint, prometheus-cpp's own exposer_* families included, passes promtool.
  if (::access(kPromtool, X_OK) == 0) {
    const auto [rc, output] = promtool_check(body);
    EXPECT_EQ(rc, 0) << output;
    EXPECT_EQ(output, "");
  }
}

TEST(MetricsServer, PortInUseIsAClearError) {
  MetricsServer first([] { return ControlPlaneView{}; }, "127.0.0.1:0");
  const std::string taken = "127.0.0.1:" + std::to_string(first.port());
  try {
    MetricsServer second([] { return ControlPlaneView{}; }, taken);
    FAIL() << "listened twice on " << taken;
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(contains(e.what(), "cannot listen on " + taken)) << e.what();
  }
}

}  // namespace
}  // namespace rondo::cp

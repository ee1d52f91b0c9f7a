// The desired-state model: config files as named state (ids by key, health checks),
// diffing, keeping identity across reloads, the id allocator, and the state file.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <variant>
#include <vector>

#include "tests/unit/cp_fixtures.h"
#include "controlplane/config/config.h"
#include "controlplane/state/diff.h"
#include "controlplane/state/ids.h"
#include "controlplane/state/model.h"
#include "controlplane/state/state_file.h"

namespace rondo::cp {
namespace {

api::Addr ip(const char* s) {
  auto a = api::parse_addr(s);
  EXPECT_TRUE(a) << s;
  return a.value_or(api::Addr{});
}

// Built field by field: a designated initializer of VipSpec trips GCC 12's
// -Wmaybe-uninitialized on HealthCheck::path.
VipSpec vip(const char* name, uint32_t id, const char* address, uint16_t port) {
  VipSpec v;
  v.name = name;
  v.id = id;
  v.ip = ip(address);
  v.port = port;
  return v;
}

DesiredState model_of(std::string_view text) {
  auto r = parse_config_model(text, "rondo.yaml");
  if (auto* errors = std::get_if<std::vector<ConfigError>>(&r)) {
    for (const auto& e : *errors) ADD_FAILURE() << e.to_string();
    return {};
  }
  return std::get<DesiredState>(r);
}

std::vector<std::string> errors_of(std::string_view text) {
  auto r = parse_config_model(text, "rondo.yaml");
  std::vector<std::string> out;
  if (auto* errors = std::get_if<std::vector<ConfigError>>(&r))
    for (const auto& e : *errors) out.push_back(e.to_string());
  return out;
}

constexpr const char* kWeb = test::kTwoVipsConfig;

// ---- config file -> model ----

TEST(ConfigModel, KeepsNamesAndLeavesIdsToTheStore) {
  const auto d = model_of(kWeb);
  ASSERT_EQ(d.vips.size(), 2u);
  EXPECT_EQ(d.vips[0].name, "web");
  EXPECT_EQ(d.vips[1].name, "dns");
  for (const auto& v : d.vips) {
    EXPECT_EQ(v.id, 0u);
    EXPECT_EQ(v.health_check.type, HealthCheck::Type::kNone);
    for (const auto& b : v.backends) {
      EXPECT_EQ(b.id, 0u);
      EXPECT_FALSE(b.drained);
      EXPECT_EQ(b.health, Health::kUnknown);
    }
  }
}

TEST(ConfigModel, HealthCheckIsParsed) {
  const auto d = model_of(R"(local_ips: [198.51.100.100]
vips:
  - name: web
    address: 203.0.113.10
    port: 80
    health_check:
      type: http
      port: 8080
      path: /healthz
      status: 204
      interval_ms: 1500
      timeout_ms: 500
      rise: 1
      fall: 5
    backends: []
  - name: tcp
    address: 203.0.113.10
    port: 81
    health_check: {type: tcp}
    backends: []
)");
  ASSERT_EQ(d.vips.size(), 2u);
  EXPECT_EQ(d.vips[0].health_check,
            (HealthCheck{.type = HealthCheck::Type::kHttp, .port = 8080, .path = "/healthz",
                         .http_status = 204, .interval_ms = 1500, .timeout_ms = 500, .rise = 1,
                         .fall = 5}));
  EXPECT_EQ(d.vips[1].health_check, (HealthCheck{.type = HealthCheck::Type::kTcp}));
}

TEST(ConfigModel, BadHealthChecksNameLineAndField) {
  EXPECT_EQ(errors_of(R"(local_ips: [198.51.100.100]
vips:
  - name: a
    address: 203.0.113.10
    port: 80
    health_check: {type: icmp}
    backends: []
  - name: b
    address: 203.0.113.10
    port: 81
    health_check:
      type: tcp
      path: /x
    backends: []
  - name: c
    address: 203.0.113.10
    port: 82
    health_check:
      type: http
      path: healthz
      status: 700
      interval_ms: 5
      rise: 0
      every: 3
    backends: []
  - name: d
    address: 203.0.113.10
    port: 83
    health_check:
      type: http
      interval_ms: 1000
      timeout_ms: 2000
    backends: []
  - name: e
    address: 203.0.113.10
    port: 84
    health_check: {port: 80}
    backends: []
)"),
            (std::vector<std::string>{
                "rondo.yaml:6: vips[0].health_check.type: icmp is not a supported health check "
                "type (none, tcp, http)",
                "rondo.yaml:13: vips[1].health_check.path: path is only used by type: http",
                "rondo.yaml:20: vips[2].health_check.path: \"healthz\" is not an HTTP path "
                "(starts with /, no spaces or control characters, at most 1024 bytes)",
                "rondo.yaml:21: vips[2].health_check.status: 700 is not an HTTP status (100-599)",
                "rondo.yaml:22: vips[2].health_check.interval_ms: 5 is not a period in "
                "milliseconds (10-3600000)",
                "rondo.yaml:23: vips[2].health_check.rise: 0 is not a count (1-100)",
                "rondo.yaml:24: vips[2].health_check.every: unknown field (expected one of: "
                "type, port, path, status, interval_ms, timeout_ms, rise, fall)",
                "rondo.yaml:32: vips[3].health_check.timeout_ms: timeout_ms (2000) must not "
                "exceed interval_ms (1000)",
                "rondo.yaml:37: vips[4].health_check.type: required field is missing",
            }));
}

TEST(ConfigModel, FirstStartIdsAreFileOrder) {
  // parse_config (the dataplane's view of a first start) numbers as assign_fresh_ids does.
  auto r = parse_config(kWeb, "rondo.yaml");
  ASSERT_TRUE(std::holds_alternative<api::State>(r));
  const auto& s = std::get<api::State>(r);
  EXPECT_EQ(s.vips[0].id, 0u);
  EXPECT_EQ(s.vips[1].id, 1u);
  EXPECT_EQ(s.vips[0].backends[2].id, 2u);
  EXPECT_EQ(s.vips[1].backends[0].id, 3u);
}

TEST(ConfigModel, DigestIsStableAndSensitive) {
  EXPECT_EQ(config_digest("vips: []\n"), config_digest("vips: []\n"));
  EXPECT_NE(config_digest("vips: []\n"), config_digest("vips: [] \n"));
  EXPECT_EQ(config_digest(""), "fnv1a64:cbf29ce484222325");
}

TEST(ConfigModel, DeployExampleLoadsWithHealthChecks) {
  auto r = load_config_model("../../deploy/rondo.yaml");
  ASSERT_TRUE(std::holds_alternative<DesiredState>(r))
      << std::get<std::vector<ConfigError>>(r)[0].to_string();
}

// ---- identity across changes ----

// adopt_identity with counters as allocators, as the store does on a reload.
DesiredState adopt(const DesiredState& current, DesiredState next, uint32_t* vip_next,
                   uint32_t* backend_next, uint32_t* iface_next = nullptr) {
  uint32_t unused = 200;
  if (!iface_next) iface_next = &unused;
  auto err = adopt_identity(
      current, &next, [&]() -> std::optional<uint32_t> { return (*vip_next)++; },
      [&]() -> std::optional<uint32_t> { return (*backend_next)++; },
      [&]() -> std::optional<uint32_t> { return (*iface_next)++; });
  EXPECT_EQ(err, "");
  return next;
}

constexpr const char* kInterfaces = test::kVlanConfig;

TEST(ConfigModel, InterfacesGetFileOrderIdsAndRoutesFollowThem) {
  const auto d = model_of(kInterfaces);
  ASSERT_EQ(d.interfaces.size(), 2u);
  EXPECT_EQ(d.interfaces[0].id, 0u);
  EXPECT_EQ(d.interfaces[1].id, 1u);
  ASSERT_EQ(d.routes.size(), 2u);
  EXPECT_EQ(d.routes[0].iface, 0u);  // interface: clients
  EXPECT_EQ(d.routes[1].iface, 1u);  // port: 0 is backends, the untagged one
  EXPECT_EQ(d.neighbours[0].iface, 0u);
  EXPECT_EQ(d.neighbours[1].iface, 1u);
  EXPECT_EQ(d.interface_name(1), "backends");
  EXPECT_EQ(DesiredState{}.interface_name(3), "port3");  // implicit
}

TEST(Identity, InterfacesKeepTheirIdsByNameAndRoutesFollow) {
  DesiredState current = model_of(kInterfaces);
  assign_fresh_ids(&current);
  // Reordered, one new interface first: ids by name, the new one from the allocator, and
  // every route and neighbour on the interface it names.
  const auto file = model_of(R"(local_ips: [198.51.100.100]
interfaces:
  - {name: mgmt, port: 1}
  - {name: backends, port: 0, mtu: 9000, addresses: [198.51.100.254/24]}
  - {name: clients, port: 0, vlan: 100, addresses: [192.0.2.1/24]}
routes:
  - {prefix: 0.0.0.0/0, via: 192.0.2.254, interface: clients}
  - {prefix: 10.0.0.0/8, via: 198.51.100.1, port: 0}
  - {prefix: 172.16.0.0/12, interface: mgmt}
neighbours:
  - {ip: 192.0.2.254, mac: "02:00:00:00:00:fe", interface: clients}
  - {ip: 198.51.100.3, mac: "02:00:00:00:00:03", port: 0}
vips:
  - name: web
    address: 203.0.113.10
    port: 80
    backends:
      - {address: 198.51.100.3, port: 3000}
)");
  uint32_t vn = 0, bn = 0, in = 7;
  const auto next = adopt(current, file, &vn, &bn, &in);
  EXPECT_EQ(in, 8u);  // one new id
  EXPECT_EQ(next.find_interface(std::string_view("clients"))->id, 0u);
  EXPECT_EQ(next.find_interface(std::string_view("backends"))->id, 1u);
  EXPECT_EQ(next.find_interface(std::string_view("mgmt"))->id, 7u);
  ASSERT_EQ(next.routes.size(), 3u);
  EXPECT_EQ(next.routes[0].iface, 0u);
  EXPECT_EQ(next.routes[1].iface, 1u);
  EXPECT_EQ(next.routes[2].iface, 7u);
  EXPECT_EQ(next.neighbours[0].iface, 0u);
  EXPECT_EQ(next.neighbours[1].iface, 1u);
  EXPECT_EQ(diff_states(current, next),
            (std::vector<std::string>{
                "+ interface mgmt port 1 vlan untagged mtu default addresses []",
                "~ routes [0.0.0.0/0 via 192.0.2.254 interface clients, 10.0.0.0/8 via "
                "198.51.100.1 interface backends] -> [0.0.0.0/0 via 192.0.2.254 interface "
                "clients, 10.0.0.0/8 via 198.51.100.1 interface backends, 172.16.0.0/12 on-link "
                "interface mgmt]",
            }));
}

TEST(Identity, RunningOutOfInterfaceIdsIsAnError) {
  DesiredState next = model_of(kInterfaces);
  auto err = adopt_identity(
      DesiredState{}, &next, []() -> std::optional<uint32_t> { return 0; },
      []() -> std::optional<uint32_t> { return 0; },
      []() -> std::optional<uint32_t> { return std::nullopt; });
  EXPECT_EQ(err, "no free interface id (at most 256 interfaces)");
}

TEST(Diff, InterfacesByNameAndWhatTheirRoutesName) {
  DesiredState a = model_of(kInterfaces);
  assign_fresh_ids(&a);
  DesiredState b = a;
  b.interfaces[0].vlan = 200;
  b.interfaces[0].mtu = 1400;
  b.interfaces[0].addresses.push_back({.addr = ip("2001:db8:200::1"), .len = 64});
  b.interfaces[1].port_id = 1;
  b.interfaces.push_back({.id = 2, .name = "mgmt", .port_id = 2, .vlan = 7});
  EXPECT_EQ(diff_states(a, b),
            (std::vector<std::string>{
                "~ interface clients vlan 100 -> 200",
                "~ interface clients mtu default -> 1400",
                "~ interface clients addresses [192.0.2.1/24] -> [192.0.2.1/24, "
                "2001:db8:200::1/64]",
                "~ interface backends port 0 -> 1",
                "+ interface mgmt port 2 vlan 7 mtu default addresses []",
            }));
  // Removing one: its line, and the routes that named it now name what is left.
  DesiredState c = a;
  c.interfaces.erase(c.interfaces.begin());
  c.routes.erase(c.routes.begin());
  c.neighbours.erase(c.neighbours.begin());
  const auto d = diff_states(a, c);
  ASSERT_EQ(d.size(), 3u) << ::testing::PrintToString(d);
  EXPECT_EQ(d[0], "- interface clients port 0 vlan 100");
  EXPECT_EQ(d[1], "~ routes [0.0.0.0/0 via 192.0.2.254 interface clients, 10.0.0.0/8 via "
                  "198.51.100.1 interface backends] -> [10.0.0.0/8 via 198.51.100.1 interface "
                  "backends]");
  EXPECT_EQ(d[2], "~ neighbours [192.0.2.254 02:00:00:00:00:fe interface clients, 198.51.100.3 "
                  "02:00:00:00:00:03 interface backends] -> [198.51.100.3 02:00:00:00:00:03 "
                  "interface backends]");
}

TEST(Identity, ReorderingTheFileRenumbersNothing) {
  DesiredState current = model_of(kWeb);
  assign_fresh_ids(&current);
  const auto reordered = model_of(R"(local_ips: [198.51.100.100]
vips:
  - name: dns
    address: 203.0.113.10
    port: 53
    protocol: udp
    backends:
      - {address: 198.51.100.5, port: 53}
  - name: web
    address: 203.0.113.10
    port: 80
    backends:
      - {address: 198.51.100.4, port: 3000}
      - {address: 198.51.100.3, port: 3001}
      - {address: 198.51.100.3, port: 3000}
)");
  uint32_t vn = 100, bn = 100;
  const auto next = adopt(current, reordered, &vn, &bn);
  EXPECT_EQ(vn, 100u);  // nothing new allocated
  EXPECT_EQ(bn, 100u);
  EXPECT_EQ(next.find_vip("web")->id, 0u);
  EXPECT_EQ(next.find_vip("dns")->id, 1u);
  EXPECT_EQ(next.find_vip("web")->find_backend(ip("198.51.100.4"), 3000)->id, 2u);
  EXPECT_EQ(next.find_vip("web")->find_backend(ip("198.51.100.3"), 3000)->id, 0u);
  EXPECT_EQ(next.find_vip("dns")->find_backend(ip("198.51.100.5"), 53)->id, 3u);
  EXPECT_TRUE(diff_states(current, next).empty());
}

TEST(Identity, NewEntriesGetNewIdsAndKeptOnesKeepDrainAndHealth) {
  DesiredState current = model_of(kWeb);
  assign_fresh_ids(&current);
  current.vips[0].backends[1].drained = true;
  current.vips[0].backends[1].health = Health::kDown;
  auto file = model_of(kWeb);
  file.vips[0].backends.push_back({.ip = ip("198.51.100.3"), .port = 3004});
  file.vips[0].backends[1].weight = 3;
  file.vips.push_back(vip("api", 0, "203.0.113.11", 443));
  file.vips.back().backends = {{.ip = ip("198.51.100.9"), .port = 8443}};
  uint32_t vn = 2, bn = 4;
  const auto next = adopt(current, file, &vn, &bn);
  const auto& b1 = *next.find_vip("web")->find_backend(ip("198.51.100.3"), 3001);
  EXPECT_EQ(b1.id, 1u);
  EXPECT_TRUE(b1.drained);
  EXPECT_EQ(b1.health, Health::kDown);
  EXPECT_EQ(b1.weight, 3);
  EXPECT_EQ(next.find_vip("web")->find_backend(ip("198.51.100.3"), 3004)->id, 4u);
  EXPECT_EQ(next.find_vip("api")->id, 2u);
  EXPECT_EQ(next.find_vip("api")->backends[0].id, 5u);
}

TEST(Identity, RunningOutOfIdsIsAnError) {
  DesiredState current;
  DesiredState next = model_of(kWeb);
  auto err = adopt_identity(
      current, &next, []() -> std::optional<uint32_t> { return 0; },
      []() -> std::optional<uint32_t> { return std::nullopt; },
      []() -> std::optional<uint32_t> { return 0; });
  EXPECT_NE(err.find("no free backend id"), std::string::npos) << err;
}

// ---- diff ----

TEST(Diff, ListsAddedChangedAndRemovedEntries) {
  DesiredState a = model_of(kWeb);
  assign_fresh_ids(&a);
  DesiredState b = a;
  auto& web = *b.find_vip("web");
  web.backends.push_back({.id = 9, .ip = ip("198.51.100.3"), .port = 3004});
  web.backends[1].weight = 3;
  web.backends[2].drained = true;
  std::erase_if(web.backends, [](const BackendSpec& x) { return x.port == 3000 && x.ip == api::Addr::from_v4(0xc6336403); });
  web.port = 8080;
  web.health_check = {.type = HealthCheck::Type::kTcp};
  web.syncookies = api::SynCookies::kOn;
  web.mode = api::Mode::kIpip;
  web.on_all_down = api::OnAllDown::kOpen;
  b.vips.erase(b.vips.begin() + 1);  // dns
  b.vips.push_back(vip("api", 5, "203.0.113.11", 443));
  b.vips.back().backends = {{.id = 10, .ip = ip("198.51.100.9"), .port = 8443, .weight = 2}};
  b.local_ips.push_back(ip("198.51.100.101"));
  b.timeouts.tcp_syn_ms = 5000;
  EXPECT_EQ(diff_states(a, b),
            (std::vector<std::string>{
                "~ vip web address 203.0.113.10:80/tcp -> 203.0.113.10:8080/tcp",
                "~ vip web mode fullnat -> ipip",
                "~ vip web on_all_down drop -> open",
                "~ vip web syncookies off -> on",
                "~ vip web health_check none -> tcp every 2000 ms timeout 1000 ms rise 2 fall 3",
                "~ backend web 198.51.100.3:3001 weight 1 -> 3",
                "~ backend web 198.51.100.4:3000 drained",
                "+ backend web 198.51.100.3:3004 weight 1",
                "- backend web 198.51.100.3:3000",
                "+ vip api 203.0.113.11:443/tcp",
                "+ backend api 198.51.100.9:8443 weight 2",
                "- vip dns 203.0.113.10:53/udp",
                "- backend dns 198.51.100.5:53",
                "~ local_ips [198.51.100.100] -> [198.51.100.100, 198.51.100.101]",
                "~ timeouts tcp_syn 10 s -> 5 s",
            }));
}

TEST(Diff, Ipv6EntriesReadAsRfc5952WithBracketedEndpoints) {
  DesiredState a = model_of(kWeb);
  DesiredState b = a;
  b.local_ips.push_back(ip("2001:db8:100::100"));
  b.routes.push_back({.prefix = ip("2001:db8:200::"), .prefix_len = 48, .via = ip("fe80::1")});
  b.neighbours.push_back({.ip = ip("2001:db8:100::3"), .mac = {2, 0, 0, 0, 0, 0x13}});
  b.vips.push_back(vip("web6", 9, "2001:0db8:0:0::10", 80));
  b.vips.back().backends = {{.id = 11, .ip = ip("2001:db8:100:0::3"), .port = 3000}};
  const auto d = diff_states(a, b);
  auto has = [&](const std::string& line) { return std::find(d.begin(), d.end(), line) != d.end(); };
  EXPECT_TRUE(has("+ vip web6 [2001:db8::10]:80/tcp")) << ::testing::PrintToString(d);
  EXPECT_TRUE(has("+ backend web6 [2001:db8:100::3]:3000 weight 1")) << ::testing::PrintToString(d);
  EXPECT_TRUE(has("~ local_ips [198.51.100.100] -> [198.51.100.100, 2001:db8:100::100]"))
      << ::testing::PrintToString(d);
  auto line_with = [&](const std::string& part) {
    return std::any_of(d.begin(), d.end(), [&](const std::string& l) { return l.find(part) != std::string::npos; });
  };
  EXPECT_TRUE(line_with("2001:db8:200::/48 via fe80::1 port 0]")) << ::testing::PrintToString(d);
  EXPECT_TRUE(line_with("2001:db8:100::3 02:00:00:00:00:13 port 0]")) << ::testing::PrintToString(d);
  EXPECT_EQ(d.size(), 5u) << ::testing::PrintToString(d);  // + the routes and neighbours lines
}

TEST(Diff, HealthAndOrderAreNotChanges) {
  DesiredState a = model_of(kWeb);
  DesiredState b = a;
  b.vips[0].backends[0].health = Health::kDown;
  std::swap(b.vips[0], b.vips[1]);
  EXPECT_TRUE(diff_states(a, b).empty());
}

// ---- id allocator ----

TEST(IdAllocator, HandsOutIncreasingIdsAndNeverReusesBeforeWrapping) {
  IdAllocator a(7);
  std::set<uint32_t> in_use;
  for (uint32_t want = 0; want <= 5; ++want) {
    auto id = a.allocate(in_use, 1000, 60, nullptr);
    ASSERT_TRUE(id);
    EXPECT_EQ(*id, want);
    in_use.insert(*id);
  }
  // Remove 1 and 3: the next ids are still fresh ones.
  in_use.erase(1);
  a.retire(1, 1000);
  in_use.erase(3);
  a.retire(3, 1000);
  EXPECT_EQ(a.allocate(in_use, 1000, 60, nullptr), 6u);
  in_use.insert(6);
  EXPECT_EQ(a.allocate(in_use, 1000, 60, nullptr), 7u);
  in_use.insert(7);
  // All used once; 1 and 3 are still in quarantine.
  EXPECT_EQ(a.allocate(in_use, 1030, 60, nullptr), std::nullopt);
  // After the quarantine, the lowest idle one is reused...
  EXPECT_EQ(a.allocate(in_use, 1061, 60, [](uint32_t id) { return id == 1; }), 3u);
  in_use.insert(3);
  // ... and never one the dataplane still has flows for.
  EXPECT_EQ(a.allocate(in_use, 1061, 60, [](uint32_t id) { return id == 1; }), std::nullopt);
  EXPECT_EQ(a.allocate(in_use, 1061, 60, nullptr), 1u);
}

TEST(IdAllocator, SkipsIdsInUseAndReserves) {
  IdAllocator a(100);
  a.reserve(9);
  EXPECT_EQ(a.next(), 10u);
  EXPECT_EQ(a.allocate({10, 11}, 0, 60, nullptr), 12u);
}

TEST(IdAllocator, RestoreClampsNext) {
  IdAllocator a(10);
  a.restore(1000, {{3, 5}});
  EXPECT_EQ(a.next(), 11u);
  EXPECT_EQ(a.retired().at(3), 5);
}

// ---- state file ----

PersistedState sample_state() {
  PersistedState s;
  s.desired = model_of(R"(timeouts: {tcp_syn: 5}
local_ips: [198.51.100.100]
routes:
  - {prefix: 0.0.0.0/0, via: 198.51.100.1}
  - {prefix: 198.51.100.0/24}
neighbours:
  - {ip: 198.51.100.3, mac: "02:00:00:00:00:03", port: 0}
vips:
  - name: web
    address: 203.0.113.10
    port: 80
    health_check: {type: http, path: /healthz, status: 204}
    backends:
      - {address: 198.51.100.3, port: 3000, weight: 4}
      - {address: 198.51.100.3, port: 3001}
  - name: dsr
    address: 203.0.113.10
    port: 443
    mode: ipip
    on_all_down: open
    backends:
      - {address: 198.51.100.4, port: 443}
)");
  s.desired.vips[0].id = 7;
  s.desired.vips[0].backends[0].id = 12;
  s.desired.vips[0].backends[1].id = 40;
  s.desired.vips[0].backends[1].drained = true;
  s.desired.vips[0].syncookies = api::SynCookies::kAuto;
  s.desired.vips[1].id = 3;
  s.desired.vips[1].backends[0].id = 20;
  s.vip_ids.restore(8, {{2, 1700000000}});
  s.backend_ids.restore(41, {{13, 1700000001}, {14, 1700000002}});
  s.config_digest = "fnv1a64:0123456789abcdef";
  return s;
}

TEST(StateFile, RoundTrips) {
  const auto s = sample_state();
  auto back = decode_state_file(encode_state_file(s));
  ASSERT_TRUE(std::holds_alternative<PersistedState>(back)) << std::get<std::string>(back);
  EXPECT_EQ(std::get<PersistedState>(back), s);
}

// Every address field with IPv6 in it comes back as it went, RFC 5952 text in the file.
TEST(StateFile, Ipv6RoundTrips) {
  PersistedState s = sample_state();
  s.desired.local_ips.push_back(ip("2001:db8:100::100"));
  s.desired.routes.push_back({.prefix = ip("2001:db8:100::"), .prefix_len = 64});
  s.desired.routes.push_back({.prefix = api::Addr{}, .prefix_len = 0, .via = ip("fe80::1")});
  s.desired.neighbours.push_back({.ip = ip("2001:db8:100::3"), .mac = {2, 0, 0, 0, 0, 0x13}});
  VipSpec v6 = vip("web6", 4, "2001:db8::10", 80);
  v6.backends = {{.id = 30, .ip = ip("2001:db8:100::3"), .port = 3000},
                 {.id = 31, .ip = ip("2001:db8:100::4"), .port = 3000, .weight = 5}};
  s.desired.vips.push_back(v6);
  const std::string text = encode_state_file(s);
  const auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["vips"][2]["address"], "2001:db8::10");
  EXPECT_EQ(j["vips"][2]["backends"][1]["address"], "2001:db8:100::4");
  EXPECT_EQ(j["routes"][2]["prefix"], "2001:db8:100::");
  EXPECT_EQ(j["routes"][2]["prefix_len"], 64);
  EXPECT_EQ(j["routes"][3]["prefix"], "::");
  EXPECT_EQ(j["routes"][2]["via"], "::");  // no next hop, in the route's family
  auto back = decode_state_file(text);
  ASSERT_TRUE(std::holds_alternative<PersistedState>(back)) << std::get<std::string>(back);
  EXPECT_EQ(std::get<PersistedState>(back), s);
}

TEST(StateFile, ModesAndOnAllDownRoundTrip) {
  auto s = sample_state();
  EXPECT_EQ(s.desired.vips[1].mode, api::Mode::kIpip);
  EXPECT_EQ(s.desired.vips[1].on_all_down, api::OnAllDown::kOpen);
  for (const auto& n : api::kModeNames) {
    s.desired.vips[1].mode = n.mode;
    const auto text = encode_state_file(s);
    EXPECT_EQ(nlohmann::json::parse(text)["vips"][1]["mode"], n.name);
    auto back = decode_state_file(text);
    ASSERT_TRUE(std::holds_alternative<PersistedState>(back)) << std::get<std::string>(back);
    EXPECT_EQ(std::get<PersistedState>(back), s) << n.name;
  }
}

TEST(StateFile, SettingsAbsentFromOlderFilesTakeTheirDefaults) {
  // A state file written before a setting existed has no such field: the default, as it ran.
  // A value that is not one of the setting's names is refused.
  struct Case {
    const char* key;
    void (*reset)(VipSpec&);
    const char* error;
  };
  const Case cases[] = {
      {"syncookies", [](VipSpec& v) { v.syncookies = api::SynCookies::kOff; },
       "vips[0].syncookies: not off, on or auto"},
      {"proxy_protocol", [](VipSpec& v) { v.proxy_protocol = api::ProxyProtocol::kOff; },
       "vips[0].proxy_protocol: not off or v2"},
      {"on_all_down", [](VipSpec& v) { v.on_all_down = api::OnAllDown::kDrop; },
       "vips[0].on_all_down: not drop or open"},
  };
  auto s = sample_state();
  s.desired.vips[0].proxy_protocol = api::ProxyProtocol::kV2;
  s.desired.vips[0].on_all_down = api::OnAllDown::kOpen;
  for (const auto& c : cases) {
    auto j = nlohmann::json::parse(encode_state_file(s));
    j["vips"][0].erase(c.key);
    auto back = decode_state_file(j.dump());
    ASSERT_TRUE(std::holds_alternative<PersistedState>(back)) << std::get<std::string>(back);
    VipSpec want = s.desired.vips[0];
    c.reset(want);
    EXPECT_EQ(std::get<PersistedState>(back).desired.vips[0], want) << c.key;
    j["vips"][0][c.key] = "sometimes";
    auto bad = decode_state_file(j.dump());
    ASSERT_TRUE(std::holds_alternative<std::string>(bad)) << c.key;
    EXPECT_EQ(std::get<std::string>(bad), c.error);
  }
}

TEST(StateFile, HealthIsNotPersisted) {
  auto s = sample_state();
  s.desired.vips[0].backends[0].health = Health::kDown;
  auto back = std::get<PersistedState>(decode_state_file(encode_state_file(s)));
  EXPECT_EQ(back.desired.vips[0].backends[0].health, Health::kUnknown);
}

TEST(StateFile, WritesAtomicallyAndReadsBack) {
  char dir[] = "/tmp/rondo-state-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir));
  const std::string path = std::string(dir) + "/state.json";
  std::optional<PersistedState> got;
  std::string err;
  EXPECT_TRUE(read_state_file(path, &got, &err));  // absent is fine
  EXPECT_FALSE(got);
  ASSERT_EQ(write_state_file(path, sample_state()), "");
  ASSERT_TRUE(read_state_file(path, &got, &err)) << err;
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, sample_state());
  EXPECT_NE(access((path + ".tmp").c_str(), F_OK), 0);  // no temporary left behind
  std::remove(path.c_str());
  rmdir(dir);
}

TEST(StateFile, UnwritableDirectoryIsReported) {
  const auto err = write_state_file("/nonexistent-dir/state.json", sample_state());
  EXPECT_NE(err.find("cannot create /nonexistent-dir/state.json.tmp"), std::string::npos) << err;
}

struct BadStateCase {
  const char* what;
  std::string from;  // text to replace in a good file
  std::string to;
  std::string error;  // expected start of the error
};

TEST(StateFile, CorruptFilesAreRefusedWithAReason) {
  const std::string good = encode_state_file(sample_state());
  const BadStateCase cases[] = {
      {"not json", "{", "[", "not JSON"},
      {"wrong format", "rondo-state/1", "rondo-state/9", "format: rondo-state/9 is not rondo-state/1"},
      {"id out of range", "\"id\": 40", "\"id\": 70000", "vips[0].backends[1].id: expected an integer 0-65535"},
      {"duplicate backend id", "\"id\": 40", "\"id\": 12", "vips[0].backends[1].id: backend id 12 is used twice (see vips[0].backends[0].id)"},
      {"bad address", "\"address\": \"198.51.100.3\"", "\"address\": \"198.51.100.333\"",
       "vips[0].backends[0].address: expected an IP address"},
      {"bad name", "\"web\"", "\"we b\"", "vips[0].name: \"we b\" is not a valid name"},
      {"missing field", "\"drained\": true", "\"draind\": true", "vips[0].backends[1].drained: missing"},
      {"wrong type", "\"weight\": 4", "\"weight\": \"4\"", "vips[0].backends[0].weight: expected an integer"},
      // IPv6: text that is no address, the IPv4-mapped spelling of an IPv4 address, a
      // backend of the other family than its vip's others, a prefix length past 32 for IPv4.
      {"bad v6 address", "\"address\": \"198.51.100.3\"", "\"address\": \"2001:db8::g\"",
       "vips[0].backends[0].address: expected an IP address"},
      {"v4-mapped v6", "\"address\": \"198.51.100.3\"", "\"address\": \"::ffff:198.51.100.3\"",
       "vips[0].backends[0].address: expected an IP address"},
      {"mixed families", "\"address\": \"198.51.100.3\"", "\"address\": \"2001:db8:100::3\"",
       "vips[0].backends[1].address: 198.51.100.3 is IPv4 but the vip's first backend is IPv6"},
      {"v4 prefix length 33", "\"prefix_len\": 24", "\"prefix_len\": 33",
       "routes[1].prefix: 198.51.100.0/33: prefix length must be 0-32"},
      {"prefix length 129", "\"prefix_len\": 24", "\"prefix_len\": 129",
       "routes[].prefix_len: expected an integer 0-128"},
  };
  for (const auto& c : cases) {
    std::string text = good;
    const auto at = text.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.what;
    text.replace(at, c.from.size(), c.to);
    auto r = decode_state_file(text);
    ASSERT_TRUE(std::holds_alternative<std::string>(r)) << c.what;
    EXPECT_EQ(std::get<std::string>(r).rfind(c.error, 0), 0u)
        << c.what << ": " << std::get<std::string>(r);
  }
}

// Interfaces and their allocator round-trip; routes and neighbours are stored by the name of
// their interface, so that the file reads as the config does.
TEST(StateFile, InterfacesRoundTripAndRoutesNameThem) {
  PersistedState s;
  s.desired = model_of(kInterfaces);
  s.desired.interfaces[0].addresses.push_back({.addr = ip("2001:db8:200::1"), .len = 64});
  // Ids the store gave (not file order): clients 5, backends 2.
  renumber_interfaces(&s.desired, {5, 2});
  s.interface_ids.restore(6, {{1, 1700000000}});
  s.vip_ids.restore(1, {});  // past the ids in use, as decoding makes them
  s.backend_ids.restore(1, {});
  const std::string text = encode_state_file(s);
  const auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["interfaces"][0],
            nlohmann::json::parse(R"({"name": "clients", "id": 5, "port": 0, "vlan": 100, "mtu": 0,
                                     "addresses": ["192.0.2.1/24", "2001:db8:200::1/64"]})"));
  EXPECT_EQ(j["interfaces"][1]["mtu"], 9000);
  EXPECT_EQ(j["routes"][0]["interface"], "clients");
  EXPECT_EQ(j["routes"][1]["interface"], "backends");
  EXPECT_FALSE(j["routes"][1].contains("port"));
  EXPECT_EQ(j["neighbours"][0]["interface"], "clients");
  EXPECT_EQ(j["interface_ids"]["next"], 6);
  auto back = decode_state_file(text);
  ASSERT_TRUE(std::holds_alternative<PersistedState>(back)) << std::get<std::string>(back);
  EXPECT_EQ(std::get<PersistedState>(back), s);
  EXPECT_EQ(std::get<PersistedState>(back).desired.routes[0].iface, 5u);

  // Without declared interfaces a route keeps "port", as files always had it.
  const auto plain = nlohmann::json::parse(encode_state_file(sample_state()));
  EXPECT_EQ(plain["routes"][0]["port"], 0);
  EXPECT_TRUE(plain["interfaces"].empty());
}

// A file written before interfaces: no "interfaces", no "interface_ids", routes and
// neighbours with "port". It loads as it ran: implicit interfaces, iface = port.
TEST(StateFile, FilesFromBeforeInterfacesLoad) {
  auto s = sample_state();
  s.desired.routes[1].iface = 3;
  s.desired.neighbours[0].iface = 2;
  auto j = nlohmann::json::parse(encode_state_file(s));
  j.erase("interfaces");
  j.erase("interface_ids");
  ASSERT_EQ(j["routes"][1]["port"], 3);
  auto back = decode_state_file(j.dump());
  ASSERT_TRUE(std::holds_alternative<PersistedState>(back)) << std::get<std::string>(back);
  const auto& got = std::get<PersistedState>(back);
  EXPECT_TRUE(got.desired.interfaces.empty());
  EXPECT_EQ(got.desired.routes[1].iface, 3u);
  EXPECT_EQ(got.desired.neighbours[0].iface, 2u);
  EXPECT_EQ(got.interface_ids.next(), 0u);
  EXPECT_EQ(got, s);
}

TEST(StateFile, InterfaceReferencesAreChecked) {
  PersistedState s;
  s.desired = model_of(kInterfaces);
  const auto good = nlohmann::json::parse(encode_state_file(s));
  struct Case {
    const char* what;
    void (*edit)(nlohmann::json&);
    std::string error;
  };
  const Case cases[] = {
      {"unknown name", [](nlohmann::json& j) { j["routes"][0]["interface"] = "uplink"; },
       "routes[].interface: no interface named uplink"},
      // "port" still reads, as the untagged interface of the port: port 0 has one (backends),
      // port 1 none.
      {"port without an untagged interface",
       [](nlohmann::json& j) {
         j["neighbours"][1].erase("interface");
         j["neighbours"][1]["port"] = 1;
       },
       "neighbours[].port: port 1 has no untagged interface"},
      {"name twice", [](nlohmann::json& j) { j["interfaces"][1]["name"] = "clients"; },
       "interfaces[1].name: clients is declared twice"},
      {"id twice", [](nlohmann::json& j) { j["interfaces"][1]["id"] = 0; },
       "interfaces[1].id: 0 is used twice"},
      {"id out of range", [](nlohmann::json& j) { j["interfaces"][1]["id"] = 256; },
       "interfaces[1].id: expected an integer 0-255"},
      {"vlan out of range", [](nlohmann::json& j) { j["interfaces"][0]["vlan"] = 4095; },
       "interfaces[0].vlan: expected an integer 0-4094"},
      {"address without a length",
       [](nlohmann::json& j) { j["interfaces"][0]["addresses"][0] = "192.0.2.1"; },
       "interfaces[0].addresses[]: expected ADDRESS/LENGTH"},
  };
  for (const auto& c : cases) {
    auto j = good;
    c.edit(j);
    auto r = decode_state_file(j.dump());
    ASSERT_TRUE(std::holds_alternative<std::string>(r)) << c.what;
    EXPECT_EQ(std::get<std::string>(r), c.error) << c.what;
  }
  auto j = good;
  j["neighbours"][1].erase("interface");
  j["neighbours"][1]["port"] = 0;
  auto r = decode_state_file(j.dump());
  ASSERT_TRUE(std::holds_alternative<PersistedState>(r)) << std::get<std::string>(r);
  EXPECT_EQ(std::get<PersistedState>(r).desired.neighbours[1].iface, 1u);  // backends
}

TEST(StateFile, AllocatorsArePushedPastIdsInUse) {
  auto s = sample_state();
  s.backend_ids.restore(0, {});  // an edited file claiming nothing was ever allocated
  auto back = std::get<PersistedState>(decode_state_file(encode_state_file(s)));
  EXPECT_EQ(back.backend_ids.next(), 41u);
}

// ---- shared argument helpers ----

TEST(Helpers, EndpointsAndNames) {
  std::string why;
  EXPECT_EQ(parse_endpoint("198.51.100.3:3000", &why), (std::pair{ip("198.51.100.3"), uint16_t{3000}}));
  EXPECT_FALSE(parse_endpoint("198.51.100.3", &why));
  EXPECT_EQ(why, "198.51.100.3 is not ADDRESS:PORT (e.g. 198.51.100.3:3000 or [2001:db8::3]:3000)");
  EXPECT_FALSE(parse_endpoint("198.51.100.3:0", &why));
  EXPECT_EQ(why, "0 is not a port (1-65535)");
  EXPECT_FALSE(parse_endpoint("198.51.100.3:65536", &why));
  EXPECT_EQ(why, "65536 is not a port (1-65535)");
  EXPECT_FALSE(parse_endpoint("127.0.0.1:80", &why));
  EXPECT_EQ(why, "127.0.0.1 is a loopback address");
  // IPv6: in brackets, any spelling, printed back in RFC 5952 form.
  EXPECT_EQ(parse_endpoint("[2001:db8:100::3]:3000", &why), (std::pair{ip("2001:db8:100::3"), uint16_t{3000}}));
  EXPECT_EQ(parse_endpoint("[2001:DB8:100:0:0:0:0:3]:3000", &why),
            (std::pair{ip("2001:db8:100::3"), uint16_t{3000}}));
  EXPECT_EQ(format_endpoint(ip("2001:DB8:100:0:0:0:0:3"), 3000), "[2001:db8:100::3]:3000");
  EXPECT_FALSE(parse_endpoint("2001:db8::1:80", &why));
  EXPECT_EQ(why, "2001:db8::1:80: an IPv6 endpoint is written [ADDRESS]:PORT (e.g. [2001:db8::3]:3000)");
  EXPECT_FALSE(parse_endpoint("[2001:db8::1]", &why));
  EXPECT_EQ(why, "[2001:db8::1] is not ADDRESS:PORT (e.g. 198.51.100.3:3000 or [2001:db8::3]:3000)");
  EXPECT_FALSE(parse_endpoint("[2001:db8::g]:80", &why));
  EXPECT_EQ(why, "2001:db8::g is not an IP address");
  EXPECT_FALSE(parse_endpoint("[::ffff:198.51.100.3]:80", &why));
  EXPECT_EQ(why, "::ffff:198.51.100.3 is an IPv4-mapped IPv6 address: write it as IPv4");
  EXPECT_FALSE(parse_endpoint("[198.51.100.3]:80", &why));
  EXPECT_EQ(why, "[198.51.100.3]:80: brackets are for IPv6 addresses (write 198.51.100.3:PORT)");
  EXPECT_FALSE(parse_endpoint("[::1]:80", &why));
  EXPECT_EQ(why, "::1 is the loopback address");
  EXPECT_FALSE(parse_endpoint("[2001:db8::1]:0", &why));
  EXPECT_EQ(why, "0 is not a port (1-65535)");
  EXPECT_EQ(parse_host_address("2001:db8::1", &why), ip("2001:db8::1"));
  EXPECT_FALSE(parse_host_address("ff02::1", &why));
  EXPECT_EQ(why, "ff02::1 is a multicast address (ff00::/8)");
  EXPECT_FALSE(parse_host_address("web", &why));
  EXPECT_EQ(why, "web is not an IP address");
  EXPECT_EQ(check_name("web-1.a_b"), "");
  EXPECT_NE(check_name("web site"), "");
  EXPECT_NE(check_name(std::string(65, 'a')), "");
}

}  // namespace
}  // namespace rondo::cp

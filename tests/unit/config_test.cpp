// Config loading: a good file gives exactly the expected State; each kind of mistake gives
// an error naming the file, line and field, and no State at all.
#include "controlplane/config/config.h"

#include <gtest/gtest.h>

#include <string>
#include <variant>
#include <vector>

namespace rondo::cp {
namespace {

api::Addr ip(const char* s) {
  auto a = api::parse_addr(s);
  EXPECT_TRUE(a) << s;
  return a.value_or(api::Addr{});
}

// The errors parse_config reports for `text`, as printed; empty if it loaded.
std::vector<std::string> errors_of(std::string_view text) {
  auto r = parse_config(text, "rondo.yaml");
  std::vector<std::string> out;
  if (auto* errors = std::get_if<std::vector<ConfigError>>(&r))
    for (const auto& e : *errors) out.push_back(e.to_string());
  return out;
}

api::State state_of(std::string_view text) {
  auto r = parse_config(text, "rondo.yaml");
  if (auto* errors = std::get_if<std::vector<ConfigError>>(&r)) {
    for (const auto& e : *errors) ADD_FAILURE() << e.to_string();
    return {};
  }
  return std::get<api::State>(r);
}

TEST(Config, GoodFileGivesExactState) {
  auto r = load_config("data/good.yaml");
  ASSERT_TRUE(std::holds_alternative<api::State>(r))
      << std::get<std::vector<ConfigError>>(r)[0].to_string();
  const auto& s = std::get<api::State>(r);

  api::State want;
  want.generation = 0;
  want.timeouts = {5'000, 3'600'000, 20'000, 60'000};
  want.local_ips = {ip("198.51.100.100"), ip("198.51.100.101")};
  want.routes = {{.prefix = ip("0.0.0.0"), .prefix_len = 0, .iface = 0, .via = ip("198.51.100.1")},
                 {.prefix = ip("10.1.0.0"), .prefix_len = 16, .iface = 1, .via = {}}};
  want.neighbours = {{.ip = ip("198.51.100.3"), .mac = {0x02, 0, 0, 0, 0, 0x03}, .iface = 0},
                     {.ip = ip("10.1.2.3"), .mac = {0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee}, .iface = 1}};
  api::Vip web{.id = 0, .ip = ip("203.0.113.10"), .port = 80, .proto = api::Proto::kTcp,
               .mode = api::Mode::kFullNat, .sched = api::Sched::kRoundRobin,
               .on_all_down = api::OnAllDown::kOpen};
  web.backends = {{.id = 0, .ip = ip("198.51.100.3"), .port = 3000, .weight = 1},
                  {.id = 1, .ip = ip("198.51.100.3"), .port = 3001, .weight = 0},
                  {.id = 2, .ip = ip("198.51.100.4"), .port = 3000, .weight = 65535}};
  api::Vip dns{.id = 1, .ip = ip("203.0.113.10"), .port = 53, .proto = api::Proto::kUdp,
               .mode = api::Mode::kGue};
  dns.backends = {{.id = 3, .ip = ip("198.51.100.5"), .port = 53, .weight = 1}};
  api::Vip web_udp{.id = 2, .ip = ip("203.0.113.10"), .port = 80, .proto = api::Proto::kUdp,
                   .mode = api::Mode::kL2Dsr};
  want.vips = {web, dns, web_udp};

  EXPECT_EQ(s, want);
  EXPECT_TRUE(s.interfaces.empty());  // none declared: the dataplane's implicit ones
  EXPECT_EQ(count_backends(s), 4u);
}

TEST(Config, DeployExampleLoads) {
  auto r = load_config("../../deploy/rondo.yaml");
  ASSERT_TRUE(std::holds_alternative<api::State>(r))
      << std::get<std::vector<ConfigError>>(r)[0].to_string();
  const auto& s = std::get<api::State>(r);
  EXPECT_EQ(s.vips.size(), 3u);  // web and dns on IPv4, web6 on IPv6
  EXPECT_EQ(count_backends(s), 8u);
  EXPECT_EQ(s.timeouts, api::Timeouts{});  // the example documents the defaults
}

TEST(Config, OptionalPartsTakeDefaults) {
  const auto s = state_of(R"(local_ips: [198.51.100.100]
routes:
neighbours:
vips:
  - name: web
    address: 203.0.113.10
    port: 80
    backends:
      - address: 198.51.100.3
        port: 3000
)");
  EXPECT_EQ(s.timeouts, api::Timeouts{});
  EXPECT_TRUE(s.routes.empty());
  EXPECT_TRUE(s.neighbours.empty());
  ASSERT_EQ(s.vips.size(), 1u);
  EXPECT_EQ(s.vips[0].proto, api::Proto::kTcp);
  EXPECT_EQ(s.vips[0].mode, api::Mode::kFullNat);
  EXPECT_EQ(s.vips[0].sched, api::Sched::kRoundRobin);
  EXPECT_EQ(s.vips[0].syncookies, api::SynCookies::kOff);
  EXPECT_EQ(s.vips[0].on_all_down, api::OnAllDown::kDrop);
  ASSERT_EQ(s.vips[0].backends.size(), 1u);
  EXPECT_EQ(s.vips[0].backends[0].weight, 1);
}

// IPv6 in every address field, written as tests/e2e/harness.py's yaml_config writes it
// (quoted) and bare, beside the IPv4 seed: each lands in the State as the address it names.
TEST(Config, DualStackAddressesQuotedOrNot) {
  const auto s = state_of(R"(local_ips: [198.51.100.100, "2001:db8:100::100", 2001:db8:100::101]
routes:
  - prefix: "2001:db8:100::/64"
    port: 0
  - prefix: ::/0
    via: "2001:db8:100::1"
  - prefix: 2001:db8:200::/48
    via: fe80::1
  - prefix: 0.0.0.0/0
    via: 198.51.100.1
neighbours:
  - {ip: "2001:db8:100::1", mac: "02:00:00:00:00:01", port: 0}
  - {ip: 2001:db8:100::3, mac: "02:00:00:00:00:03", port: 1}
vips:
  - name: web
    address: 203.0.113.10
    port: 80
    backends:
      - {address: 198.51.100.3, port: 3000, weight: 1}
  - name: web6
    address: "2001:db8::10"
    port: 80
    protocol: tcp
    mode: fullnat
    scheduler: rr
    backends:
      - {address: "2001:db8:100::3", port: 3000, weight: 1}
      - {address: 2001:DB8:100:0:0:0:0:4, port: 3001, weight: 2}
)");
  EXPECT_EQ(s.local_ips,
            (std::vector<api::Addr>{ip("198.51.100.100"), ip("2001:db8:100::100"), ip("2001:db8:100::101")}));
  ASSERT_EQ(s.routes.size(), 4u);
  EXPECT_EQ(s.routes[0], (api::Route{.prefix = ip("2001:db8:100::"), .prefix_len = 64, .iface = 0, .via = {}}));
  EXPECT_EQ(s.routes[1], (api::Route{.prefix = api::Addr{}, .prefix_len = 0, .iface = 0, .via = ip("2001:db8:100::1")}));
  EXPECT_EQ(s.routes[2].via, ip("fe80::1"));  // a v6 next hop may be link-local
  EXPECT_EQ(s.routes[2].prefix_len, 48);
  EXPECT_TRUE(s.routes[3].prefix.is_v4());
  ASSERT_EQ(s.neighbours.size(), 2u);
  EXPECT_EQ(s.neighbours[0].ip, ip("2001:db8:100::1"));
  EXPECT_EQ(s.neighbours[1].ip, ip("2001:db8:100::3"));
  EXPECT_EQ(s.neighbours[1].iface, 1);
  ASSERT_EQ(s.vips.size(), 2u);
  EXPECT_EQ(s.vips[1].ip, ip("2001:db8::10"));
  EXPECT_EQ(s.vips[1].ip.family(), api::Family::kV6);
  ASSERT_EQ(s.vips[1].backends.size(), 2u);
  EXPECT_EQ(s.vips[1].backends[0].ip, ip("2001:db8:100::3"));
  EXPECT_EQ(s.vips[1].backends[1].ip, ip("2001:db8:100::4"));  // any spelling, one address
  EXPECT_EQ(s.vips[1].backends[1].weight, 2);
  // The seed's v4 vip is untouched by the v6 one beside it.
  EXPECT_EQ(s.vips[0].ip, api::Addr::from_v4(0xcb00710a));
}

// The one vip of a config, web on 203.0.113.10:80 with `setting` (a "key: value" line)
// and a backend on `backend_port`.
api::Vip vip_with(const std::string& setting, uint16_t backend_port = 3000) {
  const auto s = state_of(R"(local_ips: [198.51.100.100]
vips:
  - name: web
    address: 203.0.113.10
    port: 80
    )" + setting + R"(
    backends:
      - {address: 198.51.100.3, port: )" + std::to_string(backend_port) + "}\n");
  EXPECT_EQ(s.vips.size(), 1u) << setting;
  return s.vips.empty() ? api::Vip{} : s.vips[0];
}

TEST(Config, SchedulerPerVip) {
  for (const auto& n : api::kSchedNames)
    EXPECT_EQ(vip_with(std::string("scheduler: ") + n.name).sched, n.sched) << n.name;
}

TEST(Config, SynCookiesPerVip) {
  for (auto [text, want] : {std::pair{"off", api::SynCookies::kOff}, {"on", api::SynCookies::kOn},
                            {"auto", api::SynCookies::kAuto}})
    EXPECT_EQ(vip_with(std::string("syncookies: ") + text).syncookies, want) << text;
}

TEST(Config, ProxyProtocolPerVip) {
  for (auto [text, want] : {std::pair{"off", api::ProxyProtocol::kOff}, {"v2", api::ProxyProtocol::kV2}})
    EXPECT_EQ(vip_with(std::string("proxy_protocol: ") + text).proxy_protocol, want) << text;
}

TEST(Config, ModePerVip) {
  // Every mode by its name in api::kModeNames; the backend on the vip's port, as direct
  // server return needs.
  for (const auto& n : api::kModeNames)
    EXPECT_EQ(vip_with(std::string("mode: ") + n.name, 80).mode, n.mode) << n.name;
}

TEST(Config, OnAllDownPerVip) {
  for (auto [text, want] : {std::pair{"drop", api::OnAllDown::kDrop}, {"open", api::OnAllDown::kOpen}})
    EXPECT_EQ(vip_with(std::string("on_all_down: ") + text).on_all_down, want) << text;
}

TEST(Config, NoVipsNeedsNoLocalIp) {
  const auto s = state_of("vips: []\n");
  EXPECT_TRUE(s.vips.empty());
  EXPECT_TRUE(s.local_ips.empty());
}

TEST(Config, MissingFileIsAnError) {
  auto r = load_config("data/no-such-file.yaml");
  ASSERT_TRUE(std::holds_alternative<std::vector<ConfigError>>(r));
  EXPECT_EQ(std::get<std::vector<ConfigError>>(r).at(0).to_string(),
            "data/no-such-file.yaml: cannot open: No such file or directory");
}

TEST(Config, DirectoryIsAnError) {
  auto r = load_config("data");
  ASSERT_TRUE(std::holds_alternative<std::vector<ConfigError>>(r));
  EXPECT_EQ(std::get<std::vector<ConfigError>>(r).at(0).to_string(),
            "data: cannot read: Is a directory");
}

// Interfaces as written, ids in file order; routes and neighbours name one by name, by port
// (the untagged interface of the port) or not at all (port 0).
TEST(Config, InterfacesAndWhatNamesThem) {
  const auto s = state_of(R"(local_ips: [198.51.100.100]
interfaces:
  - name: clients
    port: 0
    vlan: 100
    mtu: 1500
    addresses: [192.0.2.1/24, "2001:db8:200::1/64"]
  - name: backends
    port: 0
    vlan: 0
    addresses: [198.51.100.254/24]
  - {name: uplink.2, port: 1, vlan: 4094}
routes:
  - {prefix: 0.0.0.0/0, via: 192.0.2.254, interface: clients}
  - {prefix: 10.1.0.0/16, port: 0}
  - {prefix: 10.2.0.0/16}
  - {prefix: 10.3.0.0/16, interface: uplink.2}
neighbours:
  - {ip: 192.0.2.9, mac: "02:00:00:00:00:09", interface: clients}
  - {ip: 198.51.100.3, mac: "02:00:00:00:00:03", port: 0}
vips: []
)");
  const std::vector<api::Interface> want = {
      {.id = 0, .name = "clients", .port_id = 0, .vlan = 100, .mtu = 1500,
       .addresses = {{.addr = ip("192.0.2.1"), .len = 24}, {.addr = ip("2001:db8:200::1"), .len = 64}}},
      {.id = 1, .name = "backends", .port_id = 0, .vlan = 0, .mtu = 0,
       .addresses = {{.addr = ip("198.51.100.254"), .len = 24}}},
      {.id = 2, .name = "uplink.2", .port_id = 1, .vlan = 4094, .mtu = 0, .addresses = {}},
  };
  EXPECT_EQ(s.interfaces, want);
  ASSERT_EQ(s.routes.size(), 4u);
  EXPECT_EQ(s.routes[0].iface, 0u);
  EXPECT_EQ(s.routes[1].iface, 1u);  // port 0: its untagged interface
  EXPECT_EQ(s.routes[2].iface, 1u);  // neither: port 0, as before interfaces
  EXPECT_EQ(s.routes[3].iface, 2u);
  ASSERT_EQ(s.neighbours.size(), 2u);
  EXPECT_EQ(s.neighbours[0].iface, 0u);
  EXPECT_EQ(s.neighbours[1].iface, 1u);
}

// Without an interfaces: list, `port: N` is the implicit interface N, as before.
TEST(Config, PortWithoutInterfacesIsTheImplicitInterface) {
  const auto s = state_of(R"(routes:
  - {prefix: 10.1.0.0/16, port: 3}
neighbours:
  - {ip: 10.1.2.3, mac: "02:00:00:00:00:03", port: 2}
vips: []
)");
  EXPECT_TRUE(s.interfaces.empty());
  EXPECT_EQ(s.routes.at(0).iface, 3u);
  EXPECT_EQ(s.neighbours.at(0).iface, 2u);
}

TEST(Config, TooManyInterfaces) {
  std::string text = "interfaces:\n";
  for (uint32_t i = 0; i <= api::kMaxInterfaces; ++i)
    text += "  - {name: v" + std::to_string(i) + ", port: 0, vlan: " + std::to_string(i + 1) + "}\n";
  text += "vips: []\n";
  // Line 2 is interfaces[0]; interfaces[256] is the first that does not fit.
  EXPECT_EQ(errors_of(text),
            std::vector<std::string>{"rondo.yaml:" + std::to_string(2 + api::kMaxInterfaces) +
                                     ": interfaces[256]: too many interfaces (at most 256)"});
}

struct BadCase {
  const char* what;
  const char* text;
  std::vector<std::string> errors;
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.what; }

class BadConfig : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfig, ReportsFileLineAndField) {
  EXPECT_EQ(errors_of(GetParam().text), GetParam().errors);
}

// Every case is a complete file; line numbers count from the first line of `text`.
const BadCase kBadCases[] = {
    {"port out of range", R"(local_ips: [198.51.100.100]
vips:
  - name: web
    address: 203.0.113.10
    port: 80
    protocol: tcp
    backends:
      - address: 198.51.100.3
        port: 3000
      - address: 198.51.100.3
        port: 3001
      - address: 198.51.100.4
        weight: 2
        port: 70000
)",
     {"rondo.yaml:14: vips[0].backends[2].port: 70000 is not a port (1-65535)"}},

    {"yaml syntax", R"(vips:
  - name: web
    port: [80,
)",
     {"rondo.yaml:4: YAML syntax error: end of sequence flow not found"}},

    {"tab indentation", "vips:\n\t- name: web\n",
     {"rondo.yaml:2: YAML syntax error: illegal block entry"}},

    {"empty file", "# nothing but a comment\n",
     {"rondo.yaml: the file is empty (expected at least a vips: list)"}},

    {"top level is a list", "- vips\n", {"rondo.yaml:1: expected a map, got a list"}},

    {"unknown top-level key (typo)", R"(local_ips: [198.51.100.100]
vip: []
)",
     {"rondo.yaml:1: vips: required field is missing",
      "rondo.yaml:2: vip: unknown field (expected one of: timeouts, local_ips, interfaces, "
      "routes, neighbours, vips)"}},

    {"unknown vip key", R"(local_ips: [198.51.100.100]
vips:
  - name: web
    address: 203.0.113.10
    port: 80
    protcol: udp
    backends: []
)",
     {"rondo.yaml:6: vips[0].protcol: unknown field (expected one of: name, address, port, "
      "protocol, mode, scheduler, syncookies, proxy_protocol, on_all_down, health_check, "
      "backends)"}},

    {"unknown backend key", R"(local_ips: [198.51.100.100]
vips:
  - name: web
    address: 203.0.113.10
    port: 80
    backends:
      - address: 198.51.100.3
        port: 3000
        wieght: 3
)",
     {"rondo.yaml:9: vips[0].backends[0].wieght: unknown field (expected one of: address, port, "
      "weight)"}},

    {"duplicate yaml key", R"(local_ips: [198.51.100.100]
vips:
  - name: web
    address: 203.0.113.10
    port: 80
    port: 81
    backends: []
)",
     {"rondo.yaml:6: vips[0].port: duplicate key (first at line 5)"}},

    {"missing required fields", R"(local_ips: [198.51.100.100]
vips:
  - name: web
    port: 80
    backends:
      - address: 198.51.100.3
)",
     {"rondo.yaml:3: vips[0].address: required field is missing",
      "rondo.yaml:6: vips[0].backends[0].port: required field is missing"}},

    {"field without a value", R"(local_ips: [198.51.100.100]
vips:
  - name: web
    address:
    port: 80
    backends: []
)",
     {"rondo.yaml:4: vips[0].address: expected an IP address, got nothing"}},

    {"bad addresses", R"(local_ips: [198.51.100.256]
vips:
  - name: web
    address: 2001:db8::zz
    port: 80
    backends:
      - address: backend-1.example
        port: 3000
      - address: 127.0.0.1
        port: 3000
      - address: 224.0.0.1
        port: 3000
      - address: 0.0.0.0
        port: 3000
      - address: 255.255.255.255
        port: 3000
)",
     {"rondo.yaml:1: local_ips[0]: 198.51.100.256 is not an IP address",
      "rondo.yaml:4: vips[0].address: 2001:db8::zz is not an IP address",
      "rondo.yaml:7: vips[0].backends[0].address: backend-1.example is not an IP address",
      "rondo.yaml:9: vips[0].backends[1].address: 127.0.0.1 is a loopback address",
      "rondo.yaml:11: vips[0].backends[2].address: 224.0.0.1 is a multicast address",
      "rondo.yaml:13: vips[0].backends[3].address: 0.0.0.0 is in 0.0.0.0/8, not a host address",
      "rondo.yaml:15: vips[0].backends[4].address: 255.255.255.255 is the broadcast address"}},

    {"bad ports and weights", R"(local_ips: [198.51.100.100]
vips:
  - name: web
    address: 203.0.113.10
    port: 0
    backends:
      - address: 198.51.100.3
        port: -1
      - address: 198.51.100.3
        port: http
      - address: 198.51.100.3
        port: 80.5
      - address: 198.51.100.3
        port: 3000
        weight: 65536
)",
     {"rondo.yaml:5: vips[0].port: 0 is not a port (1-65535)",
      "rondo.yaml:8: vips[0].backends[0].port: -1 is not a port (1-65535)",
      "rondo.yaml:10: vips[0].backends[1].port: http is not a port (1-65535)",
      "rondo.yaml:12: vips[0].backends[2].port: 80.5 is not a port (1-65535)",
      "rondo.yaml:15: vips[0].backends[3].weight: 65536 is not a weight (0-65535)"}},

    {"wrong types", R"(timeouts: [10]
local_ips: 198.51.100.100
vips:
  - name: [web]
    address: {ip: 203.0.113.10}
    port: [80]
    backends:
      address: 198.51.100.3
  - web
)",
     {"rondo.yaml:1: timeouts: expected a map, got a list",
      "rondo.yaml:2: local_ips: expected a list, got \"198.51.100.100\"",
      "rondo.yaml:4: vips[0].name: expected a name, got a list",
      "rondo.yaml:5: vips[0].address: expected an IP address, got a map",
      "rondo.yaml:6: vips[0].port: expected a port (1-65535), got a list",
      "rondo.yaml:8: vips[0].backends: expected a list, got a map",
      "rondo.yaml:9: vips[1]: expected a map, got \"web\""}},

    {"unsupported protocol, mode, scheduler, on_all_down", R"(local_ips: [198.51.100.100]
vips:
  - name: web
    address: 203.0.113.10
    port: 80
    protocol: sctp
    mode: dsr
    scheduler: lcx
    syncookies: always
    on_all_down: fail
    backends: []
  - name: web2
    address: 203.0.113.10
    port: 81
    mode: IPIP
    backends: []
)",
     {"rondo.yaml:6: vips[0].protocol: sctp is not a supported protocol (tcp, udp)",
      "rondo.yaml:7: vips[0].mode: dsr is not a supported mode (fullnat, ipip, gue, l2dsr)",
      "rondo.yaml:8: vips[0].scheduler: lcx is not a supported scheduler (rr, wrr, maglev, sh, lc)",
      "rondo.yaml:9: vips[0].syncookies: always is not a supported syncookies (off, on, auto)",
      "rondo.yaml:10: vips[0].on_all_down: fail is not a supported on_all_down (drop, open)",
      "rondo.yaml:15: vips[1].mode: IPIP is not a supported mode (fullnat, ipip, gue, l2dsr)"}},

    {"bad names", R"(local_ips: [198.51.100.100]
vips:
  - name: web site
    address: 203.0.113.10
    port: 80
    backends: []
  - name: ""
    address: 203.0.113.10
    port: 81
    backends: []
)",
     {"rondo.yaml:3: vips[0].name: \"web site\" is not a valid name (1-64 characters from A-Z "
      "a-z 0-9 _ - .)",
      "rondo.yaml:7: vips[1].name: \"\" is not a valid name (1-64 characters from A-Z a-z 0-9 _ "
      "- .)"}},

    {"duplicate vip name", R"(local_ips: [198.51.100.100]
vips:
  - name: web
    address: 203.0.113.10
    port: 80
    backends: []
  - name: web
    address: 203.0.113.10
    port: 8080
    backends: []
)",
     {"rondo.yaml:7: vips[1].name: web is already the name of another vip (line 3)"}},

    {"duplicate vip address, port and protocol", R"(local_ips: [198.51.100.100]
vips:
  - name: web
    address: 203.0.113.10
    port: 80
    backends: []
  - name: web-udp
    address: 203.0.113.10
    port: 80
    protocol: udp
    backends: []
  - name: web2
    address: 203.0.113.10
    port: 80
    protocol: tcp
    backends: []
)",
     {"rondo.yaml:13: vips[2].address: 203.0.113.10:80/tcp is already served by another vip "
      "(line 4)"}},

    {"duplicate backend", R"(local_ips: [198.51.100.100]
vips:
  - name: web
    address: 203.0.113.10
    port: 80
    backends:
      - address: 198.51.100.3
        port: 3000
      - address: 198.51.100.3
        port: 3001
      - address: 198.51.100.3
        port: 3000
  - name: other
    address: 203.0.113.11
    port: 80
    backends:
      - address: 198.51.100.3
        port: 3000
)",
     {"rondo.yaml:11: vips[0].backends[2].address: 198.51.100.3:3000 is already a backend of "
      "this vip (line 7)"}},

    {"local ips", R"(local_ips: [198.51.100.100, 198.51.100.101, 198.51.100.100]
vips:
  - name: web
    address: 198.51.100.101
    port: 80
    backends: []
)",
     {"rondo.yaml:1: local_ips[2]: 198.51.100.100 is listed twice (line 1)",
      "rondo.yaml:4: vips[0].address: 198.51.100.101 is also a local ip: return traffic and vip "
      "traffic would collide (line 1)"}},

    {"vips without local ips", R"(vips:
  - name: web
    address: 203.0.113.10
    port: 80
    backends: []
)",
     {"rondo.yaml: local_ips: at least one local ip is needed: full-NAT uses it as the source "
      "address"}},

    {"empty local ips", R"(local_ips: []
vips:
  - name: web
    address: 203.0.113.10
    port: 80
    backends: []
)",
     {"rondo.yaml:1: local_ips: at least one local ip is needed: full-NAT uses it as the source "
      "address"}},

    {"bad routes", R"(routes:
  - prefix: 10.0.0.0/33
  - prefix: 10.0.0.1/8
  - prefix: 10.0.0.0
    via: 10.0.0.1
  - prefix: 10.0.0.0/8
    via: 10.0.0.256
    port: 65536
  - prefix: 0.0.0.0/0
  - via: 10.0.0.1
  - prefix: 0.0.0.0/0
    gateway: 10.0.0.1
vips: []
)",
     {"rondo.yaml:2: routes[0].prefix: 10.0.0.0/33: prefix length must be 0-32",
      "rondo.yaml:3: routes[1].prefix: 10.0.0.1/8 has host bits set (did you mean 10.0.0.0/8?)",
      "rondo.yaml:4: routes[2].prefix: 10.0.0.0 is not an IP prefix (e.g. 198.51.100.0/24 or "
      "2001:db8:100::/64)",
      "rondo.yaml:7: routes[3].via: 10.0.0.256 is not an IP address",
      "rondo.yaml:8: routes[3].port: 65536 is not a port id (0-65535)",
      "rondo.yaml:10: routes[5].prefix: required field is missing",
      "rondo.yaml:12: routes[6].gateway: unknown field (expected one of: prefix, via, "
      "interface, port)"}},

    {"bad IPv6", R"(local_ips: [198.51.100.100, "2001:db8:100::100", "::ffff:198.51.100.7", fe80::1]
routes:
  - prefix: 2001:db8::/129
  - prefix: "2001:db8::1/32"
  - prefix: 2001:db8:100::/64
    via: 198.51.100.1
  - prefix: "::ffff:10.0.0.0/104"
  - prefix: 2001:db8:200::/48
    via: fe80::1
neighbours:
  - {ip: "2001:db8:100::3", mac: "02:00:00:00:00:03", port: 0}
  - {ip: "ff02::1", mac: "02:00:00:00:00:04"}
vips:
  - name: web6
    address: "2001:db8::10"
    port: 80
    backends:
      - {address: "2001:db8:100::3", port: 3000}
      - {address: 198.51.100.3, port: 3000}
      - {address: "::1", port: 3000}
      - {address: "2001:db8:100::gg", port: 3000}
      - {address: "fe80::3", port: 3000}
  - name: dsr6
    address: 2001:db8::11
    port: 80
    mode: ipip
    backends:
      - {address: 198.51.100.3, port: 80}
  - name: pp6
    address: "2001:db8::12"
    port: 80
    proxy_protocol: v2
    backends:
      - {address: "2001:db8:100::4", port: 3000}
)",
     {"rondo.yaml:1: local_ips[2]: ::ffff:198.51.100.7 is an IPv4-mapped IPv6 address: write it "
      "as IPv4",
      "rondo.yaml:1: local_ips[3]: fe80::1 is a link-local address (fe80::/10), which cannot be a "
      "local ip",
      "rondo.yaml:3: routes[0].prefix: 2001:db8::/129: prefix length must be 0-128",
      "rondo.yaml:4: routes[1].prefix: 2001:db8::1/32 has host bits set (did you mean "
      "2001:db8::/32?)",
      "rondo.yaml:6: routes[2].via: 198.51.100.1 is IPv4 but the prefix 2001:db8:100::/64 is IPv6: "
      "a next hop has the route's family (line 5)",
      "rondo.yaml:7: routes[3].prefix: ::ffff:10.0.0.0/104 is an IPv4-mapped IPv6 prefix: write it "
      "as IPv4",
      "rondo.yaml:12: neighbours[1].ip: ff02::1 is a multicast address (ff00::/8)",
      "rondo.yaml:19: vips[0].backends[1].address: 198.51.100.3 is IPv4 but the vip's first "
      "backend is IPv6: the backends of a vip are all of one family (line 18)",
      "rondo.yaml:20: vips[0].backends[2].address: ::1 is the loopback address",
      "rondo.yaml:21: vips[0].backends[3].address: 2001:db8:100::gg is not an IP address",
      "rondo.yaml:22: vips[0].backends[4].address: fe80::3 is a link-local address (fe80::/10), "
      "which cannot be a backend",
      "rondo.yaml:26: vips[1].mode: mode ipip cannot carry an IPv6 vip's packets to IPv4 "
      "backends: with direct server return the backend answers from the vip itself, so it needs "
      "the vip's family (use IPv6 backends, or fullnat for NAT64) (line 28)",
      "rondo.yaml:32: vips[2].proxy_protocol: the PROXY protocol is not supported for IPv6 yet "
      "(line 30)"}},

    {"unspecified next hop", R"(routes:
  - prefix: "2001:db8:200::/48"
    via: "::"
vips: []
)",
     {"rondo.yaml:3: routes[0].via: :: is the unspecified address, not a next hop (leave via out "
      "for on-link)"}},

    {"bad neighbours", R"(neighbours:
  - ip: 198.51.100.3
    mac: 02:00:00:00:00
  - ip: 198.51.100.4
    mac: 01:00:5e:00:00:01
  - ip: 198.51.100.5
    mac: "00:00:00:00:00:00"
  - ip: 198.51.100.6
    mac: 02-00-00-00-00-06
  - ip: 198.51.100.7
    mac: 02:00:00:00:00:07
  - ip: 198.51.100.7
    mac: 02:00:00:00:00:08
  - mac: 02:00:00:00:00:09
vips: []
)",
     {"rondo.yaml:3: neighbours[0].mac: 02:00:00:00:00 is not a MAC address (xx:xx:xx:xx:xx:xx)",
      "rondo.yaml:5: neighbours[1].mac: 01:00:5e:00:00:01 is a multicast address, not a host's",
      "rondo.yaml:7: neighbours[2].mac: 00:00:00:00:00:00 is the all-zero address",
      "rondo.yaml:9: neighbours[3].mac: 02-00-00-00-00-06 is not a MAC address "
      "(xx:xx:xx:xx:xx:xx)",
      "rondo.yaml:12: neighbours[5].ip: 198.51.100.7 already has an entry (line 10)",
      "rondo.yaml:14: neighbours[6].ip: required field is missing"}},

    {"bad interfaces", R"(interfaces:
  - name: Clients
    port: 0
    vlan: 10
  - name: averyveryverylongname
    port: 70000
    vlan: 4095
    mtu: 575
    addresses: [192.0.2.1, 2001:db8::1/129, 192.0.2.300/24]
  - name: clients
    port: 1
    mtu: 9001
    speed: 10
  - port: 2
  - name: clients
    port: 3
  - [clients]
  - {name: nic, vlan: 5}
vips: []
)",
     {"rondo.yaml:2: interfaces[0].name: \"Clients\" is not a valid interface name (1-15 "
      "characters from a-z 0-9 . _ -)",
      "rondo.yaml:5: interfaces[1].name: \"averyveryverylongname\" is not a valid interface name "
      "(1-15 characters from a-z 0-9 . _ -)",
      "rondo.yaml:6: interfaces[1].port: 70000 is not a port id (0-65535)",
      "rondo.yaml:7: interfaces[1].vlan: 4095 is not a VLAN id (1-4094; 0 or absent: untagged)",
      "rondo.yaml:8: interfaces[1].mtu: 575 is not an MTU (576-9000)",
      "rondo.yaml:9: interfaces[1].addresses[0]: 192.0.2.1 is not an interface address "
      "(ADDRESS/LENGTH, e.g. 192.0.2.1/24 or 2001:db8:200::1/64)",
      "rondo.yaml:9: interfaces[1].addresses[1]: 2001:db8::1/129: prefix length must be 0-128",
      "rondo.yaml:9: interfaces[1].addresses[2]: 192.0.2.300/24 is not an interface address "
      "(ADDRESS/LENGTH, e.g. 192.0.2.1/24 or 2001:db8:200::1/64)",
      "rondo.yaml:12: interfaces[2].mtu: 9001 is not an MTU (576-9000)",
      "rondo.yaml:13: interfaces[2].speed: unknown field (expected one of: name, port, vlan, mtu, "
      "addresses)",
      "rondo.yaml:14: interfaces[3].name: required field is missing",
      "rondo.yaml:15: interfaces[4].name: clients is already the name of another interface (line "
      "10)",
      "rondo.yaml:17: interfaces[5]: expected a map, got a list",
      "rondo.yaml:18: interfaces[6].port: required field is missing"}},

    // With interfaces declared, `port: N` is the untagged interface of port N: none here on
    // port 1 (tagged only) nor on port 0 for an entry that names nothing.
    {"what routes and neighbours name", R"(interfaces:
  - {name: clients, port: 1, vlan: 100}
  - {name: backends, port: 2}
routes:
  - {prefix: 10.1.0.0/16, port: 1}
  - {prefix: 10.2.0.0/16, interface: nope}
  - {prefix: 10.3.0.0/16, interface: clients, port: 1}
  - prefix: 10.4.0.0/16
  - {prefix: 10.5.0.0/16, interface: [clients]}
neighbours:
  - {ip: 10.1.2.3, mac: "02:00:00:00:00:03", port: 1}
  - {ip: 10.1.2.4, mac: "02:00:00:00:00:04", port: 2}
vips: []
)",
     {"rondo.yaml:5: routes[0].port: port 1 has no untagged interface (declared: clients, "
      "backends): name one with interface: NAME",
      "rondo.yaml:6: routes[1].interface: no interface named nope (declared: clients, backends)",
      "rondo.yaml:7: routes[2].port: give interface or port, not both",
      "rondo.yaml:8: routes[3].interface: required field is missing: port 0 has no untagged "
      "interface (declared: clients, backends): name one with interface: NAME",
      "rondo.yaml:9: routes[4].interface: expected an interface name, got a list",
      "rondo.yaml:11: neighbours[0].port: port 1 has no untagged interface (declared: clients, "
      "backends): name one with interface: NAME"}},

    {"interface without interfaces", R"(routes:
  - {prefix: 10.1.0.0/16, interface: clients}
vips: []
)",
     {"rondo.yaml:2: routes[0].interface: clients is not declared (no interfaces: list; or write "
      "port: N)"}},

    {"bad timeouts", R"(timeouts:
  tcp_syn: 0
  tcp_established: 4294968
  udp: 1.5
  tcp_fin: 10
vips: []
)",
     {"rondo.yaml:2: timeouts.tcp_syn: 0 is not a timeout in seconds (1-4294967)",
      "rondo.yaml:3: timeouts.tcp_established: 4294968 is not a timeout in seconds (1-4294967)",
      "rondo.yaml:4: timeouts.udp: 1.5 is not a timeout in seconds (1-4294967)",
      "rondo.yaml:5: timeouts.tcp_fin: unknown field (expected one of: tcp_syn, tcp_established, "
      "tcp_closing, tcp_time_wait, tcp_reset, udp, port_quarantine)"}},
};

INSTANTIATE_TEST_SUITE_P(Cases, BadConfig, ::testing::ValuesIn(kBadCases),
                         [](const ::testing::TestParamInfo<BadCase>& info) {
                           std::string name = info.param.what;
                           for (char& c : name)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return name;
                         });

TEST(Config, TooManyVips) {
  std::string text = "local_ips: [198.51.100.100]\nvips:\n";
  for (uint32_t i = 0; i <= api::kMaxVipId + 1; ++i)
    text += "  - {name: v" + std::to_string(i) + ", address: 203.0.113.10, port: " +
            std::to_string(i + 1) + ", backends: []}\n";
  // Line 3 is vips[0]; vips[4096] is the first that does not fit.
  EXPECT_EQ(errors_of(text),
            std::vector<std::string>{"rondo.yaml:" + std::to_string(3 + api::kMaxVipId + 1) +
                                     ": vips[4096]: too many vips (at most 4096)"});
}

TEST(Config, TooManyBackends) {
  // Backend ids run over all vips: two vips of 32768 backends fit, one more does not.
  std::string text = "local_ips: [198.51.100.100]\nvips:\n";
  int line = 3;
  int error_line = 0;
  uint32_t id = 0;
  for (int v = 0; v < 2; ++v) {
    text += "  - name: v" + std::to_string(v) + "\n    address: 203.0.113.10\n    port: " +
            std::to_string(80 + v) + "\n    backends:\n";
    line += 4;
    const uint32_t n = v == 0 ? 32768 : 32769;
    for (uint32_t i = 0; i < n; ++i, ++id, ++line) {
      if (id == api::kMaxBackendId + 1) error_line = line;
      text += "      - {address: 10." + std::to_string(i >> 8 & 255) + "." + std::to_string(i & 255) +
              ".1, port: " + std::to_string(1 + (i >> 16)) + "}\n";
    }
  }
  EXPECT_EQ(errors_of(text),
            std::vector<std::string>{"rondo.yaml:" + std::to_string(error_line) +
                                     ": vips[1].backends[32768]: too many backends (at most "
                                     "65536 over all vips)"});
}

TEST(Config, LastIdsStillFit) {
  // Exactly kMaxBackendId + 1 backends load, and the last one gets id kMaxBackendId.
  std::string text = "local_ips: [198.51.100.100]\nvips:\n  - name: v\n    address: 203.0.113.10\n"
                     "    port: 80\n    backends:\n";
  for (uint32_t i = 0; i <= api::kMaxBackendId; ++i)
    text += "      - {address: 10." + std::to_string(i >> 8 & 255) + "." + std::to_string(i & 255) +
            ".1, port: 1}\n";
  const auto s = state_of(text);
  ASSERT_EQ(s.vips.size(), 1u);
  ASSERT_EQ(s.vips[0].backends.size(), api::kMaxBackendId + 1);
  EXPECT_EQ(s.vips[0].backends.back().id, api::kMaxBackendId);
}

TEST(Config, ErrorWithoutLineOmitsIt) {
  EXPECT_EQ((ConfigError{"a.yaml", 0, "", "boom"}).to_string(), "a.yaml: boom");
  EXPECT_EQ((ConfigError{"a.yaml", 3, "vips", "boom"}).to_string(), "a.yaml:3: vips: boom");
}

}  // namespace
}  // namespace rondo::cp

namespace rondo::cp {
namespace {

// An error repeats what the file says; it must stay one bounded line whatever the file
// holds (a newline in a value or a key must not forge a second log line).
TEST(Config, ErrorsAreOneBoundedLine) {
  const std::string long_name(5000, 'a');
  for (const std::string& text :
       {std::string("\"a\\nb\""), std::string("\"x\\ny\": 1\nvips: []\n"),
        std::string("local_ips: [\"1.2.3.4\\nX\"]\nvips: []\n"), std::string("\xff\x00\x0a", 3),
        "vips:\n  - name: " + long_name + "\n"}) {
    auto r = parse_config_model(text, "rondo.yaml");
    ASSERT_TRUE(std::holds_alternative<std::vector<ConfigError>>(r)) << text;
    for (const auto& e : std::get<std::vector<ConfigError>>(r)) {
      const std::string line = e.to_string();
      EXPECT_EQ(line.find('\n'), std::string::npos) << line;
      EXPECT_EQ(line.find('\r'), std::string::npos) << line;
      EXPECT_LT(line.size(), 1000u) << line.substr(0, 200);
    }
  }
  auto r = parse_config_model("\"x\\ny\": 1\nvips: []\n", "rondo.yaml");
  EXPECT_NE(std::get<std::vector<ConfigError>>(r).at(0).to_string().find("x\\ny"),
            std::string::npos);
}

}  // namespace
}  // namespace rondo::cp

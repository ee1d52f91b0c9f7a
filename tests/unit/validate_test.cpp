// One validation of desired state, whatever its source. Each case is a hole that main at
// 0f445ba let through one source or another; every source that can express it (the config
// file, the API, the state file, the dataplane's own check) must refuse it with the same
// message. Also: hostile JSON (deep nesting) gets an error, never a crash.
#include "controlplane/state/validate.h"

#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "controlplane/api/rpc.h"
#include "controlplane/config/config.h"
#include "controlplane/json_input.h"
#include "controlplane/state/state_file.h"
#include "dataplane/api/validate.h"
#include "fake_dataplane.h"
#include "tests/unit/cp_fixtures.h"

namespace rondo::cp {
namespace {

using json = nlohmann::json;

api::Addr ip(const char* s) {
  auto a = api::parse_addr(s);
  EXPECT_TRUE(a) << s;
  return a.value_or(api::Addr{});
}

DesiredState good_state() {
  auto r = parse_config_model(test::kTwoVipsConfig, "good.yaml");
  EXPECT_TRUE(std::holds_alternative<DesiredState>(r));
  auto d = std::get<DesiredState>(r);
  assign_fresh_ids(&d);
  return d;
}

struct Hole {
  const char* what;
  std::string field;    // as validate() names it
  std::string message;  // the same from every source
  // The config file: replace `from` by `to` in the good file.
  std::string from, to;
  // The state file (and the dataplane): the same change made to the state.
  std::function<void(DesiredState&)> change;
  // The API: a request making the change, or "" when no command can express it.
  std::string request;
  bool dataplane = false;  // a rule on what the dataplane gets (api::check_state) too
};

const std::string kWebPort = "    port: 80\n    backends:\n";
// The last line of the good file: what is added after it comes last.
const std::string kDnsBackend = "      - {address: 198.51.100.5, port: 53}\n";
const std::string kOneDirection =
    " (with direct server return the backend answers the client itself: rondo sees one "
    "direction only)";

// A third vip, x on 203.0.113.11:80, in `mode`: in the config file (after the last line,
// with more of its lines and then any top-level keys in `rest`), and in the state.
std::string x_yaml(const char* mode, const std::string& rest) {
  return kDnsBackend + "  - name: x\n    address: 203.0.113.11\n    port: 80\n    mode: " + mode +
         "\n" + rest;
}
VipSpec vip_x(api::Mode mode) {
  VipSpec v;
  v.name = "x";
  v.ip = ip("203.0.113.11");
  v.port = 80;
  v.mode = mode;
  return v;
}
// x in l2dsr with one backend, 192.0.2.7:80, and these routes.
void l2dsr_x(DesiredState& d, std::vector<api::Route> routes) {
  d.routes = std::move(routes);
  d.vips.push_back(vip_x(api::Mode::kL2Dsr));
  d.vips.back().backends = {{.ip = ip("192.0.2.7"), .port = 80}};
}
const std::string kL2DsrX = "    backends:\n      - {address: 192.0.2.7, port: 80}\nroutes:\n";
const std::string kNotOnLink =
    ": l2dsr only rewrites the destination MAC, so a backend must be on a directly connected "
    "network (a route without via)";

const Hole kHoles[] = {
    {"health check interval 0 (a connect loop)", "vips[0].health_check.interval_ms",
     "0 is not a period in milliseconds (10-3600000)", kWebPort,
     "    port: 80\n    health_check: {type: tcp, interval_ms: 0, timeout_ms: 10}\n    backends:\n",
     [](DesiredState& d) {
       d.vips[0].health_check.type = HealthCheck::Type::kTcp;
       d.vips[0].health_check.interval_ms = 0;
       d.vips[0].health_check.timeout_ms = 10;
     },
     ""},
    {"health check timeout 0 (everything down)", "vips[0].health_check.timeout_ms",
     "0 is not a period in milliseconds (10-3600000)", kWebPort,
     "    port: 80\n    health_check: {type: tcp, timeout_ms: 0}\n    backends:\n",
     [](DesiredState& d) {
       d.vips[0].health_check.type = HealthCheck::Type::kTcp;
       d.vips[0].health_check.timeout_ms = 0;
     },
     ""},
    {"CR/LF in the HTTP path (pasted into the request)", "vips[0].health_check.path",
     "\"/x??Host: evil\" is not an HTTP path (starts with /, no spaces or control characters, at "
     "most 1024 bytes)",
     kWebPort,
     "    port: 80\n    health_check: {type: http, path: \"/x\\r\\nHost: evil\"}\n    backends:\n",
     [](DesiredState& d) {
       d.vips[0].health_check.type = HealthCheck::Type::kHttp;
       d.vips[0].health_check.path = "/x\r\nHost: evil";
     },
     ""},
    {"vip equal to a local ip", "vips[2].address",
     "198.51.100.100 is also a local ip: return traffic and vip traffic would collide",
     "      - {address: 198.51.100.5, port: 53}\n",
     "      - {address: 198.51.100.5, port: 53}\n  - name: x\n    address: 198.51.100.100\n"
     "    port: 80\n    backends: []\n",
     [](DesiredState& d) {
       VipSpec v;
       v.name = "x";
       v.ip = ip("198.51.100.100");
       v.port = 80;
       d.vips.push_back(v);
     },
     R"({"cmd": "vip.add", "name": "x", "address": "198.51.100.100", "port": 80})", true},
    {"duplicate local ip", "local_ips[1]", "198.51.100.100 is listed twice",
     "local_ips: [198.51.100.100]", "local_ips: [198.51.100.100, 198.51.100.100]",
     [](DesiredState& d) { d.local_ips.push_back(ip("198.51.100.100")); }, "", true},
    {"0.0.0.0 as a local ip", "local_ips[0]", "0.0.0.0 is in 0.0.0.0/8, not a host address",
     "local_ips: [198.51.100.100]", "local_ips: [0.0.0.0]",
     [](DesiredState& d) { d.local_ips[0] = ip("0.0.0.0"); }, "", true},
    {"backend equal to a vip", "vips[0].backends[3].address",
     "203.0.113.10 is a vip address: rondo would forward to itself",
     "      - {address: 198.51.100.4, port: 3000}\n",
     "      - {address: 198.51.100.4, port: 3000}\n      - {address: 203.0.113.10, port: 3009}\n",
     [](DesiredState& d) { d.vips[0].backends.push_back({.ip = ip("203.0.113.10"), .port = 3009}); },
     R"({"cmd": "backend.add", "vip": "web", "address": "203.0.113.10", "port": 3009})", true},
    {"backend equal to a local ip", "vips[0].backends[3].address",
     "198.51.100.100 is a local ip: rondo would forward to itself",
     "      - {address: 198.51.100.4, port: 3000}\n",
     "      - {address: 198.51.100.4, port: 3000}\n      - {address: 198.51.100.100, port: 3009}\n",
     [](DesiredState& d) { d.vips[0].backends.push_back({.ip = ip("198.51.100.100"), .port = 3009}); },
     R"({"cmd": "backend.add", "vip": "web", "address": "198.51.100.100", "port": 3009})", true},
    {"SYN cookies on a DSR vip (no handshake to answer)", "vips[2].syncookies",
     "SYN cookies apply to fullnat vips only" + kOneDirection, kDnsBackend,
     x_yaml("ipip", "    syncookies: on\n    backends: []\n"),
     [](DesiredState& d) {
       d.vips.push_back(vip_x(api::Mode::kIpip));
       d.vips.back().syncookies = api::SynCookies::kOn;
     },
     "", true},
    {"PROXY protocol on a DSR vip (no stream to prefix)", "vips[2].proxy_protocol",
     "PROXY protocol applies to fullnat vips only" + kOneDirection, kDnsBackend,
     x_yaml("gue", "    proxy_protocol: v2\n    backends: []\n"),
     [](DesiredState& d) {
       d.vips.push_back(vip_x(api::Mode::kGue));
       d.vips.back().proxy_protocol = api::ProxyProtocol::kV2;
     },
     R"({"cmd": "vip.add", "name": "x", "address": "203.0.113.11", "port": 80, "mode": "gue", "proxy_protocol": "v2"})",
     true},
    {"DSR backend on another port than the vip's", "vips[0].backends[0].port",
     "3000 is not the vip's port 80: with direct server return the backend receives the "
     "client's packet addressed to 203.0.113.10:80 unchanged, so it must listen on that port",
     kWebPort, "    port: 80\n    mode: l2dsr\n    backends:\n",
     [](DesiredState& d) { d.vips[0].mode = api::Mode::kL2Dsr; }, "", true},
    {"ipip without a local ip (the outer source)", "local_ips",
     "at least one local ip is needed: gue uses it as the outer source address",
     "local_ips: [198.51.100.100]\nvips:\n",
     "local_ips: []\nvips:\n  - name: x\n    address: 203.0.113.11\n    port: 80\n"
     "    mode: gue\n    backends: []\n",
     [](DesiredState& d) {
       d.local_ips.clear();
       d.vips.insert(d.vips.begin(), vip_x(api::Mode::kGue));
     },
     "", true},
    {"l2dsr backend behind a gateway", "vips[2].backends[0].address",
     "192.0.2.7 is not on-link (its route 0.0.0.0/0 goes via 198.51.100.1)" + kNotOnLink,
     kDnsBackend,
     x_yaml("l2dsr", kL2DsrX + "  - {prefix: 0.0.0.0/0, via: 198.51.100.1}\n"
                               "  - {prefix: 198.51.100.0/24}\n"),
     [](DesiredState& d) {
       l2dsr_x(d, {{.prefix = ip("0.0.0.0"), .prefix_len = 0, .via = ip("198.51.100.1")},
                   {.prefix = ip("198.51.100.0"), .prefix_len = 24}});
     },
     "", true},
    {"l2dsr backend no route holds", "vips[2].backends[0].address",
     "192.0.2.7 is not on-link (no route holds it)" + kNotOnLink, kDnsBackend,
     x_yaml("l2dsr", kL2DsrX + "  - {prefix: 198.51.100.0/24}\n"),
     [](DesiredState& d) { l2dsr_x(d, {{.prefix = ip("198.51.100.0"), .prefix_len = 24}}); }, "",
     true},
    // Interfaces: the config file, the state file and the dataplane say the same.
    {"interface address equal to a local ip", "interfaces[0].addresses[0]",
     "198.51.100.100 is also a local ip: local ips are answered on every interface already",
     "local_ips: [198.51.100.100]\nvips:\n",
     "local_ips: [198.51.100.100]\ninterfaces:\n  - {name: lan, port: 0, addresses: "
     "[198.51.100.100/24]}\nvips:\n",
     [](DesiredState& d) {
       d.interfaces = {{.id = 0, .name = "lan", .port_id = 0}};
       d.interfaces[0].addresses = {{ip("198.51.100.100"), 24}};
     },
     "", true},
    {"two untagged interfaces on one port", "interfaces[1].vlan",
     "port 0 already has an untagged interface: a frame would belong to two interfaces",
     "local_ips: [198.51.100.100]\nvips:\n",
     "local_ips: [198.51.100.100]\ninterfaces:\n  - {name: lan, port: 0}\n  - {name: wan, port: "
     "0, vlan: 0}\nvips:\n",
     [](DesiredState& d) {
       d.interfaces = {{.id = 0, .name = "lan", .port_id = 0}, {.id = 1, .name = "wan", .port_id = 0}};
     },
     "", true},
    {"one address on two interfaces", "interfaces[1].addresses[0]",
     "192.0.2.1 is already an address of another interface",
     "local_ips: [198.51.100.100]\nvips:\n",
     "local_ips: [198.51.100.100]\ninterfaces:\n  - {name: lan, port: 0, addresses: [192.0.2.1/24]}\n"
     "  - {name: wan, port: 0, vlan: 7, addresses: [192.0.2.1/25]}\nvips:\n",
     [](DesiredState& d) {
       d.interfaces = {{.id = 0, .name = "lan", .port_id = 0},
                       {.id = 1, .name = "wan", .port_id = 0, .vlan = 7}};
       d.interfaces[0].addresses = {{ip("192.0.2.1"), 24}};
       d.interfaces[1].addresses = {{ip("192.0.2.1"), 25}};
     },
     "", true},
    {"an IPv6 interface below 1280", "interfaces[0].mtu",
     "1000 is below IPv6's minimum MTU 1280 and the interface carries IPv6",
     "local_ips: [198.51.100.100]\nvips:\n",
     "local_ips: [198.51.100.100]\ninterfaces:\n  - {name: lan, port: 0, mtu: 1000, addresses: "
     "[\"2001:db8::1/64\"]}\nvips:\n",
     [](DesiredState& d) {
       d.interfaces = {{.id = 0, .name = "lan", .port_id = 0, .mtu = 1000}};
       d.interfaces[0].addresses = {{ip("2001:db8::1"), 64}};
     },
     "", true},
};

class Holes : public ::testing::TestWithParam<Hole> {};

void PrintTo(const Hole& h, std::ostream* os) { *os << h.what; }

TEST_P(Holes, ValidateNamesFieldAndMessage) {
  const Hole& h = GetParam();
  DesiredState d = good_state();
  h.change(d);
  assign_fresh_ids(&d);
  const auto problems = validate(d);
  ASSERT_FALSE(problems.empty());
  EXPECT_EQ(problems.front().field, h.field);
  EXPECT_EQ(problems.front().message, h.message);
  EXPECT_TRUE(validate(good_state()).empty());
}

TEST_P(Holes, ConfigFileRefusesItWithTheSameMessage) {
  const Hole& h = GetParam();
  std::string text = test::kTwoVipsConfig;
  const auto at = text.find(h.from);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, h.from.size(), h.to);
  auto r = parse_config_model(text, "rondo.yaml");
  ASSERT_TRUE(std::holds_alternative<std::vector<ConfigError>>(r)) << text;
  const auto& errors = std::get<std::vector<ConfigError>>(r);
  bool found = false;
  for (const auto& e : errors) {
    found |= e.field == h.field && e.message.rfind(h.message, 0) == 0 && e.line > 0;
  }
  EXPECT_TRUE(found) << errors.front().to_string();
}

TEST_P(Holes, StateFileRefusesItWithTheSameMessage) {
  const Hole& h = GetParam();
  PersistedState s;
  s.desired = good_state();
  h.change(s.desired);
  assign_fresh_ids(&s.desired);
  auto r = decode_state_file(encode_state_file(s));
  ASSERT_TRUE(std::holds_alternative<std::string>(r));
  EXPECT_EQ(std::get<std::string>(r).rfind(h.field + ": " + h.message, 0), 0u)
      << std::get<std::string>(r);
}

TEST_P(Holes, DataplaneRefusesWhatItChecks) {
  const Hole& h = GetParam();
  if (!h.dataplane) GTEST_SKIP() << "a control-plane-only field";
  DesiredState d = good_state();
  h.change(d);
  assign_fresh_ids(&d);
  EXPECT_EQ(api::validate_state(to_api(d)).rfind(h.field + ": " + h.message, 0), 0u)
      << api::validate_state(to_api(d));
}


TEST_P(Holes, ApiRefusesItWithTheSameMessageAndChangesNothing) {
  const Hole& h = GetParam();
  if (h.request.empty()) GTEST_SKIP() << "no API command sets this field";
  auto dp = std::make_shared<testing::FakeDataplane>();
  auto path = std::string("/tmp/rondo-validate-XXXXXX");
  ASSERT_NE(mkdtemp(path.data()), nullptr);
  const std::string config = path + "/rondo.yaml";
  FILE* f = std::fopen(config.c_str(), "w");
  std::fputs(test::kTwoVipsConfig, f);
  std::fclose(f);
  ControlPlaneOptions o;
  o.config_path = config;
  o.apply_timeout = std::chrono::milliseconds(0);
  ControlPlane cp(std::make_unique<testing::FakeDataplaneClient>(dp), o);
  ASSERT_TRUE(cp.start().ok);
  const auto before = cp.view().desired;
  const json reply = json::parse(handle_request(cp, h.request, "test"));
  EXPECT_EQ(reply["ok"], false);
  EXPECT_EQ(reply["code"], "invalid");
  EXPECT_EQ(reply["error"].get<std::string>().rfind(h.field + ": " + h.message, 0), 0u) << reply;
  EXPECT_EQ(cp.view().desired, before);
  std::remove(config.c_str());
  ::rmdir(path.c_str());
}

INSTANTIATE_TEST_SUITE_P(Item2, Holes, ::testing::ValuesIn(kHoles));

// ---- direct server return ----

// l2dsr reaches a backend by its MAC alone: the route the dataplane would take to it, the
// longest prefix holding it, must be on-link (no via). No routes: everything is on-link.
TEST(Dsr, L2DsrBackendsAreOnLinkByTheLongestMatchingRoute) {
  api::State s;
  s.local_ips = {ip("198.51.100.100")};
  api::Vip v{.id = 0, .ip = ip("203.0.113.10"), .port = 80, .mode = api::Mode::kL2Dsr};
  v.backends = {{.id = 0, .ip = ip("10.1.2.3"), .port = 80}};
  s.vips = {v};
  auto first = [&] { return api::validate_state(s); };
  EXPECT_EQ(first(), "");  // no routes
  s.routes = {{.prefix = ip("0.0.0.0"), .prefix_len = 0, .via = ip("198.51.100.1")},
              {.prefix = ip("10.1.0.0"), .prefix_len = 16}};
  EXPECT_EQ(first(), "");  // the /16 is on-link and longer than the default
  s.routes.push_back({.prefix = ip("10.1.2.0"), .prefix_len = 24, .via = ip("10.1.0.1")});
  EXPECT_EQ(first(),
            "vips[0].backends[0].address: 10.1.2.3 is not on-link (its route 10.1.2.0/24 goes via "
            "10.1.0.1)" + kNotOnLink + " (see routes[2].prefix)");
  s.routes.push_back({.prefix = ip("10.1.2.3"), .prefix_len = 32});
  EXPECT_EQ(first(), "");  // a host route, on-link
  // ipip and gue route as they like; only the port is theirs to match.
  s.routes = {{.prefix = ip("0.0.0.0"), .prefix_len = 0, .via = ip("198.51.100.1")}};
  for (auto m : {api::Mode::kIpip, api::Mode::kGue}) {
    s.vips[0].mode = m;
    EXPECT_EQ(first(), "");
  }
  s.vips[0].mode = api::Mode::kFullNat;
  s.vips[0].backends[0].port = 3000;
  EXPECT_EQ(first(), "");  // full-NAT translates ports
}

TEST(Dsr, EveryRuleIsOneProblemOnItsField) {
  // One state breaking every DSR rule at once: each problem once, in field order.
  api::State s;
  s.routes = {{.prefix = ip("198.51.100.0"), .prefix_len = 24}};
  api::Vip v{.id = 0, .ip = ip("203.0.113.10"), .port = 443, .mode = api::Mode::kL2Dsr,
             .syncookies = api::SynCookies::kAuto, .proxy_protocol = api::ProxyProtocol::kV2};
  v.backends = {{.id = 0, .ip = ip("198.51.100.3"), .port = 443},
                {.id = 1, .ip = ip("198.51.100.4"), .port = 8443},
                {.id = 2, .ip = ip("192.0.2.1"), .port = 443}};
  s.vips = {v};
  std::vector<std::string> fields;
  for (const auto& p : api::check_state(s)) fields.push_back(p.field);
  EXPECT_EQ(fields, (std::vector<std::string>{"local_ips", "vips[0].syncookies",
                                              "vips[0].proxy_protocol", "vips[0].backends[1].port",
                                              "vips[0].backends[2].address"}));
  // An unknown mode (a newer peer's) is named as such, and no DSR rule is guessed at.
  s.local_ips = {ip("198.51.100.100")};
  s.vips[0].mode = static_cast<api::Mode>(9);
  fields.clear();
  for (const auto& p : api::check_state(s)) fields.push_back(p.field);
  EXPECT_EQ(fields, std::vector<std::string>{"vips[0].mode"});
}

// ---- IPv6 (the first cut: docs/modes.md) ----

// A dual-stack state every rule accepts: a v6 full-NAT vip, a NAT46 one (v4 vip, v6
// backends) and a v4 one, local ips of both families, v6 routes (one via a link-local router).
api::State dual_stack() {
  api::State s;
  s.local_ips = {ip("198.51.100.100"), ip("2001:db8:100::100")};
  api::Vip web6{.id = 0, .ip = ip("2001:db8::10"), .port = 80};
  web6.backends = {{.id = 0, .ip = ip("2001:db8:100::3"), .port = 3000},
                   {.id = 1, .ip = ip("2001:db8:100::4"), .port = 3000}};
  api::Vip nat46{.id = 1, .ip = ip("203.0.113.10"), .port = 8090};
  nat46.backends = {{.id = 2, .ip = ip("2001:db8:100::3"), .port = 3000}};
  api::Vip web4{.id = 2, .ip = ip("203.0.113.10"), .port = 80};
  web4.backends = {{.id = 3, .ip = ip("198.51.100.3"), .port = 3000}};
  s.vips = {web6, nat46, web4};
  s.routes = {{.prefix = ip("::"), .prefix_len = 0, .iface = 0, .via = ip("fe80::1")},
              {.prefix = ip("2001:db8:100::"), .prefix_len = 64},
              {.prefix = ip("0.0.0.0"), .prefix_len = 0, .via = ip("198.51.100.1")}};
  s.neighbours = {{.ip = ip("fe80::1"), .mac = {2, 0, 0, 0, 0, 1}}};
  return s;
}

struct V6Case {
  const char* what;
  std::function<void(api::State&)> change;
  std::string problem;  // the first problem, as validate_state says it
};

const std::string kNotYet = " not supported for IPv6 yet";

const V6Case kV6Cases[] = {
    {"mixed backend families in one vip",
     [](api::State& s) { s.vips[0].backends.push_back({.id = 9, .ip = ip("198.51.100.3"), .port = 3000}); },
     "vips[0].backends[2].address: 198.51.100.3 is IPv4 but the vip's first backend is IPv6: the "
     "backends of a vip are all of one family (see vips[0].backends[0].address)"},
    {"full-NAT to v6 backends without a v6 local ip",
     [](api::State& s) { s.local_ips = {ip("198.51.100.100")}; },
     "vips[0].backends[0].address: 2001:db8:100::3 is IPv6 but no local ip is: full-NAT sends to "
     "a backend from a local ip of its family (see local_ips)"},
    {"full-NAT to v4 backends without a v4 local ip",
     [](api::State& s) { s.local_ips = {ip("2001:db8:100::100")}; },
     "vips[2].backends[0].address: 198.51.100.3 is IPv4 but no local ip is: full-NAT sends to "
     "a backend from a local ip of its family (see local_ips)"},
    {"ipip from a v6 vip to v4 backends",
     [](api::State& s) {
       s.vips[0].mode = api::Mode::kIpip;
       s.vips[0].backends = {{.id = 9, .ip = ip("198.51.100.3"), .port = 80}};
     },
     "vips[0].mode: mode ipip cannot carry an IPv6 vip's packets to IPv4 backends: with direct "
     "server return the backend answers from the vip itself, so it needs the vip's family (use "
     "IPv6 backends, or fullnat for NAT64) (see vips[0].backends[0].address)"},
    {"l2dsr from a v4 vip to v6 backends",
     [](api::State& s) {
       s.vips[1].mode = api::Mode::kL2Dsr;
       s.vips[1].backends[0].port = 8090;
     },
     "vips[1].mode: mode l2dsr cannot send an IPv4 vip's packets to IPv6 backends: it rewrites "
     "only the destination MAC (use ipip or gue, which carry IPv4 in IPv6) (see "
     "vips[1].backends[0].address)"},
    {"gue to v6 backends without a v6 local ip",
     [](api::State& s) {
       s.local_ips = {ip("198.51.100.100")};
       s.vips[0].mode = api::Mode::kGue;
       for (auto& b : s.vips[0].backends) b.port = 80;
     },
     "vips[0].backends[0].address: 2001:db8:100::3 is IPv6 but no local ip is: gue sends to a "
     "backend from a local ip of its family (the outer source) (see local_ips)"},
    {"l2dsr to a v6 backend off-link",
     [](api::State& s) {
       s.vips[0].mode = api::Mode::kL2Dsr;
       for (auto& b : s.vips[0].backends) b.port = 80;
       s.vips[0].backends[0].ip = ip("2001:db8:200::3");
     },
     "vips[0].backends[0].address: 2001:db8:200::3 is not on-link (its route ::/0 goes via "
     "fe80::1): l2dsr only rewrites the destination MAC, so a backend must be on a directly "
     "connected network (a route without via) (see routes[0].prefix)"},
    {"SYN cookies on a v6 vip",
     [](api::State& s) { s.vips[0].syncookies = api::SynCookies::kAuto; },
     "vips[0].syncookies: SYN cookies are" + kNotYet + " (see vips[0].address)"},
    {"PROXY protocol towards v6 backends",
     [](api::State& s) { s.vips[1].proxy_protocol = api::ProxyProtocol::kV2; },
     "vips[1].proxy_protocol: the PROXY protocol is" + kNotYet + " (see vips[1].backends[0].address)"},
    {"route via of the other family",
     [](api::State& s) { s.routes[0].via = ip("198.51.100.1"); },
     "routes[0].via: 198.51.100.1 is IPv4 but the prefix ::/0 is IPv6: a next hop has the route's "
     "family (see routes[0].prefix)"},
    {"v4 route via a v6 router",
     [](api::State& s) { s.routes[2].via = ip("2001:db8:100::1"); },
     "routes[2].via: 2001:db8:100::1 is IPv6 but the prefix 0.0.0.0/0 is IPv4: a next hop has the "
     "route's family (see routes[2].prefix)"},
    {"v6 prefix longer than 128",
     [](api::State& s) { s.routes[1].prefix_len = 129; },
     "routes[1].prefix: 2001:db8:100::/129: prefix length must be 0-128"},
    {"v4 prefix longer than 32",
     [](api::State& s) { s.routes.push_back({.prefix = ip("10.0.0.0"), .prefix_len = 33}); },
     "routes[3].prefix: 10.0.0.0/33: prefix length must be 0-32"},
    {"v6 prefix with host bits",
     [](api::State& s) { s.routes[1].prefix = ip("2001:db8:100::1"); },
     "routes[1].prefix: 2001:db8:100::1/64 has host bits set (did you mean 2001:db8:100::/64?)"},
    {"v6 prefix with host bits inside a byte",
     [](api::State& s) { s.routes[1] = {.prefix = ip("2001:db8:1ff::"), .prefix_len = 39}; },
     "routes[1].prefix: 2001:db8:1ff::/39 has host bits set (did you mean 2001:db8::/39?)"},
    {"multicast v6 vip", [](api::State& s) { s.vips[0].ip = ip("ff02::1"); },
     "vips[0].address: ff02::1 is a multicast address (ff00::/8)"},
    {"unspecified v6 backend", [](api::State& s) { s.vips[0].backends[1].ip = ip("::"); },
     "vips[0].backends[1].address: :: is the unspecified address (::), not a host address"},
    {"loopback v6 local ip", [](api::State& s) { s.local_ips[1] = ip("::1"); },
     "local_ips[1]: ::1 is the loopback address"},
    {"link-local local ip", [](api::State& s) { s.local_ips.push_back(ip("fe80::100")); },
     "local_ips[2]: fe80::100 is a link-local address (fe80::/10), which cannot be a local ip"},
    {"link-local vip", [](api::State& s) { s.vips[0].ip = ip("fe80::10"); },
     "vips[0].address: fe80::10 is a link-local address (fe80::/10), which cannot be a vip"},
    {"link-local backend", [](api::State& s) { s.vips[0].backends[0].ip = ip("febf::3"); },
     "vips[0].backends[0].address: febf::3 is a link-local address (fe80::/10), which cannot be a "
     "backend"},
    {"multicast v6 next hop", [](api::State& s) { s.routes[0].via = ip("ff02::2"); },
     "routes[0].via: ff02::2 is a multicast address (ff00::/8)"},
    {"v6 vip is a local ip", [](api::State& s) { s.vips[0].ip = ip("2001:db8:100::100"); },
     "vips[0].address: 2001:db8:100::100 is also a local ip: return traffic and vip traffic would "
     "collide (see local_ips[1])"},
    {"duplicate v6 backend", [](api::State& s) { s.vips[0].backends[1].ip = ip("2001:db8:100::3"); },
     "vips[0].backends[1].address: [2001:db8:100::3]:3000 is already a backend of this vip (see "
     "vips[0].backends[0].address)"},
    {"duplicate v6 vip",
     [](api::State& s) {
       s.vips[2].ip = ip("2001:db8::10");
       s.vips[2].backends[0].ip = ip("2001:db8:100::5");
     },
     "vips[2].address: [2001:db8::10]:80/tcp is already served by another vip (see vips[0].address)"},
    {"duplicate v6 route", [](api::State& s) { s.routes.push_back(s.routes[1]); },
     "routes[3].prefix: 2001:db8:100::/64 is a duplicate route (see routes[1].prefix)"},
};

class V6 : public ::testing::TestWithParam<V6Case> {};
void PrintTo(const V6Case& c, std::ostream* os) { *os << c.what; }

TEST(Ipv6, DualStackStateIsValid) { EXPECT_EQ(api::validate_state(dual_stack()), ""); }

// Direct server return to IPv6 backends (docs/modes.md): ipip, gue and l2dsr from a v6 vip,
// ipip and gue from a v4 vip (IPv4 in IPv6).
TEST(Ipv6, DsrToV6BackendsIsValid) {
  for (api::Mode m : {api::Mode::kIpip, api::Mode::kGue, api::Mode::kL2Dsr}) {
    api::State s = dual_stack();
    s.vips[0].mode = m;
    for (auto& b : s.vips[0].backends) b.port = 80;
    if (m != api::Mode::kL2Dsr) {
      s.vips[1].mode = m;
      s.vips[1].backends[0].port = 8090;
    }
    EXPECT_EQ(api::validate_state(s), "") << static_cast<int>(m);
  }
}

TEST_P(V6, DataplaneRefusesWithTheFieldNamed) {
  api::State s = dual_stack();
  GetParam().change(s);
  EXPECT_EQ(api::validate_state(s), GetParam().problem);
}

INSTANTIATE_TEST_SUITE_P(Ipv6, V6, ::testing::ValuesIn(kV6Cases));

TEST(Ipv6, LinkLocalIsFineForNextHopsAndNeighbours) {
  api::State s = dual_stack();
  s.routes.push_back({.prefix = ip("2001:db8:300::"), .prefix_len = 48, .iface = 1, .via = ip("fe80::2")});
  s.neighbours.push_back({.ip = ip("fe80::2"), .mac = {2, 0, 0, 0, 0, 2}, .iface = 1});
  EXPECT_EQ(api::validate_state(s), "");
}

TEST(Ipv6, PrefixLengthsUpToTheFamilysWidth) {
  api::State s = dual_stack();
  s.routes.push_back({.prefix = ip("2001:db8::10"), .prefix_len = 128});
  s.routes.push_back({.prefix = ip("2001:db8:8000::"), .prefix_len = 33});
  s.routes.push_back({.prefix = ip("10.1.2.3"), .prefix_len = 32});
  EXPECT_EQ(api::validate_state(s), "");
}

// Only vips, backends, local ips and next hops are addresses a packet is sent to or from;
// ::ffff:a.b.c.d cannot even be written as v6 (it is how v4 is held: parse_addr refuses it).
TEST(Ipv6, UnusableAddresses) {
  EXPECT_EQ(api::unusable_address_reason(ip("2001:db8::1")), "");
  EXPECT_EQ(api::unusable_address_reason(ip("fe80::1")), "");  // refused per role, not here
  EXPECT_NE(api::unusable_address_reason(api::Addr{}), "");
  EXPECT_NE(api::unusable_address_reason(ip("::1")), "");
  EXPECT_NE(api::unusable_address_reason(ip("ff05::2")), "");
  EXPECT_EQ(api::unusable_address_reason(ip("127.0.0.1")), "is a loopback address");
  EXPECT_FALSE(api::parse_addr("::ffff:203.0.113.10"));
}

// ---- interfaces (a port plus an optional VLAN) ----

// dual_stack() over two interfaces: backends (id 0, port 0 untagged, --mtu) and clients (id
// 1, port 0 VLAN 100, mtu 1500), each with an address of both families.
api::State with_ifaces() {
  api::State s = dual_stack();
  api::Interface backends{.id = 0, .name = "backends", .port_id = 0};
  backends.addresses = {{ip("198.51.100.254"), 24}, {ip("2001:db8:100::1"), 64}};
  api::Interface clients{.id = 1, .name = "clients", .port_id = 0, .vlan = 100, .mtu = 1500};
  clients.addresses = {{ip("192.0.2.1"), 24}, {ip("2001:db8:200::1"), 64}};
  s.interfaces = {backends, clients};
  return s;
}

using IfaceCase = V6Case;  // what, change, the first problem

const std::string kNameRule = " is not a valid interface name (1-15 characters from a-z 0-9 . _ -)";

const IfaceCase kIfaceCases[] = {
    {"empty name", [](api::State& s) { s.interfaces[1].name = ""; },
     "interfaces[1].name: \"\"" + kNameRule},
    {"16-character name", [](api::State& s) { s.interfaces[1].name = "clients-vlan-100"; },
     "interfaces[1].name: \"clients-vlan-100\"" + kNameRule},
    {"upper case and space", [](api::State& s) { s.interfaces[1].name = "Clients 1"; },
     "interfaces[1].name: \"Clients 1\"" + kNameRule},
    {"control byte in a name", [](api::State& s) { s.interfaces[1].name = "a\nb"; },
     "interfaces[1].name: \"a?b\"" + kNameRule},
    {"name used twice", [](api::State& s) { s.interfaces[1].name = "backends"; },
     "interfaces[1].name: backends is already the name of another interface (see interfaces[0].name)"},
    {"id used twice", [](api::State& s) { s.interfaces[1].id = 0; },
     "interfaces[1].id: interface id 0 is used twice (see interfaces[0].id)"},
    {"id out of range", [](api::State& s) { s.interfaces[1].id = 256; },
     "interfaces[1].id: 256 is not an interface id (0-255)"},
    {"VLAN 4095 (reserved)", [](api::State& s) { s.interfaces[1].vlan = 4095; },
     "interfaces[1].vlan: 4095 is not a VLAN id (1-4094; 0 or absent: untagged)"},
    {"two untagged interfaces on one port", [](api::State& s) { s.interfaces[1].vlan = 0; },
     "interfaces[1].vlan: port 0 already has an untagged interface: a frame would belong to two "
     "interfaces (see interfaces[0].vlan)"},
    {"one VLAN twice on one port",
     [](api::State& s) { s.interfaces.push_back({.id = 2, .name = "again", .port_id = 0, .vlan = 100}); },
     "interfaces[2].vlan: port 0 already has an interface on VLAN 100: a frame would belong to two "
     "interfaces (see interfaces[1].vlan)"},
    {"MTU below 576", [](api::State& s) { s.interfaces[1].mtu = 575; },
     "interfaces[1].mtu: 575 is not an MTU (576-9000)"},
    {"MTU above 9000", [](api::State& s) { s.interfaces[0].mtu = 9001; },
     "interfaces[0].mtu: 9001 is not an MTU (576-9000)"},
    {"MTU below 1280 with an IPv6 address", [](api::State& s) { s.interfaces[1].mtu = 1000; },
     "interfaces[1].mtu: 1000 is below IPv6's minimum MTU 1280 and the interface carries IPv6 "
     "(see interfaces[1].addresses[1])"},
    {"MTU below 1280 with an IPv6 route",
     [](api::State& s) {
       s.interfaces.push_back({.id = 2, .name = "v4only", .port_id = 1, .mtu = 1000});
       s.interfaces[2].addresses = {{ip("10.0.0.1"), 24}};
       s.routes.push_back({.prefix = ip("2001:db8:300::"), .prefix_len = 48, .iface = 2});
     },
     "interfaces[2].mtu: 1000 is below IPv6's minimum MTU 1280 and the interface carries IPv6 "
     "(see routes[3].interface)"},
    {"prefix length 33", [](api::State& s) { s.interfaces[1].addresses[0].len = 33; },
     "interfaces[1].addresses[0]: 192.0.2.1/33: prefix length must be 1-32"},
    {"prefix length 0", [](api::State& s) { s.interfaces[1].addresses[1].len = 0; },
     "interfaces[1].addresses[1]: 2001:db8:200::1/0: prefix length must be 1-128"},
    {"the network address", [](api::State& s) { s.interfaces[1].addresses[0].addr = ip("192.0.2.0"); },
     "interfaces[1].addresses[0]: 192.0.2.0/24 is the network address of its subnet, not a host's"},
    {"the broadcast address",
     [](api::State& s) { s.interfaces[1].addresses[0].addr = ip("192.0.2.255"); },
     "interfaces[1].addresses[0]: 192.0.2.255/24 is the broadcast address of its subnet, not a "
     "host's"},
    {"IPv6's subnet-router anycast address",
     [](api::State& s) { s.interfaces[1].addresses[1].addr = ip("2001:db8:200::"); },
     "interfaces[1].addresses[1]: 2001:db8:200::/64 is the subnet-router anycast address of its "
     "subnet, not a host's"},
    {"a link-local address",
     [](api::State& s) { s.interfaces[1].addresses[1].addr = ip("fe80::1"); },
     "interfaces[1].addresses[1]: fe80::1 is a link-local address (fe80::/10), which cannot be an "
     "interface address"},
    {"a multicast address",
     [](api::State& s) { s.interfaces[1].addresses[0].addr = ip("224.0.0.5"); },
     "interfaces[1].addresses[0]: 224.0.0.5 is a multicast address"},
    {"a vip's address", [](api::State& s) { s.interfaces[1].addresses[0].addr = ip("203.0.113.10"); },
     "interfaces[1].addresses[0]: 203.0.113.10 is also a vip: vips are answered on every "
     "interface already (see vips[1].address)"},
    {"a local ip", [](api::State& s) { s.interfaces[0].addresses[0].addr = ip("198.51.100.100"); },
     "interfaces[0].addresses[0]: 198.51.100.100 is also a local ip: local ips are answered on "
     "every interface already (see local_ips[0])"},
    {"one address on two interfaces",
     [](api::State& s) { s.interfaces[1].addresses.push_back({ip("198.51.100.254"), 24}); },
     "interfaces[1].addresses[2]: 198.51.100.254 is already an address of another interface "
     "(see interfaces[0].addresses[0])"},
    {"one address twice on an interface",
     [](api::State& s) { s.interfaces[1].addresses.push_back({ip("192.0.2.1"), 25}); },
     "interfaces[1].addresses[2]: 192.0.2.1 is already an address of this interface (see "
     "interfaces[1].addresses[0])"},
    {"one subnet on two interfaces",
     [](api::State& s) { s.interfaces[1].addresses.push_back({ip("2001:db8:100::2"), 64}); },
     "interfaces[1].addresses[2]: 2001:db8:100::/64 is also the subnet of another interface: one "
     "subnet on two interfaces would be two connected routes for one prefix (see "
     "interfaces[0].addresses[1])"},
    {"a route on an interface that does not exist", [](api::State& s) { s.routes[1].iface = 7; },
     "routes[1].interface: 7 is not the id of an interface of the state"},
    {"a neighbour on an interface that does not exist",
     [](api::State& s) { s.neighbours[0].iface = 2; },
     "neighbours[0].interface: 2 is not the id of an interface of the state"},
    {"a backend at an interface address",
     [](api::State& s) { s.vips[2].backends[0].ip = ip("198.51.100.254"); },
     "vips[2].backends[0].address: 198.51.100.254 is an interface address: rondo would forward "
     "to itself (see interfaces[0].addresses[0])"},
    {"too many interfaces",
     [](api::State& s) {
       for (uint16_t i = 2; i <= 256; ++i) {
         api::Interface more{.id = i, .name = "x", .port_id = 1, .vlan = i};
         more.name += std::to_string(i);
         s.interfaces.push_back(more);
       }
     },
     "interfaces: too many interfaces (at most 256)"},
    {"a static neighbour twice on one interface",
     [](api::State& s) { s.neighbours.push_back({.ip = ip("fe80::1"), .mac = {2, 0, 0, 0, 0, 9}}); },
     "neighbours[1].ip: fe80::1 already has an entry (see neighbours[0].ip)"},
};

class Ifaces : public ::testing::TestWithParam<IfaceCase> {};

TEST(Interfaces, TwoInterfacesAreValid) { EXPECT_EQ(api::validate_state(with_ifaces()), ""); }

TEST_P(Ifaces, DataplaneRefusesWithTheFieldNamed) {
  api::State s = with_ifaces();
  GetParam().change(s);
  EXPECT_EQ(api::validate_state(s), GetParam().problem);
}

INSTANTIATE_TEST_SUITE_P(Interfaces, Ifaces, ::testing::ValuesIn(kIfaceCases));

// What the rules allow: one VLAN on two ports, a /31 or /32 (/127, /128) address, an IPv4-only
// interface below 1280, and the same link-local router on two interfaces (neighbours are
// keyed by interface and address).
TEST(Interfaces, WhatIsAllowed) {
  api::State s = with_ifaces();
  s.interfaces.push_back({.id = 9, .name = "vlan100.p1", .port_id = 1, .vlan = 100, .mtu = 576});
  s.interfaces.back().addresses = {{ip("10.0.0.0"), 31}, {ip("10.0.1.1"), 32}};
  s.interfaces.push_back({.id = 255, .name = "v6_p1", .port_id = 1, .mtu = 1280});
  s.interfaces.back().addresses = {{ip("2001:db8:400::"), 127}, {ip("2001:db8:500::"), 128}};
  s.routes.push_back({.prefix = ip("2001:db8:300::"), .prefix_len = 48, .iface = 1, .via = ip("fe80::1")});
  s.neighbours.push_back({.ip = ip("fe80::1"), .mac = {2, 0, 0, 0, 0, 2}, .iface = 1});
  s.neighbours.push_back({.ip = ip("fe80::1"), .mac = {2, 0, 0, 0, 0, 3}, .iface = 9});
  EXPECT_EQ(api::validate_state(s), "");
  // Without interfaces a route may name any port: only the dataplane knows how many it has.
  s = dual_stack();
  s.routes[1].iface = 7;
  EXPECT_EQ(api::validate_state(s), "");
}

// l2dsr's on-link rule counts the interfaces' subnets (their connected routes), unless an
// explicit route of the same prefix says otherwise.
TEST(Interfaces, L2DsrBackendOnAnInterfacesSubnetIsOnLink) {
  api::State s = with_ifaces();
  api::Vip l2{.id = 5, .ip = ip("203.0.113.20"), .port = 80, .mode = api::Mode::kL2Dsr};
  l2.backends = {{.id = 9, .ip = ip("192.0.2.7"), .port = 80}};
  s.vips.push_back(l2);
  EXPECT_EQ(api::validate_state(s), "");  // 0.0.0.0/0 goes via a router, 192.0.2.0/24 is the clients'
  s.interfaces[1].addresses[0] = {ip("192.0.2.1"), 25};
  EXPECT_EQ(api::validate_state(s), "");  // 192.0.2.0/25 holds .7
  s.interfaces[1].addresses[0] = {ip("192.0.2.129"), 25};
  EXPECT_EQ(api::validate_state(s),
            "vips[3].backends[0].address: 192.0.2.7 is not on-link (its route 0.0.0.0/0 goes via "
            "198.51.100.1)" + kNotOnLink + " (see routes[2].prefix)");
  // An explicit route of the subnet's prefix wins over the connected one.
  s.interfaces[1].addresses[0] = {ip("192.0.2.1"), 24};
  s.routes.push_back({.prefix = ip("192.0.2.0"), .prefix_len = 24, .iface = 0, .via = ip("198.51.100.1")});
  EXPECT_EQ(api::validate_state(s),
            "vips[3].backends[0].address: 192.0.2.7 is not on-link (its route 192.0.2.0/24 goes via "
            "198.51.100.1)" + kNotOnLink + " (see routes[3].prefix)");
}

// What only the dataplane knows, its ports and --mtu: checked when a state is applied.
TEST(Interfaces, DataplaneChecksPortsAndItsMtu) {
  auto first = [](const api::State& s, uint32_t ports, uint32_t mtu) {
    const auto p = api::check_dataplane(s, ports, mtu);
    return p.empty() ? std::string() : p.front().to_string();
  };
  api::State s = with_ifaces();
  EXPECT_EQ(first(s, 1, 1500), "");
  s.interfaces[0].mtu = 9000;
  EXPECT_EQ(first(s, 1, 1500), "interfaces[0].mtu: 9000 is above the dataplane's --mtu 1500");
  EXPECT_EQ(first(s, 1, 9000), "");
  s.interfaces[1].port_id = 2;
  EXPECT_EQ(first(s, 2, 9000), "interfaces[1].port: 2 is not a port of the dataplane (its ports are 0-1)");
  EXPECT_EQ(first(s, 1, 9000), "interfaces[1].port: 2 is not a port of the dataplane (it has port 0)");
  // Without an mtu of its own an interface has --mtu: below 1280 only without IPv6.
  s = with_ifaces();
  s.interfaces[1].mtu = 0;
  EXPECT_EQ(first(s, 1, 1000),
            "interfaces[0].mtu: 0 (the dataplane's --mtu 1000) is below IPv6's minimum MTU 1280 and "
            "the interface carries IPv6 (see interfaces[0].addresses[1])");
  s.interfaces[0].addresses.pop_back();
  EXPECT_EQ(first(s, 1, 1000),
            "interfaces[0].mtu: 0 (the dataplane's --mtu 1000) is below IPv6's minimum MTU 1280 and "
            "the interface carries IPv6 (see routes[0].interface)");
  s.interfaces[0].mtu = 1000;
  s.routes.erase(s.routes.begin(), s.routes.begin() + 2);  // the v6 routes, on backends
  s.interfaces[1].addresses.pop_back();
  EXPECT_EQ(first(s, 1, 1000), "");  // IPv4 only
  // Without interfaces, routes and neighbours name ports (the implicit interfaces).
  s = dual_stack();
  EXPECT_EQ(first(s, 1, 1500), "");
  s.routes[1].iface = 1;
  EXPECT_EQ(first(s, 2, 1500), "");
  EXPECT_EQ(first(s, 1, 1500),
            "routes[1].interface: 1 is not a port of the dataplane (it has port 0; without "
            "interfaces, the interface is the port's untagged one, id = port)");
  s.routes[1].iface = 0;
  s.neighbours[0].iface = 3;
  EXPECT_EQ(first(s, 2, 1500),
            "neighbours[0].interface: 3 is not a port of the dataplane (its ports are 0-1; "
            "without interfaces, the interface is the port's untagged one, id = port)");
}

// ---- hostile JSON ----

std::string nested(size_t levels) { return std::string(levels, '[') + std::string(levels, ']'); }

TEST(JsonInput, DepthIsCheckedWithoutRecursion) {
  EXPECT_EQ(check_json_depth(nested(kMaxJsonDepth)), "");
  EXPECT_NE(check_json_depth(nested(kMaxJsonDepth + 1)), "");
  EXPECT_NE(check_json_depth(nested(500'000)), "");
  // Brackets inside strings (escaped quotes too) do not count.
  EXPECT_EQ(check_json_depth(R"({"a": "[[[[\"[[[[", "b": [1]})", 2), "");
  EXPECT_NE(check_json_depth(R"({"a": [[1]]})", 2), "");
}

TEST(JsonInput, ErrorsDescribeValuesWithoutDumpingThem) {
  EXPECT_EQ(describe_json(json::parse(nested(10))), "a list");
  EXPECT_EQ(describe_json(json::parse(R"({"x": 1})")), "an object");
  EXPECT_EQ(describe_json(json("80")), "\"80\"");
  EXPECT_EQ(describe_json(json(std::string(100, 'a'))), "a string of 100 bytes");
  EXPECT_EQ(describe_json(json(-3)), "-3");
}

TEST(JsonInput, DeeplyNestedApiLineGetsAnErrorAndTheServerKeepsServing) {
  auto dp = std::make_shared<testing::FakeDataplane>();
  ControlPlaneOptions o;
  o.apply_timeout = std::chrono::milliseconds(0);
  auto path = std::string("/tmp/rondo-validate-XXXXXX");
  ASSERT_NE(mkdtemp(path.data()), nullptr);
  o.config_path = path + "/rondo.yaml";
  FILE* f = std::fopen(o.config_path.c_str(), "w");
  std::fputs(test::kTwoVipsConfig, f);
  std::fclose(f);
  ControlPlane cp(std::make_unique<testing::FakeDataplaneClient>(dp), o);
  ASSERT_TRUE(cp.start().ok);
  // 500k levels of the wrong type for "port", under the 1 MiB line limit: main at 0f445ba
  // dumped it into the error message and overflowed the stack.
  const std::string line = R"({"cmd": "backend.add", "vip": "web", "address": "198.51.100.3", "port": )" +
                           nested(500'000) + "}";
  ASSERT_LT(line.size(), 1u << 20);
  const json reply = json::parse(handle_request(cp, line, "test"));
  EXPECT_EQ(reply["ok"], false);
  EXPECT_EQ(reply["code"], "invalid");
  EXPECT_NE(reply["error"].get<std::string>().find("nested deeper than"), std::string::npos);
  // Shallow, but the wrong type: the error names the field and the type, not the value.
  const json typed = json::parse(handle_request(
      cp, R"({"cmd": "backend.add", "vip": "web", "address": "198.51.100.3", "port": [[1]]})", "t"));
  EXPECT_EQ(typed["error"], "a list is not a port (1-65535) (backend.add: field \"port\")");
  const json status = json::parse(handle_request(cp, R"({"cmd": "status"})", "test"));
  EXPECT_EQ(status["ok"], true);
  std::remove(o.config_path.c_str());
  ::rmdir(path.c_str());
}

TEST(JsonInput, DeeplyNestedStateFileIsRefused) {
  auto r = decode_state_file(R"({"format": "rondo-state/1", "vips": )" + nested(500'000) + "}");
  ASSERT_TRUE(std::holds_alternative<std::string>(r));
  EXPECT_NE(std::get<std::string>(r).find("nested deeper than"), std::string::npos);
}

}  // namespace
}  // namespace rondo::cp

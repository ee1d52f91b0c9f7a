// The seed scenario's addresses, as the in-process tests use them: one client, one backend
// host with HTTP on 3000-3003 and UDP on 4000-4003 behind VIP 203.0.113.10, a second VIP
// whose only backend has no static neighbour entry (it must be resolved by ARP), and
// rondo's local (full-NAT source) address.
#pragma once

#include <cstring>

#include "dataplane/api/ctl.h"
#include "tests/common/packet_builder.h"

namespace rondo::test::seed {

inline const Mac kClientMac{0x02, 0xc1, 0, 0, 0, 0x02};
inline const Mac kBackendMac{0x02, 0xbe, 0, 0, 0, 0x03};
inline const Mac kLateMac{0x02, 0xbe, 0, 0, 0, 0x09};
inline const Mac kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
inline const uint32_t kClient = ip4("198.51.100.2");
inline const uint32_t kBackend = ip4("198.51.100.3");
inline const uint32_t kLateBackend = ip4("198.51.100.9");  // not a static neighbour
inline const uint32_t kLocal = ip4("198.51.100.100");
inline const uint32_t kVip = ip4("203.0.113.10");
inline const uint32_t kVip2 = ip4("203.0.113.20");

// IPv6 (the e2e topology's addresses, tools/lib/topo.sh --v6): client and backend host on
// 2001:db8:100::/64 with rondo's local ip, the VIPs on 2001:db8::/64 (on-link for the client).
inline const Ip16 kClient6 = ip6("2001:db8:100::2");
inline const Ip16 kBackend6 = ip6("2001:db8:100::3");
inline const Ip16 kLocal6 = ip6("2001:db8:100::100");
inline const Ip16 kVip6 = ip6("2001:db8::10");

inline api::Addr addr6(const Ip16& a) {
  api::Addr x;
  std::memcpy(x.b.data(), a.data(), 16);
  return x;
}

/// web: VIP:80/tcp -> backend :3000-3003 (ids 0-3); dns: VIP:53/udp -> :4000-4003 (ids
/// 4-7), unless `with_dns` is false; late: VIP2:80/tcp -> late backend :8080 (id 9).
inline api::State state(bool with_dns = true) {
  api::State s;
  s.generation = 1;
  api::Vip web;
  web.id = 0;
  web.ip = api::Addr::from_v4(kVip);
  web.port = 80;
  for (uint16_t i = 0; i < 4; ++i) web.backends.push_back({i, api::Addr::from_v4(kBackend), uint16_t(3000 + i), 1});
  s.vips.push_back(web);
  if (with_dns) {
    api::Vip dns;
    dns.id = 1;
    dns.ip = api::Addr::from_v4(kVip);
    dns.port = 53;
    dns.proto = api::Proto::kUdp;
    for (uint16_t i = 0; i < 4; ++i) dns.backends.push_back({uint32_t(4 + i), api::Addr::from_v4(kBackend), uint16_t(4000 + i), 1});
    s.vips.push_back(dns);
  }
  api::Vip late;
  late.id = 2;
  late.ip = api::Addr::from_v4(kVip2);
  late.port = 80;
  late.backends.push_back({9, api::Addr::from_v4(kLateBackend), 8080, 1});
  s.vips.push_back(late);
  s.local_ips = {api::Addr::from_v4(kLocal)};
  api::Neighbour c{api::Addr::from_v4(kClient), {}, 0}, b{api::Addr::from_v4(kBackend), {}, 0};
  std::memcpy(c.mac, kClientMac.data(), 6);
  std::memcpy(b.mac, kBackendMac.data(), 6);
  s.neighbours = {c, b};
  return s;
}

/// The seed state plus IPv6: web6 [VIP6]:80/tcp -> backend6 :3000-3003 (ids 30-33), dns6
/// [VIP6]:53/udp -> :4000-4003 (ids 34-37), nat46 VIP:8090/tcp -> backend6 :3000 (id 40),
/// nat64 [VIP6]:8091/tcp -> backend :3000 (id 41) (the last two only when `with_nat64`: the
/// first cut's validation refuses mixed families), local ips of both families and static
/// neighbours for the v6 client and backend host.
inline api::State state6(bool with_nat64 = false) {
  api::State s = state();
  api::Vip web6;
  web6.id = 10;
  web6.ip = addr6(kVip6);
  web6.port = 80;
  for (uint16_t i = 0; i < 4; ++i)
    web6.backends.push_back({uint32_t(30 + i), addr6(kBackend6), uint16_t(3000 + i), 1});
  s.vips.push_back(web6);
  api::Vip dns6;
  dns6.id = 11;
  dns6.ip = addr6(kVip6);
  dns6.port = 53;
  dns6.proto = api::Proto::kUdp;
  for (uint16_t i = 0; i < 4; ++i)
    dns6.backends.push_back({uint32_t(34 + i), addr6(kBackend6), uint16_t(4000 + i), 1});
  s.vips.push_back(dns6);
  if (with_nat64) {
    api::Vip n46;
    n46.id = 12;
    n46.ip = api::Addr::from_v4(kVip);
    n46.port = 8090;
    n46.backends.push_back({40, addr6(kBackend6), 3000, 1});
    s.vips.push_back(n46);
    api::Vip n64;
    n64.id = 13;
    n64.ip = addr6(kVip6);
    n64.port = 8091;
    n64.backends.push_back({41, api::Addr::from_v4(kBackend), 3000, 1});
    s.vips.push_back(n64);
  }
  s.local_ips.push_back(addr6(kLocal6));
  api::Neighbour c{addr6(kClient6), {}, 0}, b{addr6(kBackend6), {}, 0};
  std::memcpy(c.mac, kClientMac.data(), 6);
  std::memcpy(b.mac, kBackendMac.data(), 6);
  s.neighbours.push_back(c);
  s.neighbours.push_back(b);
  return s;
}

// Interfaces (a port + an optional VLAN): the clients on VLAN 100 of port 0, in
// 192.0.2.0/24 and 2001:db8:200::/64, the backend hosts untagged on port 0 (jumbo frames).
inline const uint32_t kClientV4 = ip4("192.0.2.2");
inline const Ip16 kClientV6 = ip6("2001:db8:200::2");
inline const uint32_t kClientsAddr = ip4("192.0.2.1");       // rondo's on the clients VLAN
inline const Ip16 kClientsAddr6 = ip6("2001:db8:200::1");
inline const uint32_t kBackendsAddr = ip4("198.51.100.254");  // rondo's on the backends link
constexpr uint16_t kClientsVid = 100;
constexpr uint16_t kIfBackends = 0, kIfClients = 1;  // interface ids
constexpr uint32_t kClientsMtu = 1500, kBackendsMtu = 9000;

/// The DSR VIPs (docs/modes.md) on VIP:8080-8087, each with one backend on the backend host
/// at the VIP's port (ids 20-27): 8080 ipip, 8081 gue, 8082 l2dsr (tcp); 8083 ipip (udp);
/// 8084 ipip with maglev (mid-flow packets are forwarded); 8085 ipip whose backend is down
/// with on_all_down open, 8086 the same with drop; 8087 gue (udp).
constexpr uint16_t kIpipPort = 8080, kGuePort = 8081, kL2Port = 8082, kIpipUdpPort = 8083,
                   kMaglevPort = 8084, kOpenPort = 8085, kDropPort = 8086, kGueUdpPort = 8087;
inline api::State with_dsr(api::State s) {
  struct Row {
    uint16_t port;
    api::Mode mode;
    api::Proto proto;
    api::Sched sched;
    bool down;
    api::OnAllDown all_down;
  };
  using M = api::Mode;
  using P = api::Proto;
  using S = api::Sched;
  using D = api::OnAllDown;
  const Row rows[] = {
      {kIpipPort, M::kIpip, P::kTcp, S::kRoundRobin, false, D::kDrop},
      {kGuePort, M::kGue, P::kTcp, S::kRoundRobin, false, D::kDrop},
      {kL2Port, M::kL2Dsr, P::kTcp, S::kRoundRobin, false, D::kDrop},
      {kIpipUdpPort, M::kIpip, P::kUdp, S::kRoundRobin, false, D::kDrop},
      {kMaglevPort, M::kIpip, P::kTcp, S::kMaglev, false, D::kDrop},
      {kOpenPort, M::kIpip, P::kTcp, S::kRoundRobin, true, D::kOpen},
      {kDropPort, M::kIpip, P::kTcp, S::kRoundRobin, true, D::kDrop},
      {kGueUdpPort, M::kGue, P::kUdp, S::kRoundRobin, false, D::kDrop},
  };
  uint32_t id = 3;
  for (const Row& r : rows) {
    api::Vip v;
    v.id = id;
    v.ip = api::Addr::from_v4(kVip);
    v.port = r.port;
    v.proto = r.proto;
    v.mode = r.mode;
    v.sched = r.sched;
    v.on_all_down = r.all_down;
    api::Backend b{17 + id, api::Addr::from_v4(kBackend), r.port, 1};
    b.down = r.down;
    v.backends.push_back(b);
    s.vips.push_back(v);
    ++id;
  }
  return s;
}

/// The dual-stack seed (state6(true): NAT46/64 too) and its DSR VIPs, over two interfaces:
/// backends (id 0: port 0 untagged, 198.51.100.254/24, mtu 9000) and clients (id 1: port 0
/// VLAN 100, 192.0.2.1/24 and 2001:db8:200::1/64, mtu 1500). Routes name them (the clients'
/// subnets on clients, the backends' on backends); the static neighbours are the clients
/// (kClientV4, kClientV6) on clients and the backend host (both families) and the old seed
/// client (kClient) on backends. Runs with --mtu 9000.
inline api::State state_vlan() {
  api::State s = with_dsr(state6(true));
  // with_dsr numbers its VIPs 3-10, state6 its own 10-13: one id each, by position.
  for (size_t i = 0; i < s.vips.size(); ++i) s.vips[i].id = static_cast<uint32_t>(i);
  api::Interface backends;
  backends.id = kIfBackends;
  backends.name = "backends";
  backends.port_id = 0;
  backends.mtu = kBackendsMtu;
  backends.addresses = {{api::Addr::from_v4(kBackendsAddr), 24}};
  api::Interface clients;
  clients.id = kIfClients;
  clients.name = "clients";
  clients.port_id = 0;
  clients.vlan = kClientsVid;
  clients.mtu = kClientsMtu;
  clients.addresses = {{api::Addr::from_v4(kClientsAddr), 24}, {addr6(kClientsAddr6), 64}};
  s.interfaces = {backends, clients};
  auto route = [](api::Addr prefix, uint8_t len, uint16_t iface) {
    api::Route r;
    r.prefix = prefix;
    r.prefix_len = len;
    r.iface = iface;
    return r;
  };
  s.routes = {route(api::Addr::from_v4(ip4("192.0.2.0")), 24, kIfClients),
              route(api::Addr::from_v4(ip4("198.51.100.0")), 24, kIfBackends),
              route(addr6(ip6("2001:db8:200::")), 64, kIfClients),
              route(addr6(ip6("2001:db8:100::")), 64, kIfBackends)};
  auto neighbour = [](api::Addr ip, const Mac& mac, uint16_t iface) {
    api::Neighbour n;
    n.ip = ip;
    std::memcpy(n.mac, mac.data(), 6);
    n.iface = iface;
    return n;
  };
  s.neighbours = {neighbour(api::Addr::from_v4(kClientV4), kClientMac, kIfClients),
                  neighbour(addr6(kClientV6), kClientMac, kIfClients),
                  neighbour(api::Addr::from_v4(kBackend), kBackendMac, kIfBackends),
                  neighbour(addr6(kBackend6), kBackendMac, kIfBackends),
                  neighbour(api::Addr::from_v4(kClient), kClientMac, kIfBackends)};
  return s;
}

}  // namespace rondo::test::seed

// The snapshot's interfaces (state/snapshot.h, decisions 1, 2, 4 and 8 of the VLAN plan): the
// implicit ones when the state declares none, classify's (port, VID) table, each interface's
// MTU and addresses, the smallest MTU, and the routes its addresses add: a connected route
// per subnet unless an explicit route has that prefix, and everything else on-link on the
// first interface while no explicit route of the family exists.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "dataplane/state/snapshot.h"
#include "tests/common/seed_topology.h"

namespace rondo::dp {
namespace {

using test::ip4;
using test::ip6;
using namespace test::seed;

api::Addr a4(const char* s) { return api::Addr::from_v4(ip4(s)); }
api::Addr a6(const char* s) { return addr6(ip6(s)); }
Ip6 v6(const char* s) {
  const test::Ip16 a = ip6(s);
  return Ip6::from(a.data());
}

api::Interface iface(uint16_t id, const char* name, uint16_t port, uint16_t vlan, uint32_t mtu,
                     std::vector<api::Prefix> addresses = {}) {
  api::Interface i;
  i.id = id;
  i.name = name;
  i.port_id = port;
  i.vlan = vlan;
  i.mtu = mtu;
  i.addresses = std::move(addresses);
  return i;
}

api::Route route(api::Addr prefix, uint8_t len, uint16_t iface, api::Addr via = {}) {
  api::Route r;
  r.prefix = prefix;
  r.prefix_len = len;
  r.iface = iface;
  r.via = via;
  return r;
}

// Where a v4 destination goes: {interface, next hop}, or {kNoIface, 0} without a route.
std::pair<uint16_t, uint32_t> to(const Snapshot& s, const char* dst) {
  uint16_t i = 0xeeee;
  uint32_t nh = 0;
  if (!s.route(htonl(ip4(dst)), &i, &nh)) return {kNoIface, 0};
  return {i, nh};
}
std::pair<uint16_t, Ip6> to6(const Snapshot& s, const char* dst) {
  uint16_t i = 0xeeee;
  Ip6 nh;
  if (!s.route6(v6(dst), &i, &nh)) return {kNoIface, Ip6{}};
  return {i, nh};
}
uint32_t n4(const char* s) { return htonl(ip4(s)); }

SnapshotParams params(uint16_t n_ports, uint32_t mtu) {
  SnapshotParams p;
  p.n_ports = n_ports;
  p.default_mtu = mtu;
  return p;
}

// No interfaces in the state: one untagged interface per port, id = port id, --mtu, and
// routing as before (everything on-link on port 0 without routes).
TEST(SnapshotIfaces, ImplicitOnePerPort) {
  const auto s = build_snapshot(state(), params(3, 1400));
  ASSERT_EQ(s->ifaces.size(), 3u);
  ASSERT_EQ(s->port_ifaces.size(), 3u);
  for (uint16_t port = 0; port < 3; ++port) {
    EXPECT_TRUE(s->ifaces[port].in_use);
    EXPECT_EQ(s->ifaces[port].port, port);
    EXPECT_FALSE(s->ifaces[port].tagged);
    EXPECT_EQ(s->ifaces[port].mtu, 1400u);
    EXPECT_TRUE(s->ifaces[port].addrs.empty());
    EXPECT_EQ(s->iface_of(port, 0), port);
    EXPECT_EQ(s->iface_of(port, 100), kNoIface);  // a tag names no implicit interface
  }
  EXPECT_EQ(s->min_mtu, 1400u);
  EXPECT_EQ(s->first_iface, 0);
  EXPECT_TRUE(s->routes.empty());
  EXPECT_EQ(to(*s, "8.8.8.8"), std::pair(uint16_t{0}, n4("8.8.8.8")));
  EXPECT_EQ(to6(*s, "2001:db8:9::1"), std::pair(uint16_t{0}, v6("2001:db8:9::1")));
}

// Classify's table: the untagged interface of each port, the tagged ones by VID; VID 0 (a
// priority tag) is untagged; a port without tagged interfaces has no table.
TEST(SnapshotIfaces, PortAndVidNameOneInterface) {
  api::State st = state();
  st.interfaces = {iface(7, "uplink", 0, 0, 0), iface(3, "clients", 0, 100, 1500),
                   iface(200, "dmz", 0, 4094, 0), iface(9, "storage", 1, 200, 9000)};
  const auto s = build_snapshot(st, params(3, 9000));
  EXPECT_EQ(s->iface_of(0, 0), 7);
  EXPECT_EQ(s->iface_of(0, 100), 3);
  EXPECT_EQ(s->iface_of(0, 4094), 200);
  EXPECT_EQ(s->iface_of(0, 101), kNoIface);
  EXPECT_EQ(s->iface_of(0, 4095), kNoIface);
  EXPECT_EQ(s->iface_of(1, 200), 9);
  EXPECT_EQ(s->iface_of(1, 0), kNoIface);  // port 1 has no untagged interface
  EXPECT_EQ(s->iface_of(1, 100), kNoIface);  // VLAN 100 is port 0's
  EXPECT_EQ(s->iface_of(2, 0), kNoIface);  // a port without interfaces
  EXPECT_EQ(s->port_ifaces[2].by_vid, nullptr);
  EXPECT_EQ(s->port_ifaces[2].untagged, kNoIface);
  // Indexed by id, with holes.
  ASSERT_EQ(s->ifaces.size(), 201u);
  EXPECT_FALSE(s->ifaces[0].in_use);
  EXPECT_FALSE(s->ifaces[8].in_use);
  const IfaceConf& clients = s->ifaces[3];
  EXPECT_TRUE(clients.in_use);
  EXPECT_TRUE(clients.tagged);
  EXPECT_EQ(clients.tci, htons(100));
  EXPECT_EQ(clients.port, 0);
  EXPECT_EQ(s->ifaces[200].tci, htons(4094));
  EXPECT_FALSE(s->ifaces[7].tagged);
  EXPECT_EQ(s->ifaces[9].port, 1);
  // MTUs: their own, or --mtu; the smallest of all.
  EXPECT_EQ(clients.mtu, 1500u);
  EXPECT_EQ(s->ifaces[7].mtu, 9000u);
  EXPECT_EQ(s->min_mtu, 1500u);
  // The first interface in the state is where routes fall back to.
  EXPECT_EQ(s->first_iface, 7);
  EXPECT_EQ(to(*s, "8.8.8.8").first, 7);
}

TEST(SnapshotIfaces, AddressesAreTheInterfacesOwn) {
  const auto s = build_snapshot(state_vlan(), params(1, 9000));
  const IfaceConf& clients = s->ifaces[kIfClients];
  ASSERT_EQ(clients.addrs.size(), 1u);
  EXPECT_EQ(clients.addrs[0], htonl(kClientsAddr));
  EXPECT_EQ(clients.addr_lens[0], 24);
  ASSERT_EQ(clients.addrs6.size(), 1u);
  EXPECT_EQ(clients.addrs6[0], Ip6::from(kClientsAddr6.data()));
  EXPECT_EQ(clients.addr_lens6[0], 64);
  EXPECT_TRUE(s->is_iface_ip(kIfClients, htonl(kClientsAddr)));
  EXPECT_FALSE(s->is_iface_ip(kIfBackends, htonl(kClientsAddr)));  // the other interface's
  EXPECT_TRUE(s->is_iface_ip(kIfBackends, htonl(kBackendsAddr)));
  EXPECT_TRUE(s->is_iface_ip6(kIfClients, Ip6::from(kClientsAddr6.data())));
  EXPECT_FALSE(s->is_iface_ip6(kIfBackends, Ip6::from(kClientsAddr6.data())));
  EXPECT_FALSE(s->is_iface_ip(kIfClients, htonl(kLocal)));  // local ips are global
  EXPECT_EQ(s->min_mtu, kClientsMtu);
  EXPECT_EQ(s->ifaces[kIfBackends].mtu, kBackendsMtu);
}

// Interface addresses without explicit routes: each subnet on-link on its interface, the
// rest on-link on the first interface (the implicit default), per family.
TEST(SnapshotIfaces, ConnectedRoutesAndTheImplicitDefault) {
  api::State st = state();
  st.neighbours.clear();
  st.interfaces = {iface(4, "backends", 0, 0, 0, {{a4("198.51.100.254"), 24}}),
                   iface(5, "clients", 0, 100, 0, {{a4("192.0.2.1"), 24}, {a6("2001:db8:200::1"), 64}}),
                   iface(6, "mgmt", 1, 0, 0, {{a4("10.9.0.1"), 32}})};
  const auto s = build_snapshot(st, params(2, 1500));
  EXPECT_EQ(to(*s, "192.0.2.77"), std::pair(uint16_t{5}, n4("192.0.2.77")));
  EXPECT_EQ(to(*s, "198.51.100.3"), std::pair(uint16_t{4}, n4("198.51.100.3")));
  EXPECT_EQ(to(*s, "203.0.113.99"), std::pair(uint16_t{4}, n4("203.0.113.99")));  // default
  // A /32 is the interface's address only: no subnet, no route of its own.
  EXPECT_EQ(to(*s, "10.9.0.2").first, 4);
  // The two subnets and the implicit default; nothing else.
  EXPECT_EQ(s->routes.size(), 3u);
  // v6: the clients' /64 on clients, everything else on the first interface.
  EXPECT_EQ(to6(*s, "2001:db8:200::9"), std::pair(uint16_t{5}, v6("2001:db8:200::9")));
  EXPECT_EQ(to6(*s, "2001:db8:100::3"), std::pair(uint16_t{4}, v6("2001:db8:100::3")));
  EXPECT_EQ(s->routes6.size(), 2u);
}

// Explicit routes of a family: no implicit default for it (a miss is no route, as before),
// connected routes still add their subnets, and an explicit route of the same prefix wins.
TEST(SnapshotIfaces, ExplicitRoutesWin) {
  api::State st = state();
  st.neighbours.clear();
  st.interfaces = {iface(0, "backends", 0, 0, 0, {{a4("198.51.100.254"), 24}}),
                   iface(1, "clients", 0, 100, 0, {{a4("192.0.2.1"), 24}, {a6("2001:db8:200::1"), 64}}),
                   iface(2, "other", 1, 0, 0, {{a4("10.1.0.1"), 16}})};
  // The clients' /24 explicitly through a router on the backends' link; a /8 on "other".
  st.routes = {route(a4("192.0.2.0"), 24, 0, a4("198.51.100.1")), route(a4("10.0.0.0"), 8, 2)};
  const auto s = build_snapshot(st, params(2, 1500));
  EXPECT_EQ(to(*s, "192.0.2.77"), std::pair(uint16_t{0}, n4("198.51.100.1")));  // explicit
  EXPECT_EQ(to(*s, "198.51.100.3"), std::pair(uint16_t{0}, n4("198.51.100.3")));  // connected
  EXPECT_EQ(to(*s, "10.1.2.3"), std::pair(uint16_t{2}, n4("10.1.2.3")));  // connected /16
  EXPECT_EQ(to(*s, "10.2.0.1"), std::pair(uint16_t{2}, n4("10.2.0.1")));  // explicit /8
  EXPECT_EQ(to(*s, "8.8.8.8").first, kNoIface);  // explicit v4 routes: no implicit default
  EXPECT_EQ(s->routes.size(), 4u);  // 2 explicit + 198.51.100.0/24 + 10.1.0.0/16
  // No explicit v6 route: the v6 side keeps its implicit default.
  EXPECT_EQ(to6(*s, "2001:db8:9::1"), std::pair(uint16_t{0}, v6("2001:db8:9::1")));
  EXPECT_EQ(to6(*s, "2001:db8:200::5").first, 1);
  // An explicit v6 default via a router: the connected /64 stays on-link beside it.
  st.routes.push_back(route(a6("::"), 0, 0, a6("fe80::1")));
  const auto s6 = build_snapshot(st, params(2, 1500));
  EXPECT_EQ(to6(*s6, "2001:db8:9::1"), std::pair(uint16_t{0}, v6("fe80::1")));
  EXPECT_EQ(to6(*s6, "2001:db8:200::5"), std::pair(uint16_t{1}, v6("2001:db8:200::5")));
  EXPECT_EQ(s6->routes6.size(), 2u);
}

// The seed over VLANs: every route explicit (the connected ones are the same prefixes), so
// the routes are exactly the state's.
TEST(SnapshotIfaces, SeedVlanRoutesAreTheExplicitOnes) {
  const auto s = build_snapshot(state_vlan(), params(1, 9000));
  EXPECT_EQ(s->routes.size(), 2u);
  EXPECT_EQ(s->routes6.size(), 2u);
  EXPECT_EQ(to(*s, "192.0.2.2").first, kIfClients);
  EXPECT_EQ(to(*s, "198.51.100.3").first, kIfBackends);
  EXPECT_EQ(to(*s, "203.0.113.50").first, kNoIface);
  EXPECT_EQ(to6(*s, "2001:db8:200::2").first, kIfClients);
  EXPECT_EQ(to6(*s, "2001:db8:100::3").first, kIfBackends);
  EXPECT_EQ(s->iface_of(0, kClientsVid), kIfClients);
  EXPECT_EQ(s->iface_of(0, 0), kIfBackends);
}

}  // namespace
}  // namespace rondo::dp

// Integration: routes in an rte_lpm (route/route4.h) answer as a linear scan of the same routes,
// longest prefix first, does. rte_lpm needs a running EAL (--no-huge here), hence not a unit test.
#include <gtest/gtest.h>
#include <arpa/inet.h>

#include <memory>
#include <random>
#include <vector>

#include "dataplane/route/route4.h"
#include "dataplane/state/snapshot.h"
#include "tests/common/ring_dataplane.h"

namespace rondo {
namespace {

using dp::RouteConf;
using dp::Route4Table;
using test::ip4;

RouteConf route(uint32_t prefix, uint8_t len, uint16_t port, uint32_t via = 0) {
  RouteConf r;
  r.len = len;
  r.mask = len ? htonl(~0u << (32 - len)) : 0;
  r.prefix = htonl(prefix) & r.mask;
  r.iface = port;
  r.via = htonl(via);
  return r;
}

// The oracle: what Snapshot::route did before rte_lpm, a scan of every route, the longest
// matching prefix wins (prefixes are unique: api::validate_state).
const RouteConf* oracle(const std::vector<RouteConf>& routes, uint32_t dst) {
  const RouteConf* best = nullptr;
  for (const auto& r : routes)
    if ((dst & r.mask) == r.prefix && (!best || r.len > best->len)) best = &r;
  return best;
}

// Overlapping prefixes of every length in a few regions, so that random addresses there hit
// /8 inside /4 inside /0, /16 inside /8, /25 and /32 inside /24 (rte_lpm's tbl8 case), and misses.
std::vector<RouteConf> overlapping(std::mt19937& rng, bool with_default) {
  std::vector<RouteConf> out;
  std::vector<std::pair<uint32_t, uint8_t>> seen;
  auto add = [&](uint32_t prefix, uint8_t len) {
    const uint32_t mask = len ? ~0u << (32 - len) : 0;
    prefix &= mask;
    for (auto& s : seen)
      if (s.first == prefix && s.second == len) return;
    seen.push_back({prefix, len});
    out.push_back(route(prefix, len, static_cast<uint16_t>(out.size() % 4),
                        rng() % 2 ? ip4("198.51.100.1") + static_cast<uint32_t>(out.size()) : 0));
  };
  if (with_default) add(0, 0);
  for (uint32_t region : {ip4("10.0.0.0"), ip4("172.16.0.0"), ip4("192.168.0.0")})
    for (int i = 0; i < 40; ++i) {
      const auto len = static_cast<uint8_t>(4 + rng() % 29);  // /4-/32: room for misses
      // Mostly inside the region's /12, so the prefixes nest.
      add(region | (rng() & 0x000fffffu), len);
    }
  return out;
}

uint32_t random_dst(std::mt19937& rng, const std::vector<RouteConf>& routes) {
  if (rng() % 4 == 0) return rng();  // anywhere
  const RouteConf& r = routes[rng() % routes.size()];  // near a prefix: inside it or beside it
  uint32_t dst = r.prefix | (static_cast<uint32_t>(rng()) & ~r.mask);
  if (rng() % 8 == 0) dst ^= htonl(1u << (rng() % 32));
  return dst;
}

class Routes : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(test::init_eal()); }
};

TEST_F(Routes, LpmAnswersAsTheLinearScan) {
  std::mt19937 rng(9);
  for (int round = 0; round < 6; ++round) {
    const auto routes = overlapping(rng, round % 2 == 0);
    Route4Table lpm, scan;
    lpm.build(routes, true);
    scan.build(routes, false);
    ASSERT_TRUE(lpm.uses_lpm()) << lpm.lpm_error();
    EXPECT_FALSE(scan.uses_lpm());
    int hits = 0, misses = 0;
    for (int i = 0; i < 20000; ++i) {
      const uint32_t dst = random_dst(rng, routes);
      const RouteConf* want = oracle(routes, dst);
      const RouteConf* got = lpm.lookup(dst);
      const RouteConf* scanned = scan.lookup(dst);
      SCOPED_TRACE(std::to_string(round) + ": " + std::to_string(ntohl(dst)));
      if (!want) {
        ++misses;
        EXPECT_EQ(got, nullptr);
        EXPECT_EQ(scanned, nullptr);
        continue;
      }
      ++hits;
      ASSERT_NE(got, nullptr);
      ASSERT_NE(scanned, nullptr);
      EXPECT_EQ(got->prefix, want->prefix);
      EXPECT_EQ(got->len, want->len);
      EXPECT_EQ(got->iface, want->iface);
      EXPECT_EQ(got->via, want->via);
      EXPECT_EQ(scanned->prefix, want->prefix);
      EXPECT_EQ(scanned->len, want->len);
    }
    // Both kinds of answer were exercised (misses only where there is no default).
    EXPECT_GT(hits, 1000);
    if (round % 2) {
      EXPECT_GT(misses, 100);
    }
  }
}

TEST_F(Routes, SnapshotRouteSemantics) {
  api::State s;
  dp::SnapshotParams p;
  p.route_lpm = true;
  uint16_t port;
  uint32_t nh;
  // No routes: everything on-link on port 0, and no rte_lpm.
  auto snap = dp::build_snapshot(s, p);
  EXPECT_FALSE(snap->routes.uses_lpm());
  ASSERT_TRUE(snap->route(htonl(ip4("203.0.113.7")), &port, &nh));
  EXPECT_EQ(port, 0);
  EXPECT_EQ(nh, htonl(ip4("203.0.113.7")));
  // Only a default route: no table to look up either (rte_lpm takes depths 1-32).
  s.routes = {{api::Addr::from_v4(0), 0, 1, api::Addr::from_v4(ip4("198.51.100.1"))}};
  snap = dp::build_snapshot(s, p);
  EXPECT_FALSE(snap->routes.uses_lpm());
  ASSERT_TRUE(snap->route(htonl(ip4("203.0.113.7")), &port, &nh));
  EXPECT_EQ(port, 1);
  EXPECT_EQ(nh, htonl(ip4("198.51.100.1")));
  // An on-link /24, a /25 via a gateway inside it and the default.
  s.routes.push_back({api::Addr::from_v4(ip4("192.0.2.0")), 24, 2, {}});
  s.routes.push_back({api::Addr::from_v4(ip4("192.0.2.128")), 25, 3, api::Addr::from_v4(ip4("192.0.2.1"))});
  snap = dp::build_snapshot(s, p);
  ASSERT_TRUE(snap->routes.uses_lpm()) << snap->routes.lpm_error();
  ASSERT_TRUE(snap->route(htonl(ip4("192.0.2.5")), &port, &nh));
  EXPECT_EQ(port, 2);
  EXPECT_EQ(nh, htonl(ip4("192.0.2.5")));
  ASSERT_TRUE(snap->route(htonl(ip4("192.0.2.200")), &port, &nh));
  EXPECT_EQ(port, 3);
  EXPECT_EQ(nh, htonl(ip4("192.0.2.1")));
  ASSERT_TRUE(snap->route(htonl(ip4("8.8.8.8")), &port, &nh));
  EXPECT_EQ(port, 1);
  EXPECT_EQ(nh, htonl(ip4("198.51.100.1")));
  // Without the default, an address outside every prefix has no route.
  s.routes.erase(s.routes.begin());
  snap = dp::build_snapshot(s, p);
  EXPECT_FALSE(snap->route(htonl(ip4("8.8.8.8")), &port, &nh));
}

// Interfaces' connected routes and the implicit default (decision 2 of the VLAN plan) go
// through the rte_lpm/rte_lpm6 like explicit routes: the same answers as the scan.
TEST_F(Routes, InterfaceSubnetsInTheLpmAnswerAsTheScan) {
  api::State s;
  auto itf = [](uint16_t id, const char* name, uint16_t vlan, std::vector<api::Prefix> a) {
    api::Interface i;
    i.id = id;
    i.name = name;
    i.vlan = vlan;
    i.addresses = std::move(a);
    return i;
  };
  const api::Addr v6a = *api::parse_addr("2001:db8:200::1");
  s.interfaces = {itf(3, "backends", 0, {{api::Addr::from_v4(ip4("198.51.100.254")), 24}}),
                  itf(8, "clients", 100, {{api::Addr::from_v4(ip4("192.0.2.1")), 25}, {v6a, 64}})};
  dp::SnapshotParams lpm;
  lpm.route_lpm = true;
  const auto with = dp::build_snapshot(s, lpm);
  const auto without = dp::build_snapshot(s, dp::SnapshotParams{});
  ASSERT_TRUE(with->routes.uses_lpm()) << with->routes.lpm_error();
  ASSERT_TRUE(with->routes6.uses_lpm()) << with->routes6.lpm_error();
  EXPECT_FALSE(without->routes.uses_lpm());
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    // Around the two subnets and anywhere.
    uint32_t dst = rng();
    if (i % 3 == 0) dst = htonl(ip4("192.0.2.0") | (rng() & 0xff));
    if (i % 3 == 1) dst = htonl(ip4("198.51.100.0") | (rng() & 0x1ff));
    uint16_t a = 0, b = 0;
    uint32_t na = 0, nb = 0;
    ASSERT_TRUE(with->route(dst, &a, &na));  // the implicit default: never a miss
    ASSERT_TRUE(without->route(dst, &b, &nb));
    EXPECT_EQ(a, b);
    EXPECT_EQ(na, nb);
    EXPECT_EQ(na, dst);  // all on-link
    const uint32_t host = ntohl(dst);
    const uint16_t want = (host >> 7) == (ip4("192.0.2.0") >> 7) ? 8 : 3;
    EXPECT_EQ(a, want) << std::hex << host;
  }
  dp::Ip6 d6 = dp::Ip6::from(v6a.b.data());
  for (int i = 0; i < 2000; ++i) {
    d6.b[7] = static_cast<uint8_t>(i % 3 ? 0 : rng());  // inside 2001:db8:200::/64, or beside it
    d6.b[15] = static_cast<uint8_t>(rng());
    uint16_t a = 0, b = 0;
    dp::Ip6 na, nb;
    ASSERT_TRUE(with->route6(d6, &a, &na));
    ASSERT_TRUE(without->route6(d6, &b, &nb));
    EXPECT_EQ(a, b);
    EXPECT_EQ(a, d6.b[7] == 0 ? 8 : 3);
    EXPECT_EQ(na, d6);
  }
}

// Two snapshots live at once (the old one until the workers are quiescent), each with its own
// rte_lpm, and each table goes with its snapshot: 40 builds of a 64 MB table fit the test's
// 512 MB only if every one is freed.
TEST_F(Routes, EveryLiveTableHasItsOwnLpmAndIsFreed) {
  api::State s;
  s.routes = {{api::Addr::from_v4(ip4("10.0.0.0")), 8, 0, {}}};
  dp::SnapshotParams p;
  p.route_lpm = true;
  auto old = dp::build_snapshot(s, p);
  for (int i = 0; i < 40; ++i) {
    auto next = dp::build_snapshot(s, p);
    ASSERT_TRUE(next->routes.uses_lpm()) << i << ": " << next->routes.lpm_error();
    old = std::move(next);
  }
}

}  // namespace
}  // namespace rondo

// Integration: IPv6 routes in an rte_lpm6 (route/route6.h) answer as the linear scan of the same
// routes, longest prefix first, does; /0 and /128 included. rte_lpm6 needs a running EAL
// (--no-huge -m 512 here, tests/common/ring_dataplane.h), hence not a unit test.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <vector>

#include "dataplane/route/route6.h"
#include "tests/common/ring_dataplane.h"

namespace rondo {
namespace {

using dp::Ip6;
using dp::Route6Table;
using dp::RouteConf6;

Ip6 masked(Ip6 a, uint8_t len) {
  for (int i = 0; i < 16; ++i) {
    const int bits = std::clamp(static_cast<int>(len) - 8 * i, 0, 8);
    a.b[i] &= static_cast<uint8_t>(0xff00u >> bits);
  }
  return a;
}

// The oracle, written independently of Route6Table: every route, bit by bit, longest wins.
const RouteConf6* oracle(const std::vector<RouteConf6>& routes, const Ip6& dst) {
  const RouteConf6* best = nullptr;
  for (const auto& r : routes) {
    bool match = true;
    for (int bit = 0; bit < r.len && match; ++bit)
      match = ((dst.b[bit / 8] ^ r.prefix.b[bit / 8]) >> (7 - bit % 8) & 1) == 0;
    if (match && (!best || r.len > best->len)) best = &r;
  }
  return best;
}

// 1,000 nested prefixes of every length 1-128 in and around a few /16 regions, so that random
// addresses near them hit /128 inside /64 inside /32 inside /0, and misses.
std::vector<RouteConf6> overlapping(std::mt19937& rng, bool with_default, int n) {
  std::vector<RouteConf6> out;
  std::set<std::pair<std::vector<uint8_t>, uint8_t>> seen;
  auto add = [&](Ip6 p, uint8_t len) {
    p = masked(p, len);
    if (!seen.insert({std::vector<uint8_t>(p.b, p.b + 16), len}).second) return;
    RouteConf6 r;
    r.prefix = p;
    r.len = len;
    r.iface = static_cast<uint16_t>(out.size() % 4);
    if (rng() % 2) {
      r.via.b[0] = 0xfe;
      r.via.b[1] = 0x80;
      r.via.b[15] = static_cast<uint8_t>(out.size());
      r.via.b[14] = static_cast<uint8_t>(out.size() >> 8);
    }
    out.push_back(r);
  };
  if (with_default) add(Ip6{}, 0);
  const uint8_t regions[3][2] = {{0x20, 0x01}, {0x26, 0x06}, {0xfd, 0x00}};
  while (static_cast<int>(out.size()) < n) {
    Ip6 p;
    const auto& reg = regions[rng() % 3];
    p.b[0] = reg[0];
    p.b[1] = reg[1];
    // Few distinct values in the upper bytes, so that prefixes nest; random below.
    for (int i = 2; i < 16; ++i) p.b[i] = static_cast<uint8_t>(i < 8 ? rng() % 3 : rng());
    // Mostly /16-/128 inside the regions (addresses elsewhere miss); with a default, some
    // /1-/15 as well, which cover whole swathes of the space.
    uint8_t len = static_cast<uint8_t>(rng() % 4 == 0 ? 128 - rng() % 8 : 16 + rng() % 113);
    if (with_default && rng() % 50 == 0) len = static_cast<uint8_t>(1 + rng() % 15);
    add(p, len);
  }
  return out;
}

Ip6 random_dst(std::mt19937& rng, const std::vector<RouteConf6>& routes) {
  Ip6 d;
  if (rng() % 4 == 0) {  // anywhere
    for (auto& b : d.b) b = static_cast<uint8_t>(rng());
    return d;
  }
  const RouteConf6& r = routes[rng() % routes.size()];  // inside it or just beside it
  for (int i = 0; i < 16; ++i) d.b[i] = static_cast<uint8_t>(rng());
  for (int bit = 0; bit < r.len; ++bit) {
    const uint8_t m = static_cast<uint8_t>(0x80 >> (bit % 8));
    d.b[bit / 8] = static_cast<uint8_t>((d.b[bit / 8] & ~m) | (r.prefix.b[bit / 8] & m));
  }
  if (rng() % 8 == 0) {
    const auto bit = rng() % 128;
    d.b[bit / 8] ^= static_cast<uint8_t>(0x80 >> (bit % 8));
  }
  return d;
}

class Routes6 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(test::init_eal()); }
};

TEST_F(Routes6, LpmAnswersAsTheLinearScan) {
  std::mt19937 rng(11);
  for (int round = 0; round < 4; ++round) {
    const auto routes = overlapping(rng, round % 2 == 0, 1000);
    Route6Table lpm, scan;
    lpm.build(routes, true);
    scan.build(routes, false);
    ASSERT_TRUE(lpm.uses_lpm()) << lpm.lpm_error();
    EXPECT_FALSE(scan.uses_lpm());
    int hits = 0, misses = 0, host = 0;
    for (int i = 0; i < 20000; ++i) {
      const Ip6 dst = random_dst(rng, routes);
      const RouteConf6* want = oracle(routes, dst);
      const RouteConf6* got = lpm.lookup(dst);
      const RouteConf6* scanned = scan.lookup(dst);
      SCOPED_TRACE(std::to_string(round) + ": " + std::to_string(i));
      if (!want) {
        ++misses;
        EXPECT_EQ(got, nullptr);
        EXPECT_EQ(scanned, nullptr);
        continue;
      }
      ++hits;
      host += want->len == 128;
      ASSERT_NE(got, nullptr);
      ASSERT_NE(scanned, nullptr);
      EXPECT_EQ(got->prefix, want->prefix);
      EXPECT_EQ(got->len, want->len);
      EXPECT_EQ(got->iface, want->iface);
      EXPECT_EQ(got->via, want->via);
      EXPECT_EQ(scanned->prefix, want->prefix);
      EXPECT_EQ(scanned->len, want->len);
    }
    EXPECT_GT(hits, 5000);
    EXPECT_GT(host, 50);  // /128s were hit
    if (round % 2) {
      EXPECT_GT(misses, 1000);
    }
  }
}

TEST_F(Routes6, DefaultAndHostRoutesInTheLpm) {
  Ip6 host;
  host.b[0] = 0x20;
  host.b[1] = 0x01;
  host.b[15] = 5;
  RouteConf6 dflt, h;
  dflt.iface = 1;
  dflt.via.b[0] = 0xfe;
  dflt.via.b[1] = 0x80;
  dflt.via.b[15] = 1;
  h.prefix = host;
  h.len = 128;
  h.iface = 2;
  Route6Table t;
  t.build({dflt}, true);
  EXPECT_FALSE(t.uses_lpm());  // /0 only: no 64 MB table for it
  t.build({dflt, h}, true);
  ASSERT_TRUE(t.uses_lpm()) << t.lpm_error();
  uint16_t port;
  Ip6 nh;
  ASSERT_TRUE(t.next_hop(host, &port, &nh));
  EXPECT_EQ(port, 2);
  EXPECT_EQ(nh, host);
  Ip6 beside = host;
  beside.b[15] = 4;
  ASSERT_TRUE(t.next_hop(beside, &port, &nh));
  EXPECT_EQ(port, 1);
  EXPECT_EQ(nh, dflt.via);
}

// Two tables live at once (a snapshot and the one replacing it), each freed with its owner:
// 20 builds of a 64 MB table fit the test's 512 MB only if every one is freed.
TEST_F(Routes6, EveryTableIsFreed) {
  RouteConf6 r;
  r.prefix.b[0] = 0x20;
  r.len = 8;
  auto old = std::make_unique<Route6Table>();
  old->build({r}, true);
  for (int i = 0; i < 20; ++i) {
    auto next = std::make_unique<Route6Table>();
    next->build({r}, true);
    ASSERT_TRUE(next->uses_lpm()) << i << ": " << next->lpm_error();
    old = std::move(next);
  }
}

}  // namespace
}  // namespace rondo

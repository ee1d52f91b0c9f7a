// Route6Table without EAL (the scan; the rte_lpm6 is compared with it in
// tests/integration/route6_test.cpp): /0, /128, the longest match, and next hops.
#include "dataplane/route/route6.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

namespace rondo::dp {
namespace {

Ip6 ip6(const char* s) {
  Ip6 a;
  EXPECT_EQ(inet_pton(AF_INET6, s, a.b), 1) << s;
  return a;
}

RouteConf6 route(const char* prefix, uint8_t len, uint16_t port, const char* via = "::") {
  RouteConf6 r;
  r.prefix = ip6(prefix);
  r.len = len;
  r.iface = port;
  r.via = ip6(via);
  return r;
}

TEST(Route6, PrefixMatchAtEveryBitBoundary) {
  const Ip6 a = ip6("2001:db8:ffff::1");
  EXPECT_TRUE(prefix_match6(a, ip6("::"), 0));
  EXPECT_TRUE(prefix_match6(a, ip6("2001:db8::"), 32));
  EXPECT_TRUE(prefix_match6(a, ip6("2001:db8:fe00::"), 39));   // 0xff vs 0xfe: bit 40 differs
  EXPECT_FALSE(prefix_match6(a, ip6("2001:db8:fe00::"), 40));
  EXPECT_TRUE(prefix_match6(a, a, 128));
  EXPECT_FALSE(prefix_match6(a, ip6("2001:db8:ffff::"), 128));
  EXPECT_TRUE(prefix_match6(a, ip6("2001:db8:ffff::"), 127));
}

TEST(Route6, EmptyHasNoRoute) {
  Route6Table t;
  t.build({}, false);
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.lookup(ip6("2001:db8::1")), nullptr);
}

TEST(Route6, DefaultOnlyAndNoLpmForIt) {
  Route6Table t;
  t.build({route("::", 0, 2, "fe80::1")}, /*use_lpm*/ true);  // no EAL needed: /0 only
  EXPECT_FALSE(t.uses_lpm());
  EXPECT_TRUE(t.lpm_error().empty());
  uint16_t port;
  Ip6 nh;
  ASSERT_TRUE(t.next_hop(ip6("2606:4700::1111"), &port, &nh));
  EXPECT_EQ(port, 2);
  EXPECT_EQ(nh, ip6("fe80::1"));
}

TEST(Route6, LongestPrefixWinsWhateverTheOrder) {
  Route6Table t;
  t.build({route("::", 0, 0, "fe80::1"), route("2001:db8::", 32, 1),
           route("2001:db8:1::", 48, 2, "2001:db8::1"), route("2001:db8:1::5", 128, 3),
           route("2001:db8:1::4", 127, 4)},
          false);
  uint16_t port;
  Ip6 nh;
  ASSERT_TRUE(t.next_hop(ip6("2001:db8:1::5"), &port, &nh));  // the /128
  EXPECT_EQ(port, 3);
  EXPECT_EQ(nh, ip6("2001:db8:1::5"));  // on-link: the address itself
  ASSERT_TRUE(t.next_hop(ip6("2001:db8:1::4"), &port, &nh));  // the /127 beside it
  EXPECT_EQ(port, 4);
  ASSERT_TRUE(t.next_hop(ip6("2001:db8:1::6"), &port, &nh));  // the /48
  EXPECT_EQ(port, 2);
  EXPECT_EQ(nh, ip6("2001:db8::1"));
  ASSERT_TRUE(t.next_hop(ip6("2001:db8:2::6"), &port, &nh));  // the /32
  EXPECT_EQ(port, 1);
  ASSERT_TRUE(t.next_hop(ip6("2001:db9::"), &port, &nh));  // the /0
  EXPECT_EQ(port, 0);
  EXPECT_EQ(nh, ip6("fe80::1"));
  // Longest prefix first in iteration.
  uint8_t last = 128;
  for (const auto& r : t) {
    EXPECT_LE(r.len, last);
    last = r.len;
  }
}

TEST(Route6, WithoutDefaultAMissIsNoRoute) {
  Route6Table t;
  t.build({route("2001:db8::", 32, 1)}, false);
  EXPECT_EQ(t.lookup(ip6("2001:db9::1")), nullptr);
  EXPECT_NE(t.lookup(ip6("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")), nullptr);
}

}  // namespace
}  // namespace rondo::dp

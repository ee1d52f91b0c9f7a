// The snapshot's IPv6 side (state/snapshot.h): v6 VIPs in an index of their own, each VIP's
// client handler chosen from its mode and families, v6 local ips, routes and static
// neighbours apart from the v4 ones, and the v4 lookups unchanged beside them.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "dataplane/state/snapshot.h"
#include "tests/common/seed_topology.h"

namespace rondo::dp {
namespace {

using test::ip4;
using test::ip6;
using namespace test::seed;

Ip6 v6(const char* s) {
  const test::Ip16 a = ip6(s);
  return Ip6::from(a.data());
}
Ip6 v6(const test::Ip16& a) { return Ip6::from(a.data()); }

TEST(Snapshot6, VipsOfEachFamilyInTheirOwnIndex) {
  const auto s = build_snapshot(state6(true));
  const VipConf* web6 = s->find_vip6(v6(kVip6), htons(80), IPPROTO_TCP);
  ASSERT_NE(web6, nullptr);
  EXPECT_EQ(web6->id, 10u);
  EXPECT_EQ(web6->ip, 0u);
  const VipConf* dns6 = s->find_vip6(v6(kVip6), htons(53), IPPROTO_UDP);
  ASSERT_NE(dns6, nullptr);
  EXPECT_EQ(dns6->id, 11u);
  EXPECT_EQ(s->find_vip6(v6(kVip6), htons(53), IPPROTO_TCP), nullptr);
  EXPECT_EQ(s->find_vip6(v6("2001:db8::11"), htons(80), IPPROTO_TCP), nullptr);
  // The v4 VIP at the same port is the v4 index's, and the v6 one is not in it.
  const VipConf* web = s->find_vip(htonl(kVip), htons(80), IPPROTO_TCP);
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->id, 0u);
  EXPECT_TRUE(web->ip6.is_zero());
  EXPECT_EQ(s->find_vip(0, htons(80), IPPROTO_TCP), nullptr);
  EXPECT_TRUE(s->is_vip_ip6(v6(kVip6)));
  EXPECT_FALSE(s->is_vip_ip6(v6(kLocal6)));
  EXPECT_EQ(s->vip_ips6.size(), 1u);  // one address, four VIPs on it (80, 53, 8091)
  EXPECT_TRUE(s->is_vip_ip(htonl(kVip)));
}

TEST(Snapshot6, HandlerIsModeTimesFamilies) {
  const auto s = build_snapshot(state6(true));
  const auto dsr = build_snapshot(with_dsr(state()));  // (its VIP ids overlap state6's)
  auto handler_of = [](const Snapshot& snap, uint32_t id) {
    for (const VipConf& v : snap.vips)
      if (v.id == id) return static_cast<int>(v.handler);
    return -1;
  };
  // [mode - 1] * 4 + families (44, 66, 46, 64).
  EXPECT_EQ(handler_of(*s, 0), 0);     // web: fullnat, v4 -> v4
  EXPECT_EQ(handler_of(*s, 10), 1);    // web6: fullnat, v6 -> v6
  EXPECT_EQ(handler_of(*s, 12), 2);    // nat46
  EXPECT_EQ(handler_of(*s, 13), 3);    // nat64
  EXPECT_EQ(handler_of(*dsr, 3), 4);   // ipip (v4)
  EXPECT_EQ(handler_of(*dsr, 4), 8);   // gue
  EXPECT_EQ(handler_of(*dsr, 5), 12);  // l2dsr
  EXPECT_TRUE(s->nat46);
  EXPECT_TRUE(s->nat64);
  EXPECT_FALSE(build_snapshot(state6())->nat64);
}

TEST(Snapshot6, BackendsKeepTheirFamily) {
  const auto s = build_snapshot(state6(true));
  for (const BackendConf& b : s->backends) {
    if (b.id >= 30 && b.id <= 40) {
      EXPECT_EQ(b.ip, 0u) << b.id;
      EXPECT_EQ(b.ip6, v6(kBackend6)) << b.id;
    } else {
      EXPECT_EQ(b.ip, b.id == 9 ? htonl(kLateBackend) : htonl(kBackend)) << b.id;
      EXPECT_TRUE(b.ip6.is_zero()) << b.id;
    }
  }
}

TEST(Snapshot6, LocalIpsNeighboursAndRoutesPerFamily) {
  api::State st = state6();
  api::Route r6;
  r6.prefix = addr6(ip6("2001:db8:200::"));
  r6.prefix_len = 40;  // host bits past /40 are none here
  r6.via = addr6(ip6("fe80::1"));
  api::Route r4;
  r4.prefix = api::Addr::from_v4(ip4("10.0.0.0"));
  r4.prefix_len = 8;
  st.routes = {r6, r4};
  const auto s = build_snapshot(st);
  ASSERT_EQ(s->local_ips.size(), 1u);
  EXPECT_EQ(s->local_ips[0], htonl(kLocal));
  ASSERT_EQ(s->local_ips6.size(), 1u);
  EXPECT_EQ(s->local_ips6[0], v6(kLocal6));
  EXPECT_TRUE(s->is_local_ip6(v6(kLocal6)));
  EXPECT_FALSE(s->is_local_ip6(v6(kVip6)));
  EXPECT_EQ(s->neighbours.size(), 2u);
  ASSERT_EQ(s->neighbours6.size(), 2u);
  EXPECT_EQ(s->neighbours6[0].ip, v6(kClient6));
  EXPECT_EQ(s->routes.size(), 1u);
  EXPECT_EQ(s->routes6.size(), 1u);
  uint16_t port = 9;
  Ip6 nh;
  ASSERT_TRUE(s->route6(v6("2001:db8:200::7"), &port, &nh));
  EXPECT_EQ(nh, v6("fe80::1"));  // through the gateway
  EXPECT_EQ(port, 0);
  EXPECT_FALSE(s->route6(v6("2001:db8:300::7"), &port, &nh));  // routes, none covers it
  uint32_t nh4 = 0;
  EXPECT_TRUE(s->route(htonl(ip4("10.1.2.3")), &port, &nh4));
  EXPECT_EQ(nh4, htonl(ip4("10.1.2.3")));  // on-link

  // No v6 routes: every v6 destination on-link on port 0, whatever the v4 routes.
  api::State only4 = state6();
  only4.routes = {r4};
  const auto s4 = build_snapshot(only4);
  ASSERT_TRUE(s4->route6(v6("2001:db8:300::7"), &port, &nh));
  EXPECT_EQ(nh, v6("2001:db8:300::7"));
  // An all-zero prefix is ::/0 (IPv6); IPv4's default route is 0.0.0.0/0 (::ffff:0.0.0.0).
  api::Route dflt6;
  dflt6.via = addr6(ip6("fe80::1"));
  api::Route dflt4;
  dflt4.prefix = api::Addr::from_v4(0);
  dflt4.via = api::Addr::from_v4(ip4("198.51.100.1"));
  api::State dflts = state6();
  dflts.routes = {dflt6, dflt4};
  const auto sd = build_snapshot(dflts);
  EXPECT_EQ(sd->routes6.size(), 1u);
  EXPECT_EQ(sd->routes.size(), 1u);
  ASSERT_TRUE(sd->route(htonl(ip4("8.8.8.8")), &port, &nh4));
  EXPECT_EQ(nh4, htonl(ip4("198.51.100.1")));
}

}  // namespace
}  // namespace rondo::dp

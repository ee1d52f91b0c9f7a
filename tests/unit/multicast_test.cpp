// The multicast groups a port is told to receive for NDP (port/multicast.h): all-nodes, the
// port's link-local solicited-node group, one per own address, no duplicates; none at all
// without an IPv6 address. A port's addresses are the union over its interfaces (VLANs).
// (Programming a device is exercised by the dataplane.)
#include "dataplane/port/multicast.h"

#include "tests/common/iface_setup.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

namespace rondo::dp {
namespace {

Ip6 ip6(const char* s) {
  Ip6 a;
  EXPECT_EQ(inet_pton(AF_INET6, s, a.b), 1) << s;
  return a;
}

TEST(Multicast, NdpGroups) {
  const MacAddr port{0x02, 0x00, 0x5e, 0xaa, 0xbb, 0xcc};
  EXPECT_TRUE(ndp_multicast_macs(port, {}).empty());
  // 2001:db8::10 and 2001:db8:100::10 share ff02::1:ff00:10.
  const auto got =
      ndp_multicast_macs(port, {ip6("2001:db8::10"), ip6("2001:db8:100::10"), ip6("2001:db8::1:2:3")});
  const std::vector<MacAddr> want = {
      {0x33, 0x33, 0x00, 0x00, 0x00, 0x01},  // all nodes
      {0x33, 0x33, 0xff, 0xaa, 0xbb, 0xcc},  // fe80::5eff:feaa:bbcc's group (EUI-64 of the port MAC)
      {0x33, 0x33, 0xff, 0x00, 0x00, 0x10},
      {0x33, 0x33, 0xff, 0x02, 0x00, 0x03},
  };
  EXPECT_EQ(got, want);
}

// Port 0 carries VLAN 100 (2001:db8:200::1, 192.0.2.1) and VLAN 200 (2001:db8:201::1), port 1
// an untagged interface with 2001:db8:300::1, port 2 none. VIP 2001:db8::10 and local ip
// 2001:db8:100::100 (and 203.0.113.10, 198.51.100.100) are answered on every interface.
TEST(Multicast, APortListsTheUnionOverItsInterfaces) {
  api::State st;
  st.generation = 1;
  api::Vip v4, v6;
  v4.id = 1;
  v4.ip = api::Addr::from_v4(0xcb00710a);  // 203.0.113.10
  v4.port = 80;
  v6.id = 2;
  const Ip6 vip6 = ip6("2001:db8::10"), local6 = ip6("2001:db8:100::100");
  std::memcpy(v6.ip.b.data(), vip6.b, 16);
  v6.port = 80;
  st.vips = {v4, v6};
  api::Addr l6;
  std::memcpy(l6.b.data(), local6.b, 16);
  st.local_ips = {api::Addr::from_v4(0xc6336464), l6};  // 198.51.100.100
  SnapshotParams sp;
  sp.n_ports = 3;
  auto s = build_snapshot(st, sp);
  // Interfaces set by hand (their builder is the control side's): ids 0-2, port 2 has none.
  test::set_iface(*s, 0, 0, 100, {htonl(0xc0000201)}, {ip6("2001:db8:200::1")});  // 192.0.2.1
  test::set_iface(*s, 1, 0, 200, {}, {ip6("2001:db8:201::1"), vip6});  // the VIP once more: listed once
  test::set_iface(*s, 2, 1, 0, {}, {ip6("2001:db8:300::1")});

  auto sorted = [](auto v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  const PortAddrs p0 = port_addrs(*s, 0);
  EXPECT_EQ(p0.v6, sorted(std::vector<Ip6>{vip6, local6, ip6("2001:db8:200::1"), ip6("2001:db8:201::1")}));
  EXPECT_EQ(p0.v4, sorted(std::vector<uint32_t>{htonl(0xc0000201), htonl(0xc6336464), htonl(0xcb00710a)}));
  const PortAddrs p1 = port_addrs(*s, 1);
  EXPECT_EQ(p1.v6, sorted(std::vector<Ip6>{vip6, local6, ip6("2001:db8:300::1")}));
  EXPECT_EQ(p1.v4, sorted(std::vector<uint32_t>{htonl(0xc6336464), htonl(0xcb00710a)}));
  // No interface on port 2: nothing is answered there, no group joined.
  EXPECT_TRUE(port_addrs(*s, 2).v6.empty());
  EXPECT_TRUE(port_addrs(*s, 2).v4.empty());
  // Port 0's groups: all nodes, its link-local's, then one per address (the VIP's and the
  // local ip's groups differ from the interfaces').
  const MacAddr mac{0x02, 0x00, 0x5e, 0xaa, 0xbb, 0xcc};
  const std::vector<MacAddr> want = {
      {0x33, 0x33, 0x00, 0x00, 0x00, 0x01},
      {0x33, 0x33, 0xff, 0xaa, 0xbb, 0xcc},
      {0x33, 0x33, 0xff, 0x00, 0x00, 0x10},  // 2001:db8::10
      {0x33, 0x33, 0xff, 0x00, 0x01, 0x00},  // 2001:db8:100::100
      {0x33, 0x33, 0xff, 0x00, 0x00, 0x01},  // 2001:db8:200::1 and 2001:db8:201::1: one group
  };
  EXPECT_EQ(ndp_multicast_macs(mac, p0.v6), want);
}

}  // namespace
}  // namespace rondo::dp

// The multicast groups a port is told to receive for NDP (port/multicast.h): all-nodes, the
// port's link-local solicited-node group, one per own address, no duplicates; none at all
// without an IPv6 address. (Programming a device is exercised by the dataplane.)
#include "dataplane/port/multicast.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace rondo::dp

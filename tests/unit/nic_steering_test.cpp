// NIC steering rules, built against a mocked rte_flow: the test binary is linked with
// --wrap=rte_flow_validate,rte_flow_create,rte_flow_destroy, so every call lands here and
// the rule's pattern and action can be checked without a NIC that has rte_flow.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <rte_byteorder.h>
#include <rte_flow.h>

#include <array>
#include <cstring>
#include <vector>

#include "dataplane/port/steering.h"
#include "tests/common/packet_builder.h"

namespace {

struct Created {
  uint16_t port;
  bool v6;
  uint32_t ip;         // network order (IPv4)
  uint32_t ip_mask;
  std::array<uint8_t, 16> ip6, ip6_mask;
  int l4;              // RTE_FLOW_ITEM_TYPE_TCP/UDP
  uint16_t dport;      // host order
  uint16_t dport_mask;
  uint16_t queue;
  bool ingress;
};

struct Mock {
  bool validate_ok = true;
  bool validate_v6_ok = true;  // the device takes the IPv6 pattern
  bool create_ok = true;
  int validates = 0;
  bool last_v6 = false;  // the pattern last validated
  std::vector<Created> created;
  std::vector<rte_flow*> destroyed;
  uintptr_t next = 1;
};
Mock* mock = nullptr;  // the test's mock, set per test

Created decode(uint16_t port, const rte_flow_attr* attr, const rte_flow_item* p,
               const rte_flow_action* a) {
  Created c{};
  c.port = port;
  c.ingress = attr->ingress;
  EXPECT_EQ(p[0].type, RTE_FLOW_ITEM_TYPE_ETH);
  c.v6 = p[1].type == RTE_FLOW_ITEM_TYPE_IPV6;
  if (c.v6) {
    auto* ips = static_cast<const rte_flow_item_ipv6*>(p[1].spec);
    auto* ipm = static_cast<const rte_flow_item_ipv6*>(p[1].mask);
    std::memcpy(c.ip6.data(), ips->hdr.dst_addr, 16);
    std::memcpy(c.ip6_mask.data(), ipm->hdr.dst_addr, 16);
    // Nothing else of the header is matched (no next header: extension headers aside, the
    // L4 item says it).
    EXPECT_EQ(ipm->hdr.proto, 0);
    EXPECT_EQ(ipm->hdr.src_addr[0], 0);
  } else {
    EXPECT_EQ(p[1].type, RTE_FLOW_ITEM_TYPE_IPV4);
    auto* ips = static_cast<const rte_flow_item_ipv4*>(p[1].spec);
    auto* ipm = static_cast<const rte_flow_item_ipv4*>(p[1].mask);
    c.ip = ips->hdr.dst_addr;
    c.ip_mask = ipm->hdr.dst_addr;
  }
  c.l4 = p[2].type;
  if (p[2].type == RTE_FLOW_ITEM_TYPE_TCP) {
    c.dport = rte_be_to_cpu_16(static_cast<const rte_flow_item_tcp*>(p[2].spec)->hdr.dst_port);
    c.dport_mask = rte_be_to_cpu_16(static_cast<const rte_flow_item_tcp*>(p[2].mask)->hdr.dst_port);
  } else {
    c.dport = rte_be_to_cpu_16(static_cast<const rte_flow_item_udp*>(p[2].spec)->hdr.dst_port);
    c.dport_mask = rte_be_to_cpu_16(static_cast<const rte_flow_item_udp*>(p[2].mask)->hdr.dst_port);
  }
  EXPECT_EQ(p[3].type, RTE_FLOW_ITEM_TYPE_END);
  EXPECT_EQ(a[0].type, RTE_FLOW_ACTION_TYPE_QUEUE);
  c.queue = static_cast<const rte_flow_action_queue*>(a[0].conf)->index;
  EXPECT_EQ(a[1].type, RTE_FLOW_ACTION_TYPE_END);
  return c;
}

}  // namespace

extern "C" {
int __wrap_rte_flow_validate(uint16_t port, const rte_flow_attr* attr, const rte_flow_item* p,
                             const rte_flow_action* a, rte_flow_error* e) {
  ++mock->validates;
  mock->last_v6 = decode(port, attr, p, a).v6;
  if (mock->validate_ok && (!mock->last_v6 || mock->validate_v6_ok)) return 0;
  e->message = "mock: no flow support";
  return -ENOTSUP;
}
rte_flow* __wrap_rte_flow_create(uint16_t port, const rte_flow_attr* attr, const rte_flow_item* p,
                                 const rte_flow_action* a, rte_flow_error* e) {
  if (!mock->create_ok) {
    e->message = "mock: table full";
    return nullptr;
  }
  mock->created.push_back(decode(port, attr, p, a));
  return reinterpret_cast<rte_flow*>(mock->next++);
}
int __wrap_rte_flow_destroy(uint16_t, rte_flow* f, rte_flow_error*) {
  mock->destroyed.push_back(f);
  return 0;
}
}

namespace rondo::dp {
namespace {

const uint32_t kLocalA = htonl(test::ip4("198.51.100.100"));
const uint32_t kLocalB = htonl(test::ip4("198.51.100.101"));

class NicSteeringTest : public ::testing::Test {
 protected:
  void SetUp() override { mock = &m; }
  void TearDown() override { mock = nullptr; }
  Mock m;
};

TEST_F(NicSteeringTest, ProbeReportsTheDevicesAnswer) {
  NicSteering s(3);
  std::string why;
  EXPECT_TRUE(s.probe(2, &why));
  EXPECT_TRUE(s.v6());
  EXPECT_EQ(m.validates, 2);  // the IPv4 pattern, then the IPv6 one
  EXPECT_TRUE(m.last_v6);
  m.validate_v6_ok = false;
  EXPECT_TRUE(s.probe(2, &why));  // IPv4 rules all the same
  EXPECT_FALSE(s.v6());
  m.validate_ok = false;
  EXPECT_FALSE(s.probe(2, &why));
  EXPECT_EQ(why, "mock: no flow support");
  EXPECT_EQ(m.validates, 5);  // not asked about IPv6 once IPv4 is refused
}

// IPv6 local ips: the same rules over an IPv6 pattern (the whole destination address), once
// probe() found the device takes it; without that, none (software steering).
TEST_F(NicSteeringTest, Ipv6LocalIpsGetRulesWhenTheDeviceTakesThem) {
  const rondo::dp::Ip6 local6 = [] {
    const auto a = test::ip6("2001:db8:100::100");
    return rondo::dp::Ip6::from(a.data());
  }();
  PortOwnership own(2);  // mask 1: residues 0, 1 -> workers 0, 1
  std::string err, why;
  {
    NicSteering s(4);
    ASSERT_TRUE(s.probe(2, &why));
    ASSERT_TRUE(s.apply({kLocalA}, own, &err, {local6})) << err;
    ASSERT_EQ(m.created.size(), 2u * 2u * 2u);  // 2 ips x 2 protocols x 2 residues
    int v6 = 0;
    for (const auto& c : m.created) {
      if (!c.v6) {
        EXPECT_EQ(c.ip, kLocalA);
        continue;
      }
      ++v6;
      EXPECT_EQ(std::memcmp(c.ip6.data(), local6.b, 16), 0);
      EXPECT_EQ(c.ip6_mask, (std::array<uint8_t, 16>{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
      EXPECT_EQ(c.dport_mask, 1);
      EXPECT_EQ(c.queue, own.owner(c.dport));
      EXPECT_EQ(c.port, 4);
    }
    EXPECT_EQ(v6, 4);
    // The v6 local ip goes: its 4 rules, and only they, are destroyed.
    ASSERT_TRUE(s.apply({kLocalA}, own, &err, {})) << err;
    EXPECT_EQ(m.destroyed.size(), 4u);
    EXPECT_EQ(s.installed(), 4u);
  }
  // A device without the IPv6 pattern: the v6 local ip is left to software steering.
  m = Mock{};
  m.validate_v6_ok = false;
  NicSteering s(5);
  ASSERT_TRUE(s.probe(2, &why));
  ASSERT_TRUE(s.apply({kLocalA}, own, &err, {local6})) << err;
  EXPECT_EQ(m.created.size(), 4u);
  for (const auto& c : m.created) EXPECT_FALSE(c.v6);
}

TEST_F(NicSteeringTest, OneRulePerLocalIpProtocolAndResidue) {
  {
    NicSteering s(1);
    std::string err;
    PortOwnership own(3);  // mask 3: residues 0..3 → workers 0,1,2,0
    ASSERT_TRUE(s.apply({kLocalA}, own, &err)) << err;
    ASSERT_EQ(m.created.size(), 2u * 4u);
    for (const auto& c : m.created) {
      EXPECT_EQ(c.port, 1);
      EXPECT_TRUE(c.ingress);
      EXPECT_EQ(c.ip, kLocalA);
      EXPECT_EQ(c.ip_mask, 0xffffffffu);
      EXPECT_EQ(c.dport_mask, 3);
      EXPECT_EQ(c.queue, c.dport % 3) << "residue " << c.dport;
      // Every port with this residue is owned by the queue the rule names.
      for (uint32_t p = c.dport; p < 65536; p += 4) ASSERT_EQ(own.owner(static_cast<uint16_t>(p)), c.queue);
    }
    int tcp = 0, udp = 0;
    for (const auto& c : m.created) (c.l4 == RTE_FLOW_ITEM_TYPE_TCP ? tcp : udp)++;
    EXPECT_EQ(tcp, 4);
    EXPECT_EQ(udp, 4);

    // A second local ip adds its rules; the first ip's rules stay.
    m.created.clear();
    ASSERT_TRUE(s.apply({kLocalA, kLocalB}, own, &err));
    EXPECT_EQ(m.created.size(), 8u);
    for (const auto& c : m.created) EXPECT_EQ(c.ip, kLocalB);
    EXPECT_TRUE(m.destroyed.empty());

    // Dropping the first ip destroys exactly its 8 rules.
    ASSERT_TRUE(s.apply({kLocalB}, own, &err));
    EXPECT_EQ(m.destroyed.size(), 8u);
    EXPECT_EQ(s.installed(), 8u);
  }
  // The destructor removes what is left.
  EXPECT_EQ(m.destroyed.size(), 16u);
}

TEST_F(NicSteeringTest, CreateFailureIsReported) {
  NicSteering s(0);
  m.create_ok = false;
  std::string err;
  EXPECT_FALSE(s.apply({kLocalA}, PortOwnership(2), &err));
  EXPECT_EQ(err, "rte_flow_create: mock: table full");
  EXPECT_EQ(s.installed(), 0u);
}

TEST(SteeringRules, SingleWorkerNeedsOneResiduePerProtocol) {
  const auto rules = steering_rules({kLocalA}, PortOwnership(1));
  ASSERT_EQ(rules.size(), 2u);
  for (const auto& r : rules) {
    EXPECT_EQ(r.port_mask, 0);
    EXPECT_EQ(r.queue, 0);
  }
}

}  // namespace
}  // namespace rondo::dp

// NIC steering rules, built against a mocked rte_flow: the test binary is linked with
// --wrap=rte_flow_validate,rte_flow_create,rte_flow_destroy, so every call lands here and
// the rule's pattern and action can be checked without a NIC that has rte_flow.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <rte_byteorder.h>
#include <rte_flow.h>

#include <vector>

#include "dataplane/port/steering.h"
#include "tests/common/packet_builder.h"

namespace {

struct Created {
  uint16_t port;
  uint32_t ip;         // network order
  uint32_t ip_mask;
  int l4;              // RTE_FLOW_ITEM_TYPE_TCP/UDP
  uint16_t dport;      // host order
  uint16_t dport_mask;
  uint16_t queue;
  bool ingress;
};

struct Mock {
  bool validate_ok = true;
  bool create_ok = true;
  int validates = 0;
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
  EXPECT_EQ(p[1].type, RTE_FLOW_ITEM_TYPE_IPV4);
  auto* ips = static_cast<const rte_flow_item_ipv4*>(p[1].spec);
  auto* ipm = static_cast<const rte_flow_item_ipv4*>(p[1].mask);
  c.ip = ips->hdr.dst_addr;
  c.ip_mask = ipm->hdr.dst_addr;
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
  decode(port, attr, p, a);
  if (mock->validate_ok) return 0;
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
  m.validate_ok = false;
  EXPECT_FALSE(s.probe(2, &why));
  EXPECT_EQ(why, "mock: no flow support");
  EXPECT_EQ(m.validates, 2);
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

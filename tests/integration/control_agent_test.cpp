// Integration: the control agent applies a state with interfaces (the real ControlAgent,
// Publisher and Worker over ring ports): what only the dataplane can check (its ports, its
// --mtu) is refused with the field named and changes nothing, and the stats list every
// interface of the state in force with what the workers counted on it.
#include <gtest/gtest.h>

#include "tests/common/packet_builder.h"
#include "tests/common/ring_dataplane.h"
#include "tests/common/seed_topology.h"

namespace rondo {
namespace {

using namespace test::seed;

class Agent : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(test::init_eal()); }

  // kSetState; "" when applied, else the error the agent answered.
  static std::string set(test::RingDataplane& dp, const api::State& s) {
    std::vector<uint8_t> reply;
    const auto type = dp.control(api::MsgType::kSetState, api::encode_state(s), &reply);
    std::string err;
    auto ack = api::decode_ack(reply, &err);
    EXPECT_TRUE(ack) << err;
    if (type == api::MsgType::kSetStateReply) return "";
    return ack ? ack->message : err;
  }
  static api::Stats stats(test::RingDataplane& dp) {
    std::vector<uint8_t> reply;
    EXPECT_EQ(dp.control(api::MsgType::kGetStats, {}, &reply), api::MsgType::kStatsReply);
    std::string err;
    auto s = api::decode_stats(reply, &err);
    EXPECT_TRUE(s) << err;
    return s.value_or(api::Stats{});
  }
};

TEST_F(Agent, InterfacesAreAppliedAndListedInTheStats) {
  test::RingDataplane dp("agent1", 1, 40000, 1000, 1024, 9000);
  std::vector<uint8_t> reply;
  ASSERT_EQ(dp.control(api::MsgType::kHello, {}, &reply), api::MsgType::kHelloReply);
  std::string err;
  const auto info = api::decode_info(reply, &err);
  ASSERT_TRUE(info) << err;
  EXPECT_EQ(info->mtu, 9000u);

  ASSERT_EQ(set(dp, state_vlan()), "");
  const api::Stats s = stats(dp);
  ASSERT_EQ(s.interfaces.size(), 2u);
  EXPECT_EQ(s.interfaces[0].id, kIfBackends);
  EXPECT_EQ(s.interfaces[0].name, "backends");
  EXPECT_EQ(s.interfaces[0].port_id, 0);
  EXPECT_EQ(s.interfaces[0].vlan, 0);
  EXPECT_EQ(s.interfaces[0].mtu, kBackendsMtu);
  EXPECT_EQ(s.interfaces[1].id, kIfClients);
  EXPECT_EQ(s.interfaces[1].name, "clients");
  EXPECT_EQ(s.interfaces[1].vlan, kClientsVid);
  EXPECT_EQ(s.interfaces[1].mtu, kClientsMtu);
  const dp::Snapshot* snap = dp.publisher().current();
  EXPECT_EQ(snap->iface_of(0, kClientsVid), kIfClients);
  EXPECT_EQ(snap->min_mtu, kClientsMtu);

  // Without interfaces: the implicit one of the ring port, at --mtu.
  ASSERT_EQ(set(dp, state()), "");
  const api::Stats implicit = stats(dp);
  ASSERT_EQ(implicit.interfaces.size(), 1u);
  EXPECT_EQ(implicit.interfaces[0].name, "port0");
  EXPECT_EQ(implicit.interfaces[0].mtu, 9000u);
}

// Refused states name the field, and the state in force stays (same snapshot, same generation).
TEST_F(Agent, PortsAndMtuAboveTheDataplanesAreRefused) {
  test::RingDataplane dp("agent2", 1, 40000, 1000);  // --mtu 1500, one port
  api::State good = state_vlan();
  good.interfaces[kIfBackends].mtu = 0;  // --mtu
  good.generation = 5;
  ASSERT_EQ(set(dp, good), "");
  const dp::Snapshot* before = dp.publisher().current();

  api::State s = state_vlan();  // backends at 9000
  s.generation = 6;
  EXPECT_EQ(set(dp, s), "interfaces[0].mtu: 9000 is above the dataplane's --mtu 1500");
  s = good;
  s.generation = 7;
  s.interfaces[kIfClients].port_id = 1;
  EXPECT_EQ(set(dp, s), "interfaces[1].port: 1 is not a port of the dataplane (it has port 0)");
  s = state();
  s.generation = 8;
  s.routes = {{.prefix = api::Addr::from_v4(test::ip4("10.0.0.0")), .prefix_len = 8, .iface = 3}};
  EXPECT_EQ(set(dp, s),
            "routes[0].interface: 3 is not a port of the dataplane (it has port 0; without "
            "interfaces, the interface is the port's untagged one, id = port)");
  // A rule of the state itself (api::check_state), the same way.
  s = good;
  s.generation = 9;
  s.interfaces[kIfClients].vlan = 4095;
  EXPECT_EQ(set(dp, s), "interfaces[1].vlan: 4095 is not a VLAN id (1-4094; 0 or absent: untagged)");

  EXPECT_EQ(dp.publisher().current(), before);
  EXPECT_EQ(stats(dp).generation, 5u);
  EXPECT_EQ(stats(dp).interfaces[kIfBackends].mtu, 1500u);
}

// The workers' per-interface counters, summed.
TEST_F(Agent, TrafficIsCountedPerInterface) {
  test::RingDataplane dp("agent3", 1, 40000, 1000, 1024, 9000);
  ASSERT_EQ(set(dp, state_vlan()), "");
  dp.main_poll();  // the static neighbours published (and whatever the manager asks, sent)
  dp.poll(0);
  dp.sent(0);
  // A SYN from a client on VLAN 100 to the web VIP: in on clients, out to a backend on backends.
  test::Pkt p;
  p.dst_mac = dp.mac();
  p.src_mac = kClientMac;
  p.vlan = kClientsVid;
  p.src_ip = kClientV4;
  p.dst_ip = kVip;
  p.sport = 40001;
  p.dport = 80;
  const test::Frame syn = test::build(p);
  dp.inject(0, syn);
  dp.poll(0);
  ASSERT_EQ(dp.sent(0).size(), 1u);
  const api::Stats s = stats(dp);
  ASSERT_EQ(s.interfaces.size(), 2u);
  EXPECT_EQ(s.interfaces[kIfClients].rx_packets, 1u);
  EXPECT_EQ(s.interfaces[kIfClients].rx_bytes, syn.size());  // frame bytes, as ports count
  EXPECT_EQ(s.interfaces[kIfClients].tx_packets, 0u);
  EXPECT_EQ(s.interfaces[kIfBackends].rx_packets, 0u);
  EXPECT_EQ(s.interfaces[kIfBackends].tx_packets, 1u);
  EXPECT_EQ(s.interfaces[kIfBackends].tx_bytes, syn.size() - 4);  // untagged out
}

}  // namespace
}  // namespace rondo

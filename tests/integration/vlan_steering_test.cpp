// Integration: software steering with interfaces (seed::state_vlan(), two workers, --mtu 9000).
// Clients on VLAN 100 send SYNs on either queue; each backend reply is injected on the queue
// of the worker that does NOT own its local port. The reply is handed over as it came in
// (untagged, from the backends link) and must leave from the owner tagged 100, the frame
// rondo sends for its own flow byte for byte.
#include <gtest/gtest.h>

#include <map>

#include "tests/common/packet_builder.h"
#include "tests/common/ring_dataplane.h"
#include "tests/common/seed_topology.h"

namespace rondo {
namespace {

using test::Frame;
using test::Mac;
using test::Pkt;

using namespace test::seed;
constexpr uint16_t kLportLo = 40000;
constexpr int kFlows = 8;

uint16_t be16_at(const Frame& f, size_t off) { return static_cast<uint16_t>(f[off] << 8 | f[off + 1]); }

struct FlowSeen {
  uint16_t owner;  // the worker whose queue the SYN came in on
  uint16_t cport;
  uint16_t lport;
  uint16_t bport;
};

TEST(VlanSteering, AHandedOverReplyLeavesTaggedFromTheOwner) {
  ASSERT_TRUE(test::init_eal());
  test::RingDataplane dp("vsteer", 2, kLportLo, 64, 1024, 9000);
  const Mac me = dp.mac();
  dp.push(state_vlan());
  dp.settle();
  for (uint16_t w = 0; w < 2; ++w) dp.sent(w);  // the late backend's ARP request
  const unsigned baseline = rte_mempool_in_use_count(dp.pool());

  // SYNs from the clients' VLAN, spread over both queues: each leaves untagged for the
  // backend, from the worker it came in on, with a local port that worker owns.
  std::map<uint16_t, FlowSeen> by_cport;
  for (int k = 0; k < kFlows; ++k) {
    Pkt syn;
    syn.src_mac = kClientMac;
    syn.dst_mac = me;
    syn.vlan = kClientsVid;
    syn.src_ip = kClientV4;
    syn.dst_ip = kVip;
    syn.sport = static_cast<uint16_t>(50000 + k);
    syn.dport = 80;
    syn.tcp_flags = 0x02;
    const uint16_t q = static_cast<uint16_t>(k % 2);
    dp.inject(q, test::build(syn));
    dp.settle();
    const auto out = dp.sent(q);
    ASSERT_EQ(out.size(), 1u) << "SYN " << k;
    ASSERT_EQ(out[0].size(), 14u + 40u) << "untagged to the backend";
    const uint16_t lport = be16_at(out[0], 34);
    EXPECT_EQ(dp.worker(q).pipeline.port_owner(lport), q) << lport;
    by_cport[syn.sport] = FlowSeen{q, syn.sport, lport, be16_at(out[0], 36)};
  }

  // The backends' SYN-ACKs, each on the other worker's queue: handed over, sent by the owner.
  for (const auto& [cport, fs] : by_cport) {
    Pkt sa;
    sa.src_mac = kBackendMac;
    sa.dst_mac = me;
    sa.src_ip = kBackend;
    sa.dst_ip = kLocal;
    sa.sport = fs.bport;
    sa.dport = fs.lport;
    sa.tcp_flags = 0x12;
    sa.seq = 7000u + cport;
    sa.ack = 1000 + 1;  // the client's SYN (builder's ISN)
    dp.inject(static_cast<uint16_t>(1 - fs.owner), test::build(sa));
    dp.settle();
    EXPECT_TRUE(dp.sent(static_cast<uint16_t>(1 - fs.owner)).empty()) << "client port " << cport;
    const auto out = dp.sent(fs.owner);
    ASSERT_EQ(out.size(), 1u) << "client port " << cport;
    Pkt want = sa;
    want.src_mac = me;
    want.dst_mac = kClientMac;
    want.vlan = kClientsVid;
    want.src_ip = kVip;
    want.dst_ip = kClientV4;
    want.sport = 80;
    want.dport = cport;
    want.ttl = 63;
    EXPECT_TRUE(out[0] == test::build(want)) << "client port " << cport << ": got\n"
                                             << test::hex(out[0]) << "\nwant\n"
                                             << test::hex(test::build(want));
  }
  for (uint16_t w = 0; w < 2; ++w)
    EXPECT_EQ(dp.worker(w).pipeline.counters().steered_out, static_cast<uint64_t>(kFlows / 2))
        << "worker " << w;
  EXPECT_EQ(rte_mempool_in_use_count(dp.pool()), baseline) << "mbuf leak";
}

}  // namespace
}  // namespace rondo

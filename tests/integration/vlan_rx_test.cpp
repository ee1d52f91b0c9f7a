// Integration: VLAN tags are in the bytes (docs/architecture.md, "Interfaces"). A PMD that
// strips a tag into the mbuf anyway (RTE_MBUF_F_RX_VLAN_STRIPPED, vlan_tci) has it put back
// by the worker before the pipeline sees the frame, in the 4 bytes in front of it; the
// pipeline still finds its Pipeline::kHeadroom free after that, or the frame is dropped
// no_headroom. The real worker loop on a net_ring port; the pipeline's view is read from
// the worker's tracer (the bytes it was given) and counters.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "tests/common/packet_builder.h"
#include "tests/common/ring_dataplane.h"
#include "tests/common/seed_topology.h"

namespace rondo {
namespace {

using dp::DropReason;
using test::Frame;
using test::Pkt;
using namespace test::seed;

class VlanRx : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(test::init_eal()); }

  Pkt syn(test::RingDataplane& dp, uint16_t cport) {
    Pkt p;
    p.dst_mac = dp.mac();
    p.src_mac = kClientMac;
    p.src_ip = kClient;
    p.dst_ip = kVip;
    p.sport = cport;
    p.dport = 80;
    p.tcp_flags = 0x02;
    return p;
  }

  // An mbuf holding `f` after `headroom` bytes, flagged as a PMD flags what it stripped.
  rte_mbuf* mbuf(test::RingDataplane& dp, const Frame& f, uint16_t headroom, uint64_t flags, uint16_t tci) {
    rte_mbuf* m = rte_pktmbuf_alloc(dp.pool());
    EXPECT_NE(m, nullptr);
    m->data_off = headroom;
    char* d = rte_pktmbuf_append(m, static_cast<uint16_t>(f.size()));
    EXPECT_NE(d, nullptr);
    std::memcpy(d, f.data(), f.size());
    m->ol_flags |= flags;
    m->vlan_tci = tci;
    return m;
  }

  static uint64_t drops(test::RingDataplane& dp, DropReason r) {
    return dp.worker(0).pipeline.counters().drops[static_cast<uint32_t>(r)];
  }
  static uint64_t reinserted(test::RingDataplane& dp) {
    return dp.worker(0).pipeline.counters().vlan_reinserted;
  }
};

constexpr uint64_t kStripped = RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_VLAN_STRIPPED;

TEST_F(VlanRx, AStrippedTagIsPutBackBeforeThePipeline) {
  test::RingDataplane dp("vlanrx1", 1, 40000, 100);
  dp.push(state(false));  // no interfaces declared: port 0's implicit, untagged one only
  dp.worker(0).tracer.arm(api::FlowFilter{}, 10, 0, UINT64_MAX);
  Pkt p = syn(dp, 41000);
  const Frame untagged = test::build(p);
  p.vlan = 0x2064;  // PCP 1, VID 100: what was on the wire
  const Frame tagged = test::build(p);
  ASSERT_EQ(tagged.size(), untagged.size() + 4);
  dp.inject_mbuf(0, mbuf(dp, untagged, RTE_PKTMBUF_HEADROOM, kStripped, 0x2064));
  dp.poll(0);
  // The pipeline was given the frame as it was on the wire, tag and priority included...
  const std::vector<dp::TraceRaw> r = dp.worker(0).tracer.take();
  ASSERT_EQ(r.size(), 1u);
  ASSERT_EQ(r[0].len, tagged.size());
  EXPECT_EQ(Frame(r[0].pre, r[0].pre + r[0].len), tagged);
  EXPECT_EQ(r[0].iface, dp::kNoIface);
  // ...so VID 100, which names no interface of port 0, is vlan_mismatch: the untagged bytes
  // alone would have been a SYN to the VIP, forwarded.
  EXPECT_EQ(reinserted(dp), 1u);
  EXPECT_EQ(drops(dp, DropReason::kVlanMismatch), 1u);
  EXPECT_EQ(drops(dp, DropReason::kNoHeadroom), 0u);
  EXPECT_TRUE(dp.sent(0).empty());
  // The same bytes unflagged are an untagged SYN: forwarded, nothing put back.
  dp.inject_mbuf(0, mbuf(dp, untagged, RTE_PKTMBUF_HEADROOM, 0, 0x2064));
  dp.settle();
  EXPECT_EQ(dp.sent(0).size(), 1u);
  EXPECT_EQ(reinserted(dp), 1u);
}

// The tag takes 4 bytes of the headroom, before the headroom check: 68 bytes leave the
// pipeline its 64, 67 do not, and fewer than 4 cannot take the tag at all.
TEST_F(VlanRx, TheHeadroomCheckCountsTheTagPutBack) {
  static_assert(dp::Pipeline::kHeadroom == 64);
  test::RingDataplane dp("vlanrx2", 1, 40000, 100);
  dp.push(state(false));
  const Frame untagged = test::build(syn(dp, 41000));
  dp.inject_mbuf(0, mbuf(dp, untagged, 68, kStripped, 0x0064));
  dp.poll(0);
  EXPECT_EQ(reinserted(dp), 1u);
  EXPECT_EQ(drops(dp, DropReason::kVlanMismatch), 1u);  // reached the pipeline
  EXPECT_EQ(drops(dp, DropReason::kNoHeadroom), 0u);
  dp.inject_mbuf(0, mbuf(dp, untagged, 67, kStripped, 0x0064));
  dp.poll(0);
  EXPECT_EQ(reinserted(dp), 2u);
  EXPECT_EQ(drops(dp, DropReason::kVlanMismatch), 1u);
  EXPECT_EQ(drops(dp, DropReason::kNoHeadroom), 1u);
  dp.inject_mbuf(0, mbuf(dp, untagged, 3, kStripped, 0x0064));
  dp.poll(0);
  EXPECT_EQ(reinserted(dp), 2u);
  EXPECT_EQ(drops(dp, DropReason::kNoHeadroom), 2u);
  // Untagged, unflagged: 64 bytes are enough.
  dp.inject_mbuf(0, mbuf(dp, untagged, 64, 0, 0));
  dp.settle();
  EXPECT_EQ(drops(dp, DropReason::kNoHeadroom), 2u);
  EXPECT_EQ(dp.sent(0).size(), 1u);
}

// Two tags stripped (QinQ) are refused, as the parser refuses QinQ in the bytes.
TEST_F(VlanRx, QinQStrippedIsRefused) {
  test::RingDataplane dp("vlanrx3", 1, 40000, 100);
  dp.push(state(false));
  const Frame untagged = test::build(syn(dp, 41000));
  dp.inject_mbuf(0, mbuf(dp, untagged, RTE_PKTMBUF_HEADROOM,
                         kStripped | RTE_MBUF_F_RX_QINQ | RTE_MBUF_F_RX_QINQ_STRIPPED, 0x0064));
  dp.poll(0);
  EXPECT_EQ(drops(dp, DropReason::kUnsupportedL3), 1u);
  EXPECT_EQ(reinserted(dp), 0u);
  EXPECT_TRUE(dp.sent(0).empty());
}

}  // namespace
}  // namespace rondo

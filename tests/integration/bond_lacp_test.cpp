// Integration: 802.3ad (LACP) between two bonds in one process. Each bond has two net_ring
// members, cabled pairwise to the other bond's (a member's TX ring is its peer's RX ring).
// Both are started by rondo's port code: net_ring cannot filter slow frames, so no dedicated
// queues, and the LACPDUs go through bursts on the bond, empty ones included, as the workers
// make them. Both sides must reach "distributing" on both members within LACP's timers, and
// a frame sent into one bond must come out of the other.
#include <gtest/gtest.h>

#include <rte_cycles.h>
#include <rte_eth_bond.h>
#include <rte_eth_bond_8023ad.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <cstring>
#include <string>
#include <vector>

#include "dataplane/port/port.h"
#include "tests/common/ring_dataplane.h"  // test::init_eal

namespace rondo {
namespace {

class Lacp : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(test::init_eal()); }
};

uint16_t ring_port(const std::string& name, rte_ring* rx, rte_ring* tx) {
  const int id = rte_eth_from_rings(name.c_str(), &rx, 1, &tx, 1, 0);
  EXPECT_GE(id, 0) << name;
  return static_cast<uint16_t>(id);
}

// What a worker does for a bond on every loop: receive (and here drop) what came in, and
// a TX burst, empty if there is nothing to send.
void poll_like_a_worker(uint16_t port) {
  rte_mbuf* pkts[32];
  const uint16_t n = rte_eth_rx_burst(port, 0, pkts, 32);
  rte_pktmbuf_free_bulk(pkts, n);
  rte_eth_tx_burst(port, 0, pkts, 0);
}

TEST_F(Lacp, TwoBondsDistributeOnBothMembersAndCarryAFrame) {
  rte_mempool* pool = rte_pktmbuf_pool_create("lacp_pool", 4095, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
  ASSERT_NE(pool, nullptr);
  rte_ring* a_to_b[2];
  rte_ring* b_to_a[2];
  uint16_t a[2], b[2];
  for (int i = 0; i < 2; ++i) {
    const std::string n = std::to_string(i);
    a_to_b[i] = rte_ring_create(("lacp_ab" + n).c_str(), 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    b_to_a[i] = rte_ring_create(("lacp_ba" + n).c_str(), 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    ASSERT_TRUE(a_to_b[i] && b_to_a[i]);
    a[i] = ring_port("lacp_a" + n, b_to_a[i], a_to_b[i]);
    b[i] = ring_port("lacp_b" + n, a_to_b[i], b_to_a[i]);
  }
  const int bond_a = rte_eth_bond_create("net_bonding_lacp_a", BONDING_MODE_8023AD, 0);
  const int bond_b = rte_eth_bond_create("net_bonding_lacp_b", BONDING_MODE_8023AD, 0);
  ASSERT_GE(bond_a, 0);
  ASSERT_GE(bond_b, 0);
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(rte_eth_bond_slave_add(bond_a, a[i]), 0);
    ASSERT_EQ(rte_eth_bond_slave_add(bond_b, b[i]), 0);
  }
  // Two systems: LACP tells them apart by their MAC (net_ring's are all zero).
  rte_ether_addr mac_a{{0x02, 0, 0, 0, 0x0a, 0x01}}, mac_b{{0x02, 0, 0, 0, 0x0b, 0x01}};
  ASSERT_EQ(rte_eth_bond_mac_address_set(bond_a, &mac_a), 0);
  ASSERT_EQ(rte_eth_bond_mac_address_set(bond_b, &mac_b), 0);

  dp::PortSetup ps;
  ps.rx_desc = ps.tx_desc = 256;
  ps.pool = pool;
  dp::PortInfo ia, ib;
  std::string err;
  ASSERT_TRUE(dp::port_start(bond_a, ps, &ia, &err)) << err;
  ASSERT_TRUE(dp::port_start(bond_b, ps, &ib, &err)) << err;
  for (const dp::PortInfo* p : {&ia, &ib}) {
    ASSERT_TRUE(p->bond) << p->name;
    EXPECT_EQ(p->bond->mode, BONDING_MODE_8023AD);
    EXPECT_TRUE(p->bond->lacp_in_bursts) << "net_ring has no rte_flow: no dedicated queues";
  }
  EXPECT_EQ(ia.bond->members, (std::vector<uint16_t>{a[0], a[1]}));
  EXPECT_EQ(ib.bond->members, (std::vector<uint16_t>{b[0], b[1]}));
  EXPECT_EQ(dp::port_bond_of(a[1]), static_cast<uint16_t>(bond_a));
  EXPECT_EQ(dp::port_bond_of(b[0]), static_cast<uint16_t>(bond_b));
  EXPECT_FALSE(dp::port_bond_of(static_cast<uint16_t>(bond_a)));
  EXPECT_EQ(std::memcmp(ia.mac.data(), mac_a.addr_bytes, 6), 0);

  // LACP's own timers (the PMD's defaults: a short timeout of 3 s, a 2 s aggregation wait)
  // bound the exchange; 20 s is a deadline, not an expectation.
  const uint64_t hz = rte_get_tsc_hz(), t0 = rte_rdtsc();
  bool both = false;
  uint64_t next_watch = 0;
  while (!both && rte_rdtsc() - t0 < 20 * hz) {
    poll_like_a_worker(static_cast<uint16_t>(bond_a));
    poll_like_a_worker(static_cast<uint16_t>(bond_b));
    if (rte_rdtsc() >= next_watch) {  // as the main lcore does, every 10 ms
      dp::port_bond_watch(&ia);
      dp::port_bond_watch(&ib);
      both = ia.bond->distributing.size() == 2 && ib.bond->distributing.size() == 2;
      next_watch = rte_rdtsc() + hz / 100;
    }
    rte_delay_us_sleep(1000);
  }
  const double took = static_cast<double>(rte_rdtsc() - t0) / static_cast<double>(hz);
  ASSERT_TRUE(both) << "after " << took << " s: bond A distributing on " << ia.bond->distributing.size()
                    << " members, bond B on " << ib.bond->distributing.size();
  for (int i = 0; i < 2; ++i) {
    struct rte_eth_bond_8023ad_slave_info si{};
    ASSERT_EQ(rte_eth_bond_8023ad_slave_info(bond_a, a[i], &si), 0);
    EXPECT_TRUE(si.partner_state & STATE_SYNCHRONIZATION) << "member " << a[i];
    EXPECT_EQ(std::memcmp(si.partner.system.addr_bytes, mac_b.addr_bytes, 6), 0)
        << "member " << a[i] << " has another partner than bond B";
  }
  RecordProperty("lacp_distributing_after_ms", static_cast<int>(took * 1000));

  // A frame for B's MAC, into A: out of B (on whichever member A's hash picked).
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  ASSERT_NE(m, nullptr);
  uint8_t f[60] = {};
  std::memcpy(f, mac_b.addr_bytes, 6);
  std::memcpy(f + 6, mac_a.addr_bytes, 6);
  f[12] = 0x88;  // a local experimental ethertype (IEEE 802: 0x88B5)
  f[13] = 0xb5;
  std::memcpy(f + 14, "bond a to bond b", 16);
  void* room = rte_pktmbuf_append(m, sizeof f);
  ASSERT_NE(room, nullptr);
  std::memcpy(room, f, sizeof f);
  ASSERT_EQ(rte_eth_tx_burst(static_cast<uint16_t>(bond_a), 0, &m, 1), 1);
  bool arrived = false;
  for (int k = 0; k < 1000 && !arrived; ++k) {
    rte_mbuf* pkts[32];
    const uint16_t n = rte_eth_rx_burst(static_cast<uint16_t>(bond_b), 0, pkts, 32);
    for (uint16_t i = 0; i < n; ++i) {
      const auto* d = rte_pktmbuf_mtod(pkts[i], const uint8_t*);
      if (rte_pktmbuf_data_len(pkts[i]) >= 30 && std::memcmp(d + 14, "bond a to bond b", 16) == 0)
        arrived = true;
    }
    rte_pktmbuf_free_bulk(pkts, n);
    rte_eth_tx_burst(static_cast<uint16_t>(bond_a), 0, pkts, 0);
    rte_delay_us_sleep(1000);
  }
  EXPECT_TRUE(arrived) << "the frame sent into bond A never came out of bond B";

  dp::port_stop_all({ia, ib});
  // Closed, a bond still has its virtual device (made by rte_eth_bond_create): remove it.
  EXPECT_EQ(rte_eth_bond_free("net_bonding_lacp_a"), 0);
  EXPECT_EQ(rte_eth_bond_free("net_bonding_lacp_b"), 0);
  for (int i = 0; i < 2; ++i) {
    for (uint16_t p : {a[i], b[i]}) {
      rte_eth_dev_stop(p);
      rte_eth_dev_close(p);
    }
    rte_ring_free(a_to_b[i]);
    rte_ring_free(b_to_a[i]);
  }
  rte_mempool_free(pool);
}

}  // namespace
}  // namespace rondo

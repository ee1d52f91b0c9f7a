// Integration: the neighbour service's rings with IPv6 (neigh/service.h). A worker's v6
// next-hop question travels the ask ring (NeighAsk elements, both families on one ring) and
// the manager's solicitation comes back on worker 0's TX ring as an mbuf; a solicitation
// handed over on the frame ring is answered in its own mbuf, grown to the advertisement.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>

#include "dataplane/neigh/service.h"
#include "dataplane/state/publisher.h"
#include "tests/common/packet_builder.h"
#include "tests/common/ring_dataplane.h"

namespace rondo {
namespace {

const test::Mac kOurMac{0x02, 0, 0, 0, 0, 0x01};
const test::Mac kHostMac{0x02, 0, 0, 0, 0, 0x02};

TEST(NeighService6, QuestionsAndSolicitationsThroughTheRings) {
  ASSERT_TRUE(test::init_eal());
  rte_mempool* pool = rte_pktmbuf_pool_create("nd6_pool", 255, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
  ASSERT_NE(pool, nullptr);
  dp::Publisher pub(1);
  dp::NeighManagerParams p;
  p.port_macs = {kOurMac};
  dp::NeighService svc("nd6", 1, pool, pub.qsbr(), p);
  std::string err;
  ASSERT_TRUE(svc.ok(&err)) << err;
  auto snap = dp::build_snapshot(api::State{});

  // A v6 question and a v4 one on the same ring; no route: everything on-link on port 0.
  const auto target = test::ip6("2001:db8:100::3");
  dp::Ip6 t6;
  std::memcpy(t6.b, target.data(), 16);
  ASSERT_TRUE(dp::send_ask(svc.ask_ring(0), dp::NeighAsk::v6(t6, 0)));
  dp::NeighAsk v4;
  v4.ip = htonl(test::ip4("198.51.100.3"));
  ASSERT_TRUE(dp::send_ask(svc.ask_ring(0), v4));
  svc.poll(snap.get(), 1);

  std::vector<test::Frame> out;
  rte_mbuf* m;
  while (rte_ring_dequeue(svc.tx_ring(0), reinterpret_cast<void**>(&m)) == 0) {
    EXPECT_EQ(m->port, 0);
    const auto* d = rte_pktmbuf_mtod(m, const uint8_t*);
    out.emplace_back(d, d + rte_pktmbuf_data_len(m));
    rte_pktmbuf_free(m);
  }
  // Both questions were taken; the v4 one makes no ARP request here (no local ip to send
  // it from), the v6 one a solicitation from the port's link-local address.
  EXPECT_EQ(rte_ring_count(svc.ask_ring(0)), 0u);
  ASSERT_EQ(out.size(), 1u);
  test::Ndp ns;
  ns.eth_src = kOurMac;
  ns.src6 = test::ip6("fe80::ff:fe00:1");
  ns.target = target;
  ns.lladdr = kOurMac;
  EXPECT_EQ(out[0], test::build(ns)) << test::hex(out[0]);
  EXPECT_EQ(svc.counters().ndp_solicits, 1u);

  // A solicitation for the port's link-local address, handed over by a worker.
  test::Ndp q;
  q.eth_src = kHostMac;
  q.src6 = test::ip6("fe80::2");
  q.target = test::ip6("fe80::ff:fe00:1");
  q.lladdr = kHostMac;
  const test::Frame qf = test::build(q);
  m = rte_pktmbuf_alloc(pool);
  ASSERT_NE(m, nullptr);
  std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(qf.size())), qf.data(), qf.size());
  m->port = 0;
  ASSERT_EQ(rte_ring_enqueue(svc.arp_ring(0), m), 0);
  svc.poll(snap.get(), 2);
  ASSERT_EQ(rte_ring_dequeue(svc.tx_ring(0), reinterpret_cast<void**>(&m)), 0);
  const auto* d = rte_pktmbuf_mtod(m, const uint8_t*);
  const test::Frame got(d, d + rte_pktmbuf_data_len(m));
  EXPECT_EQ(rte_pktmbuf_pkt_len(m), rte_pktmbuf_data_len(m));
  rte_pktmbuf_free(m);
  test::Ndp na;
  na.type = 136;
  na.eth_src = kOurMac;
  na.eth_dst = kHostMac;
  na.src6 = q.target;
  na.dst6 = q.src6;
  na.target = q.target;
  na.solicited = na.override_flag = true;
  na.lladdr = kOurMac;
  EXPECT_EQ(got, test::build(na)) << test::hex(got);
  EXPECT_EQ(svc.counters().ndp_adverts, 1u);
  rte_mempool_free(pool);
}

}  // namespace
}  // namespace rondo

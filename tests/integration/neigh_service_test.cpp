// Integration: the neighbour service's rings with IPv6 (neigh/service.h). A worker's v6
// next-hop question travels the ask ring (NeighAsk elements, both families on one ring) and
// the manager's solicitation comes back on worker 0's TX ring as an mbuf; a solicitation
// handed over on the frame ring is answered in its own mbuf, grown to the advertisement.
// With interfaces (VLANs): tagged frames in, tagged frames out of the interface's port, and
// a bond's failover announced on every interface of the bond.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "dataplane/neigh/service.h"
#include "dataplane/state/publisher.h"
#include "tests/common/iface_setup.h"
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

// Everything on the TX ring, in order: (port, bytes).
std::vector<std::pair<uint16_t, test::Frame>> drain_tx(dp::NeighService& svc) {
  std::vector<std::pair<uint16_t, test::Frame>> out;
  rte_mbuf* m;
  while (rte_ring_dequeue(svc.tx_ring(0), reinterpret_cast<void**>(&m)) == 0) {
    EXPECT_EQ(rte_pktmbuf_pkt_len(m), rte_pktmbuf_data_len(m));
    const auto* d = rte_pktmbuf_mtod(m, const uint8_t*);
    out.emplace_back(m->port, test::Frame(d, d + rte_pktmbuf_data_len(m)));
    rte_pktmbuf_free(m);
  }
  return out;
}

// Port 0 (a bond, say) carries clients (id 0, VLAN 100, 192.0.2.1, 2001:db8:200::1) and
// backends (id 1, untagged, 198.51.100.254); port 1 spare (id 2, untagged). VIPs
// 203.0.113.10 and 2001:db8::10, local ip 198.51.100.100; 192.0.2.0/24 on clients.
std::unique_ptr<dp::Snapshot> vlan_snapshot() {
  api::State st;
  st.generation = 1;
  api::Vip v4, v6;
  v4.id = 1;
  v4.ip = api::Addr::from_v4(test::ip4("203.0.113.10"));
  v4.port = 80;
  v6.id = 2;
  const auto vip6 = test::ip6("2001:db8::10");
  std::memcpy(v6.ip.b.data(), vip6.data(), 16);
  v6.port = 80;
  st.vips = {v4, v6};
  st.local_ips = {api::Addr::from_v4(test::ip4("198.51.100.100"))};
  api::Route clients;
  clients.prefix = api::Addr::from_v4(test::ip4("192.0.2.0"));
  clients.prefix_len = 24;
  clients.iface = 0;
  api::Route rest;
  rest.prefix = api::Addr::from_v4(0);
  rest.iface = 1;
  st.routes = {clients, rest};
  dp::SnapshotParams sp;
  sp.n_ports = 2;
  auto s = dp::build_snapshot(st, sp);
  // The interfaces, set by hand (their builder is the control side's, state/snapshot.cpp).
  dp::Ip6 a6;
  const auto clients6 = test::ip6("2001:db8:200::1");
  std::memcpy(a6.b, clients6.data(), 16);
  test::set_iface(*s, 0, 0, 100, {htonl(test::ip4("192.0.2.1"))}, {a6});
  test::set_iface(*s, 1, 0, 0, {htonl(test::ip4("198.51.100.254"))});
  test::set_iface(*s, 2, 1, 0);
  s->first_iface = 1;
  return s;
}

TEST(NeighServiceVlan, TaggedInTaggedOutAndABondAnnouncedOnEveryInterface) {
  ASSERT_TRUE(test::init_eal());
  rte_mempool* pool = rte_pktmbuf_pool_create("ndv_pool", 255, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
  ASSERT_NE(pool, nullptr);
  dp::Publisher pub(1);
  dp::NeighManagerParams p;
  const test::Mac kOurMac2{0x02, 0, 0, 0, 0, 0x11};
  p.port_macs = {kOurMac, kOurMac2};
  dp::NeighService svc("ndv", 1, pool, pub.qsbr(), p);
  std::string err;
  ASSERT_TRUE(svc.ok(&err)) << err;
  auto snap = vlan_snapshot();

  // A worker asks for a client on the clients interface: the ARP request leaves port 0
  // tagged 100, 64 bytes, from the interface's address.
  dp::NeighAsk ask;
  ask.ip = htonl(test::ip4("192.0.2.2"));
  ask.iface = 0;
  ASSERT_TRUE(dp::send_ask(svc.ask_ring(0), ask));
  svc.poll(snap.get(), 1);
  auto out = drain_tx(svc);
  ASSERT_EQ(out.size(), 1u);
  test::Arp req;
  req.vlan = 100;
  req.eth_src = req.sha = kOurMac;
  req.sip = test::ip4("192.0.2.1");
  req.tip = test::ip4("192.0.2.2");
  req.pad_to = 64;
  EXPECT_EQ(out[0].first, 0);
  EXPECT_EQ(out[0].second, test::build(req)) << test::hex(out[0].second);

  // A tagged solicitation for the VIP (PCP 5) handed over raw: answered in its mbuf, grown
  // to the tagged advertisement (90 bytes), PCP 0.
  test::Ndp q;
  q.vlan = 0xa064;
  q.eth_src = kHostMac;
  q.src6 = test::ip6("2001:db8:200::2");
  q.target = test::ip6("2001:db8::10");
  q.lladdr = kHostMac;
  const test::Frame qf = test::build(q);
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  ASSERT_NE(m, nullptr);
  std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(qf.size())), qf.data(), qf.size());
  m->port = 0;
  ASSERT_EQ(rte_ring_enqueue(svc.arp_ring(0), m), 0);
  svc.poll(snap.get(), 2);
  out = drain_tx(svc);
  ASSERT_EQ(out.size(), 1u);
  test::Ndp na;
  na.type = 136;
  na.vlan = 0x0064;
  na.eth_src = kOurMac;
  na.eth_dst = kHostMac;
  na.src6 = na.target = q.target;
  na.dst6 = q.src6;
  na.solicited = na.override_flag = true;
  na.lladdr = kOurMac;
  EXPECT_EQ(out[0].first, 0);
  EXPECT_EQ(out[0].second, test::build(na)) << test::hex(out[0].second);

  // Port 0's bond failed over: every interface of port 0 announces, each with its tag, its
  // own addresses on it alone; port 1's interface does not.
  svc.announce(snap.get(), 0);
  svc.poll(snap.get(), 3);
  out = drain_tx(svc);
  auto garp = [&](std::optional<uint16_t> tci, const char* ip) {
    test::Arp a;
    a.vlan = tci;
    a.eth_src = a.sha = kOurMac;
    a.sip = a.tip = test::ip4(ip);
    a.pad_to = tci ? 64 : 60;
    return test::build(a);
  };
  auto unsolicited = [&](std::optional<uint16_t> tci, const char* ip) {
    test::Ndp a;
    a.type = 136;
    a.vlan = tci;
    a.eth_src = kOurMac;
    a.src6 = a.target = test::ip6(ip);
    a.dst6 = test::ip6("ff02::1");
    a.override_flag = true;
    a.lladdr = kOurMac;
    return test::build(a);
  };
  const std::vector<test::Frame> want = {
      // ARP first (VIPs, local ips, the interface's), clients then backends; then IPv6.
      garp(0x0064, "203.0.113.10"), garp(0x0064, "198.51.100.100"), garp(0x0064, "192.0.2.1"),
      garp(std::nullopt, "203.0.113.10"), garp(std::nullopt, "198.51.100.100"),
      garp(std::nullopt, "198.51.100.254"),
      unsolicited(0x0064, "2001:db8::10"), unsolicited(0x0064, "2001:db8:200::1"),
      unsolicited(std::nullopt, "2001:db8::10"),
  };
  ASSERT_EQ(out.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(out[i].first, 0) << i;
    EXPECT_EQ(out[i].second, want[i]) << i << ": " << test::hex(out[i].second);
  }
  rte_mempool_free(pool);
}

TEST(NeighServiceVlan, ABondWithManyInterfacesAnnouncesAtMostTheOverallCap) {
  ASSERT_TRUE(test::init_eal());
  // Room for every frame the uncapped announcement would make (8 x 200), so that only the
  // cap can keep it to 1024.
  rte_mempool* pool = rte_pktmbuf_pool_create("nda_pool", 2047, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
  ASSERT_NE(pool, nullptr);
  dp::Publisher pub(1);
  dp::NeighManagerParams p;
  p.port_macs = {kOurMac};
  dp::NeighService svc("nda", 1, pool, pub.qsbr(), p);
  std::string err;
  ASSERT_TRUE(svc.ok(&err)) << err;
  dp::SnapshotParams sp;
  sp.n_ports = 1;
  auto snap = dp::build_snapshot(api::State{}, sp);
  // 200 VIPs, answered on each of 8 VLANs of port 0: 1600 gratuitous ARPs uncapped, each
  // interface within its own cap (256).
  for (uint32_t i = 0; i < 200; ++i) snap->vip_ips.push_back(htonl(test::ip4("203.0.113.0") + i));
  for (uint16_t id = 0; id < 8; ++id) test::set_iface(*snap, id, 0, static_cast<uint16_t>(10 + id));
  svc.poll(snap.get(), 1);
  drain_tx(svc);
  const uint64_t before = svc.counters().originated;
  svc.announce(snap.get(), 0);
  EXPECT_EQ(svc.announce_cut(), 1600u - 1024u);
  // Worker 0 drains the ring while the main lcore fills it; here nobody does: what the ring
  // cannot hold is dropped (counted), never more than the cap is built.
  svc.poll(snap.get(), 2);
  drain_tx(svc);
  EXPECT_EQ(svc.counters().originated - before, 1024u);
  // One interface alone: its own cap (256 per family) cuts the rest.
  auto one = dp::build_snapshot(api::State{}, sp);
  for (uint32_t i = 0; i < 300; ++i) one->vip_ips.push_back(htonl(test::ip4("203.0.113.0") + i));
  test::set_iface(*one, 0, 0, 10);
  svc.announce(one.get(), 0);
  EXPECT_EQ(svc.announce_cut(), 1600u - 1024u + 44u);
  svc.poll(one.get(), 3);
  drain_tx(svc);
  rte_mempool_free(pool);
}

}  // namespace
}  // namespace rondo

// Integration: two workers with software steering. Client packets land on either queue (as
// RSS would spread them); backend replies are injected on the queue of the worker that does
// NOT own their local port, so every one of them has to be handed over. Every reply must
// leave from the owner, rewritten for its own flow; counters must add up.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "tests/common/packet_builder.h"
#include "tests/common/ring_dataplane.h"
#include "tests/common/seed_topology.h"

namespace rondo {
namespace {

using test::Arp;
using test::Frame;
using test::ip4;
using test::Mac;
using test::Pkt;

using namespace test::seed;  // addresses of the seed scenario
constexpr uint16_t kLportLo = 40000;
constexpr int kFlows = 40;

api::State state() { return test::seed::state(/*with_dns=*/false); }

uint16_t be16_at(const Frame& f, size_t off) { return static_cast<uint16_t>(f[off] << 8 | f[off + 1]); }
uint32_t be32_at(const Frame& f, size_t off) {
  return static_cast<uint32_t>(be16_at(f, off)) << 16 | be16_at(f, off + 2);
}

struct FlowSeen {
  uint16_t owner;  // worker that created the flow
  uint16_t lport;
  uint16_t bport;
};

class Steering : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(test::init_eal()); }
};

TEST_F(Steering, EveryReplyReachesTheWorkerThatOwnsItsFlow) {
  test::RingDataplane dp("steer", 2, kLportLo, 64);
  const Mac me = dp.mac();
  dp.push(state());
  dp.settle();
  // The main lcore asked for the late backend's MAC on taking in the snapshot, once; worker
  // 0 sent the request.
  EXPECT_EQ(dp.sent(0).size(), 1u);
  EXPECT_EQ(dp.sent(1).size(), 0u);
  const unsigned baseline = rte_mempool_in_use_count(dp.pool());

  // 1. SYNs, spread over both queues.
  std::map<uint32_t, FlowSeen> flows;  // by local port << 16 | backend port
  std::map<uint16_t, int> per_backend;
  for (int k = 0; k < kFlows; ++k) {
    Pkt syn;
    syn.src_mac = kClientMac;
    syn.dst_mac = me;
    syn.src_ip = kClient;
    syn.dst_ip = kVip;
    syn.sport = static_cast<uint16_t>(50000 + k);
    syn.dport = 80;
    syn.tcp_flags = 0x02;
    dp.inject(static_cast<uint16_t>(k % 2), test::build(syn));
  }
  dp.settle();
  for (uint16_t w = 0; w < 2; ++w) {
    for (const Frame& f : dp.sent(w)) {
      ASSERT_EQ(f.size(), 14u + 40u);
      EXPECT_EQ(be32_at(f, 14 + 12), kLocal);
      EXPECT_EQ(be32_at(f, 14 + 16), kBackend);
      const uint16_t lport = be16_at(f, 34), bport = be16_at(f, 36);
      // The worker that created the flow took a local port it owns.
      EXPECT_EQ(dp.worker(w).pipeline.port_owner(lport), w) << lport;
      // Which client is it? The payload-free SYN keeps its sequence number; use the
      // (local port, backend port) map instead: each pair is unique (a local port is unique
      // per backend).
      flows[uint32_t{lport} << 16 | bport] = FlowSeen{w, lport, bport};
      per_backend[bport]++;
    }
  }
  ASSERT_EQ(flows.size(), static_cast<size_t>(kFlows)) << "every SYN forwarded once, distinct (local port, backend) pairs";
  // Round-robin per worker: 20 flows each over 4 backends → 5 + 5 per backend.
  for (uint16_t b = 3000; b < 3004; ++b) EXPECT_EQ(per_backend[b], kFlows / 4) << "backend " << b;

  // 2. SYN-ACKs, each on the queue of the worker that does NOT own the flow.
  for (const auto& [key, fs] : flows) {
    const uint16_t lport = fs.lport;
    Pkt sa;
    sa.src_mac = kBackendMac;
    sa.dst_mac = me;
    sa.src_ip = kBackend;
    sa.dst_ip = kLocal;
    sa.sport = fs.bport;
    sa.dport = lport;
    sa.tcp_flags = 0x12;
    sa.seq = key;  // marks which flow the reply belongs to
    sa.ack = 1000 + 1;  // acknowledges the client's SYN (builder's ISN): the tracker checks
    dp.inject(static_cast<uint16_t>(1 - fs.owner), test::build(sa));
  }
  dp.settle();
  std::set<uint16_t> client_ports_seen;
  for (uint16_t w = 0; w < 2; ++w) {
    for (const Frame& f : dp.sent(w)) {
      ASSERT_EQ(f.size(), 14u + 40u);
      const uint32_t key = be32_at(f, 38);  // the seq we set
      const uint16_t lport = static_cast<uint16_t>(key >> 16);
      ASSERT_TRUE(flows.count(key));
      EXPECT_EQ(flows[key].owner, w) << "reply for local port " << lport << " left from worker " << w;
      EXPECT_EQ(be32_at(f, 14 + 12), kVip);
      EXPECT_EQ(be32_at(f, 14 + 16), kClient);
      EXPECT_EQ(be16_at(f, 34), 80);
      client_ports_seen.insert(be16_at(f, 36));
    }
  }
  EXPECT_EQ(client_ports_seen.size(), static_cast<size_t>(kFlows)) << "every client got its own reply";

  // 3. Counters add up over every lcore (the main lcore's row included): every hand-over
  // was received, nothing dropped, the one ARP request the main lcore made was sent.
  uint64_t rx = 0, tx = 0, drops = 0, consumed = 0, out = 0, in = 0, made = 0;
  auto add = [&](const dp::LcoreCounters& c) {
    rx += c.rx_packets;
    tx += c.tx_packets;
    consumed += c.consumed;
    out += c.steered_out;
    in += c.steered_in;
    made += c.originated;
    for (auto d : c.drops) drops += d;
  };
  for (uint16_t w = 0; w < 2; ++w) {
    EXPECT_EQ(dp.worker(w).pipeline.counters().steered_out, static_cast<uint64_t>(kFlows / 2))
        << "worker " << w;
    add(dp.worker(w).pipeline.counters());
  }
  add(dp.neigh().counters());
  EXPECT_EQ(drops, 0u);
  EXPECT_EQ(made, 1u);
  EXPECT_EQ(out, in);
  EXPECT_EQ(rx + in + made, tx + drops + consumed + out);
  EXPECT_EQ(rte_mempool_in_use_count(dp.pool()), baseline) << "mbuf leak";
}

// The same for IPv6 full-NAT (seed::state6()): v6 replies land on the worker that does not
// own their local port and are handed over to the one that does.
TEST_F(Steering, EveryV6ReplyReachesTheWorkerThatOwnsItsFlow) {
  test::RingDataplane dp("steer6", 2, kLportLo, 64);
  const Mac me = dp.mac();
  dp.push(test::seed::state6());
  dp.settle();
  for (uint16_t w = 0; w < 2; ++w) dp.sent(w);  // the late (v4) backend's ARP request
  const unsigned baseline = rte_mempool_in_use_count(dp.pool());
  constexpr size_t kL4 = 14 + 40;

  std::map<uint32_t, FlowSeen> flows;  // by local port << 16 | backend port
  for (int k = 0; k < kFlows; ++k) {
    Pkt syn;
    syn.v6 = true;
    syn.src_mac = kClientMac;
    syn.dst_mac = me;
    syn.src6 = kClient6;
    syn.dst6 = kVip6;
    syn.sport = static_cast<uint16_t>(50000 + k);
    syn.dport = 80;
    syn.tcp_flags = 0x02;
    dp.inject(static_cast<uint16_t>(k % 2), test::build(syn));
  }
  dp.settle();
  for (uint16_t w = 0; w < 2; ++w) {
    for (const Frame& f : dp.sent(w)) {
      ASSERT_EQ(f.size(), kL4 + 20);
      EXPECT_TRUE(std::equal(kLocal6.begin(), kLocal6.end(), f.begin() + 14 + 8));
      EXPECT_TRUE(std::equal(kBackend6.begin(), kBackend6.end(), f.begin() + 14 + 24));
      const uint16_t lport = be16_at(f, kL4), bport = be16_at(f, kL4 + 2);
      EXPECT_EQ(dp.worker(w).pipeline.port_owner(lport), w) << lport;
      flows[uint32_t{lport} << 16 | bport] = FlowSeen{w, lport, bport};
    }
  }
  ASSERT_EQ(flows.size(), static_cast<size_t>(kFlows));

  for (const auto& [key, fs] : flows) {
    Pkt sa;
    sa.v6 = true;
    sa.src_mac = kBackendMac;
    sa.dst_mac = me;
    sa.src6 = kBackend6;
    sa.dst6 = kLocal6;
    sa.sport = fs.bport;
    sa.dport = fs.lport;
    sa.tcp_flags = 0x12;
    sa.seq = key;
    sa.ack = 1000 + 1;
    dp.inject(static_cast<uint16_t>(1 - fs.owner), test::build(sa));
  }
  dp.settle();
  std::set<uint16_t> client_ports_seen;
  for (uint16_t w = 0; w < 2; ++w) {
    for (const Frame& f : dp.sent(w)) {
      ASSERT_EQ(f.size(), kL4 + 20);
      const uint32_t key = be32_at(f, kL4 + 4);
      ASSERT_TRUE(flows.count(key));
      EXPECT_EQ(flows[key].owner, w);
      EXPECT_TRUE(std::equal(kVip6.begin(), kVip6.end(), f.begin() + 14 + 8));
      EXPECT_TRUE(std::equal(kClient6.begin(), kClient6.end(), f.begin() + 14 + 24));
      EXPECT_EQ(be16_at(f, kL4), 80);
      client_ports_seen.insert(be16_at(f, kL4 + 2));
    }
  }
  EXPECT_EQ(client_ports_seen.size(), static_cast<size_t>(kFlows));
  for (uint16_t w = 0; w < 2; ++w) {
    const dp::LcoreCounters& c = dp.worker(w).pipeline.counters();
    EXPECT_EQ(c.steered_out, static_cast<uint64_t>(kFlows / 2)) << "worker " << w;
    EXPECT_EQ(c.flows6_active, static_cast<uint64_t>(kFlows / 2)) << "worker " << w;
    for (auto d : c.drops) EXPECT_EQ(d, 0u);
  }
  EXPECT_EQ(rte_mempool_in_use_count(dp.pool()), baseline) << "mbuf leak";
}

// ARP frames go to the main lcore whichever worker receives them; the next hops it learns
// are published to every worker.
TEST_F(Steering, WhatOneWorkerLearnsByArpEveryWorkerKnows) {
  test::RingDataplane dp("arp", 2, kLportLo, 64);
  const Mac me = dp.mac();
  dp.push(state());
  dp.settle();
  for (uint16_t w = 0; w < 2; ++w) dp.sent(w);

  // The late backend answers; the reply happens to land on worker 0's queue.
  Arp rep{kLateMac, me, {}, 2, kLateMac, me, kLateBackend, kLocal, 60};
  dp.inject(0, test::build(rep));
  dp.settle();
  EXPECT_EQ(dp.worker(0).pipeline.counters().steered_out, 1u);  // to the main lcore
  EXPECT_EQ(dp.neigh().counters().consumed, 1u);

  // A new connection handled by worker 1 can reach the backend at once.
  Pkt syn;
  syn.src_mac = kClientMac;
  syn.dst_mac = me;
  syn.src_ip = kClient;
  syn.dst_ip = kVip2;
  syn.sport = 51000;
  syn.dport = 80;
  syn.tcp_flags = 0x02;
  dp.inject(1, test::build(syn));
  dp.settle();
  const auto out = dp.sent(1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(std::equal(kLateMac.begin(), kLateMac.end(), out[0].begin())) << test::hex(out[0]);
  EXPECT_EQ(dp.worker(1).pipeline.counters().drops[static_cast<uint32_t>(dp::DropReason::kNeighUnresolved)], 0u);
}

}  // namespace
}  // namespace rondo

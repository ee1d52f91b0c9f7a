// Integration: operators' questions reach the workers through their query rings (the real
// ControlAgent, InspectAgent and Worker, EAL with ring ports). The consistency rule: the main
// lcore never reads a worker's flow table itself, so an answer exists only once the worker
// has run its loop; a worker that does not run makes the request fail after the deadline,
// and its late answer is taken back by the next request.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "tests/common/packet_builder.h"
#include "tests/common/ring_dataplane.h"
#include "tests/common/seed_topology.h"

namespace rondo {
namespace {

using test::Frame;
using test::Pkt;
using namespace test::seed;

class Inspect : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(test::init_eal()); }

  // Send `req` from another thread (the main lcore's place) while this thread runs the
  // workers' loops (unless `run_workers` is false); returns the reply's type and body.
  api::MsgType ask(test::RingDataplane& dp, const api::InspectRequest& req, std::vector<uint8_t>* reply,
                   bool run_workers = true) {
    const auto body = api::encode_inspect_request(req);
    const api::MsgHeader h{api::kMagic, api::kVersion, static_cast<uint16_t>(api::MsgType::kInspect),
                           static_cast<uint32_t>(body.size()), 1};
    std::atomic<bool> done{false};
    api::MsgType type{};
    std::thread main_lcore([&] {
      type = dp.agent().handle(h, body, reply);
      done = true;
    });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done && std::chrono::steady_clock::now() < deadline) {
      if (run_workers)
        for (uint16_t i = 0; i < dp.workers(); ++i) dp.poll(i);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    main_lcore.join();
    return type;
  }
};

TEST_F(Inspect, FlowsOfEveryWorkerArePagedThroughTheirRings) {
  test::RingDataplane dp("insp1", 2, 40000, 1000);
  dp.push(state(false));
  // 10 SYNs on each worker's queue: 20 flows, 10 owned by each.
  for (uint16_t q = 0; q < 2; ++q)
    for (uint16_t i = 0; i < 10; ++i) {
      Pkt p;
      p.dst_mac = dp.mac();
      p.src_ip = kClient;
      p.dst_ip = kVip;
      p.sport = static_cast<uint16_t>(20000 + q * 100 + i);
      p.dport = 80;
      p.tcp_flags = 0x02;
      dp.inject(q, test::build(p));
    }
  dp.settle();
  (void)dp.sent(0);
  (void)dp.sent(1);
  // Pages of 3 across both workers: every flow exactly once, each with its owner.
  api::InspectRequest req;
  req.op = api::InspectOp::kFlows;
  req.filter.vip_ip = api::Addr::from_v4(kVip);
  req.limit = 3;
  std::set<uint16_t> ports;
  std::set<uint32_t> owners;
  int pages = 0;
  do {
    std::vector<uint8_t> reply;
    ASSERT_EQ(ask(dp, req, &reply), api::MsgType::kInspectReply);
    std::string err;
    auto r = api::decode_inspect_reply(reply, &err);
    ASSERT_TRUE(r) << err;
    EXPECT_LE(r->flows.size(), 3u);
    for (const auto& f : r->flows) {
      EXPECT_TRUE(ports.insert(f.client_port).second) << f.client_port;
      owners.insert(f.lcore);
      EXPECT_EQ(f.lcore, (f.client_port - 20000) / 100) << "flow listed under another worker";
    }
    req.cursor = r->next_cursor;
    ASSERT_LT(++pages, 20);
  } while (req.cursor != 0);
  EXPECT_EQ(ports.size(), 20u);
  EXPECT_EQ(owners, (std::set<uint32_t>{0, 1}));
}

TEST_F(Inspect, AWorkerThatDoesNotRunFailsTheRequestAndIsTakenBackLater) {
  test::RingDataplane dp("insp2", 1, 40000, 100);
  dp.push(state(false));
  api::InspectRequest req;
  req.op = api::InspectOp::kDrops;
  std::vector<uint8_t> reply;
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(ask(dp, req, &reply, /*run_workers=*/false), api::MsgType::kError);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, dp::InspectAgent::kWorkerDeadline);
  std::string err;
  auto ack = api::decode_ack(reply, &err);
  ASSERT_TRUE(ack) << err;
  EXPECT_EQ(ack->message, "worker 0 (lcore 0) did not answer within 500 ms");
  // The worker runs again: its late answer is taken back, and the next request answered.
  dp.poll(0);
  ASSERT_EQ(ask(dp, req, &reply), api::MsgType::kInspectReply);
  EXPECT_TRUE(api::decode_inspect_reply(reply, &err)) << err;
  // A malformed request changes nothing and says why.
  const std::vector<uint8_t> junk{1, 2, 3};
  const api::MsgHeader h{api::kMagic, api::kVersion, static_cast<uint16_t>(api::MsgType::kInspect), 3, 2};
  ASSERT_EQ(dp.agent().handle(h, junk, &reply), api::MsgType::kError);
  ack = api::decode_ack(reply, &err);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->message, "inspect: bad length");
}

}  // namespace
}  // namespace rondo

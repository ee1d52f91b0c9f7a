// Least connections (sched/lc.h): the choice itself (fewest flows per unit of weight, ties
// to the lowest index), sched_pick over a snapshot with published counts and the worker's
// own delta (a burst spreads; a new publication resets the delta), and the main lcore's
// sum over the workers' counters.
#include "dataplane/sched/lc.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <vector>

#include "dataplane/sched/sched.h"
#include "dataplane/state/snapshot.h"

namespace rondo::dp {
namespace {

uint32_t lc(const std::vector<uint64_t>& flows, const std::vector<uint64_t>& weights) {
  return LeastConn::pick(
      static_cast<uint32_t>(flows.size()), [&](uint32_t i) { return weights[i]; },
      [&](uint32_t i) { return flows[i]; });
}

TEST(LeastConnTest, FewestFlowsPerUnitOfWeight) {
  EXPECT_EQ(lc({10, 4, 7}, {1, 1, 1}), 1u);
  EXPECT_EQ(lc({10, 4, 7}, {3, 1, 2}), 0u);  // 3.33, 4, 3.5
  EXPECT_EQ(lc({10, 4, 7}, {3, 1, 3}), 2u);  // 3.33, 4, 2.33
  EXPECT_EQ(lc({0, 0, 1}, {1, 1, 1}), 0u);
  EXPECT_EQ(lc({9}, {5}), 0u);
  // Exact: 7/3 vs 5/2 (2.33 < 2.5); no rounding by integer division.
  EXPECT_EQ(lc({5, 7}, {2, 3}), 1u);
}

TEST(LeastConnTest, TiesGoToTheLowestIndex) {
  EXPECT_EQ(lc({4, 4, 4}, {1, 1, 1}), 0u);
  EXPECT_EQ(lc({6, 2, 4}, {3, 1, 2}), 0u);  // 2, 2, 2
  EXPECT_EQ(lc({5, 3, 3}, {1, 1, 1}), 1u);
}

TEST(LeastConnTest, HeavierWinsOnEqualCounts) {
  EXPECT_EQ(lc({5, 5}, {1, 2}), 1u);
  EXPECT_EQ(lc({5, 5}, {2, 1}), 0u);
  EXPECT_EQ(lc({0, 0}, {1, 2}), 0u);  // nothing yet: 0/1 == 0/2, a tie
}

TEST(LeastConnTest, NoOverflowAtTheLimits) {
  // 2^32 flows times weight 65535 fits in 64 bits.
  EXPECT_EQ(lc({UINT32_MAX, uint64_t{UINT32_MAX} - 1}, {65535, 65535}), 1u);
  EXPECT_EQ(lc({UINT32_MAX, 1}, {65535, 1}), 1u);
}

// ---- sched_pick over a snapshot ----

api::Backend backend(uint32_t id, uint16_t port, uint16_t weight = 1) {
  api::Backend b;
  b.id = id;
  b.ip = api::Addr::from_v4(0xc6336403);  // 198.51.100.3
  b.port = port;
  b.weight = weight;
  return b;
}

api::State lc_state(std::vector<api::Backend> bs) {
  api::State st;
  api::Vip v;
  v.id = 1;
  v.ip = api::Addr::from_v4(0xcb00710a);  // 203.0.113.10
  v.port = 80;
  v.sched = api::Sched::kLeastConn;
  v.backends = std::move(bs);
  st.vips.push_back(v);
  return st;
}

const VipConf& the_vip(const Snapshot& s) { return s.vips.at(0); }

std::vector<uint32_t> picks(const Snapshot& s, SchedState* st, int n) {
  std::vector<uint32_t> ids;
  FlowKey k;
  for (int i = 0; i < n; ++i) {
    const uint32_t p = sched_pick(s, the_vip(s), st, k, 0);
    ids.push_back(p == kNoPick ? kNoPick : s.eligible_backend(the_vip(s), p).id);
  }
  return ids;
}

std::unique_ptr<BackendLoad> load(uint64_t epoch, std::map<uint32_t, uint32_t> flows) {
  auto l = std::make_unique<BackendLoad>();
  l->epoch = epoch;
  for (auto [id, n] : flows) {
    if (l->flows.size() <= id) l->flows.resize(id + 1, 0);
    l->flows[id] = n;
  }
  return l;
}

std::map<uint32_t, int> tally(const std::vector<uint32_t>& ids) {
  std::map<uint32_t, int> m;
  for (uint32_t id : ids) ++m[id];
  return m;
}

TEST(LcPickTest, PublishedCountsDecide) {
  auto s = build_snapshot(lc_state({backend(10, 3000), backend(11, 3001), backend(12, 3002)}));
  SchedState ss;
  auto l = load(1, {{10, 7}, {11, 3}, {12, 5}});
  ss.load = l.get();
  // 11 until it catches up with 12 (3 -> 5), then 11 and 12 in turn up to 10's 7.
  EXPECT_EQ(picks(*s, &ss, 6), (std::vector<uint32_t>{11, 11, 11, 12, 11, 12}));
}

TEST(LcPickTest, WeightsTwoToOneFavourTheHeavier) {
  auto s = build_snapshot(lc_state({backend(10, 3000, 1), backend(11, 3001, 2)}));
  SchedState ss;
  auto l = load(1, {{10, 6}, {11, 6}});
  ss.load = l.get();
  EXPECT_EQ(picks(*s, &ss, 1), (std::vector<uint32_t>{11}));
  // 11 more: 10 ends at 6 + 2, 11 at 6 + 10 = 16, twice 8.
  EXPECT_EQ(tally(picks(*s, &ss, 11)), (std::map<uint32_t, int>{{10, 2}, {11, 9}}));
}

TEST(LcPickTest, TheWorkersDeltaSpreadsABurst) {
  auto s = build_snapshot(lc_state({backend(10, 3000), backend(11, 3001), backend(12, 3002)}));
  SchedState ss;
  auto l = load(1, {{10, 10}, {11, 10}, {12, 10}});
  ss.load = l.get();
  // 30 new flows before the next publication: 10 each, in turn, not 30 to backend 10.
  const auto got = picks(*s, &ss, 30);
  EXPECT_EQ(tally(got), (std::map<uint32_t, int>{{10, 10}, {11, 10}, {12, 10}}));
  EXPECT_EQ(std::vector<uint32_t>(got.begin(), got.begin() + 6),
            (std::vector<uint32_t>{10, 11, 12, 10, 11, 12}));
}

TEST(LcPickTest, ANewPublicationResetsTheDelta) {
  auto s = build_snapshot(lc_state({backend(10, 3000), backend(11, 3001)}));
  SchedState ss;
  auto l1 = load(1, {{10, 0}, {11, 10}});
  ss.load = l1.get();
  EXPECT_EQ(picks(*s, &ss, 10), std::vector<uint32_t>(10, 10));  // 10 catches up: 10 + 0 vs 10
  // The next counts include those 10 flows (and 5 ended): the delta must not count them again
  // (5 + 10 > 10 would pick 11).
  auto l2 = load(2, {{10, 5}, {11, 10}});
  ss.load = l2.get();
  EXPECT_EQ(picks(*s, &ss, 5), std::vector<uint32_t>(5, 10));
  // The same publication seen again (next loop): the delta of those 5 stands, a tie at 10.
  EXPECT_EQ(picks(*s, &ss, 2), (std::vector<uint32_t>{10, 11}));
}

TEST(LcPickTest, WithoutPublishedCountsTheDeltaAlone) {
  auto s = build_snapshot(lc_state({backend(10, 3000, 1), backend(11, 3001, 3)}));
  SchedState ss;  // no load yet: the main lcore has not published
  EXPECT_EQ(tally(picks(*s, &ss, 8)), (std::map<uint32_t, int>{{10, 2}, {11, 6}}));
}

TEST(LcPickTest, IdsPastThePublishedCountsCountZero) {
  // Backend 40 came with a snapshot newer than the counts: it has no flows yet.
  auto s = build_snapshot(lc_state({backend(10, 3000), backend(40, 3001)}));
  SchedState ss;
  auto l = load(1, {{10, 3}});
  ss.load = l.get();
  EXPECT_EQ(picks(*s, &ss, 4), (std::vector<uint32_t>{40, 40, 40, 10}));
}

TEST(LcPickTest, NoEligibleBackend) {
  auto b = backend(10, 3000);
  b.drained = true;
  auto s = build_snapshot(lc_state({b}));
  SchedState ss;
  EXPECT_EQ(picks(*s, &ss, 2), std::vector<uint32_t>(2, kNoPick));
}

// ---- the main lcore's sum ----

TEST(SumBackendLoadTest, SumsTheWorkersCountsOfLcBackends) {
  api::State st = lc_state({backend(10, 3000), backend(11, 3001), backend(12, 3002)});
  st.vips[0].backends[2].drained = true;  // takes no new flow: not counted
  api::Vip rr;
  rr.id = 2;
  rr.ip = api::Addr::from_v4(0xcb00710a);
  rr.port = 81;
  rr.backends = {backend(20, 3000)};
  st.vips.push_back(rr);
  auto s = build_snapshot(st);
  std::vector<BackendCounters> w0(kBackendSlots), w1(kBackendSlots);
  w0[10].active_flows = 3;
  w1[10].active_flows = 4;
  w1[11].active_flows = 9;
  w0[12].active_flows = 5;
  w0[20].active_flows = 8;
  const BackendCounters* workers[] = {w0.data(), w1.data()};
  auto l = sum_backend_load(*s, workers, 7);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->epoch, 7u);
  EXPECT_EQ(l->at(10), 7u);
  EXPECT_EQ(l->at(11), 9u);
  EXPECT_EQ(l->flows.size(), 12u);  // up to the highest eligible lc backend id
  EXPECT_EQ(l->at(20), 0u);

  st.vips[0].sched = api::Sched::kRoundRobin;  // no lc VIP: nothing to publish
  EXPECT_EQ(sum_backend_load(*build_snapshot(st), workers, 8), nullptr);
}

}  // namespace
}  // namespace rondo::dp

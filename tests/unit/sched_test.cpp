// Round-robin: the cursor itself, then sched_pick over snapshots built from api::State
// (eligibility, no eligible backend, per-VIP cursors, cursors surviving a new snapshot).
// Smooth weighted round-robin: exact interleaved shares, reset when the pool changes.
#include "dataplane/sched/sched.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <vector>

#include "dataplane/sched/rr.h"
#include "dataplane/sched/wrr.h"
#include "dataplane/state/snapshot.h"

namespace rondo::dp {
namespace {

TEST(RoundRobinTest, CyclesInOrder) {
  uint32_t cursor = 0;
  std::vector<uint32_t> got;
  for (int i = 0; i < 10; ++i) got.push_back(RoundRobin::pick(&cursor, 4));
  EXPECT_EQ(got, (std::vector<uint32_t>{0, 1, 2, 3, 0, 1, 2, 3, 0, 1}));
}

TEST(RoundRobinTest, SingleBackend) {
  uint32_t cursor = 0;
  for (int i = 0; i < 5; ++i) EXPECT_EQ(RoundRobin::pick(&cursor, 1), 0u);
}

TEST(RoundRobinTest, CursorWrapsWhenThePoolShrinks) {
  uint32_t cursor = 0;
  for (int i = 0; i < 3; ++i) RoundRobin::pick(&cursor, 4);  // next would be 3
  // Two backends left: index 3 does not exist any more; start over at 0.
  std::vector<uint32_t> got;
  for (int i = 0; i < 5; ++i) got.push_back(RoundRobin::pick(&cursor, 2));
  EXPECT_EQ(got, (std::vector<uint32_t>{0, 1, 0, 1, 0}));

  // Cursor exactly at the new size.
  cursor = 0;
  RoundRobin::pick(&cursor, 4);
  RoundRobin::pick(&cursor, 4);  // cursor 2
  EXPECT_EQ(RoundRobin::pick(&cursor, 2), 0u);
  EXPECT_EQ(RoundRobin::pick(&cursor, 2), 1u);

  // A cursor far out of range (whatever was left in memory) never yields an index >= n.
  cursor = 1000;
  for (int i = 0; i < 8; ++i) EXPECT_LT(RoundRobin::pick(&cursor, 3), 3u);
}

TEST(RoundRobinTest, PoolGrowthContinuesFromTheCursor) {
  uint32_t cursor = 0;
  RoundRobin::pick(&cursor, 2);  // 0
  std::vector<uint32_t> got;
  for (int i = 0; i < 6; ++i) got.push_back(RoundRobin::pick(&cursor, 4));
  EXPECT_EQ(got, (std::vector<uint32_t>{1, 2, 3, 0, 1, 2}));
}

// Next n picks of SmoothWrr over fixed weights, with the caller's current values.
std::vector<uint32_t> wrr_picks(const std::vector<int64_t>& weights, std::vector<int64_t>* cur, int n) {
  std::vector<uint32_t> got;
  for (int i = 0; i < n; ++i)
    got.push_back(SmoothWrr::pick(
        static_cast<uint32_t>(weights.size()), [&](uint32_t j) { return weights[j]; },
        [&](uint32_t j) -> int64_t& { return (*cur)[j]; }));
  return got;
}

TEST(SmoothWrrTest, WeightsThreeTwoOneInterleave) {
  std::vector<int64_t> cur(3, 0);
  // nginx's sequence for 3:2:1, every cycle of 6 the same: A B A C B A.
  const std::vector<uint32_t> cycle{0, 1, 0, 2, 1, 0};
  for (int c = 0; c < 5; ++c) EXPECT_EQ(wrr_picks({3, 2, 1}, &cur, 6), cycle) << "cycle " << c;
  EXPECT_EQ(cur, (std::vector<int64_t>{0, 0, 0}));  // back where it started
}

TEST(SmoothWrrTest, ExactSharesPerCycle) {
  const std::vector<int64_t> w{5, 1, 1, 3, 7, 2};  // sum 19
  std::vector<int64_t> cur(w.size(), 0);
  for (int c = 0; c < 3; ++c) {
    std::vector<int64_t> count(w.size(), 0);
    for (uint32_t i : wrr_picks(w, &cur, 19)) ++count[i];
    EXPECT_EQ(count, w) << "cycle " << c;
  }
  // Never the same backend more often in a row than its share forces: with 7 of 19 the
  // heaviest never runs twice in a row.
  auto seq = wrr_picks(w, &cur, 19);
  for (size_t i = 1; i < seq.size(); ++i) {
    EXPECT_FALSE(seq[i] == 4 && seq[i - 1] == 4) << i;
  }
}

TEST(SmoothWrrTest, EqualWeightsAreRoundRobin) {
  std::vector<int64_t> cur(4, 0);
  EXPECT_EQ(wrr_picks({2, 2, 2, 2}, &cur, 8), (std::vector<uint32_t>{0, 1, 2, 3, 0, 1, 2, 3}));
}

TEST(SmoothWrrTest, LargeWeightsDoNotOverflow) {
  // 65536 backends of weight 65535 sum past INT32_MAX.
  std::vector<int64_t> w(65536, 65535), cur(w.size(), 0);
  auto got = wrr_picks(w, &cur, 3);
  EXPECT_EQ(got, (std::vector<uint32_t>{0, 1, 2}));
}

// ---- sched_pick over a snapshot ----

api::Backend backend(uint32_t id, uint16_t port) {
  api::Backend b;
  b.id = id;
  b.ip = api::Addr::from_v4(0xc6336403);  // 198.51.100.3
  b.port = port;
  return b;
}

api::Vip vip(uint32_t id, uint16_t port, std::vector<api::Backend> bs) {
  api::Vip v;
  v.id = id;
  v.ip = api::Addr::from_v4(0xcb00710a);  // 203.0.113.10
  v.port = port;
  v.backends = std::move(bs);
  return v;
}

// Backend ids of the next n picks of a VIP (kNoPick as UINT32_MAX).
std::vector<uint32_t> picks(const Snapshot& s, const VipConf& v, SchedState* st, int n) {
  std::vector<uint32_t> ids;
  FlowKey k;
  for (int i = 0; i < n; ++i) {
    const uint32_t p = sched_pick(s, v, st, k, static_cast<uint32_t>(i));
    if (p == kNoPick) {
      ids.push_back(kNoPick);
      continue;
    }
    EXPECT_LT(p, v.eligible_count);
    ids.push_back(s.eligible_backend(v, p).id);
  }
  return ids;
}

const VipConf& find(const Snapshot& s, uint16_t port) {
  const VipConf* v = s.find_vip(htonl(0xcb00710a), htons(port), 6);
  EXPECT_NE(v, nullptr) << port;
  return *v;
}

TEST(SchedPickTest, FourBackendsInOrder) {
  api::State st;
  st.vips.push_back(vip(1, 80, {backend(10, 3000), backend(11, 3001), backend(12, 3002),
                                backend(13, 3003)}));
  auto s = build_snapshot(st);
  SchedState ss;
  const VipConf& v = find(*s, 80);
  EXPECT_EQ(v.eligible_count, 4u);
  EXPECT_EQ(picks(*s, v, &ss, 9), (std::vector<uint32_t>{10, 11, 12, 13, 10, 11, 12, 13, 10}));
  // The backend behind each pick carries its address and port in network order.
  EXPECT_EQ(s->eligible_backend(v, 2).port, htons(3002));
  EXPECT_EQ(s->eligible_backend(v, 2).ip, htonl(0xc6336403));
}

TEST(SchedPickTest, SkipsDrainedDownAndZeroWeight) {
  api::State st;
  auto b0 = backend(10, 3000), b1 = backend(11, 3001), b2 = backend(12, 3002),
       b3 = backend(13, 3003), b4 = backend(14, 3004);
  b1.drained = true;
  b2.down = true;
  b3.weight = 0;
  st.vips.push_back(vip(1, 80, {b0, b1, b2, b3, b4}));
  auto s = build_snapshot(st);
  SchedState ss;
  const VipConf& v = find(*s, 80);
  EXPECT_EQ(v.eligible_count, 2u);
  EXPECT_EQ(picks(*s, v, &ss, 6), (std::vector<uint32_t>{10, 14, 10, 14, 10, 14}));
  // All backends stay in the snapshot (existing flows still refer to them).
  EXPECT_EQ(s->backends.size(), 5u);
}

TEST(SchedPickTest, NoEligibleBackend) {
  api::State st;
  auto b0 = backend(10, 3000), b1 = backend(11, 3001), b2 = backend(12, 3002);
  b0.drained = true;
  b1.down = true;
  b2.weight = 0;
  st.vips.push_back(vip(1, 80, {b0, b1, b2}));
  st.vips.push_back(vip(2, 81, {}));  // no backends at all
  auto s = build_snapshot(st);
  SchedState ss;
  EXPECT_EQ(picks(*s, find(*s, 80), &ss, 3), (std::vector<uint32_t>(3, kNoPick)));
  EXPECT_EQ(picks(*s, find(*s, 81), &ss, 3), (std::vector<uint32_t>(3, kNoPick)));
}

TEST(SchedPickTest, PerVipCursorsAreIndependent) {
  api::State st;
  st.vips.push_back(vip(1, 80, {backend(10, 3000), backend(11, 3001), backend(12, 3002)}));
  st.vips.push_back(vip(7, 443, {backend(20, 4000), backend(21, 4001)}));
  st.vips.push_back(vip(api::kMaxVipId, 8080, {backend(30, 5000), backend(31, 5001)}));
  auto s = build_snapshot(st);
  SchedState ss;
  const VipConf& a = find(*s, 80);
  const VipConf& b = find(*s, 443);
  const VipConf& c = find(*s, 8080);
  // Interleave: a, a, b, a, c, b, b, a, c.
  std::vector<uint32_t> got;
  for (const VipConf* v : {&a, &a, &b, &a, &c, &b, &b, &a, &c}) got.push_back(picks(*s, *v, &ss, 1)[0]);
  EXPECT_EQ(got, (std::vector<uint32_t>{10, 11, 20, 12, 30, 21, 20, 10, 31}));
}

TEST(SchedPickTest, CursorSurvivesANewSnapshotAndWrapsOnShrink) {
  api::State st;
  st.vips.push_back(vip(1, 80, {backend(10, 3000), backend(11, 3001), backend(12, 3002),
                                backend(13, 3003)}));
  SchedState ss;
  auto s1 = build_snapshot(st);
  EXPECT_EQ(picks(*s1, find(*s1, 80), &ss, 2), (std::vector<uint32_t>{10, 11}));

  // Same pool in a new snapshot object: the per-lcore cursor (by VIP id) carries on.
  auto s2 = build_snapshot(st);
  EXPECT_EQ(picks(*s2, find(*s2, 80), &ss, 1), (std::vector<uint32_t>{12}));

  // Backend 13 drained and 12 down: two eligible, cursor 3 is out of range and wraps.
  st.vips[0].backends[2].down = true;
  st.vips[0].backends[3].drained = true;
  auto s3 = build_snapshot(st);
  EXPECT_EQ(picks(*s3, find(*s3, 80), &ss, 4), (std::vector<uint32_t>{10, 11, 10, 11}));
}

api::Backend weighted(uint32_t id, uint16_t port, uint16_t weight) {
  api::Backend b = backend(id, port);
  b.weight = weight;
  return b;
}

TEST(SchedPickTest, WrrThreeTwoOne) {
  api::State st;
  st.vips.push_back(vip(1, 80, {weighted(10, 3000, 3), weighted(11, 3001, 2), weighted(12, 3002, 1)}));
  st.vips[0].sched = api::Sched::kWeightedRoundRobin;
  auto s = build_snapshot(st);
  SchedState ss;
  const VipConf& v = find(*s, 80);
  const std::vector<uint32_t> cycle{10, 11, 10, 12, 11, 10};
  auto got = picks(*s, v, &ss, 12);
  EXPECT_EQ(std::vector<uint32_t>(got.begin(), got.begin() + 6), cycle);
  EXPECT_EQ(std::vector<uint32_t>(got.begin() + 6, got.end()), cycle);
  std::map<uint32_t, int> count;
  for (uint32_t id : picks(*s, v, &ss, 600)) ++count[id];
  EXPECT_EQ(count, (std::map<uint32_t, int>{{10, 300}, {11, 200}, {12, 100}}));
}

TEST(SchedPickTest, WrrSameShapeAsRrWithEqualWeights) {
  api::State st;
  st.vips.push_back(vip(1, 80, {backend(10, 3000), backend(11, 3001)}));
  st.vips[0].sched = api::Sched::kWeightedRoundRobin;
  auto s = build_snapshot(st);
  SchedState ss;
  EXPECT_EQ(picks(*s, find(*s, 80), &ss, 4), (std::vector<uint32_t>{10, 11, 10, 11}));
}

TEST(SchedPickTest, WrrStateSurvivesAnIdenticalSnapshotAndResetsOnAPoolChange) {
  api::State st;
  st.vips.push_back(vip(1, 80, {weighted(10, 3000, 3), weighted(11, 3001, 2), weighted(12, 3002, 1)}));
  st.vips[0].sched = api::Sched::kWeightedRoundRobin;
  SchedState ss;
  auto s1 = build_snapshot(st);
  EXPECT_EQ(picks(*s1, find(*s1, 80), &ss, 3), (std::vector<uint32_t>{10, 11, 10}));
  // Same pool, new snapshot object and generation: the cycle carries on.
  st.generation = 2;
  auto s2 = build_snapshot(st);
  EXPECT_EQ(picks(*s2, find(*s2, 80), &ss, 3), (std::vector<uint32_t>{12, 11, 10}));

  // Partway through a cycle, backend 11 is drained: a fresh cycle over 10 and 12 (3:1).
  EXPECT_EQ(picks(*s2, find(*s2, 80), &ss, 2), (std::vector<uint32_t>{10, 11}));
  st.vips[0].backends[1].drained = true;
  auto s3 = build_snapshot(st);
  EXPECT_EQ(picks(*s3, find(*s3, 80), &ss, 8), (std::vector<uint32_t>{10, 10, 12, 10, 10, 10, 12, 10}));

  // Back again: and a weight change alone (same ids, same count) resets too.
  st.vips[0].backends[1].drained = false;
  auto s4 = build_snapshot(st);
  EXPECT_EQ(picks(*s4, find(*s4, 80), &ss, 6), (std::vector<uint32_t>{10, 11, 10, 12, 11, 10}));
  EXPECT_EQ(picks(*s4, find(*s4, 80), &ss, 1), (std::vector<uint32_t>{10}));
  st.vips[0].backends[0].weight = 1;
  auto s5 = build_snapshot(st);
  EXPECT_EQ(picks(*s5, find(*s5, 80), &ss, 5), (std::vector<uint32_t>{11, 10, 12, 11, 11}));
}

TEST(SchedPickTest, WrrVipsDoNotShareState) {
  api::State st;
  st.vips.push_back(vip(1, 80, {weighted(10, 3000, 2), weighted(11, 3001, 1)}));
  st.vips.push_back(vip(2, 81, {weighted(20, 3000, 1), weighted(21, 3001, 2)}));
  for (auto& v : st.vips) v.sched = api::Sched::kWeightedRoundRobin;
  auto s = build_snapshot(st);
  SchedState ss;
  std::vector<uint32_t> got;
  for (int i = 0; i < 3; ++i) {
    got.push_back(picks(*s, find(*s, 80), &ss, 1)[0]);
    got.push_back(picks(*s, find(*s, 81), &ss, 1)[0]);
  }
  EXPECT_EQ(got, (std::vector<uint32_t>{10, 21, 11, 20, 10, 21}));
}

}  // namespace
}  // namespace rondo::dp

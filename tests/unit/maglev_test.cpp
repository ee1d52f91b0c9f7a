// Weighted Maglev tables (maglev_build) and the maglev and sh schedulers over snapshots:
// balance, weights, churn when a backend goes, identical tables from the same pool and
// seed on two "hosts", a different seed, and source-hash stability.
#include "dataplane/sched/maglev.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <vector>

#include "dataplane/sched/sched.h"
#include "dataplane/state/snapshot.h"

namespace rondo::dp {
namespace {

const HashKey kKey = maglev_key(kDefaultMaglevSeed);

// Backend i: 10.1.(i / 250).(i % 250 + 1):(3000 + i), in network order.
MaglevBackend be(uint32_t i, uint16_t weight = 1) {
  return {htonl(0x0a010000u | (i / 250) << 8 | (i % 250 + 1)), htons(static_cast<uint16_t>(3000 + i)),
          weight};
}

// The table as the backends it names (ip << 16 | port), so tables over differently ordered
// or different pools compare by who owns each entry.
std::vector<uint64_t> owners(const std::vector<MaglevBackend>& pool, const HashKey& key,
                             uint32_t size = kMaglevSize) {
  std::vector<uint16_t> t(size);
  maglev_build(pool, key, size, t.data());
  std::vector<uint64_t> out(size);
  for (uint32_t j = 0; j < size; ++j) {
    EXPECT_LT(t[j], pool.size());
    out[j] = uint64_t{pool[t[j]].ip} << 16 | pool[t[j]].port;
  }
  return out;
}

// Largest |entries - weighted share| / share over the pool, and checks every backend got some.
double max_deviation(const std::vector<MaglevBackend>& pool, const std::vector<uint64_t>& table) {
  std::map<uint64_t, uint32_t> count;
  for (uint64_t o : table) ++count[o];
  double wsum = 0;
  for (const auto& b : pool) wsum += b.weight;
  double worst = 0;
  for (const auto& b : pool) {
    const double share = table.size() * b.weight / wsum;
    const double got = count[uint64_t{b.ip} << 16 | b.port];
    worst = std::max(worst, std::fabs(got - share) / share);
  }
  return worst;
}

TEST(MaglevTest, BalancedWithinOnePercentUpToHundredBackends) {
  double worst = 0;
  for (uint32_t n : {1u, 2u, 3u, 5u, 10u, 33u, 64u, 99u, 100u}) {
    std::vector<MaglevBackend> pool;
    for (uint32_t i = 0; i < n; ++i) pool.push_back(be(i));
    const double d = max_deviation(pool, owners(pool, kKey));
    EXPECT_LE(d, 0.01) << n << " backends";
    worst = std::max(worst, d);
  }
  std::printf("equal weights, 1-100 backends: max deviation from the share %.4f%%\n", worst * 100);
}

TEST(MaglevTest, WeightedSharesWithinOnePercent) {
  double worst = 0;
  for (uint32_t n : {2u, 10u, 100u}) {
    std::vector<MaglevBackend> pool;
    for (uint32_t i = 0; i < n; ++i) pool.push_back(be(i, static_cast<uint16_t>(i % 4 + 1)));
    const double d = max_deviation(pool, owners(pool, kKey));
    EXPECT_LE(d, 0.01) << n << " backends, weights 1-4";
    worst = std::max(worst, d);
  }
  std::printf("weights 1-4, up to 100 backends: max deviation from the share %.4f%%\n", worst * 100);
}

TEST(MaglevTest, WeightsTwoToOne) {
  std::vector<MaglevBackend> pool{be(0, 2), be(1, 1)};
  std::map<uint64_t, uint32_t> count;
  for (uint64_t o : owners(pool, kKey)) ++count[o];
  const double a = count[uint64_t{pool[0].ip} << 16 | pool[0].port] / double(kMaglevSize);
  const double b = count[uint64_t{pool[1].ip} << 16 | pool[1].port] / double(kMaglevSize);
  std::printf("weights 2:1: %.4f : %.4f of the entries\n", a, b);
  EXPECT_NEAR(a, 2.0 / 3, 0.01 * 2 / 3);
  EXPECT_NEAR(b, 1.0 / 3, 0.01 / 3);
  // A weight 0 is never in a table (not eligible); a heavy skew still leaves the light one
  // its share.
  std::vector<MaglevBackend> skew{be(0, 1000), be(1, 1)};
  EXPECT_LE(max_deviation(skew, owners(skew, kKey)), 0.02);
}

TEST(MaglevTest, RemovingOneOfNMovesAboutOneNth) {
  for (uint32_t n : {10u, 50u, 100u}) {
    std::vector<MaglevBackend> pool;
    for (uint32_t i = 0; i < n; ++i) pool.push_back(be(i));
    const auto before = owners(pool, kKey);
    const uint64_t gone = uint64_t{pool[n / 2].ip} << 16 | pool[n / 2].port;
    pool.erase(pool.begin() + n / 2);
    const auto after = owners(pool, kKey);
    uint32_t changed = 0, survivors_moved = 0, owned_by_gone = 0;
    for (uint32_t j = 0; j < kMaglevSize; ++j) {
      if (before[j] == gone) ++owned_by_gone;
      if (before[j] != after[j]) {
        ++changed;
        if (before[j] != gone) ++survivors_moved;  // an entry moved between two survivors
      }
    }
    const double ideal = double(kMaglevSize) / n;
    std::printf("%u backends, one removed: %u entries changed (1/N = %.0f; %.2f%% of the table), "
                "%u of them between survivors (%.2f%%)\n",
                n, changed, ideal, 100.0 * changed / kMaglevSize, survivors_moved,
                100.0 * survivors_moved / kMaglevSize);
    // Every entry of the removed backend must move; the rest should mostly stay.
    EXPECT_EQ(changed - survivors_moved, owned_by_gone);
    EXPECT_GE(changed, owned_by_gone);
    EXPECT_LE(changed, 2.0 * ideal) << n;
  }
}

TEST(MaglevTest, SamePoolAndSeedGiveTheSameTableWhateverTheOrder) {
  std::vector<MaglevBackend> pool;
  for (uint32_t i = 0; i < 40; ++i) pool.push_back(be(i, static_cast<uint16_t>(i % 3 + 1)));
  const auto a = owners(pool, maglev_key(1234));
  const auto b = owners(pool, maglev_key(1234));  // a second "host"
  EXPECT_EQ(a, b);
  std::mt19937 rng(7);
  std::shuffle(pool.begin(), pool.end(), rng);  // another host's config lists them differently
  EXPECT_EQ(owners(pool, maglev_key(1234)), a);
}

TEST(MaglevTest, AnotherSeedGivesAnotherTable) {
  std::vector<MaglevBackend> pool;
  for (uint32_t i = 0; i < 10; ++i) pool.push_back(be(i));
  const auto a = owners(pool, maglev_key(1));
  const auto b = owners(pool, maglev_key(2));
  uint32_t differ = 0;
  for (uint32_t j = 0; j < kMaglevSize; ++j) differ += a[j] != b[j];
  std::printf("10 backends, seeds 1 and 2: %u of %u entries differ\n", differ, kMaglevSize);
  EXPECT_GT(differ, kMaglevSize / 2);  // unrelated tables: about 9 in 10 differ
  EXPECT_LE(max_deviation(pool, b), 0.01);
}

TEST(MaglevTest, SmallPrimeTable) {
  std::vector<MaglevBackend> pool{be(0), be(1), be(2)};
  const auto t = owners(pool, kKey, 7);
  std::map<uint64_t, int> count;
  for (uint64_t o : t) ++count[o];
  for (const auto& [o, c] : count) EXPECT_TRUE(c == 2 || c == 3) << c;
  EXPECT_EQ(count.size(), 3u);
}

// ---- the maglev and sh schedulers over snapshots ----

api::State pool_state(api::Sched sched, uint32_t n) {
  api::State st;
  api::Vip v;
  v.id = 3;
  v.ip = api::Addr::from_v4(0xcb00710a);  // 203.0.113.10
  v.port = 80;
  v.sched = sched;
  for (uint32_t i = 0; i < n; ++i) {
    api::Backend b;
    b.id = 100 + i;
    b.ip = api::Addr::from_v4(0xc6336400 + i + 1);  // 198.51.100.x
    b.port = static_cast<uint16_t>(3000 + i);
    v.backends.push_back(b);
  }
  st.vips.push_back(v);
  return st;
}

FlowKey client(uint32_t ip, uint16_t port) {
  FlowKey k;
  k.src_ip = htonl(ip);
  k.dst_ip = htonl(0xcb00710a);
  k.src_port = htons(port);
  k.dst_port = htons(80);
  k.proto = 6;
  return k;
}

// Backend id picked for k, with fresh per-lcore state.
uint32_t pick_id(const Snapshot& s, const FlowKey& k, uint32_t flow_hash = 0) {
  SchedState ss;
  const VipConf& v = s.vips.at(0);
  const uint32_t p = sched_pick(s, v, &ss, k, flow_hash);
  EXPECT_LT(p, v.eligible_count);
  return p < v.eligible_count ? s.eligible_backend(v, p).id : kNoPick;
}

TEST(MaglevSchedTest, TwoHostsChooseTheSameBackendPerFlow) {
  const auto st = pool_state(api::Sched::kMaglev, 4);
  auto host_a = build_snapshot(st);
  // Host b: the same pool listed in another order, with other ids (ids are local).
  auto other = st;
  std::reverse(other.vips[0].backends.begin(), other.vips[0].backends.end());
  for (auto& b : other.vips[0].backends) b.id += 1000;
  auto host_b = build_snapshot(other);
  std::map<uint32_t, int> spread;
  for (uint32_t c = 0; c < 4000; ++c) {
    const FlowKey k = client(0x0a000000 + c / 40, static_cast<uint16_t>(20000 + c));
    // The flow table's hash differs per host (its secret): not used by maglev.
    const uint32_t a = pick_id(*host_a, k, c * 7);
    const uint32_t b = pick_id(*host_b, k, c * 13 + 1);
    ASSERT_EQ(a + 1000, b) << c;
    ++spread[a];
  }
  EXPECT_EQ(spread.size(), 4u);
  for (const auto& [id, n] : spread) EXPECT_NEAR(n, 1000, 150) << id;
  // Another seed: another table, other choices for many flows.
  auto host_c = build_snapshot(st, SnapshotParams{.maglev_seed = 99});
  int differ = 0;
  for (uint32_t c = 0; c < 400; ++c) {
    const FlowKey k = client(0x0a000000 + c, 40000);
    differ += pick_id(*host_a, k) != pick_id(*host_c, k);
  }
  EXPECT_GT(differ, 200);
}

TEST(MaglevSchedTest, NoEligibleBackendNoTable) {
  auto st = pool_state(api::Sched::kMaglev, 2);
  for (auto& b : st.vips[0].backends) b.down = true;
  auto s = build_snapshot(st);
  SchedState ss;
  EXPECT_EQ(sched_pick(*s, s->vips[0], &ss, client(0x0a000001, 1), 0), kNoPick);
  EXPECT_TRUE(s->maglev.empty());
}

TEST(SourceHashTest, SameClientSameBackendAcrossCallsAndInstances) {
  const auto st = pool_state(api::Sched::kSourceHash, 5);
  auto a = build_snapshot(st);
  auto b = build_snapshot(st);
  std::map<uint32_t, int> spread;
  for (uint32_t c = 0; c < 500; ++c) {
    const uint32_t ip = 0x0a000000 + c * 7919;
    const uint32_t first = pick_id(*a, client(ip, 1024));
    ++spread[first];
    for (uint16_t port : {1025, 40000, 65535}) {
      EXPECT_EQ(pick_id(*a, client(ip, port)), first) << c;  // other connections of the client
      EXPECT_EQ(pick_id(*b, client(ip, port), port), first) << c;  // another instance
    }
  }
  EXPECT_EQ(spread.size(), 5u);  // clients spread over every backend
  for (const auto& [id, n] : spread) EXPECT_NEAR(n, 100, 40) << id;
}

TEST(SourceHashTest, ClientsOfARemovedBackendMoveOthersStay) {
  auto st = pool_state(api::Sched::kSourceHash, 5);
  auto before = build_snapshot(st);
  st.vips[0].backends[2].drained = true;
  auto after = build_snapshot(st);
  int moved = 0;
  for (uint32_t c = 0; c < 1000; ++c) {
    const FlowKey k = client(0x0a000000 + c * 104729, 5555);
    const uint32_t x = pick_id(*before, k), y = pick_id(*after, k);
    if (x != 102) moved += x != y;
    EXPECT_NE(y, 102u);
  }
  EXPECT_LE(moved, 30);  // a few entries move between survivors (Maglev's small disruption)
}

}  // namespace
}  // namespace rondo::dp

namespace rondo::dp {
namespace {

// What `rondoctl show` prints as TABLE%: each backend's entries, counted when the snapshot is
// built, agree with the table itself; drained backends own none; other VIPs have no table.
TEST(MaglevTableSharesTest, CountedWithTheSnapshot) {
  auto st = pool_state(api::Sched::kSourceHash, 4);
  st.vips[0].backends[0].weight = 2;
  st.vips[0].backends[3].drained = true;
  api::Vip rr;
  rr.id = 4;
  rr.ip = api::Addr::from_v4(0xcb00710a);
  rr.port = 81;
  api::Backend b;
  b.id = 200;
  b.ip = api::Addr::from_v4(0xc6336409);
  b.port = 3000;
  rr.backends = {b};
  st.vips.push_back(rr);
  auto s = build_snapshot(st);
  ASSERT_EQ(s->table_shares.size(), s->backends.size());
  const VipConf& v = s->vips.at(0);
  std::map<uint32_t, uint32_t> direct;  // backend id -> entries, from the table itself
  for (uint32_t j = 0; j < s->maglev_size; ++j)
    ++direct[s->eligible_backend(v, s->maglev[v.table_first + j]).id];
  uint64_t total = 0;
  std::map<uint32_t, uint32_t> shares;
  for (size_t i = 0; i < s->backends.size(); ++i) {
    const auto& sh = s->table_shares[i];
    if (s->backends[i].id == 200) {
      EXPECT_EQ(sh.size, 0u);  // rr: no table
      EXPECT_EQ(sh.entries, 0u);
      continue;
    }
    EXPECT_EQ(sh.size, kMaglevSize);
    total += sh.entries;
    if (sh.entries) shares[s->backends[i].id] = sh.entries;
  }
  EXPECT_EQ(total, kMaglevSize);
  EXPECT_EQ(shares, direct);
  EXPECT_EQ(shares.count(103), 0u);  // drained: no entry
  // Weight 2 of 1+1+2: about half the table.
  std::printf("weights 2:1:1 (and one drained): %u %u %u of %u entries\n", shares[100], shares[101],
              shares[102], kMaglevSize);
  EXPECT_NEAR(shares[100] / double(kMaglevSize), 0.5, 0.01);
}

}  // namespace
}  // namespace rondo::dp

// NeighTable: what an ARP frame may change, and a bound that an attacker cannot turn into
// a table full for good.
#include "dataplane/neigh/neigh.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>

namespace rondo::dp {
namespace {

constexpr uint8_t kMacA[6] = {0x02, 0, 0, 0, 0, 0x0a};
constexpr uint8_t kMacB[6] = {0x02, 0, 0, 0, 0, 0x0b};
using L = NeighTable::Learned;

bool mac_is(const Neigh* n, const uint8_t mac[6]) { return n && std::memcmp(n->mac, mac, 6) == 0; }

TEST(NeighTable, ArpNeverCreatesAnEntry) {
  NeighTable t(16, 3, 100);
  EXPECT_EQ(t.learn(7, kMacA, 0, 1), L::kIgnored);
  EXPECT_EQ(t.find(7), nullptr);
  EXPECT_EQ(t.size(), 0u);
}

TEST(NeighTable, AskedForIsFilledUnsolicitedNeverChangesAMac) {
  NeighTable t(16, 3, 100);
  ASSERT_TRUE(t.want_request(7, 0, 1, 1));
  EXPECT_EQ(t.learn(7, kMacA, 0, 2), L::kFilled);
  EXPECT_TRUE(mac_is(t.find(7), kMacA));
  // Gratuitous, another MAC: refused. The same MAC: a refresh.
  EXPECT_EQ(t.learn(7, kMacB, 0, 3), L::kRefused);
  EXPECT_TRUE(mac_is(t.find(7), kMacA));
  EXPECT_EQ(t.learn(7, kMacA, 0, 4), L::kRefreshed);
  EXPECT_EQ(t.find(7)->updated, 4u);
  // Re-checked (a request outstanding): the answer may move it.
  ASSERT_TRUE(t.want_request(7, 0, 10, 1));
  EXPECT_EQ(t.learn(7, kMacB, 0, 11), L::kFilled);
  EXPECT_TRUE(mac_is(t.find(7), kMacB));
  // ...once: the request is answered.
  EXPECT_EQ(t.learn(7, kMacA, 0, 12), L::kRefused);
}

TEST(NeighTable, StaticEntriesAreNeverLearnedOver) {
  NeighTable t(16, 3, 100);
  Neigh e;
  std::memcpy(e.mac, kMacA, 6);
  t.set_static({{9, e}});
  EXPECT_EQ(t.learn(9, kMacB, 0, 1), L::kIgnored);
  EXPECT_TRUE(mac_is(t.find(9), kMacA));
  EXPECT_FALSE(t.want_request(9, 0, 2, 1));
}

// Issue 8, item 3: 4096 requests from random senders filled main's table for good. Now only
// wanted addresses get entries, and when the table is full a stale one makes room.
TEST(NeighTable, FullTableEvictsStaleEntriesNeverStaticOrFresh) {
  NeighTable t(8, /*incomplete*/ 3, /*reachable*/ 100);
  Neigh e;
  std::memcpy(e.mac, kMacA, 6);
  t.set_static({{1000, e}});
  for (uint32_t ip = 1; ip <= 7; ++ip) ASSERT_TRUE(t.want_request(ip, 0, 10, 1));
  ASSERT_EQ(t.size(), 8u);
  // Full, and every request is fresh: nothing may go.
  EXPECT_FALSE(t.want_request(50, 0, 11, 1));
  EXPECT_EQ(t.find(50), nullptr);
  // Entry 3 answered and stays in use; the other requests went unanswered for 3 ticks.
  ASSERT_EQ(t.learn(3, kMacB, 0, 12), L::kFilled);
  EXPECT_TRUE(t.want_request(50, 0, 14, 1));
  EXPECT_NE(t.find(50), nullptr);
  EXPECT_EQ(t.size(), 8u);
  EXPECT_EQ(t.evictions(), 1u);
  EXPECT_NE(t.find(1000), nullptr);
  EXPECT_TRUE(mac_is(t.find(3), kMacB));
  // A reachable entry goes only once it was not confirmed for 100 ticks.
  for (uint32_t ip = 60; ip < 70; ++ip) t.want_request(ip, 0, 20, 1);
  EXPECT_TRUE(mac_is(t.find(3), kMacB));
  for (uint32_t ip = 70; ip < 80; ++ip) t.want_request(ip, 0, 200, 1);
  EXPECT_EQ(t.find(3), nullptr);
  EXPECT_NE(t.find(1000), nullptr);
  EXPECT_LE(t.size(), 8u);
}

// Eviction closes the gap in the probe run: every entry left is still found, against a
// reference model, over many random inserts and evictions; with the default key and with a
// secret one (the slot hash is keyed: docs/security.md).
class NeighKeyed : public ::testing::TestWithParam<HashKey> {};

TEST_P(NeighKeyed, EvictionKeepsEveryOtherEntryFindable) {
  NeighTable t(64, 1, 1, GetParam());
  std::map<uint32_t, uint64_t> model;  // ip -> when requested
  std::mt19937 rng(7);
  for (uint64_t now = 10; now < 5000; ++now) {
    const uint32_t ip = rng() % 512 + 1;
    if (t.want_request(ip, 0, now, 1000000)) model[ip] = now;
    uint32_t present = 0;
    for (const auto& [k, v] : model) {
      const Neigh* n = t.find(k);
      if (n) {
        ++present;
        EXPECT_EQ(n->ip, k);
      }
    }
    ASSERT_EQ(present, t.size()) << "at " << now;
  }
  EXPECT_GT(t.evictions(), 1000u);
}
INSTANTIATE_TEST_SUITE_P(Keys, NeighKeyed,
                         ::testing::Values(HashKey{}, HashKey{0x243f6a8885a308d3ull, 0x13198a2e03707344ull}));

}  // namespace
}  // namespace rondo::dp

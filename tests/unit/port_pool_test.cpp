// PortPool (FIFO reuse, guards on put) and PortOwnership (which worker owns a local port).
#include "dataplane/flow/port_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

namespace rondo::dp {
namespace {

std::vector<uint16_t> drain(PortPool& p) {
  std::vector<uint16_t> out;
  uint16_t port;
  while (p.get(&port)) out.push_back(port);
  return out;
}

TEST(PortPool, StartsWithWholeRangeInOrder) {
  PortPool p(1000, 1009);
  EXPECT_EQ(p.available(), 10u);
  EXPECT_EQ(p.lo(), 1000);
  EXPECT_EQ(p.hi(), 1009);
  auto ports = drain(p);
  ASSERT_EQ(ports.size(), 10u);
  for (uint16_t i = 0; i < 10; i++) EXPECT_EQ(ports[i], 1000 + i);
}

TEST(PortPool, ExhaustedPoolSaysSo) {
  PortPool p(7, 9);
  uint16_t port = 0;
  for (int i = 0; i < 3; i++) ASSERT_TRUE(p.get(&port));
  EXPECT_EQ(p.available(), 0u);
  port = 12345;
  EXPECT_FALSE(p.get(&port));
  EXPECT_EQ(port, 12345);  // untouched on failure
  EXPECT_TRUE(p.put(8));
  EXPECT_TRUE(p.get(&port));
  EXPECT_EQ(port, 8);
}

TEST(PortPool, ReturnedPortComesBackLast) {
  PortPool p(100, 109);
  uint16_t first;
  ASSERT_TRUE(p.get(&first));
  ASSERT_TRUE(p.put(first));
  // All nine ports that were never used go out before the one just returned.
  for (int i = 0; i < 9; i++) {
    uint16_t port;
    ASSERT_TRUE(p.get(&port));
    EXPECT_NE(port, first) << i;
  }
  uint16_t last;
  ASSERT_TRUE(p.get(&last));
  EXPECT_EQ(last, first);
}

TEST(PortPool, ReturnOrderIsReuseOrder) {
  PortPool p(0, 4);
  drain(p);
  for (uint16_t port : {3, 0, 4, 1}) ASSERT_TRUE(p.put(port));
  EXPECT_EQ(drain(p), (std::vector<uint16_t>{3, 0, 4, 1}));
}

TEST(PortPool, WrapsAroundTheRingManyTimes) {
  PortPool p(50, 56);
  uint16_t a, b;
  ASSERT_TRUE(p.get(&a));
  ASSERT_TRUE(p.get(&b));
  // Hold two ports, cycle the rest; FIFO means a steady rotation through the free ones.
  uint16_t expect = 52;
  for (int i = 0; i < 100; i++) {
    uint16_t port;
    ASSERT_TRUE(p.get(&port));
    EXPECT_EQ(port, expect);
    ASSERT_TRUE(p.put(port));
    expect = expect == 56 ? 52 : expect + 1;
  }
  EXPECT_EQ(p.available(), 5u);
}

TEST(PortPool, DoublePutIsIgnored) {
  PortPool p(200, 204);
  uint16_t port;
  ASSERT_TRUE(p.get(&port));
  EXPECT_TRUE(p.put(port));
  EXPECT_FALSE(p.put(port));
  EXPECT_EQ(p.available(), 5u);
  // A port that was never taken is free already.
  EXPECT_FALSE(p.put(202));
  EXPECT_EQ(p.available(), 5u);
  auto ports = drain(p);
  EXPECT_EQ(ports.size(), 5u);
  EXPECT_EQ(std::set<uint16_t>(ports.begin(), ports.end()).size(), 5u);
}

TEST(PortPool, OutOfRangePutIsIgnored) {
  PortPool p(200, 204);
  drain(p);
  for (uint16_t port : {0, 199, 205, 65535}) EXPECT_FALSE(p.put(port)) << port;
  EXPECT_EQ(p.available(), 0u);
}

TEST(PortPool, FullPortRange) {
  PortPool p(0, 65535);
  EXPECT_EQ(p.available(), 65536u);
  auto ports = drain(p);
  ASSERT_EQ(ports.size(), 65536u);
  EXPECT_EQ(ports.front(), 0);
  EXPECT_EQ(ports.back(), 65535);
  EXPECT_TRUE(p.put(65535));
  EXPECT_TRUE(p.put(0));
  EXPECT_EQ(drain(p), (std::vector<uint16_t>{65535, 0}));
}

TEST(PortPool, EmptyRange) {
  PortPool p(1, 0);
  EXPECT_EQ(p.available(), 0u);
  uint16_t port;
  EXPECT_FALSE(p.get(&port));
  EXPECT_FALSE(p.put(0));
  EXPECT_FALSE(p.put(1));
}

// Every port of the range belongs to exactly one worker's pool, by its low bits, and the
// pools differ in size by at most the residues one worker holds more than another.
TEST(PortOwnership, PoolsPartitionTheRange) {
  for (uint32_t n = 1; n <= 8; n++) {
    SCOPED_TRACE(testing::Message() << "n=" << n);
    PortOwnership own(n);
    EXPECT_GE(uint32_t{own.mask()} + 1, n);
    EXPECT_LT(uint32_t{own.mask()} + 1, 2 * n);
    std::vector<int> seen(65536, 0);
    uint32_t total = 0;
    for (uint32_t w = 0; w < n; w++) {
      PortPool pool(1024, 65535, own, w);
      total += pool.available();
      uint16_t p;
      while (pool.get(&p)) {
        EXPECT_EQ(own.owner(p), w) << p;
        EXPECT_EQ(p & own.mask(), p & own.mask());
        seen[p]++;
      }
    }
    EXPECT_EQ(total, 65535u - 1024 + 1);
    for (uint32_t p = 1024; p <= 65535; p++) ASSERT_EQ(seen[p], 1) << p;
  }
}

TEST(PortOwnership, ForeignPortIsNeverPutBack) {
  PortOwnership own(2);
  PortPool even(40000, 40009, own, 0);
  EXPECT_EQ(even.available(), 5u);
  EXPECT_FALSE(even.put(40001));  // worker 1's port
  uint16_t p;
  ASSERT_TRUE(even.get(&p));
  EXPECT_EQ(p, 40000);
  EXPECT_TRUE(even.put(40000));
  EXPECT_FALSE(even.put(40000));
}

TEST(PortOwnership, SingleWorkerOwnsEverything) {
  PortOwnership own(1);
  EXPECT_EQ(own.mask(), 0);
  for (uint32_t p = 0; p < 65536; p += 997) EXPECT_EQ(own.owner(static_cast<uint16_t>(p)), 0u);
}

}  // namespace
}  // namespace rondo::dp

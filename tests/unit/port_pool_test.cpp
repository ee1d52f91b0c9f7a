// PortPool (FIFO reuse, guards on put) and port_slice (per-worker split of a port range).
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

// Slices of [lo, hi] for every worker must tile the range in order.
void check_slices(uint16_t lo, uint16_t hi, uint32_t n) {
  SCOPED_TRACE(testing::Message() << "[" << lo << "," << hi << "] n=" << n);
  uint32_t total = uint32_t{hi} - lo + 1;
  uint32_t next = lo, min_size = UINT32_MAX, max_size = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint16_t s_lo, s_hi;
    port_slice(lo, hi, i, n, &s_lo, &s_hi);
    uint32_t size = s_lo <= s_hi ? uint32_t{s_hi} - s_lo + 1 : 0;
    if (size > 0) {
      EXPECT_EQ(s_lo, next) << i;  // contiguous, no gap, no overlap
      next = uint32_t{s_hi} + 1;
    }
    min_size = std::min(min_size, size);
    max_size = std::max(max_size, size);
    // PortPool agrees on the size, empty slices included.
    EXPECT_EQ(PortPool(s_lo, s_hi).available(), size) << i;
  }
  EXPECT_EQ(next, uint32_t{hi} + 1);  // covered to the end
  EXPECT_LE(max_size - min_size, 1u);
  EXPECT_EQ(min_size, total / n);
}

TEST(PortSlice, TilesTheRange) {
  for (uint32_t n = 1; n <= 8; n++) {
    check_slices(1024, 65535, n);
    check_slices(0, 65535, n);
    check_slices(10000, 10006, n);  // 7 ports: some n leave remainders, n=8 an empty slice
    check_slices(5, 5, n);
  }
}

TEST(PortSlice, BadIndexOrCountIsEmpty) {
  uint16_t s_lo, s_hi;
  port_slice(1000, 2000, 4, 4, &s_lo, &s_hi);
  EXPECT_GT(s_lo, s_hi);
  port_slice(1000, 2000, 0, 0, &s_lo, &s_hi);
  EXPECT_GT(s_lo, s_hi);
}

}  // namespace
}  // namespace rondo::dp

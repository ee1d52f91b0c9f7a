// TokenBucket: the burst passes at once, then the sustained rate, never more.
#include "dataplane/fwd/token_bucket.h"

#include <gtest/gtest.h>

namespace rondo::dp {
namespace {

uint32_t passes(TokenBucket& b, uint64_t now, uint32_t tries) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < tries; ++i) n += b.take(now);
  return n;
}

TEST(TokenBucket, BurstThenSustainedRate) {
  TokenBucket b(100, 10, 1000);  // 100/s, burst 10, clock in ms
  EXPECT_EQ(passes(b, 0, 50), 10u);
  EXPECT_EQ(passes(b, 5, 50), 0u);   // less than one interval (10 ms) later
  EXPECT_EQ(passes(b, 10, 50), 1u);
  EXPECT_EQ(passes(b, 110, 50), 10u);  // 100 ms idle refills the burst, not more
  // Over a long run the average is the rate: one event every 10 ms.
  uint32_t total = 0;
  for (uint64_t t = 1000; t < 2000; ++t) total += b.take(t);
  EXPECT_GE(total, 100u);
  EXPECT_LE(total, 110u);
}

TEST(TokenBucket, ZeroRatePassesNothing) {
  TokenBucket b(0, 10, 1000);
  EXPECT_EQ(passes(b, 0, 10), 0u);
  EXPECT_EQ(passes(b, 1'000'000, 10), 0u);
}

TEST(TokenBucket, BurstOfOneIsStrictPacing) {
  TokenBucket b(1000, 1, 1'000'000);  // 1000/s on a microsecond clock
  EXPECT_EQ(passes(b, 0, 5), 1u);
  EXPECT_EQ(passes(b, 999, 5), 0u);
  EXPECT_EQ(passes(b, 1000, 5), 1u);
}

}  // namespace
}  // namespace rondo::dp

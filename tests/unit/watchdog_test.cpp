// The watchdog's test of a live dataplane (runtime/watchdog.h): a ping only when every
// worker's loop count moved since the previous look.
#include "dataplane/runtime/watchdog.h"

#include <gtest/gtest.h>

namespace rondo::dp {
namespace {

using Stalled = std::vector<uint32_t>;

TEST(LoopProgress, EveryWorkerAdvancedMeansNoneStalled) {
  LoopProgress p(2);
  EXPECT_EQ(p.stalled({5, 9}), Stalled{});
  EXPECT_EQ(p.stalled({6, 10}), Stalled{});
}

TEST(LoopProgress, AWorkerThatNeverLoopedIsStalledAtTheFirstLook) {
  LoopProgress p(3);
  EXPECT_EQ(p.stalled({4, 0, 7}), Stalled{1});
}

TEST(LoopProgress, OneStuckWorkerAmongLiveOnesIsNamedUntilItMovesAgain) {
  LoopProgress p(3);
  EXPECT_EQ(p.stalled({10, 10, 10}), Stalled{});
  EXPECT_EQ(p.stalled({20, 10, 20}), Stalled{1});
  EXPECT_EQ(p.stalled({30, 10, 30}), Stalled{1});  // still stuck: still named
  EXPECT_EQ(p.stalled({40, 11, 40}), Stalled{});   // one loop is enough to count as alive
}

TEST(LoopProgress, SeveralStuckWorkersAreAllNamed) {
  LoopProgress p(3);
  EXPECT_EQ(p.stalled({1, 1, 1}), Stalled{});
  EXPECT_EQ(p.stalled({1, 2, 1}), (Stalled{0, 2}));
}

}  // namespace
}  // namespace rondo::dp

// Controller against a fake dataplane: the state is pushed when the dataplane may lack it
// (first connect, reconnect, restart, other generation) and only then; failures back off.
#include "controlplane/dataplane/controller.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace rondo::cp {
namespace {

using namespace std::chrono_literals;
using Clock = Controller::Clock;

// What a dataplane process would hold; shared with the test, which plays the operator.
struct FakeDataplane {
  bool listening = true;  // false: connect() fails, as with no socket file
  uint64_t instance = 1;
  uint64_t generation = 0;  // the state it forwards with
  std::string reject;       // non-empty: refuse pushes with this reason
  bool drop_next_call = false;

  int connects = 0;
  int hellos = 0;
  std::vector<api::State> pushes;

  // The process restarted: new instance, no state, existing connections broken.
  void restart() {
    ++instance;
    generation = 0;
    ++epoch;
  }
  uint64_t epoch = 0;  // connections from an older epoch are dead
};

class FakeDataplaneClient : public DataplaneClient {
 public:
  explicit FakeDataplaneClient(std::shared_ptr<FakeDataplane> dp) : dp_(std::move(dp)) {}

  bool connect() override {
    if (!dp_->listening) {
      error_ = "connect /fake.sock: No such file or directory";
      return false;
    }
    ++dp_->connects;
    connected_ = true;
    epoch_ = dp_->epoch;
    return true;
  }
  void close() override { connected_ = false; }
  bool connected() const override { return connected_; }

  std::optional<api::DataplaneInfo> hello() override {
    if (!alive()) return std::nullopt;
    ++dp_->hellos;
    return api::DataplaneInfo{.pid = 100, .n_workers = 2, .n_ports = 1, .n_drop_reasons = 3,
                              .instance = dp_->instance, .generation = dp_->generation};
  }
  api::Ack push(const api::State& s) override {
    if (!alive()) return {false, s.generation, error_};
    dp_->pushes.push_back(s);
    if (!dp_->reject.empty()) {
      error_ = "set-state refused: " + dp_->reject;
      return {false, dp_->generation, dp_->reject};
    }
    dp_->generation = s.generation;
    return {true, s.generation, "applied"};
  }
  std::optional<api::Stats> stats() override {
    if (!alive()) return std::nullopt;
    return api::Stats{.generation = dp_->generation};
  }
  std::string last_error() const override { return error_; }

 private:
  // A call on a broken connection fails and closes it, as the unix client does.
  bool alive() {
    if (connected_ && (epoch_ != dp_->epoch || dp_->drop_next_call)) {
      dp_->drop_next_call = false;
      connected_ = false;
      error_ = "connection closed";
    }
    if (!connected_ && error_.empty()) error_ = "not connected";
    return connected_;
  }

  std::shared_ptr<FakeDataplane> dp_;
  bool connected_ = false;
  uint64_t epoch_ = 0;
  std::string error_;
};

api::State make_state(uint16_t port = 80) {
  api::State s;
  s.local_ips = {0xc6336464};  // 198.51.100.100
  api::Vip v{.id = 0, .ip = 0xcb00710a, .port = port};
  v.backends = {{.id = 0, .ip = 0xc6336403, .port = 3000}, {.id = 1, .ip = 0xc6336403, .port = 3001}};
  s.vips = {v};
  return s;
}

class ControllerTest : public ::testing::Test {
 protected:
  ControllerTest()
      : dp_(std::make_shared<FakeDataplane>()),
        controller_(std::make_unique<FakeDataplaneClient>(dp_), make_state(),
                    ControllerOptions{.min_backoff = 100ms, .max_backoff = 1000ms}) {}

  // Advance the clock and tick once.
  void tick(std::chrono::milliseconds dt = 500ms) {
    now_ += dt;
    controller_.tick(now_);
  }

  std::shared_ptr<FakeDataplane> dp_;
  Controller controller_;
  Clock::time_point now_{};
};

TEST_F(ControllerTest, StartsAtGenerationOne) {
  EXPECT_EQ(controller_.generation(), 1u);
  EXPECT_FALSE(controller_.in_sync());
}

TEST_F(ControllerTest, PushesOnFirstConnect) {
  tick();
  EXPECT_EQ(dp_->connects, 1);
  ASSERT_EQ(dp_->pushes.size(), 1u);
  auto want = make_state();
  want.generation = 1;
  EXPECT_EQ(dp_->pushes[0], want);
  EXPECT_TRUE(controller_.in_sync());
  ASSERT_TRUE(controller_.dataplane());
  EXPECT_EQ(controller_.dataplane()->instance, 1u);
}

TEST_F(ControllerTest, PushesOnFirstConnectEvenIfGenerationsMatch) {
  // A dataplane left at generation 1 by an earlier control plane may hold another state.
  dp_->generation = 1;
  tick();
  EXPECT_EQ(dp_->pushes.size(), 1u);
}

TEST_F(ControllerTest, DoesNotPushAgainWhenNothingChanged) {
  for (int i = 0; i < 10; ++i) tick();
  EXPECT_EQ(dp_->connects, 1);
  EXPECT_EQ(dp_->hellos, 10);  // still watching: one hello per tick
  EXPECT_EQ(dp_->pushes.size(), 1u);
  EXPECT_TRUE(controller_.in_sync());
}

TEST_F(ControllerTest, PushesAgainAfterReconnect) {
  tick();
  dp_->drop_next_call = true;  // same process, connection lost
  tick();
  EXPECT_FALSE(controller_.in_sync());
  EXPECT_EQ(dp_->pushes.size(), 1u);
  tick();
  EXPECT_EQ(dp_->connects, 2);
  ASSERT_EQ(dp_->pushes.size(), 2u);  // generation still matches, but a reconnect always pushes
  EXPECT_EQ(dp_->pushes[1].generation, 1u);
  EXPECT_TRUE(controller_.in_sync());
  tick();
  EXPECT_EQ(dp_->pushes.size(), 2u);
}

TEST_F(ControllerTest, PushesAgainWhenDataplaneRestarts) {
  tick();
  dp_->restart();
  tick();  // the hello on the old connection fails
  tick();  // reconnect: new instance, generation 0
  EXPECT_EQ(dp_->connects, 2);
  ASSERT_EQ(dp_->pushes.size(), 2u);
  EXPECT_EQ(controller_.dataplane()->instance, 2u);
  EXPECT_EQ(dp_->generation, 1u);
}

TEST_F(ControllerTest, PushesAgainWhenInstanceChangesOnTheSameConnection) {
  tick();
  // Another process answering on a live connection (or a restart the transport hid):
  // the instance id alone must trigger a push, even with a matching generation.
  dp_->instance = 7;
  tick();
  EXPECT_EQ(dp_->connects, 1);
  EXPECT_EQ(dp_->pushes.size(), 2u);
  tick();
  EXPECT_EQ(dp_->pushes.size(), 2u);
}

TEST_F(ControllerTest, PushesAgainWhenDataplaneGenerationDiffers) {
  tick();
  dp_->generation = 99;  // someone else pushed something
  tick();
  ASSERT_EQ(dp_->pushes.size(), 2u);
  EXPECT_EQ(dp_->generation, 1u);
}

TEST_F(ControllerTest, NewStateBumpsGenerationAndIsPushed) {
  tick();
  EXPECT_EQ(controller_.generation(), 1u);
  tick();
  EXPECT_EQ(dp_->pushes.size(), 1u);  // nothing new: nothing pushed

  auto next = make_state(8080);
  next.generation = 2;  // the owner's generation
  controller_.set_state(next);
  EXPECT_EQ(controller_.generation(), 2u);
  EXPECT_FALSE(controller_.in_sync());
  tick();
  ASSERT_EQ(dp_->pushes.size(), 2u);
  EXPECT_EQ(dp_->pushes[1].generation, 2u);
  EXPECT_EQ(dp_->pushes[1].vips[0].port, 8080);
  EXPECT_TRUE(controller_.in_sync());
}

TEST_F(ControllerTest, WaitsForADataplaneThatIsNotThereYet) {
  dp_->listening = false;
  for (int i = 0; i < 20; ++i) tick(100ms);
  EXPECT_TRUE(dp_->pushes.empty());
  EXPECT_FALSE(controller_.in_sync());
  dp_->listening = true;
  tick(1000ms);  // the longest backoff
  EXPECT_EQ(dp_->pushes.size(), 1u);
  EXPECT_TRUE(controller_.in_sync());
}

// Counts connection attempts by making each one fail visibly.
class CountingClient : public FakeDataplaneClient {
 public:
  CountingClient(std::shared_ptr<FakeDataplane> dp, int* attempts)
      : FakeDataplaneClient(std::move(dp)), attempts_(attempts) {}
  bool connect() override {
    ++*attempts_;
    return FakeDataplaneClient::connect();
  }

 private:
  int* attempts_;
};

TEST(ControllerBackoff, DoublesUpToTheMaximumAndResetsOnSuccess) {
  auto dp = std::make_shared<FakeDataplane>();
  dp->listening = false;
  int attempts = 0;
  Controller c(std::make_unique<CountingClient>(dp, &attempts), make_state(),
               ControllerOptions{.min_backoff = 100ms, .max_backoff = 800ms});
  Clock::time_point t{};
  std::vector<int64_t> attempt_times;
  for (int ms = 0; ms <= 4000; ms += 10) {
    const int before = attempts;
    c.tick(t + std::chrono::milliseconds(ms));
    if (attempts != before) attempt_times.push_back(ms);
  }
  // 0, +100, +200, +400, +800, then every 800.
  EXPECT_EQ(attempt_times, (std::vector<int64_t>{0, 100, 300, 700, 1500, 2300, 3100, 3900}));

  dp->listening = true;
  c.tick(t + 4700ms);
  EXPECT_TRUE(c.in_sync());
  EXPECT_EQ(c.backoff(), 100ms);
}

TEST_F(ControllerTest, RejectedPushIsRetriedWithBackoffNotEveryTick) {
  dp_->reject = "route uses port 3, which does not exist";
  tick(100ms);
  EXPECT_EQ(dp_->pushes.size(), 1u);
  EXPECT_FALSE(controller_.in_sync());
  tick(10ms);  // inside the backoff: nothing
  EXPECT_EQ(dp_->pushes.size(), 1u);
  tick(100ms);
  EXPECT_EQ(dp_->pushes.size(), 2u);

  dp_->reject.clear();
  tick(1000ms);
  EXPECT_EQ(dp_->pushes.size(), 3u);
  EXPECT_TRUE(controller_.in_sync());
  tick();
  EXPECT_EQ(dp_->pushes.size(), 3u);
}

TEST_F(ControllerTest, NeverGivesUp) {
  tick();
  // A long outage: the dataplane goes away and stays away for many ticks.
  dp_->restart();
  dp_->listening = false;
  for (int i = 0; i < 1000; ++i) tick(50ms);
  EXPECT_FALSE(controller_.in_sync());
  dp_->listening = true;
  tick(1000ms);
  EXPECT_TRUE(controller_.in_sync());
  EXPECT_EQ(dp_->pushes.size(), 2u);
}

}  // namespace
}  // namespace rondo::cp

// Controller against a fake dataplane: the state is pushed when the dataplane may lack it
// (first connect, reconnect, restart, other generation) and only then; failures back off.
#include "controlplane/dataplane/controller.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <thread>
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
  // kRestart: refused with this reason if set; `restart_lost`: the request is sent but the
  // connection breaks before the answer.
  std::string refuse_restart;
  bool restart_lost = false;
  int restarts_asked = 0;
  uint8_t start_kind = 0;

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
                              .instance = dp_->instance, .generation = dp_->generation,
                              .start_kind = dp_->start_kind};
  }
  api::Ack restart() override {
    if (!alive()) return {false, 0, error_};
    ++dp_->restarts_asked;
    if (dp_->restart_lost) {
      connected_ = false;
      error_ = "restart: no reply within 3000 ms";
      return {false, 0, error_};
    }
    if (!dp_->refuse_restart.empty()) {
      error_ = "restart refused: " + dp_->refuse_restart;
      return {false, dp_->generation, dp_->refuse_restart};
    }
    // It execs: gone for a while, then a new instance that says it was a planned restart.
    dp_->restart();
    dp_->listening = false;
    dp_->start_kind = 1;
    return {true, 0, "restarting"};
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
  s.local_ips = {api::Addr::from_v4(0xc6336464)};  // 198.51.100.100
  api::Vip v{.id = 0, .ip = api::Addr::from_v4(0xcb00710a), .port = port};
  v.backends = {{.id = 0, .ip = api::Addr::from_v4(0xc6336403), .port = 3000}, {.id = 1, .ip = api::Addr::from_v4(0xc6336403), .port = 3001}};
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

// ---- restart in place (api::MsgType::kRestart) ----

TEST_F(ControllerTest, RestartRefusedIsRelayedAndKeepsTheConnection) {
  tick();
  dp_->refuse_restart = "no --flow-dir: flows cannot be kept";
  const api::Ack ack = controller_.restart(now_);
  EXPECT_FALSE(ack.ok);
  EXPECT_EQ(ack.message, "no --flow-dir: flows cannot be kept");
  EXPECT_TRUE(controller_.connected());
  EXPECT_TRUE(controller_.in_sync());
  EXPECT_FALSE(controller_.restart_expected());
  tick();
  EXPECT_EQ(dp_->connects, 1);
  EXPECT_EQ(dp_->pushes.size(), 1u);
}

TEST_F(ControllerTest, RestartWithoutADataplaneIsNotSent) {
  dp_->listening = false;
  tick();
  const api::Ack ack = controller_.restart(now_);
  EXPECT_FALSE(ack.ok);
  EXPECT_EQ(ack.message, "the dataplane is not connected");
  EXPECT_EQ(dp_->restarts_asked, 0);
}

TEST_F(ControllerTest, AcceptedRestartReconnectsEveryRetryNotWithBackoff) {
  tick();
  ASSERT_TRUE(controller_.restart(now_).ok);
  EXPECT_EQ(dp_->restarts_asked, 1);
  EXPECT_FALSE(controller_.connected());
  EXPECT_TRUE(controller_.restart_expected());
  EXPECT_EQ(controller_.next_attempt(), now_ + 50ms);
  // The new process is not there yet: retried every 50 ms, never doubled.
  for (int i = 0; i < 10; ++i) {
    tick(50ms);
    EXPECT_EQ(controller_.next_attempt(), now_ + 50ms) << i;
  }
  dp_->listening = true;
  tick(50ms);
  EXPECT_TRUE(controller_.in_sync());
  EXPECT_FALSE(controller_.restart_expected());
  ASSERT_EQ(dp_->pushes.size(), 2u);  // the new instance gets the whole state
  EXPECT_EQ(controller_.dataplane()->instance, 2u);
  EXPECT_EQ(controller_.restarts(), (std::array<uint64_t, 3>{0, 1, 0}));
  EXPECT_EQ(controller_.backoff(), 100ms);
}

TEST_F(ControllerTest, ARestartThatNeverComesBackEndsInTheUsualBackoff) {
  tick();
  ASSERT_TRUE(controller_.restart(now_).ok);
  for (int i = 0; i < 600; ++i) tick(50ms);  // the 30 s window
  EXPECT_FALSE(controller_.restart_expected());
  tick(50ms);
  tick(200ms);
  // Doubling again from the minimum.
  EXPECT_GT(*controller_.next_attempt() - now_, 100ms);
}

TEST_F(ControllerTest, ARestartWhoseAnswerIsLostIsExpectedAllTheSame) {
  tick();
  dp_->restart_lost = true;
  const api::Ack ack = controller_.restart(now_);
  EXPECT_FALSE(ack.ok);
  EXPECT_NE(ack.message.find("the dataplane may be restarting"), std::string::npos) << ack.message;
  EXPECT_FALSE(controller_.connected());
  EXPECT_TRUE(controller_.restart_expected());
  EXPECT_EQ(controller_.next_attempt(), now_ + 50ms);
}

TEST_F(ControllerTest, RestartsAreCountedByHowTheNewInstanceStarted) {
  tick();
  dp_->restart();
  dp_->start_kind = 2;  // took over after a crash
  tick();
  tick();
  dp_->restart();
  dp_->start_kind = 0;  // kept nothing
  tick();
  tick();
  EXPECT_TRUE(controller_.in_sync());
  EXPECT_EQ(controller_.restarts(), (std::array<uint64_t, 3>{1, 0, 1}));
}

// ---- UnixDataplaneClient::restart over a socket, against a scripted dataplane ----

// Answers the first message on one connection with (type, body), seq echoed.
class ScriptedDataplane {
 public:
  ScriptedDataplane(api::MsgType type, std::vector<uint8_t> body)
      : path_(std::filesystem::temp_directory_path() /
              ("rondo-restart-" + std::to_string(getpid()) + ".sock")) {
    std::filesystem::remove(path_);
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 1), 0);
    thread_ = std::thread([this, type, body = std::move(body)] {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      api::MsgHeader h{};
      std::vector<uint8_t> req;
      std::string err;
      if (api::recv_msg(c, &h, &req, &err)) {
        asked_ = static_cast<api::MsgType>(h.type);
        api::send_msg(c, type, h.seq, body);
      }
      char x;
      (void)::recv(c, &x, 1, 0);  // until the client closes
      ::close(c);
    });
  }
  ~ScriptedDataplane() {
    thread_.join();
    ::close(fd_);
    std::filesystem::remove(path_);
  }
  const std::string& path() const { return path_; }
  api::MsgType asked() const { return asked_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::thread thread_;
  api::MsgType asked_{};
};

api::Ack restart_against(ScriptedDataplane& dp, bool* still_connected) {
  UnixDataplaneClient c(dp.path(), 2000ms);
  EXPECT_TRUE(c.connect()) << c.last_error();
  api::Ack ack = c.restart();
  *still_connected = c.connected();
  return ack;
}

TEST(UnixDataplaneClientRestart, AcceptedAndRefusedAnswersAreRelayed) {
  bool connected = false;
  {
    ScriptedDataplane dp(api::MsgType::kRestartReply,
                         api::encode_ack({.ok = true, .generation = 4, .message = "restarting"}));
    const api::Ack ack = restart_against(dp, &connected);
    EXPECT_EQ(dp.asked(), api::MsgType::kRestart);
    EXPECT_TRUE(ack.ok);
    EXPECT_EQ(ack.message, "restarting");
  }
  {
    ScriptedDataplane dp(api::MsgType::kRestartReply,
                         api::encode_ack({.ok = false, .message = "started without --flow-dir"}));
    const api::Ack ack = restart_against(dp, &connected);
    EXPECT_FALSE(ack.ok);
    EXPECT_EQ(ack.message, "started without --flow-dir");
    EXPECT_TRUE(connected);  // a refusal leaves the stream usable
  }
  {
    // kError (e.g. a dataplane that does not know kRestart): a refusal, whatever its flag.
    ScriptedDataplane dp(api::MsgType::kError,
                         api::encode_ack({.ok = true, .message = "unknown message type 10"}));
    const api::Ack ack = restart_against(dp, &connected);
    EXPECT_FALSE(ack.ok);
    EXPECT_EQ(ack.message, "unknown message type 10");
  }
}

TEST(UnixDataplaneClientRestart, MalformedOrUnexpectedRepliesBreakTheConnection) {
  bool connected = true;
  {
    ScriptedDataplane dp(api::MsgType::kRestartReply, {1, 2});
    const api::Ack ack = restart_against(dp, &connected);
    EXPECT_FALSE(ack.ok);
    EXPECT_FALSE(connected);
    EXPECT_EQ(ack.message.rfind("restart: ", 0), 0u) << ack.message;
  }
  {
    ScriptedDataplane dp(api::MsgType::kStatsReply, {});
    const api::Ack ack = restart_against(dp, &connected);
    EXPECT_FALSE(ack.ok);
    EXPECT_FALSE(connected);
    EXPECT_EQ(ack.message, "restart: unexpected stats reply");
  }
}

}  // namespace
}  // namespace rondo::cp

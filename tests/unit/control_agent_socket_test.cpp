// The dataplane's control socket under hostile clients: the real ControlAgent (no EAL: a
// hello needs no worker, port or publisher), its loop in a thread.
#include "dataplane/runtime/control_agent.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "tests/unit/socket_test_util.h"

namespace rondo::dp {
namespace {

using namespace std::chrono_literals;
using rondo::testing::closed_within;
using rondo::testing::SteadyClock;

std::vector<uint8_t> hello_frame(uint32_t seq) { return api::frame(api::MsgType::kHello, seq, {}); }

// Send a hello and wait up to `timeout` for its reply. The reply's type, or nullopt.
std::optional<api::MsgType> hello(int fd, uint32_t seq, std::chrono::milliseconds timeout) {
  const auto f = hello_frame(seq);
  if (!rondo::testing::send_bytes(fd, f.data(), f.size())) return std::nullopt;
  api::MsgHeader h{};
  if (!rondo::testing::recv_exact(fd, &h, sizeof h, timeout)) return std::nullopt;
  std::vector<uint8_t> body(h.length);
  if (!rondo::testing::recv_exact(fd, body.data(), body.size(), timeout) || h.seq != seq)
    return std::nullopt;
  return static_cast<api::MsgType>(h.type);
}

class ControlAgentSocket : public ::testing::Test {
 protected:
  ControlAgentSocket() : agent_(path(), nullptr, {}, {}) {
    std::string err;
    EXPECT_TRUE(agent_.listen(&err)) << err;
    loop_ = std::thread([this] { agent_.run(stop_); });
  }
  ~ControlAgentSocket() override {
    stop_ = true;
    loop_.join();
  }
  int client() { return clients_.connect(); }
  const std::string& path() const { return clients_.path(); }

  rondo::testing::TempDir dir_;
  rondo::testing::Clients clients_{dir_.path() + "/dp.sock"};
  ControlAgent agent_;
  std::atomic<bool> stop_{false};
  std::thread loop_;
};

TEST_F(ControlAgentSocket, SecondDataplaneIsRefused) {
  ControlAgent second(path(), nullptr, {}, {});
  std::string err;
  EXPECT_FALSE(second.listen(&err));
  EXPECT_EQ(err.rfind("control socket: another dataplane is already listening on " + path() + " (pid ", 0), 0u)
      << err;
  const int c = client();
  ASSERT_GE(c, 0);
  EXPECT_EQ(hello(c, 1, 1000ms), api::MsgType::kHelloReply);
}

TEST_F(ControlAgentSocket, SlowClientDoesNotDelayOthers) {
  const int slow = client();
  ASSERT_GE(slow, 0);
  const auto f = hello_frame(7);
  std::atomic<bool> done{false};
  // A byte every 0.5 s: the hello never completes within the 2 s deadline.
  std::thread dripper(
      [&] { rondo::testing::drip(slow, std::string(f.begin(), f.end()), 500ms, done); });
  std::this_thread::sleep_for(700ms);  // two bytes of its frame are with the agent now
  for (uint32_t seq = 1; seq <= 3; ++seq) {
    const int other = client();
    ASSERT_GE(other, 0);
    const auto start = SteadyClock::now();
    EXPECT_EQ(hello(other, seq, 500ms), api::MsgType::kHelloReply);
    EXPECT_LT(SteadyClock::now() - start, 500ms);
  }
  done = true;
  dripper.join();
}

TEST_F(ControlAgentSocket, ClientStalledMidMessageIsDroppedAfterTheDeadline) {
  const int stalled = client();
  ASSERT_GE(stalled, 0);
  const auto f = hello_frame(1);
  const auto start = SteadyClock::now();
  ASSERT_TRUE(rondo::testing::send_bytes(stalled, f.data(), 5));  // then nothing
  EXPECT_TRUE(closed_within(stalled, 3500ms));
  EXPECT_GE(SteadyClock::now() - start, 1900ms);  // the deadline is 2 s, not less
  // The agent is fine.
  const int other = client();
  EXPECT_EQ(hello(other, 2, 500ms), api::MsgType::kHelloReply);
}

TEST_F(ControlAgentSocket, BadHeaderGetsAnErrorAndIsClosed) {
  const int c = client();
  auto f = hello_frame(1);
  f[0] ^= 0xff;  // bad magic
  ASSERT_TRUE(rondo::testing::send_bytes(c, f.data(), f.size()));
  api::MsgHeader h{};
  ASSERT_TRUE(rondo::testing::recv_exact(c, &h, sizeof h, 1000ms));
  EXPECT_EQ(h.type, static_cast<uint16_t>(api::MsgType::kError));
  EXPECT_TRUE(closed_within(c, 1000ms));
}

TEST_F(ControlAgentSocket, IdleClientsCannotLockOutThePrivilegedControlPlane) {
  // 16 slots, all taken by clients that said hello once and then went quiet.
  std::vector<int> idle;
  for (uint32_t i = 0; i < 16; ++i) {
    idle.push_back(client());
    ASSERT_GE(idle.back(), 0);
    ASSERT_EQ(hello(idle.back(), i + 1, 1000ms), api::MsgType::kHelloReply) << i;
  }
  // One more (privileged: this test runs as root or as the agent's own uid) takes the
  // slot of the longest idle, the first...
  const int extra = client();
  ASSERT_EQ(hello(extra, 100, 1000ms), api::MsgType::kHelloReply);
  EXPECT_TRUE(closed_within(idle[0], 1000ms));
  // ...and so does the control plane, after it: the next longest idle goes.
  const int cp = client();
  ASSERT_EQ(hello(cp, 101, 1000ms), api::MsgType::kHelloReply);
  EXPECT_TRUE(closed_within(idle[1], 1000ms));
  for (size_t i = 2; i < idle.size(); ++i) EXPECT_TRUE(rondo::testing::quiet(idle[i])) << i;
}

TEST_F(ControlAgentSocket, UnprivilegedClientIsRefusedWhenTheSlotsAreFull) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to connect as another uid";
  rondo::testing::open_to_everyone(dir_.path(), path());
  std::vector<int> idle;
  for (uint32_t i = 0; i < 16; ++i) {
    idle.push_back(client());
    ASSERT_EQ(hello(idle.back(), i + 1, 1000ms), api::MsgType::kHelloReply) << i;
  }
  // Exit code 0: refused (kError, then closed); 1: answered; 2: neither.
  const auto f = hello_frame(1);  // built here: the child only sends and reads
  const int rc = rondo::testing::as_nobody(path(), [&f](int fd) {
    [[maybe_unused]] ssize_t n = ::send(fd, f.data(), f.size(), MSG_NOSIGNAL);
    api::MsgHeader h{};
    if (!rondo::testing::recv_exact(fd, &h, sizeof h, 2000ms)) return 2;
    return h.type == static_cast<uint16_t>(api::MsgType::kError) ? 0 : 1;
  });
  EXPECT_EQ(rc, 0);
  for (int fd : idle) EXPECT_TRUE(rondo::testing::quiet(fd));
}

}  // namespace
}  // namespace rondo::dp

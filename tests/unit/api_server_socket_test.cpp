// The control plane's API socket under hostile clients: ApiServer with a trivial handler.
#include "controlplane/api/api_server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "tests/unit/socket_test_util.h"

namespace rondo::cp {
namespace {

using namespace std::chrono_literals;
using rondo::testing::closed_within;
using rondo::testing::SteadyClock;

constexpr const char* kAnswer = "{\"ok\":true}";

// Read one line within `timeout`; "" on EOF or timeout.
std::string read_line(int fd, std::chrono::milliseconds timeout) {
  std::string line;
  char ch;
  const auto end = SteadyClock::now() + timeout;
  while (SteadyClock::now() < end) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - SteadyClock::now());
    if (!rondo::testing::recv_exact(fd, &ch, 1, std::max(left, 1ms))) return {};
    if (ch == '\n') return line;
    line += ch;
  }
  return {};
}

std::string ask(int fd, std::chrono::milliseconds timeout) {
  const std::string req = "{\"cmd\":\"status\"}\n";
  if (!rondo::testing::send_bytes(fd, req.data(), req.size())) return {};
  return read_line(fd, timeout);
}

class ApiServerSocket : public ::testing::Test {
 protected:
  void start(ApiServerOptions o) {
    o.path = path();
    server_ = std::make_unique<ApiServer>(o, [this](std::string_view, const std::string&) {
      if (slow_answer_) std::this_thread::sleep_for(800ms);
      return std::string(kAnswer);
    });
    ASSERT_EQ(server_->start(), "");
  }
  ~ApiServerSocket() override {
    if (server_) server_->stop();
  }
  int client() { return clients_.connect(); }
  const std::string& path() const { return clients_.path(); }

  rondo::testing::TempDir dir_;
  rondo::testing::Clients clients_{dir_.path() + "/api.sock"};
  std::unique_ptr<ApiServer> server_;
  std::atomic<bool> slow_answer_{false};
};

TEST_F(ApiServerSocket, SecondControlPlaneIsRefused) {
  start({});
  ApiServer second(ApiServerOptions{.path = path()},
                   [](std::string_view, const std::string&) { return std::string("{}"); });
  EXPECT_EQ(second.start(), "another control plane is already listening on " + path() + " (pid " +
                                std::to_string(::getpid()) + " holds " + path() + ".lock)");
  EXPECT_EQ(ask(client(), 1000ms), kAnswer);
}

TEST_F(ApiServerSocket, SlowClientDoesNotDelayOthers) {
  start({});
  const int slow = client();
  std::atomic<bool> done{false};
  std::thread dripper([&] { rondo::testing::drip(slow, "{\"cmd\":\"status\"}\n", 500ms, done); });
  std::this_thread::sleep_for(700ms);
  const auto start = SteadyClock::now();
  EXPECT_EQ(ask(client(), 500ms), kAnswer);
  EXPECT_LT(SteadyClock::now() - start, 500ms);
  done = true;
  dripper.join();
}

TEST_F(ApiServerSocket, LineStalledMidRequestIsDroppedAfterTheDeadline) {
  start({.request_deadline = 1000ms});
  const int stalled = client();
  const auto start = SteadyClock::now();
  ASSERT_TRUE(rondo::testing::send_bytes(stalled, "{\"cmd\"", 6));
  EXPECT_TRUE(closed_within(stalled, 2500ms));
  EXPECT_GE(SteadyClock::now() - start, 900ms);
}

TEST_F(ApiServerSocket, IdleConnectionIsClosedButAWaitingOneIsNot) {
  start({.idle_timeout = 300ms});
  const int idle = client();
  const int waiting = client();
  slow_answer_ = true;  // longer than the idle timeout
  EXPECT_EQ(ask(waiting, 2000ms), kAnswer);
  EXPECT_TRUE(closed_within(idle, 1000ms));
}

TEST_F(ApiServerSocket, IdleClientsCannotLockOutAPrivilegedClient) {
  start({.max_clients = 4});
  std::vector<int> idle;
  for (int i = 0; i < 4; ++i) {
    idle.push_back(client());
    ASSERT_EQ(ask(idle.back(), 1000ms), kAnswer) << i;
  }
  // Privileged (this test runs as root or as the server's uid): takes the longest idle's slot.
  const int extra = client();
  EXPECT_EQ(ask(extra, 1000ms), kAnswer);
  EXPECT_TRUE(closed_within(idle[0], 1000ms));
  for (size_t i = 1; i < idle.size(); ++i) EXPECT_TRUE(rondo::testing::quiet(idle[i])) << i;
}

TEST_F(ApiServerSocket, UnprivilegedClientIsRefusedWhenTheSlotsAreFull) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to connect as another uid";
  start({.mode = 0666, .max_clients = 2});
  rondo::testing::open_to_everyone(dir_.path(), path());
  std::vector<int> idle;
  for (int i = 0; i < 2; ++i) {
    idle.push_back(client());
    ASSERT_EQ(ask(idle.back(), 1000ms), kAnswer);
  }
  // Exit code 0: refused with the error line and closed; 1: anything else.
  const std::string want = "{\"ok\":false,\"code\":\"failed\",\"error\":\"too many api clients (2); try again\"}\n";
  const int rc = rondo::testing::as_nobody(path(), [&want](int fd) {
    char buf[256];
    if (!rondo::testing::recv_exact(fd, buf, want.size(), 2000ms)) return 1;
    return std::memcmp(buf, want.data(), want.size()) == 0 && closed_within(fd, 2000ms) ? 0 : 1;
  });
  EXPECT_EQ(rc, 0);
  for (int fd : idle) EXPECT_TRUE(rondo::testing::quiet(fd));
}

}  // namespace
}  // namespace rondo::cp

// api::UnixListener: one instance per path, and a socket that never listens with a mode
// other than the one asked for. chmod is wrapped at link time (-Wl,--wrap=chmod): the
// tests can make it fail, or slow, and look at the socket while it runs.
#include "dataplane/api/unix_socket.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <thread>

#include "tests/unit/socket_test_util.h"

namespace {

std::atomic<bool> g_fail_chmod{false};
std::atomic<int> g_chmod_delay_ms{0};
// What a client saw while chmod ran: did connect() succeed?
std::atomic<bool> g_connected_during_chmod{false};
std::string g_probe_path;

}  // namespace

extern "C" int __real_chmod(const char* path, mode_t mode);
extern "C" int __wrap_chmod(const char* path, mode_t mode) {
  if (!g_probe_path.empty()) {
    const int fd = rondo::testing::connect_unix(g_probe_path);
    if (fd >= 0) {
      g_connected_during_chmod = true;
      ::close(fd);
    }
  }
  if (g_chmod_delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(g_chmod_delay_ms));
  if (g_fail_chmod) {
    errno = EPERM;
    return -1;
  }
  return __real_chmod(path, mode);
}

namespace rondo::api {
namespace {

using namespace std::chrono_literals;
using rondo::testing::connect_unix;

class UnixSocketTest : public ::testing::Test {
 protected:
  void TearDown() override {
    g_fail_chmod = false;
    g_chmod_delay_ms = 0;
    g_connected_during_chmod = false;
    g_probe_path.clear();
  }
  rondo::testing::TempDir dir_;
  std::string path_ = dir_.path() + "/run/ctl.sock";  // run/ does not exist yet
};

TEST_F(UnixSocketTest, SecondInstanceIsRefusedAndTheFirstKeepsServing) {
  UnixListener first;
  ASSERT_EQ(first.open({.path = path_, .who = "another dataplane"}), "");
  struct stat before{};
  ASSERT_EQ(::lstat(path_.c_str(), &before), 0);

  UnixListener second;
  EXPECT_EQ(second.open({.path = path_, .who = "another dataplane"}),
            "another dataplane is already listening on " + path_ + " (pid " +
                std::to_string(::getpid()) + " holds " + path_ + ".lock)");
  EXPECT_EQ(second.fd(), -1);

  // The first one's socket file is untouched and it still accepts.
  struct stat after{};
  ASSERT_EQ(::lstat(path_.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);
  const int c = connect_unix(path_);
  ASSERT_GE(c, 0);
  pollfd pfd{first.fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 1000), 1);
  const int s = ::accept(first.fd(), nullptr, nullptr);
  EXPECT_GE(s, 0);
  ::close(s);
  ::close(c);

  // Once the first is closed, its file is gone and the path is free again.
  first.close();
  EXPECT_NE(::access(path_.c_str(), F_OK), 0);
  EXPECT_EQ(second.open({.path = path_}), "");
}

TEST_F(UnixSocketTest, StaleSocketFileIsReplaced) {
  ASSERT_EQ(::mkdir((dir_.path() + "/run").c_str(), 0755), 0);
  // A socket file left by a daemon that died: bound, nobody listening, no lock held.
  const int dead = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path_.c_str());
  ASSERT_EQ(::bind(dead, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(dead);

  UnixListener l;
  EXPECT_EQ(l.open({.path = path_}), "");
  const int c = connect_unix(path_);
  EXPECT_GE(c, 0);
  ::close(c);
}

TEST_F(UnixSocketTest, ARegularFileIsNotReplaced) {
  ASSERT_EQ(::mkdir((dir_.path() + "/run").c_str(), 0755), 0);
  { std::FILE* f = std::fopen(path_.c_str(), "w"); std::fclose(f); }
  UnixListener l;
  EXPECT_EQ(l.open({.path = path_}), path_ + " exists and is not a socket");
  EXPECT_EQ(::access(path_.c_str(), F_OK), 0);
}

TEST_F(UnixSocketTest, CloseLeavesAFileThatIsNotOurs) {
  UnixListener l;
  ASSERT_EQ(l.open({.path = path_}), "");
  // Someone replaced the socket file (by hand, or a takeover): it is theirs now.
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  { std::FILE* f = std::fopen(path_.c_str(), "w"); std::fclose(f); }
  l.close();
  EXPECT_EQ(::access(path_.c_str(), F_OK), 0);
}

TEST_F(UnixSocketTest, FailedChmodMeansTheSocketNeverListens) {
  g_fail_chmod = true;
  g_probe_path = path_;
  UnixListener l;
  EXPECT_EQ(l.open({.path = path_}), "chmod " + path_ + ": " + std::strerror(EPERM));
  EXPECT_EQ(l.fd(), -1);
  EXPECT_FALSE(g_connected_during_chmod);  // bound, but not listening while chmod ran
  EXPECT_NE(::access(path_.c_str(), F_OK), 0);
  EXPECT_EQ(connect_unix(path_), -1);
  // The lock was released with it: the next attempt succeeds.
  g_fail_chmod = false;
  EXPECT_EQ(l.open({.path = path_}), "");
}

TEST_F(UnixSocketTest, ModeIsFinalTheMomentConnectFirstSucceeds) {
  const mode_t old_umask = ::umask(0);  // the mode asked for is all that narrows it
  g_chmod_delay_ms = 100;               // widen the window a wrong order would open
  std::atomic<bool> stop{false};
  std::atomic<int> mode_seen{-1};
  std::thread prober([&] {
    while (!stop) {
      const int fd = connect_unix(path_);
      if (fd < 0) continue;
      struct stat st{};
      if (::lstat(path_.c_str(), &st) == 0) mode_seen = static_cast<int>(st.st_mode & 07777);
      ::close(fd);
      return;
    }
  });
  UnixListener l;
  const std::string err = l.open({.path = path_, .mode = 0660});
  const auto end = rondo::testing::SteadyClock::now() + 2s;
  while (mode_seen < 0 && rondo::testing::SteadyClock::now() < end) std::this_thread::yield();
  stop = true;
  prober.join();
  ::umask(old_umask);
  ASSERT_EQ(err, "");
  EXPECT_EQ(mode_seen, 0660);
}

TEST(PeerCredentials, OwnUidIsPrivileged) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  EXPECT_TRUE(peer_is_privileged(sv[0]));
  ::close(sv[0]);
  ::close(sv[1]);
  EXPECT_FALSE(peer_is_privileged(-1));
}

}  // namespace
}  // namespace rondo::api

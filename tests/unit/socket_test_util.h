// Helpers for the socket tests: a raw unix-socket client with deadlines (never
// sleep-and-hope), a temporary directory, and a child process that connects as `nobody`.
#pragma once

#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace rondo::testing {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

/// A fresh directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char t[] = "/tmp/rondo-sock-XXXXXX";
    path_ = ::mkdtemp(t);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// A connected client socket, or -1.
inline int connect_unix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline bool send_bytes(int fd, const void* p, size_t n) {
  return ::send(fd, p, n, MSG_NOSIGNAL) == static_cast<ssize_t>(n);
}

/// Client connections to one path, closed when the test ends.
class Clients {
 public:
  explicit Clients(std::string path) : path_(std::move(path)) {}
  ~Clients() {
    for (int fd : fds_) ::close(fd);
  }
  /// A new connection, or -1.
  int connect() {
    const int fd = connect_unix(path_);
    if (fd >= 0) fds_.push_back(fd);
    return fd;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<int> fds_;
};

/// Send `bytes` one at a time, `gap` apart, until all are sent, a send fails or *stop.
inline void drip(int fd, const std::string& bytes, milliseconds gap, const std::atomic<bool>& stop) {
  for (char ch : bytes) {
    if (stop || !send_bytes(fd, &ch, 1)) return;
    for (auto end = SteadyClock::now() + gap; !stop && SteadyClock::now() < end;)
      std::this_thread::sleep_for(milliseconds(10));
  }
}

/// Read exactly n bytes within `timeout`. false on EOF, error or timeout.
inline bool recv_exact(int fd, void* out, size_t n, milliseconds timeout) {
  const auto end = SteadyClock::now() + timeout;
  auto* p = static_cast<char*>(out);
  while (n > 0) {
    const auto left = std::chrono::duration_cast<milliseconds>(end - SteadyClock::now()).count();
    pollfd pfd{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&pfd, 1, static_cast<int>(left)) <= 0) return false;
    const ssize_t r = ::recv(fd, p, n, 0);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

/// Wait up to `timeout` for the server to close the connection (EOF or reset), skipping
/// whatever it sends first. true if it closed.
inline bool closed_within(int fd, milliseconds timeout) {
  const auto end = SteadyClock::now() + timeout;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(end - SteadyClock::now()).count();
    pollfd pfd{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&pfd, 1, static_cast<int>(left)) <= 0) return false;
    const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r <= 0) return true;
  }
}

/// Nothing to read and not closed, right now.
inline bool quiet(int fd) {
  pollfd pfd{fd, POLLIN, 0};
  return ::poll(&pfd, 1, 0) == 0;
}

/// Let `nobody` reach `path`: the directory searchable, the socket world-writable.
inline void open_to_everyone(const std::string& dir, const std::string& path) {
  ::chmod(dir.c_str(), 0755);
  ::chmod(path.c_str(), 0666);
}

/// In a child process running as nobody (uid/gid 65534): connect to `path` and run
/// `talk(fd)` (async-signal-safe calls only: the parent has threads). Returns talk's
/// result (0..125), 126 if connect failed, 127 if the child could not drop privileges.
template <typename Talk>
int as_nobody(const std::string& path, Talk talk) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
        ::setresuid(65534, 65534, 65534) != 0)
      ::_exit(127);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
      ::_exit(126);
    ::_exit(talk(fd));
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace rondo::testing

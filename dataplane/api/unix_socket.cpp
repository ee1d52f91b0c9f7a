#include "dataplane/api/unix_socket.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rondo::api {
namespace {

std::string errno_text() { return std::strerror(errno); }

// The pid written by the lock's holder, or "" if unreadable.
std::string holder_pid(int lock_fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(lock_fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return {};
  std::string pid(buf, static_cast<size_t>(n));
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return pid;
}

}  // namespace

std::string UnixListener::open(const UnixListenOptions& o) {
  close();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (o.path.empty() || o.path.size() >= sizeof addr.sun_path) return "socket path too long: " + o.path;
  std::memcpy(addr.sun_path, o.path.c_str(), o.path.size() + 1);

  // The directory (e.g. /run/rondo) may not exist yet after a reboot.
  if (auto slash = o.path.rfind('/'); slash != std::string::npos && slash > 0) {
    const std::string dir = o.path.substr(0, slash);
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
      return "cannot create " + dir + ": " + errno_text();
  }

  // The lock file is never removed: unlinking it would let two instances lock two files.
  const std::string lock = o.path + ".lock";
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (lock_fd_ < 0) return "cannot open " + lock + ": " + errno_text();
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    std::string err = e == EWOULDBLOCK ? o.who + " is already listening on " + o.path
                                       : "cannot lock " + lock + ": " + std::strerror(e);
    if (e == EWOULDBLOCK) {
      const std::string pid = holder_pid(lock_fd_);
      err += pid.empty() ? " (it holds " + lock + ")" : " (pid " + pid + " holds " + lock + ")";
    }
    ::close(lock_fd_);
    lock_fd_ = -1;
    return err;
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  // Failing here only costs a second instance's error text its pid: not a reason to stop.
  [[maybe_unused]] const bool wrote =
      ::ftruncate(lock_fd_, 0) == 0 && ::pwrite(lock_fd_, pid.data(), pid.size(), 0) > 0;

  std::string err;
  struct stat st{};
  if (::lstat(o.path.c_str(), &st) == 0) {
    // We hold the lock, so a socket here was left by an instance that died.
    if (!S_ISSOCK(st.st_mode)) err = o.path + " exists and is not a socket";
    else if (::unlink(o.path.c_str()) != 0) err = "cannot remove stale " + o.path + ": " + errno_text();
  }
  bool bound = false;
  if (err.empty()) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) {
      err = "socket: " + errno_text();
    } else if (::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      err = "bind " + o.path + ": " + errno_text();
    } else if (bound = true; ::chmod(o.path.c_str(), o.mode) != 0) {
      err = "chmod " + o.path + ": " + errno_text();
    } else if (o.gid != static_cast<gid_t>(-1) &&
               ::chown(o.path.c_str(), static_cast<uid_t>(-1), o.gid) != 0) {
      err = "chown " + o.path + " to gid " + std::to_string(o.gid) + ": " + errno_text();
    } else if (::lstat(o.path.c_str(), &st) != 0) {
      err = "stat " + o.path + ": " + errno_text();
    } else if (::listen(fd_, o.backlog) != 0) {
      err = "listen " + o.path + ": " + errno_text();
    }
  }
  if (!err.empty()) {
    if (bound) ::unlink(o.path.c_str());
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    ::close(lock_fd_);
    lock_fd_ = -1;
    return err;
  }
  path_ = o.path;
  inode_ = st.st_ino;
  return {};
}

void UnixListener::close() {
  if (fd_ >= 0) {
    struct stat st{};
    // Never remove a file that is not ours (replaced by hand, or by a takeover).
    if (::lstat(path_.c_str(), &st) == 0 && st.st_ino == inode_) ::unlink(path_.c_str());
    ::close(fd_);
    fd_ = -1;
  }
  if (lock_fd_ >= 0) {
    ::close(lock_fd_);  // releases the flock
    lock_fd_ = -1;
  }
}

bool peer_is_privileged(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
  return cred.uid == 0 || cred.uid == ::geteuid();
}

}  // namespace rondo::api

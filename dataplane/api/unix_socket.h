// A listening unix stream socket for a daemon that must be the only one on its path, shared
// by rondo-dataplane (control socket) and rondo-controlplane (API socket).
//
// Rules (issue 7):
//   - One instance per path: an exclusive flock on "<path>.lock", held for the listener's
//     life, with the holder's pid written in it. A second instance fails with an error that
//     names the path and that pid; it never unlinks a live instance's socket. A socket file
//     is removed only by whoever holds the lock (then it was left by a daemon that died).
//   - bind -> chmod (-> chown) -> listen: the file has its final mode before anyone can
//     connect (connect() to a bound socket that does not listen is refused), without
//     touching the process-wide umask (both daemons are threaded). If chmod or chown fails,
//     the socket is closed and unlinked and never listens.
//   - On close, the socket file is unlinked only if it is still ours (same inode).
#pragma once

#include <sys/types.h>

#include <string>

namespace rondo::api {

struct UnixListenOptions {
  std::string path;
  mode_t mode = 0660;
  gid_t gid = static_cast<gid_t>(-1);  // -1: keep the daemon's group
  int backlog = 16;
  /// Who else would be there, for the error text: "<who> is already listening on <path>".
  std::string who = "another instance";
};

class UnixListener {
 public:
  UnixListener() = default;
  ~UnixListener() { close(); }
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;

  /// Lock, bind, chmod/chown, listen (non-blocking, close-on-exec). "" or why not.
  std::string open(const UnixListenOptions& options);
  /// Close the socket, unlink its file if it is still ours, release the lock. Idempotent.
  void close();

  /// The listening socket (non-blocking), or -1.
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  int lock_fd_ = -1;
  ino_t inode_ = 0;
};

/// The peer's uid is root or our own effective uid: such a peer may take a slot from an
/// idle client when all are in use (the control plane must never be locked out).
bool peer_is_privileged(int fd);

}  // namespace rondo::api

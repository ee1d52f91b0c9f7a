// The local API socket: a unix stream socket carrying one request line and one answer line
// at a time (rpc.h says what the lines hold).
//
// Who may use it is decided by the socket file's permissions, nothing else: mode 0660 by
// default, owned by the daemon's user and by `group` if one is given, so root and that
// group's members may read and change state and nobody else can connect. The file gets its
// final mode and group before it appears under its name (bound under a temporary name,
// then renamed), so there is no moment where it is open to everyone.
//
// One thread accepts; each connection gets its own thread (rondoctl holds one open while it
// waits for a drain), at most max_clients at once.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace rondo::cp {

struct ApiServerOptions {
  std::string path = "/run/rondo/controlplane.sock";
  mode_t mode = 0660;
  std::string group;  // "" : keep the daemon's group
  size_t max_clients = 32;
  size_t max_line = 1 << 20;  // a longer request is refused and the connection closed
  int idle_timeout_s = 600;   // a connection silent this long is closed
};

class ApiServer {
 public:
  /// Answers one request line; `origin` is "uid U pid P" of the peer.
  using Handler = std::function<std::string(std::string_view line, const std::string& origin)>;

  ApiServer(ApiServerOptions options, Handler handler);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  /// Create the socket and start serving. Returns "" or why not (e.g. another control
  /// plane already listens on the path, the group does not exist).
  std::string start();
  /// Stop accepting, end every connection, remove the socket file. Idempotent.
  void stop();

 private:
  struct Conn {
    std::thread thread;
    std::atomic<bool> done{false};
  };

  void accept_loop();
  void serve(int fd, Conn* conn);
  void reap(bool all);

  ApiServerOptions options_;
  Handler handler_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;  // eventfd: readable once stop() was called
  ino_t inode_ = 0;   // of our socket file, so stop() never removes someone else's
  std::thread acceptor_;
  std::mutex conns_mu_;
  std::list<std::unique_ptr<Conn>> conns_;
};

}  // namespace rondo::cp

// The local API socket: a unix stream socket carrying one request line and one answer line
// at a time (rpc.h says what the lines hold).
//
// Who may use it is decided by the socket file's permissions, nothing else: mode 0660 by
// default, owned by the daemon's user and by `group` if one is given, so root and that
// group's members may read and change state and nobody else can connect. The socket is
// made by api::UnixListener: one control plane per path (flock on "<path>.lock"), and the
// file has its final mode and group before it listens.
//
// One thread accepts; each connection gets its own thread (rondoctl holds one open while it
// waits for a drain), at most max_clients at once. No client can hold a slot for long: a
// request line must be complete within request_deadline of its first byte and its answer
// taken within the same time, and a connection with no request for idle_timeout is closed
// (never one whose request is being answered). When all slots are in use, a peer that is
// root or runs as the daemon's uid takes the slot of the longest-idle connection, so idle
// clients cannot lock the operator out; anyone else is refused.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "dataplane/api/unix_socket.h"

namespace rondo::cp {

struct ApiServerOptions {
  std::string path = "/run/rondo/controlplane.sock";
  mode_t mode = 0660;
  std::string group;  // "" : keep the daemon's group
  size_t max_clients = 32;
  size_t max_line = 1 << 20;  // a longer request is refused and the connection closed
  // rondoctl sends a request every 200 ms while it waits for a drain: never idle that long.
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds request_deadline{5'000};  // first byte to newline; also an answer
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
  /// plane holds the path's lock, the group does not exist).
  std::string start();
  /// Stop accepting, end every connection, remove the socket file. Idempotent.
  void stop();

 private:
  using Clock = std::chrono::steady_clock;
  struct Conn {
    std::thread thread;
    int fd = -1;          // -1 once closed; guarded by conns_mu_
    bool evicted = false;  // guarded by conns_mu_
    bool busy = false;     // a request is being answered; guarded by conns_mu_
    Clock::time_point last_active;  // guarded by conns_mu_
    std::atomic<bool> done{false};
  };

  void accept_loop();
  /// Under conns_mu_: make room for a new connection if the slots are full. false: refuse.
  bool make_room(int fd);
  void serve(int fd, Conn* conn);
  void reap(bool all);

  ApiServerOptions options_;
  Handler handler_;
  int stop_fd_ = -1;  // eventfd: readable once stop() was called
  api::UnixListener listener_;
  std::thread acceptor_;
  std::mutex conns_mu_;
  std::list<std::unique_ptr<Conn>> conns_;
};

}  // namespace rondo::cp

// The control socket's connections, served from the main lcore's single-threaded loop.
//
// No client can hold the loop or lock the control plane out:
//   - sockets are non-blocking; replies wait in a per-client buffer until the peer takes
//     them (POLLOUT), and a client with a reply pending is not read from;
//   - a request (MsgHeader + payload, at most api::kMaxPayload) must arrive whole within
//     message_deadline of its first byte, and its reply be taken within message_deadline
//     of being queued; otherwise the client is dropped;
//   - a client silent for idle_timeout is closed;
//   - at most max_clients at once; when all slots are taken, a peer that is root or runs as
//     our uid (SO_PEERCRED: the control plane, rondo-dpstat as root) takes the slot of the
//     longest-idle client, anyone else is refused. The control plane asks every 500 ms, so
//     it is never the longest idle.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dataplane/api/ctl.h"
#include "dataplane/api/unix_socket.h"

namespace rondo::dp {

struct ControlServerOptions {
  std::string path;
  size_t max_clients = 16;
  std::chrono::milliseconds message_deadline{2000};
  std::chrono::milliseconds idle_timeout{60000};
};

/// Why connections ended early; logged as they happen.
struct ControlServerCounters {
  uint64_t accepted = 0;
  uint64_t refused = 0;     // all slots taken, peer not privileged
  uint64_t evicted = 0;     // slot given to a privileged peer
  uint64_t timed_out = 0;   // request or reply not done within the deadline
  uint64_t idle = 0;        // closed after idle_timeout
  uint64_t bad_frame = 0;   // header refused by api::check_header
};

class ControlServer {
 public:
  /// Answers one request: fills *reply (the body) and returns the reply's type.
  using Handler = std::function<api::MsgType(const api::MsgHeader&, const std::vector<uint8_t>&,
                                             std::vector<uint8_t>* reply)>;
  /// The body of a kError frame that says `why` (a bad frame, a refusal).
  using ErrorBody = std::function<std::vector<uint8_t>(const std::string& why)>;

  ControlServer(ControlServerOptions options, Handler handler, ErrorBody error_body);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  /// Create the socket (api::UnixListener: locked, mode 0660 before it listens). false with *err.
  bool listen(std::string* err);
  /// Wait at most `wait` for work, then accept, read, answer, write and expire what is due.
  void poll_once(std::chrono::milliseconds wait);

  size_t clients() const { return clients_.size(); }
  const ControlServerCounters& counters() const { return counters_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Client {
    int fd = -1;
    std::vector<uint8_t> in;   // received bytes not yet handled
    std::vector<uint8_t> out;  // reply bytes not yet taken by the peer
    size_t out_sent = 0;
    Clock::time_point last_active;  // accepted, or last byte received / reply taken
    Clock::time_point deadline;     // the request or reply in flight must be done by then
    bool closing = false;           // close once `out` is sent (after an error reply)
  };

  void accept_all(Clock::time_point now);
  /// false: the client is done (closed by the peer, an error, or a refusal sent).
  bool receive(Client& c, Clock::time_point now);
  bool serve(Client& c, Clock::time_point now);
  bool flush(Client& c, Clock::time_point now);
  void queue_error(Client& c, const std::string& why, Clock::time_point now);
  /// Close and remove clients_[i] (logged with `why` unless empty).
  void drop(size_t i, const std::string& why);
  /// Close clients past their deadline or idle timeout; returns the time of the next expiry.
  Clock::time_point expire(Clock::time_point now);
  bool in_flight(const Client& c) const { return !c.in.empty() || c.out_sent < c.out.size(); }

  ControlServerOptions options_;
  Handler handler_;
  ErrorBody error_body_;
  api::UnixListener listener_;
  std::vector<Client> clients_;
  ControlServerCounters counters_;
};

}  // namespace rondo::dp

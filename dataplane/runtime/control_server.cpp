#include "dataplane/runtime/control_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rte_log.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace rondo::dp {
namespace {

// At most this many connections taken per round, so a flood of connects cannot keep the
// loop from serving the clients it has.
constexpr int kAcceptsPerRound = 64;
constexpr size_t kReadChunk = 64 * 1024;

bool would_block() { return errno == EAGAIN || errno == EWOULDBLOCK; }

// Best effort on a fresh or doomed socket: whatever fits in its buffer now.
void send_now(int fd, const std::vector<uint8_t>& bytes) {
  [[maybe_unused]] ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace

ControlServer::ControlServer(ControlServerOptions options, Handler handler, ErrorBody error_body)
    : options_(std::move(options)), handler_(std::move(handler)), error_body_(std::move(error_body)) {}

ControlServer::~ControlServer() {
  for (const Client& c : clients_) ::close(c.fd);
}

bool ControlServer::listen(std::string* err) {
  *err = listener_.open({.path = options_.path, .mode = 0660, .who = "another dataplane"});
  if (!err->empty()) *err = "control socket: " + *err;
  return err->empty();
}

void ControlServer::poll_once(std::chrono::milliseconds wait) {
  const Clock::time_point next = expire(Clock::now());
  const auto until_next = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now());
  const int timeout = static_cast<int>(std::clamp(until_next, std::chrono::milliseconds(1), wait).count());

  std::vector<pollfd> fds;
  fds.push_back({listener_.fd(), POLLIN, 0});
  for (const Client& c : clients_) {
    // A client with a reply pending is not read from: it takes its answer first.
    const short events = c.out_sent < c.out.size() ? POLLOUT : c.closing ? 0 : POLLIN;
    fds.push_back({c.fd, events, 0});
  }
  if (::poll(fds.data(), fds.size(), timeout) <= 0) return;

  const Clock::time_point now = Clock::now();
  // Serve the clients polled (indices shift as they are dropped, so walk backwards),
  // then accept: a new client appended now has no entry in `fds`.
  for (size_t i = fds.size() - 1; i >= 1; --i) {
    const short ev = fds[i].revents;
    if (!ev) continue;
    Client& c = clients_[i - 1];
    bool ok = true;
    if (ev & POLLOUT) ok = flush(c, now) && serve(c, now);
    else if (ev & (POLLIN | POLLHUP | POLLERR)) ok = receive(c, now) && serve(c, now);
    if (!ok || (c.closing && c.out_sent >= c.out.size())) drop(i - 1, "");
  }
  if (fds[0].revents & POLLIN) accept_all(now);
}

void ControlServer::accept_all(Clock::time_point now) {
  for (int n = 0; n < kAcceptsPerRound; ++n) {
    const int fd = ::accept4(listener_.fd(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (!would_block() && errno != EINTR && errno != ECONNABORTED)
        RTE_LOG(WARNING, USER1, "control: accept: %s\n", std::strerror(errno));
      if (errno != EINTR && errno != ECONNABORTED) return;
      continue;
    }
    if (clients_.size() >= options_.max_clients) {
      if (!api::peer_is_privileged(fd)) {
        ++counters_.refused;
        RTE_LOG(WARNING, USER1, "control: refused a client: all %zu slots in use\n",
                options_.max_clients);
        send_now(fd, api::frame(api::MsgType::kError, 0,
                                error_body_("too many control clients; try again")));
        ::close(fd);
        continue;
      }
      // The control plane must never be locked out: it takes the longest-idle slot.
      auto oldest = std::min_element(clients_.begin(), clients_.end(), [](const Client& a, const Client& b) {
        return a.last_active < b.last_active;
      });
      ++counters_.evicted;
      send_now(oldest->fd, api::frame(api::MsgType::kError, 0,
                                      error_body_("slot taken by a privileged client")));
      drop(static_cast<size_t>(oldest - clients_.begin()),
           "all slots in use, a privileged client takes the longest-idle one");
    }
    ++counters_.accepted;
    clients_.push_back(Client{.fd = fd, .last_active = now});
  }
}

bool ControlServer::receive(Client& c, Clock::time_point now) {
  uint8_t chunk[kReadChunk];
  const ssize_t n = ::recv(c.fd, chunk, sizeof chunk, 0);
  if (n < 0 && (would_block() || errno == EINTR)) return true;
  if (n <= 0) return false;  // closed by the peer, or broken
  if (c.in.empty()) c.deadline = now + options_.message_deadline;  // a request's first byte
  c.in.insert(c.in.end(), chunk, chunk + n);
  c.last_active = now;
  return true;
}

bool ControlServer::serve(Client& c, Clock::time_point now) {
  // One request at a time: the next is handled once the previous reply has been taken.
  while (!c.closing && c.out_sent >= c.out.size() && c.in.size() >= sizeof(api::MsgHeader)) {
    api::MsgHeader h;
    std::memcpy(&h, c.in.data(), sizeof h);
    if (std::string why = api::check_header(h); !why.empty()) {
      ++counters_.bad_frame;
      RTE_LOG(WARNING, USER1, "control: dropping client: %s\n", why.c_str());
      queue_error(c, why, now);
      c.closing = true;
      break;
    }
    const size_t size = sizeof h + h.length;
    if (c.in.size() < size) break;
    const std::vector<uint8_t> payload(c.in.begin() + sizeof h, c.in.begin() + size);
    c.in.erase(c.in.begin(), c.in.begin() + size);
    std::vector<uint8_t> reply;
    const api::MsgType type = handler_(h, payload, &reply);
    c.out = api::frame(type, h.seq, reply);
    c.out_sent = 0;
    // Handling may take a while (a big state): the reply gets its own deadline.
    c.deadline = Clock::now() + options_.message_deadline;
    if (!flush(c, now)) return false;
  }
  return true;
}

bool ControlServer::flush(Client& c, Clock::time_point now) {
  while (c.out_sent < c.out.size()) {
    const ssize_t n = ::send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && would_block()) return true;
    if (n <= 0) return false;
    c.out_sent += static_cast<size_t>(n);
  }
  c.out.clear();
  c.out_sent = 0;
  c.last_active = now;
  // Bytes of the next request already buffered: its clock starts now.
  if (!c.in.empty()) c.deadline = now + options_.message_deadline;
  return true;
}

void ControlServer::queue_error(Client& c, const std::string& why, Clock::time_point now) {
  c.out = api::frame(api::MsgType::kError, 0, error_body_(why));
  c.out_sent = 0;
  c.deadline = now + options_.message_deadline;
  flush(c, now);
}

void ControlServer::drop(size_t i, const std::string& why) {
  if (!why.empty()) RTE_LOG(WARNING, USER1, "control: dropping client: %s\n", why.c_str());
  ::close(clients_[i].fd);
  clients_.erase(clients_.begin() + static_cast<std::ptrdiff_t>(i));
}

ControlServer::Clock::time_point ControlServer::expire(Clock::time_point now) {
  Clock::time_point next = Clock::time_point::max();
  for (size_t i = clients_.size(); i-- > 0;) {
    const Client& c = clients_[i];
    if (in_flight(c)) {
      if (now >= c.deadline) {
        ++counters_.timed_out;
        drop(i, (c.out_sent < c.out.size() ? "reply not taken within " : "request not complete within ") +
                    std::to_string(options_.message_deadline.count()) + " ms");
        continue;
      }
      next = std::min(next, c.deadline);
    } else {
      const Clock::time_point idle_end = c.last_active + options_.idle_timeout;
      if (now >= idle_end) {
        ++counters_.idle;
        drop(i, "idle for " + std::to_string(options_.idle_timeout.count() / 1000) + " s");
        continue;
      }
      next = std::min(next, idle_end);
    }
  }
  return next;
}

}  // namespace rondo::dp

#include "controlplane/api/api_server.h"

#include <grp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "controlplane/log.h"

namespace rondo::cp {
namespace {

using Clock = std::chrono::steady_clock;

std::string errno_text() { return std::strerror(errno); }

// Milliseconds left until `t` for poll(): at least 0, at most a day.
int ms_until(Clock::time_point t) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(t - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 86'400'000));
}

// Send all of `s` by `deadline`: a peer that does not read cannot hold the thread longer.
bool send_all(int fd, const std::string& s, Clock::time_point deadline) {
  const char* p = s.data();
  size_t n = s.size();
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd pfd{fd, POLLOUT, 0};
      const int timeout = ms_until(deadline);
      if (timeout == 0 || ::poll(&pfd, 1, timeout) == 0) return false;
      continue;
    }
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

std::string refusal(const std::string& error) {
  // Hand-built so that the server need not depend on the JSON library; `error` is ours
  // and has no characters that need escaping.
  return "{\"ok\":false,\"code\":\"failed\",\"error\":\"" + error + "\"}\n";
}

}  // namespace

ApiServer::ApiServer(ApiServerOptions options, Handler handler)
    : options_(std::move(options)), handler_(std::move(handler)) {}

ApiServer::~ApiServer() { stop(); }

std::string ApiServer::start() {
  gid_t gid = static_cast<gid_t>(-1);
  if (!options_.group.empty()) {
    std::vector<char> buf(16384);
    group g{};
    group* found = nullptr;
    const int rc = ::getgrnam_r(options_.group.c_str(), &g, buf.data(), buf.size(), &found);
    if (rc != 0 || !found) return "no group named " + options_.group + " (--api-group)";
    gid = found->gr_gid;
  }
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) return "eventfd: " + errno_text();
  if (auto err = listener_.open({.path = options_.path,
                                 .mode = options_.mode,
                                 .gid = gid,
                                 .who = "another control plane"});
      !err.empty()) {
    ::close(stop_fd_);
    stop_fd_ = -1;
    return err;
  }
  acceptor_ = std::thread([this] { accept_loop(); });
  return {};
}

void ApiServer::stop() {
  if (stop_fd_ >= 0) {
    const uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(stop_fd_, &one, sizeof one);
  }
  if (acceptor_.joinable()) acceptor_.join();
  reap(true);
  listener_.close();
  if (stop_fd_ >= 0) {
    ::close(stop_fd_);
    stop_fd_ = -1;
  }
}

void ApiServer::reap(bool all) {
  std::unique_lock lk(conns_mu_);
  for (auto it = conns_.begin(); it != conns_.end();) {
    if (all || (*it)->done) {
      // The connection's thread may still touch its Conn until it returns: keep the Conn
      // alive until the join, and destroy it after. serve() takes conns_mu_ on its way
      // out, so join without holding it.
      std::unique_ptr<Conn> conn = std::move(*it);
      it = conns_.erase(it);
      lk.unlock();
      if (conn->thread.joinable()) conn->thread.join();
      conn.reset();
      lk.lock();
    } else {
      ++it;
    }
  }
}

bool ApiServer::make_room(int fd) {
  size_t live = 0;
  Conn* idlest = nullptr;
  for (const auto& c : conns_) {
    if (c->fd < 0 || c->evicted) continue;
    ++live;
    // A connection waiting for its answer is never cut.
    if (!c->busy && (!idlest || c->last_active < idlest->last_active)) idlest = c.get();
  }
  if (live < options_.max_clients) return true;
  if (!api::peer_is_privileged(fd) || !idlest) return false;
  // Its thread sees EOF and ends; it still counts until then, so there may briefly be
  // max_clients + 1 threads.
  ::shutdown(idlest->fd, SHUT_RDWR);
  idlest->evicted = true;
  log_warn("api socket: all " + std::to_string(options_.max_clients) +
           " slots in use: closed the longest-idle connection for a privileged client");
  return true;
}

void ApiServer::accept_loop() {
  const int listen_fd = listener_.fd();
  for (;;) {
    pollfd fds[2] = {{listen_fd, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    const int n = ::poll(fds, 2, 1000);
    if (n < 0 && errno != EINTR) {
      log_error("api socket: poll: " + errno_text());
      return;
    }
    if (fds[1].revents) return;
    reap(false);
    if (n <= 0 || !(fds[0].revents & POLLIN)) continue;
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
        log_warn("api socket: accept: " + errno_text());
      continue;
    }
    std::lock_guard lk(conns_mu_);
    if (!make_room(fd)) {
      log_warn("api socket: refused a client: all " + std::to_string(options_.max_clients) +
               " slots in use");
      send_all(fd, refusal("too many api clients (" + std::to_string(options_.max_clients) + "); try again"),
               Clock::now());
      ::close(fd);
      continue;
    }
    auto conn = std::make_unique<Conn>();
    Conn* c = conn.get();
    c->fd = fd;
    c->last_active = Clock::now();
    conns_.push_back(std::move(conn));
    c->thread = std::thread([this, fd, c] { serve(fd, c); });
  }
}

void ApiServer::serve(int fd, Conn* conn) {
  ucred cred{};
  socklen_t len = sizeof cred;
  std::string origin = "api client";
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
    origin = "uid " + std::to_string(cred.uid) + " pid " + std::to_string(cred.pid);

  const auto touch = [&](bool busy) {
    std::lock_guard lk(conns_mu_);
    conn->busy = busy;
    conn->last_active = Clock::now();
  };
  std::string buf;
  char chunk[65536];
  Clock::time_point idle_end = Clock::now() + options_.idle_timeout;
  Clock::time_point line_end{};  // the request line in `buf` must be complete by then
  bool open = true;
  while (open) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    const int n = ::poll(fds, 2, ms_until(buf.empty() ? idle_end : line_end));
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 && !buf.empty()) {
      log_warn("api socket: " + origin + ": request not complete within " +
               std::to_string(options_.request_deadline.count()) + " ms: connection closed");
      break;
    }
    if (n <= 0 || fds[1].revents) break;  // error, idle, or stopping
    const ssize_t r = ::recv(fd, chunk, sizeof chunk, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    if (buf.empty()) line_end = Clock::now() + options_.request_deadline;
    buf.append(chunk, static_cast<size_t>(r));
    size_t start = 0;
    for (size_t nl; open && (nl = buf.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(buf.data() + start, nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) continue;
      touch(true);
      const std::string answer = handler_(line, origin) + "\n";
      open = send_all(fd, answer, Clock::now() + options_.request_deadline);
      touch(false);
    }
    buf.erase(0, start);
    if (buf.size() > options_.max_line) {
      send_all(fd, refusal("request longer than " + std::to_string(options_.max_line) + " bytes"),
               Clock::now() + options_.request_deadline);
      break;
    }
    // Bytes of the next request already here: its clock starts now.
    if (start > 0 && !buf.empty()) line_end = Clock::now() + options_.request_deadline;
    idle_end = Clock::now() + options_.idle_timeout;
  }
  std::lock_guard lk(conns_mu_);
  ::close(fd);
  conn->fd = -1;
  conn->done = true;
}

}  // namespace rondo::cp

#include "controlplane/api/api_server.h"

#include <grp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "controlplane/log.h"

namespace rondo::cp {
namespace {

std::string errno_text() { return std::strerror(errno); }

bool make_addr(const std::string& path, sockaddr_un* addr) {
  *addr = {};
  addr->sun_family = AF_UNIX;
  if (path.size() >= sizeof addr->sun_path) return false;
  std::memcpy(addr->sun_path, path.c_str(), path.size() + 1);
  return true;
}

// Is a server answering on `path`? (A socket file left by a crashed daemon refuses.)
bool someone_listens(const std::string& path) {
  sockaddr_un addr;
  if (!make_addr(path, &addr)) return false;
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool up = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return up;
}

bool send_all(int fd, const std::string& s) {
  const char* p = s.data();
  size_t n = s.size();
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
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
  const std::string& path = options_.path;
  sockaddr_un addr;
  const std::string tmp = path + ".new." + std::to_string(::getpid());
  if (!make_addr(tmp, &addr)) return "api socket path too long: " + path;

  // The directory (e.g. /run/rondo) may not exist yet after a reboot.
  if (auto slash = path.rfind('/'); slash != std::string::npos && slash > 0) {
    const std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
      return "cannot create " + dir + ": " + errno_text();
  }
  struct stat st{};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return path + " exists and is not a socket";
    if (someone_listens(path))
      return "another control plane is already listening on " + path;
    ::unlink(path.c_str());  // left by a daemon that died
  }

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
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return "socket: " + errno_text();
  ::unlink(tmp.c_str());
  std::string err;
  if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    err = "bind " + tmp + ": " + errno_text();
  } else if (::chmod(tmp.c_str(), options_.mode) != 0) {
    err = "chmod " + tmp + ": " + errno_text();
  } else if (gid != static_cast<gid_t>(-1) && ::chown(tmp.c_str(), static_cast<uid_t>(-1), gid) != 0) {
    err = "chown " + tmp + " to group " + options_.group + ": " + errno_text();
  } else if (::listen(listen_fd_, 16) != 0) {
    err = "listen: " + errno_text();
  } else if (::lstat(tmp.c_str(), &st) != 0) {
    err = "stat " + tmp + ": " + errno_text();
  } else if (::rename(tmp.c_str(), path.c_str()) != 0) {
    err = "rename " + tmp + " to " + path + ": " + errno_text();
  }
  if (!err.empty()) {
    ::unlink(tmp.c_str());
    ::close(listen_fd_);
    listen_fd_ = -1;
    return err;
  }
  inode_ = st.st_ino;
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
  if (listen_fd_ >= 0) {
    struct stat st{};
    // Remove the file only if it is still ours: a newer daemon may have replaced it.
    if (::lstat(options_.path.c_str(), &st) == 0 && st.st_ino == inode_) ::unlink(options_.path.c_str());
    ::close(listen_fd_);
    listen_fd_ = -1;
  }
  if (stop_fd_ >= 0) {
    ::close(stop_fd_);
    stop_fd_ = -1;
  }
}

void ApiServer::reap(bool all) {
  std::lock_guard lk(conns_mu_);
  for (auto it = conns_.begin(); it != conns_.end();) {
    if (all || (*it)->done) {
      if ((*it)->thread.joinable()) (*it)->thread.join();
      it = conns_.erase(it);
    } else {
      ++it;
    }
  }
}

void ApiServer::accept_loop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    const int n = ::poll(fds, 2, 1000);
    if (n < 0 && errno != EINTR) {
      log_error("api socket: poll: " + errno_text());
      return;
    }
    if (fds[1].revents) return;
    reap(false);
    if (n <= 0 || !(fds[0].revents & POLLIN)) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
        log_warn("api socket: accept: " + errno_text());
      continue;
    }
    // A client that stops reading must not hold a connection thread forever.
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    std::lock_guard lk(conns_mu_);
    if (conns_.size() >= options_.max_clients) {
      send_all(fd, refusal("too many api clients (" + std::to_string(options_.max_clients) +
                           "); try again"));
      ::close(fd);
      continue;
    }
    auto conn = std::make_unique<Conn>();
    Conn* c = conn.get();
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

  std::string buf;
  char chunk[65536];
  bool open = true;
  while (open) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    const int n = ::poll(fds, 2, options_.idle_timeout_s * 1000);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || fds[1].revents) break;  // error, idle, or stopping
    const ssize_t r = ::recv(fd, chunk, sizeof chunk, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    buf.append(chunk, static_cast<size_t>(r));
    size_t start = 0;
    for (size_t nl; open && (nl = buf.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(buf.data() + start, nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) continue;
      open = send_all(fd, handler_(line, origin) + "\n");
    }
    buf.erase(0, start);
    if (buf.size() > options_.max_line) {
      send_all(fd, refusal("request longer than " + std::to_string(options_.max_line) + " bytes"));
      break;
    }
  }
  ::close(fd);
  conn->done = true;
}

}  // namespace rondo::cp

#include "controlplane/health/health.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>

#include "controlplane/health/http_status.h"
#include "controlplane/log.h"
#include "dataplane/api/ctl.h"

namespace rondo::cp {

std::string validate_health_check(const HealthCheckSpec& spec) {
  if (spec.interval_ms == 0) return "interval_ms must be at least 1";
  if (spec.timeout_ms == 0) return "timeout_ms must be at least 1";
  if (spec.rise == 0) return "rise must be at least 1";
  if (spec.fall == 0) return "fall must be at least 1";
  if (spec.kind == HealthCheckSpec::Kind::kHttp) {
    if (spec.http_status < 100 || spec.http_status > 599)
      return "status must be an HTTP status code (100-599)";
    if (spec.http_path.empty() || spec.http_path[0] != '/') return "path must start with '/'";
    // The path goes verbatim into the request line: a space or CR/LF would split it.
    for (unsigned char c : spec.http_path)
      if (c <= ' ' || c == 0x7f) return "path must not contain spaces or control characters";
  }
  return {};
}

HealthState::HealthState(uint32_t rise, uint32_t fall) { set_thresholds(rise, fall); }

void HealthState::set_thresholds(uint32_t rise, uint32_t fall) {
  rise_ = std::max<uint32_t>(rise, 1);
  fall_ = std::max<uint32_t>(fall, 1);
}

bool HealthState::report(bool ok) {
  constexpr uint32_t kMax = std::numeric_limits<uint32_t>::max();
  const Health before = status_;
  if (ok) {
    fail_ = 0;
    if (ok_ < kMax) ++ok_;
    if (status_ == Health::kUnknown || (status_ == Health::kDown && ok_ >= rise_))
      status_ = Health::kUp;
  } else {
    ok_ = 0;
    if (fail_ < kMax) ++fail_;
    if (status_ == Health::kUnknown || (status_ == Health::kUp && fail_ >= fall_))
      status_ = Health::kDown;
  }
  return status_ != before;
}

// ---------------------------------------------------------------------------------------

namespace {

using Clock = std::chrono::steady_clock;

std::string errno_text(int e) { return std::strerror(e); }

std::string endpoint(const api::Addr& ip, uint16_t port) { return api::format_endpoint(ip, port); }

// What a target checks, for the logs: "10.0.0.3:80", or through a DSR backend's tunnel
// "203.0.113.10:80 via 10.0.0.3 (mark 0x52440001)".
std::string describe(const HealthChecker::Target& t) {
  std::string s = endpoint(t.ip, t.port);
  if (t.mark != 0) {
    char mark[16];
    std::snprintf(mark, sizeof mark, "0x%08x", t.mark);
    s += " via " + api::format_addr(t.via) + " (mark " + mark + ")";
  }
  return s;
}

// Errors that say this host is short of something (descriptors, ephemeral ports, memory),
// not that the backend is unhealthy: they must not take backends down.
bool is_local_error(int e) {
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM || e == EADDRNOTAVAIL ||
         e == EAGAIN;
}

// A short, printable excerpt of what a peer sent, for an error message.
std::string excerpt(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) out.push_back(c >= ' ' && c < 0x7f ? c : '?');
  return out;
}

constexpr size_t kMaxStatusLine = 1024;  // more without a newline: not HTTP

}  // namespace

struct HealthChecker::Impl {
  enum class Phase { kConnecting, kSending, kReading };

  struct Probe {
    int fd = -1;
    uint64_t serial = 0;  // tells a probe from a later one that reuses the fd number
    Phase phase = Phase::kConnecting;
    Clock::time_point started;
    Clock::time_point deadline;
    std::string request;
    size_t sent = 0;
    std::string response;
  };

  struct Entry {
    Target target;
    HealthState state;
    Clock::time_point next_due;
    std::optional<Probe> probe;
    std::string last_error;
    uint64_t checks = 0;
    bool local_error_logged = false;  // one warning per run of local failures
  };

  // A status change, reported to the callback after the lock is released.
  struct Change {
    uint32_t backend_id;
    bool up;
    std::string reason;
  };

  Callback on_change;
  int wake_fd = -1;

  mutable std::mutex mu;
  std::map<uint32_t, Entry> entries;  // by backend_id
  // Sockets of probes aborted by set_targets(). Only the checker thread closes them, after
  // its poll() returned, so that a descriptor number is never reused while it is polled.
  std::vector<int> orphans;
  bool running = false;
  bool stopping = false;
  size_t in_flight = 0;
  uint64_t next_serial = 1;
  std::thread thread;

  void run();
  void begin_probe(Entry& e, Clock::time_point now, std::vector<Change>* changes);
  void advance_probe(Entry& e, short revents, Clock::time_point now, std::vector<Change>* changes);
  void finish_probe(Entry& e, bool ok, const std::string& result, std::vector<Change>* changes);
  // Drop the probe in flight: its socket goes to `orphans` (or is closed now if
  // `close_now`, when no poll() can be using it).
  void abort_probe(Entry& e, bool close_now);
  void local_failure(Entry& e, const std::string& what, Clock::time_point now);
  void wake();
  void notify(const std::vector<Change>& changes);
};

void HealthChecker::Impl::wake() {
  const uint64_t one = 1;
  // Can only fail if the counter is saturated, in which case a wake-up is pending anyway.
  [[maybe_unused]] ssize_t n = ::write(wake_fd, &one, sizeof one);
}

void HealthChecker::Impl::notify(const std::vector<Change>& changes) {
  if (!on_change) return;
  for (const auto& c : changes) on_change(c.backend_id, c.up, c.reason);
}

void HealthChecker::Impl::abort_probe(Entry& e, bool close_now) {
  if (!e.probe) return;
  if (close_now)
    ::close(e.probe->fd);
  else
    orphans.push_back(e.probe->fd);
  e.probe.reset();
  --in_flight;
}

void HealthChecker::Impl::local_failure(Entry& e, const std::string& what, Clock::time_point now) {
  // Not a check result: the backend's status and counters stay as they are.
  e.last_error = "local error: " + what;
  e.next_due = now + std::chrono::milliseconds(e.target.spec.interval_ms);
  if (!e.local_error_logged) {
    log_warn("health: cannot check backend " + std::to_string(e.target.backend_id) + " " +
             describe(e.target) + ": " + what + " (status kept)");
    e.local_error_logged = true;
  }
}

void HealthChecker::Impl::finish_probe(Entry& e, bool ok, const std::string& result,
                                       std::vector<Change>* changes) {
  if (e.probe) {
    ::close(e.probe->fd);
    e.probe.reset();
    --in_flight;
  }
  e.local_error_logged = false;
  ++e.checks;
  if (!ok) e.last_error = result;
  const Health before = e.state.status();
  if (e.state.report(ok)) {
    const bool up = e.state.status() == Health::kUp;
    std::string line = "health: backend " + std::to_string(e.target.backend_id) + " " +
                       describe(e.target) + " " +
                       std::string(health_name(e.state.status()));
    if (before == Health::kUnknown)
      line += " (first check: " + result + ")";
    else if (up)
      line += " after " + std::to_string(e.state.consecutive_ok()) + " checks ok (" + result + ")";
    else
      line += " after " + std::to_string(e.state.consecutive_fail()) + " failed checks (" + result +
              ")";
    if (up)
      log_info(line);
    else
      log_warn(line);
    changes->push_back({e.target.backend_id, up, result});
  }
}

void HealthChecker::Impl::begin_probe(Entry& e, Clock::time_point now,
                                      std::vector<Change>* changes) {
  const HealthCheckSpec& spec = e.target.spec;
  const bool v6 = !e.target.ip.is_v4();
  const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    local_failure(e, "socket: " + errno_text(errno), now);
    return;
  }
  // The mark routes the check to bpf/rondo_hc_encap.bpf.c, which sends it through the
  // backend's tunnel (needs CAP_NET_ADMIN).
  if (e.target.mark != 0 &&
      ::setsockopt(fd, SOL_SOCKET, SO_MARK, &e.target.mark, sizeof e.target.mark) != 0) {
    const int err = errno;
    ::close(fd);
    local_failure(e, "SO_MARK: " + errno_text(err), now);
    return;
  }
  // Not emplace(): clang 14 decides whether a nested class with default member initializers
  // is default-constructible before the enclosing class is complete, and says no.
  e.probe = Probe{};
  Probe& p = *e.probe;
  p.fd = fd;
  p.serial = next_serial++;
  p.started = now;
  p.deadline = now + std::chrono::milliseconds(spec.timeout_ms);
  ++in_flight;
  // Fixed rate: the next check starts one interval after this one started (finish_probe
  // does not move it; run() waits for a probe still in flight).
  e.next_due = now + std::chrono::milliseconds(spec.interval_ms);
  if (spec.kind == HealthCheckSpec::Kind::kHttp) {
    // HTTP/1.0 with "Connection: close": the server ends the response by closing and
    // never expects keep-alive. Host carries the port unless it is the default (RFC 9110
    // section 7.2).
    // An IPv6 host is bracketed, with or without the port (RFC 3986 section 3.2.2).
    const std::string host = e.target.port != 80 ? endpoint(e.target.ip, e.target.port)
                             : v6                ? "[" + api::format_addr(e.target.ip) + "]"
                                                 : api::format_addr(e.target.ip);
    p.request.append("GET ").append(spec.http_path).append(" HTTP/1.0\r\nHost: ").append(host);
    p.request.append("\r\nUser-Agent: rondo-health-check\r\nConnection: close\r\n\r\n");
  }

  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  if (v6) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
    a6->sin6_family = AF_INET6;
    std::memcpy(&a6->sin6_addr, e.target.ip.b.data(), 16);
    a6->sin6_port = htons(e.target.port);
    addr_len = sizeof *a6;
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
    a4->sin_family = AF_INET;
    a4->sin_addr.s_addr = htonl(e.target.ip.v4());
    a4->sin_port = htons(e.target.port);
    addr_len = sizeof *a4;
  }
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), addr_len) == 0) {
    // Loopback may connect at once.
    if (spec.kind == HealthCheckSpec::Kind::kTcp) {
      finish_probe(e, true, "connect ok", changes);
    } else {
      p.phase = Phase::kSending;
      advance_probe(e, POLLOUT, now, changes);
    }
    return;
  }
  const int err = errno;
  if (err == EINPROGRESS) return;  // poll() for POLLOUT, then read SO_ERROR
  if (is_local_error(err)) {
    abort_probe(e, /*close_now=*/true);
    local_failure(e, "connect: " + errno_text(err), now);
    return;
  }
  finish_probe(e, false, "connect: " + errno_text(err), changes);
}

void HealthChecker::Impl::advance_probe(Entry& e, short revents, Clock::time_point now,
                                        std::vector<Change>* changes) {
  Probe& p = *e.probe;
  const HealthCheckSpec& spec = e.target.spec;

  if (p.phase == Phase::kConnecting) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err == 0 && !(revents & (POLLOUT | POLLERR | POLLHUP))) return;  // spurious
    if (err != 0) {
      if (is_local_error(err)) {
        abort_probe(e, /*close_now=*/true);
        local_failure(e, "connect: " + errno_text(err), now);
      } else {
        finish_probe(e, false, "connect: " + errno_text(err), changes);
      }
      return;
    }
    if (spec.kind == HealthCheckSpec::Kind::kTcp) {
      finish_probe(e, true, "connect ok", changes);
      return;
    }
    p.phase = Phase::kSending;
  }

  if (p.phase == Phase::kSending) {
    while (p.sent < p.request.size()) {
      const ssize_t n =
          ::send(p.fd, p.request.data() + p.sent, p.request.size() - p.sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // wait for POLLOUT
      if (n < 0) {
        finish_probe(e, false, "send: " + errno_text(errno), changes);
        return;
      }
      p.sent += static_cast<size_t>(n);
    }
    p.phase = Phase::kReading;
    return;  // wait for POLLIN
  }

  // kReading: only the status line matters.
  char buf[512];
  for (;;) {
    const ssize_t n = ::recv(p.fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) {
      finish_probe(e, false, "recv: " + errno_text(errno), changes);
      return;
    }
    if (n == 0) {
      finish_probe(e, false,
                   p.response.empty() ? "connection closed without a response"
                                      : "connection closed in the status line",
                   changes);
      return;
    }
    p.response.append(buf, static_cast<size_t>(n));
    if (const size_t eol = p.response.find('\n'); eol != std::string::npos) {
      const std::string_view line(p.response.data(), eol);
      const int status = parse_status_line(line);
      if (status < 0)
        finish_probe(e, false, "malformed status line \"" + excerpt(line) + "\"", changes);
      else if (status != spec.http_status)
        finish_probe(
            e, false,
            "HTTP " + std::to_string(status) + ", expected " + std::to_string(spec.http_status),
            changes);
      else
        finish_probe(e, true, "HTTP " + std::to_string(status), changes);
      return;
    }
    if (p.response.size() > kMaxStatusLine) {
      finish_probe(e, false,
                   "no status line in the first " + std::to_string(kMaxStatusLine) + " bytes",
                   changes);
      return;
    }
  }
}

void HealthChecker::Impl::run() {
  std::vector<pollfd> fds;
  std::vector<std::pair<uint32_t, uint64_t>> owners;  // fds[i + 1] -> (backend id, serial)
  std::vector<Change> changes;

  for (;;) {
    fds.clear();
    owners.clear();
    changes.clear();
    int timeout_ms = -1;
    {
      std::lock_guard lock(mu);
      if (stopping) return;
      for (int fd : orphans) ::close(fd);
      orphans.clear();

      const Clock::time_point now = Clock::now();
      // Expire probes past their deadline.
      for (auto& [id, e] : entries) {
        if (!e.probe || e.probe->deadline > now) continue;
        static constexpr const char* kPhase[] = {"connecting", "sending the request",
                                                 "waiting for the status line"};
        finish_probe(e, false,
                     "timeout after " + std::to_string(e.target.spec.timeout_ms) + " ms " +
                         kPhase[static_cast<int>(e.probe->phase)],
                     &changes);
      }
      // Start due checks, the most overdue first, while slots are free.
      std::vector<Entry*> due;
      for (auto& [id, e] : entries)
        if (!e.probe && e.next_due <= now) due.push_back(&e);
      std::sort(due.begin(), due.end(),
                [](const Entry* a, const Entry* b) { return a->next_due < b->next_due; });
      for (Entry* e : due) {
        if (in_flight >= kMaxInFlight) break;
        begin_probe(*e, now, &changes);
      }

      // Poll the probes in flight; sleep until the next deadline or due check.
      fds.push_back({wake_fd, POLLIN, 0});
      std::optional<Clock::time_point> wake_at;
      auto earliest = [&](Clock::time_point t) { wake_at = wake_at ? std::min(*wake_at, t) : t; };
      for (auto& [id, e] : entries) {
        if (e.probe) {
          fds.push_back({e.probe->fd,
                         static_cast<short>(e.probe->phase == Phase::kReading ? POLLIN : POLLOUT),
                         0});
          owners.emplace_back(id, e.probe->serial);
          earliest(e.probe->deadline);
        } else if (in_flight < kMaxInFlight) {
          earliest(e.next_due);
        }
      }
      if (wake_at) {
        // Round up so that we never wake just before the deadline and spin.
        const auto wait = std::chrono::ceil<std::chrono::milliseconds>(*wake_at - now);
        timeout_ms = static_cast<int>(std::clamp<int64_t>(wait.count(), 0, 60'000));
      }
    }
    notify(changes);
    changes.clear();

    const int n = ::poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) {
      log_error("health: poll: " + errno_text(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // do not spin
      continue;
    }
    if (n <= 0) continue;

    {
      std::lock_guard lock(mu);
      if (fds[0].revents & POLLIN) {
        uint64_t count;
        [[maybe_unused]] ssize_t r = ::read(wake_fd, &count, sizeof count);
      }
      const Clock::time_point now = Clock::now();
      for (size_t i = 1; i < fds.size(); ++i) {
        if (!fds[i].revents) continue;
        auto it = entries.find(owners[i - 1].first);
        // set_targets() may have dropped or restarted it while we polled.
        if (it == entries.end() || !it->second.probe ||
            it->second.probe->serial != owners[i - 1].second)
          continue;
        advance_probe(it->second, fds[i].revents, now, &changes);
      }
    }
    notify(changes);
  }
}

// ---------------------------------------------------------------------------------------

HealthChecker::HealthChecker(Callback on_change) : impl_(std::make_unique<Impl>()) {
  impl_->on_change = std::move(on_change);
  impl_->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl_->wake_fd < 0)
    throw std::system_error(errno, std::generic_category(), "health checker: eventfd");
}

HealthChecker::~HealthChecker() {
  stop();
  ::close(impl_->wake_fd);
}

void HealthChecker::set_targets(std::vector<Target> targets) {
  Impl& m = *impl_;
  std::lock_guard lock(m.mu);
  // With no thread, no poll() can hold an aborted probe's socket: close it right away.
  const bool close_now = !m.running;
  const Clock::time_point now = Clock::now();

  std::map<uint32_t, Target> wanted;
  for (auto& t : targets)
    if (t.spec.kind != HealthCheckSpec::Kind::kNone)
      wanted.insert_or_assign(t.backend_id, std::move(t));

  for (auto it = m.entries.begin(); it != m.entries.end();) {
    if (!wanted.count(it->first)) {
      m.abort_probe(it->second, close_now);
      it = m.entries.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [id, t] : wanted) {
    auto it = m.entries.find(id);
    if (it != m.entries.end() && it->second.target.ip == t.ip && it->second.target.port == t.port &&
        it->second.target.mark == t.mark && it->second.target.via == t.via) {
      Impl::Entry& e = it->second;
      const HealthCheckSpec& old = e.target.spec;
      const bool check_changed = old.kind != t.spec.kind || old.http_path != t.spec.http_path ||
                                 old.http_status != t.spec.http_status ||
                                 old.interval_ms != t.spec.interval_ms ||
                                 old.timeout_ms != t.spec.timeout_ms;
      e.state.set_thresholds(t.spec.rise, t.spec.fall);
      e.target = std::move(t);
      if (check_changed) {
        m.abort_probe(e, close_now);
        e.next_due = now;
      }
      continue;
    }
    // New, or the same id now names another server: nothing known about it.
    if (it != m.entries.end()) {
      m.abort_probe(it->second, close_now);
      m.entries.erase(it);
    }
    Impl::Entry e;
    e.state = HealthState(t.spec.rise, t.spec.fall);
    e.target = std::move(t);
    e.next_due = now;
    m.entries.emplace(id, std::move(e));
  }
  if (m.running) m.wake();
}

void HealthChecker::start() {
  Impl& m = *impl_;
  std::lock_guard lock(m.mu);
  if (m.running) return;
  m.stopping = false;
  m.thread = std::thread([&m] { m.run(); });
  m.running = true;
}

void HealthChecker::stop() {
  Impl& m = *impl_;
  {
    std::lock_guard lock(m.mu);
    if (!m.running) return;
    m.stopping = true;
    m.wake();
  }
  m.thread.join();
  std::lock_guard lock(m.mu);
  m.running = false;
  for (auto& [id, e] : m.entries) m.abort_probe(e, /*close_now=*/true);
  for (int fd : m.orphans) ::close(fd);
  m.orphans.clear();
}

std::vector<HealthChecker::TargetHealth> HealthChecker::snapshot() const {
  std::lock_guard lock(impl_->mu);
  std::vector<TargetHealth> out;
  out.reserve(impl_->entries.size());
  for (const auto& [id, e] : impl_->entries)
    out.push_back({.backend_id = id,
                   .ip = e.target.ip,
                   .port = e.target.port,
                   .status = e.state.status(),
                   .last_error = e.last_error,
                   .consecutive_ok = e.state.consecutive_ok(),
                   .consecutive_fail = e.state.consecutive_fail(),
                   .checks = e.checks});
  return out;
}

std::map<uint32_t, Health> HealthChecker::statuses() const {
  std::lock_guard lock(impl_->mu);
  std::map<uint32_t, Health> out;
  for (const auto& [id, e] : impl_->entries) out.emplace_hint(out.end(), id, e.state.status());
  return out;
}

HealthCheckSpec spec_of(const HealthCheck& hc) {
  using Kind = HealthCheckSpec::Kind;
  return {.kind = hc.type == HealthCheck::Type::kNone   ? Kind::kNone
                  : hc.type == HealthCheck::Type::kHttp ? Kind::kHttp
                                                        : Kind::kTcp,
          .http_path = hc.path,
          .http_status = hc.http_status,
          .interval_ms = hc.interval_ms,
          .timeout_ms = hc.timeout_ms,
          .rise = hc.rise,
          .fall = hc.fall};
}

std::vector<HealthChecker::Target> health_targets(const DesiredState& desired) {
  std::vector<HealthChecker::Target> out;
  for (const auto& vip : desired.vips) {
    const HealthCheck& hc = vip.health_check;
    if (hc.type == HealthCheck::Type::kNone) continue;
    const HealthCheckSpec spec = spec_of(hc);
    for (const auto& b : vip.backends)
      out.push_back(
          {.backend_id = b.id, .ip = b.ip, .port = hc.port ? hc.port : b.port, .spec = spec});
  }
  return out;
}

}  // namespace rondo::cp

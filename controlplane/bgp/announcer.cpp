#include "controlplane/bgp/announcer.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>

#include "controlplane/log.h"
#include "dataplane/api/ctl.h"

namespace rondo::cp {

bool dataplane_forwarding(const ControlPlaneView& v) {
  // Forwarding with some state of ours (not necessarily the newest: a change in flight must
  // not withdraw and re-announce every address).
  return v.dataplane_connected && v.dataplane && v.dataplane->generation != 0;
}

std::vector<api::Addr> vips_to_announce(const ControlPlaneView& v) {
  return dataplane_forwarding(v) ? vips_serving(v.desired) : std::vector<api::Addr>{};
}

std::vector<api::Addr> vips_serving(const DesiredState& d) {
  std::set<api::Addr> out;
  for (const auto& vip : d.vips) {
    if (vip.drained) continue;
    const bool serving = std::any_of(vip.backends.begin(), vip.backends.end(), [](const BackendSpec& b) {
      return b.weight > 0 && !b.drained && b.health != Health::kDown;
    });
    if (serving) out.insert(vip.ip);
  }
  return {out.begin(), out.end()};
}

std::vector<api::Addr> RestartHoldDown::filter(const ControlPlaneView& v, Clock::time_point now) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  if (dataplane_forwarding(v)) {
    if (away_since_ && !held_.empty()) {
      const auto ms = duration_cast<milliseconds>(now - *away_since_).count();
      log_info("bgp: dataplane back after " + std::to_string(ms) + " ms: " +
               (expired_ ? "announcing again" : "announcement held"));
    }
    away_since_.reset();
    expired_ = false;
    held_ = vips_serving(v.desired);
    return held_;
  }
  if (!away_since_) {
    away_since_ = now;
    if (!held_.empty() && hold_down_.count() > 0)
      log_info("bgp: dataplane away: holding the announcement for up to " +
               std::to_string(hold_down_.count()) + " ms (--restart-hold-down)");
  }
  if (held_.empty()) return {};
  if (!expired_ && now - *away_since_ >= hold_down_) {
    expired_ = true;
    if (hold_down_.count() > 0) log_warn("bgp: hold-down expired: withdrawing");
  }
  if (expired_) return {};
  // What the desired state stopped serving meanwhile (a VIP drained) goes all the same.
  const auto serving = vips_serving(v.desired);
  std::vector<api::Addr> out;
  std::set_intersection(held_.begin(), held_.end(), serving.begin(), serving.end(),
                        std::back_inserter(out));
  return out;
}

namespace {

// "203.0.113.10/32", "2001:db8::10/128": a host route of the address's family.
std::string host_route(const api::Addr& ip) {
  return api::format_addr(ip) + (ip.is_v4() ? "/32" : "/128");
}

}  // namespace

std::string bird_include(const std::vector<api::Addr>& ips) {
  std::string s =
      "# Written by rondo-controlplane: the VIP addresses this host announces. Do not edit;\n"
      "# included by bird.conf (deploy/bird/bird.conf), re-read on `birdc configure`.\n"
      "protocol static rondo_vips {\n"
      "  ipv4;\n";
  for (const auto& ip : ips)
    if (ip.is_v4()) s += "  route " + host_route(ip) + " blackhole;\n";
  s += "}\n"
       "protocol static rondo_vips6 {\n"
       "  ipv6;\n";
  for (const auto& ip : ips)
    if (!ip.is_v4()) s += "  route " + host_route(ip) + " blackhole;\n";
  return s + "}\n";
}

Announcer::Announcer(AnnouncerOptions options, Runner run)
    : options_(std::move(options)), run_(std::move(run)) {
  if (!run_) {
    const auto timeout = options_.timeout;
    run_ = [timeout](const std::vector<std::string>& argv, std::string* out) {
      return run_command(argv, out, timeout);
    };
  }
}

bool Announcer::apply(const std::vector<api::Addr>& ips) {
  if (synced_ && ips == applied_) return true;
  auto fail = [&](const std::string& why) {
    if (why != last_error_) log_error("bgp: " + why + " (retrying)");
    last_error_ = why;
    synced_ = false;
    return false;
  };
  // Written aside and renamed: BIRD never reads half a file.
  const std::string tmp = options_.include_path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << bird_include(ips);
    f.close();
    if (!f) return fail("cannot write " + tmp + ": " + std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), options_.include_path.c_str()) != 0)
    return fail("cannot rename " + tmp + " to " + options_.include_path + ": " + std::strerror(errno));
  std::vector<std::string> argv{options_.birdc};
  if (!options_.bird_socket.empty()) argv.insert(argv.end(), {"-s", options_.bird_socket});
  argv.push_back("configure");
  std::string out;
  const int rc = run_(argv, &out);
  // birdc exits 0 even when BIRD refuses the configuration: it says so in its output.
  const bool accepted = out.find("Reconfigured") != std::string::npos ||
                        out.find("Reconfiguration in progress") != std::string::npos ||
                        out.find("Reconfiguration confirmed") != std::string::npos;
  if (rc != 0 || !accepted) {
    std::string first = out.substr(0, out.find('\n', out.find('\n') + 1));
    std::replace(first.begin(), first.end(), '\n', ' ');
    return fail("birdc configure failed (exit " + std::to_string(rc) + "): " + first);
  }
  std::string list;
  for (const auto& ip : ips) {
    if (!list.empty()) list += ' ';
    list += host_route(ip);
  }
  log_info("bgp: announcing " + (list.empty() ? std::string("nothing") : list));
  applied_ = ips;
  synced_ = true;
  last_error_.clear();
  return true;
}

int run_command(const std::vector<std::string>& argv, std::string* output,
                std::chrono::milliseconds timeout) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -1;
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    // The daemon blocks its signals for sigwait; the child gets a clean mask.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    if (output->size() < (64u << 10)) output->append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  // Its output is closed; it ends by itself, or is killed at the deadline.
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    usleep(2000);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace rondo::cp

// rondo-dataplane: EAL arguments, then "--", then rondo's own options (--help).
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_log.h>

#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "dataplane/port/xdp_filter.h"
#include "dataplane/runtime/dataplane.h"
#include "dataplane/runtime/options.h"

namespace {

std::atomic<bool> g_stop{false};  // set from the signal handler only

void on_signal(int) { g_stop.store(true, std::memory_order_relaxed); }

// "rondo-dataplane --help" is answered by the EAL, which exits after its own options: this
// hook adds rondo's (the same text as "-- --help"), so one --help (and its man page) has both.
void print_rondo_usage(const char* prgname) {
  char help[] = "--help";
  char* argv[] = {const_cast<char*>(prgname), help, nullptr};
  int code = 0;
  std::printf("\n");
  std::fflush(stdout);
  rondo::dp::parse_options(2, argv, &code);
}

// A planned restart (kRestart): run the binary again in this process, same pid, so a
// supervisor sees no exit. `exe` was found at start (exe_path): an upgrade that put a new
// binary at that path (rename over it, or a link pointed elsewhere) is what runs now;
// /proc/self/exe would name the old, deleted one.
// Returns only if exec failed.
void exec_again(const std::string& exe, const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // Whatever EAL or a driver left open (and not close-on-exec) must not reach the new image:
  // a leaked lock or socket would make it refuse its own files or ports.
  (void)::close_range(3, ~0u, CLOSE_RANGE_CLOEXEC);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  std::fprintf(stderr, "rondo-dataplane: restart: exec %s\n", exe.c_str());
  std::fflush(stderr);
  ::execv(exe.c_str(), argv.data());
  std::fprintf(stderr, "rondo-dataplane: restart: cannot exec %s: %s (the flows stay in --flow-dir "
               "for the next start)\n", exe.c_str(), std::strerror(errno));
}

// The path a planned restart execs: argv[0] as the binary was started (made absolute, or
// found on PATH as the shell did), symbolic links NOT resolved, so that an upgrade which
// points a link (/usr/local/bin/rondo-dataplane -> /opt/rondo/<version>/...) at a new
// version runs the new one. /proc/self/exe only when argv[0] says nothing usable.
std::string exe_path(const char* argv0) {
  std::string a = argv0 ? argv0 : "";
  if (!a.empty() && a.find('/') == std::string::npos) {
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "";
    std::string found;
    for (size_t i = 0; found.empty() && i <= dirs.size();) {
      const size_t j = std::min(dirs.find(':', i), dirs.size());
      const std::string c = (j > i ? dirs.substr(i, j - i) : std::string(".")) + "/" + a;
      if (::access(c.c_str(), X_OK) == 0) found = c;
      i = j + 1;
    }
    a = found;
  }
  if (!a.empty() && a[0] != '/') {
    if (char cwd[PATH_MAX]; ::getcwd(cwd, sizeof cwd) != nullptr) a = std::string(cwd) + "/" + a;
    else a.clear();
  }
  if (!a.empty() && ::access(a.c_str(), X_OK) == 0) return a;
  if (char buf[PATH_MAX]; ::realpath("/proc/self/exe", buf) != nullptr) return buf;
  return {};
}

int64_t realtime_ns() {
  timespec t{};
  clock_gettime(CLOCK_REALTIME, &t);
  return t.tv_sec * int64_t{1000000000} + t.tv_nsec;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t entered = realtime_ns();
  // For a planned restart: the arguments before EAL reorders them, and the binary's path.
  const std::vector<std::string> args(argv, argv + argc);
  const std::string exe = exe_path(argc > 0 ? argv[0] : nullptr);
  const auto vdevs = rondo::dp::vdev_args(argc, argv);
  {
    // Before the EAL probes the af_xdp ports: a kill -9 left their XDP program attached.
    std::vector<std::string> lines;
    rondo::dp::detach_stale_xdp(vdevs, &lines);
    for (const auto& l : lines) std::fprintf(stderr, "rondo-dataplane: af_xdp %s\n", l.c_str());
  }
  rte_set_application_usage_hook(print_rondo_usage);
  const int eal_args = rte_eal_init(argc, argv);
  if (eal_args < 0) {
    std::fprintf(stderr, "rondo-dataplane: EAL init failed: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  argv[eal_args] = argv[0];
  int code = 0;
  auto opts = rondo::dp::parse_options(argc - eal_args, argv + eal_args, &code);
  if (!opts) {
    rte_eal_cleanup();
    return code;
  }
  opts->vdevs = vdevs;
  opts->main_entered_ns = entered;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  // The dataplane reads no configuration file (only its hash secret, once at start): there
  // is nothing to reload, and a hangup (a closed terminal, a stray kill -HUP meant for the
  // control plane) must not kill it.
  std::signal(SIGHUP, SIG_IGN);

  int rc = 0;
  bool restart = false;
  {
    rondo::dp::Dataplane dp(*opts);
    std::string err;
    if (!dp.init(&err)) {
      std::fprintf(stderr, "rondo-dataplane: %s\n", err.c_str());
      rc = 1;
    } else {
      restart = dp.run(&g_stop);
      RTE_LOG(NOTICE, USER1, "%s\n", restart ? "restarting: tearing down" : "stopping");
    }
  }
  // The workers, their flow tables (unmapped, their flocks released) and the ports are gone.
  rte_eal_cleanup();
  if (restart) {
    if (exe.empty()) {
      std::fprintf(stderr, "rondo-dataplane: restart: the binary's path was not known at start\n");
      return 1;
    }
    exec_again(exe, args);
    return 1;
  }
  return rc;
}

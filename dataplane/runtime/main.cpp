// rondo-dataplane: EAL arguments, then "--", then rondo's own options (--help).
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_log.h>

#include <atomic>
#include <csignal>
#include <cstdio>

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

}  // namespace

int main(int argc, char** argv) {
  const auto vdevs = rondo::dp::vdev_args(argc, argv);
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
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  // The dataplane reads no configuration file (only its hash secret, once at start): there
  // is nothing to reload, and a hangup (a closed terminal, a stray kill -HUP meant for the
  // control plane) must not kill it.
  std::signal(SIGHUP, SIG_IGN);

  int rc = 0;
  {
    rondo::dp::Dataplane dp(*opts);
    std::string err;
    if (!dp.init(&err)) {
      std::fprintf(stderr, "rondo-dataplane: %s\n", err.c_str());
      rc = 1;
    } else {
      dp.run(&g_stop);
      RTE_LOG(NOTICE, USER1, "stopping\n");
    }
  }
  rte_eal_cleanup();
  return rc;
}

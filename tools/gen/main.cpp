// rondo-gen: EAL arguments, then "--", then the generator's own options (--help).
// One lcore, one port: it sends the flow mix, plays the backends and the clients for
// what the middle box sends back, and reports what it measured.
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>

#include <atomic>
#include <csignal>
#include <cstdio>

#include "tools/gen/engine.h"
#include "tools/gen/options.h"
#include "tools/gen/port.h"
#include "tools/gen/report.h"

namespace {

std::atomic<bool> g_stop{false};  // set from the signal handler only

void on_signal(int) { g_stop.store(true, std::memory_order_relaxed); }

constexpr double kLinkTimeoutS = 30;

}  // namespace

int main(int argc, char** argv) {
  const int eal_args = rte_eal_init(argc, argv);
  if (eal_args < 0) {
    std::fprintf(stderr, "rondo-gen: EAL init failed: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  argv[eal_args] = argv[0];
  int code = 0;
  auto opts = rondo::gen::parse_options(argc - eal_args, argv + eal_args, &code);
  if (!opts) {
    rte_eal_cleanup();
    return code;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  int rc = 0;
  rondo::gen::GenPort port;
  std::string err;
  if (!rondo::gen::port_open(*opts, &port, &err)) {
    std::fprintf(stderr, "rondo-gen: %s\n", err.c_str());
    rc = 1;
  } else if (!rondo::gen::port_wait_link(port, kLinkTimeoutS, g_stop)) {
    std::fprintf(stderr, "rondo-gen: port %s: link not up within %.0f s (is the peer running?)\n",
                 port.name.c_str(), kLinkTimeoutS);
    rc = 1;
  } else {
    if (!opts->dst_mac_set)
      std::fprintf(stderr, "rondo-gen: no --dst-mac: sending to the broadcast address\n");
    rondo::gen::RunResult result;
    {
      rondo::gen::Engine engine(*opts, port.pool, port.mac, rte_get_tsc_hz());
      result = engine.run(g_stop);
    }
    const auto summary = rondo::gen::port_summary(port);
    opts->json ? rondo::gen::print_json(*opts, result, summary)
               : rondo::gen::print_text(*opts, result, summary);
  }
  if (port.pool) rondo::gen::port_close(&port);
  rte_eal_cleanup();
  return rc;
}

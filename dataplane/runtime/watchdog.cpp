#include "dataplane/runtime/watchdog.h"

#include <rte_log.h>
#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <utility>

#include "dataplane/runtime/worker.h"
#include "dataplane/stats/counters.h"

namespace rondo::dp {

Watchdog::Watchdog(std::vector<const Worker*> workers, uint64_t hz, uint32_t idle_sleep_us)
    : workers_(std::move(workers)), progress_(workers_.size()) {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  if (!socket) {
    RTE_LOG(NOTICE, USER1, "systemd: no NOTIFY_SOCKET (not run as a Type=notify service): no notifications\n");
    return;
  }
  uint64_t usec = 0;
  // > 0: WATCHDOG_USEC is set (and WATCHDOG_PID, if set, is this process).
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) {
    RTE_LOG(NOTICE, USER1, "systemd: notifying %s; no watchdog (WatchdogSec unset)\n", socket);
    return;
  }
  const uint64_t half_us = usec / 2;
  half_ms_ = half_us / 1000;
  period_tsc_ = hz / 1'000'000 * half_us + hz % 1'000'000 * half_us / 1'000'000;
  if (period_tsc_ == 0) period_tsc_ = 1;
  RTE_LOG(NOTICE, USER1,
          "systemd: notifying %s; watchdog %llu ms: a ping every %llu ms while every worker's loop advances\n",
          socket, static_cast<unsigned long long>(usec / 1000),
          static_cast<unsigned long long>(half_us / 1000));
  // An idle worker sleeps between polls: a sleep close to the check period could make a
  // healthy worker look stuck.
  if (idle_sleep_us != 0 && uint64_t{idle_sleep_us} * 4 > half_us)
    RTE_LOG(WARNING, USER1,
            "systemd: --idle-sleep-us %u is more than a quarter of the check period (%llu ms): "
            "an idle worker may look stuck; raise WatchdogSec or lower --idle-sleep-us\n",
            idle_sleep_us, static_cast<unsigned long long>(half_us / 1000));
}

void Watchdog::ready(const std::string& status, uint64_t now_tsc) {
  status_ = status;
  sd_notifyf(0, "READY=1\nSTATUS=%s", status_.c_str());
  next_tsc_ = now_tsc + period_tsc_;
}

void Watchdog::poll(uint64_t now_tsc) {
  if (period_tsc_ == 0 || now_tsc < next_tsc_) return;
  next_tsc_ = now_tsc + period_tsc_;
  std::vector<uint64_t> loops;
  loops.reserve(workers_.size());
  for (const Worker* w : workers_) loops.push_back(read_counter(w->loops));
  const std::vector<uint32_t> stuck = progress_.stalled(loops);
  if (stuck.empty()) {
    sd_notify(0, "WATCHDOG=1");
    if (stuck_) {
      stuck_ = false;
      RTE_LOG(NOTICE, USER1, "systemd: every worker loops again; watchdog pings resumed\n");
      sd_notifyf(0, "STATUS=%s", status_.c_str());
    }
    return;
  }
  if (stuck_) return;  // said once per episode
  stuck_ = true;
  std::string names;
  for (uint32_t i : stuck) {
    if (!names.empty()) names += ", ";
    names += "worker " + std::to_string(i) + " (lcore " + std::to_string(workers_[i]->setup.lcore) + ")";
  }
  const auto ms = static_cast<unsigned long long>(half_ms_);
  RTE_LOG(ERR, USER1,
          "systemd: %s stuck: loop not advanced in %llu ms; no watchdog ping (systemd restarts "
          "the dataplane when WatchdogSec runs out)\n",
          names.c_str(), ms);
  sd_notifyf(0, "STATUS=%s stuck: loop not advanced in %llu ms; watchdog not pinged", names.c_str(), ms);
}

void Watchdog::stopping() { sd_notify(0, "STOPPING=1\nSTATUS=stopping"); }
void Watchdog::restarting() {
  sd_notify(0, "RELOADING=1\nSTATUS=restarting: the same process runs its binary again");
}

}  // namespace rondo::dp

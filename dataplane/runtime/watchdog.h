// systemd's service protocol for the dataplane, through libsystemd's sd_notify: READY=1 once
// the workers run; WATCHDOG=1 every half WatchdogSec, but only while every worker's loop
// advances (a stuck worker, or a stuck main lcore, sends no ping, and systemd restarts the
// dataplane); STOPPING=1 on the way out; STATUS= lines for `systemctl status`. Started by
// anything but systemd (no NOTIFY_SOCKET), it sends nothing. docs/deploy.md has the why.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rondo::dp {

struct Worker;

/// Which workers' loop counts did not move between two looks. Pure: unit-tested.
class LoopProgress {
 public:
  explicit LoopProgress(size_t n_workers) : last_(n_workers, 0) {}

  /// Take the loop counts now (one per worker, in worker order) and return the workers whose
  /// count is the same as at the previous look (the first look compares with 0: a worker that
  /// has not looped once since start is stuck too). Empty: every loop advanced.
  std::vector<uint32_t> stalled(const std::vector<uint64_t>& now) {
    std::vector<uint32_t> out;
    for (size_t i = 0; i < now.size() && i < last_.size(); ++i) {
      if (now[i] == last_[i]) out.push_back(static_cast<uint32_t>(i));
      last_[i] = now[i];
    }
    return out;
  }

 private:
  std::vector<uint64_t> last_;
};

/// The main lcore's side of systemd's protocol. Every call is made on the main lcore.
class Watchdog {
 public:
  /// Reads WATCHDOG_USEC (sd_watchdog_enabled) and logs what it will do. workers: every
  /// worker, in worker order; idle_sleep_us: --idle-sleep-us, warned about if a worker's
  /// sleep could outlast the check period.
  Watchdog(std::vector<const Worker*> workers, uint64_t hz, uint32_t idle_sleep_us);

  /// READY=1 with STATUS=status; the first check comes half an interval later.
  void ready(const std::string& status, uint64_t now_tsc);
  /// Call from the main lcore's loop: every half interval, WATCHDOG=1 if every worker's loop
  /// advanced since the last check; otherwise no ping, one log line and a STATUS naming them.
  void poll(uint64_t now_tsc);
  /// STOPPING=1: systemd then expects no more pings.
  void stopping();
  /// RELOADING=1: a planned restart; the same pid sends READY=1 again after it execs itself.
  void restarting();

  /// Half of WatchdogSec in TSC ticks; 0 when systemd asked for no watchdog.
  uint64_t period_tsc() const { return period_tsc_; }

 private:
  std::vector<const Worker*> workers_;
  LoopProgress progress_;
  uint64_t period_tsc_ = 0;
  uint64_t half_ms_ = 0;  // the same period, for messages
  uint64_t next_tsc_ = 0;
  bool stuck_ = false;  // the last check found a worker stuck (logged once per episode)
  std::string status_;  // what STATUS= says while all is well
};

}  // namespace rondo::dp

#include "controlplane/service/systemd.h"

#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <utility>

#include "controlplane/log.h"

namespace rondo::cp {

SystemdNotifier::SystemdNotifier(std::function<uint64_t()> loops,
                                 std::chrono::milliseconds sync_interval)
    : loops_(std::move(loops)) {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  if (!socket) return;  // not a Type=notify service: nothing to say, nothing to log
  uint64_t usec = 0;
  // > 0: WATCHDOG_USEC is set (and WATCHDOG_PID, if set, is this process).
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) {
    log_info(std::string("systemd: notifying ") + socket + "; no watchdog (WatchdogSec unset)");
    return;
  }
  period_ = std::chrono::microseconds(usec / 2);
  const auto half_ms = std::chrono::duration_cast<std::chrono::milliseconds>(period_).count();
  log_info(std::string("systemd: notifying ") + socket + "; watchdog " +
           std::to_string(usec / 1000) + " ms: a ping every " + std::to_string(half_ms) +
           " ms while the controller loops");
  if (sync_interval * 2 > period_)
    log_warn("systemd: --sync-interval-ms " + std::to_string(sync_interval.count()) +
             " is more than half the check period (" + std::to_string(half_ms) +
             " ms): a healthy controller may look stuck; raise WatchdogSec");
}

void SystemdNotifier::ready(const std::string& status) {
  status_ = status;
  sd_notifyf(0, "READY=1\nSTATUS=%s", status_.c_str());
  next_ = Clock::now() + period_;
}

void SystemdNotifier::reloading() { sd_notify(0, "RELOADING=1\nSTATUS=reloading the config file"); }

void SystemdNotifier::reloaded(const std::string& status) {
  status_ = status;
  sd_notifyf(0, "READY=1\nSTATUS=%s", status_.c_str());
}

void SystemdNotifier::stopping() { sd_notify(0, "STOPPING=1\nSTATUS=stopping"); }

void SystemdNotifier::tick(Clock::time_point now) {
  if (!watchdog() || now < next_) return;
  next_ = now + period_;
  const uint64_t loops = loops_();
  if (loops != last_loops_) {
    last_loops_ = loops;
    sd_notify(0, "WATCHDOG=1");
    if (stuck_) {
      stuck_ = false;
      log_info("systemd: the controller loops again; watchdog pings resumed");
      sd_notifyf(0, "STATUS=%s", status_.c_str());
    }
    return;
  }
  if (stuck_) return;  // said once per episode
  stuck_ = true;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(period_).count();
  log_error("systemd: the controller's loop has not advanced in " + std::to_string(ms) +
            " ms; no watchdog ping (systemd restarts the control plane when WatchdogSec runs out)");
  sd_notifyf(0, "STATUS=controller stuck: loop not advanced in %lld ms; watchdog not pinged",
             static_cast<long long>(ms));
}

}  // namespace rondo::cp

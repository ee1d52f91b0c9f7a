// systemd's service protocol for the control plane, through libsystemd's sd_notify
// (deploy/rondo-controlplane.service is Type=notify): READY=1 once the API serves and the
// controller runs; with WatchdogSec, WATCHDOG=1 every half interval but only while the
// controller's loop advances (a controller stuck in a sync gets the daemon restarted);
// RELOADING=1 around a reload; STOPPING=1 on the way out. Started by anything but systemd
// (no NOTIFY_SOCKET), it sends nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace rondo::cp {

class SystemdNotifier {
 public:
  using Clock = std::chrono::steady_clock;

  /// Reads WATCHDOG_USEC (sd_watchdog_enabled). loops: the controller's loop count
  /// (ControlPlane::loops); sync_interval: how often it loops when nothing happens, warned
  /// about if it could outlast a check period.
  SystemdNotifier(std::function<uint64_t()> loops, std::chrono::milliseconds sync_interval);

  /// READY=1 with STATUS=status; the first watchdog check comes half an interval later.
  void ready(const std::string& status);
  void reloading();
  void reloaded(const std::string& status);
  void stopping();

  /// True when systemd asked for watchdog pings.
  bool watchdog() const { return period_.count() > 0; }
  /// When tick() is next due (meaningful only with watchdog()).
  Clock::time_point next_tick() const { return next_; }
  /// Ping if due and the controller's loop advanced since the last check; otherwise, once
  /// per episode, log that it is stuck and say so in STATUS.
  void tick(Clock::time_point now);

 private:
  std::function<uint64_t()> loops_;
  std::chrono::microseconds period_{0};  // half of WatchdogSec; 0: no watchdog
  Clock::time_point next_{};
  uint64_t last_loops_ = 0;
  bool stuck_ = false;
  std::string status_;
};

}  // namespace rondo::cp

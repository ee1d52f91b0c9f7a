// Active health checks of backends, run by the control plane.
//
// HealthState is the rise/fall state machine of one backend; HealthChecker runs TCP-connect
// or HTTP-GET checks against many backends from one thread (non-blocking sockets and
// poll(), no thread per backend) and reports each change of state. The daemon records it
// as the backend's Health (model.h); a kDown backend is pushed with api::Backend::down, so
// the dataplane gives it no new flows (existing flows keep going, as with drain).
//
// Config keys (parsed by config.cpp into model.h's HealthCheck), per vip:
//   health_check:          # optional; absent or type none: no checks, backends stay unknown
//     type: http           # tcp | http | none
//     port: 8080           # optional; default: each backend's own port
//     path: /healthz       # http only; default "/"
//     status: 200          # http only; expected status (proposed: HealthCheck has no field
//                          # for it yet, health_targets() uses 200)
//     interval_ms: 2000    # from the start of one check to the start of the next
//     timeout_ms: 1000     # connect + request + status line must fit in it
//     rise: 2              # consecutive successes to bring a down backend up
//     fall: 3              # consecutive failures to take an up backend down
// Proposed per-backend override: the same map under a backend, replacing the keys it names
// (`health_check: {type: none}` exempts one backend). HealthChecker takes one spec per
// target, so either form maps onto it.
//
// Checks leave from the control plane host through the kernel stack (not through the
// dataplane), so backends must be reachable from that host. A target with a mark is a DSR
// backend checked at VIP:port through its tunnel (dsr_checks.h, docs/modes.md).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "controlplane/state/model.h"

namespace rondo::cp {

/// How to check one backend.
struct HealthCheckSpec {
  enum class Kind { kNone, kTcp, kHttp };
  Kind kind = Kind::kNone;      // kNone: not checked, the backend always counts as up
  std::string http_path = "/";  // kHttp: request target
  int http_status = 200;        // kHttp: the only status that counts as success
  uint32_t interval_ms = 2000;
  uint32_t timeout_ms = 1000;
  uint32_t rise = 2;
  uint32_t fall = 3;
  bool operator==(const HealthCheckSpec&) const = default;
};

/// Semantic checks for a spec (intervals and counts non-zero, status 100-599, path starts
/// with '/' and holds no whitespace or control characters). Returns "" if valid.
std::string validate_health_check(const HealthCheckSpec& spec);

/// Rise/fall state machine of one backend.
///
/// It starts Health::kUnknown, which takes traffic: a fresh pool (or a restarted control
/// plane, while the dataplane keeps forwarding) must not black-hole every vip for
/// rise * interval. With no history the first completed check decides at once: ok -> kUp,
/// failure -> kDown (haproxy's default, `init-state up`, does the same). After that, kUp
/// needs `fall` consecutive failures to go kDown, and kDown needs `rise` consecutive
/// successes to go kUp; a result of the other kind in between restarts the count, so a
/// flapping backend keeps its state.
class HealthState {
 public:
  /// rise and fall of 0 are taken as 1.
  explicit HealthState(uint32_t rise = 2, uint32_t fall = 3);

  /// Record one check result. Returns true when status() changed (including the first
  /// decision out of kUnknown).
  bool report(bool ok);

  Health status() const { return status_; }
  /// Whether the backend may get new flows as far as health goes (kUp or kUnknown).
  bool takes_traffic() const { return status_ != Health::kDown; }
  uint32_t consecutive_ok() const { return ok_; }
  uint32_t consecutive_fail() const { return fail_; }
  uint32_t rise() const { return rise_; }
  uint32_t fall() const { return fall_; }
  /// Change the thresholds; status and counters are kept and the new values apply from the
  /// next report().
  void set_thresholds(uint32_t rise, uint32_t fall);

 private:
  uint32_t rise_;
  uint32_t fall_;
  Health status_ = Health::kUnknown;
  uint32_t ok_ = 0;    // consecutive successes, saturating
  uint32_t fail_ = 0;  // consecutive failures, saturating
};

/// Runs the health checks of a set of backends on one background thread.
///
/// Each target is checked every interval_ms (measured from the start of one check to the
/// start of the next; a check that takes longer delays the next one), and each check must
/// finish within timeout_ms. TCP: the connect completes. HTTP: connect, send
/// "GET <path> HTTP/1.0" with Host and "Connection: close", and the status line carries
/// the expected status (the body is not read). At most kMaxInFlight checks run at once;
/// others wait for a slot.
///
/// Thread safety: every public function may be called from any thread. The callback runs
/// on the checker thread, without any lock held: it may call snapshot() or set_targets(),
/// but it must not block for long (it delays every check) and must not call stop().
class HealthChecker {
 public:
  struct Target {
    uint32_t backend_id = 0;  // unique among targets; a later duplicate replaces an earlier one
    api::Addr ip;             // where to connect (IPv4 or IPv6)
    uint16_t port = 0;        // host byte order
    HealthCheckSpec spec;
    // A DSR backend checked through its tunnel (dsr_checks.h): ip:port is the VIP's, the
    // socket carries SO_MARK `mark`, and `via` is the backend's address (for the logs).
    // 0, 0: a plain check of ip:port.
    uint32_t mark = 0;
    api::Addr via;
    bool operator==(const Target&) const = default;
  };

  struct TargetHealth {
    uint32_t backend_id = 0;
    api::Addr ip;
    uint16_t port = 0;
    Health status = Health::kUnknown;
    std::string last_error;  // why the latest failed check failed; "" if none failed yet
    uint32_t consecutive_ok = 0;
    uint32_t consecutive_fail = 0;
    uint64_t checks = 0;  // completed checks since the target was added (or re-addressed)
  };

  /// Called on every change of a backend's status (see HealthState::report): `up` is the
  /// new status (kUp: true, kDown: false) and `reason` the result of the deciding check,
  /// e.g. "HTTP 200" or "connect: Connection refused".
  using Callback = std::function<void(uint32_t backend_id, bool up, const std::string& reason)>;

  static constexpr size_t kMaxInFlight = 256;

  explicit HealthChecker(Callback on_change = {});
  ~HealthChecker();  // stop()s
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  /// Replace the set of checked backends. Targets with kind kNone are ignored. A target
  /// whose backend_id, address and port are unchanged keeps its status and counters (a new
  /// spec applies from its next check, which starts at once if the check itself changed);
  /// a new or re-addressed target starts kUnknown and is checked at once; targets left out
  /// are dropped. No callback is made for any of this.
  void set_targets(std::vector<Target> targets);

  /// Start the checker thread; no-op if running. Throws std::system_error if it cannot.
  void start();
  /// Stop the thread and abort the checks in flight; statuses are kept. No-op if stopped.
  void stop();

  /// The state of every target, ordered by backend_id.
  std::vector<TargetHealth> snapshot() const;
  /// Status per backend id, for the state push and metrics.
  std::map<uint32_t, Health> statuses() const;

 private:
  struct Impl;  // the checker thread and everything it shares, in health.cpp
  std::unique_ptr<Impl> impl_;
};

/// The spec of a vip's health_check (kind kNone for type none).
HealthCheckSpec spec_of(const HealthCheck& hc);

/// The checks `desired` asks for: one target per backend of every vip whose health_check
/// type is not kNone, connecting to the backend's address and the check's port (or the
/// backend's own). DsrChecks::plan() sends DSR backends' checks through their tunnel.
std::vector<HealthChecker::Target> health_targets(const DesiredState& desired);

}  // namespace rondo::cp

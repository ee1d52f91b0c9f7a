// BGP announcement of VIPs through BIRD 2 (docs/deploy.md, "BGP").
//
// rondo does not speak BGP: BIRD does, to the routers. The control plane decides which VIP
// addresses this host may be sent traffic for, writes them into a file BIRD includes (static
// protocols: `rondo_vips` with one /32 blackhole route per IPv4 address, `rondo_vips6` with
// one /128 per IPv6 address; BIRD's BGP export filter picks them up), and asks BIRD to
// re-read its configuration (`birdc configure`), the way BIRD supports being driven from
// outside. Kernel routes are never touched.
//
// An address is announced while the dataplane is connected and forwarding with a state from
// this control plane (a change still in flight does not count against it), and at least one
// VIP on it is not drained (`rondoctl vip drain`) and has a backend that may take new
// connections (weight > 0, not drained, health not down). It is withdrawn when that stops
// being true, and on shutdown, before the control plane exits (the dataplane, ordered
// after it by systemd, keeps forwarding meanwhile). When the dataplane goes away (a
// restart, a crash), RestartHoldDown keeps what was announced for a while: a new process
// that takes over the flows (docs/operations.md, "Restart and upgrade") is back within it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "controlplane/state/view.h"
#include "dataplane/api/ctl.h"

namespace rondo::cp {

/// The VIP addresses (either family; sorted, unique: IPv4 first) that may be announced now.
std::vector<api::Addr> vips_to_announce(const ControlPlaneView& v);
/// True when the dataplane is connected and forwards with a state of this control plane.
bool dataplane_forwarding(const ControlPlaneView& v);
/// The VIP addresses the desired state would have announced with a forwarding dataplane.
std::vector<api::Addr> vips_serving(const DesiredState& d);

/// Hold-down across dataplane restarts: while the dataplane is away, keep announcing what
/// was announced when it left (less what the desired state no longer serves: a VIP drained
/// meanwhile still goes) for up to `hold_down`; withdraw when it expires without the
/// dataplane back. 0: withdraw at once. Logs the start and the end of each hold-down.
/// Single-threaded (the announcing thread); the clock is a parameter, for tests.
class RestartHoldDown {
 public:
  using Clock = std::chrono::steady_clock;

  explicit RestartHoldDown(std::chrono::milliseconds hold_down) : hold_down_(hold_down) {}

  /// What to announce now.
  std::vector<api::Addr> filter(const ControlPlaneView& v, Clock::time_point now);
  /// True while holding an announcement for a dataplane that is away.
  bool holding() const { return away_since_.has_value() && !expired_ && !held_.empty(); }

 private:
  std::chrono::milliseconds hold_down_;
  std::vector<api::Addr> held_;  // announced the last time the dataplane was forwarding
  std::optional<Clock::time_point> away_since_;
  bool expired_ = false;
};

/// The file BIRD includes for `ips`: static protocols `rondo_vips` (ipv4, a /32 each) and
/// `rondo_vips6` (ipv6, a /128 each), both always present (a filter may name either).
std::string bird_include(const std::vector<api::Addr>& ips);

struct AnnouncerOptions {
  std::string include_path;              // the file BIRD's config includes
  std::string birdc = "birdc";           // the BIRD client
  std::string bird_socket;               // BIRD's control socket ("": birdc's default)
  std::chrono::milliseconds timeout{5000};  // for one birdc call
};

class Announcer {
 public:
  /// Runs argv, returns its exit status (or -1 if it could not run or timed out) and
  /// what it printed. Injected so tests need no BIRD.
  using Runner = std::function<int(const std::vector<std::string>& argv, std::string* output)>;

  explicit Announcer(AnnouncerOptions options, Runner run = {});

  /// Make BIRD announce exactly `ips`: rewrite the include file and reconfigure when they
  /// differ from what was last applied (or the last attempt failed). false on failure
  /// (logged once per change of reason); the next call tries again.
  bool apply(const std::vector<api::Addr>& ips);

  const std::vector<api::Addr>& announced() const { return applied_; }

 private:
  AnnouncerOptions options_;
  Runner run_;
  std::vector<api::Addr> applied_;
  bool synced_ = false;  // applied_ is what BIRD runs with
  std::string last_error_;
};

/// Run a command with a timeout (fork/exec, output captured); the default Runner.
int run_command(const std::vector<std::string>& argv, std::string* output,
                std::chrono::milliseconds timeout);

}  // namespace rondo::cp

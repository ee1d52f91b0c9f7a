// ControlPlane: the single owner of desired state inside rondo-controlplane.
//
// It holds the desired state (vips by name, backends by address:port, stable ids), applies
// changes from the API and from `reload` as validated, persisted diffs, and feeds a
// Controller that keeps the dataplane in sync. The dataplane connection is injected
// (DataplaneClient), so the whole library runs in unit tests without DPDK.
//
// Threads: any number of API threads call the operations and view(); exactly one thread
// (the controller thread, or a test) calls sync() / run(). The desired state and what the
// controller learns are guarded by one mutex; no dataplane I/O happens under it.
//
// Rules (docs/controlplane.md):
//   - the state file is the desired state; the config file seeds it on first start;
//   - `reload` makes vips, backends, weights, addresses and the rest equal to the file,
//     keeping ids, drain flags and health of entries that stay (by key); API changes to
//     things the file states are therefore undone by a reload;
//   - at start, a config file that changed since it was last applied is reloaded;
//   - a change is saved to the state file before it is acknowledged, and a change that
//     cannot be saved is refused.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "controlplane/dataplane/controller.h"
#include "controlplane/dataplane/dataplane_client.h"
#include "controlplane/state/state_file.h"
#include "controlplane/state/view.h"

namespace rondo::cp {

/// How an operation ended; the API reports it as "code" and rondoctl maps it to an exit code.
enum class Status {
  kOk,
  kInvalid,      // bad argument: usage error (rondoctl exits 2)
  kBadConfig,    // reload: the config file has errors (listed in details); nothing changed
  kNotFound,     // unknown vip or backend
  kConflict,     // already exists / already served
  kNeedsForce,   // would cut active flows: repeat with force
  kUnavailable,  // needs the dataplane, which is not connected
  kFailed,       // could not be done (state file not writable, ids exhausted)
};

/// "ok", "invalid", "bad_config", "not_found", "conflict", "needs_force", "unavailable",
/// "failed".
std::string_view status_name(Status s);

struct OpResult {
  Status status = Status::kOk;
  std::string error;                 // one line saying what is wrong, when not ok
  std::vector<std::string> details;  // reload: every config error, "file:line: field: msg"
  std::vector<std::string> changes;  // the diff applied (diff_states lines)
  uint64_t generation = 0;           // generation holding the change
  bool applied = false;              // the dataplane acknowledged it before the answer
  std::string note;                  // e.g. why it is not applied yet
  bool ok() const { return status == Status::kOk; }

  static OpResult fail(Status s, std::string error) { return {.status = s, .error = std::move(error)}; }
};

/// Per-second rates of one backend, from two dataplane samples at least rate_window apart.
struct Rates {
  double connections = 0;
  double packets = 0;
  double bytes = 0;
};

struct ControlPlaneOptions {
  std::string config_path;  // "" : no config file; start needs a state file, reload refused
  std::string state_path;   // "" : nothing persisted (tests)
  std::chrono::milliseconds sync_interval{500};  // controller tick and stats poll period
  std::chrono::milliseconds rate_window{1000};   // minimum span of a rate sample
  /// How long a change waits for the dataplane's acknowledgement before answering
  /// (0: answer at once). Not waited when the dataplane is not connected.
  std::chrono::milliseconds apply_timeout{3000};
  ControllerOptions controller;
  /// Opens a connection of its own to the dataplane for inspection requests (flows, trace,
  /// drop samples), so that they never wait behind, or hold up, the controller's. Null:
  /// inspection is unavailable.
  std::function<std::unique_ptr<DataplaneClient>()> inspect_client;
  /// Whether DSR backends are health-checked through their tunnel (--dsr-check-interface,
  /// health/dsr_checks.h) or on their own address; reported by `show`.
  bool dsr_checks_tunnel = false;
};

/// The answer to restart_dataplane().
struct RestartResult {
  Status status = Status::kOk;  // kOk: the dataplane accepted and is restarting
  std::string error;            // when not ok: the dataplane's refusal, or why it was not asked
  std::string message;          // the dataplane's own words (its Ack), when it answered
  std::optional<api::DataplaneInfo> before;  // the instance that was asked
  bool ok() const { return status == Status::kOk; }
};

struct StartResult {
  bool ok = false;
  std::vector<std::string> errors;  // why the daemon cannot start (config or state file)
};

class ControlPlane final : public ControlPlaneHandle {
 public:
  using Clock = Controller::Clock;
  using WallClock = std::chrono::system_clock;

  ControlPlane(std::unique_ptr<DataplaneClient> client, ControlPlaneOptions options);
  ~ControlPlane() override;

  /// Load the state file, or seed it from the config file on a first start; reload a
  /// config file that changed since it was last applied. Call once, before anything else.
  StartResult start();

  // ---- controller thread ----

  /// One step: hand the desired state to the controller, tick it (connect, hello, push),
  /// poll the dataplane's counters, publish what was learned and wake waiting changes.
  void sync(Clock::time_point now = Clock::now());
  /// sync() every sync_interval, and at once after a change, until `stop`.
  void run(std::stop_token stop);
  /// Iterations of run()'s loop so far (any thread): the systemd watchdog pings only while
  /// it moves, so a controller stuck in a sync gets the daemon restarted.
  uint64_t loops() const { return loops_.load(std::memory_order_relaxed); }

  // ---- operations (any thread). `origin` names who asked, for the log. ----

  /// Add a vip (its backends too, if any); the id is allocated, spec.id ignored.
  OpResult add_vip(VipSpec spec, const std::string& origin);
  /// Remove a vip and its backends; refused without `force` while they have active flows.
  OpResult remove_vip(const std::string& name, bool force, const std::string& origin);
  OpResult add_backend(const std::string& vip, const api::Addr& ip, uint16_t port, uint16_t weight,
                       const std::string& origin);
  /// Refused without `force` while the backend has active flows (or they are unknown).
  OpResult remove_backend(const std::string& vip, const api::Addr& ip, uint16_t port, bool force,
                          const std::string& origin);
  OpResult set_drained(const std::string& vip, const api::Addr& ip, uint16_t port, bool drained,
                       const std::string& origin);
  /// vip drain / undrain: stop (or resume) announcing the VIP (bgp/announcer.h).
  OpResult set_vip_drained(const std::string& vip, bool drained, const std::string& origin);
  OpResult set_weight(const std::string& vip, const api::Addr& ip, uint16_t port, uint16_t weight,
                      const std::string& origin);
  /// Re-read the config file and apply it as a diff; a bad file changes nothing.
  OpResult reload(const std::string& origin);

  /// Pass an inspection request to the dataplane (on a connection of its own). nullopt with
  /// *err (and *status: kUnavailable when the dataplane cannot be reached or refuses).
  std::optional<api::InspectReply> inspect(const api::InspectRequest& req, std::string* err) const;

  /// Ask the dataplane to restart in place (api::MsgType::kRestart), on the controller's
  /// connection: the controller thread sends it at its next step and then reconnects fast
  /// and pushes the state to the new instance. Waits for the dataplane's answer at most
  /// `timeout`. kUnavailable when not connected or no answer came; kFailed when refused.
  RestartResult restart_dataplane(const std::string& origin, std::chrono::milliseconds timeout);

  /// Called after every installed change of the desired state (API, reload; not health),
  /// with the new state, outside the lock, on the thread that made the change. Set it
  /// before any thread runs; the daemon uses it to retarget the health checker.
  void set_observer(std::function<void(const DesiredState&)> observer);

  // ---- reads ----

  ControlPlaneView view() const override;
  void set_health(uint32_t backend_id, Health health) override;
  /// Latest per-backend rates by backend id (empty until two samples were taken).
  std::map<uint32_t, Rates> rates() const;
  /// Active flows of a backend in the latest stats: nullopt when unknown (not connected,
  /// no sample yet); 0 when the dataplane reports nothing for the id.
  std::optional<uint64_t> active_flows(uint32_t backend_id) const;
  const ControlPlaneOptions& options() const { return options_; }

 private:
  using Edit = std::function<OpResult(PersistedState& next, IdAllocator::Seconds now)>;

  StartResult start_impl();

  // Copy the state, let `edit` change the copy, validate, diff, save, install, then wait
  // (outside the lock) for the dataplane to acknowledge it.
  OpResult change(const Edit& edit, const std::string& origin);
  OpResult wait_applied(OpResult r, uint64_t generation);
  // Lookups that produce the error text the API returns.
  OpResult find_backend(const PersistedState& s, const std::string& vip, const api::Addr& ip,
                        uint16_t port, BackendSpec** out) const;
  // Callers hold mu_.
  std::optional<uint64_t> active_flows_locked(uint32_t backend_id) const;
  IdAllocator::Seconds quarantine_locked(const DesiredState& d) const;
  std::function<bool(uint32_t)> may_have_flows_locked() const;
  // After a change of state_ and ++generation_: build published_, wake the controller.
  void publish_locked();
  void record_stats_locked(std::shared_ptr<const api::Stats> stats, Clock::time_point now);

  ControlPlaneOptions options_;
  std::unique_ptr<DataplaneClient> client_;   // until start() hands it to the controller
  std::unique_ptr<Controller> controller_;    // the controller thread's alone
  std::function<void(const DesiredState&)> observer_;
  int lock_fd_ = -1;  // flock on <state file>.lock while we own the state file

  mutable std::mutex mu_;
  std::condition_variable wake_;     // controller thread: a change is waiting
  std::condition_variable applied_;  // API threads: the controller published progress
  PersistedState state_;
  // One counter for one thing: the generation of the desired state, 1 at start, +1 per
  // installed change (health included). published_ is that state as the dataplane gets it,
  // immutable; the controller thread takes it when picked_generation_ falls behind.
  uint64_t generation_ = 0;
  std::shared_ptr<const api::State> published_;
  uint64_t picked_generation_ = 0;  // generation the controller last took
  uint64_t acked_generation_ = 0;   // generation the dataplane last acknowledged
  // What the controller learned, for view().
  bool connected_ = false;
  bool in_sync_ = false;
  std::optional<api::DataplaneInfo> info_;
  std::optional<WallClock::time_point> last_push_;
  uint64_t pushes_ = 0, push_failures_ = 0, reloads_ = 0, reload_failures_ = 0;
  std::shared_ptr<const api::Stats> stats_;
  std::optional<WallClock::time_point> stats_time_;
  std::optional<WallClock::time_point> dataplane_since_;  // first sight of since_instance_
  uint64_t since_instance_ = 0;
  std::array<uint64_t, std::size(api::kStartKindNames)> restarts_{};
  bool restart_expected_ = false;
  // Restart requests: API threads take a ticket (++restart_asked_) and wait on applied_ for
  // restart_answered_ to reach it; the controller thread serves every ticket up to the
  // newest with one request to the dataplane (two operators asking at once get one restart).
  uint64_t restart_asked_ = 0;
  uint64_t restart_answered_ = 0;
  RestartResult restart_answer_;
  // Rate computation: the sample rates were last computed from.
  std::shared_ptr<const api::Stats> rate_base_;
  Clock::time_point rate_base_time_{};
  uint64_t rate_base_instance_ = 0;
  std::map<uint32_t, Rates> rates_;
  // Written by the controller thread once per loop; only seen to move, no ordering needed.
  std::atomic<uint64_t> loops_{0};
};

}  // namespace rondo::cp

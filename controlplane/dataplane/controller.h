// Controller: keeps rondo-dataplane forwarding with the desired state.
//
// It holds a copy of the last state ControlPlane (the one owner of desired state) handed
// it, by generation; the dataplane is told, never asked to remember. It reconciles on
// every tick(): connect if needed, say hello, and push
// the full state whenever the dataplane may not have it: after every (re)connect, when the
// dataplane restarted (new instance id), or when it reports another generation.
// Failures never end the control plane: the connection is dropped and retried with
// exponential backoff, and each change of condition is logged once. After it asked the
// dataplane to restart in place (restart()), it retries every restart_retry instead, until
// a new instance answers or restart_window passes: the new process is waited for, not
// backed off from.
//
// Single-threaded: call set_state(), tick() and fetch_stats() from the same thread (the
// daemon's controller thread; ControlPlane shares what it learns under its own lock).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "controlplane/dataplane/dataplane_client.h"
#include "dataplane/api/ctl.h"

namespace rondo::cp {

struct ControllerOptions {
  std::chrono::milliseconds min_backoff{250};  // first retry after a failure
  std::chrono::milliseconds max_backoff{5000};  // retries never get rarer than this
  // After a restart the dataplane agreed to: retry this often (no doubling) ...
  std::chrono::milliseconds restart_retry{50};
  // ... for this long at most; then the dataplane is treated as gone (normal backoff).
  std::chrono::milliseconds restart_window{30000};
};

class Controller {
 public:
  using Clock = std::chrono::steady_clock;

  /// `desired` must pass api::validate_state; its generation is kept (0 is taken as 1:
  /// generation 0 means "no state" to the dataplane).
  Controller(std::unique_ptr<DataplaneClient> client, api::State desired,
             ControllerOptions options = {});

  /// A new desired state, with a new generation (its owner's): the next tick() pushes it.
  /// The controller does not compare states; its owner tells it when one changed.
  void set_state(api::State desired);
  /// The desired state, with its current generation.
  const api::State& state() const { return state_; }
  uint64_t generation() const { return state_.generation; }

  /// One reconciliation step; call it periodically. It blocks at most for the client's
  /// timeouts and does nothing while waiting out a backoff.
  void tick(Clock::time_point now = Clock::now());

  /// True when connected and the dataplane acknowledged the current generation.
  bool in_sync() const;
  /// The dataplane's last hello, if one was seen since the last (re)connect.
  const std::optional<api::DataplaneInfo>& dataplane() const { return info_; }
  /// Delay before the next connection attempt after the latest failure.
  std::chrono::milliseconds backoff() const { return backoff_; }
  /// True while connected to the dataplane.
  bool connected() const { return client_->connected(); }

  /// Fetch the dataplane's counters on the current connection; nullopt when not connected
  /// or on failure (a transport failure drops the connection, as in tick()).
  std::optional<api::Stats> fetch_stats(Clock::time_point now = Clock::now());

  /// Ask the dataplane to restart in place (DataplaneClient::restart). On ok the connection
  /// is dropped and retried every restart_retry until a new instance answers, which gets
  /// the full state as any new instance does. ok=false: refused (the connection stays), not
  /// connected, or a transport failure (then a restart is expected all the same: the
  /// dataplane may have got the request).
  api::Ack restart(Clock::time_point now = Clock::now());
  /// True from an accepted restart() until a new instance answered or restart_window passed.
  bool restart_expected() const { return restart_until_.has_value(); }
  /// When tick() next tries to connect; nullopt while connected.
  std::optional<Clock::time_point> next_attempt() const {
    if (client_->connected()) return std::nullopt;
    return next_attempt_;
  }
  /// New dataplane instances seen after the first, by the start kind each reported
  /// (api::DataplaneInfo::start_kind: 0 fresh, 1 planned restart, 2 after a crash).
  const std::array<uint64_t, std::size(api::kStartKindNames)>& restarts() const { return restarts_; }

  /// Pushes acknowledged, and pushes that failed (refused, or the connection broke).
  uint64_t pushes() const { return pushes_; }
  uint64_t push_failures() const { return push_failures_; }

 private:
  enum class Link { kUnknown, kUp, kDown };

  // Drop the connection, schedule a retry, and log `why` unless it is already known.
  void fail(Clock::time_point now, const std::string& why, bool is_error);
  // A restart is under way: retry soon, for restart_window.
  void expect_restart(Clock::time_point now);
  bool push(Clock::time_point now);

  std::unique_ptr<DataplaneClient> client_;
  ControllerOptions options_;
  api::State state_;

  Link link_ = Link::kUnknown;
  std::string last_failure_;
  std::chrono::milliseconds backoff_;
  Clock::time_point next_attempt_{};
  bool need_push_ = true;
  bool announced_ = false;  // "connected to dataplane" logged for the current link
  std::optional<uint64_t> instance_;  // last dataplane instance seen; survives reconnects
  std::optional<api::DataplaneInfo> info_;
  uint64_t acked_generation_ = 0;  // 0: nothing acknowledged on this connection
  uint64_t pushes_ = 0;
  uint64_t push_failures_ = 0;
  std::optional<Clock::time_point> restart_asked_;  // when restart() was accepted
  std::optional<Clock::time_point> restart_until_;  // retry fast until then
  std::array<uint64_t, std::size(api::kStartKindNames)> restarts_{};
};

}  // namespace rondo::cp

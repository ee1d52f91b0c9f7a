#include "controlplane/state/control_plane.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "controlplane/config/config.h"
#include "controlplane/state/diff.h"
#include "controlplane/state/validate.h"
#include "controlplane/log.h"

namespace rondo::cp {
namespace {

IdAllocator::Seconds wall_now() { return IdAllocator::to_seconds(std::chrono::system_clock::now()); }

std::set<uint32_t> vip_ids(const DesiredState& d) {
  std::set<uint32_t> ids;
  for (const auto& v : d.vips) ids.insert(v.id);
  return ids;
}

std::set<uint32_t> backend_ids(const DesiredState& d) {
  std::set<uint32_t> ids;
  for (const auto& v : d.vips)
    for (const auto& b : v.backends) ids.insert(b.id);
  return ids;
}

std::set<uint32_t> interface_ids(const DesiredState& d) {
  std::set<uint32_t> ids;
  for (const auto& i : d.interfaces) ids.insert(i.id);
  return ids;
}

// Retire every id of `from` that `to` no longer uses.
void retire_removed(const DesiredState& from, const DesiredState& to, PersistedState* s,
                    IdAllocator::Seconds now) {
  const auto vips = vip_ids(to);
  const auto backends = backend_ids(to);
  const auto ifaces = interface_ids(to);
  for (const auto& v : from.vips) {
    if (!vips.count(v.id)) s->vip_ids.retire(v.id, now);
    for (const auto& b : v.backends)
      if (!backends.count(b.id)) s->backend_ids.retire(b.id, now);
  }
  // An interface id indexes the dataplane's per-interface counters: a retired one is not
  // given to another name at once, so that one series never counts two interfaces.
  for (const auto& i : from.interfaces)
    if (!ifaces.count(i.id)) s->interface_ids.retire(i.id, now);
}

// Give `next` (a config file's state) the identity s->desired has (adopt_identity), new ids
// from s's allocators. `busy` says whether a retired backend id may still have flows.
std::string adopt_file(PersistedState* s, DesiredState* next, IdAllocator::Seconds now,
                       IdAllocator::Seconds quarantine, const std::function<bool(uint32_t)>& busy) {
  auto in_vips = vip_ids(s->desired);
  auto in_backends = backend_ids(s->desired);
  auto in_ifaces = interface_ids(s->desired);
  auto from = [&](IdAllocator& ids, std::set<uint32_t>& in_use, std::function<bool(uint32_t)> flows) {
    return [&ids, &in_use, flows = std::move(flows), now, quarantine] {
      auto id = ids.allocate(in_use, now, quarantine, flows);
      if (id) in_use.insert(*id);
      return id;
    };
  };
  return adopt_identity(s->desired, next, from(s->vip_ids, in_vips, nullptr),
                        from(s->backend_ids, in_backends, busy),
                        from(s->interface_ids, in_ifaces, nullptr));
}

// Create the state file's directory if it is missing (one level, like systemd's
// StateDirectory=); an existing one is left as it is.
std::string ensure_parent_dir(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return {};
  const std::string dir = path.substr(0, slash);
  if (::mkdir(dir.c_str(), 0750) == 0 || errno == EEXIST) return {};
  return "cannot create " + dir + ": " + std::strerror(errno);
}

std::string backend_name(const std::string& vip, const api::Addr& ip, uint16_t port) {
  return "backend " + vip + " " + format_endpoint(ip, port);
}

}  // namespace

std::string_view status_name(Status s) {
  switch (s) {
    case Status::kOk: return "ok";
    case Status::kInvalid: return "invalid";
    case Status::kBadConfig: return "bad_config";
    case Status::kNotFound: return "not_found";
    case Status::kConflict: return "conflict";
    case Status::kNeedsForce: return "needs_force";
    case Status::kUnavailable: return "unavailable";
    case Status::kFailed: return "failed";
  }
  return "failed";
}

ControlPlane::ControlPlane(std::unique_ptr<DataplaneClient> client, ControlPlaneOptions options)
    : options_(std::move(options)), client_(std::move(client)) {}

ControlPlane::~ControlPlane() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
}

StartResult ControlPlane::start() {
  StartResult r = start_impl();
  if (!r.ok && lock_fd_ >= 0) {
    ::close(lock_fd_);  // a control plane that did not start owns nothing
    lock_fd_ = -1;
  }
  return r;
}

StartResult ControlPlane::start_impl() {
  StartResult result;
  std::optional<PersistedState> saved;
  if (!options_.state_path.empty()) {
    // One owner per state file: a second control plane must not touch it.
    if (auto err = ensure_parent_dir(options_.state_path); !err.empty()) {
      result.errors.push_back(err);
      return result;
    }
    const std::string lock = options_.state_path + ".lock";
    lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (lock_fd_ < 0 || ::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      result.errors.push_back(errno == EWOULDBLOCK
                                  ? "another control plane is running with " + options_.state_path
                                  : "cannot lock " + lock + ": " + std::strerror(errno));
      return result;
    }
    std::string error;
    if (!read_state_file(options_.state_path, &saved, &error)) {
      result.errors.push_back(error + " (fix or remove it: the config file then seeds a new one)");
      return result;
    }
  }

  std::optional<DesiredState> file;
  std::string digest;
  if (!options_.config_path.empty()) {
    auto loaded = load_config_model(options_.config_path, &digest);
    if (auto* errors = std::get_if<std::vector<ConfigError>>(&loaded)) {
      for (const auto& e : *errors) result.errors.push_back(e.to_string());
    } else {
      file = std::move(std::get<DesiredState>(loaded));
    }
  }

  PersistedState state;
  const auto now = wall_now();
  bool save = false;
  if (saved) {
    state = std::move(*saved);
    log_info("loaded state file " + options_.state_path + ": " +
             std::to_string(state.desired.vips.size()) + " vips, " +
             std::to_string(state.desired.backend_count()) + " backends");
    if (!result.errors.empty()) {
      for (const auto& e : result.errors) log_error(e);
      log_warn("config file " + options_.config_path +
               " is invalid: running with the saved state; fix it and reload");
      result.errors.clear();
    } else if (file && digest != state.config_digest) {
      // Edited while the control plane was stopped: apply it as `reload` would.
      DesiredState next = std::move(*file);
      auto err = adopt_file(&state, &next, now, quarantine_locked(state.desired), nullptr);
      if (!err.empty()) {
        result.errors.push_back(options_.config_path + ": " + err);
        return result;
      }
      const auto changes = diff_states(state.desired, next);
      log_info("config file " + options_.config_path + " changed since it was last applied: " +
               (changes.empty() ? "no change to the state" : "applying " +
                                      std::to_string(changes.size()) + " changes"));
      for (const auto& c : changes) log_info("start: " + c);
      retire_removed(state.desired, next, &state, now);
      state.desired = std::move(next);
      state.config_digest = digest;
      save = true;
    }
  } else {
    if (options_.config_path.empty() && result.errors.empty())
      result.errors.push_back("no state file and no config file: nothing to start from");
    if (!result.errors.empty()) return result;
    state.desired = std::move(*file);
    // A first start: ids in file order, like the dataplane saw them before ids were
    // persisted, and nothing to keep.
    assign_fresh_ids(&state.desired);
    for (const auto& v : state.desired.vips) {
      state.vip_ids.reserve(v.id);
      for (const auto& b : v.backends) state.backend_ids.reserve(b.id);
    }
    for (const auto& i : state.desired.interfaces) state.interface_ids.reserve(i.id);
    state.config_digest = digest;
    save = true;
    log_info("loaded " + options_.config_path + ": " + std::to_string(state.desired.vips.size()) +
             " vips, " + std::to_string(state.desired.backend_count()) + " backends");
  }

  if (save && !options_.state_path.empty()) {
    if (auto err = write_state_file(options_.state_path, state); !err.empty()) {
      result.errors.push_back("cannot save the state: " + err);
      return result;
    }
  }

  std::lock_guard lk(mu_);
  state_ = std::move(state);
  generation_ = 1;
  publish_locked();
  picked_generation_ = generation_;
  controller_ = std::make_unique<Controller>(std::move(client_), *published_, options_.controller);
  result.ok = true;
  return result;
}

// ---------------------------------------------------------------------------------------
// Controller thread

void ControlPlane::publish_locked() {
  auto s = std::make_shared<api::State>(to_api(state_.desired));
  s->generation = generation_;
  published_ = std::move(s);
  wake_.notify_all();
}

void ControlPlane::sync(Clock::time_point now) {
  // The controller is told about a change (a new immutable state, by generation); nothing
  // is rebuilt or compared when nothing changed.
  std::shared_ptr<const api::State> changed;
  uint64_t generation;
  uint64_t restart_ticket = 0;
  {
    std::lock_guard lk(mu_);
    generation = generation_;
    if (picked_generation_ != generation) changed = published_;
    picked_generation_ = generation;
    if (restart_asked_ != restart_answered_) restart_ticket = restart_asked_;
  }
  if (changed) controller_->set_state(*changed);
  controller_->tick(now);
  RestartResult restarted;
  if (restart_ticket) {
    restarted.before = controller_->dataplane();
    const api::Ack ack = controller_->restart(now);
    restarted.message = ack.message;
    if (!ack.ok) {
      restarted.status = restarted.before && controller_->connected() ? Status::kFailed
                                                                        : Status::kUnavailable;
      restarted.error = ack.message;
    }
  }
  std::shared_ptr<const api::Stats> stats;
  if (controller_->in_sync()) {
    if (auto s = controller_->fetch_stats(now)) stats = std::make_shared<const api::Stats>(std::move(*s));
  }

  std::lock_guard lk(mu_);
  connected_ = controller_->connected();
  in_sync_ = controller_->in_sync();
  if (const auto& dp = controller_->dataplane(); dp && dp->instance != since_instance_) {
    since_instance_ = dp->instance;
    dataplane_since_ = WallClock::now();
  }
  info_ = controller_->dataplane();
  restarts_ = controller_->restarts();
  restart_expected_ = controller_->restart_expected();
  if (restart_ticket) {
    restart_answered_ = restart_ticket;
    restart_answer_ = std::move(restarted);
  }
  if (controller_->pushes() != pushes_) last_push_ = WallClock::now();
  pushes_ = controller_->pushes();
  push_failures_ = controller_->push_failures();
  if (in_sync_) acked_generation_ = generation;
  if (stats) record_stats_locked(std::move(stats), now);
  if (!connected_) {
    // A disconnected dataplane has no live counters; rates restart with the next one.
    rate_base_.reset();
    rates_.clear();
  }
  applied_.notify_all();
}

void ControlPlane::run(std::stop_token stop) {
  std::stop_callback wake_on_stop(stop, [this] {
    std::lock_guard lk(mu_);
    wake_.notify_all();
  });
  while (!stop.stop_requested()) {
    sync(Clock::now());
    loops_.fetch_add(1, std::memory_order_relaxed);
    // A retry due before the next interval (backoff, or a restart under way) is not delayed.
    auto wait = options_.sync_interval;
    if (auto next = controller_->next_attempt()) {
      const auto until = std::chrono::ceil<std::chrono::milliseconds>(*next - Clock::now());
      wait = std::clamp(until, std::chrono::milliseconds(1), wait);
    }
    std::unique_lock lk(mu_);
    wake_.wait_for(lk, wait, [&] {
      return stop.stop_requested() || generation_ != picked_generation_ ||
             restart_asked_ != restart_answered_;
    });
  }
}

void ControlPlane::record_stats_locked(std::shared_ptr<const api::Stats> stats,
                                       Clock::time_point now) {
  stats_ = stats;
  stats_time_ = WallClock::now();
  const uint64_t instance = info_ ? info_->instance : 0;
  if (!rate_base_ || instance != rate_base_instance_) {
    rate_base_ = stats;
    rate_base_time_ = now;
    rate_base_instance_ = instance;
    rates_.clear();
    return;
  }
  const auto span = now - rate_base_time_;
  if (span < options_.rate_window) return;
  const double seconds = std::chrono::duration<double>(span).count();
  std::map<uint32_t, const api::BackendStats*> base;
  for (const auto& b : rate_base_->backends) base[b.id] = &b;
  // Counters only grow within one dataplane instance; a smaller value means the counter
  // was reset (the id was reused), and the rate restarts from it.
  auto per_second = [&](uint64_t cur, uint64_t old) {
    return cur >= old ? static_cast<double>(cur - old) / seconds : 0.0;
  };
  rates_.clear();
  for (const auto& b : stats->backends) {
    const auto it = base.find(b.id);
    const api::BackendStats zero{};
    const api::BackendStats& o = it == base.end() ? zero : *it->second;
    rates_[b.id] = {per_second(b.connections, o.connections), per_second(b.packets, o.packets),
                    per_second(b.bytes, o.bytes)};
  }
  rate_base_ = stats;
  rate_base_time_ = now;
}

// ---------------------------------------------------------------------------------------
// Reads

ControlPlaneView ControlPlane::view() const {
  std::lock_guard lk(mu_);
  ControlPlaneView v;
  v.desired = state_.desired;
  v.generation = generation_;
  v.dataplane_connected = connected_;
  v.in_sync = in_sync_;
  v.dataplane = info_;
  v.last_push = last_push_;
  v.pushes = pushes_;
  v.push_failures = push_failures_;
  v.reloads = reloads_;
  v.reload_failures = reload_failures_;
  v.stats = stats_;
  v.stats_time = stats_time_;
  v.dataplane_since = dataplane_since_;
  v.dataplane_restarts = restarts_;
  v.restart_expected = restart_expected_;
  return v;
}

std::map<uint32_t, Rates> ControlPlane::rates() const {
  std::lock_guard lk(mu_);
  return rates_;
}

std::optional<uint64_t> ControlPlane::active_flows(uint32_t backend_id) const {
  std::lock_guard lk(mu_);
  return active_flows_locked(backend_id);
}

std::optional<uint64_t> ControlPlane::active_flows_locked(uint32_t backend_id) const {
  if (!connected_ || !stats_) return std::nullopt;
  for (const auto& b : stats_->backends)
    if (b.id == backend_id) return b.active_flows;
  return 0;
}

void ControlPlane::set_health(uint32_t backend_id, Health health) {
  std::lock_guard lk(mu_);
  for (auto& v : state_.desired.vips) {
    for (auto& b : v.backends) {
      if (b.id != backend_id) continue;
      if (b.health == health) return;
      const bool was_down = b.health == Health::kDown;
      b.health = health;
      // Only down/not-down reaches the dataplane; unknown <-> up needs no push.
      if (was_down != (health == Health::kDown)) {
        ++generation_;
        publish_locked();
      }
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Changes

IdAllocator::Seconds ControlPlane::quarantine_locked(const DesiredState& d) const {
  const auto& t = d.timeouts;
  uint32_t longest = 0;
  for (const auto& f : api::kTimeoutFields) longest = std::max(longest, t.*f.ms);
  // A flow can outlive its timeout by one ageing sweep; a minute covers it.
  return longest / 1000 + 60;
}

std::function<bool(uint32_t)> ControlPlane::may_have_flows_locked() const {
  // Unknown counters (no dataplane) leave the decision to the quarantine alone.
  auto stats = stats_;
  return [stats](uint32_t id) {
    if (!stats) return false;
    for (const auto& b : stats->backends)
      if (b.id == id) return b.active_flows > 0;
    return false;
  };
}

void ControlPlane::set_observer(std::function<void(const DesiredState&)> observer) {
  observer_ = std::move(observer);
}

OpResult ControlPlane::change(const Edit& edit, const std::string& origin) {
  uint64_t generation;
  OpResult r;
  DesiredState installed;
  {
    std::unique_lock lk(mu_);
    if (!controller_) return OpResult::fail(Status::kFailed, "the control plane is not started");
    PersistedState next = state_;
    const auto now = wall_now();
    r = edit(next, now);
    if (!r.ok()) return r;
    // Health is only known where it is checked: a vip whose checks were turned off must
    // not keep a backend down forever.
    for (auto& v : next.desired.vips)
      if (v.health_check.type == HealthCheck::Type::kNone)
        for (auto& b : v.backends) b.health = Health::kUnknown;
    if (auto problems = validate(next.desired); !problems.empty())
      return OpResult::fail(Status::kInvalid, problems.front().to_string());
    auto changes = diff_states(state_.desired, next.desired);
    r.changes.insert(r.changes.end(), changes.begin(), changes.end());
    if (next == state_) {
      r.generation = generation_;
      r.applied = in_sync_ && acked_generation_ == generation_;
      return r;
    }
    retire_removed(state_.desired, next.desired, &next, now);
    if (!options_.state_path.empty()) {
      if (auto e = write_state_file(options_.state_path, next); !e.empty()) {
        log_error(origin + " refused: cannot save the state: " + e);
        return OpResult::fail(Status::kFailed, "cannot save the state: " + e);
      }
    }
    state_ = std::move(next);
    generation = ++generation_;
    publish_locked();
    for (const auto& c : r.changes) log_info(origin + ": " + c);
    installed = state_.desired;
  }
  // Outside the lock: observers (the health checker) may call back into us.
  if (observer_) observer_(installed);
  return wait_applied(std::move(r), generation);
}

OpResult ControlPlane::wait_applied(OpResult r, uint64_t generation) {
  std::unique_lock lk(mu_);
  if (!connected_) {
    r.note = "saved; the dataplane is not connected and gets it when it connects";
  } else if (options_.apply_timeout.count() > 0) {
    // Wake when the controller has pushed this generation, or lost the dataplane.
    const bool done = applied_.wait_for(lk, options_.apply_timeout, [&] {
      return acked_generation_ >= generation || !connected_;
    });
    r.applied = acked_generation_ >= generation;
    if (!r.applied)
      r.note = done ? "saved; the dataplane went away and gets it when it reconnects"
                    : "saved; the dataplane has not acknowledged it yet";
  }
  r.generation = generation_;
  return r;
}

OpResult ControlPlane::find_backend(const PersistedState& s, const std::string& vip, const api::Addr& ip,
                                    uint16_t port, BackendSpec** out) const {
  auto* v = const_cast<PersistedState&>(s).desired.find_vip(vip);
  if (!v) return OpResult::fail(Status::kNotFound, "no vip named " + vip);
  *out = v->find_backend(ip, port);
  if (!*out)
    return OpResult::fail(Status::kNotFound,
                          "vip " + vip + " has no backend " + format_endpoint(ip, port));
  return {};
}

OpResult ControlPlane::add_vip(VipSpec spec, const std::string& origin) {
  return change(
      [&](PersistedState& s, IdAllocator::Seconds now) {
        // Everything else about the new vip is validate()'s, in change().
        if (s.desired.find_vip(spec.name))
          return OpResult::fail(Status::kConflict, "vip " + spec.name + " already exists");
        if (auto* other = s.desired.find_vip(spec.ip, spec.port, spec.proto))
          return OpResult::fail(Status::kConflict, format_vip_address(spec) +
                                                       " is already served by vip " + other->name);
        const auto q = quarantine_locked(s.desired);
        auto id = s.vip_ids.allocate(vip_ids(s.desired), now, q, nullptr);
        if (!id)
          return OpResult::fail(Status::kFailed, "no free vip id (at most " +
                                                     std::to_string(api::kMaxVipId + 1) + " vips)");
        spec.id = *id;
        auto in_use = backend_ids(s.desired);
        for (auto& b : spec.backends) {
          auto bid = s.backend_ids.allocate(in_use, now, q, may_have_flows_locked());
          if (!bid) return OpResult::fail(Status::kFailed, "no free backend id");
          in_use.insert(*bid);
          b.id = *bid;
          b.health = Health::kUnknown;
        }
        s.desired.vips.push_back(std::move(spec));
        return OpResult{};
      },
      "change by " + origin);
}

OpResult ControlPlane::remove_vip(const std::string& name, bool force, const std::string& origin) {
  return change(
      [&](PersistedState& s, IdAllocator::Seconds) {
        auto it = std::find_if(s.desired.vips.begin(), s.desired.vips.end(),
                               [&](const VipSpec& v) { return v.name == name; });
        if (it == s.desired.vips.end()) return OpResult::fail(Status::kNotFound, "no vip named " + name);
        if (!force) {
          uint64_t total = 0;
          for (const auto& b : it->backends) {
            auto n = active_flows_locked(b.id);
            if (!n)
              return OpResult::fail(Status::kNeedsForce,
                                    "active flows of vip " + name +
                                        " are unknown (dataplane not connected); use --force "
                                        "to remove it anyway");
            total += *n;
          }
          if (total > 0)
            return OpResult::fail(Status::kNeedsForce,
                                  "vip " + name + " still has " + std::to_string(total) +
                                      (total == 1 ? " active flow" : " active flows") +
                                      "; drain its backends first, or use --force");
        }
        s.desired.vips.erase(it);
        return OpResult{};
      },
      "change by " + origin);
}

OpResult ControlPlane::add_backend(const std::string& vip, const api::Addr& ip, uint16_t port,
                                   uint16_t weight, const std::string& origin) {
  return change(
      [&](PersistedState& s, IdAllocator::Seconds now) {
        auto* v = s.desired.find_vip(vip);
        if (!v) return OpResult::fail(Status::kNotFound, "no vip named " + vip);
        if (v->find_backend(ip, port))
          return OpResult::fail(Status::kConflict, format_endpoint(ip, port) +
                                                       " is already a backend of vip " + vip);
        auto id = s.backend_ids.allocate(backend_ids(s.desired), now,
                                         quarantine_locked(s.desired), may_have_flows_locked());
        if (!id)
          return OpResult::fail(Status::kFailed,
                                "no free backend id (at most " +
                                    std::to_string(api::kMaxBackendId + 1) +
                                    " backends; retired ids are reused once their flows are gone)");
        v->backends.push_back({.id = *id, .ip = ip, .port = port, .weight = weight});
        return OpResult{};
      },
      "change by " + origin);
}

OpResult ControlPlane::remove_backend(const std::string& vip, const api::Addr& ip, uint16_t port,
                                      bool force, const std::string& origin) {
  return change(
      [&](PersistedState& s, IdAllocator::Seconds) {
        BackendSpec* b = nullptr;
        if (auto r = find_backend(s, vip, ip, port, &b); !r.ok()) return r;
        if (!force) {
          const auto n = active_flows_locked(b->id);
          if (!n)
            return OpResult::fail(Status::kNeedsForce,
                                  "active flows of " + backend_name(vip, ip, port) +
                                      " are unknown (dataplane not connected); use --force to "
                                      "remove it anyway");
          if (*n > 0)
            return OpResult::fail(
                Status::kNeedsForce,
                backend_name(vip, ip, port) + " still has " + std::to_string(*n) +
                    (*n == 1 ? " active flow" : " active flows") +
                    "; drain it first (rondoctl backend drain " + vip + " " +
                    format_endpoint(ip, port) + " --wait) or use --force");
        }
        auto* v = s.desired.find_vip(vip);
        std::erase_if(v->backends, [&](const BackendSpec& x) { return x.ip == ip && x.port == port; });
        return OpResult{};
      },
      "change by " + origin);
}

OpResult ControlPlane::set_drained(const std::string& vip, const api::Addr& ip, uint16_t port,
                                   bool drained, const std::string& origin) {
  return change(
      [&](PersistedState& s, IdAllocator::Seconds) {
        BackendSpec* b = nullptr;
        if (auto r = find_backend(s, vip, ip, port, &b); !r.ok()) return r;
        OpResult r;
        if (b->drained == drained)
          r.note = backend_name(vip, ip, port) + (drained ? " is already drained" : " is not drained");
        b->drained = drained;
        return r;
      },
      "change by " + origin);
}

OpResult ControlPlane::set_vip_drained(const std::string& vip, bool drained, const std::string& origin) {
  return change(
      [&](PersistedState& s, IdAllocator::Seconds) {
        VipSpec* v = s.desired.find_vip(vip);
        if (!v) return OpResult::fail(Status::kNotFound, "no vip named " + vip);
        OpResult r;
        if (v->drained == drained) r.note = "vip " + vip + (drained ? " is already drained" : " is not drained");
        v->drained = drained;
        return r;
      },
      "change by " + origin);
}

OpResult ControlPlane::set_weight(const std::string& vip, const api::Addr& ip, uint16_t port,
                                  uint16_t weight, const std::string& origin) {
  return change(
      [&](PersistedState& s, IdAllocator::Seconds) {
        BackendSpec* b = nullptr;
        if (auto r = find_backend(s, vip, ip, port, &b); !r.ok()) return r;
        OpResult r;
        if (b->weight == weight)
          r.note = backend_name(vip, ip, port) + " already has weight " + std::to_string(weight);
        b->weight = weight;
        return r;
      },
      "change by " + origin);
}

OpResult ControlPlane::reload(const std::string& origin) {
  if (options_.config_path.empty())
    return OpResult::fail(Status::kFailed, "no config file to reload (started without --config)");
  std::string digest;
  auto loaded = load_config_model(options_.config_path, &digest);
  if (auto* errors = std::get_if<std::vector<ConfigError>>(&loaded)) {
    OpResult r = OpResult::fail(Status::kBadConfig,
                                options_.config_path + " is invalid (" +
                                    std::to_string(errors->size()) +
                                    (errors->size() == 1 ? " error" : " errors") +
                                    "); nothing changed");
    for (const auto& e : *errors) {
      r.details.push_back(e.to_string());
      log_error("reload by " + origin + ": " + e.to_string());
    }
    log_error("reload by " + origin + " refused: " + r.error);
    std::lock_guard lk(mu_);
    ++reload_failures_;
    return r;
  }
  auto file = std::move(std::get<DesiredState>(loaded));
  OpResult r = change(
      [&](PersistedState& s, IdAllocator::Seconds now) {
        const auto q = std::max(quarantine_locked(s.desired), quarantine_locked(file));
        DesiredState next = file;
        auto err = adopt_file(&s, &next, now, q, may_have_flows_locked());
        if (!err.empty()) return OpResult::fail(Status::kFailed, err + "; nothing changed");
        s.desired = std::move(next);
        s.config_digest = digest;
        return OpResult{};
      },
      "reload by " + origin);
  std::lock_guard lk(mu_);
  if (r.ok()) {
    ++reloads_;
    log_info("reload by " + origin + ": " +
             (r.changes.empty() ? "no change"
                                : std::to_string(r.changes.size()) +
                                      (r.changes.size() == 1 ? " change applied" : " changes applied")));
  } else {
    ++reload_failures_;
    log_error("reload by " + origin + " refused: " + r.error);
  }
  return r;
}

RestartResult ControlPlane::restart_dataplane(const std::string& origin,
                                              std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  if (!controller_) return {.status = Status::kFailed, .error = "the control plane is not started"};
  if (!connected_)
    return {.status = Status::kUnavailable,
            .error = "the dataplane is not connected (nothing to restart)"};
  log_info("dataplane restart asked by " + origin);
  const uint64_t ticket = ++restart_asked_;
  wake_.notify_all();
  if (!applied_.wait_for(lk, timeout, [&] { return restart_answered_ >= ticket; }))
    return {.status = Status::kUnavailable,
            .error = "no answer from the dataplane within " + std::to_string(timeout.count()) +
                     " ms"};
  return restart_answer_;
}

std::optional<api::InspectReply> ControlPlane::inspect(const api::InspectRequest& req,
                                                       std::string* err) const {
  if (!options_.inspect_client) {
    *err = "inspection is not available (no dataplane connection for it)";
    return std::nullopt;
  }
  std::unique_ptr<DataplaneClient> c = options_.inspect_client();
  if (!c->connect()) {
    *err = "the dataplane cannot be reached: " + c->last_error();
    return std::nullopt;
  }
  auto out = c->inspect(req);
  if (!out) *err = "the dataplane did not answer: " + c->last_error();
  return out;
}

// ---------------------------------------------------------------------------------------

std::vector<InterfaceRow> interface_rows(const ControlPlaneView& v) {
  const api::Stats* stats = v.dataplane_connected && v.stats ? v.stats.get() : nullptr;
  const uint32_t default_mtu = v.dataplane ? v.dataplane->mtu : 0;
  std::vector<InterfaceRow> rows;
  if (!v.desired.interfaces.empty()) {
    for (const auto& i : v.desired.interfaces) {
      InterfaceRow r;
      r.iface = {.id = i.id, .name = i.name, .port_id = i.port_id, .vlan = i.vlan,
                 .mtu = i.mtu ? i.mtu : default_mtu};
      r.addresses = i.addresses;
      rows.push_back(std::move(r));
    }
  } else if (stats && !stats->interfaces.empty()) {
    for (const auto& s : stats->interfaces) rows.push_back({.iface = s, .implicit = true});
  } else if (v.dataplane) {
    for (uint32_t p = 0; p < v.dataplane->n_ports && p <= UINT16_MAX; ++p) {
      const auto port = static_cast<uint16_t>(p);
      rows.push_back({.iface = {.id = port, .name = implicit_interface_name(port), .port_id = port,
                                .mtu = default_mtu},
                      .implicit = true});
    }
  }
  if (!stats) return rows;
  for (auto& r : rows) {
    r.counted = true;
    for (const auto& s : stats->interfaces) {
      if (s.id != r.iface.id || s.name != r.iface.name) continue;
      r.iface.rx_packets = s.rx_packets;
      r.iface.rx_bytes = s.rx_bytes;
      r.iface.tx_packets = s.tx_packets;
      r.iface.tx_bytes = s.tx_bytes;
    }
    for (const auto& p : stats->ports)
      if (p.port_id == r.iface.port_id) r.device = p.name;
  }
  return rows;
}

}  // namespace rondo::cp

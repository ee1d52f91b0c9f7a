#include "controlplane/dataplane/controller.h"

#include <algorithm>
#include <cstdio>

#include "controlplane/config/config.h"
#include "controlplane/log.h"

namespace rondo::cp {
namespace {

std::string hex(uint64_t v) {
  char buf[19];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

Controller::Controller(std::unique_ptr<DataplaneClient> client, api::State desired,
                       ControllerOptions options)
    : client_(std::move(client)),
      options_(options),
      state_(std::move(desired)),
      backoff_(options.min_backoff) {
  // Generation 0 means "no state" to the dataplane, so ours start at 1.
  if (state_.generation == 0) state_.generation = 1;
}

void Controller::set_state(api::State desired) {
  if (desired.generation == 0) desired.generation = state_.generation + 1;
  state_ = std::move(desired);
  need_push_ = true;
}

bool Controller::in_sync() const {
  return client_->connected() && acked_generation_ == state_.generation;
}

void Controller::fail(Clock::time_point now, const std::string& why, bool is_error) {
  client_->close();
  info_.reset();
  acked_generation_ = 0;
  need_push_ = true;
  // A refused push keeps the same dataplane: no need to announce it again on retry.
  if (!is_error) announced_ = false;
  if (restart_until_ && now >= *restart_until_) {
    log_warn("no new dataplane within " + std::to_string(options_.restart_window.count()) +
             " ms of the restart it accepted; retrying with backoff");
    restart_until_.reset();
    restart_asked_.reset();
    backoff_ = options_.min_backoff;
  }
  if (restart_until_) {
    // The new process is on its way: look for it often, without doubling.
    next_attempt_ = now + options_.restart_retry;
  } else {
    next_attempt_ = now + backoff_;
    backoff_ = std::min(backoff_ * 2, options_.max_backoff);
  }
  // A dataplane that is absent for an hour must not write a line every tick.
  if (link_ != Link::kDown || why != last_failure_) {
    const std::string line = why + "; retrying (forwarding continues with its last state)";
    is_error ? log_error(line) : log_warn(line);
  }
  link_ = Link::kDown;
  last_failure_ = why;
}

void Controller::tick(Clock::time_point now) {
  if (!client_->connected()) {
    if (now < next_attempt_) return;
    if (!client_->connect()) {
      fail(now, "dataplane unreachable: " + client_->last_error(), false);
      return;
    }
    // A new connection may lead to a dataplane that never had our state.
    need_push_ = true;
  }

  auto info = client_->hello();
  if (!info) {
    fail(now, "dataplane hello failed: " + client_->last_error(), false);
    return;
  }
  if (!announced_) {
    announced_ = true;
    log_info("connected to dataplane pid " + std::to_string(info->pid) + " instance " +
             hex(info->instance) + " (" + std::to_string(info->n_workers) + " workers, " +
             std::to_string(info->n_ports) + " ports, generation " +
             std::to_string(info->generation) + ")");
  }
  if (instance_ && *instance_ != info->instance) {
    // decode_info refused a start kind past api::kStartKindNames.
    log_info("dataplane restarted (instance " + hex(*instance_) + " -> " + hex(info->instance) +
             ", " + api::kStartKindNames[info->start_kind] + ": " + std::to_string(info->adopted_flows) +
             " flows adopted, " + std::to_string(info->discarded_flows) + " discarded, gap " +
             std::to_string(info->gap_ms) + " ms)");
    ++restarts_[info->start_kind];
    need_push_ = true;
    if (restart_asked_) {
      const auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(now - *restart_asked_).count();
      log_info("dataplane back " + std::to_string(ms) + " ms after the restart was asked");
    }
    restart_asked_.reset();
    restart_until_.reset();
  }
  instance_ = info->instance;
  info_ = info;
  if (info->generation != state_.generation) need_push_ = true;

  if (need_push_ && !push(now)) return;

  link_ = Link::kUp;
  last_failure_.clear();
  backoff_ = options_.min_backoff;
}

void Controller::expect_restart(Clock::time_point now) {
  restart_asked_ = now;
  restart_until_ = now + options_.restart_window;
  backoff_ = options_.min_backoff;
}

api::Ack Controller::restart(Clock::time_point now) {
  if (!client_->connected())
    return {.ok = false, .generation = 0, .message = "the dataplane is not connected"};
  const std::string who = info_ ? "dataplane pid " + std::to_string(info_->pid) : "dataplane";
  api::Ack ack = client_->restart();
  if (!client_->connected()) {
    // Lost on the way: it may have got the request and be restarting now.
    ack = {.ok = false, .generation = 0,
           .message = "no answer to the restart request (" + client_->last_error() +
                      "); the dataplane may be restarting"};
    expect_restart(now);
    fail(now, who + ": restart: " + client_->last_error(), false);
    return ack;
  }
  if (!ack.ok) {
    log_warn(who + " refused to restart: " + ack.message);
    return ack;
  }
  log_info(who + " restarting in place" + (ack.message.empty() ? "" : ": " + ack.message) +
           "; reconnecting every " + std::to_string(options_.restart_retry.count()) + " ms");
  expect_restart(now);
  // The process execs: this connection ends with it. Not a failure, so not logged as one.
  client_->close();
  info_.reset();
  acked_generation_ = 0;
  need_push_ = true;
  announced_ = false;
  link_ = Link::kDown;
  last_failure_.clear();
  next_attempt_ = now + options_.restart_retry;
  return ack;
}

std::optional<api::Stats> Controller::fetch_stats(Clock::time_point now) {
  if (!client_->connected()) return std::nullopt;
  auto stats = client_->stats();
  if (!stats && !client_->connected())
    fail(now, "dataplane stats failed: " + client_->last_error(), false);
  return stats;
}

bool Controller::push(Clock::time_point now) {
  const api::Ack ack = client_->push(state_);
  const std::string gen = "generation " + std::to_string(state_.generation);
  if (!client_->connected() || !ack.ok || ack.generation != state_.generation) ++push_failures_;
  if (!client_->connected()) {
    fail(now, "pushing " + gen + " failed: " + client_->last_error(), false);
    return false;
  }
  if (!ack.ok) {
    // Our state passed validate_state, so the dataplane has a limit we don't know of
    // (ports, capacity). Retried with backoff: it may be transient, and it's cheap.
    fail(now, "dataplane rejected " + gen + ": " + ack.message, true);
    return false;
  }
  if (ack.generation != state_.generation) {
    fail(now, "dataplane acknowledged generation " + std::to_string(ack.generation) +
                  " for " + gen, true);
    return false;
  }
  acked_generation_ = ack.generation;
  need_push_ = false;
  ++pushes_;
  if (info_) info_->generation = ack.generation;
  log_info("pushed " + gen + " to dataplane (" + std::to_string(state_.vips.size()) + " vips, " +
           std::to_string(count_backends(state_)) + " backends)");
  return true;
}

}  // namespace rondo::cp

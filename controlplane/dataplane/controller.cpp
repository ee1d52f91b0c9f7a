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
  next_attempt_ = now + backoff_;
  backoff_ = std::min(backoff_ * 2, options_.max_backoff);
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
    log_info("dataplane restarted (instance " + hex(*instance_) + " -> " + hex(info->instance) +
             ")");
    need_push_ = true;
  }
  instance_ = info->instance;
  info_ = info;
  if (info->generation != state_.generation) need_push_ = true;

  if (need_push_ && !push(now)) return;

  link_ = Link::kUp;
  last_failure_.clear();
  backoff_ = options_.min_backoff;
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

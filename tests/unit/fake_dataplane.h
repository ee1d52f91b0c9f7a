// An in-process stand-in for rondo-dataplane behind the DataplaneClient interface, for the
// control-plane tests: it keeps the last state pushed, and the test sets its counters.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "controlplane/dataplane/dataplane_client.h"

namespace rondo::cp::testing {

// What the dataplane process holds; shared between the client and the test.
struct FakeDataplane {
  bool listening = true;  // false: connect() fails
  uint64_t instance = 1;
  uint64_t generation = 0;
  std::vector<api::State> pushes;
  api::Stats stats;  // returned by stats(), with generation filled in
  // What the process took over at start, as its hello says (api::DataplaneInfo).
  uint64_t adopted_flows = 0, discarded_flows = 0;
  uint8_t start_kind = 0;
  uint32_t gap_ms = 0;
  uint32_t mtu = 1500;  // its --mtu (api::DataplaneInfo::mtu)
  // kRestart: refused with this reason if set; otherwise the process execs again (a new
  // instance, every connection broken) and comes back unless `comes_back` is false.
  std::string refuse_restart;
  bool comes_back = true;
  bool garbled_restart_reply = false;  // the reply cannot be decoded: the connection breaks
  int restarts_asked = 0;
  uint64_t epoch = 0;  // connections from an older epoch are dead

  // The process restarted in place, adopting `adopted` flows; it re-applies its last state.
  void restart_in_place(uint64_t adopted, uint32_t gap) {
    ++instance;
    ++epoch;
    start_kind = 1;
    adopted_flows = adopted;
    discarded_flows = 0;
    gap_ms = gap;
    listening = comes_back;
  }

  const api::State& last() const { return pushes.back(); }
  // The pushed backend with `id`, or nullptr.
  const api::Backend* backend(uint32_t id) const {
    if (pushes.empty()) return nullptr;
    for (const auto& v : last().vips)
      for (const auto& b : v.backends)
        if (b.id == id) return &b;
    return nullptr;
  }
  // Set the counters of one backend.
  void set_backend(uint32_t id, uint64_t active_flows, uint64_t connections = 0,
                   uint64_t packets = 0, uint64_t bytes = 0) {
    for (auto& b : stats.backends) {
      if (b.id == id) {
        b = {id, packets, bytes, connections, active_flows};
        return;
      }
    }
    stats.backends.push_back({id, packets, bytes, connections, active_flows});
  }
};

class FakeDataplaneClient final : public DataplaneClient {
 public:
  explicit FakeDataplaneClient(std::shared_ptr<FakeDataplane> dp) : dp_(std::move(dp)) {}

  bool connect() override {
    connected_ = dp_->listening;
    epoch_ = dp_->epoch;
    error_ = connected_ ? "" : "connect /fake.sock: No such file or directory";
    return connected_;
  }
  void close() override { connected_ = false; }
  bool connected() const override { return connected_; }
  std::optional<api::DataplaneInfo> hello() override {
    if (!alive()) return std::nullopt;
    return api::DataplaneInfo{.pid = 42, .n_workers = 2, .n_ports = 1, .n_drop_reasons = 2,
                              .instance = dp_->instance, .generation = dp_->generation,
                              .adopted_flows = dp_->adopted_flows,
                              .discarded_flows = dp_->discarded_flows,
                              .start_kind = dp_->start_kind, .gap_ms = dp_->gap_ms,
                              .mtu = dp_->mtu};
  }
  api::Ack restart() override {
    if (!alive()) return {false, 0, error_};
    ++dp_->restarts_asked;
    if (dp_->garbled_restart_reply) {
      connected_ = false;
      error_ = "restart: ack: truncated";
      return {false, 0, error_};
    }
    if (!dp_->refuse_restart.empty()) {
      error_ = "restart refused: " + dp_->refuse_restart;
      return {false, dp_->generation, dp_->refuse_restart};
    }
    dp_->restart_in_place(1000, 120);
    return {true, dp_->generation, "restarting: 1000 flows kept in /fake/flows"};
  }
  api::Ack push(const api::State& s) override {
    if (!alive()) return {false, s.generation, error_};
    dp_->pushes.push_back(s);
    dp_->generation = s.generation;
    return {true, s.generation, "applied"};
  }
  std::optional<api::Stats> stats() override {
    if (!alive()) return std::nullopt;
    api::Stats s = dp_->stats;
    s.generation = dp_->generation;
    return s;
  }
  std::string last_error() const override { return error_; }

 private:
  bool alive() {
    if (connected_ && (!dp_->listening || epoch_ != dp_->epoch)) {
      connected_ = false;
      error_ = "connection closed";
    }
    return connected_;
  }

  std::shared_ptr<FakeDataplane> dp_;
  bool connected_ = false;
  uint64_t epoch_ = 0;
  std::string error_;
};

}  // namespace rondo::cp::testing

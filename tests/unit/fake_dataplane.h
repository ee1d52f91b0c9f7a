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
    error_ = connected_ ? "" : "connect /fake.sock: No such file or directory";
    return connected_;
  }
  void close() override { connected_ = false; }
  bool connected() const override { return connected_; }
  std::optional<api::DataplaneInfo> hello() override {
    if (!alive()) return std::nullopt;
    return api::DataplaneInfo{.pid = 42, .n_workers = 2, .n_ports = 1, .n_drop_reasons = 2,
                              .instance = dp_->instance, .generation = dp_->generation};
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
    if (connected_ && !dp_->listening) {
      connected_ = false;
      error_ = "connection closed";
    }
    return connected_;
  }

  std::shared_ptr<FakeDataplane> dp_;
  bool connected_ = false;
  std::string error_;
};

}  // namespace rondo::cp::testing

// The control plane's connection to rondo-dataplane.
//
// Controller talks to a DataplaneClient, never to a socket, so that it can be unit-tested
// with a fake (as katran's KatranLb takes a BaseBpfAdapter). UnixDataplaneClient is the real
// one: the control protocol of dataplane/api/ctl.h over a unix stream socket.
#pragma once

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dataplane/api/ctl.h"

namespace rondo::cp {

class DataplaneClient {
 public:
  virtual ~DataplaneClient() = default;

  /// Open the connection. false if the dataplane cannot be reached (see last_error()).
  virtual bool connect() = 0;
  /// Drop the connection; harmless when not connected.
  virtual void close() = 0;
  /// True between a successful connect() and close() or a transport error.
  virtual bool connected() const = 0;

  /// Ask who the dataplane is and which generation it forwards with.
  /// nullopt on failure; a transport failure also closes the connection.
  virtual std::optional<api::DataplaneInfo> hello() = 0;
  /// Send the whole desired state. ok=false if the dataplane refused it (its reason is in
  /// message) or on a transport failure, which also closes the connection.
  virtual api::Ack push(const api::State& s) = 0;
  /// Fetch the dataplane's counters. nullopt on failure, as hello().
  virtual std::optional<api::Stats> stats() = 0;

  /// Ask about flows, traces or drop samples (api::InspectRequest). nullopt on failure, with
  /// last_error() saying why (the dataplane's refusal, or the transport's).
  virtual std::optional<api::InspectReply> inspect(const api::InspectRequest& /*req*/) {
    return std::nullopt;
  }

  /// Ask the dataplane to restart in place (api::MsgType::kRestart): it answers, stops
  /// forwarding, keeps its flows and execs itself again; this connection is then dead.
  /// ok=false with the dataplane's reason when it refuses (e.g. it runs without
  /// --flow-dir), or on a transport failure (see connected()).
  virtual api::Ack restart() { return {.ok = false, .message = "restart is not supported"}; }

  /// What the last failed call ran into, for logs.
  virtual std::string last_error() const = 0;
};

class UnixDataplaneClient final : public DataplaneClient {
 public:
  static constexpr std::chrono::milliseconds kDefaultTimeout{3000};

  /// `timeout` bounds every send and every wait for a reply, so that a hung dataplane
  /// stalls the control plane for at most that long per call, never forever.
  explicit UnixDataplaneClient(std::string socket_path,
                               std::chrono::milliseconds timeout = kDefaultTimeout);
  ~UnixDataplaneClient() override;
  UnixDataplaneClient(const UnixDataplaneClient&) = delete;
  UnixDataplaneClient& operator=(const UnixDataplaneClient&) = delete;

  bool connect() override;
  void close() override;
  bool connected() const override { return fd_ >= 0; }
  std::optional<api::DataplaneInfo> hello() override;
  api::Ack push(const api::State& s) override;
  std::optional<api::Stats> stats() override;
  std::optional<api::InspectReply> inspect(const api::InspectRequest& req) override;
  api::Ack restart() override;
  std::string last_error() const override { return error_; }

 private:
  // One request/reply exchange. Returns false on a transport or framing failure (and
  // closes); otherwise *type is the reply type, which the caller checks.
  bool call(api::MsgType request, std::span<const uint8_t> body, api::MsgType* type,
            std::vector<uint8_t>* reply);
  // Record a failure that leaves the stream unusable (unknown position in it): close.
  void broken(std::string why);

  std::string path_;
  std::chrono::milliseconds timeout_;
  int fd_ = -1;
  uint32_t seq_ = 0;
  std::string error_;
};

}  // namespace rondo::cp

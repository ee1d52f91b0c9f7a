// Packet capture: DPDK's pdump server in the dataplane, so that `dpdk-dumpcap` (a DPDK
// secondary process) can copy the ports' RX and TX into a pcapng file (docs/operations.md,
// "Capture"). Nothing runs on the fast path until a dumpcap attaches: the server only
// answers requests on EAL's multi-process socket, and only then installs ethdev RX/TX
// callbacks on the queues it was asked for (removed again when dumpcap stops).
#pragma once

#include <memory>
#include <string>

namespace rondo::dp {

class CaptureServer {
 public:
  /// Serve dumpcap if a secondary process can attach to this one (a primary on hugepages
  /// with its shared files); nullptr if not, with *why saying what stands in the way.
  /// Call with the ports started.
  static std::unique_ptr<CaptureServer> start(std::string* why);
  ~CaptureServer();

  CaptureServer(const CaptureServer&) = delete;
  CaptureServer& operator=(const CaptureServer&) = delete;

  /// The EAL file prefix dumpcap must be given (--file-prefix).
  const std::string& file_prefix() const { return prefix_; }

 private:
  explicit CaptureServer(std::string prefix) : prefix_(std::move(prefix)) {}
  std::string prefix_;
};

}  // namespace rondo::dp

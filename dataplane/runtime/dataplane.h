// rondo-dataplane assembled: EAL is up; this creates the mempool, starts the ports,
// builds one Worker per worker lcore, launches them, and runs the main lcore's loop (the
// control socket and the neighbour manager) until asked to stop.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/neigh/service.h"
#include "dataplane/port/capture.h"
#include "dataplane/port/port.h"
#include "dataplane/runtime/control_agent.h"
#include "dataplane/runtime/flow_dir.h"
#include "dataplane/runtime/load_publisher.h"
#include "dataplane/runtime/options.h"
#include "dataplane/runtime/worker.h"
#include "dataplane/state/publisher.h"

namespace rondo::dp {

class Dataplane {
 public:
  explicit Dataplane(const Options& o) : opts_(o) {}
  ~Dataplane();

  /// Set everything up; false with *err (naming the device or resource) on failure.
  bool init(std::string* err);
  /// Launch the workers and serve control requests until stop is set. true: the stop was a
  /// planned restart (kRestart): the workers are stopped, the flow tables consistent and
  /// dir/stopped written; the caller tears down and execs the binary again.
  bool run(std::atomic<bool>* stop);

 private:
  void report_start(int64_t now_ns, uint64_t now_tsc);

  Options opts_;
  rte_mempool* pool_ = nullptr;
  std::vector<PortInfo> ports_;
  std::unique_ptr<CaptureServer> capture_;  // dpdk-dumpcap's server, if one can attach
  std::unique_ptr<Publisher> publisher_;
  std::unique_ptr<NeighService> neigh_;  // before the workers: they hold its rings
  std::unique_ptr<LoadPublisher> load_;  // the lc counts; before the workers, likewise
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<unsigned> worker_lcores_;
  std::vector<rte_ring*> rings_;
  static constexpr unsigned kSteerRingSize = 4096;
  static constexpr unsigned kMbufCache = 256;  // per-lcore mempool cache
  std::unique_ptr<ControlAgent> agent_;
  // --flow-dir: what the previous process left (flow_dir.h), and what was adopted.
  std::optional<StopMark> stop_mark_;     // a planned restart's stop time
  std::optional<uint64_t> writer_clock_;  // the latest adopted table's writer clock (TSC)
  bool store_adopt_ = true;  // false: the flow dir is for another worker count (fresh start)
  uint64_t adopted_ = 0, discarded_ = 0;
  bool any_adopted_ = false;  // some worker's table was adopted (not created or refused)
  bool restart_ = false;
};

}  // namespace rondo::dp

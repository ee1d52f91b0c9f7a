// The main lcore's side of inspection (docs/operations.md, "Debugging a flow"): it answers
// an api::InspectRequest by asking each worker through its query ring (inspect/query.h),
// waiting for the answers, and formatting what they hold (frames become one-line
// descriptions, ticks become milliseconds).
//
// The main lcore waits for a worker at most kWorkerDeadline; a worker that does not answer
// in time (stuck, or far behind) makes the request fail with a message, and its query is
// taken back when it comes. While it waits, the control socket and ARP wait too: a flow
// page or a trace read takes a few hundred microseconds of each worker's time.
#pragma once

#include <rte_ring.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/api/ctl.h"
#include "dataplane/inspect/query.h"

namespace rondo::dp {

struct InspectedWorker {
  uint32_t lcore = 0;
  rte_ring* to_worker = nullptr;
  rte_ring* from_worker = nullptr;
};

class InspectAgent {
 public:
  static constexpr std::chrono::milliseconds kWorkerDeadline{500};

  InspectAgent(std::vector<InspectedWorker> workers, uint64_t hz);
  ~InspectAgent();

  /// Answer one request; false with *err when a worker did not answer in time.
  bool handle(const api::InspectRequest& req, api::InspectReply* out, std::string* err);

 private:
  // Send `q` to worker w and wait for it; false on timeout (the query is then the worker's
  // until it comes back: late_[w]).
  bool ask(size_t w, std::unique_ptr<WorkerQuery> q, std::unique_ptr<WorkerQuery>* answer);
  api::TraceRecord format(const TraceRaw& r, uint32_t lcore, uint64_t started) const;

  std::vector<InspectedWorker> workers_;
  uint64_t hz_;
  std::vector<std::unique_ptr<WorkerQuery>> late_;  // per worker: a query not answered in time
};

}  // namespace rondo::dp

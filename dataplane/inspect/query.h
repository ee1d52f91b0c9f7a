// An operator's question to one worker, and its answer: the main lcore (runtime/
// inspect_agent.h) puts a WorkerQuery on the worker's query ring, the worker serves it
// between two bursts (serve_query) and hands it back on its answer ring. Only the worker
// touches its flow table, tracer and drop samples; the main lcore only formats the answer.
#pragma once

#include <cstdint>
#include <vector>

#include "dataplane/api/ctl.h"
#include "dataplane/fwd/pipeline.h"
#include "dataplane/inspect/drop_sampler.h"
#include "dataplane/inspect/flows.h"
#include "dataplane/inspect/trace.h"

namespace rondo::dp {

struct WorkerQuery {
  api::InspectRequest req;
  uint32_t from = 0;   // flows: where this worker starts (FlowRef: v4 records, then v6)
  uint32_t limit = 0;  // flows: at most this many from this worker
  uint64_t until = 0;  // trace start: the deadline, in the worker's ticks
  // The answer.
  uint64_t now = 0;  // the worker's clock when it answered
  std::vector<api::FlowInfo> flows;
  FlowScan scan;
  uint32_t capacity = 0;  // flows: both tables' (scan.next == capacity: done)
  uint64_t deleted = 0;
  bool armed = false;
  uint64_t trace_started = 0;
  std::vector<TraceRaw> trace;
  std::vector<DropRaw> drops;
};

/// What a worker owns that queries are about.
struct Inspected {
  Pipeline* pipeline;
  Tracer* tracer;
  const DropSampler* drops;
  uint32_t lcore;
  uint64_t hz;
};

/// Serve one query on the worker that owns `w`, at `now`.
void serve_query(const Inspected& w, WorkerQuery* q, uint64_t now);

}  // namespace rondo::dp

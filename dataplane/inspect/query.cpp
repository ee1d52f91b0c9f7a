#include "dataplane/inspect/query.h"

namespace rondo::dp {

void serve_query(const Inspected& w, WorkerQuery* q, uint64_t now) {
  q->now = now;
  q->capacity = w.pipeline->flows().capacity();
  switch (q->req.op) {
    case api::InspectOp::kFlows: {
      const FlowTable& t = w.pipeline->flows();
      q->scan = scan_flows(t, q->req.filter, q->from, q->limit, now, [&](uint32_t idx) {
        q->flows.push_back(flow_info(t, idx, now, w.hz, w.lcore));
      });
      break;
    }
    case api::InspectOp::kFlowDelete: {
      std::vector<uint32_t> doomed;
      q->scan = scan_flows(w.pipeline->flows(), q->req.filter, q->from, q->limit, now,
                           [&](uint32_t idx) { doomed.push_back(idx); });
      for (uint32_t idx : doomed) {
        q->flows.push_back(flow_info(w.pipeline->flows(), idx, now, w.hz, w.lcore));
        w.pipeline->remove_flow(idx, now);
      }
      q->deleted = doomed.size();
      break;
    }
    case api::InspectOp::kTraceStart:
      w.tracer->arm(q->req.filter, q->req.limit, now, q->until);
      q->armed = w.tracer->live(now);
      q->trace_started = now;
      break;
    case api::InspectOp::kTraceRead:
    case api::InspectOp::kTraceStop:
      if (q->req.op == api::InspectOp::kTraceStop) w.tracer->disarm();
      q->trace = w.tracer->take();
      q->armed = w.tracer->live(now);
      q->trace_started = w.tracer->started();
      break;
    case api::InspectOp::kDrops:
      q->drops = w.drops->samples(q->req.reason);
      break;
  }
}

}  // namespace rondo::dp

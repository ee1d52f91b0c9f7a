#include "dataplane/inspect/query.h"

namespace rondo::dp {

void serve_query(const Inspected& w, WorkerQuery* q, uint64_t now) {
  q->now = now;
  Pipeline& pl = *w.pipeline;
  const uint32_t cap4 = pl.flows().capacity();
  q->capacity = cap4 + pl.flows6().capacity();
  auto info = [&](FlowRef r) {
    return r.v6 ? flow_info(pl.flows6(), r.idx, now, w.hz, w.lcore)
                : flow_info(pl.flows(), r.idx, now, w.hz, w.lcore);
  };
  switch (q->req.op) {
    case api::InspectOp::kFlows:
      q->scan = scan_both(pl.flows(), pl.flows6(), q->req.filter, q->from, q->limit, now,
                          [&](FlowRef r) { q->flows.push_back(info(r)); });
      break;
    case api::InspectOp::kFlowDelete: {
      std::vector<FlowRef> doomed;
      q->scan = scan_both(pl.flows(), pl.flows6(), q->req.filter, q->from, q->limit, now,
                          [&](FlowRef r) { doomed.push_back(r); });
      for (FlowRef r : doomed) {
        q->flows.push_back(info(r));
        if (r.v6)
          pl.remove_flow6(r.idx, now);
        else
          pl.remove_flow(r.idx, now);
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

#include "dataplane/sched/lc.h"

#include <algorithm>

namespace rondo::dp {

std::unique_ptr<BackendLoad> sum_backend_load(const Snapshot& s,
                                              std::span<const BackendCounters* const> workers,
                                              uint64_t epoch) {
  uint32_t max_id = 0;
  bool any = false;
  for (const VipConf& v : s.vips) {
    if (v.sched != api::Sched::kLeastConn) continue;
    any = true;
    for (uint32_t i = 0; i < v.eligible_count; ++i)
      max_id = std::max(max_id, s.eligible_backend(v, i).id);
  }
  if (!any) return nullptr;
  auto load = std::make_unique<BackendLoad>();
  load->epoch = epoch;
  load->flows.assign(max_id + 1, 0);
  for (const VipConf& v : s.vips) {
    if (v.sched != api::Sched::kLeastConn) continue;
    for (uint32_t i = 0; i < v.eligible_count; ++i) {
      const uint32_t id = s.eligible_backend(v, i).id;
      // A flow is counted up and down by the worker that owns it: each worker's count is a
      // value it had lately, never below 0.
      uint64_t sum = 0;
      for (const BackendCounters* w : workers) sum += read_counter(w[id].active_flows);
      load->flows[id] = static_cast<uint32_t>(std::min<uint64_t>(sum, UINT32_MAX));
    }
  }
  return load;
}

}  // namespace rondo::dp

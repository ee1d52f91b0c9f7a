#include "dataplane/sched/sched.h"

#include "dataplane/sched/rr.h"

namespace rondo::dp {

uint32_t sched_pick(const VipConf& v, SchedState* st, const FlowKey& /*k*/, uint32_t /*hash*/) {
  if (v.eligible_count == 0) return kNoPick;
  switch (v.sched) {
    case api::Sched::kRoundRobin:
      return RoundRobin::pick(&st->rr_cursor[v.id], v.eligible_count);
  }
  return kNoPick;
}

}  // namespace rondo::dp

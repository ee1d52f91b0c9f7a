#include "dataplane/sched/sched.h"

#include "dataplane/sched/lc.h"
#include "dataplane/sched/maglev.h"
#include "dataplane/sched/rr.h"
#include "dataplane/sched/wrr.h"

namespace rondo::dp {
namespace {

uint32_t pick_wrr(const Snapshot& s, const VipConf& v, SchedState* st) {
  int64_t* current = st->wrr_current.data();
  if (st->wrr_pool[v.id] != v.pool_sig) {
    // Another eligible set (a backend added, removed, drained, down or reweighted): start
    // the cycle over. Flows already placed stay where they are.
    for (uint32_t i = 0; i < v.eligible_count; ++i) current[s.eligible_backend(v, i).id] = 0;
    st->wrr_pool[v.id] = v.pool_sig;
  }
  return SmoothWrr::pick(
      v.eligible_count, [&](uint32_t i) { return s.eligible_backend(v, i).weight; },
      [&](uint32_t i) -> int64_t& { return current[s.eligible_backend(v, i).id]; });
}

// Counted when picked, before the flow is inserted: a pick the pipeline then drops (no local
// port, table full) still counts until the next publication, which errs towards others.
uint32_t pick_lc(const Snapshot& s, const VipConf& v, SchedState* st) {
  const BackendLoad* load = st->load;
  const auto epoch = static_cast<uint32_t>(load ? load->epoch : 0);
  LcDelta* delta = st->lc_delta.data();
  const uint32_t best = LeastConn::pick(
      v.eligible_count, [&](uint32_t i) { return s.eligible_backend(v, i).weight; },
      [&](uint32_t i) -> uint64_t {
        const uint32_t id = s.eligible_backend(v, i).id;
        const uint64_t published = load ? load->at(id) : 0;
        return published + (delta[id].epoch == epoch ? delta[id].flows : 0);
      });
  LcDelta& d = delta[s.eligible_backend(v, best).id];
  if (d.epoch != epoch) d = LcDelta{epoch, 0};
  ++d.flows;
  return best;
}

}  // namespace

uint32_t sched_pick(const Snapshot& s, const VipConf& v, SchedState* st, const FlowKey& k,
                    uint32_t /*hash*/) {
  if (v.eligible_count == 0) return kNoPick;
  switch (v.sched) {
    case api::Sched::kRoundRobin:
      return RoundRobin::pick(&st->rr_cursor[v.id], v.eligible_count);
    case api::Sched::kWeightedRoundRobin:
      return pick_wrr(s, v, st);
    case api::Sched::kLeastConn:
      return pick_lc(s, v, st);
    // Not `hash` (the flow table's, keyed with this host's secret): the seed's hashes, which
    // every host with the same seed computes alike.
    case api::Sched::kMaglev:
      return s.maglev[v.table_first + maglev_flow_hash(k, s.sched_key) % s.maglev_size];
    case api::Sched::kSourceHash:
      return s.maglev[v.table_first + maglev_source_hash(k.src_ip, s.sched_key) % s.maglev_size];
  }
  return kNoPick;
}

uint32_t sched_pick6(const Snapshot& s, const VipConf& v, SchedState* st, const FlowKey6& k) {
  if (v.eligible_count == 0) return kNoPick;
  switch (v.sched) {
    case api::Sched::kMaglev:
      return s.maglev[v.table_first + flow_hash6(k, s.sched_key) % s.maglev_size];
    case api::Sched::kSourceHash:
      return s.maglev[v.table_first + siphash<1, 3>(s.sched_key, k.src_ip, 16) % s.maglev_size];
    default:
      // The others do not look at the packet.
      return sched_pick(s, v, st, FlowKey{}, 0);
  }
}

}  // namespace rondo::dp

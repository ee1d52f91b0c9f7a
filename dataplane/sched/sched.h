// Schedulers: choose the backend of a new flow. One file per algorithm (rr.h, wrr.h, ...),
// dispatched here on the VIP's scheduler kind. Per-lcore state lives in SchedState and
// is indexed by the VIP's (or the backend's) stable id, so it survives config snapshots.
#pragma once

#include <cstdint>
#include <vector>

#include "dataplane/api/ctl.h"
#include "dataplane/flow/key.h"
#include "dataplane/sched/lc.h"
#include "dataplane/state/snapshot.h"

namespace rondo::dp {

inline constexpr uint32_t kNoPick = UINT32_MAX;

struct SchedState {
  std::vector<uint32_t> rr_cursor = std::vector<uint32_t>(api::kMaxVipId + 1, 0);
  // wrr: current value per backend id, valid for the eligible set wrr_pool[vip id]
  // (VipConf::pool_sig; 0: none yet). Sized once: a pool change allocates nothing.
  std::vector<int64_t> wrr_current = std::vector<int64_t>(api::kMaxBackendId + 1, 0);
  std::vector<uint64_t> wrr_pool = std::vector<uint64_t>(api::kMaxVipId + 1, 0);
  // lc: the counts the main lcore published last (null: none yet; valid for one loop, like
  // the snapshot), and this lcore's own new flows per backend id since then.
  const BackendLoad* load = nullptr;
  std::vector<LcDelta> lc_delta = std::vector<LcDelta>(api::kMaxBackendId + 1);
};

/// The eligible-backend index (see Snapshot::eligible_backend) for a new flow of VIP v of
/// snapshot s, or kNoPick when the VIP has no eligible backend.
uint32_t sched_pick(const Snapshot& s, const VipConf& v, SchedState* st, const FlowKey& k,
                    uint32_t hash);
/// The same for a new IPv6 flow (maglev hashes its 5-tuple, sh its source address, under
/// the seed's key as for IPv4).
uint32_t sched_pick6(const Snapshot& s, const VipConf& v, SchedState* st, const FlowKey6& k);

}  // namespace rondo::dp

// Reading a worker's flow table for an operator: which flows match a filter, what one holds,
// and removing them (the `conntrack -L/-D` of rondo).
//
// Consistency: only the worker that owns a table reads or changes it. An operator's request
// reaches the worker through its query ring (inspect/query.h) and is served between two
// bursts, so a record is never read half-written and the worker never races a reader. The
// price is that a scan runs on the worker: each request looks at most kScanBudget records,
// and a listing goes on page by page (a cursor) instead of stalling the worker.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "dataplane/api/ctl.h"
#include "dataplane/flow/table.h"

namespace rondo::dp {

std::string_view flow_state_name(FlowState s);

/// Whether a flow matches (every non-zero field of `q` equal; the filter is host order).
bool flow_matches(const Flow& f, const api::FlowFilter& q);

/// A key that finds the flow by hash, when the filter names one whole side: client ip, port,
/// vip ip, port and protocol, or backend ip, port, local ip, port and protocol.
std::optional<FlowKey> exact_key(const api::FlowFilter& q);

/// What an operator sees of flow `idx` at `now` (ticks, `hz` a second).
api::FlowInfo flow_info(const FlowTable& t, uint32_t idx, uint64_t now, uint64_t hz, uint32_t lcore);

inline constexpr uint32_t kScanBudget = 1u << 16;

struct FlowScan {
  uint32_t next = 0;     // record index to go on from; == capacity: the table is done
  uint32_t scanned = 0;
};

/// Look at records from `from`, calling `fn(idx)` for each live flow that matches, until
/// `limit` matched or `budget` records were looked at. With an exact key only that flow is
/// looked at (scan done at once).
template <typename Fn>
FlowScan scan_flows(const FlowTable& t, const api::FlowFilter& q, uint32_t from, uint32_t limit,
                    uint64_t now, Fn&& fn, uint32_t budget = kScanBudget) {
  FlowScan s{t.capacity(), 0};
  if (auto key = exact_key(q)) {
    if (from == 0) {
      const FlowTable::Hit h = t.find(*key, now);
      s.scanned = 1;
      if (h.found() && flow_matches(t.at(h.idx), q)) fn(h.idx);
    }
    return s;
  }
  uint32_t matched = 0;
  uint32_t i = from;
  for (; i < t.capacity() && s.scanned < budget && matched < limit; ++i, ++s.scanned) {
    const Flow& f = t.at(i);
    if (f.state == FlowState::kFree || f.expires <= now || !flow_matches(f, q)) continue;
    fn(i);
    ++matched;
  }
  s.next = i;
  return s;
}

}  // namespace rondo::dp

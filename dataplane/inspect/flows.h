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
/// A v6 flow's IPv4-mapped side (NAT46's client and VIP, NAT64's backend and local ip)
/// matches an IPv4 filter address, as api::Addr writes IPv4 the same way.
bool flow_matches(const Flow& f, const api::FlowFilter& q);
bool flow_matches(const Flow6& f, const api::FlowFilter& q);

/// A key that finds the flow by hash, when the filter names one whole side: client ip, port,
/// vip ip, port and protocol, or backend ip, port, local ip, port and protocol. An IPv6
/// address makes no v4 key; every side makes a v6 one (IPv4-mapped where it is IPv4).
std::optional<FlowKey> exact_key(const api::FlowFilter& q);
std::optional<FlowKey6> exact_key6(const api::FlowFilter& q);
inline std::optional<FlowKey> exact_key_for(const FlowTable&, const api::FlowFilter& q) {
  return exact_key(q);
}
inline std::optional<FlowKey6> exact_key_for(const FlowTable6&, const api::FlowFilter& q) {
  return exact_key6(q);
}

/// What an operator sees of flow `idx` at `now` (ticks, `hz` a second). Addresses of a v6
/// flow are copied as they are: its IPv4-mapped side reads as IPv4 (api::Addr::is_v4).
api::FlowInfo flow_info(const FlowTable& t, uint32_t idx, uint64_t now, uint64_t hz, uint32_t lcore);
api::FlowInfo flow_info(const FlowTable6& t, uint32_t idx, uint64_t now, uint64_t hz, uint32_t lcore);

inline constexpr uint32_t kScanBudget = 1u << 16;

struct FlowScan {
  uint32_t next = 0;     // record index to go on from; == capacity: the table is done
  uint32_t scanned = 0;
};

/// Look at records from `from`, calling `fn(idx)` for each live flow that matches, until
/// `limit` matched or `budget` records were looked at. With an exact key only that flow is
/// looked at (scan done at once). Either table (FlowTable, FlowTable6).
template <typename Table, typename Fn>
FlowScan scan_flows(const Table& t, const api::FlowFilter& q, uint32_t from, uint32_t limit,
                    uint64_t now, Fn&& fn, uint32_t budget = kScanBudget) {
  FlowScan s{t.capacity(), 0};
  if (auto key = exact_key_for(t, q)) {
    if (from == 0) {
      const FlowHit h = t.find(*key, now);
      s.scanned = 1;
      if (h.found() && flow_matches(t.at(h.idx), q)) fn(h.idx);
    }
    return s;
  }
  uint32_t matched = 0;
  uint32_t i = from;
  for (; i < t.capacity() && s.scanned < budget && matched < limit; ++i, ++s.scanned) {
    const auto& f = t.at(i);
    if (f.state == FlowState::kFree || f.expires <= now || !flow_matches(f, q)) continue;
    fn(i);
    ++matched;
  }
  s.next = i;
  return s;
}

/// Where a flow is in a worker's two tables, as one index space: [0, v4 capacity) the
/// IPv4 table, then the IPv6 one (a cursor goes from the first into the second).
struct FlowRef {
  bool v6;
  uint32_t idx;  // in its own table
};

/// Whether the filter names an IPv6 address (no flow of the v4 table can match).
inline bool names_v6(const api::FlowFilter& q) {
  auto v6 = [](const api::Addr& a) { return !a.is_zero() && !a.is_v4(); };
  return v6(q.client_ip) || v6(q.vip_ip) || v6(q.backend_ip) || v6(q.local_ip);
}

/// scan_flows over both tables: from `from` in the joined index space, the v4 table first;
/// fn(FlowRef) for each match. next == capacity() + capacity6(): both are done.
template <typename Fn>
FlowScan scan_both(const FlowTable& t4, const FlowTable6& t6, const api::FlowFilter& q,
                   uint32_t from, uint32_t limit, uint64_t now, Fn&& fn,
                   uint32_t budget = kScanBudget) {
  const uint32_t cap4 = t4.capacity();
  uint32_t matched = 0;
  FlowScan s{cap4, 0};
  if (from < cap4 && !names_v6(q)) {
    s = scan_flows(t4, q, from, limit, now, [&](uint32_t i) { ++matched; fn(FlowRef{false, i}); },
                   budget);
    if (s.next < cap4 || matched >= limit) return s;  // budget or page spent in the v4 table
  }
  const uint32_t from6 = from > cap4 ? from - cap4 : 0;
  const FlowScan s6 = scan_flows(t6, q, from6, limit - matched, now,
                                 [&](uint32_t i) { fn(FlowRef{true, i}); }, budget - s.scanned);
  return FlowScan{cap4 + s6.next, s.scanned + s6.scanned};
}

}  // namespace rondo::dp

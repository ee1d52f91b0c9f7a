// Stable ids for vips and backends.
//
// The dataplane's flows and counters refer to a backend by id, so an id must never name two
// things while the dataplane may still hold flows for the first one. Ids are therefore
// handed out in increasing order and not reused at all until the id space is exhausted
// (65536 backends added over the life of the state file, 4096 vips). Only then is an id
// below the high-water mark reused, and only if it is free, was retired longer ago than the
// quarantine (the longest flow timeout), and the latest dataplane counters show no active
// flow for it. The allocator's state is part of the state file.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>

namespace rondo::cp {

class IdAllocator {
 public:
  using WallClock = std::chrono::system_clock;
  /// Seconds since the epoch; wall time because it is persisted across restarts.
  using Seconds = int64_t;

  /// Ids are 0..max_id.
  explicit IdAllocator(uint32_t max_id) : max_id_(max_id) {}

  /// A fresh id not in `in_use`; nullopt when none is free. `may_have_flows(id)` answers
  /// whether the dataplane may still hold flows for a retired id (see the file comment).
  std::optional<uint32_t> allocate(const std::set<uint32_t>& in_use, Seconds now,
                                   Seconds quarantine,
                                   const std::function<bool(uint32_t)>& may_have_flows);
  /// `id` stopped naming anything at `now`.
  void retire(uint32_t id, Seconds now);
  /// Make sure ids up to `id` count as used (restoring a state with those ids in it).
  void reserve(uint32_t id);

  uint32_t max_id() const { return max_id_; }
  /// The next never-used id (max_id + 1 when all were used once).
  uint32_t next() const { return next_; }
  /// Retired ids not yet reusable, with when they were retired.
  const std::map<uint32_t, Seconds>& retired() const { return retired_; }

  /// Restore persisted state.
  void restore(uint32_t next, std::map<uint32_t, Seconds> retired);

  bool operator==(const IdAllocator&) const = default;

  static Seconds to_seconds(WallClock::time_point t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
  }

 private:
  void prune(Seconds now, Seconds quarantine);

  uint32_t max_id_;
  uint32_t next_ = 0;
  std::map<uint32_t, Seconds> retired_;
};

}  // namespace rondo::cp

// Publishes configuration snapshots to the workers with RCU (rte_rcu_qsbr).
//
// Readers (workers) load the current pointer once per loop with acquire ordering, use it
// for the whole burst, and report a quiescent state at the end of the loop. The writer
// (control agent) stores the new pointer with release ordering, so a worker that sees the
// new pointer also sees the fully built snapshot behind it, then waits in
// rte_rcu_qsbr_synchronize() until every online worker has reported a quiescent state
// after the store, at which point none can still hold the old pointer and it is freed.
// Workers never wait for the writer: a change never stops forwarding.
#pragma once

#include <cstdint>
#include <memory>

#include "dataplane/state/snapshot.h"

struct rte_rcu_qsbr;

namespace rondo::dp {

class Publisher {
 public:
  /// max_readers: number of worker threads that will register (thread ids 0..n-1).
  explicit Publisher(uint32_t max_readers);
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  rte_rcu_qsbr* qsbr() const { return qs_; }

  /// Reader side: the snapshot to use for this loop iteration (may be null).
  const Snapshot* current() const { return __atomic_load_n(&current_, __ATOMIC_ACQUIRE); }

  /// Writer side (one writer): publish s and free the previous snapshot once no reader
  /// can hold it any more. Blocks the caller (never the readers) for about one loop.
  void publish(std::unique_ptr<Snapshot> s);

 private:
  rte_rcu_qsbr* qs_ = nullptr;
  Snapshot* current_ = nullptr;
  uint64_t epoch_ = 0;
};

}  // namespace rondo::dp

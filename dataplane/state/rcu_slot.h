// One pointer published to the workers with RCU (rte_rcu_qsbr), for read-mostly state
// other than the config snapshot: the neighbour manager's next hops (neigh/next_hops.h).
// It shares the Publisher's QSBR variable, so the quiescent state every worker reports once
// per loop covers both: a worker loads the pointer once per loop (acquire), uses it for the
// whole loop, and never holds it across its quiescent report. The single writer stores the
// new pointer with release ordering (so a reader that sees it sees the object fully built),
// waits in rte_rcu_qsbr_synchronize() until every online reader has passed a quiescent state
// after the store, and only then frees the old object. Readers never wait.
#pragma once

#include <rte_rcu_qsbr.h>

#include <memory>

namespace rondo::dp {

template <class T>
class RcuSlot {
 public:
  explicit RcuSlot(rte_rcu_qsbr* qs) : qs_(qs) {}
  ~RcuSlot() { delete current_; }
  RcuSlot(const RcuSlot&) = delete;
  RcuSlot& operator=(const RcuSlot&) = delete;

  /// Reader side: the object to use for this loop iteration (may be null).
  const T* current() const { return __atomic_load_n(&current_, __ATOMIC_ACQUIRE); }

  /// Writer side (one writer): publish p and free the previous object once no reader can
  /// hold it. Blocks the caller (never the readers) for about one worker loop.
  void publish(std::unique_ptr<T> p) {
    T* old = current_;
    __atomic_store_n(&current_, p.release(), __ATOMIC_RELEASE);
    rte_rcu_qsbr_synchronize(qs_, RTE_QSBR_THRID_INVALID);
    delete old;
  }

 private:
  rte_rcu_qsbr* qs_;
  T* current_ = nullptr;
};

}  // namespace rondo::dp

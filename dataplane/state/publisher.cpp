#include "dataplane/state/publisher.h"

#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include <new>

namespace rondo::dp {

Publisher::Publisher(uint32_t max_readers) {
  const size_t sz = rte_rcu_qsbr_get_memsize(max_readers);
  qs_ = static_cast<rte_rcu_qsbr*>(rte_zmalloc("rondo_qsbr", sz, RTE_CACHE_LINE_SIZE));
  if (!qs_ || rte_rcu_qsbr_init(qs_, max_readers) != 0) throw std::bad_alloc();
}

Publisher::~Publisher() {
  delete current_;
  rte_free(qs_);
}

void Publisher::publish(std::unique_ptr<Snapshot> s) {
  s->epoch = ++epoch_;
  Snapshot* old = current_;
  __atomic_store_n(&current_, s.release(), __ATOMIC_RELEASE);
  // Wait until every registered, online reader has gone through a quiescent state
  // after the store above; offline (sleeping) readers are skipped by the library.
  rte_rcu_qsbr_synchronize(qs_, RTE_QSBR_THRID_INVALID);
  delete old;
}

}  // namespace rondo::dp

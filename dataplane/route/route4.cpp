#include "dataplane/route/route4.h"

#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_lpm.h>
#include <rte_memory.h>

#include <algorithm>
#include <atomic>
#include <cstdio>

namespace rondo::dp {
namespace {

// A name for each rte_lpm: unique in the process for its whole life (see route6.cpp).
uint32_t next_lpm_id() {
  static std::atomic<uint32_t> id{0};  // control path only: snapshots are built off the workers
  return id.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

Route4Table::~Route4Table() {
  // The snapshot that owns this table is deleted only after rte_rcu_qsbr_synchronize (see
  // state/publisher.h): no worker can be inside rte_lpm_lookup on it any more.
  if (lpm_) rte_lpm_free(lpm_);
}

void Route4Table::build(std::vector<RouteConf> routes, bool use_lpm) {
  if (lpm_) rte_lpm_free(lpm_);  // only before publication: a published table never changes
  lpm_ = nullptr;
  default_ = -1;
  lpm_error_.clear();
  routes_ = std::move(routes);
  std::stable_sort(routes_.begin(), routes_.end(),
                   [](const RouteConf& a, const RouteConf& b) { return a.len > b.len; });
  uint32_t deep = 0;  // prefixes longer than /24: each needs at most one tbl8 group
  for (size_t i = 0; i < routes_.size(); ++i) {
    if (routes_[i].len == 0) default_ = static_cast<int32_t>(i);
    if (routes_[i].len > 24) ++deep;
  }
  // Without a prefix longer than /0 there is nothing to look up: no 64 MB table for that.
  if (!use_lpm || routes_.empty() || routes_.front().len == 0) return;
  if (routes_.size() >= (1u << 24)) {  // rte_lpm's values are 24 bits
    lpm_error_ = "more than 2^24 routes";
    return;
  }
  char name[RTE_LPM_NAMESIZE];
  std::snprintf(name, sizeof name, "rondo_rt4_%u", next_lpm_id());
  rte_lpm_config cfg{};
  cfg.max_rules = static_cast<uint32_t>(routes_.size());
  cfg.number_tbl8s = std::max<uint32_t>(deep, 1);
  lpm_ = rte_lpm_create(name, SOCKET_ID_ANY, &cfg);
  if (!lpm_) {
    lpm_error_ = std::string("rte_lpm_create: ") + rte_strerror(rte_errno);
    return;
  }
  for (size_t i = 0; i < routes_.size() && routes_[i].len > 0; ++i) {
    const int rc = rte_lpm_add(lpm_, rte_be_to_cpu_32(routes_[i].prefix), routes_[i].len,
                               static_cast<uint32_t>(i));
    if (rc != 0) {
      lpm_error_ = std::string("rte_lpm_add: ") + rte_strerror(-rc);
      rte_lpm_free(lpm_);
      lpm_ = nullptr;
      return;
    }
  }
}

const RouteConf* Route4Table::lookup(uint32_t dst) const {
  if (lpm_) {
    uint32_t i;
    if (rte_lpm_lookup(lpm_, rte_be_to_cpu_32(dst), &i) == 0) return &routes_[i];
    return default_ >= 0 ? &routes_[static_cast<uint32_t>(default_)] : nullptr;
  }
  return scan(dst);
}

bool Route4Table::next_hop(uint32_t dst, uint16_t* iface, uint32_t* nexthop) const {
  const RouteConf* r = lookup(dst);
  if (!r) return false;
  *iface = r->iface;
  *nexthop = r->via ? r->via : dst;
  return true;
}

const RouteConf* Route4Table::scan(uint32_t dst) const {
  for (const auto& r : routes_)  // sorted longest prefix first
    if ((dst & r.mask) == r.prefix) return &r;
  return nullptr;
}

}  // namespace rondo::dp

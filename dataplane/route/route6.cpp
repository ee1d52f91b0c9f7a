#include "dataplane/route/route6.h"

#include <rte_errno.h>
#include <rte_lpm6.h>
#include <rte_memory.h>

#include <algorithm>
#include <atomic>
#include <cstdio>

namespace rondo::dp {
namespace {

// A name for each rte_lpm: unique in the process for its whole life. (The table's address
// was used once: rte_lpm6 derives longer names from it (its rule hash's ring, "HT_LRH_..."),
// which DPDK cuts to 29 bytes, so two tables a few bytes apart collided: EEXIST.)
uint32_t next_lpm_id() {
  static std::atomic<uint32_t> id{0};  // control path only: snapshots are built off the workers
  return id.fetch_add(1, std::memory_order_relaxed);
}

// rte_lpm6 keeps a next hop in 21 bits.
constexpr size_t kMaxRoutes = size_t{1} << 21;
// Levels below the 24-bit first one: (128 - 24) / 8. A prefix of n bits needs at most
// ceil((n - 24) / 8) tbl8 groups of its own.
constexpr uint32_t kTbl8PerRoute = 13;

}  // namespace

bool prefix_match6(const Ip6& a, const Ip6& prefix, uint8_t len) {
  const uint32_t full = len / 8u;
  for (uint32_t i = 0; i < full; ++i)
    if (a.b[i] != prefix.b[i]) return false;
  if (len % 8 == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff00u >> (len % 8));
  return ((a.b[full] ^ prefix.b[full]) & mask) == 0;
}

Route6Table::~Route6Table() {
  // The snapshot that owns this table is deleted only after rte_rcu_qsbr_synchronize (see
  // state/publisher.h): no worker can be inside rte_lpm6_lookup on it any more.
  if (lpm_) rte_lpm6_free(lpm_);
}

void Route6Table::build(std::vector<RouteConf6> routes, bool use_lpm) {
  if (lpm_) rte_lpm6_free(lpm_);  // only before publication: a published table never changes
  lpm_ = nullptr;
  default_ = -1;
  lpm_error_.clear();
  routes_ = std::move(routes);
  std::stable_sort(routes_.begin(), routes_.end(),
                   [](const RouteConf6& a, const RouteConf6& b) { return a.len > b.len; });
  for (size_t i = 0; i < routes_.size(); ++i)
    if (routes_[i].len == 0) default_ = static_cast<int32_t>(i);
  // Without a prefix longer than /0 there is nothing to look up: no 64 MB table for that.
  if (!use_lpm || routes_.empty() || routes_.front().len == 0) return;
  if (routes_.size() >= kMaxRoutes) {
    lpm_error_ = "more than 2^21 routes";
    return;
  }
  char name[RTE_LPM6_NAMESIZE];
  std::snprintf(name, sizeof name, "rondo_rt6_%u", next_lpm_id());
  rte_lpm6_config cfg{};
  cfg.max_rules = static_cast<uint32_t>(routes_.size());
  cfg.number_tbl8s = kTbl8PerRoute * static_cast<uint32_t>(routes_.size()) + 16;
  lpm_ = rte_lpm6_create(name, SOCKET_ID_ANY, &cfg);
  if (!lpm_) {
    lpm_error_ = std::string("rte_lpm6_create: ") + rte_strerror(rte_errno);
    return;
  }
  for (size_t i = 0; i < routes_.size() && routes_[i].len > 0; ++i) {
    const int rc = rte_lpm6_add(lpm_, routes_[i].prefix.b, routes_[i].len, static_cast<uint32_t>(i));
    if (rc != 0) {
      lpm_error_ = std::string("rte_lpm6_add: ") + rte_strerror(-rc);
      rte_lpm6_free(lpm_);
      lpm_ = nullptr;
      return;
    }
  }
}

const RouteConf6* Route6Table::lookup(const Ip6& dst) const {
  if (lpm_) {
    uint32_t i;
    if (rte_lpm6_lookup(lpm_, dst.b, &i) == 0) return &routes_[i];
    return default_ >= 0 ? &routes_[static_cast<uint32_t>(default_)] : nullptr;
  }
  return scan(dst);
}

bool Route6Table::next_hop(const Ip6& dst, uint16_t* iface, Ip6* nexthop) const {
  const RouteConf6* r = lookup(dst);
  if (!r) return false;
  *iface = r->iface;
  *nexthop = r->via.is_zero() ? dst : r->via;
  return true;
}

const RouteConf6* Route6Table::scan(const Ip6& dst) const {
  for (const auto& r : routes_)  // sorted longest prefix first
    if (prefix_match6(dst, r.prefix, r.len)) return &r;
  return nullptr;
}

}  // namespace rondo::dp

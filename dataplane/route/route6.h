// IPv6 routes as the workers look them up: Route4Table's shape (route4.h) on rte_lpm6.
// Built on the main lcore with the snapshot and read-only afterwards; prefixes /1-/128 go into
// an rte_lpm6 (a 2^24-entry first level, 64 MB, then 8-bit levels: at most 14 reads for a
// /128) whose value is the route's index in the list. The /0 route sits beside it, since
// rte_lpm6 takes depths 1-128 only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/pkt/ip6.h"

struct rte_lpm6;

namespace rondo::dp {

struct RouteConf6 {
  Ip6 prefix;  // network order, no host bits (api::validate_state)
  uint8_t len = 0;
  uint16_t iface = 0;  // IfaceConf index
  Ip6 via;  // zero = on-link; may be link-local (fe80::/10): resolved on iface
};

/// True if the first `len` bits of a and prefix are equal.
bool prefix_match6(const Ip6& a, const Ip6& prefix, uint8_t len);

class Route6Table {
 public:
  Route6Table() = default;
  ~Route6Table();
  // Not movable: the rte_lpm6 is named after the table's address (unique among live tables).
  Route6Table(const Route6Table&) = delete;
  Route6Table& operator=(const Route6Table&) = delete;

  /// Replace the routes (prefixes without host bits, no duplicates: api::validate_state).
  /// use_lpm: put them in an rte_lpm6, which needs a running EAL. Without it (unit tests,
  /// fuzzing), or when the rte_lpm6 cannot be made (lpm_error() says why), lookup() scans
  /// the list, longest prefix first: the same answers, slower. The rte_lpm6 is made only when
  /// a prefix longer than /0 exists (two snapshots' 64 MB tables must fit under --no-huge).
  void build(std::vector<RouteConf6> routes, bool use_lpm);

  /// The longest prefix that covers dst; nullptr if none does.
  const RouteConf6* lookup(const Ip6& dst) const;
  /// The same as the interface and the address to resolve (the gateway, or dst when on-link).
  bool next_hop(const Ip6& dst, uint16_t* iface, Ip6* nexthop) const;

  bool empty() const { return routes_.empty(); }
  size_t size() const { return routes_.size(); }
  /// Longest prefix first; routes of one length in configured order.
  std::vector<RouteConf6>::const_iterator begin() const { return routes_.begin(); }
  std::vector<RouteConf6>::const_iterator end() const { return routes_.end(); }
  bool uses_lpm() const { return lpm_ != nullptr; }
  /// Why build() wanted an rte_lpm6 and has none (empty if it has one or did not want one).
  const std::string& lpm_error() const { return lpm_error_; }

 private:
  const RouteConf6* scan(const Ip6& dst) const;

  std::vector<RouteConf6> routes_;
  rte_lpm6* lpm_ = nullptr;
  int32_t default_ = -1;  // index of the /0 route
  std::string lpm_error_;
};

}  // namespace rondo::dp

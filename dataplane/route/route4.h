// IPv4 routes as the workers look them up. Built on the main lcore with the snapshot and
// read-only afterwards; the prefixes longer than /0 go into an rte_lpm (DIR-24-8: one read of
// a 64 MB table, two for a prefix longer than /24) whose value is the route's index in the
// list, so a lookup costs the same with 3 routes or 3,000. (IPv6 routes will sit beside this
// one in the same shape, on rte_lpm6.)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

struct rte_lpm;

namespace rondo::dp {

struct RouteConf {
  uint32_t prefix = 0;  // network order
  uint32_t mask = 0;    // network order
  uint8_t len = 0;
  uint16_t iface = 0;  // IfaceConf index
  uint32_t via = 0;  // network order, 0 = on-link
};

class Route4Table {
 public:
  Route4Table() = default;
  ~Route4Table();
  // Not movable: the rte_lpm is named after the table's address (unique among live tables).
  Route4Table(const Route4Table&) = delete;
  Route4Table& operator=(const Route4Table&) = delete;

  /// Replace the routes (prefixes without host bits, no duplicates: api::validate_state).
  /// use_lpm: put them in an rte_lpm, which needs a running EAL. Without it (unit tests,
  /// fuzzing), or when the rte_lpm cannot be made (lpm_error() says why), lookup() scans the
  /// list, longest prefix first: the same answers, slower.
  void build(std::vector<RouteConf> routes, bool use_lpm);

  /// The longest prefix that covers dst (network order); nullptr if none does.
  const RouteConf* lookup(uint32_t dst) const;
  /// The same as the interface and the address to resolve (the gateway, or dst when on-link).
  bool next_hop(uint32_t dst, uint16_t* iface, uint32_t* nexthop) const;

  bool empty() const { return routes_.empty(); }
  size_t size() const { return routes_.size(); }
  /// Longest prefix first; routes of one length in configured order.
  std::vector<RouteConf>::const_iterator begin() const { return routes_.begin(); }
  std::vector<RouteConf>::const_iterator end() const { return routes_.end(); }
  bool uses_lpm() const { return lpm_ != nullptr; }
  /// Why build() wanted an rte_lpm and has none (empty if it has one or did not want one).
  const std::string& lpm_error() const { return lpm_error_; }

 private:
  const RouteConf* scan(uint32_t dst) const;

  std::vector<RouteConf> routes_;
  rte_lpm* lpm_ = nullptr;
  int32_t default_ = -1;  // index of the /0 route (rte_lpm takes depths 1-32 only)
  std::string lpm_error_;
};

}  // namespace rondo::dp

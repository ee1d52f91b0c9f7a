// api::Stats' per-lcore counters as the dataplane describes them (its counter table), for
// tests that build stats by hand: values are given by name, the rest are 0.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dataplane/api/ctl.h"
#include "dataplane/stats/counters.h"

namespace rondo::test {

/// The descriptions a dataplane sends (Stats::counters).
inline std::vector<api::CounterDesc> lcore_counter_descs() {
  std::vector<api::CounterDesc> out;
  for (const auto& def : dp::kLcoreCounterTable) out.push_back({def.name, def.metric, def.help, def.gauge});
  return out;
}

/// One lcore's counters, in the order of lcore_counter_descs().
inline api::LcoreStats lcore_stats(uint32_t lcore, const std::map<std::string, uint64_t>& values,
                                   std::vector<uint64_t> drops) {
  api::LcoreStats l{.lcore_id = lcore, .counters = {}, .drops = std::move(drops)};
  for (const auto& def : dp::kLcoreCounterTable) {
    auto it = values.find(def.name);
    l.counters.push_back(it == values.end() ? 0 : it->second);
  }
  return l;
}

}  // namespace rondo::test

// The end-of-run report: rates, loss, latency percentiles and the generator's own
// headroom, as text or as one JSON object.
#pragma once

#include <string>

#include "tools/gen/engine.h"
#include "tools/gen/options.h"

namespace rondo::gen {

struct PortSummary {
  std::string name;
  std::string mac;
  uint64_t imissed = 0, ierrors = 0, oerrors = 0, rx_nombuf = 0;
};

void print_text(const Options& o, const RunResult& r, const PortSummary& p);
void print_json(const Options& o, const RunResult& r, const PortSummary& p);

}  // namespace rondo::gen

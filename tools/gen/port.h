// The generator's ethdev port: one RX and one TX queue, its own mbuf pool.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "tools/gen/options.h"
#include "tools/gen/packet.h"
#include "tools/gen/report.h"

struct rte_mempool;

namespace rondo::gen {

struct GenPort {
  uint16_t id = 0;
  std::string name;
  Mac mac{};
  rte_mempool* pool = nullptr;
};

/// Create the pool, configure and start the port (promiscuous: an io-forwarding middle
/// box returns frames still addressed to itself). False with *err on failure.
bool port_open(const Options& o, GenPort* p, std::string* err);
/// Wait until the link is up (a memif peer connected); false after timeout_s or on *stop.
bool port_wait_link(const GenPort& p, double timeout_s, const std::atomic<bool>& stop);
PortSummary port_summary(const GenPort& p);
void port_close(GenPort* p);

}  // namespace rondo::gen

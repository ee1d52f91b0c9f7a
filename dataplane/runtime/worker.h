// The worker loop: one per worker lcore, run to completion, sharing nothing.
// Each iteration: take the current config snapshot and next hops, RX a burst from each owned queue,
// run the pipeline on every packet (prefetching the next), buffer TX per port, drain the
// TX buffers when full or when the TSC drain timer fires, age some flows, report an RCU
// quiescent state, and back off (sleep) when idle if asked to.
#pragma once

#include <rte_mbuf.h>
#include <rte_ring.h>

#include <array>
#include <atomic>
#include <bitset>
#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/frag/reassembly.h"
#include "dataplane/fwd/pipeline.h"
#include "dataplane/inspect/drop_sampler.h"
#include "dataplane/inspect/trace.h"
#include "dataplane/neigh/next_hops.h"
#include "dataplane/sched/lc.h"
#include "dataplane/state/publisher.h"
#include "dataplane/state/rcu_slot.h"

namespace rondo::dp {

inline constexpr uint16_t kBurst = 32;
inline constexpr uint16_t kMaxPorts = 8;

struct RxQueue {
  uint16_t port;
  uint16_t queue;
};

struct WorkerSetup {
  uint32_t index = 0;      // worker number: RCU thread id and TX queue on every port
  uint32_t lcore = 0;      // the EAL lcore it runs on (what stats and metrics report)
  uint16_t n_ports = 1;
  std::vector<RxQueue> rx;
  Publisher* publisher = nullptr;
  uint32_t idle_sleep_us = 0;   // 0: busy-poll (production); >0: sleep when idle
  // Bit p: a TX burst on port p at every drain even with nothing to send (an 802.3ad bond
  // sends its LACPDUs only from inside a burst; port/port.h BondInfo::lacp_in_bursts).
  std::bitset<RTE_MAX_ETHPORTS> empty_burst_ports;
  PipelineParams pipeline;
  // Software steering: one single-producer/single-consumer ring per (from, to) pair of
  // workers, so a hand-over costs no atomic read-modify-write. Indexed by worker; the
  // entry for this worker itself is null.
  std::vector<rte_ring*> steer_out;  // to worker j
  std::vector<rte_ring*> steer_in;   // from worker j
  // The main lcore's neighbour manager (neigh/service.h): ARP frames and next hops to
  // resolve go to it; frames it made come back for this worker to send (worker 0 only).
  // All single-producer/single-consumer. Null: none (tests of the worker alone).
  rte_ring* arp_to_main = nullptr;
  rte_ring* ask_to_main = nullptr;
  rte_ring* from_main = nullptr;
  const RcuSlot<NextHopMap>* next_hops = nullptr;
  const RcuSlot<NextHopMap6>* next_hops6 = nullptr;
  // The lc scheduler's counts, published by the main lcore (runtime/load_publisher.h).
  // Null: none (tests of the worker alone).
  const RcuSlot<BackendLoad>* backend_load = nullptr;
  // Operators' questions (inspect/query.h: flows, trace, drop samples) from the main lcore,
  // and the answers back; single-producer/single-consumer. Null: none.
  rte_ring* query_in = nullptr;
  rte_ring* query_out = nullptr;
  // Tests only (--test-stall-worker): this many TSC ticks after its loop starts, the worker
  // stops advancing it, as a stuck worker would (runtime/watchdog.h must notice). 0: never.
  uint64_t test_stall_after_tsc = 0;
  // Buffers for frames the pipeline makes itself (Pipeline::outbox: PROXY v2 header segments,
  // their RSTs). Null: such frames are dropped as no_mbuf (tests of the worker alone).
  rte_mempool* pool = nullptr;
  // Fragments to our addresses (frag/reassembly.h); `hz` is taken from `pipeline`.
  ReassemblyParams frag;
};

/// Per-lcore state, one cache-aligned object per worker, passed by pointer.
struct alignas(64) Worker {
  explicit Worker(const WorkerSetup& s);

  WorkerSetup setup;
  Pipeline pipeline;
  const Snapshot* snapshot = nullptr;  // valid only inside one loop iteration
  uint64_t applied_epoch = 0;          // snapshot epoch the pipeline has taken in
  uint64_t drain_tsc = 0;              // TX drain period in TSC ticks
  uint64_t last_drain = 0;
  uint32_t idle_polls = 0;
  uint64_t loop_tsc = 0;
  // Iterations of worker_main's loop: the main lcore's watchdog (runtime/watchdog.h) reads it
  // to tell a worker that loops from one that is stuck. Written by this worker only.
  uint64_t loops = 0;
  std::array<std::array<rte_mbuf*, kBurst>, kMaxPorts> tx{};
  std::array<uint16_t, kMaxPorts> tx_len{};
  std::vector<std::array<rte_mbuf*, kBurst>> steer;  // per target worker, flushed per burst
  std::vector<uint16_t> steer_len;
  std::atomic<bool>* stop = nullptr;  // read once per loop, relaxed
  Tracer tracer;        // armed by a query; asked once per burst
  DropSampler drops;    // recent dropped frames per reason
  Reassembly frag;      // this worker's fragments (the datagrams steered to it)
  // Datagrams reassembled during a burst, run through the pipeline after it.
  std::array<rte_mbuf*, kBurst> whole{};
  uint16_t whole_len = 0;
  bool reassembled_run = false;  // running a burst of reassembled datagrams (worker.cpp)
};

/// Register w as an RCU reader (call on the worker's own thread before polling).
void worker_online(Worker* w);
void worker_offline(Worker* w);
/// One iteration of the loop; returns the number of packets received.
uint32_t worker_poll(Worker* w);
/// Flush every TX buffer now.
void worker_flush(Worker* w);
/// lcore entry point for rte_eal_remote_launch (arg: Worker*). Loops until *stop.
int worker_main(void* arg);

}  // namespace rondo::dp

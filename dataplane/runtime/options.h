// rondo-dataplane options (after the EAL arguments and "--").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/sched/maglev.h"

namespace rondo::dp {

struct Options {
  std::string ctl_socket = "/run/rondo/dataplane.sock";
  std::string state_dir = "/var/lib/rondo";  // hash.key: the secret of the keyed hashes
  // Where the flow tables live so that the next process adopts them (flows.<worker>), with
  // the last applied state (state) and a planned restart's stop time (stopped): docs/
  // hot-restart.md. Empty: anonymous memory, every restart starts empty (and kRestart is refused).
  std::string flow_dir;
  uint32_t flows_per_worker = 1u << 20;
  // The v6 flow table's (FlowTable6, in DIR/flows6.<worker>): 192 bytes a flow (224 with
  // meters). Unset: default_flow6_capacity(flows_per_worker), filled in by parse_options.
  uint32_t flows6_per_worker = 0;
  bool flow_meters = true;  // per-flow age, packets and bytes (32 bytes more a flow)
  uint32_t idle_sleep_us = 0;
  // One sweep of each worker's flow table per this many ms: a flow is reclaimed at most this
  // long after it expires (FlowTable::sweep).
  uint32_t age_sweep_ms = 1000;
  uint32_t mtu = 1500;  // towards the backends: encapsulated packets must fit (--mtu)
  uint32_t reply_rate = 1000;  // ARP replies per second (main lcore); ICMP echo, per worker
  uint32_t mbufs = 0;  // 0: sized from ports, queues and descriptors
  uint16_t lport_lo = 1024;
  uint16_t lport_hi = 65535;
  uint16_t rx_desc = 1024;
  uint16_t tx_desc = 1024;
  // Keys the maglev tables and the maglev/sh packet hashes (not a secret): hosts behind
  // the same ECMP route need the same one to choose the same backends.
  uint64_t maglev_seed = kDefaultMaglevSeed;
  // Tests only (--test-stall-worker INDEX:MS): worker INDEX stops advancing its loop MS ms
  // after it starts, so that a test can watch the systemd watchdog stop pinging. -1: off.
  int test_stall_worker = -1;
  uint32_t test_stall_after_ms = 0;
  std::vector<std::string> vdevs;  // the EAL --vdev arguments, to name a device that failed
  int64_t main_entered_ns = 0;     // CLOCK_REALTIME when main() began (start-up time in the log)
};

/// The --vdev arguments among the EAL arguments (call before rte_eal_init reorders argv).
std::vector<std::string> vdev_args(int argc, char** argv);

/// Parse the application arguments. On error or --help, returns nullopt and sets
/// *exit_code (0 for --help) after printing to stdout/stderr.
std::optional<Options> parse_options(int argc, char** argv, int* exit_code);

}  // namespace rondo::dp

// Per-lcore counters. Each lcore is the only writer of its own counters, so they are
// plain integers (no atomics, no locks). The control agent reads them from another thread
// with relaxed atomic loads (read_counter): an aligned 64-bit load does not tear on the
// CPUs DPDK supports, and a reader only needs a recent value, not a consistent set.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "dataplane/api/ctl.h"
#include "dataplane/stats/drop_reason.h"

namespace rondo::dp {

// A new per-lcore counter is one member here and one line in kLcoreCounterTable below: the
// control socket, rondo-dpstat, the API's JSON, rondoctl and the Prometheus exporter all
// render the table as the dataplane sends it (api::CounterDesc).
struct alignas(64) LcoreCounters {
  uint64_t rx_packets = 0;
  uint64_t rx_bytes = 0;
  uint64_t tx_packets = 0;
  uint64_t tx_bytes = 0;
  uint64_t consumed = 0;  // ARP replies to our requests: taken by the dataplane itself
  // Hand-overs between lcores: to the worker that owns a flow (software steering), ARP
  // frames to the main lcore, and the main lcore's ARP frames to a worker for TX.
  uint64_t steered_out = 0;  // handed to another lcore (counted in rx here)
  uint64_t steered_in = 0;   // from another lcore (not counted in rx here)
  uint64_t originated = 0;   // frames the lcore made itself (ARP requests, main lcore)
  // Every frame is counted once on the way in and once on the way out:
  //   rx + steered_in + originated == tx + drops + consumed + steered_out
  uint64_t busy_cycles = 0;
  uint64_t idle_cycles = 0;
  uint64_t flows_active = 0;
  uint64_t flow_capacity = 0;  // set once, when the worker's table is built
  // Flows removed to make room for a new one (table or local ports short), by class, in
  // the order they are taken (docs/security.md).
  uint64_t reclaimed_embryonic = 0;
  uint64_t reclaimed_closed = 0;
  uint64_t reclaimed_udp = 0;
  // Local-port quarantine (docs/security.md, "Local ports"): tuples held now, and tuples let
  // go before their time because it was full.
  uint64_t quarantined_tuples = 0;
  uint64_t quarantine_released_early = 0;
  // The neighbour manager's (main lcore only; 0 on workers).
  uint64_t neigh_entries = 0;
  uint64_t neigh_capacity = 0;
  // The mbuf pool (main lcore's row): mbufs out of the pool now (in rings, queues, bursts,
  // lcore caches), and its size. After a burst of traffic in-use returns to its baseline,
  // or something holds mbufs it should not.
  uint64_t mbufs_in_use = 0;
  uint64_t mbufs_total = 0;
  uint64_t neigh_evictions = 0;
  uint64_t arp_requests = 0;
  uint64_t arp_replies = 0;
  // SYN cookies (docs/security.md): cookie SYN-ACKs sent, valid cookie ACKs (flows opened),
  // and whether the worker answers some VIP's SYNs with cookies now (0/1).
  uint64_t syncookies_sent = 0;
  uint64_t syncookies_ok = 0;
  uint64_t syncookies_active = 0;
  // New flows of a VIP failing open (every backend down, on_all_down: open), and DSR flows
  // made from a mid-connection segment by a hashing scheduler (docs/modes.md).
  uint64_t fail_open_flows = 0;
  uint64_t midflow_flows = 0;
  // ICMP errors about a flow, translated and sent on to its other end (fwd/icmp_error.h).
  uint64_t icmp_errors_forwarded = 0;
  // IPv6: the worker's v6 flow table (FlowTable6), and NDP on the main lcore.
  uint64_t flows6_active = 0;
  uint64_t flow6_capacity = 0;
  uint64_t ndp_solicits = 0;
  uint64_t ndp_adverts = 0;
  // Reassembly (frag/reassembly.h): fragments taken in, datagrams completed, fragments let
  // go unfinished (timeout) or with a datagram found broken, datagrams re-fragmented on output.
  uint64_t frag_received = 0;
  uint64_t frag_reassembled = 0;
  uint64_t frag_timeouts = 0;
  uint64_t frag_discarded = 0;
  uint64_t frag_refragmented = 0;
  // Frames a PMD handed over with their 802.1Q tag stripped into the mbuf (it should not:
  // rondo never asks for it), the tag put back into the bytes by the worker.
  uint64_t vlan_reinserted = 0;
  std::array<uint64_t, kDropReasonCount> drops{};

  void drop(DropReason r) { ++drops[static_cast<uint32_t>(r)]; }
};

struct BackendCounters {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t connections = 0;
  uint64_t active_flows = 0;  // incremented on flow creation, decremented on removal
  uint64_t quarantined = 0;   // tuples of the backend's ended connections not reusable yet
};

inline constexpr uint32_t kBackendSlots = api::kMaxBackendId + 1;

/// One row of the counter table: how a member of LcoreCounters is named and explained.
struct LcoreCounterDef {
  const char* name;    // key in JSON and text output
  const char* metric;  // Prometheus family (labelled by lcore)
  const char* help;
  bool gauge;          // false: only grows
  uint64_t LcoreCounters::*member;
};

/// Every per-lcore counter but the drops (which are per reason, see drop_reason.h). Order is
/// the order of output; append freely, the wire carries the names.
inline constexpr LcoreCounterDef kLcoreCounterTable[] = {
    {"rx_packets", "rondo_lcore_rx_packets_total", "Packets received by the worker.", false,
     &LcoreCounters::rx_packets},
    {"tx_packets", "rondo_lcore_tx_packets_total", "Packets sent by the worker.", false,
     &LcoreCounters::tx_packets},
    {"rx_bytes", "rondo_lcore_rx_bytes_total", "Bytes received by the worker.", false,
     &LcoreCounters::rx_bytes},
    {"tx_bytes", "rondo_lcore_tx_bytes_total", "Bytes sent by the worker.", false,
     &LcoreCounters::tx_bytes},
    {"busy_cycles", "rondo_lcore_busy_cycles_total",
     "TSC cycles the worker spent on loop iterations that handled packets; busy ratio = "
     "rate(busy) / (rate(busy) + rate(idle)).",
     false, &LcoreCounters::busy_cycles},
    {"idle_cycles", "rondo_lcore_idle_cycles_total",
     "TSC cycles the worker spent on loop iterations that found no packet, idle sleeps "
     "included.",
     false, &LcoreCounters::idle_cycles},
    {"flows_active", "rondo_lcore_active_flows", "Flows in the worker's flow table.", true,
     &LcoreCounters::flows_active},
    {"flow_capacity", "rondo_lcore_flow_capacity", "Size of the worker's flow table, in flows.",
     true, &LcoreCounters::flow_capacity},
    {"consumed", "rondo_lcore_consumed_packets_total",
     "Packets the dataplane took for itself (ARP replies to its requests, on the main lcore).",
     false, &LcoreCounters::consumed},
    {"steered_out", "rondo_lcore_steered_out_packets_total",
     "Packets handed to another lcore: to the worker that owns their flow (software "
     "steering), ARP frames to the main lcore, the main lcore's ARP frames to a worker for TX.",
     false, &LcoreCounters::steered_out},
    {"steered_in", "rondo_lcore_steered_in_packets_total",
     "Packets received from another lcore (see steered_out).", false,
     &LcoreCounters::steered_in},
    {"originated", "rondo_lcore_originated_packets_total",
     "Packets the lcore made itself (ARP requests, on the main lcore).", false,
     &LcoreCounters::originated},
    {"reclaimed_embryonic", "rondo_lcore_reclaimed_embryonic_flows_total",
     "Half-open TCP flows (handshake never completed) removed to make room for a new flow "
     "when the flow table or a local-port pool was full; reclaimed first.",
     false, &LcoreCounters::reclaimed_embryonic},
    {"reclaimed_closed", "rondo_lcore_reclaimed_closed_flows_total",
     "TCP flows that had seen FIN or RST removed to make room for a new flow when the flow "
     "table or a local-port pool was full; reclaimed when no half-open flow is left.",
     false, &LcoreCounters::reclaimed_closed},
    {"reclaimed_udp", "rondo_lcore_reclaimed_udp_flows_total",
     "UDP flows, idle longest first, removed to make room for a new flow when the flow table "
     "or a local-port pool was full; reclaimed when no half-open or closed flow is left.",
     false, &LcoreCounters::reclaimed_udp},
    {"quarantined_tuples", "rondo_lcore_quarantined_tuples",
     "(local ip:port, backend) tuples of ended connections the worker will not hand out "
     "again before port_quarantine has passed.",
     true, &LcoreCounters::quarantined_tuples},
    {"quarantine_released_early", "rondo_lcore_quarantine_released_early_total",
     "Quarantined tuples let go before their time because the quarantine was full (more "
     "connections ended within port_quarantine than it holds).",
     false, &LcoreCounters::quarantine_released_early},
    {"neigh_entries", "rondo_lcore_neighbour_entries",
     "Entries in the neighbour table (main lcore: the one table; docs/security.md).", true,
     &LcoreCounters::neigh_entries},
    {"mbufs_in_use", "rondo_lcore_mbufs_in_use",
     "Mbufs out of the packet pool (main lcore's row: the one pool). Returns to its baseline "
     "after traffic stops, or mbufs leak.",
     true, &LcoreCounters::mbufs_in_use},
    {"mbufs_total", "rondo_lcore_mbufs", "Size of the packet pool, in mbufs (main lcore's row).",
     true, &LcoreCounters::mbufs_total},
    {"neigh_capacity", "rondo_lcore_neighbour_capacity",
     "Size of the neighbour table, in entries (main lcore).", true,
     &LcoreCounters::neigh_capacity},
    {"neigh_evictions", "rondo_lcore_neighbour_evictions_total",
     "Stale neighbour entries evicted to make room for a new one (main lcore).", false,
     &LcoreCounters::neigh_evictions},
    {"arp_requests", "rondo_lcore_arp_requests_total",
     "ARP requests the dataplane made for next hops (main lcore).", false,
     &LcoreCounters::arp_requests},
    {"arp_replies", "rondo_lcore_arp_replies_total",
     "ARP replies the dataplane made for its VIPs and local ips (main lcore).", false,
     &LcoreCounters::arp_replies},
    {"syncookies_sent", "rondo_lcore_syncookies_sent_total",
     "SYNs the worker answered with a SYN cookie (no flow, no local port; docs/security.md).",
     false, &LcoreCounters::syncookies_sent},
    {"syncookies_ok", "rondo_lcore_syncookies_ok_total",
     "ACKs that returned a valid SYN cookie: flows opened and backend connections started.",
     false, &LcoreCounters::syncookies_ok},
    {"syncookies_active", "rondo_lcore_syncookies_active",
     "1 while the worker answers SYNs to some VIP with cookies (a VIP is `on`, or `auto` with "
     "the worker's switch on), else 0.",
     true,
     &LcoreCounters::syncookies_active},
    {"fail_open_flows", "rondo_lcore_fail_open_flows_total",
     "New flows of VIPs failing open: every backend down by health check and on_all_down: "
     "open, so scheduled over the down backends (docs/modes.md).",
     false, &LcoreCounters::fail_open_flows},
    {"midflow_flows", "rondo_lcore_midflow_flows_total",
     "DSR flows made from a mid-connection TCP segment by a maglev or sh VIP (the connection "
     "came from another host or before a restart; docs/modes.md).",
     false, &LcoreCounters::midflow_flows},
    {"icmp_errors_forwarded", "rondo_lcore_icmp_errors_forwarded_total",
     "ICMP errors (destination unreachable, fragmentation needed, time exceeded) about a flow, "
     "sent on to the flow's other end: translated in full-NAT, encapsulated to the backend in "
     "DSR.",
     false, &LcoreCounters::icmp_errors_forwarded},
    {"flows6_active", "rondo_lcore_active_flows6",
     "Flows in the worker's IPv6 flow table (v6 and NAT46/NAT64 flows).", true,
     &LcoreCounters::flows6_active},
    {"flow6_capacity", "rondo_lcore_flow6_capacity",
     "Size of the worker's IPv6 flow table, in flows.", true, &LcoreCounters::flow6_capacity},
    {"ndp_solicits", "rondo_lcore_ndp_solicits_total",
     "Neighbour solicitations the dataplane sent for IPv6 next hops (main lcore).", false,
     &LcoreCounters::ndp_solicits},
    {"ndp_adverts", "rondo_lcore_ndp_adverts_total",
     "Neighbour advertisements the dataplane sent for its IPv6 VIPs and local ips (main lcore).",
     false, &LcoreCounters::ndp_adverts},
    {"frag_received", "rondo_lcore_frag_received_total",
     "IPv4/IPv6 fragments to a VIP or local ip taken into the worker's reassembly table.", false,
     &LcoreCounters::frag_received},
    {"frag_reassembled", "rondo_lcore_frag_reassembled_total",
     "Datagrams reassembled from fragments and put through the pipeline like any packet.", false,
     &LcoreCounters::frag_reassembled},
    {"frag_timeouts", "rondo_lcore_frag_timeouts_total",
     "Fragments freed because their datagram was not complete within the reassembly timeout.",
     false, &LcoreCounters::frag_timeouts},
    {"frag_discarded", "rondo_lcore_frag_discarded_total",
     "Fragments freed with a datagram found broken (overlap, duplicate, too many fragments); "
     "the fragment that broke it is also the drop frag_invalid.",
     false, &LcoreCounters::frag_discarded},
    {"frag_refragmented", "rondo_lcore_frag_refragmented_total",
     "Reassembled datagrams longer than the egress MTU, sent as fragments again.", false,
     &LcoreCounters::frag_refragmented},
    {"vlan_reinserted", "rondo_lcore_vlan_reinserted_total",
     "Frames received with their VLAN tag stripped by the device, the tag put back into the "
     "frame by the worker.",
     false, &LcoreCounters::vlan_reinserted},
};

// Every member before `drops` has its row: a counter without one is counted and never seen
// (the SYN-cookie counters were, for a while).
static_assert(sizeof(kLcoreCounterTable) / sizeof(kLcoreCounterTable[0]) ==
                  offsetof(LcoreCounters, drops) / sizeof(uint64_t),
              "every LcoreCounters member needs a row in kLcoreCounterTable");

/// Read a counter another lcore writes (see the file comment).
inline uint64_t read_counter(const uint64_t& c) { return __atomic_load_n(&c, __ATOMIC_RELAXED); }

}  // namespace rondo::dp

// The neighbour manager at work on the main lcore: the rings that carry ARP and NDP frames
// and next-hop questions (both families) from the workers to it, the ring that carries its
// frames (ARP replies and requests, neighbour advertisements and solicitations) to worker 0
// for TX (workers own the TX queues; af_xdp has one per device), and the RCU slots that
// publish its NextHopMap and NextHopMap6. Owned by the Dataplane; poll() is called
// from the main lcore's loop, between control requests.
//
// Every ring is single-producer/single-consumer and bounded: a full ring drops the frame as
// arp_queue_full (counted by whoever found it full) and loses a question (asked again after
// a second).
#pragma once

#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <memory>
#include <string>
#include <vector>

#include "dataplane/neigh/manager.h"
#include "dataplane/state/rcu_slot.h"

namespace rondo::dp {

/// Put a next-hop question on a worker's ask ring (its elements are NeighAsks, 24 bytes:
/// either family). False if the ring is full.
inline bool send_ask(rte_ring* r, const NeighAsk& a) {
  return rte_ring_sp_enqueue_elem(r, const_cast<NeighAsk*>(&a), sizeof a) == 0;
}

class NeighService {
 public:
  static constexpr unsigned kArpRingSize = 512;   // ARP and NDP frames, per worker
  static constexpr unsigned kAskRingSize = 256;   // next-hop questions, per worker
  static constexpr unsigned kTxRingSize = 512;    // the manager's frames, to worker 0
  static constexpr unsigned kBurst = 32;

  /// name: prefix of the rings' names. qsbr: the Publisher's (workers report to it).
  NeighService(const std::string& name, uint32_t n_workers, rte_mempool* pool, rte_rcu_qsbr* qsbr,
               const NeighManagerParams& params);
  ~NeighService();
  NeighService(const NeighService&) = delete;
  NeighService& operator=(const NeighService&) = delete;

  /// false with *err if a ring could not be created.
  bool ok(std::string* err) const;

  rte_ring* arp_ring(uint32_t worker) const { return arp_[worker]; }
  rte_ring* ask_ring(uint32_t worker) const { return ask_[worker]; }
  /// Frames for worker `worker` to send (only worker 0 has one; null for the others).
  rte_ring* tx_ring(uint32_t worker) const { return worker == 0 ? tx_ : nullptr; }
  const RcuSlot<NextHopMap>* next_hops() const { return &slot_; }
  const RcuSlot<NextHopMap6>* next_hops6() const { return &slot6_; }

  /// One turn on the main lcore: take in a new snapshot, the workers' ARP frames and
  /// questions, send what the manager made, publish the next hops if they changed (this
  /// waits for the workers' quiescent states). s: the current snapshot (writer's view).
  void poll(const Snapshot* s, uint64_t now);

  /// Gratuitous ARP out of every interface of `port` (each with its tag) for our IPv4
  /// addresses and unsolicited neighbour advertisements for our IPv6 ones (VIPs, local IPs,
  /// then the interface's own addresses; at most kAnnounceMax of each family per
  /// interface and kAnnounceTotalMax frames in all, the rest cut and counted in
  /// announce_cut()), sent at the next poll(): after a bond changed the member it sends on,
  /// so that switches learn where our MAC went (on every VLAN). s: the current snapshot.
  void announce(const Snapshot* s, uint16_t port);
  static constexpr size_t kAnnounceMax = 256;
  // Per announce, whatever the number of interfaces: bounds the mbufs one failover takes.
  // More than the tx ring holds at once (kTxRingSize): worker 0 drains it meanwhile, and
  // what does not fit is freed and counted (kArpQueueFull).
  static constexpr size_t kAnnounceTotalMax = 1024;
  /// Announcements left out by kAnnounceMax or kAnnounceTotalMax since start.
  uint64_t announce_cut() const { return announce_cut_; }

  const NeighManager& manager() const { return mgr_; }
  const LcoreCounters& counters() const { return mgr_.counters(); }
  LcoreCounters& counters() { return mgr_.counters(); }

 private:
  void hand_to_worker(rte_mbuf* m, uint16_t port);

  NeighManager mgr_;
  rte_mempool* pool_;
  std::vector<rte_ring*> arp_, ask_;
  rte_ring* tx_ = nullptr;
  RcuSlot<NextHopMap> slot_;
  RcuSlot<NextHopMap6> slot6_;
  uint64_t applied_epoch_ = 0;
  bool applied_any_ = false;
  uint64_t announce_cut_ = 0;
  std::string error_;
};

}  // namespace rondo::dp

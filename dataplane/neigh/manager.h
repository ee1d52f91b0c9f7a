// The neighbour manager: ARP and the one neighbour table, on the main lcore (as grout
// keeps its nexthops on the control thread). Workers never parse or learn ARP: they hand
// every ARP frame aimed at one of rondo's addresses to the manager, and ask it for next
// hops they could not find in the published NextHopMap. The manager answers ARP requests
// for VIPs and local ips (rate-limited), learns what its own requests bring back (rules in
// neigh.h), asks for configured next hops (routes' `via`, backends' on-link next hops) and
// for the next hops workers ask about, and republishes the NextHopMap when an entry changes.
//
// It works on plain bytes and a clock passed in, like the Pipeline, so unit tests drive it
// without DPDK running; runtime/neigh_service.cpp moves the frames (rings, mbufs, RCU).
//
// Its counters are a row of their own (the main lcore's): steered_in (ARP frames taken
// from workers), consumed (answers to our requests), drops by reason, originated (ARP
// requests made), steered_out (frames handed to a worker for TX: replies and requests),
// so rx + steered_in + originated == tx + drops + consumed + steered_out still holds over
// all rows. The frame of an answered ARP request is turned into the reply in place.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/flow/siphash.h"
#include "dataplane/fwd/token_bucket.h"
#include "dataplane/neigh/neigh.h"
#include "dataplane/neigh/next_hops.h"
#include "dataplane/state/snapshot.h"
#include "dataplane/stats/counters.h"

namespace rondo::dp {

struct NeighManagerParams {
  uint64_t hz = 1000;  // ticks per second of the `now` values passed in
  std::vector<std::array<uint8_t, 6>> port_macs;  // indexed by port id
  uint32_t capacity = 4096;  // neighbour entries at most
  // ARP replies the dataplane sends, all ports together: a request flood must not turn
  // rondo into an amplifier or fill the TX ring.
  uint32_t reply_rate = 1000;  // per second
  uint32_t reply_burst = 64;
  HashKey hash_key{};  // the deployment's secret; the table's slot hash is derived from it
};

struct ArpRequest {
  uint16_t port_id;
  uint32_t target_ip;  // network order
  uint32_t sender_ip;  // network order
};

class NeighManager {
 public:
  /// What became of an ARP frame.
  struct Verdict {
    enum class Kind : uint8_t { kReply, kConsumed, kDrop };
    Kind kind = Kind::kDrop;
    DropReason reason = DropReason::kCount;
    uint16_t port = 0;  // kReply: send the rewritten frame out of this port
  };

  explicit NeighManager(const NeighManagerParams& p);

  /// A new config snapshot: static entries, and requests for configured next hops.
  void on_snapshot(const Snapshot& s, uint64_t now);

  /// An ARP frame a worker received on in_port. A request for one of our addresses is
  /// rewritten into the reply in place (kReply).
  Verdict handle_arp(const Snapshot* s, uint8_t* frame, uint32_t len, uint16_t in_port,
                     uint64_t now);

  /// A worker found no next hop for ip on port: request it (at most once a second per
  /// address, only for an address a route makes on-link).
  void want(const Snapshot* s, uint32_t ip, uint16_t port, uint64_t now);

  /// Housekeeping, about once per main-loop turn: once a second, re-request configured next
  /// hops that are unresolved or not confirmed for a minute; refresh the gauges.
  void tick(const Snapshot* s, uint64_t now);

  /// ARP requests to send; the caller builds them (build_request) and clears the list.
  std::vector<ArpRequest>& requests() { return requests_; }
  /// Build a broadcast ARP request (60 bytes, zero padded) into buf; counts it as
  /// originated and handed to a worker. Returns its length.
  uint32_t build_request(const ArpRequest& r, uint8_t* buf);
  /// A frame counted as handed to a worker did not fit in the ring: count it dropped.
  void handover_failed();

  /// A new NextHopMap if the table changed since the last one (the first call always gives
  /// one), else nullptr.
  std::unique_ptr<NextHopMap> next_hops_if_changed();

  const NeighTable& table() const { return table_; }
  const LcoreCounters& counters() const { return counters_; }
  LcoreCounters& counters() { return counters_; }

 private:
  void resolve_configured(const Snapshot& s, uint64_t now);
  void request(const Snapshot& s, uint32_t ip, uint16_t port, uint64_t now);
  Verdict drop(DropReason r);

  NeighManagerParams params_;
  HashKey key_;
  NeighTable table_;
  TokenBucket replies_;
  std::vector<ArpRequest> requests_;
  LcoreCounters counters_;
  uint64_t published_ = 0;
  bool published_once_ = false;
  uint64_t next_resolve_ = 0;
};

}  // namespace rondo::dp

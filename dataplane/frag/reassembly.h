// Per-worker reassembly of IPv4 and IPv6 fragments to a VIP or a local ip (rte_ip_frag), and
// the re-fragmentation of such a datagram when it leaves over a smaller egress MTU.
//
// The choice (docs/architecture.md, "Fragments"): fragments are reassembled, not forwarded
// one by one. Every fragment of a datagram reaches one worker (frag/steer.h); the completed
// datagram is copied into one mbuf of this worker's reassembly pool (at most kMaxFrame bytes)
// and run through the pipeline like any received packet, so it may be handed to its flow's
// owner from there. The pipeline therefore never sees a chained mbuf.
//
// Bounds: at most `max_datagrams` datagrams in progress per worker (each holding up to
// RTE_LIBRTE_IP_FRAG_MAX_FRAG = 8 fragments), each given `timeout_ms` to complete; then its
// fragments are freed and counted (frag_timeouts).
#pragma once

#include <rte_ip_frag.h>
#include <rte_mbuf.h>

#include <cstdint>
#include <memory>

#include "dataplane/flow/siphash.h"
#include "dataplane/inspect/drop_sampler.h"
#include "dataplane/stats/counters.h"
#include "dataplane/stats/drop_reason.h"

namespace rondo::dp {

struct ReassemblyParams {
  uint32_t max_datagrams = 128;  // in progress at once, per worker
  uint32_t timeout_ms = 2000;    // from a datagram's first fragment to its last
  uint32_t buffers = 128;        // reassembly buffers (kMaxFrame bytes each), per worker
  uint64_t hz = 0;               // ticks per second of the `now` values passed in (TSC)
  int socket = SOCKET_ID_ANY;
};

class Reassembly {
 public:
  /// The longest frame a reassembled datagram may be (Ethernet header included); longer ones
  /// are dropped as frag_too_big. A buffer of this size is one mbuf of the reassembly pool.
  static constexpr uint32_t kMaxFrame = 16384;
  /// Fragments one datagram may have (rte_ip_frag's compile-time limit).
  static constexpr uint32_t kMaxFragments = RTE_LIBRTE_IP_FRAG_MAX_FRAG;
  /// The buffer size of a reassembly mbuf.
  static constexpr uint16_t kBufLen = RTE_PKTMBUF_HEADROOM + kMaxFrame;

  /// `counters`: the worker's (frag_* rows). ok() is false when the table or the pool could
  /// not be made (memory): every fragment is then refused as no_mbuf.
  Reassembly(const ReassemblyParams& p, LcoreCounters* counters);
  ~Reassembly();
  Reassembly(const Reassembly&) = delete;
  Reassembly& operator=(const Reassembly&) = delete;

  bool ok() const { return tbl_ && pool_; }

  /// Take fragment m (an Ethernet frame, untagged or with one 802.1Q tag, the pipeline classified as a fragment to
  /// one of our addresses; for IPv6 its fragment header right after the fixed one). Returns
  /// the reassembled frame when m completed a datagram (one mbuf), else null: m is held, or
  /// it was refused (freed; *why set: frag_table_full, frag_invalid (also when m completes a
  /// datagram whose fragments came from two interfaces: all of them go), frag_too_big,
  /// frag_duplicate, no_mbuf). A refused fragment is offered to `drops` (when given) first.
  rte_mbuf* add(rte_mbuf* m, uint64_t now, DropReason* why, DropSampler* drops = nullptr);

  /// Free the fragments of datagrams past their timeout (counted). Once per loop.
  void expire(uint64_t now);

  /// Whether m is a reassembled datagram, this worker's or one handed over by another: an
  /// mbuf of a reassembly pool (only those have a buffer of this size; the field is in the
  /// mbuf's first cache line, which the worker reads anyway).
  static bool reassembled(const rte_mbuf* m) { return m->buf_len == kBufLen; }

  /// Cut the reassembled frame m (Ethernet + IPv4 or IPv6) into fragments of at most `mtu`
  /// bytes of IP each, single-segment mbufs of `pool`, each with m's Ethernet header (and its
  /// 802.1Q tag), into
  /// out[0..n). Returns n, or 0 (nothing made) when out has too little room or pool is empty.
  /// m is left to the caller.
  uint32_t fragment(rte_mbuf* m, uint32_t mtu, rte_mempool* pool, rte_mbuf** out, uint32_t room);

  /// Mbufs of the reassembly pool out now (tests: back to 0 once everything is sent).
  uint32_t buffers_in_use() const;

 private:
  // Whether rte_ip_frag put `m` on the death row since `before` (refused), and how many
  // other mbufs it put there.
  bool on_death_row(uint32_t before, const rte_mbuf* m, uint64_t* others) const;

  // Whether fragment f (at ip) is an exact copy of one taken lately, and if not remember it.
  // rte_ip_frag counts bytes, so a copy would break its datagram: RFC 8200 4.5 lets a
  // receiver drop exact duplicates alone. Direct-mapped signatures (a 64-bit keyed hash of
  // the reassembly key, offset, M and length), each good for one timeout.
  bool duplicate(const uint8_t* ip, bool v6, uint64_t now);
  struct Seen {
    uint64_t sig = 0;
    uint64_t at = 0;
  };
  static constexpr uint32_t kSeen = 2048;
  std::unique_ptr<Seen[]> seen_;
  HashKey seen_key_;
  uint64_t ttl_ = 0;

  rte_ip_frag_tbl* tbl_ = nullptr;
  rte_mempool* pool_ = nullptr;
  LcoreCounters* c_;
  uint32_t v6_id_ = 0;  // identification of the IPv6 fragments this worker makes
  rte_ip_frag_death_row dr_{};
};

}  // namespace rondo::dp

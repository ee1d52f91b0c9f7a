// Per-lcore flow table: fixed capacity chosen at start, no allocation afterwards, no locks.
//
// Layout: an array of Flow records (one cache line each) and a bucket index. A full-NAT
// flow is found by two keys, the client side (client -> VIP, "forward") and the backend
// side (backend -> local ip:port, "reverse"); both point at the same record. Buckets are
// one 64-byte line: 8 signatures then 8 slot references. Each key may live in either of
// two buckets chosen from its hash ("two choices"), inserted into the emptier one, so a
// lookup touches at most two lines and overflow is vanishingly rare at the default load.
//
// Ageing: every record carries an expiry time (caller-defined ticks). An expired record is
// treated as absent by lookup() and reclaimed by lookup() or age(). When no record is free,
// insert() evicts the oldest embryonic flow (SYN seen, handshake unfinished); established
// flows are never evicted to make room.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "dataplane/flow/key.h"

namespace rondo::dp {

enum class FlowState : uint8_t {
  kFree = 0,
  kSynSent,      // client SYN forwarded (embryonic)
  kSynRecv,      // backend SYN-ACK seen (embryonic)
  kEstablished,  // handshake complete
  kClosing,      // FIN or RST seen
  kUdp,
};

/// True for states that may be evicted to make room for a new flow.
inline bool flow_embryonic(FlowState s) {
  return s == FlowState::kSynSent || s == FlowState::kSynRecv;
}

enum class FlowDir : uint8_t { kForward = 0, kReverse = 1 };

struct alignas(64) Flow {
  FlowKey fwd;  // as received from the client: client -> vip
  FlowKey rev;  // as received from the backend: backend -> local ip:port
  uint64_t expires = 0;
  uint32_t backend_id = 0;
  uint16_t vip_id = 0;
  FlowState state = FlowState::kFree;
  uint8_t user = 0;  // free for the pipeline
  uint32_t lru_prev = 0;  // embryonic list links (internal)
  uint32_t lru_next = 0;
};
static_assert(sizeof(Flow) == 64);

class FlowTable {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  /// Called for every record the table removes by itself (expiry, eviction), before the
  /// record is reused, so the owner can free the local port and fix counters. It must not
  /// call back into the table.
  using ReleaseFn = void (*)(void* ctx, const Flow& f);

  struct Hit {
    uint32_t idx = kNone;
    FlowDir dir = FlowDir::kForward;
    bool found() const { return idx != kNone; }
  };

  enum class InsertStatus : uint8_t { kOk, kFull, kExists };
  struct InsertResult {
    InsertStatus status;
    uint32_t idx;  // valid when kOk
  };

  /// capacity: number of flows (each flow has two keys). Allocates and touches everything now,
  /// so construct it on the worker's NUMA node. Throws std::invalid_argument for capacity 0.
  FlowTable(uint32_t capacity, ReleaseFn release, void* release_ctx);
  ~FlowTable();
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  /// A key's hash and its two buckets, computed once and reused by the burst stages.
  struct Probe {
    uint32_t hash;
    uint32_t b1, b2;
  };
  Probe probe(uint32_t hash) const { return Probe{hash, bucket1(hash), bucket2(hash)}; }

  /// Prefetch the buckets that lookup() will read.
  void prefetch(const Probe& p) const {
    __builtin_prefetch(&buckets_[p.b1], 0, 3);
    __builtin_prefetch(&buckets_[p.b2], 0, 3);
  }
  void prefetch(uint32_t hash) const { prefetch(probe(hash)); }
  /// Prefetch the records whose signature matches (read the buckets: prefetch them first).
  void prefetch_record(const Probe& p) const;
  void prefetch_record(uint32_t hash) const { prefetch_record(probe(hash)); }

  /// Find a key (either direction). hash must be flow_hash(k).
  /// An expired record is released and reported as not found.
  Hit lookup(const FlowKey& k, const Probe& p, uint64_t now);
  Hit lookup(const FlowKey& k, uint32_t hash, uint64_t now) { return lookup(k, probe(hash), now); }

  /// Create a flow reachable by both keys, in state `state`, expiring at `expires`.
  /// kFull: no free record and no embryonic record to evict, or a key's buckets are full.
  /// kExists: one of the keys is already present (and not expired).
  InsertResult insert(const FlowKey& fwd, const FlowKey& rev, FlowState state, uint64_t expires,
                      uint64_t now);

  Flow& at(uint32_t idx) { return flows_[idx]; }
  const Flow& at(uint32_t idx) const { return flows_[idx]; }

  /// Change a flow's state and expiry, keeping the embryonic list right.
  void update(uint32_t idx, FlowState state, uint64_t expires);

  /// Release (hook included) and remove the oldest embryonic flow; false if there is none.
  /// For resources other than records running out first (e.g. local ports under a SYN flood).
  bool evict_embryonic();

  /// Remove a flow (both keys). Does not call the release hook: the caller owns it.
  void erase(uint32_t idx);

  /// Examine up to `budget` records from a rotating hand; release and erase expired ones.
  /// Returns how many were reclaimed.
  uint32_t age(uint64_t now, uint32_t budget);

  uint32_t size() const { return used_; }
  uint32_t capacity() const { return capacity_; }
  uint32_t embryonic() const { return embryonic_count_; }
  /// Bytes allocated for this table (records + buckets + free stack).
  size_t memory_bytes() const;

 private:
  // One cache line: signatures first so a probe reads a single 32-byte run, then the refs.
  struct alignas(64) Bucket {
    uint32_t sig[8];
    uint32_t ref[8];  // record index * 2 + direction
  };
  // (implementation detail, see table.cpp)
  // hash * n / 2^32 maps a 32-bit hash onto [0, n) without a division (Lemire's fastrange).
  uint32_t bucket1(uint32_t hash) const {
    return static_cast<uint32_t>((uint64_t{hash} * n_buckets_) >> 32);
  }
  // The second choice: one more CRC round over the hash, so it depends on all 32 bits.
  uint32_t bucket2(uint32_t hash) const {
    const uint32_t b1 = bucket1(hash);
    const uint32_t b2 = static_cast<uint32_t>((uint64_t{flow_rehash(hash)} * n_buckets_) >> 32);
    // Two choices must be two buckets; n_buckets_ >= 2.
    return b2 != b1 ? b2 : (b1 + 1 == n_buckets_ ? 0 : b1 + 1);
  }
  bool bucket_find(const FlowKey& k, const Probe& p, uint32_t* slot_ref) const;
  bool bucket_add(uint32_t hash, uint32_t ref, uint64_t now);
  void bucket_del(uint32_t hash, uint32_t ref);
  uint32_t reclaim_expired(uint32_t bucket, uint64_t now, uint32_t keep);
  void lru_push(uint32_t idx);
  void lru_unlink(uint32_t idx);
  void release(uint32_t idx);

  uint32_t capacity_;
  uint32_t n_buckets_;
  Flow* flows_ = nullptr;
  Bucket* buckets_ = nullptr;
  uint32_t* free_ = nullptr;  // stack of free record indices
  uint32_t free_top_ = 0;
  uint32_t used_ = 0;
  uint32_t embryonic_count_ = 0;
  uint32_t lru_head_ = kNone;  // oldest embryonic
  uint32_t lru_tail_ = kNone;
  uint32_t hand_ = 0;
  ReleaseFn release_fn_;
  void* release_ctx_;
};

}  // namespace rondo::dp

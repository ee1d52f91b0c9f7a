// Local ports for full-NAT, chosen as a kernel chooses ephemeral ports (docs/security.md,
// "Local ports"):
//   - unique per (local ip, local port, backend ip, backend port), not per local ip: two
//     backends may share a local port, so each (local ip, backend) pair has the whole range;
//   - in an order nobody outside can predict: RFC 6056 algorithm 4 ("double-hash"). The
//     search for (local ip, backend) starts at a keyed hash of the pair plus a counter from
//     a small table indexed by another part of that hash, and the counter moves on with
//     every port handed out. The counters start at random values in every process, so a
//     restarted dataplane does not replay its predecessor's order;
//   - never reused for the same backend within the quarantine (longer than the backends'
//     TIME_WAIT) after a connection that reached the backend's accept queue ended.
// Which ports a worker may hand out is PortOwnership's (the low bits): replies are steered
// to the owner by them.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/flow/siphash.h"

namespace rondo::dp {

/// Which worker owns a local port: decided by the port's low bits (port & mask), so that
/// a NIC can steer every worker's replies to its queue with one masked match per residue
/// (rte_flow), and so that software steering needs one table lookup. mask + 1 is the
/// smallest power of two >= the number of workers; residues are dealt round-robin.
class PortOwnership {
 public:
  static constexpr uint32_t kMaxWorkers = 64;
  explicit PortOwnership(uint32_t n_workers);
  uint32_t owner(uint16_t port) const { return owner_[port & mask_]; }
  uint16_t mask() const { return mask_; }
  uint32_t workers() const { return n_; }

 private:
  uint32_t n_;
  uint16_t mask_ = 0;
  uint8_t owner_[kMaxWorkers] = {};
};

/// A full-NAT connection's tuple towards the backend. Addresses and ports in network order.
struct PortTuple {
  uint32_t local_ip = 0;
  uint32_t backend_ip = 0;
  uint16_t local_port = 0;
  uint16_t backend_port = 0;
  bool operator==(const PortTuple&) const = default;
};

/// Tuples that must not be used again before a deadline: a FIFO ring (every entry gets the
/// same quarantine, so deadlines come in order) and an open-addressing index over it
/// (linear probing, backward-shift deletion). Fixed capacity, allocated at construction;
/// O(1) per add and per look-up. When it is full of live entries, the oldest is released
/// early and counted: the bound on memory wins over the quarantine.
class Quarantine {
 public:
  /// Called for each entry that leaves (expired or released early), with the backend id
  /// given to add(), so the owner can keep per-backend counts.
  using LeaveFn = void (*)(void* ctx, uint32_t backend_id);

  Quarantine(uint32_t capacity, const HashKey& key, LeaveFn leave, void* ctx);

  /// Hold t until `until` (caller's ticks).
  void add(const PortTuple& t, uint32_t backend_id, uint64_t until, uint64_t now);
  /// True if t is held at `now`.
  bool holds(const PortTuple& t, uint64_t now);
  /// Let go of every entry whose deadline has passed.
  void expire(uint64_t now);

  uint32_t size() const { return count_; }
  uint32_t capacity() const { return cap_; }
  uint64_t released_early() const { return released_early_; }

 private:
  struct Entry {
    PortTuple t;
    uint32_t backend_id;
    uint32_t hash;
    uint64_t until;
  };
  uint32_t hash_of(const PortTuple& t) const;
  void pop_head();

  uint32_t cap_;
  HashKey key_;
  std::vector<Entry> ring_;
  std::vector<uint32_t> index_;  // ring position + 1; 0 = empty
  uint32_t index_mask_;
  uint32_t head_ = 0, count_ = 0;
  uint64_t released_early_ = 0;
  LeaveFn leave_;
  void* ctx_;
};

/// The keyed search order of local ports for one worker.
class PortPicker {
 public:
  /// How many candidates pick() tries before giving up on a local ip: a bound on the work
  /// per new connection. A range that is nearly all busy for one backend fails sooner
  /// than a kernel would (which tries them all); no_local_port counts it.
  static constexpr uint32_t kMaxTries = 128;

  /// Ports [lo, hi] (host order) that `worker` owns. seed: the counters' start (random in
  /// the dataplane; fixed in tests).
  PortPicker(uint16_t lo, uint16_t hi, const PortOwnership& own, uint32_t worker,
             const HashKey& key, uint64_t seed);

  /// The first port in (local ip, backend)'s keyed order for which taken(port) is false
  /// (network-order port in *port). false after kMaxTries candidates.
  template <typename Taken>
  bool pick(uint32_t local_ip, uint32_t backend_ip, uint16_t backend_port, Taken&& taken,
            uint16_t* port);

  /// Ports this worker may hand out per (local ip, backend).
  uint32_t share() const { return share_; }

 private:
  uint16_t lo_;
  uint32_t range_;
  uint32_t share_ = 0;
  uint16_t mask_;
  uint32_t worker_;
  PortOwnership own_;
  HashKey key_;
  std::array<uint16_t, 256> perturb_{};
};

template <typename Taken>
bool PortPicker::pick(uint32_t local_ip, uint32_t backend_ip, uint16_t backend_port, Taken&& taken,
                      uint16_t* port) {
  if (share_ == 0) return false;
  const uint32_t in[3] = {local_ip, backend_ip, backend_port};
  const uint64_t h = siphash<1, 3>(key_, in, 10);
  uint16_t& ctr = perturb_[(h >> 32) & 0xff];
  const uint32_t base = static_cast<uint32_t>(h) + ctr;
  // Consecutive candidates of the pair: the whole range in a keyed rotation. Ports of other
  // workers are stepped over (they cost no try).
  uint32_t tries = 0;
  for (uint32_t i = 0; i < range_ && tries < kMaxTries; ++i) {
    const auto p = static_cast<uint16_t>(lo_ + (base + i) % range_);
    if (own_.owner(p) != worker_) continue;
    ++tries;
    const uint16_t be = std::endian::native == std::endian::little ? __builtin_bswap16(p) : p;
    if (taken(be)) continue;
    ctr = static_cast<uint16_t>(ctr + i + 1);
    *port = be;
    return true;
  }
  ctr = static_cast<uint16_t>(ctr + 1);
  return false;
}

}  // namespace rondo::dp

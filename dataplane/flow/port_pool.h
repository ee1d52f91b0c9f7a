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
#include <cstring>
#include <memory>
#include <string>

#include "dataplane/flow/siphash.h"
#include "dataplane/flow/store_file.h"

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

/// The same for a v6 connection (and a NAT46 one: local and backend addresses are v6), 36
/// bytes. Addresses and ports in network order.
struct PortTuple6 {
  uint8_t local_ip[16] = {};
  uint8_t backend_ip[16] = {};
  uint16_t local_port = 0;
  uint16_t backend_port = 0;
  bool operator==(const PortTuple6&) const = default;
};

/// Where a Quarantine keeps its ring when it must outlive the process (docs/hot-restart.md):
/// a plain file, on tmpfs or hugetlbfs, as FlowStore. Locked (flock) while the quarantine
/// lives.
struct QuarantineStore {
  std::string path;
  bool adopt = true;  // false: always start empty (the file is reinitialised)
};

/// Where the ring stands: written by one 8-byte store, so a kill never separates the two.
struct alignas(8) QuarantineCursor {
  uint32_t head;   // ring position of the oldest entry
  uint32_t count;  // entries from head on, wrapping
};

/// The file's first page (its format). The ring follows at ring_off: `capacity` entries of
/// {tuple (network order); uint32 backend_id; uint32 hash; uint32 0; uint64 until}, the
/// in-memory array byte for byte: 32 bytes with a PortTuple (12), 56 with a PortTuple6 (36).
/// The magic names the tuple type, so a v4 quarantine's file is never adopted as a v6 one.
/// The file's size is a multiple of 2 MiB (hugetlbfs). The index over the ring is not in the
/// file: an adopter rebuilds it.
struct QuarantineStoreHeader {
  static constexpr char kMagic[8] = {'R', 'O', 'N', 'D', 'O', 'P', 'Q', '1'};   // PortTuple
  static constexpr char kMagic6[8] = {'R', 'O', 'N', 'D', 'O', 'P', 'Q', '6'};  // PortTuple6
  /// Bumped whenever the entry or this header change layout (static_asserts in
  /// port_pool.cpp pin them).
  static constexpr uint32_t kVersion = 1;
  char magic[8];  // written last when the file is made, so a half-made file is refused
  uint32_t version;
  uint32_t capacity;
  uint64_t key_fingerprint;  // SipHash-2-4 of a fixed string under the hash key: never the key
  // The writer's `now` at its last add() or expire() that let an entry go: an adopter tells
  // from it whether its clock goes on from the writer's or restarted (Quarantine's store
  // constructor).
  uint64_t clock;
  QuarantineCursor cursor;
  uint64_t ring_off;  // byte offset of the ring
  uint64_t bytes;     // the file's size
};

/// What opening a QuarantineStore did (Quarantine::adoption()).
struct QuarantineAdoption {
  using Outcome = StoreOutcome;
  Outcome outcome = Outcome::kCreated;
  std::string reason;      // kRefused: why, one loggable phrase naming the field
  uint32_t adopted = 0;    // entries kept: still held
  uint32_t discarded = 0;  // entries with impossible values (a backend id past
                           // api::kMaxBackendId, a hash that is not the tuple's): dropped
  uint32_t expired = 0;    // entries whose deadline had passed at adoption: dropped
  int64_t expiry_shift = 0;  // added to every adopted deadline (see the store constructor)
  uint64_t micros = 0;       // time adoption took
};

/// The quarantine's store magic and name for a tuple type.
template <typename Tuple>
struct QuarantineTraits;
template <>
struct QuarantineTraits<PortTuple> {
  static constexpr const char (&kStoreMagic)[8] = QuarantineStoreHeader::kMagic;
  static constexpr const char* kKind = "a local-port quarantine";
};
template <>
struct QuarantineTraits<PortTuple6> {
  static constexpr const char (&kStoreMagic)[8] = QuarantineStoreHeader::kMagic6;
  static constexpr const char* kKind = "a v6 local-port quarantine";
};

/// Tuples that must not be used again before a deadline: a FIFO ring (every entry gets the
/// same quarantine, so deadlines come in order) and an open-addressing index over it
/// (linear probing, backward-shift deletion). Fixed capacity, allocated at construction;
/// O(1) per add and per look-up. When it is full of live entries, the oldest is released
/// early and counted: the bound on memory wins over the quarantine.
///
/// Given a QuarantineStore, the ring and where it stands (QuarantineCursor) live in a file
/// mapped MAP_SHARED, so a new process adopts the tuples a killed one still held (the index
/// stays in private memory and is rebuilt). Crash consistency: add() writes the entry, then
/// the cursor that takes it in (a compiler fence between: kill -9 stops a thread between two
/// instructions and the kernel drains the store buffer, so program order is what the file
/// holds). A process killed between the two loses that one entry: the quarantine errs
/// towards letting a tuple go early, never towards holding a torn entry.
///
/// One class template over the tuple type: Quarantine (PortTuple) and Quarantine6
/// (PortTuple6), both instantiated in port_pool.cpp only.
template <typename Tuple>
class BasicQuarantine {
 public:
  /// Called for each entry that leaves (expired or released early), with the backend id
  /// given to add(), so the owner can keep per-backend counts. Not called for entries an
  /// adoption drops (the owner never counted them): the owner counts the adopted ones with
  /// for_each().
  using LeaveFn = void (*)(void* ctx, uint32_t backend_id);

  /// In private memory. Throws std::invalid_argument for capacity 0 or past 2^30.
  BasicQuarantine(uint32_t capacity, const HashKey& key, LeaveFn leave, void* ctx);
  /// The same, the ring in `store`'s file. A file whose header matches (magic, version,
  /// capacity, key fingerprint, cursor in range, layout, size) is adopted: each entry in the
  /// ring is checked (its backend id in range, its hash the tuple's), its deadline moved by
  /// the clock rule, and kept if still in the future; anything else starts empty, with the
  /// reason in adoption(). `now`: the adopter's clock, in the caller's ticks. If `now` is at
  /// or past the writer's clock (header.clock), the clock goes on (the same boot's TSC) and
  /// deadlines are kept; if it is behind, the clock restarted and every deadline is shifted
  /// by now - header.clock. The writer's clock is the time of its last add or expiry, so a
  /// writer that then ran idle for a while left an older clock: the shift is then smaller
  /// and tuples are held longer, not shorter. Throws std::system_error if the file cannot be
  /// opened, locked (another live quarantine has it), sized or mapped.
  BasicQuarantine(uint32_t capacity, const HashKey& key, LeaveFn leave, void* ctx,
             const QuarantineStore& store, uint64_t now);
  ~BasicQuarantine();
  BasicQuarantine(const BasicQuarantine&) = delete;
  BasicQuarantine& operator=(const BasicQuarantine&) = delete;

  /// Hold t until `until` (caller's ticks).
  void add(const Tuple& t, uint32_t backend_id, uint64_t until, uint64_t now);
  /// True if t is held at `now`.
  bool holds(const Tuple& t, uint64_t now);
  /// Let go of every entry whose deadline has passed.
  void expire(uint64_t now);

  /// Call f(tuple, backend_id, until) for every entry held, oldest first: after adoption,
  /// the owner rebuilds the per-backend counts it keeps through LeaveFn.
  template <typename F>
  void for_each(F&& f) const {
    for (uint32_t k = 0, pos = head_; k < count_; ++k, pos = pos + 1 == cap_ ? 0 : pos + 1)
      f(ring_[pos].t, ring_[pos].backend_id, ring_[pos].until);
  }

  uint32_t size() const { return count_; }
  uint32_t capacity() const { return cap_; }
  uint64_t released_early() const { return released_early_; }
  /// What the QuarantineStore constructor found (kCreated without a store).
  const QuarantineAdoption& adoption() const { return adoption_; }

 private:
  // 32 bytes with a PortTuple, 56 with a PortTuple6 (the file's entry: static_asserts in
  // port_pool.cpp).
  struct Entry {
    Tuple t;
    uint32_t backend_id;
    uint32_t hash;
    uint32_t zero;  // explicit padding: the file holds no uninitialised bytes
    uint64_t until;
  };
  uint32_t hash_of(const Tuple& t) const;
  static uint64_t slot(uint32_t hash, uint32_t pos) { return uint64_t{hash} << 32 | (pos + 1); }
  static uint32_t slot_hash(uint64_t s) { return static_cast<uint32_t>(s >> 32); }
  static uint32_t slot_pos(uint64_t s) { return static_cast<uint32_t>(s) - 1; }
  void alloc_index();
  void index_put(uint32_t pos);
  void pop_head();
  void publish();
  void map_store(const QuarantineStore& store, uint64_t now);
  QuarantineAdoption adopt(uint64_t now);

  uint32_t cap_;
  HashKey key_;
  Entry* ring_ = nullptr;      // the file's, or own_ring_'s
  // An index slot: the entry's hash in the high half, its ring position + 1 in the low
  // half; 0 = empty (always private memory). With the hash beside the position, a probe
  // that meets another tuple's slot, and the backward shift of a deletion, read no ring
  // entry: the ring is as large as the quarantine and cold, the index is the line at hand.
  uint64_t* index_ = nullptr;
  uint32_t index_mask_ = 0;
  uint32_t head_ = 0, count_ = 0;
  QuarantineStoreHeader* hdr_;  // the file's, or own_hdr_ (cursor and clock go there)
  uint64_t released_early_ = 0;
  LeaveFn leave_;
  void* ctx_;
  std::unique_ptr<Entry[]> own_ring_;
  std::unique_ptr<uint64_t[]> own_index_;
  QuarantineStoreHeader own_hdr_{};
  std::unique_ptr<MappedStore> store_;
  QuarantineAdoption adoption_;
};

using Quarantine = BasicQuarantine<PortTuple>;
using Quarantine6 = BasicQuarantine<PortTuple6>;
extern template class BasicQuarantine<PortTuple>;
extern template class BasicQuarantine<PortTuple6>;

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
            uint16_t* port) {
    // The hash input is 10 bytes, {local ip, backend ip, the low 2 bytes of the port word}:
    // kept as it is, so v4's order of ports does not change.
    const uint32_t in[3] = {local_ip, backend_ip, backend_port};
    return pick_from(siphash<1, 3>(key_, in, 10), taken, port);
  }
  /// The same for a v6 (local ip, backend) pair (network order), its keyed order from the
  /// 34 bytes {local ip, backend ip, backend port}. The counters are shared with v4's.
  template <typename Taken>
  bool pick6(const uint8_t (&local_ip)[16], const uint8_t (&backend_ip)[16],
             uint16_t backend_port, Taken&& taken, uint16_t* port) {
    uint8_t in[34];
    std::memcpy(in, local_ip, 16);
    std::memcpy(in + 16, backend_ip, 16);
    std::memcpy(in + 32, &backend_port, 2);
    return pick_from(siphash<1, 3>(key_, in, sizeof in), taken, port);
  }

  /// Ports this worker may hand out per (local ip, backend).
  uint32_t share() const { return share_; }
  /// Where the search stands, to go on from there in a restarted process (state_dir.h).
  const std::array<uint32_t, 256>& counters() const { return perturb_; }
  void set_counters(const std::array<uint32_t, 256>& c) {
    for (size_t i = 0; i < c.size(); ++i) perturb_[i] = range_ ? c[i] % range_ : 0;
  }

 private:
  template <typename Taken>
  bool pick_from(uint64_t h, Taken&& taken, uint16_t* port);

  uint16_t lo_;
  uint32_t range_;
  uint32_t share_ = 0;
  uint16_t mask_;
  uint32_t worker_;
  PortOwnership own_;
  HashKey key_;
  // Counters, kept modulo the range: a counter that wrapped at 2^16 instead would jump the
  // search back onto the ports it handed out last (all of them quarantined).
  std::array<uint32_t, 256> perturb_{};
};

template <typename Taken>
bool PortPicker::pick_from(uint64_t h, Taken&& taken, uint16_t* port) {
  if (share_ == 0) return false;
  uint32_t& ctr = perturb_[(h >> 32) & 0xff];
  const uint32_t base = static_cast<uint32_t>(h) % range_ + ctr;  // < 2 * range_
  // Consecutive candidates of the pair: the whole range in a keyed rotation. Ports of other
  // workers are stepped over (they cost no try).
  uint32_t tries = 0;
  for (uint32_t i = 0; i < range_ && tries < kMaxTries; ++i) {
    const auto p = static_cast<uint16_t>(lo_ + (base + i) % range_);
    if (own_.owner(p) != worker_) continue;
    ++tries;
    const uint16_t be = std::endian::native == std::endian::little ? __builtin_bswap16(p) : p;
    if (taken(be)) continue;
    ctr = (ctr + i + 1) % range_;
    *port = be;
    return true;
  }
  ctr = (ctr + 1) % range_;
  return false;
}

}  // namespace rondo::dp

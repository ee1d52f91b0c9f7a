// Per-lcore flow table: fixed capacity chosen at start, no allocation afterwards, no locks.
//
// One class template over the key type (decision 3 of the IPv6 plan): FlowTable holds v4
// flows (16-byte FlowKey, 64-byte Flow), FlowTable6 v6 ones (40-byte FlowKey6, 128-byte Flow6),
// so the v4 record keeps its size and v4 lookups their cost.
//
// Layout: an array of Flow records (one cache line each; Flow6: two) and a bucket index. A
// full-NAT flow is found by two keys, the client side (client -> VIP, "forward") and the backend
// side (backend -> local ip:port, "reverse"); both point at the same record. Buckets are
// one 64-byte line: 8 signatures then 8 slot references. Each key may live in either of
// two buckets chosen from its hash ("two choices"), inserted into the emptier one, so a
// lookup touches at most two lines. When both are full, keys already in them move to their
// other buckets to make room (cuckoo displacement, a bounded walk), which lets a full table
// fill 3/4 of the slots instead of half: a bucket line for every 6 keys, capacity / 3 lines.
//
// Hashing (docs/security.md, "Keyed hashing"): flow_hash() (flow_hash6() for v6 keys) is
// SipHash-1-3 under a secret key given at construction, 64 bits. Bucket 1 comes from the low
// 32 bits, bucket 2 from the high 32 (two independent choices, not one 32-bit value hashed
// again), and the signature is their XOR. Without the key a sender cannot find tuples that share a bucket
// pair; with a linear hash (CRC32-C, even with a secret seed) it can.
//
// Ageing: every record carries an expiry time (caller-defined ticks). An expired record is
// treated as absent by lookup() and reclaimed by lookup() or by the sweep: a hand walks the
// records in index order, paced by time (sweep()), so every record is looked at once per
// sweep interval however often the owner calls, and a flow is reclaimed no later than its
// expiry + one interval (while the loop keeps pace: see sweep()).
//
// Reclaim under pressure (docs/security.md): when no record is free, insert() takes the
// place of one reclaimable flow (reclaim_one()), and the owner does the same for one
// backend's flows when that backend's local ports run short (reclaim_matching()). The order
// is by class, then oldest first within the class:
//   1. embryonic (kSynSent, kSynRecv): handshakes never completed, by when they started, if
//      quiet (set_embryonic_bound; a handshake in progress goes after classes 2 and 3);
//   2. closed (kClosing, kTimeWait, kReset): by when they closed;
//   3. idle UDP (kUdp): the one idle longest, within the bound given at touch_idle().
// An established TCP flow is never reclaimed to make room: it only leaves by expiry.
//
// Outliving the process (docs/hot-restart.md): given a FlowStore, the arrays live in a file
// mapped MAP_SHARED instead of private memory, behind a FlowStoreHeader, and a new process
// that opens the same file adopts the flows that are consistent (FlowAdoption).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "dataplane/flow/key.h"
#include "dataplane/flow/store_file.h"

namespace rondo::dp {

enum class FlowState : uint8_t {
  kFree = 0,
  kSynSent,      // client SYN forwarded (embryonic)
  kSynRecv,      // backend SYN-ACK seen (embryonic)
  kEstablished,  // handshake complete
  kClosing,      // FINs from both sides, not both acknowledged yet (or a FIN before the
                 // handshake completed)
  kUdp,
  kHalfClosed,   // established, then a FIN from one side: the other may still send (alive)
  kTimeWait,     // both FINs sent and acknowledged: kept for late retransmissions
  kReset,        // an RST with exactly the expected sequence number
  // A new state goes here and bumps FlowStoreHeader::kVersion: adoption drops a record
  // whose state is past kLastState as garbage.
};
inline constexpr FlowState kLastState = FlowState::kReset;

/// Classes of flows that may be reclaimed to make room for a new one, in reclaim order.
enum class Reclaim : uint8_t {
  kEmbryonic = 0,  // handshake never completed
  kClosed,         // both FINs, time-wait, or reset
  kIdleUdp,        // UDP, reclaimed idle longest first
  kNone,           // never reclaimed (established TCP)
};
inline constexpr uint32_t kReclaimClasses = static_cast<uint32_t>(Reclaim::kNone);

/// The reclaim class of a state: the one place that decides what may make room.
inline Reclaim flow_reclaim_class(FlowState s) {
  switch (s) {
    case FlowState::kSynSent:
    case FlowState::kSynRecv: return Reclaim::kEmbryonic;
    case FlowState::kClosing:
    case FlowState::kTimeWait:
    case FlowState::kReset: return Reclaim::kClosed;
    case FlowState::kUdp: return Reclaim::kIdleUdp;
    default: return Reclaim::kNone;
  }
}

/// True for handshakes never completed (the first class to be reclaimed).
inline bool flow_embryonic(FlowState s) { return flow_reclaim_class(s) == Reclaim::kEmbryonic; }

enum class FlowDir : uint8_t { kForward = 0, kReverse = 1 };

/// A flow's record, one per flow, over the key type of its table: Flow (v4, FlowKey, one
/// 64-byte line) or Flow6 (v6, FlowKey6, 112 bytes used of two lines).
template <typename Key>
struct alignas(64) BasicFlow {
  Key fwd;  // as received from the client: client -> vip
  Key rev;  // as received from the backend: backend -> local ip:port
  uint64_t expires = 0;
  uint32_t backend_id = 0;
  uint16_t vip_id = 0;
  FlowState state = FlowState::kFree;
  uint8_t user = 0;  // the pipeline's: a SYN-proxied flow's flags (fwd/synproxy.h)
  // Links of the reclaim list of the flow's class (internal): a flow is on at most one.
  uint32_t lru_prev = 0;
  uint32_t lru_next = 0;
  // Where each key sits in the bucket index (internal), [FlowDir]: bucket * 8 + slot. Set
  // when the key is placed and whenever it moves, so erasing a flow goes straight to its two
  // slots: no hash, no probe. Indices, not pointers: valid in any process that maps the table.
  uint32_t loc[2] = {};
};
using Flow = BasicFlow<FlowKey>;
using Flow6 = BasicFlow<FlowKey6>;
static_assert(sizeof(Flow) == 64);
// 40 + 40 + 8 + 4 + 2 + 1 + 1 + 8 + 8 = 112 bytes, padded to two lines (16 spare).
static_assert(sizeof(Flow6) == 128);

/// One direction of a tracked connection.
struct TcpDir {
  uint32_t end = 0;     // highest sequence number sent, + 1 (SYN and FIN count)
  uint32_t maxend = 0;  // right edge this side may send to (the peer's ack + window)
  uint32_t maxwin = 0;  // largest window this side advertised, scaled; 0: nothing seen yet
  uint8_t scale = 0;    // shift applied to this side's windows (0 unless both SYNs offered it)
  uint8_t flags = 0;    // kFin, kFinAcked, kWscale
  uint16_t aux = 0;     // half of TcpTrack's seq_delta (no room elsewhere)
  static constexpr uint8_t kFin = 0x01;       // this side sent a FIN
  static constexpr uint8_t kFinAcked = 0x02;  // and the peer acknowledged it
  static constexpr uint8_t kWscale = 0x04;    // this side's SYN offered window scaling
  static constexpr uint8_t kEstablished = 0x08;  // (client side) the handshake completed once
};

/// The side-table entry of a TCP flow (tcp_state.h keeps it): [0] the client's direction,
/// [1] the backend's. 32 bytes, half a cache line.
///
/// Memory per flow, all in: the record (64) + this entry (32) + its share of the buckets (two
/// keys, 8-byte slots, buckets sized for a 3/4 load when full: 64 / 3 = 21.3) = 117.3
/// bytes, 1.09 GiB for 10M flows. A v6 flow (FlowTable6) takes 128 + 32 + 21.3 = 181.3.
/// Free records are chained through the
/// record itself, so there is no free stack. The v4 record is full (its last 8 bytes locate
/// its two keys); room left for later work: Flow::user. Hot restart checks a record against
/// the buckets (Flow::loc) and the file's header (FlowStoreHeader), not a word in every record.
struct alignas(32) TcpTrack {
  TcpDir dir[2];
  // Sequence translation (SYN cookies, and later anything that inserts bytes at the start of
  // a stream; fwd/seq_xlate.h): backend ISN - the ISN the client was given. Taken from the
  // backend's sequence numbers on the way to the client, added to the client's
  // acknowledgements (and SACK blocks) on the way to the backend. 0: none (tcp_track_syn
  // clears it). Kept in the two directions' spare halves: the Flow record's last 8 bytes
  // locate its keys, and a flow with a seq_delta is always TCP.
  uint32_t seq_delta() const { return dir[0].aux | uint32_t{dir[1].aux} << 16; }
  void set_seq_delta(uint32_t d) {
    dir[0].aux = static_cast<uint16_t>(d);
    dir[1].aux = static_cast<uint16_t>(d >> 16);
  }
};
static_assert(sizeof(TcpTrack) == 32);

/// A flow's age and traffic (side table, only with flow meters on: FlowTable's `meters`):
/// what `rondoctl flow show` reports. [0] client -> backend, [1] backend -> client. 32 bytes:
/// with meters on, a v4 flow takes 149.3 bytes instead of 117.3.
struct alignas(32) FlowMeter {
  uint64_t created = 0;        // the `now` of the packet that made the flow
  uint32_t packets[2] = {};    // wrap after 2^32
  uint64_t bytes[2] = {};
};
static_assert(sizeof(FlowMeter) == 32);

/// Where a FlowTable keeps its arrays when they must outlive the process. A plain file,
/// not a memfd: a file survives kill -9 with no other process holding it. Put it on tmpfs
/// (/dev/shm, or a state dir on tmpfs) or hugetlbfs (/dev/hugepages): memory, gone at
/// reboot, which is right for flows (a TSC clock restarts there too). The table holds an
/// exclusive flock on it while it lives, so two processes never write one table.
struct FlowStore {
  std::string path;
  bool adopt = true;  // false: always start empty (the file is reinitialised)
};

/// The file's first page (its format): the table's arrays follow at the offsets given, each
/// one the in-memory array byte for byte (Flow, Bucket {uint32 sig[8]; uint32 ref[8]},
/// TcpTrack, FlowMeter), 4 KiB aligned, 2 MiB aligned when 2 MiB or more; the file's size
/// is a multiple of 2 MiB (hugetlbfs).
/// The magic names the key type (FlowKeyTraits::kStoreMagic): a v4 table's file is never
/// adopted as a v6 one, nor the other way round.
struct FlowStoreHeader {
  static constexpr char kMagic[8] = {'R', 'O', 'N', 'D', 'O', 'F', 'T', '1'};   // FlowTable
  static constexpr char kMagic6[8] = {'R', 'O', 'N', 'D', 'O', 'F', 'T', '6'};  // FlowTable6
  /// Bumped whenever Flow (Flow6), FlowKey (FlowKey6), TcpTrack, FlowMeter, the bucket or this
  /// header change layout, or FlowState gains a value (static_asserts in table.cpp pin them).
  static constexpr uint32_t kVersion = 1;
  char magic[8];  // written last when the file is made, so a half-made file is refused
  uint32_t version;
  uint32_t capacity;
  uint32_t n_buckets;
  uint32_t meters;           // 1: the FlowMeter array is present
  uint64_t key_fingerprint;  // SipHash-2-4 of a fixed string under the hash key: never the key
  // The writer's `now` at its last age()/sweep(), so an adopter can tell whether its clock
  // goes on from the writer's (same boot's TSC: expiries kept as they are) or restarted.
  uint64_t clock;
  uint64_t flows_off, buckets_off, tcp_off, meters_off;  // byte offsets; meters_off 0: none
  uint64_t bytes;                                         // the file's size
};

/// What opening a FlowStore did (FlowTable::adoption()).
struct FlowAdoption {
  using Outcome = StoreOutcome;  // kCreated also when FlowStore::adopt is off
  Outcome outcome = Outcome::kCreated;
  std::string reason;          // kRefused: why, one loggable phrase; kAdopted with the key
                               // index rebuilt: that it was, and for how many flows
  uint32_t adopted = 0;        // flows kept
  uint32_t discarded = 0;      // records in a live state that failed the check, or found no
                               // slot in a rebuilt index (no_room): dropped
  uint32_t half_done = 0;      // free records a bucket slot still named (an insert or erase
                               // cut short): their slots cleared
  uint32_t slots_cleared = 0;  // bucket slots naming no consistent record, all causes
  int64_t expiry_shift = 0;    // added to every adopted expiry (see FlowTable's store ctor)
  uint32_t rebuilt_from = 0;   // the file's bucket count when it was not this table's (another
                               // sizing: the key index was rebuilt at this one), else 0
  uint32_t no_room = 0;        // of discarded: flows a rebuilt index had no slot for
  uint64_t writer_clock = 0;   // kAdopted: the writer's clock at its last age()/sweep()
  uint64_t micros = 0;         // time adoption took
};

/// A worker's v6 flow capacity when none is given (--flows6-per-worker): a quarter of its v4
/// capacity, at least 1024.
inline uint32_t default_flow6_capacity(uint32_t flow_capacity) {
  return flow_capacity / 4 > 1024 ? flow_capacity / 4 : 1024;
}

/// What the table needs to know about a key type: its record, its keyed hash and its store
/// file's magic.
template <typename Key>
struct FlowKeyTraits;
template <>
struct FlowKeyTraits<FlowKey> {
  using Record = Flow;
  static uint64_t hash(const FlowKey& k, const HashKey& key) { return flow_hash(k, key); }
  static constexpr const char (&kStoreMagic)[8] = FlowStoreHeader::kMagic;
  static constexpr const char* kName = "flow table";  // the store's owner, in errors
  static constexpr const char* kKind = "a flow table";  // what the magic marks
};
template <>
struct FlowKeyTraits<FlowKey6> {
  using Record = Flow6;
  static uint64_t hash(const FlowKey6& k, const HashKey& key) { return flow_hash6(k, key); }
  static constexpr const char (&kStoreMagic)[8] = FlowStoreHeader::kMagic6;
  static constexpr const char* kName = "v6 flow table";
  static constexpr const char* kKind = "a v6 flow table";
};

// What the table's operations return, the same types for every key type (code templated on
// the family handles both tables' results alike).

/// A key's signature and its two buckets (BasicFlowTable::probe).
struct FlowProbe {
  uint32_t hash;  // the signature kept in the bucket: never 0 (0 marks an empty slot)
  uint32_t b1, b2;
};

/// Where a lookup found a key: its record and the direction the key is.
struct FlowHit {
  uint32_t idx = UINT32_MAX;  // BasicFlowTable::kNone: not found
  FlowDir dir = FlowDir::kForward;
  bool found() const { return idx != UINT32_MAX; }
};

enum class FlowInsertStatus : uint8_t { kOk, kFull, kExists };
struct FlowInsertResult {
  FlowInsertStatus status;
  uint32_t idx;  // valid when kOk
  Reclaim reclaimed = Reclaim::kNone;  // the class of the flow that made room, if one did
};

/// The flow table over one key type: FlowTable (v4) and FlowTable6 (v6, and NAT46/NAT64
/// flows with their v4 side IPv4-mapped). Both are instantiated in table.cpp only.
template <typename Key>
class BasicFlowTable {
 public:
  using Record = typename FlowKeyTraits<Key>::Record;
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr uint32_t kNoLoc = UINT32_MAX;  // Flow::loc of a key that is not indexed

  /// Called for every record the table removes by itself (expiry, eviction), before the
  /// record is reused, so the owner can free the local port and fix counters. It must not
  /// call back into the table.
  using ReleaseFn = void (*)(void* ctx, const Record& f);

  using Hit = FlowHit;
  using InsertStatus = FlowInsertStatus;
  using InsertResult = FlowInsertResult;

  /// capacity: number of flows (each flow has two keys). key: the hash key (the dataplane
  /// derives it from its secret, HashUse::kFlowTable; a restarted process needs the same key
  /// to find flows it adopts). Allocates and touches everything now, so construct it on the
  /// worker's NUMA node. Throws std::invalid_argument for capacity 0.
  /// `meters`: keep a FlowMeter per flow (32 bytes more each; count() does nothing without).
  BasicFlowTable(uint32_t capacity, const HashKey& key, ReleaseFn release, void* release_ctx,
                 bool meters = false);
  /// The same, the arrays in `store`'s file. A file whose header matches (magic, version,
  /// capacity, meters, key fingerprint, layout and size for its bucket count) is adopted:
  /// its records and buckets are checked, nothing else trusted (adopt() in table.cpp). One
  /// whose bucket count is not this table's (a build that sized the buckets otherwise) is
  /// checked at its own count, then its key index is rebuilt at this table's: the records
  /// keep their indices, the file takes this table's layout (rebuild_index()). Anything else
  /// starts empty, with the reason in adoption(). `now`: the adopter's clock. Expiries are in the
  /// caller's ticks: if `now` is at or past the writer's last clock (header.clock) the clock
  /// is taken to go on (the same boot's TSC) and expiries are kept; if it is behind, the
  /// clock restarted and every expiry is shifted by now - header.clock, so a flow keeps the
  /// time it had left at the writer's last sweep (the time down is not charged).
  /// Throws std::system_error if the file cannot be opened, locked (another live table has
  /// it), sized or mapped.
  BasicFlowTable(uint32_t capacity, const HashKey& key, ReleaseFn release, void* release_ctx,
                 bool meters, const FlowStore& store, uint64_t now);
  ~BasicFlowTable();
  BasicFlowTable(const BasicFlowTable&) = delete;
  BasicFlowTable& operator=(const BasicFlowTable&) = delete;

  /// A key's signature and its two buckets, computed once (one hash) and reused by the
  /// burst stages.
  using Probe = FlowProbe;
  /// Hash a key under the table's key.
  Probe probe(const Key& k) const { return probe_of(FlowKeyTraits<Key>::hash(k, key_)); }

  /// Prefetch the buckets that lookup() will read.
  void prefetch(const Probe& p) const {
    __builtin_prefetch(&buckets_[p.b1], 0, 3);
    __builtin_prefetch(&buckets_[p.b2], 0, 3);
  }
  /// Prefetch the records whose signature matches (read the buckets: prefetch them first),
  /// and for a TCP key their tracker entries too.
  void prefetch_record(const Probe& p, bool tcp = false) const;

  /// Find a key (either direction). p must be probe(k).
  /// An expired record is released and reported as not found.
  Hit lookup(const Key& k, const Probe& p, uint64_t now);
  Hit lookup(const Key& k, uint64_t now) { return lookup(k, probe(k), now); }
  /// The same without touching anything: an expired record is reported as not found and
  /// left in place (for readers beside the fast path: inspection, tracing).
  Hit find(const Key& k, uint64_t now) const;

  /// Create a flow reachable by both keys, in state `state`, expiring at `expires`. With no
  /// record free, one flow is reclaimed first (reclaim_one; its class in `reclaimed`).
  /// kFull: no free record and nothing reclaimable, or a key's buckets are full.
  /// kExists: one of the keys is already present (and not expired).
  InsertResult insert(const Key& fwd, const Key& rev, FlowState state, uint64_t expires,
                      uint64_t now) {
    return insert(fwd, probe(fwd), rev, state, expires, now);
  }
  /// The same, with fwd's probe already computed (the pipeline hashed it for its lookup:
  /// a keyed hash per key is not free, so a new flow is not hashed twice).
  InsertResult insert(const Key& fwd, const Probe& fwd_probe, const Key& rev,
                      FlowState state, uint64_t expires, uint64_t now);
  /// The same for two keys the caller knows are absent, expired holders included: its
  /// lookup() of `fwd` just missed, and `rev` holds a local port the caller checked was free
  /// with lookup() (both probes are the ones those lookups used). So neither key is looked up
  /// again (debug builds assert it); never kExists. The new-connection path.
  InsertResult insert_new(const Key& fwd, const Probe& fwd_probe, const Key& rev,
                          const Probe& rev_probe, FlowState state, uint64_t expires,
                          uint64_t now);
  /// A flow found by its client key only (the DSR modes: replies do not come back through
  /// rondo, so there is no reverse key). `rev` is kept in the record, not indexed: the
  /// owner's notes (the backend's address). fwd must be absent, as for insert_new.
  InsertResult insert_one(const Key& fwd, const Probe& fwd_probe, const Key& rev,
                          FlowState state, uint64_t expires, uint64_t now);
  /// Whether flow idx has a client key only (insert_one).
  bool one_key(uint32_t idx) const { return flows_[idx].loc[1] == kNoLoc; }

  Record& at(uint32_t idx) { return flows_[idx]; }
  const Record& at(uint32_t idx) const { return flows_[idx]; }
  /// The TCP tracker of a flow (side table; meaningful for TCP flows only, and only after the
  /// owner has initialised it with tcp_track_syn: insert() does not clear it).
  TcpTrack& tcp(uint32_t idx) { return tcp_[idx]; }
  const TcpTrack& tcp(uint32_t idx) const { return tcp_[idx]; }

  /// A flow's meter, or null when the table keeps none.
  const FlowMeter* meter(uint32_t idx) const { return meters_ ? &meters_[idx] : nullptr; }
  /// Count one packet of `len` bytes on a flow in direction `d` (nothing without meters).
  void count(uint32_t idx, FlowDir d, uint32_t len) {
    if (meters_ == nullptr) return;
    FlowMeter& m = meters_[idx];
    ++m.packets[static_cast<uint32_t>(d)];
    m.bytes[static_cast<uint32_t>(d)] += len;
  }

  /// Change a flow's state and expiry, moving it between reclaim lists when its class
  /// changes. Within a class it keeps its place (embryonic: by handshake start; closed: by
  /// close), so a UDP flow's traffic goes through touch_idle() instead.
  void update(uint32_t idx, FlowState state, uint64_t expires);

  /// Traffic on an idle-ordered (UDP) flow at `now`: keep it at least `timeout` more ticks.
  /// Writes nothing while the expiry already covers that; otherwise sets it to
  /// now + timeout + timeout / kIdleSlackDiv and moves the flow to the back of its list.
  /// So a flow lives between `timeout` and timeout * 9/8 after its last packet, is moved at
  /// most once per timeout/8 of traffic, and the flow reclaim_one() picks as idle longest
  /// saw its last packet at most timeout/8 after the one that truly did (fixed timeout).
  void touch_idle(uint32_t idx, uint64_t now, uint64_t timeout);
  static constexpr uint64_t kIdleSlackDiv = 8;

  /// Release (hook included) and remove one flow to make room: the oldest embryonic, else
  /// the oldest closed, else the UDP flow idle longest. false if none is left (only
  /// established TCP flows, or nothing). *kind (optional) says which class went. For
  /// insert() with the table full, and for other resources running out first (local ports).
  bool reclaim_one(Reclaim* kind = nullptr);

  /// Embryonic flows whose expiry is later than `bound` (not quiet: a handshake in progress)
  /// are reclaimed by reclaim_one (and insert() through it) only after the closed and UDP
  /// classes: the owner says, before each new flow, what "quiet long enough to be a flood's"
  /// means now. Default: no bound (the plain class order).
  void set_embryonic_bound(uint64_t bound) { embryonic_bound_ = bound; }

  /// The same, but only a flow towards the same backend (rev_like's source ip, port and
  /// protocol), looking at most `scan` flows into each class: the flow that makes room for a
  /// connection to a backend whose local ports are all taken must free one of that backend's
  /// tuples, or it goes for nothing. An embryonic flow that is not quiet (set_embryonic_bound)
  /// never qualifies here: its tuple is live at the backend. A flow for which
  /// `held_after(table, idx)` is true (the owner keeps its tuple out of use once it ends:
  /// the local-port quarantine) frees nothing usable and is passed over.
  using HeldAfterFn = bool (*)(const BasicFlowTable& table, uint32_t idx);
  bool reclaim_matching(const Key& rev_like, uint32_t scan, HeldAfterFn held_after,
                        Reclaim* kind = nullptr);

  /// Remove a flow (both keys). Does not call the release hook: the caller owns it.
  void erase(uint32_t idx);
  /// Remove a flow as expiry would: the release hook first (an operator's delete).
  void remove(uint32_t idx) { release(idx); }

  /// Examine up to `budget` records from a rotating hand; release and erase expired ones.
  /// Returns how many were reclaimed. A fixed count, whatever the time: tests, and sweep().
  uint32_t age(uint64_t now, uint32_t budget);

  /// Pace sweep(): the hand goes round all `capacity` records once per `interval` ticks, at
  /// most `max_per_call` records per call. Throws std::invalid_argument for 0 in either.
  /// Default: interval 1000 ticks, 256 per call (the owner sets it from its clock rate).
  void set_sweep(uint64_t interval, uint32_t max_per_call);
  /// Time-budgeted ageing, called about once per loop: age() as many records as are due
  /// since the last call, capacity x elapsed / interval (the remainder carried exactly, so
  /// over any span the hand moves floor(capacity x span / interval) whatever the calls), at
  /// most max_per_call now; what the cap holds back is done by the next calls, and at most
  /// one whole round is ever owed (a call later than an interval owes one round, not more).
  /// Expiry bound: a flow whose expiry is E is reclaimed by the first call at or after
  /// E + interval, as long as the cap never holds anything back (the loop runs at least
  /// every max_per_call x interval / capacity ticks on average). The first call only starts
  /// the clock; an empty table owes nothing. Returns how many were reclaimed.
  uint32_t sweep(uint64_t now);
  /// Records looked at by age() and sweep() since the table was made (tests, benchmarks).
  uint64_t swept() const { return swept_; }

  /// The most keys one insert may move to their other buckets to make room (cuckoo
  /// displacement, when both of a key's buckets are full), at most kMaxMoves; 0: two choices
  /// alone, never a move (tests and benchmarks measure the load that reaches). Throws
  /// std::invalid_argument past kMaxMoves.
  void set_displacement(uint32_t max_moves);
  static constexpr uint32_t kMaxMoves = 32;
  /// Keys moved by displacement since the table was made (tests, benchmarks).
  uint64_t moved() const { return moved_; }

  uint32_t size() const { return used_; }
  uint32_t capacity() const { return capacity_; }
  /// Flows in a reclaim class right now.
  uint32_t reclaimable(Reclaim c) const { return lists_[static_cast<uint32_t>(c)].count; }
  uint32_t embryonic() const { return reclaimable(Reclaim::kEmbryonic); }
  /// Bytes allocated for this table (records, TCP side table, buckets, meters): about 117.3
  /// per v4 flow, 149.3 with meters (v6: 181.3, 213.3).
  size_t memory_bytes() const;
  /// What the FlowStore constructor found (kCreated for a table without a store).
  const FlowAdoption& adoption() const { return adoption_; }

 private:
  // One cache line: signatures first so a probe reads a single 32-byte run, then the refs.
  struct alignas(64) Bucket {
    uint32_t sig[8];
    uint32_t ref[8];  // record index * 2 + direction
  };
  // (implementation detail, see table.cpp)
  // x * n / 2^32 maps 32 hash bits onto [0, n) without a division (Lemire's fastrange).
  uint32_t fastrange(uint32_t x) const {
    return static_cast<uint32_t>((uint64_t{x} * n_buckets_) >> 32);
  }
  // Bucket 1 from the low half, bucket 2 from the high half: two independent choices. The
  // signature is lo ^ hi: whichever half picked the bucket a key sits in, the other half is
  // independent of it, so signatures in a bucket are uniform over 32 bits (a signature made
  // of one half would share its top bits with every key that half put in the same bucket).
  Probe probe_of(uint64_t h) const {
    const auto lo = static_cast<uint32_t>(h), hi = static_cast<uint32_t>(h >> 32);
    const uint32_t b1 = fastrange(lo);
    uint32_t b2 = fastrange(hi);
    // Two choices must be two buckets; n_buckets_ >= 2.
    if (b2 == b1) b2 = b1 + 1 == n_buckets_ ? 0 : b1 + 1;
    const uint32_t sig = lo ^ hi;
    return Probe{sig != 0 ? sig : 1, b1, b2};
  }
  bool bucket_find(const Key& k, const Probe& p, uint32_t* slot_ref) const;
  // The emptier of the key's two buckets, if either has a free slot (bucket_add's first
  // step, and rebuild_index()'s, which must not reclaim). Inlined: it is the fast path's.
  [[gnu::always_inline]] inline bool bucket_put(const Probe& p, uint32_t ref);
  bool bucket_add(const Probe& p, uint32_t ref, uint64_t now);
  bool displace(const Probe& p, uint32_t ref);
  void bucket_del(uint32_t ref);
  // hr null: the reverse key is not indexed (insert_one).
  InsertResult place(const Key& fwd, const Probe& hf, const Key& rev, const Probe* hr,
                     FlowState state, uint64_t expires, uint64_t now);
  uint32_t reclaim_expired(uint32_t bucket, uint64_t now, uint32_t keep);
  // One reclaim list per class, oldest at the head.
  struct List {
    uint32_t head = kNone;
    uint32_t tail = kNone;
    uint32_t count = 0;
  };
  void lru_push(Reclaim c, uint32_t idx);
  void lru_unlink(Reclaim c, uint32_t idx);
  // Always inlined: out of line, GCC finds it pure (loads and prefetches only) and drops
  // the call, prefetches and all.
  [[gnu::always_inline]] inline void prefetch_next_victim(uint32_t victim) const;
  void release(uint32_t idx);
  void push_free(uint32_t idx);
  void map_store(const FlowStore& store, bool meters, uint64_t now);
  FlowAdoption adopt(uint64_t now);
  void rebuild_index(size_t buckets_off, size_t tcp_off, size_t meters_off, uint32_t n_buckets,
                     FlowAdoption& r);
  bool key_in_place(const Key& k, uint32_t ref, uint32_t loc) const;
  void chain_free();

  uint32_t capacity_;
  uint32_t n_buckets_;
  HashKey key_;
  Record* flows_ = nullptr;
  Bucket* buckets_ = nullptr;
  TcpTrack* tcp_ = nullptr;       // side table, indexed like flows_
  FlowMeter* meters_ = nullptr;    // side table, indexed like flows_; null: no meters
  uint32_t free_head_ = kNone;     // free records, chained through lru_next
  uint64_t embryonic_bound_ = UINT64_MAX;
  uint32_t used_ = 0;
  List lists_[kReclaimClasses];
  uint32_t hand_ = 0;
  // sweep()'s pace: records owed (at most capacity_) and the carried remainder of
  // capacity_ x elapsed / sweep_interval_ (< sweep_interval_), since sweep_last_.
  uint64_t sweep_interval_ = 1000;
  uint32_t sweep_max_ = 256;
  bool sweep_started_ = false;
  uint64_t sweep_last_ = 0;
  uint64_t sweep_frac_ = 0;
  uint32_t sweep_owed_ = 0;
  uint64_t swept_ = 0;
  uint32_t max_moves_ = kMaxMoves;
  uint32_t walk_ = 0x9e3779b9;  // displace()'s random walk (xorshift32, never 0)
  uint64_t moved_ = 0;
  ReleaseFn release_fn_;
  void* release_ctx_;
  // With a FlowStore: the locked, mapped file (the arrays point into it) and its header.
  std::unique_ptr<MappedStore> store_;
  FlowStoreHeader* hdr_ = nullptr;
  FlowAdoption adoption_;
};

using FlowTable = BasicFlowTable<FlowKey>;
using FlowTable6 = BasicFlowTable<FlowKey6>;
extern template class BasicFlowTable<FlowKey>;
extern template class BasicFlowTable<FlowKey6>;

}  // namespace rondo::dp

// Per-lcore flow table; see table.h for the layout and the ageing rules.
#include "dataplane/flow/table.h"

#include "dataplane/flow/store_file.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <utility>
#include <vector>

#include <sys/mman.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace rondo::dp {

namespace {

constexpr uint32_t kSlots = 8;
constexpr uint32_t kEmpty = 0;  // signature of an unused slot; probe_of() never makes it
// A slot ref is idx * 2 + dir, and a key's location (Flow::loc) is bucket * kSlots + slot,
// both 32 bits: the ref is the tighter bound (fewer slots than keys' worth of refs).
constexpr uint32_t kMaxCapacity = uint32_t{1} << 30;

constexpr size_t kHugePage = size_t{2} << 20;

// Zeroed, cache-line aligned. Arrays of a huge page or more are huge-page aligned and marked
// for transparent huge pages: lookups land on random lines of a table that can be 100s of MB,
// and with 4 KiB pages nearly every one would also miss the TLB.
template <typename T>
T* alloc_lines(size_t n) {
  size_t bytes = (n * sizeof(T) + 63) & ~size_t{63};
  size_t align = bytes >= kHugePage ? kHugePage : 64;
  // posix_memalign, unlike aligned_alloc, takes any size: no rounding up to a whole huge page.
  void* p = nullptr;
  if (posix_memalign(&p, align, bytes) != 0) throw std::bad_alloc();
  // Advice only: where THP is off this fails harmlessly and the table still works.
  if (align == kHugePage) (void)madvise(p, bytes, MADV_HUGEPAGE);
  // Writing every page now means the fast path never takes a first-touch page fault, and puts
  // the pages on the NUMA node of the constructing thread.
  std::memset(p, 0, bytes);
  return static_cast<T*>(p);
}

// The file format (FlowStoreHeader): any change to these layouts bumps kVersion.
static_assert(sizeof(FlowKey) == 16 && offsetof(FlowKey, proto) == 12);
static_assert(sizeof(Flow) == 64 && offsetof(Flow, fwd) == 0 && offsetof(Flow, rev) == 16 &&
                  offsetof(Flow, expires) == 32 && offsetof(Flow, backend_id) == 40 &&
                  offsetof(Flow, vip_id) == 44 && offsetof(Flow, state) == 46 &&
                  offsetof(Flow, user) == 47 && offsetof(Flow, lru_prev) == 48 &&
                  offsetof(Flow, lru_next) == 52 && offsetof(Flow, loc) == 56,
              "Flow layout changed: bump FlowStoreHeader::kVersion");
static_assert(sizeof(FlowKey6) == 40 && offsetof(FlowKey6, dst_ip) == 16 &&
                  offsetof(FlowKey6, src_port) == 32 && offsetof(FlowKey6, proto) == 36,
              "FlowKey6 layout changed: bump FlowStoreHeader::kVersion");
static_assert(sizeof(Flow6) == 128 && offsetof(Flow6, fwd) == 0 && offsetof(Flow6, rev) == 40 &&
                  offsetof(Flow6, expires) == 80 && offsetof(Flow6, backend_id) == 88 &&
                  offsetof(Flow6, vip_id) == 92 && offsetof(Flow6, state) == 94 &&
                  offsetof(Flow6, user) == 95 && offsetof(Flow6, lru_prev) == 96 &&
                  offsetof(Flow6, lru_next) == 100 && offsetof(Flow6, loc) == 104,
              "Flow6 layout changed: bump FlowStoreHeader::kVersion");
static_assert(sizeof(TcpDir) == 16 && offsetof(TcpDir, maxend) == 4 &&
                  offsetof(TcpDir, maxwin) == 8 && offsetof(TcpDir, scale) == 12 &&
                  offsetof(TcpDir, flags) == 13 && offsetof(TcpDir, aux) == 14 &&
                  sizeof(TcpTrack) == 32,
              "TcpTrack layout changed: bump FlowStoreHeader::kVersion");
static_assert(sizeof(FlowMeter) == 32 && offsetof(FlowMeter, packets) == 8 &&
                  offsetof(FlowMeter, bytes) == 16,
              "FlowMeter layout changed: bump FlowStoreHeader::kVersion");
static_assert(static_cast<uint8_t>(kLastState) == 8,
              "FlowState gained a value: bump FlowStoreHeader::kVersion");
static_assert(sizeof(FlowStoreHeader) == 80 && offsetof(FlowStoreHeader, clock) == 32 &&
              offsetof(FlowStoreHeader, bytes) == 72);

constexpr size_t kPage = 4096;

// Byte offsets of the arrays in a store file, a pure function of the geometry.
struct StoreLayout {
  size_t flows = 0, buckets = 0, tcp = 0, meters = 0, bytes = 0;
};
StoreLayout store_layout(size_t record_bytes, uint32_t capacity, uint32_t n_buckets, bool meters) {
  StoreLayout l;
  size_t off = kPage;  // the header's page
  auto place = [&off](size_t bytes) {
    const size_t align = bytes >= kHugePage ? kHugePage : kPage;
    off = (off + align - 1) & ~(align - 1);
    const size_t at = off;
    off += bytes;
    return at;
  };
  l.flows = place(size_t{capacity} * record_bytes);
  l.buckets = place(size_t{n_buckets} * 64);
  l.tcp = place(size_t{capacity} * sizeof(TcpTrack));
  if (meters) l.meters = place(size_t{capacity} * sizeof(FlowMeter));
  l.bytes = (off + kHugePage - 1) & ~(kHugePage - 1);
  return l;
}

// Never the key itself (store_file.h). The string is part of the file format.
uint64_t table_key_fingerprint(const HashKey& key) {
  return key_fingerprint(key, "rondo flow table key fingerprint");
}

// Why a file's header does not describe this table: the first field that differs, "" if none.
std::string table_mismatch(const FlowStoreHeader& h, const char (&magic)[8], const char* kind,
                           const StoreLayout& l, size_t file_bytes, uint32_t capacity,
                           uint32_t n_buckets, bool meters, const HashKey& key) {
  if (std::string why = header_mismatch(h.magic, magic, kind,
                                        h.version, FlowStoreHeader::kVersion, h.capacity,
                                        capacity, "this table's");
      !why.empty())
    return why;
  if (h.n_buckets != n_buckets)
    return "bucket count " + std::to_string(h.n_buckets) + ", this table's is " +
           std::to_string(n_buckets);
  if ((h.meters != 0) != meters)
    return std::string("flow meters ") + (h.meters ? "on" : "off") + ", this table's " +
           (meters ? "on" : "off");
  if (h.key_fingerprint != table_key_fingerprint(key))
    return "a different flow hash key (fingerprint differs)";
  if (h.flows_off != l.flows || h.buckets_off != l.buckets || h.tcp_off != l.tcp ||
      h.meters_off != l.meters || h.bytes != l.bytes || file_bytes != l.bytes)
    return "file layout or size differs from the header's geometry";
  return {};
}

}  // namespace

namespace {

// Bit i set when b.sig[i] == sig.
template <typename B>
uint32_t sig_match(const B& b, uint32_t sig) {
#if defined(__SSE2__)
  __m128i s = _mm_set1_epi32(static_cast<int>(sig));
  __m128i lo = _mm_cmpeq_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(&b.sig[0])), s);
  __m128i hi = _mm_cmpeq_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(&b.sig[4])), s);
  // Narrow 8 x 32-bit all-ones/zero lanes to 8 bytes, one mask bit each.
  __m128i bytes = _mm_packs_epi16(_mm_packs_epi32(lo, hi), _mm_setzero_si128());
  return static_cast<uint32_t>(_mm_movemask_epi8(bytes));
#else
  uint32_t m = 0;
  for (uint32_t i = 0; i < kSlots; i++) m |= static_cast<uint32_t>(b.sig[i] == sig) << i;
  return m;
#endif
}

}  // namespace

namespace {

// Two keys per flow over 8-slot buckets, sized so that a full table fills kLoadNum /
// kLoadDen of the slots. Two choices alone overflow a bucket pair before that: the fullest
// of n buckets holds about mean + ln ln n / ln 2 keys, and the first overflow comes at about
// 0.69 of the slots for 1M-10M flows (flow_table_bench BM_FillLoad), so without moves the
// buckets had to be sized for twice the keys. With displacement (displace()) the table
// fills to any load below about 0.95, but a full table's churn (every new flow reclaims one)
// then moves keys on many inserts: 0.60 moves a new flow at 7/8, 0.10 at 4/5, 0.025 at 3/4
// (BM_NewFlowChurn), each a cold record, a hash and a cold bucket line, for 117.3 bytes a
// flow at 3/4 against 114.3 at 7/8. Any count, not a power of two: buckets are picked by
// multiply-shift (fastrange).
constexpr uint64_t kLoadNum = 3, kLoadDen = 4;

uint32_t bucket_count(uint32_t capacity) {
  if (capacity == 0 || capacity > kMaxCapacity)
    throw std::invalid_argument("flow table capacity out of range");
  const uint64_t slots = uint64_t{capacity} * 2;
  const uint64_t want = (slots * kLoadDen + kSlots * kLoadNum - 1) / (kSlots * kLoadNum);
  return static_cast<uint32_t>(want < 2 ? uint64_t{2} : want);
}

}  // namespace

template <typename Key>
BasicFlowTable<Key>::BasicFlowTable(uint32_t capacity, const HashKey& key, ReleaseFn release,
                                    void* release_ctx, bool meters)
    : capacity_(capacity), n_buckets_(bucket_count(capacity)), key_(key), release_fn_(release),
      release_ctx_(release_ctx) {
  static_assert(sizeof(Bucket) == 64);
  flows_ = alloc_lines<Record>(capacity_);
  try {
    buckets_ = alloc_lines<Bucket>(n_buckets_);
    tcp_ = alloc_lines<TcpTrack>(capacity_);
    if (meters) meters_ = alloc_lines<FlowMeter>(capacity_);
  } catch (...) {
    std::free(tcp_);
    std::free(buckets_);
    std::free(flows_);
    throw;
  }
  chain_free();
}

// Free records are chained through lru_next (a free record is on no reclaim list), lowest
// index first, so a lightly loaded table stays in the first few pages.
template <typename Key>
void BasicFlowTable<Key>::chain_free() {
  for (uint32_t i = 0; i < capacity_; i++) flows_[i].lru_next = i + 1 < capacity_ ? i + 1 : kNone;
  free_head_ = 0;
}

template <typename Key>
BasicFlowTable<Key>::BasicFlowTable(uint32_t capacity, const HashKey& key, ReleaseFn release,
                                    void* release_ctx, bool meters, const FlowStore& store,
                                    uint64_t now)
    : capacity_(capacity), n_buckets_(bucket_count(capacity)), key_(key), release_fn_(release),
      release_ctx_(release_ctx) {
  map_store(store, meters, now);
}

template <typename Key>
void BasicFlowTable<Key>::map_store(const FlowStore& store, bool meters, uint64_t now) {
  const uint32_t n_buckets = n_buckets_;
  const StoreLayout l = store_layout(sizeof(Record), capacity_, n_buckets, meters);
  store_ = std::make_unique<MappedStore>(store.path, FlowKeyTraits<Key>::kName);

  // Does the file hold this table? Its bucket count may be another build's sizing: the file
  // is then checked against the layout of its own count, and its index rebuilt at ours
  // (below). A refusal names the first field that differs.
  std::string why;
  FlowStoreHeader h{};
  StoreLayout fl = l;  // the file's layout
  const bool adopting = store_->adoptable(
      store.adopt, &h,
      [&](const FlowStoreHeader& fh) {
        // A count that could not index this capacity's records (locations are 32 bits) is
        // refused as a mismatch, not rebuilt from.
        const uint32_t nb =
            fh.n_buckets >= 2 && fh.n_buckets <= UINT32_MAX / kSlots ? fh.n_buckets : n_buckets;
        fl = store_layout(sizeof(Record), capacity_, nb, meters);
        return table_mismatch(fh, FlowKeyTraits<Key>::kStoreMagic, FlowKeyTraits<Key>::kKind, fl,
                              store_->size(), capacity_, nb, meters, key_);
      },
      &why);
  const bool rebuild = adopting && h.n_buckets != n_buckets;
  // A file that grows is grown before it is mapped: the arrays move into the new part.
  if (rebuild && l.bytes > fl.bytes) store_->resize(l.bytes);
  // Not adopting: start from zeroes (the file is cut to 0 first), at this table's size.
  char* base = store_->map(adopting ? std::max(l.bytes, fl.bytes) : l.bytes, !adopting);
  hdr_ = reinterpret_cast<FlowStoreHeader*>(base);

  if (adopting) {
    flows_ = reinterpret_cast<Record*>(base + fl.flows);
    buckets_ = reinterpret_cast<Bucket*>(base + fl.buckets);
    tcp_ = reinterpret_cast<TcpTrack*>(base + fl.tcp);
    meters_ = meters ? reinterpret_cast<FlowMeter*>(base + fl.meters) : nullptr;
    if (!rebuild) {
      adoption_ = adopt(now);
      return;
    }
    // Unsealed first: a process killed while the arrays move or the keys are placed again
    // leaves a file the next one refuses ("bad magic"), never a half-rebuilt one adopted.
    std::memset(hdr_->magic, 0, sizeof hdr_->magic);
    std::atomic_signal_fence(std::memory_order_release);
    n_buckets_ = h.n_buckets;  // adopt() checks the keys against the file's own index
    adoption_ = adopt(now);
    rebuild_index(l.buckets, l.tcp, l.meters, n_buckets, adoption_);
    hdr_->n_buckets = n_buckets_;
    hdr_->tcp_off = l.tcp;
    hdr_->meters_off = l.meters;
    hdr_->bytes = l.bytes;
    if (l.bytes < fl.bytes) store_->resize(l.bytes);
    seal_magic(hdr_->magic, FlowKeyTraits<Key>::kStoreMagic);
    return;
  }
  flows_ = reinterpret_cast<Record*>(base + l.flows);
  buckets_ = reinterpret_cast<Bucket*>(base + l.buckets);
  tcp_ = reinterpret_cast<TcpTrack*>(base + l.tcp);
  meters_ = meters ? reinterpret_cast<FlowMeter*>(base + l.meters) : nullptr;
  // Touch every page now, as alloc_lines does: no first-touch fault on the fast path.
  std::memset(base + kPage, 0, l.bytes - kPage);
  chain_free();
  FlowStoreHeader nh{};
  nh.version = FlowStoreHeader::kVersion;
  nh.capacity = capacity_;
  nh.n_buckets = n_buckets_;
  nh.meters = meters ? 1 : 0;
  nh.key_fingerprint = table_key_fingerprint(key_);
  nh.clock = now;
  nh.flows_off = l.flows;
  nh.buckets_off = l.buckets;
  nh.tcp_off = l.tcp;
  nh.meters_off = l.meters;
  nh.bytes = l.bytes;
  *hdr_ = nh;  // magic still zero
  seal_magic(hdr_->magic, FlowKeyTraits<Key>::kStoreMagic);
  adoption_.outcome = why.empty() ? FlowAdoption::Outcome::kCreated : FlowAdoption::Outcome::kRefused;
  adoption_.reason = why;
}

// A file from a build that sized the buckets otherwise (docs/hot-restart.md: an upgrade
// across the change to capacity / 3 lines). adopt() has checked it at the file's own bucket
// count and kept what is consistent; now the key index goes to this table's count and the
// file to this table's layout. The records stay where they are: a flow's index is what its
// tracker and meter, and the owner's state, go by. The tracker and meter arrays move whole to
// their new offsets, in the order that never overwrites what is still to be read (both move
// the same way: each offset grows with the bucket array). Then the buckets are cleared at
// the new count and the kept flows' keys placed again, in index order, with displacement,
// Flow::loc following. A flow with a key that finds no slot is dropped (no_room; at this
// table's sizing a full table fits, so none should).
template <typename Key>
void BasicFlowTable<Key>::rebuild_index(size_t buckets_off, size_t tcp_off, size_t meters_off,
                                        uint32_t n_buckets, FlowAdoption& r) {
  const auto t0 = std::chrono::steady_clock::now();
  char* base = reinterpret_cast<char*>(hdr_);
  r.rebuilt_from = n_buckets_;
  auto* tcp = reinterpret_cast<TcpTrack*>(base + tcp_off);
  FlowMeter* meters = meters_ != nullptr ? reinterpret_cast<FlowMeter*>(base + meters_off) : nullptr;
  auto move_tcp = [&] { std::memmove(tcp, tcp_, size_t{capacity_} * sizeof(TcpTrack)); };
  auto move_meters = [&] {
    if (meters != nullptr) std::memmove(meters, meters_, size_t{capacity_} * sizeof(FlowMeter));
  };
  if (tcp > tcp_) {
    move_meters();
    move_tcp();
  } else {
    move_tcp();
    move_meters();
  }
  tcp_ = tcp;
  meters_ = meters;
  n_buckets_ = n_buckets;
  buckets_ = reinterpret_cast<Bucket*>(base + buckets_off);
  std::memset(buckets_, 0, size_t{n_buckets_} * sizeof(Bucket));
  for (uint32_t i = 0; i < capacity_; i++) {
    Record& f = flows_[i];
    if (f.state == FlowState::kFree) continue;
    const bool two_keys = !one_key(i);
    f.loc[0] = f.loc[1] = kNoLoc;
    auto put = [this](const Key& k, uint32_t ref) {
      const Probe p = probe(k);
      return bucket_put(p, ref) || displace(p, ref);
    };
    const uint32_t ref = i * 2;
    if (put(f.fwd, ref + uint32_t(FlowDir::kForward)) &&
        (!two_keys || put(f.rev, ref + uint32_t(FlowDir::kReverse))))
      continue;
    erase(i);  // with the key placed, if one was (the other's loc is kNoLoc)
    r.no_room++;
  }
  r.discarded += r.no_room;
  r.adopted = used_;
  r.reason = "key index rebuilt (bucket count " + std::to_string(r.rebuilt_from) +
             " in the file, " + std::to_string(n_buckets_) + " in this table): " +
             std::to_string(used_) + " flows placed again, " + std::to_string(r.no_room) +
             " without a slot";
  r.micros += static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                        std::chrono::steady_clock::now() - t0)
                                        .count());
}

template <typename Key>
bool BasicFlowTable<Key>::key_in_place(const Key& k, uint32_t ref, uint32_t loc) const {
  if (loc >= n_buckets_ * uint64_t{kSlots}) return false;
  const uint32_t b = loc / kSlots, s = loc % kSlots;
  const Probe p = probe(k);
  const Bucket& bk = buckets_[b];
  return (b == p.b1 || b == p.b2) && bk.sig[s] == p.hash && bk.ref[s] == ref;
}

// Trust nothing but the records and the buckets: the free chain, the reclaim lists, the
// counts and the hand are rebuilt. A record in a live state is kept only if each of its keys
// sits at its recorded location, in one of the key's two buckets, under the signature the key
// hashes to, with a ref naming it back (a one-key flow's loc[1] is kNoLoc); then every slot
// that names no kept record is cleared. place() writes the state byte last and erase() clears
// it last, so an insert or erase cut short by kill -9 leaves either a free record that a slot
// still names (half_done) or a live record with a key out of place (discarded): both caught
// here, with no sequence word and no extra store on the fast path.
template <typename Key>
FlowAdoption BasicFlowTable<Key>::adopt(uint64_t now) {
  const auto t0 = std::chrono::steady_clock::now();
  // Marks a record step 1 or 2 has counted: no record index (kMaxCapacity is 2^30).
  constexpr uint32_t kCounted = kNone - 1;
  FlowAdoption r;
  r.outcome = FlowAdoption::Outcome::kAdopted;
  r.writer_clock = hdr_->clock;
  r.expiry_shift = clock_shift(r.writer_clock, now);

  // 1. Records.
  for (uint32_t i = 0; i < capacity_; i++) {
    Record& f = flows_[i];
    const auto st = static_cast<uint8_t>(f.state);
    if (st == static_cast<uint8_t>(FlowState::kFree)) continue;
    const bool ok = st <= static_cast<uint8_t>(kLastState) &&
                    key_in_place(f.fwd, i * 2 + uint32_t(FlowDir::kForward), f.loc[0]) &&
                    (f.loc[1] == kNoLoc ||
                     key_in_place(f.rev, i * 2 + uint32_t(FlowDir::kReverse), f.loc[1]));
    if (!ok) {
      f.state = FlowState::kFree;
      f.lru_prev = kCounted;
      r.discarded++;
    }
  }
  // 2. Slots. A free record named by a slot counts once, as half_done unless step 1 counted
  // it (kCounted in lru_prev: free records' links are rewritten in step 3).
  for (uint32_t b = 0; b < n_buckets_; b++) {
    Bucket& bk = buckets_[b];
    for (uint32_t s = 0; s < kSlots; s++) {
      if (bk.sig[s] == kEmpty) {
        bk.ref[s] = 0;
        continue;
      }
      const uint32_t ref = bk.ref[s], idx = ref >> 1;
      if (idx < capacity_ && flows_[idx].state != FlowState::kFree &&
          flows_[idx].loc[ref & 1] == b * kSlots + s)
        continue;
      if (idx < capacity_ && flows_[idx].lru_prev != kCounted) {
        flows_[idx].lru_prev = kCounted;
        r.half_done++;
      }
      bk.sig[s] = kEmpty;
      bk.ref[s] = 0;
      r.slots_cleared++;
    }
  }
  // 3. Free chain (lowest index first), reclaim lists (each by expiry: for embryonic and
  // closed flows that is the order of handshake start or close, for UDP that of the last
  // move, as long as the timeouts were the same), counts.
  free_head_ = kNone;
  used_ = 0;
  for (List& l : lists_) l = List{};
  std::vector<std::pair<uint64_t, uint32_t>> by_class[kReclaimClasses];
  for (uint32_t i = capacity_; i-- > 0;) {
    Record& f = flows_[i];
    if (f.state == FlowState::kFree) {
      f.lru_prev = kNone;
      f.lru_next = free_head_;
      free_head_ = i;
      continue;
    }
    f.expires = shifted(f.expires, r.expiry_shift);
    used_++;
    f.lru_prev = f.lru_next = kNone;
    const Reclaim c = flow_reclaim_class(f.state);
    if (c != Reclaim::kNone) by_class[static_cast<uint32_t>(c)].emplace_back(f.expires, i);
  }
  for (uint32_t c = 0; c < kReclaimClasses; c++) {
    std::sort(by_class[c].begin(), by_class[c].end());
    for (const auto& [expires, idx] : by_class[c]) lru_push(static_cast<Reclaim>(c), idx);
  }
  hand_ = 0;
  hdr_->clock = now;
  r.adopted = used_;
  r.micros = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                       std::chrono::steady_clock::now() - t0)
                                       .count());
  return r;
}

template <typename Key>
BasicFlowTable<Key>::~BasicFlowTable() {
  if (store_ != nullptr) return;  // the mapping goes with store_
  std::free(meters_);
  std::free(tcp_);
  std::free(buckets_);
  std::free(flows_);
}

template <typename Key>
void BasicFlowTable<Key>::prefetch_record(const Probe& p, bool tcp) const {
  for (uint32_t bi : {p.b1, p.b2}) {
    const Bucket& bk = buckets_[bi];
    for (uint32_t m = sig_match(bk, p.hash); m != 0; m &= m - 1) {
      const uint32_t idx = bk.ref[std::countr_zero(m)] >> 1;
      __builtin_prefetch(&flows_[idx], 0, 3);
      // A v6 record is two lines: its reverse key and its expiry are in the second.
      if constexpr (sizeof(Record) > 64) __builtin_prefetch(&flows_[idx].expires, 0, 3);
      if (tcp) __builtin_prefetch(&tcp_[idx], 1, 3);
    }
  }
}

template <typename Key>
bool BasicFlowTable<Key>::bucket_find(const Key& k, const Probe& p, uint32_t* slot_ref) const {
  const uint32_t hash = p.hash;
  const uint32_t b[2] = {p.b1, p.b2};
  for (uint32_t bi : b) {
    const Bucket& bk = buckets_[bi];
    for (uint32_t m = sig_match(bk, hash); m != 0; m &= m - 1) {
      uint32_t ref = bk.ref[std::countr_zero(m)];
      const Record& f = flows_[ref >> 1];
      if ((ref & 1 ? f.rev : f.fwd) == k) {
        *slot_ref = ref;
        return true;
      }
    }
  }
  return false;
}

template <typename Key>
typename BasicFlowTable<Key>::Hit BasicFlowTable<Key>::lookup(const Key& k, const Probe& p,
                                                              uint64_t now) {
  uint32_t ref;
  if (!bucket_find(k, p, &ref)) return {};
  uint32_t idx = ref >> 1;
  if (flows_[idx].expires <= now) {
    release(idx);
    return {};
  }
  return {idx, static_cast<FlowDir>(ref & 1)};
}

template <typename Key>
typename BasicFlowTable<Key>::Hit BasicFlowTable<Key>::find(const Key& k, uint64_t now) const {
  uint32_t ref;
  if (!bucket_find(k, probe(k), &ref) || flows_[ref >> 1].expires <= now) return {};
  return {ref >> 1, static_cast<FlowDir>(ref & 1)};
}

template <typename Key>
uint32_t BasicFlowTable<Key>::reclaim_expired(uint32_t bucket, uint64_t now, uint32_t keep) {
  Bucket& bk = buckets_[bucket];
  uint32_t n = 0;
  for (uint32_t s = 0; s < kSlots; s++) {
    if (bk.sig[s] == kEmpty) continue;
    uint32_t idx = bk.ref[s] >> 1;
    if (idx == keep || flows_[idx].expires > now) continue;
    // Erasing clears this slot (and the flow's other key, possibly elsewhere).
    release(idx);
    n++;
  }
  return n;
}

template <typename Key>
inline bool BasicFlowTable<Key>::bucket_put(const Probe& p, uint32_t ref) {
  const uint32_t e1 = sig_match(buckets_[p.b1], kEmpty);
  const uint32_t e2 = sig_match(buckets_[p.b2], kEmpty);
  if (e1 == 0 && e2 == 0) return false;
  // The emptier bucket; ties go to the first choice so lookups usually stop early.
  const bool first = std::popcount(e1) >= std::popcount(e2);
  const uint32_t bi = first ? p.b1 : p.b2;
  Bucket& bk = buckets_[bi];
  const uint32_t s = std::countr_zero(first ? e1 : e2);
  bk.sig[s] = p.hash;
  bk.ref[s] = ref;
  flows_[ref >> 1].loc[ref & 1] = bi * kSlots + s;
  return true;
}

template <typename Key>
bool BasicFlowTable<Key>::bucket_add(const Probe& p, uint32_t ref, uint64_t now) {
  if (bucket_put(p, ref)) return true;
  // Both full. First move keys to their other buckets: a walk is usually a key long (one
  // record and one bucket line). Only if that finds no room, make room from flows that are
  // dead but not yet reclaimed (the sweep would get them within an interval), which reads
  // all 16 slots' records. Never the record being inserted: its first key may sit here, and
  // the caller may have made it due already.
  if (displace(p, ref)) return true;
  if (reclaim_expired(p.b1, now, ref >> 1) + reclaim_expired(p.b2, now, ref >> 1) == 0)
    return false;
  return bucket_put(p, ref);
}

// Cuckoo displacement for a key whose two buckets are full. First a random walk finds a
// path, touching nothing: a slot in one of the key's buckets, the key there goes to its other
// bucket, and if that is full too a slot there, and so on, until a bucket with a free slot,
// at most max_moves_ keys (a slot is never on the path twice). Then the keys move from the
// far end back, each into the slot the one after it left, so at every step each key sits in
// one of its two buckets under its signature, at the location its Flow::loc gives or about to
// (for adopt() after kill -9: a copy that the record's loc does not name is a cleared slot,
// never a lost key). Finding a key's other bucket means reading its record and hashing it
// again; at the table's load a walk is usually a key or two long, and most inserts take none.
template <typename Key>
bool BasicFlowTable<Key>::displace(const Probe& p, uint32_t ref) {
  struct Step {
    uint32_t bucket, slot;
  };
  Step path[kMaxMoves];
  uint32_t n = 0;
  Step to{};
  auto rnd = [this] {  // xorshift32: where to step next; no need for more
    walk_ ^= walk_ << 13;
    walk_ ^= walk_ >> 17;
    walk_ ^= walk_ << 5;
    return walk_;
  };
  uint32_t b = rnd() & 1 ? p.b1 : p.b2;
  for (;;) {
    if (n == max_moves_) return false;
    uint32_t s = rnd() % kSlots;
    for (uint32_t tries = 0;; s = (s + 1) % kSlots) {
      bool on_path = false;
      for (uint32_t i = 0; i < n; i++) on_path |= path[i].bucket == b && path[i].slot == s;
      if (!on_path) break;
      if (++tries == kSlots) return false;  // every slot of b is on the path already
    }
    path[n++] = {b, s};
    const uint32_t r = buckets_[b].ref[s];
    const Record& f = flows_[r >> 1];
    const Probe q = probe(r & 1 ? f.rev : f.fwd);
    assert(q.hash == buckets_[b].sig[s] && (q.b1 == b || q.b2 == b));
    const uint32_t alt = q.b1 == b ? q.b2 : q.b1;
    if (const uint32_t free = sig_match(buckets_[alt], kEmpty); free != 0) {
      to = {alt, static_cast<uint32_t>(std::countr_zero(free))};
      break;
    }
    b = alt;
  }
  for (uint32_t i = n; i-- > 0;) {
    Bucket& src = buckets_[path[i].bucket];
    Bucket& dst = buckets_[to.bucket];
    const uint32_t r = src.ref[path[i].slot];
    // Copy, point the record at the copy, then clear the original, in that order (see
    // place() on program order against kill -9; the fences only hold the compiler to it).
    dst.sig[to.slot] = src.sig[path[i].slot];
    dst.ref[to.slot] = r;
    std::atomic_signal_fence(std::memory_order_release);
    flows_[r >> 1].loc[r & 1] = to.bucket * kSlots + to.slot;
    std::atomic_signal_fence(std::memory_order_release);
    src.sig[path[i].slot] = kEmpty;
    src.ref[path[i].slot] = 0;
    to = path[i];
  }
  moved_ += n;
  Bucket& bk = buckets_[to.bucket];
  bk.sig[to.slot] = p.hash;
  bk.ref[to.slot] = ref;
  flows_[ref >> 1].loc[ref & 1] = to.bucket * kSlots + to.slot;
  return true;
}

template <typename Key>
void BasicFlowTable<Key>::set_displacement(uint32_t max_moves) {
  if (max_moves > kMaxMoves) throw std::invalid_argument("flow table displacement bound");
  max_moves_ = max_moves;
}

template <typename Key>
void BasicFlowTable<Key>::bucket_del(uint32_t ref) {
  // The key's slot, as bucket_add left it: one line, no hash and no probe.
  const uint32_t loc = flows_[ref >> 1].loc[ref & 1];
  if (loc == kNoLoc) return;  // a one-key flow's reverse side
  Bucket& bk = buckets_[loc / kSlots];
  const uint32_t s = loc % kSlots;
  assert(bk.sig[s] != kEmpty && bk.ref[s] == ref && "a flow key's location is stale");
  bk.sig[s] = kEmpty;
  bk.ref[s] = 0;
}

template <typename Key>
void BasicFlowTable<Key>::lru_push(Reclaim c, uint32_t idx) {
  if (c == Reclaim::kNone) return;
  List& l = lists_[static_cast<uint32_t>(c)];
  Record& f = flows_[idx];
  f.lru_prev = l.tail;
  f.lru_next = kNone;
  if (l.tail != kNone)
    flows_[l.tail].lru_next = idx;
  else
    l.head = idx;
  l.tail = idx;
  l.count++;
}

template <typename Key>
void BasicFlowTable<Key>::lru_unlink(Reclaim c, uint32_t idx) {
  if (c == Reclaim::kNone) return;
  List& l = lists_[static_cast<uint32_t>(c)];
  Record& f = flows_[idx];
  if (f.lru_prev != kNone)
    flows_[f.lru_prev].lru_next = f.lru_next;
  else
    l.head = f.lru_next;
  if (f.lru_next != kNone)
    flows_[f.lru_next].lru_prev = f.lru_prev;
  else
    l.tail = f.lru_prev;
  f.lru_prev = f.lru_next = kNone;
  l.count--;
}

template <typename Key>
void BasicFlowTable<Key>::release(uint32_t idx) {
  if (release_fn_ != nullptr) release_fn_(release_ctx_, flows_[idx]);
  erase(idx);
}

template <typename Key>
typename BasicFlowTable<Key>::InsertResult
BasicFlowTable<Key>::insert(const Key& fwd, const Probe& fwd_probe, const Key& rev, FlowState state,
                            uint64_t expires, uint64_t now) {
  assert(state != FlowState::kFree);
  // A flow whose two keys are equal could never be told apart by direction.
  if (fwd == rev) return {InsertStatus::kExists, kNone};
  const Probe& hf = fwd_probe;
  const Probe hr = probe(rev);
  // lookup() also clears out an expired holder of either key, so the key can be reused.
  if (lookup(fwd, hf, now).found() || lookup(rev, hr, now).found())
    return {InsertStatus::kExists, kNone};
  return place(fwd, hf, rev, &hr, state, expires, now);
}

template <typename Key>
typename BasicFlowTable<Key>::InsertResult
BasicFlowTable<Key>::insert_new(const Key& fwd, const Probe& fwd_probe, const Key& rev,
                                const Probe& rev_probe, FlowState state, uint64_t expires,
                                uint64_t now) {
  assert(state != FlowState::kFree);
  if (fwd == rev) return {InsertStatus::kExists, kNone};
#ifndef NDEBUG
  // The caller's word: not even an expired holder of either key is left in the buckets.
  uint32_t ref;
  assert(!bucket_find(fwd, fwd_probe, &ref) && "insert_new: forward key present");
  assert(!bucket_find(rev, rev_probe, &ref) && "insert_new: reverse key present");
#endif
  return place(fwd, fwd_probe, rev, &rev_probe, state, expires, now);
}

template <typename Key>
typename BasicFlowTable<Key>::InsertResult
BasicFlowTable<Key>::insert_one(const Key& fwd, const Probe& fwd_probe, const Key& rev,
                                FlowState state, uint64_t expires, uint64_t now) {
  assert(state != FlowState::kFree);
#ifndef NDEBUG
  uint32_t ref;
  assert(!bucket_find(fwd, fwd_probe, &ref) && "insert_one: key present");
#endif
  return place(fwd, fwd_probe, rev, nullptr, state, expires, now);
}

template <typename Key>
typename BasicFlowTable<Key>::InsertResult
BasicFlowTable<Key>::place(const Key& fwd, const Probe& hf, const Key& rev, const Probe* hr,
                           FlowState state, uint64_t expires, uint64_t now) {
  Reclaim reclaimed = Reclaim::kNone;
  // If the buckets then turn out full too, this victim went for nothing; at our load that
  // needs 16 live keys in one bucket pair, which is not worth checking for up front.
  if (free_head_ == kNone && !reclaim_one(&reclaimed)) return {InsertStatus::kFull, kNone};
  const uint32_t idx = free_head_;
  free_head_ = flows_[idx].lru_next;
  Record& f = flows_[idx];
  f = Record{};
  f.fwd = fwd;
  f.rev = rev;
  f.expires = expires;
  f.lru_prev = f.lru_next = kNone;

  if (!bucket_add(hf, idx * 2 + uint32_t(FlowDir::kForward), now)) {
    push_free(idx);
    return {InsertStatus::kFull, kNone, reclaimed};
  }
  f.loc[1] = kNoLoc;  // until (unless) the reverse key is placed
  if (hr != nullptr && !bucket_add(*hr, idx * 2 + uint32_t(FlowDir::kReverse), now)) {
    bucket_del(idx * 2 + uint32_t(FlowDir::kForward));
    push_free(idx);
    return {InsertStatus::kFull, kNone, reclaimed};
  }
  // The state byte last, after both keys and their locations (erase clears it last): a
  // store file's adopter (adopt()) then finds an insert cut short by kill -9 as a free record
  // that a slot names, never as a live one-key flow. Program order suffices against a kill
  // (the kernel drains the store buffer as it stops the thread); the fence only stops the
  // compiler moving stores across it, and costs no instruction.
  std::atomic_signal_fence(std::memory_order_release);
  f.state = state;
  used_++;
  lru_push(flow_reclaim_class(state), idx);
  if (meters_ != nullptr) meters_[idx] = FlowMeter{.created = now};
  return {InsertStatus::kOk, idx, reclaimed};
}

// A full table reclaims a flow for every new one, and the victim is cold: its record (read
// by the release hook, its lru_next rewritten), its tracker entry (the hook reads it) and
// the two bucket lines its keys sit in (erase clears them) were last touched when it was
// made, a whole table of flows ago. The next victim is, most likely, the one after this one
// in its list, so each reclaim fetches for the reclaims after it, two deep: the buckets of
// the next victim (its record, and so its Flow::loc, was fetched by the previous reclaim and
// is in cache by now) and the record and tracker of the one after that. By the time they
// are used, one new flow's work (a packet, in a SYN burst) has hidden the misses. A guess
// that turns out wrong (another class goes first, or the flow went meanwhile) costs a few
// useless prefetches, nothing else.
template <typename Key>
inline void BasicFlowTable<Key>::prefetch_next_victim(uint32_t victim) const {
  const uint32_t next = flows_[victim].lru_next;
  if (next == kNone) return;
  const Record& n = flows_[next];
  for (uint32_t loc : n.loc)
    if (loc != kNoLoc) __builtin_prefetch(&buckets_[loc / kSlots], 1, 3);
  const uint32_t after = n.lru_next;
  if (after == kNone) return;
  __builtin_prefetch(&flows_[after], 1, 3);
  // A v6 record is two lines: its links and key locations are in the second.
  if constexpr (sizeof(Record) > 64) __builtin_prefetch(&flows_[after].expires, 1, 3);
  __builtin_prefetch(&tcp_[after], 0, 3);
}

template <typename Key>
bool BasicFlowTable<Key>::reclaim_one(Reclaim* kind) {
  for (uint32_t c = 0; c < kReclaimClasses; c++) {
    if (lists_[c].head == kNone) continue;
    // The oldest handshake is still in progress (not quiet): more likely a real client's
    // than a flood's. Closed and UDP flows go before it; it goes last (below).
    if (c == static_cast<uint32_t>(Reclaim::kEmbryonic) &&
        flows_[lists_[c].head].expires > embryonic_bound_)
      continue;
    prefetch_next_victim(lists_[c].head);
    release(lists_[c].head);
    if (kind != nullptr) *kind = static_cast<Reclaim>(c);
    return true;
  }
  // Only handshakes in progress and established flows: a table full of a flood's fresh SYNs.
  // The oldest goes, so a real handshake (the newest) still has table / flood rate seconds.
  const uint32_t e = lists_[static_cast<uint32_t>(Reclaim::kEmbryonic)].head;
  if (e == kNone) return false;
  prefetch_next_victim(e);
  release(e);
  if (kind != nullptr) *kind = Reclaim::kEmbryonic;
  return true;
}

template <typename Key>
bool BasicFlowTable<Key>::reclaim_matching(const Key& rev_like, uint32_t scan,
                                           HeldAfterFn held_after, Reclaim* kind) {
  for (uint32_t c = 0; c < kReclaimClasses; c++) {
    uint32_t idx = lists_[c].head;
    for (uint32_t n = 0; idx != kNone && n < scan; ++n, idx = flows_[idx].lru_next) {
      const Key& r = flows_[idx].rev;
      if (std::memcmp(&r.src_ip, &rev_like.src_ip, sizeof r.src_ip) != 0 ||
          r.src_port != rev_like.src_port || r.proto != rev_like.proto)
        continue;
      // A handshake in progress holds a tuple live at the backend: never reused for it.
      if (c == static_cast<uint32_t>(Reclaim::kEmbryonic) && flows_[idx].expires > embryonic_bound_)
        continue;
      if (held_after != nullptr && held_after(*this, idx)) continue;
      release(idx);
      if (kind != nullptr) *kind = static_cast<Reclaim>(c);
      return true;
    }
  }
  return false;
}

template <typename Key>
void BasicFlowTable<Key>::update(uint32_t idx, FlowState state, uint64_t expires) {
  Record& f = flows_[idx];
  assert(f.state != FlowState::kFree && state != FlowState::kFree);
  const Reclaim was = flow_reclaim_class(f.state), now_in = flow_reclaim_class(state);
  // Within a class a flow keeps its place (SynSent -> SynRecv: eviction order is by when
  // the handshake started), so an update touches no other record's line.
  if (was != now_in) {
    lru_unlink(was, idx);
    lru_push(now_in, idx);
  }
  f.state = state;
  f.expires = expires;
}

// Moving a record to the tail of its list writes up to three other records' lines (its two
// neighbours and the old tail), each likely a cache miss in a large table. Doing that for
// every datagram of a busy UDP flow would cost more than the lookup. So the list is kept in
// order of the last *move*, and a flow moves only when its expiry no longer covers
// `timeout` from now; the move grants timeout/kIdleSlackDiv extra, so the next move comes
// after that much traffic at the earliest (Linux conntrack skips timeout refreshes smaller
// than a second for the same reason). Error bound: a flow last moved at P saw its last
// packet in [P, P + slack]; the head has the smallest P, so its last packet is at most
// `slack` later than that of the flow truly idle longest.
template <typename Key>
void BasicFlowTable<Key>::touch_idle(uint32_t idx, uint64_t now, uint64_t timeout) {
  Record& f = flows_[idx];
  const uint64_t want = now + timeout;
  if (f.expires >= want) return;
  f.expires = want + timeout / kIdleSlackDiv;
  const Reclaim c = flow_reclaim_class(f.state);
  assert(c == Reclaim::kIdleUdp);
  if (f.lru_next == kNone) return;  // already last
  lru_unlink(c, idx);
  lru_push(c, idx);
}

template <typename Key>
void BasicFlowTable<Key>::erase(uint32_t idx) {
  Record& f = flows_[idx];
  // A second erase would push the index twice onto the free stack and hand one record to two
  // flows; refuse it even in release builds.
  if (f.state == FlowState::kFree) {
    assert(!"erase of a free flow");
    return;
  }
  bucket_del(idx * 2 + uint32_t(FlowDir::kForward));
  bucket_del(idx * 2 + uint32_t(FlowDir::kReverse));
  lru_unlink(flow_reclaim_class(f.state), idx);
  push_free(idx);
  used_--;
}

template <typename Key>
uint32_t BasicFlowTable<Key>::age(uint64_t now, uint32_t budget) {
  if (hdr_ != nullptr) hdr_->clock = now;  // for an adopter (FlowStoreHeader::clock)
  if (budget > capacity_) budget = capacity_;
  swept_ += budget;
  uint32_t reclaimed = 0;
  // The hand runs ahead of the visits by kSweepAhead lines: a call's first records were
  // prefetched by the call before (between them, the burst's work hides the misses), and
  // within a call each miss overlaps the next kSweepAhead visits.
  constexpr uint32_t kSweepAhead = 8;
  uint32_t ahead = hand_ + kSweepAhead;
  if (ahead >= capacity_) ahead %= capacity_;
  for (uint32_t i = 0; i < budget; i++) {
    // The line the visit reads (state and expiry: the second line of a v6 record).
    __builtin_prefetch(&flows_[ahead].expires, 0, 3);
    ahead = ahead + 1 == capacity_ ? 0 : ahead + 1;
    uint32_t idx = hand_;
    hand_ = hand_ + 1 == capacity_ ? 0 : hand_ + 1;
    const Record& f = flows_[idx];
    if (f.state != FlowState::kFree && f.expires <= now) {
      release(idx);
      reclaimed++;
    }
  }
  return reclaimed;
}

template <typename Key>
void BasicFlowTable<Key>::set_sweep(uint64_t interval, uint32_t max_per_call) {
  if (interval == 0 || max_per_call == 0) throw std::invalid_argument("flow table sweep pace");
  sweep_interval_ = interval;
  sweep_max_ = max_per_call;
  sweep_frac_ = 0;
}

template <typename Key>
uint32_t BasicFlowTable<Key>::sweep(uint64_t now) {
  if (hdr_ != nullptr) hdr_->clock = now;
  if (!sweep_started_ || now < sweep_last_) {
    // Nothing is owed for the time before the first call (or across a clock that went back).
    sweep_started_ = true;
    sweep_last_ = now;
    return 0;
  }
  const uint64_t elapsed = now - sweep_last_;
  sweep_last_ = now;
  if (used_ == 0) {
    // Nothing can expire: owe nothing (the hand stays where it is; a flow placed from now on
    // is still reached within one interval, as the hand then goes round in one).
    sweep_owed_ = 0;
    return 0;
  }
  uint64_t owed;
  if (elapsed >= sweep_interval_) {
    owed = capacity_;  // a whole round: more would look at records twice for nothing
  } else {
    // capacity_ x elapsed + remainder, exact; 64 bits in any usual case (elapsed is a loop's
    // length), 128 when capacity x interval is past 2^64 and the call was late.
    uint64_t num;
    if (!__builtin_mul_overflow(elapsed, uint64_t{capacity_}, &num) &&
        !__builtin_add_overflow(num, sweep_frac_, &num)) {
      owed = num / sweep_interval_;
      sweep_frac_ = num % sweep_interval_;
    } else {
      const unsigned __int128 wide =
          static_cast<unsigned __int128>(elapsed) * capacity_ + sweep_frac_;
      owed = static_cast<uint64_t>(wide / sweep_interval_);
      sweep_frac_ = static_cast<uint64_t>(wide % sweep_interval_);
    }
  }
  owed += sweep_owed_;
  if (owed > capacity_) owed = capacity_;
  const auto now_budget = static_cast<uint32_t>(owed < sweep_max_ ? owed : sweep_max_);
  sweep_owed_ = static_cast<uint32_t>(owed - now_budget);
  return now_budget == 0 ? 0 : age(now, now_budget);
}

template <typename Key>
size_t BasicFlowTable<Key>::memory_bytes() const {
  return size_t{capacity_} *
             (sizeof(Record) + sizeof(TcpTrack) + (meters_ ? sizeof(FlowMeter) : 0)) +
         size_t{n_buckets_} * sizeof(Bucket);
}

template <typename Key>
void BasicFlowTable<Key>::push_free(uint32_t idx) {
  Record& f = flows_[idx];
  f.state = FlowState::kFree;
  f.lru_next = free_head_;
  free_head_ = idx;
}

template class BasicFlowTable<FlowKey>;
template class BasicFlowTable<FlowKey6>;

}  // namespace rondo::dp

// Local ports: ownership, the quarantine, the keyed search order (see port_pool.h).
#include "dataplane/flow/port_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "dataplane/api/ctl.h"

namespace rondo::dp {

PortOwnership::PortOwnership(uint32_t n_workers) : n_(std::clamp<uint32_t>(n_workers, 1, kMaxWorkers)) {
  uint32_t span = 1;
  while (span < n_) span <<= 1;
  mask_ = static_cast<uint16_t>(span - 1);
  for (uint32_t r = 0; r < span; ++r) owner_[r] = static_cast<uint8_t>(r % n_);
}

// ---- Quarantine ----

namespace {

constexpr size_t kPage = 4096;
constexpr size_t kHugePage = size_t{2} << 20;

// Byte offset of the ring and the file's size, a pure function of the capacity.
constexpr size_t kRingOff = kPage;  // the header's page
size_t store_bytes(size_t ring_bytes) {
  return (kRingOff + ring_bytes + kHugePage - 1) & ~(kHugePage - 1);
}

// Never the key itself (store_file.h). The string is part of the file format.
uint64_t quarantine_key_fingerprint(const HashKey& key) {
  return key_fingerprint(key, "rondo local-port quarantine key fingerprint");
}

// Why a file's header does not describe this quarantine: the first field that differs, ""
// if none.
std::string quarantine_mismatch(const QuarantineStoreHeader& h, const char (&magic)[8],
                                const char* kind, uint32_t capacity, const HashKey& key,
                                size_t bytes, size_t file_bytes) {
  if (std::string why = header_mismatch(h.magic, magic, kind, h.version,
                                        QuarantineStoreHeader::kVersion, h.capacity, capacity,
                                        "this quarantine's");
      !why.empty())
    return why;
  if (h.key_fingerprint != quarantine_key_fingerprint(key))
    return "a different local-port hash key (fingerprint differs)";
  if (h.ring_off != kRingOff || h.bytes != bytes || file_bytes != bytes)
    return "file layout or size differs from the header's geometry";
  if (h.cursor.head >= capacity || h.cursor.count > capacity)
    return "cursor out of range (head " + std::to_string(h.cursor.head) + ", count " +
           std::to_string(h.cursor.count) + ")";
  return {};
}

}  // namespace

// The file format (QuarantineStoreHeader): any change to these layouts bumps kVersion.
static_assert(sizeof(PortTuple) == 12 && offsetof(PortTuple, backend_ip) == 4 &&
                  offsetof(PortTuple, local_port) == 8 && offsetof(PortTuple, backend_port) == 10,
              "PortTuple layout changed: bump QuarantineStoreHeader::kVersion");
static_assert(sizeof(PortTuple6) == 36 && offsetof(PortTuple6, backend_ip) == 16 &&
                  offsetof(PortTuple6, local_port) == 32 &&
                  offsetof(PortTuple6, backend_port) == 34,
              "PortTuple6 layout changed: bump QuarantineStoreHeader::kVersion");
static_assert(sizeof(QuarantineStoreHeader) == 56 && offsetof(QuarantineStoreHeader, clock) == 24 &&
                  offsetof(QuarantineStoreHeader, cursor) == 32 &&
                  offsetof(QuarantineStoreHeader, ring_off) == 40 &&
                  offsetof(QuarantineStoreHeader, bytes) == 48 && sizeof(QuarantineCursor) == 8,
              "QuarantineStoreHeader layout changed: bump its kVersion");
// One 8-byte store moves the cursor (publish()).
static_assert(std::atomic_ref<QuarantineCursor>::is_always_lock_free);

template <typename Tuple>
BasicQuarantine<Tuple>::BasicQuarantine(uint32_t capacity, const HashKey& key, LeaveFn leave,
                                        void* ctx)
    : cap_(capacity), key_(key), hdr_(&own_hdr_), leave_(leave), ctx_(ctx) {
  alloc_index();
  own_ring_ = std::make_unique<Entry[]>(capacity);
  ring_ = own_ring_.get();
}

template <typename Tuple>
BasicQuarantine<Tuple>::BasicQuarantine(uint32_t capacity, const HashKey& key, LeaveFn leave,
                                        void* ctx, const QuarantineStore& store, uint64_t now)
    : cap_(capacity), key_(key), hdr_(&own_hdr_), leave_(leave), ctx_(ctx) {
  alloc_index();
  map_store(store, now);
}

template <typename Tuple>
BasicQuarantine<Tuple>::~BasicQuarantine() = default;  // the mapping goes with store_

template <typename Tuple>
void BasicQuarantine<Tuple>::alloc_index() {
  if (cap_ == 0 || cap_ > (1u << 30)) throw std::invalid_argument("quarantine capacity out of range");
  uint32_t n = 2;
  while (n < 2 * cap_) n <<= 1;  // at most half full: short probe runs
  own_index_ = std::make_unique<uint64_t[]>(n);
  index_ = own_index_.get();
  index_mask_ = n - 1;
}

template <typename Tuple>
void BasicQuarantine<Tuple>::map_store(const QuarantineStore& store, uint64_t now) {
  constexpr size_t kTuple = sizeof(Tuple);  // 12 or 36; the entry's other fields follow
  static_assert(sizeof(Entry) == (kTuple == 12 ? 32 : 56) &&
                    offsetof(Entry, backend_id) == kTuple && offsetof(Entry, hash) == kTuple + 4 &&
                    offsetof(Entry, until) == kTuple + 12,
                "Quarantine entry layout changed: bump QuarantineStoreHeader::kVersion");
  const size_t bytes = store_bytes(size_t{cap_} * sizeof(Entry));
  store_ = std::make_unique<MappedStore>(store.path, "quarantine");

  // Does the file hold this quarantine? A refusal names the first field that differs.
  std::string why;
  QuarantineStoreHeader h{};
  const bool adopting = store_->adoptable(
      store.adopt, &h,
      [&](const QuarantineStoreHeader& qh) {
        return quarantine_mismatch(qh, QuarantineTraits<Tuple>::kStoreMagic,
                                   QuarantineTraits<Tuple>::kKind, cap_, key_, bytes,
                                   store_->size());
      },
      &why);
  // Not adopting: start from zeroes (the file is cut to 0 first).
  char* base = store_->map(bytes, !adopting);
  hdr_ = reinterpret_cast<QuarantineStoreHeader*>(base);
  ring_ = reinterpret_cast<Entry*>(base + kRingOff);
  if (adopting) {
    adoption_ = adopt(now);
    return;
  }
  // Touch every page now: no first-touch fault on the fast path.
  std::memset(base + kPage, 0, bytes - kPage);
  QuarantineStoreHeader nh{};
  nh.version = QuarantineStoreHeader::kVersion;
  nh.capacity = cap_;
  nh.key_fingerprint = quarantine_key_fingerprint(key_);
  nh.clock = now;
  nh.cursor = QuarantineCursor{0, 0};
  nh.ring_off = kRingOff;
  nh.bytes = bytes;
  *hdr_ = nh;  // magic still zero
  seal_magic(hdr_->magic, QuarantineTraits<Tuple>::kStoreMagic);
  adoption_.outcome = why.empty() ? StoreOutcome::kCreated : StoreOutcome::kRefused;
  adoption_.reason = why;
}

// Trust only the ring's entries between the cursor's head and count: each must have values
// an add() could have written, and a deadline still ahead. The kept ones are written again
// from position 0 and the index is built over them.
template <typename Tuple>
QuarantineAdoption BasicQuarantine<Tuple>::adopt(uint64_t now) {
  const auto t0 = std::chrono::steady_clock::now();
  QuarantineAdoption r;
  r.outcome = StoreOutcome::kAdopted;
  r.expiry_shift = clock_shift(hdr_->clock, now);
  const QuarantineCursor c = hdr_->cursor;
  std::vector<Entry> kept;
  kept.reserve(c.count);
  for (uint32_t k = 0, pos = c.head; k < c.count; ++k, pos = pos + 1 == cap_ ? 0 : pos + 1) {
    Entry e = ring_[pos];
    if (e.backend_id > api::kMaxBackendId || e.hash != hash_of(e.t)) {
      ++r.discarded;
      continue;
    }
    e.until = shifted(e.until, r.expiry_shift);
    if (e.until <= now) {
      ++r.expired;
      continue;
    }
    e.zero = 0;
    kept.push_back(e);
  }
  // An empty ring first, then the entries, then the cursor that takes them in: an adopter
  // killed while rewriting leaves an empty quarantine (tuples let go early), never a ring
  // whose deadlines were shifted twice.
  head_ = count_ = 0;
  publish();
  for (const Entry& e : kept) {
    ring_[count_] = e;
    index_put(count_++);
  }
  hdr_->clock = now;
  publish();
  r.adopted = count_;
  r.micros = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                       std::chrono::steady_clock::now() - t0)
                                       .count());
  return r;
}

template <typename Tuple>
uint32_t BasicQuarantine<Tuple>::hash_of(const Tuple& t) const {
  return static_cast<uint32_t>(siphash<1, 3>(key_, &t, sizeof t));
}

// Entries before the cursor that takes them in (add), and the cursor in one 8-byte store:
// relaxed, as the only reader is a later process (after this one died: the flock), and
// kill -9 leaves program order in the file. The fence is compiler-only (no instruction): it
// keeps the entry's stores ahead of the cursor's.
template <typename Tuple>
void BasicQuarantine<Tuple>::publish() {
  std::atomic_signal_fence(std::memory_order_release);
  std::atomic_ref<QuarantineCursor>(hdr_->cursor)
      .store(QuarantineCursor{head_, count_}, std::memory_order_relaxed);
}

template <typename Tuple>
void BasicQuarantine<Tuple>::index_put(uint32_t pos) {
  const uint32_t h = ring_[pos].hash;
  uint32_t i = h & index_mask_;
  while (index_[i] != 0) i = (i + 1) & index_mask_;
  index_[i] = slot(h, pos);
}

template <typename Tuple>
void BasicQuarantine<Tuple>::pop_head() {
  const Entry& e = ring_[head_];
  // Find the head's index slot, then close the gap (backward shift): every later entry of
  // the run that may move into the gap without passing its home slot moves up.
  uint32_t i = e.hash & index_mask_;
  while (index_[i] != slot(e.hash, head_)) i = (i + 1) & index_mask_;
  for (uint32_t j = (i + 1) & index_mask_; index_[j] != 0; j = (j + 1) & index_mask_) {
    const uint32_t home = slot_hash(index_[j]) & index_mask_;
    // j's entry may fill i if its home is not cyclically in (i, j].
    const bool home_in = i < j ? (home > i && home <= j) : (home > i || home <= j);
    if (!home_in) {
      index_[i] = index_[j];
      i = j;
    }
  }
  index_[i] = 0;
  const uint32_t id = e.backend_id;
  head_ = head_ + 1 == cap_ ? 0 : head_ + 1;
  --count_;
  publish();
  if (leave_) leave_(ctx_, id);
}

template <typename Tuple>
void BasicQuarantine<Tuple>::expire(uint64_t now) {
  if (count_ == 0 || ring_[head_].until > now) return;
  do pop_head();
  while (count_ && ring_[head_].until <= now);
  hdr_->clock = now;
}

template <typename Tuple>
void BasicQuarantine<Tuple>::add(const Tuple& t, uint32_t backend_id, uint64_t until,
                                 uint64_t now) {
  expire(now);
  if (count_ == cap_) {
    pop_head();
    ++released_early_;
  }
  uint32_t pos = head_ + count_;
  if (pos >= cap_) pos -= cap_;
  ring_[pos] = Entry{t, backend_id, hash_of(t), 0, until};
  index_put(pos);
  ++count_;
  hdr_->clock = now;
  publish();  // after the entry: killed before this line, the entry is lost, not torn
}

template <typename Tuple>
bool BasicQuarantine<Tuple>::holds(const Tuple& t, uint64_t now) {
  expire(now);
  if (count_ == 0) return false;
  const uint32_t h = hash_of(t);
  for (uint32_t i = h & index_mask_; index_[i] != 0; i = (i + 1) & index_mask_)
    if (slot_hash(index_[i]) == h && ring_[slot_pos(index_[i])].t == t)
      return true;
  return false;
}

template class BasicQuarantine<PortTuple>;
template class BasicQuarantine<PortTuple6>;

// ---- PortPicker ----

PortPicker::PortPicker(uint16_t lo, uint16_t hi, const PortOwnership& own, uint32_t worker,
                       const HashKey& key, uint64_t seed)
    : lo_(lo), range_(lo <= hi ? uint32_t{hi} - lo + 1 : 0), mask_(own.mask()), worker_(worker),
      own_(own), key_(key) {
  for (uint32_t i = 0; i < range_; ++i)
    if (own.owner(static_cast<uint16_t>(lo + i)) == worker) ++share_;
  // Counters start where the seed says: a restarted process takes other ports first.
  uint64_t x = seed;
  for (auto& c : perturb_) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;  // LCG: spreads one seed
    c = range_ ? static_cast<uint32_t>(x >> 32) % range_ : 0;
  }
}

}  // namespace rondo::dp

// A state file that outlives the process (docs/hot-restart.md): what the flow table and the
// local-port quarantine share to keep their arrays in a file instead of private memory.
// Opened close-on-exec (the dataplane execv()s itself on a planned restart) and locked with
// an exclusive flock for as long as it lives (one writer; the lock goes with the process,
// kill -9 included), mapped MAP_SHARED; destroying it unmaps and closes, the file stays.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "dataplane/flow/siphash.h"

namespace rondo::dp {

/// What opening a store file did (FlowAdoption, QuarantineAdoption).
enum class StoreOutcome : uint8_t {
  kCreated,  // no file, an empty one, or adoption off: started empty
  kAdopted,  // the header matched: the consistent contents kept
  kRefused,  // a file that does not match (reason): reinitialised, started empty
};

class MappedStore {
 public:
  /// Opens (creating, mode 0600) `path` and takes the lock. `who` names the owner in
  /// errors ("flow table": "in use by another flow table"). Throws std::system_error if the
  /// file cannot be opened or another live owner holds it.
  MappedStore(std::string path, const char* who);
  ~MappedStore();
  MappedStore(const MappedStore&) = delete;
  MappedStore& operator=(const MappedStore&) = delete;

  /// The file's size when it was opened.
  size_t size() const { return size_; }
  /// Whether the file holds what its owner can adopt. false, *why left empty, for a new
  /// (empty) file or with `adopt` off: created. false, with *why, when the file is shorter
  /// than a header or `mismatch(*h)` names the field that differs: refused. The header is
  /// read into *h.
  template <typename Header, typename Mismatch>
  bool adoptable(bool adopt, Header* h, Mismatch&& mismatch, std::string* why) const {
    if (size_ == 0 || !adopt) return false;
    if (!read_front(h, sizeof *h)) {
      *why = "file shorter than its header";
      return false;
    }
    *why = mismatch(*h);
    return why->empty();
  }
  /// Map the file's first `bytes`, MAP_SHARED. `reset`: first cut the file to 0 and grow it
  /// to `bytes`, so it holds only zeroes (the old contents, magic included, gone at once).
  /// Throws std::system_error.
  char* map(size_t bytes, bool reset);
  /// Set the file's size to `bytes` (a grown file reads zeroes there). Before map() to grow
  /// it; after, only to shrink it within the mapping, whose tail is then unmapped. Throws
  /// std::system_error.
  void resize(size_t bytes);

 private:
  bool read_front(void* dst, size_t n) const;
  [[noreturn]] void fail(const char* what) const;
  std::string path_;
  const char* who_;
  int fd_ = -1;
  size_t size_ = 0;
  char* base_ = nullptr;
  size_t bytes_ = 0;
};

/// What identifies a hash key in a header without revealing it: SipHash-2-4 of a fixed
/// string `what` under the key.
uint64_t key_fingerprint(const HashKey& key, const char* what);

/// The first of a header's magic, layout version and capacity that differs from this
/// build's and this owner's, as a loggable reason; "" when all three match. `kind` names
/// what the magic marks ("a flow table"), `whose` the owner ("this table's").
std::string header_mismatch(const char (&magic)[8], const char (&want_magic)[8], const char* kind,
                            uint32_t version, uint32_t want_version, uint32_t capacity,
                            uint32_t want_capacity, const char* whose);

/// Write the magic after everything else the header and the arrays hold, so a process killed
/// while making the file leaves one the next refuses. Program order is enough against
/// kill -9 (the kernel drains the store buffer when it stops the thread); the fence keeps
/// the compiler from moving the earlier stores past it.
void seal_magic(char (&dst)[8], const char (&magic)[8]);

/// How much to add to a deadline kept in a file, in the caller's ticks: 0 if the adopter's
/// `now` is at or past the writer's last clock (the same boot's TSC goes on: the time down
/// counts), else now - writer_clock (the clock restarted: a deadline keeps the time it had
/// left at the writer's last clock, the time down is not charged).
inline int64_t clock_shift(uint64_t writer_clock, uint64_t now) {
  return now >= writer_clock ? 0 : -static_cast<int64_t>(writer_clock - now);
}
/// A deadline moved by clock_shift() (never below 0).
inline uint64_t shifted(uint64_t t, int64_t shift) {
  const auto back = static_cast<uint64_t>(-shift);
  return shift >= 0 ? t : t > back ? t - back : 0;
}

}  // namespace rondo::dp

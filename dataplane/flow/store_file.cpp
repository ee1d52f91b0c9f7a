// State files that outlive the process; see store_file.h.
#include "dataplane/flow/store_file.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace rondo::dp {

MappedStore::MappedStore(std::string path, const char* who) : path_(std::move(path)), who_(who) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) fail("open");
  // One writer per file: a second live owner would corrupt both.
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    ::close(fd_);
    fd_ = -1;
    errno = e;
    if (e != EWOULDBLOCK) fail("flock");
    fail(("in use by another " + std::string(who_)).c_str());
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int e = errno;
    ::close(fd_);
    errno = e;
    fail("fstat");
  }
  size_ = static_cast<size_t>(st.st_size);
}

MappedStore::~MappedStore() {
  if (base_ != nullptr) ::munmap(base_, bytes_);
  if (fd_ >= 0) ::close(fd_);  // and with it the lock; the file stays for the next process
}

void MappedStore::fail(const char* what) const {
  throw std::system_error(errno, std::generic_category(),
                          std::string(who_) + " store " + path_ + ": " + what);
}

bool MappedStore::read_front(void* dst, size_t n) const {
  return size_ >= n && ::pread(fd_, dst, n, 0) == static_cast<ssize_t>(n);
}

char* MappedStore::map(size_t bytes, bool reset) {
  if (reset && (::ftruncate(fd_, 0) != 0 || ::ftruncate(fd_, static_cast<off_t>(bytes)) != 0))
    fail("ftruncate");
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (p == MAP_FAILED) fail("mmap");
  base_ = static_cast<char*>(p);
  bytes_ = bytes;
  // Advice only (shmem THP may be off; hugetlbfs has huge pages anyway).
  (void)::madvise(p, bytes, MADV_HUGEPAGE);
  return base_;
}

void MappedStore::resize(size_t bytes) {
  if (::ftruncate(fd_, static_cast<off_t>(bytes)) != 0) fail("ftruncate");
  size_ = bytes;
  // Pages past the end of the file would fault (SIGBUS): give them back. bytes is a whole
  // number of pages (the owners' sizes are 2 MiB multiples).
  if (base_ != nullptr && bytes < bytes_) {
    (void)::munmap(base_ + bytes, bytes_ - bytes);
    bytes_ = bytes;
  }
}

uint64_t key_fingerprint(const HashKey& key, const char* what) {
  return siphash<2, 4>(key, what, std::strlen(what));
}

std::string header_mismatch(const char (&magic)[8], const char (&want_magic)[8], const char* kind,
                            uint32_t version, uint32_t want_version, uint32_t capacity,
                            uint32_t want_capacity, const char* whose) {
  if (std::memcmp(magic, want_magic, sizeof magic) != 0)
    return std::string("not ") + kind + " (bad magic, or its writer died making it)";
  if (version != want_version)
    return "layout version " + std::to_string(version) + ", this build reads " +
           std::to_string(want_version);
  if (capacity != want_capacity)
    return "capacity " + std::to_string(capacity) + ", " + whose + " is " +
           std::to_string(want_capacity);
  return {};
}

void seal_magic(char (&dst)[8], const char (&magic)[8]) {
  std::atomic_signal_fence(std::memory_order_release);
  std::memcpy(dst, magic, sizeof dst);
}

}  // namespace rondo::dp

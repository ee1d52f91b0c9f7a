#include "dataplane/runtime/state_dir.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace rondo::dp {
namespace {

constexpr size_t kKeyBytes = 16;

[[noreturn]] void fail(const std::string& what) { throw StateDirError(what); }

std::string errno_text(int e) { return std::strerror(e); }

std::string octal(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

HashKey from_bytes(const uint8_t* b) {
  return HashKey{sip::load_le(b, 8), sip::load_le(b + 8, 8)};
}

// Closes the descriptor on every path out.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Read and check an existing key file. false (errno ENOENT) if there is none.
bool read_key(const std::string& path, HashKey* out) {
  // O_NONBLOCK: a FIFO planted under the name must not hang the start (refused below).
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)};
  if (f.fd < 0) {
    if (errno == ENOENT) return false;
    if (errno == ELOOP) fail(path + ": is a symbolic link; the hash secret must be a regular file");
    fail("cannot open " + path + ": " + errno_text(errno));
  }
  struct stat st{};
  if (::fstat(f.fd, &st) != 0) fail("cannot stat " + path + ": " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) fail(path + ": not a regular file");
  // Whoever owns the file chose or can read the key (a world-writable state directory
  // would let any user plant one).
  if (st.st_uid != ::geteuid())
    fail(path + ": owned by uid " + std::to_string(st.st_uid) + ", not by this process (uid " +
         std::to_string(::geteuid()) + "); the owner may know the flow-hash secret");
  if ((st.st_mode & 077) != 0)
    fail(path + ": mode " + octal(st.st_mode) +
         " lets group or others at the flow-hash secret (anyone who reads it can fill the flow "
         "table's buckets on purpose); chmod 600 it, or delete it to make a new one (flows "
         "adopted from a running dataplane are then lost)");
  if (st.st_size != static_cast<off_t>(kKeyBytes))
    fail(path + ": " + std::to_string(st.st_size) + " bytes, a hash key is exactly " +
         std::to_string(kKeyBytes) + " (damaged? delete it to make a new one)");
  uint8_t b[kKeyBytes];
  const ssize_t n = ::pread(f.fd, b, sizeof b, 0);
  if (n < 0) fail("cannot read " + path + ": " + errno_text(errno));
  if (n != static_cast<ssize_t>(kKeyBytes)) fail(path + ": short read");
  bool zero = true;
  for (uint8_t c : b) zero = zero && c == 0;
  if (zero) fail(path + ": all zero bytes, not a generated key (damaged? delete it to make a new one)");
  *out = from_bytes(b);
  return true;
}

void fill_random(uint8_t* b, size_t n) {
  size_t got = 0;
  while (got < n) {
    // Blocks only until the kernel's pool is first initialised (early boot).
    const ssize_t r = ::getrandom(b + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      fail(std::string("getrandom: ") + errno_text(errno));
    }
    got += static_cast<size_t>(r);
  }
}

// Make a new key file. false if another process published one first (then read that).
bool create_key(const std::string& dir, const std::string& path, HashKey* out) {
  uint8_t b[kKeyBytes];
  bool zero;
  do {
    fill_random(b, sizeof b);
    zero = true;
    for (uint8_t c : b) zero = zero && c == 0;
  } while (zero);

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    // A stale temporary of an earlier process with our pid is junk: remove it first.
    (void)::unlink(tmp.c_str());
    Fd f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)};
    if (f.fd < 0) fail("cannot create " + tmp + ": " + errno_text(errno));
    // The umask can only clear bits; make sure no others' bits survive in any case.
    if (::fchmod(f.fd, 0600) != 0) fail("cannot chmod " + tmp + ": " + errno_text(errno));
    const ssize_t n = ::write(f.fd, b, sizeof b);
    if (n != static_cast<ssize_t>(sizeof b)) {
      const int e = n < 0 ? errno : EIO;
      (void)::unlink(tmp.c_str());
      fail("cannot write " + tmp + ": " + errno_text(e));
    }
    if (::fsync(f.fd) != 0) {
      const int e = errno;
      (void)::unlink(tmp.c_str());
      fail("cannot fsync " + tmp + ": " + errno_text(e));
    }
  }
  // link(), not rename(): rename would replace a key another process published a moment
  // ago, and that process would go on with a key no restart can find again.
  const int rc = ::link(tmp.c_str(), path.c_str());
  const int e = errno;
  (void)::unlink(tmp.c_str());
  if (rc != 0) {
    if (e == EEXIST) return false;
    fail("cannot create " + path + ": " + errno_text(e));
  }
  // The new name must survive a crash too, or the next start makes another key.
  Fd d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd < 0 || ::fsync(d.fd) != 0) fail("cannot fsync " + dir + ": " + errno_text(errno));
  *out = from_bytes(b);
  return true;
}

}  // namespace

HashKey load_or_create_hash_key(const std::string& dir, bool* created) {
  if (dir.empty()) fail("--state-dir is empty");
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    fail("cannot create state directory " + dir + ": " + errno_text(errno));
  struct stat st{};
  if (::stat(dir.c_str(), &st) != 0) fail("cannot stat " + dir + ": " + errno_text(errno));
  if (!S_ISDIR(st.st_mode)) fail("state directory " + dir + " is not a directory");
  const std::string path = dir + "/" + kHashKeyFile;
  HashKey k;
  if (created != nullptr) *created = false;
  if (read_key(path, &k)) return k;
  if (create_key(dir, path, &k)) {
    if (created != nullptr) *created = true;
    return k;
  }
  if (read_key(path, &k)) return k;  // another process made it first
  fail(path + ": appeared and vanished while starting; is another dataplane using this state directory?");
}

// ports.order: text, one line "rondo-ports/1 LO HI WORKERS", then one line of 256
// counters per worker.
bool save_port_order(const std::string& dir, const PortOrder& o, std::string* err) {
  const std::string path = dir + "/" + kPortOrderFile, tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) {
    *err = "cannot write " + tmp + ": " + errno_text(errno);
    return false;
  }
  std::fprintf(f, "rondo-ports/1 %u %u %zu\n", o.lo, o.hi, o.workers.size());
  for (const auto& w : o.workers) {
    for (size_t i = 0; i < w.size(); ++i) std::fprintf(f, i ? " %u" : "%u", w[i]);
    std::fputc('\n', f);
  }
  const bool ok = std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  std::fclose(f);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    *err = "cannot write " + path + ": " + errno_text(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

std::optional<PortOrder> take_port_order(const std::string& dir) {
  const std::string path = dir + "/" + kPortOrderFile;
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return std::nullopt;
  PortOrder o;
  unsigned lo = 0, hi = 0;
  size_t n = 0;
  bool ok = std::fscanf(f, "rondo-ports/1 %u %u %zu", &lo, &hi, &n) == 3 && lo <= 65535 &&
            hi <= 65535 && n <= 64;
  o.lo = static_cast<uint16_t>(lo);
  o.hi = static_cast<uint16_t>(hi);
  for (size_t w = 0; ok && w < n; ++w) {
    auto& c = o.workers.emplace_back();
    for (auto& x : c) ok = ok && std::fscanf(f, "%u", &x) == 1;
  }
  std::fclose(f);
  ::unlink(path.c_str());
  if (!ok) return std::nullopt;
  return o;
}

}  // namespace rondo::dp

// The dataplane's state directory (--state-dir, default /var/lib/rondo): what must survive
// a restart of the process. hash.key (below) and ports.order (where the local-port searches
// stood at the last clean stop). hash.key is the deployment's 128-bit secret that
// keys every hash a sender can feed (docs/security.md, "Keyed hashing"). A restarted
// dataplane must place flows in the same buckets as the one before it, so the secret is
// made once, at first start, and read on every later one.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "dataplane/flow/siphash.h"

namespace rondo::dp {

/// A state directory or key file that cannot be used; what() names the path and the fix.
struct StateDirError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline constexpr const char* kDefaultStateDir = "/var/lib/rondo";
inline constexpr const char* kHashKeyFile = "hash.key";

/// The secret in dir/hash.key. If the file does not exist, makes it: dir is created (mode
/// 0700) if missing, 16 bytes from getrandom() go to a temporary file (O_EXCL, mode 0600),
/// fsync, then it is linked into place (never over a file another process just made: that
/// one's key is read instead) and the directory is fsynced. A file that is not a regular
/// file, not owned by this process's user, not exactly 16 bytes, all zero, or readable or
/// writable by group or others is refused (StateDirError) and left as it is: the caller must not start with a secret
/// others may know, nor replace one that flows depend on without being told.
/// *created (optional) says whether this call made the file.
HashKey load_or_create_hash_key(const std::string& dir, bool* created = nullptr);

/// Where each worker's local-port search stands (PortPicker's counters), kept across a clean
/// restart in dir/ports.order: the next process goes on from there instead of starting
/// somewhere at random, possibly inside the stretch of ports the backends still hold in
/// TIME_WAIT. Only meaningful for the same port range and worker count.
struct PortOrder {
  uint16_t lo = 0, hi = 0;
  std::vector<std::array<uint32_t, 256>> workers;
};
inline constexpr const char* kPortOrderFile = "ports.order";
/// Write it (temporary file, then rename). false with *err on failure.
bool save_port_order(const std::string& dir, const PortOrder& o, std::string* err);
/// Read it and remove the file (it describes one stopped process, not the next one).
/// nullopt if there is none or it does not parse.
std::optional<PortOrder> take_port_order(const std::string& dir);

}  // namespace rondo::dp

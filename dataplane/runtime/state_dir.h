// The dataplane's state directory (--state-dir, default /var/lib/rondo): what must survive
// a restart of the process. Today one file, hash.key: the deployment's 128-bit secret that
// keys every hash a sender can feed (docs/security.md, "Keyed hashing"). A restarted
// dataplane must place flows in the same buckets as the one before it, so the secret is
// made once, at first start, and read on every later one.
#pragma once

#include <stdexcept>
#include <string>

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

}  // namespace rondo::dp

#include "dataplane/runtime/flow_dir.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>


namespace rondo::dp {

bool prepare_flow_dir(const std::string& dir, std::string* err, std::string* warning) {
  warning->clear();
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    *err = "cannot create " + dir + ": " + std::strerror(errno);
    return false;
  }
  // What is in DIR is trusted at start (the state file is a whole configuration, a flow file
  // names backends): only this user may have put it there. lstat: a symbolic link planted
  // under the name (in /dev/shm, say) is refused, not followed.
  struct stat st{};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    *err = dir + " is not a directory" + (S_ISLNK(st.st_mode) ? " (a symbolic link)" : "");
    return false;
  }
  if (st.st_uid != ::geteuid()) {
    *err = dir + ": owned by uid " + std::to_string(st.st_uid) + ", not by this process (uid " +
           std::to_string(::geteuid()) + "); its files are adopted at start, so only the " +
           "dataplane's user may write them";
    return false;
  }
  if ((st.st_mode & 022) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    *err = dir + ": mode " + mode + " lets group or others write it; its files are adopted at " +
           "start (chmod 700 it)";
    return false;
  }
  struct statfs fs{};
  if (::statfs(dir.c_str(), &fs) == 0 && fs.f_type != TMPFS_MAGIC &&
      fs.f_type != HUGETLBFS_MAGIC)
    *warning = dir + " is not on tmpfs or hugetlbfs (f_type 0x" +
               [&] {
                 char b[20];
                 std::snprintf(b, sizeof b, "%lx", static_cast<unsigned long>(fs.f_type));
                 return std::string(b);
               }() +
               "): the flow tables are mapped shared, so every flow update becomes disk "
               "writeback; use /dev/shm or a tmpfs mount";
  return true;
}

bool replace_file(const std::string& path, std::span<const uint8_t> bytes, std::string* err) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    *err = "cannot create " + tmp + ": " + std::strerror(errno);
    return false;
  }
  size_t done = 0;
  int e = 0;
  while (done < bytes.size() && e == 0) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n > 0)
      done += static_cast<size_t>(n);
    else if (n < 0 && errno != EINTR)
      e = errno;
    else if (n == 0)
      e = EIO;
  }
  if (::close(fd) != 0 && e == 0) e = errno;
  if (e == 0 && ::rename(tmp.c_str(), path.c_str()) != 0) e = errno;
  if (e != 0) {
    ::unlink(tmp.c_str());
    *err = "cannot write " + path + ": " + std::strerror(e);
    return false;
  }
  return true;
}

bool write_stop_mark(const std::string& dir, const StopMark& m, std::string* err) {
  char line[64];
  const int n = std::snprintf(line, sizeof line, "%" PRId64 " %" PRIu64 "\n", m.realtime_ns, m.tsc);
  return replace_file(dir + "/" + kStoppedFile,
                      std::span(reinterpret_cast<const uint8_t*>(line), static_cast<size_t>(n)), err);
}

std::optional<StopMark> take_stop_mark(const std::string& dir) {
  const std::string path = dir + "/" + kStoppedFile;
  FILE* f = std::fopen(path.c_str(), "re");
  if (!f) return std::nullopt;
  StopMark m;
  const bool ok = std::fscanf(f, "%" SCNd64 " %" SCNu64, &m.realtime_ns, &m.tsc) == 2;
  std::fclose(f);
  ::unlink(path.c_str());
  if (!ok) return std::nullopt;
  return m;
}

std::optional<unsigned> read_worker_count(const std::string& dir) {
  FILE* f = std::fopen((dir + "/" + kWorkersFile).c_str(), "re");
  if (!f) return std::nullopt;
  unsigned n = 0;
  const bool ok = std::fscanf(f, "%u", &n) == 1 && n > 0;
  std::fclose(f);
  if (!ok) return std::nullopt;
  return n;
}

bool write_worker_count(const std::string& dir, unsigned n, std::string* err) {
  const std::string line = std::to_string(n) + "\n";
  return replace_file(dir + "/" + kWorkersFile,
                      std::span(reinterpret_cast<const uint8_t*>(line.data()), line.size()), err);
}

unsigned remove_worker_files(const std::string& dir, unsigned from) {
  unsigned removed = 0;
  // Worker indices are dense: stop at the first index with none of the files.
  for (unsigned i = from;; ++i) {
    unsigned here = 0;
    for (const std::string& path : {flow_file(dir, i), quarantine_file(dir, i),
                                    flow6_file(dir, i), quarantine6_file(dir, i)})
      here += ::unlink(path.c_str()) == 0;
    if (here == 0) break;
    removed += here;
  }
  return removed;
}

}  // namespace rondo::dp

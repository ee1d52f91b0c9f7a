// Helpers for the tests of state files that outlive the process (flow_adopt_test,
// quarantine_adopt_test).
#pragma once

#include <gtest/gtest.h>

#include <csignal>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

namespace rondo::dp::store_test {

/// A path under /dev/shm, unlinked before and after the test.
struct StoreFile {
  std::string path;
  StoreFile(const char* prefix, const char* name)
      : path(std::string("/dev/shm/") + prefix + std::to_string(getpid()) + "-" + name) {
    ::unlink(path.c_str());
  }
  ~StoreFile() { ::unlink(path.c_str()); }
};

/// Run `write` in a child process, then kill it with SIGKILL once it is done (its objects
/// never destroyed, as in a crash). Call with ASSERT_NO_FATAL_FAILURE.
template <typename F>
void write_and_kill(F&& write) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    write();
    const char c = 1;
    (void)!::write(ready[1], &c, 1);
    pause();  // killed here
    _exit(0);
  }
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  close(ready[0]);
  close(ready[1]);
}

}  // namespace rondo::dp::store_test

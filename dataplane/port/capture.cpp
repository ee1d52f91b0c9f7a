#include "dataplane/port/capture.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_memory.h>
#include <rte_pdump.h>
#include <sys/stat.h>

#include <filesystem>

namespace rondo::dp {
namespace {

// A secondary maps the primary's memory by opening its hugepage files. --huge-unlink
// removes them once mapped (the primary keeps their fds), and EAL has no public
// accessor for that option: look at the first segment's file. Returns false only when
// the file is known to be gone.
bool hugepage_files_linked() {
  int fd = -1;
  rte_memseg_walk(
      [](const rte_memseg_list*, const rte_memseg* ms, void* arg) {
        *static_cast<int*>(arg) = rte_memseg_get_fd_thread_unsafe(ms);  // the walk holds the lock
        return 1;  // the first segment is enough: all were made the same way
      },
      &fd);
  struct stat st;
  return fd < 0 || fstat(fd, &st) != 0 || st.st_nlink > 0;
}

}  // namespace

std::unique_ptr<CaptureServer> CaptureServer::start(std::string* why) {
  if (rte_eal_process_type() != RTE_PROC_PRIMARY) {
    *why = "not a primary process";
    return nullptr;
  }
  // --no-huge memory is private to this process (anonymous or memfd): a secondary finds
  // no hugepage files to map and cannot start.
  if (!rte_eal_has_hugepages()) {
    *why = "--no-huge: dpdk-dumpcap needs a primary on hugepages";
    return nullptr;
  }
  // --no-shconf and --in-memory turn the multi-process channel off, and rte_pdump_init
  // then succeeds without serving anything: look for the socket a secondary talks to.
  const std::string run_dir = rte_eal_get_runtime_dir();
  std::error_code ec;
  if (!std::filesystem::exists(run_dir + "/mp_socket", ec)) {
    *why = "no multi-process socket in " + run_dir + " (--no-shconf or --in-memory)";
    return nullptr;
  }
  if (!hugepage_files_linked()) {
    *why = "--huge-unlink: the hugepage files a secondary maps are gone";
    return nullptr;
  }
  if (rte_pdump_init() != 0) {
    *why = std::string("rte_pdump_init failed: ") + rte_strerror(rte_errno);
    return nullptr;
  }
  return std::unique_ptr<CaptureServer>(
      new CaptureServer(std::filesystem::path(run_dir).filename().string()));
}

CaptureServer::~CaptureServer() { rte_pdump_uninit(); }

}  // namespace rondo::dp

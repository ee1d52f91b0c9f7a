// The dataplane's flow directory (--flow-dir, docs/hot-restart.md): what one process leaves
// for the next so that no connection drops across a restart, an upgrade or a crash.
//   flows.<worker>  worker's flow table (FlowStore, flow/table.h), mapped shared
//   quarantine.<worker>  worker's local-port quarantine (QuarantineStore, flow/port_pool.h)
//   flows6.<worker>, quarantine6.<worker>  the same for v6 flows (FlowTable6, Quarantine6): a
//                   file of each kind per worker, told apart by their magic as well as by name
//   state           the last desired state applied (api::encode_state), re-applied at start
//   stopped         written by a planned restart once the workers stopped: "<realtime ns> <tsc>"
//   workers         the number of workers of the process that wrote the files
// Flow files without a `stopped` file mean the previous process did not stop cleanly (a crash).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace rondo::dp {

inline constexpr const char* kFlowFilePrefix = "flows.";
inline constexpr const char* kQuarantineFilePrefix = "quarantine.";
inline constexpr const char* kFlow6FilePrefix = "flows6.";
inline constexpr const char* kQuarantine6FilePrefix = "quarantine6.";
inline constexpr const char* kStateFile = "state";
inline constexpr const char* kStoppedFile = "stopped";
inline constexpr const char* kWorkersFile = "workers";

/// Create dir (mode 0700) if missing. false with *err if it cannot be, or is not a directory.
/// *warning (empty if none): dir is not on tmpfs or hugetlbfs, so every write to a flow
/// record becomes disk writeback.
bool prepare_flow_dir(const std::string& dir, std::string* err, std::string* warning);

/// Write `bytes` to path + ".tmp" (mode 0600), then rename it over path: a reader sees the
/// old file or the new one, never half of one. No fsync: the flow directory is memory (tmpfs)
/// and matters only as long as the flow files beside it. false with *err.
bool replace_file(const std::string& path, std::span<const uint8_t> bytes, std::string* err);

/// When a planned restart's workers stopped.
struct StopMark {
  int64_t realtime_ns = 0;  // CLOCK_REALTIME
  uint64_t tsc = 0;
};
/// Write dir/stopped (temporary file, then rename). false with *err.
bool write_stop_mark(const std::string& dir, const StopMark& m, std::string* err);
/// Read dir/stopped and remove it (it describes one stop). nullopt if absent or unreadable.
std::optional<StopMark> take_stop_mark(const std::string& dir);

/// The worker count in dir/workers. nullopt if absent or unreadable (files from before it
/// existed are taken as matching).
std::optional<unsigned> read_worker_count(const std::string& dir);
/// Write dir/workers (temporary file, then rename). false with *err.
bool write_worker_count(const std::string& dir, unsigned n, std::string* err);
/// Remove dir/flows.<i>, dir/quarantine.<i>, dir/flows6.<i> and dir/quarantine6.<i> for
/// every i >= from (a smaller worker count's leftovers). How many files went.
unsigned remove_worker_files(const std::string& dir, unsigned from);


/// dir/flows.<worker>.
inline std::string flow_file(const std::string& dir, unsigned worker) {
  return dir + "/" + kFlowFilePrefix + std::to_string(worker);
}

/// dir/quarantine.<worker>.
inline std::string quarantine_file(const std::string& dir, unsigned worker) {
  return dir + "/" + kQuarantineFilePrefix + std::to_string(worker);
}

/// dir/flows6.<worker>: the worker's v6 flow table (FlowTable6).
inline std::string flow6_file(const std::string& dir, unsigned worker) {
  return dir + "/" + kFlow6FilePrefix + std::to_string(worker);
}

/// dir/quarantine6.<worker>: the worker's v6 local-port quarantine (Quarantine6).
inline std::string quarantine6_file(const std::string& dir, unsigned worker) {
  return dir + "/" + kQuarantine6FilePrefix + std::to_string(worker);
}

}  // namespace rondo::dp

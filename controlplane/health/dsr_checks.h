// Health checks of DSR backends through their tunnel (docs/modes.md, "Health checks in the
// DSR modes"): what the checker connects to, with which mark, and what the tc program
// bpf/rondo_hc_encap.bpf.c must know of each mark. Pure: the kernel side is TunnelMap's.
//
// A backend of an ipip, gue or l2dsr VIP gets its client traffic addressed to VIP:port,
// encapsulated to it (or sent to its MAC); a check of its own address:port would pass with
// the tunnel or the VIP on its lo broken. With DSR checks configured, its check connects to
// VIP:port (the check's port when it names one) from a socket marked with a mark of its own,
// and the program sends those packets the way the dataplane would, to IPv4 and IPv6
// backends alike (an IPv6 VIP's check is an IPv6 socket's).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bpf/hc_encap/hc_encap.h"
#include "controlplane/health/health.h"
#include "controlplane/state/model.h"
#include "dataplane/api/ctl.h"

namespace rondo::cp {

/// One entry of the program's map `hc_backends` (the port host order here; the map holds it
/// in network order). The backend's family is its address's: IPv4 or IPv6 outer headers.
struct TunnelEntry {
  uint32_t mark = 0;
  api::Addr backend_ip;
  api::Mode mode = api::Mode::kIpip;
  // Outer source; unset (::): the checker's own address (the inner source), or for an IPv4
  // VIP's check to an IPv6 backend the kernel's source for the route to the backend.
  api::Addr src;
  uint16_t gue_port = api::kGuePort;
  bool operator==(const TunnelEntry&) const = default;
};

/// The kernel side: the program's map. Injected, so that DsrChecks is tested without one.
class TunnelMap {
 public:
  virtual ~TunnelMap() = default;
  /// Make the map hold exactly `entries`. False with *err when the kernel refused a change.
  virtual bool sync(const std::vector<TunnelEntry>& entries, std::string* err) = 0;
};

/// Marks for backend ids: base | index, index 0..0xffff, the lowest free one for a new
/// backend; a backend keeps its mark while it stays (a check in flight keeps its meaning).
class MarkAllocator {
 public:
  explicit MarkAllocator(uint32_t base = HC_MARK_BASE_DEFAULT) : base_(base) {}
  /// Marks for exactly `backend_ids` (others are freed first). A backend beyond the 65,536
  /// marks gets none (0), reported in *unmarked.
  std::map<uint32_t, uint32_t> assign(const std::vector<uint32_t>& backend_ids,
                                      std::vector<uint32_t>* unmarked);
  uint32_t base() const { return base_; }

 private:
  uint32_t base_;
  std::map<uint32_t, uint32_t> by_backend_;  // backend id -> index
};

/// Whether `base` can be a mark base: its low 16 bits clear (HC_MARK_MASK) and not 0 (a
/// mark of 0 is every unmarked packet's). Returns "" if so.
std::string validate_mark_base(uint32_t base);

/// The checks of a desired state, with DSR backends checked through their tunnel.
struct CheckPlan {
  std::vector<HealthChecker::Target> targets;
  std::vector<TunnelEntry> entries;  // by mark
  std::vector<std::string> notes;    // what to log: backends left without a mark
};

/// Turns each desired state into a CheckPlan and keeps `map` in step with it. Without a
/// map (DSR checks not configured) DSR backends are checked on their own address, as
/// fullnat ones, and that is logged once. Thread-safe.
class DsrChecks {
 public:
  /// `map` may be null: not configured.
  DsrChecks(std::unique_ptr<TunnelMap> map, uint32_t mark_base = HC_MARK_BASE_DEFAULT);

  /// The targets for `desired`, after the map holds their entries. A map the kernel
  /// refused is logged; the checks go on (a DSR backend whose entry is missing fails its
  /// checks: the program drops a mark it does not know).
  std::vector<HealthChecker::Target> apply(const DesiredState& desired);

  bool configured() const { return map_ != nullptr; }

  /// The plan alone (no map, no log): for tests and apply().
  static CheckPlan plan(const DesiredState& desired, bool tunnel, MarkAllocator* marks);

 private:
  std::unique_ptr<TunnelMap> map_;
  std::mutex mu_;
  MarkAllocator marks_;
  bool told_unconfigured_ = false;
};

}  // namespace rondo::cp

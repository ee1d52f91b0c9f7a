// The state file: the control plane's desired state on disk (JSON), so that API changes
// and ids survive a restart. Written atomically: a temporary file in the same directory,
// fsync, rename over the old one, fsync of the directory; a crash leaves either the old or
// the new file, never a torn one.
//
// Format (docs/controlplane.md has an example):
//   {"format": "rondo-state/1", "config_digest": "...", "vip_ids": {...}, "backend_ids":
//    {...}, "interface_ids": {...}, "timeouts": {...}, "local_ips": [...],
//    "interfaces": [{"name", "id", "port", "vlan", "mtu", "addresses": ["192.0.2.1/24"]}],
//    "routes": [...], "neighbours": [...],
//    "vips": [{"name", "id", "address", "port", "protocol", "mode", "scheduler", "syncookies",
//              "health_check", "backends": [{"id", "address", "port", "weight", "drained"}]}]}
// Routes and neighbours name their interface ("interface": NAME) when interfaces are
// declared, else their port ("port": N, the implicit interface), as files written before
// interfaces did; such a file still loads ("interfaces" and "interface_ids" absent: none).
// Health is runtime only and not stored.
#pragma once

#include <optional>
#include <string>
#include <variant>

#include "controlplane/state/ids.h"
#include "controlplane/state/model.h"

namespace rondo::cp {

inline constexpr const char* kStateFormat = "rondo-state/1";

struct PersistedState {
  DesiredState desired;
  IdAllocator vip_ids{api::kMaxVipId};
  IdAllocator backend_ids{api::kMaxBackendId};
  IdAllocator interface_ids{api::kMaxInterfaces - 1};
  /// config_digest() of the config file last applied (seed or reload); "" if none.
  std::string config_digest;
  bool operator==(const PersistedState&) const = default;
};

/// JSON text of `s` (pretty-printed, ends with a newline).
std::string encode_state_file(const PersistedState& s);
/// Parse and check state-file text: every field typed and in range, names valid and
/// unique, backends unique per vip, ids unique and in range, the dataplane's checks pass.
/// Allocators are raised past every id in use. On failure, returns why.
std::variant<PersistedState, std::string> decode_state_file(std::string_view text);

/// Write `s` to `path` atomically. Returns "" or why it failed (the old file is intact).
std::string write_state_file(const std::string& path, const PersistedState& s);
/// Read `path`: nullopt in *result if it does not exist; otherwise the state or why not.
/// Returns false only when the file exists but cannot be used (*error says why).
bool read_state_file(const std::string& path, std::optional<PersistedState>* result,
                     std::string* error);

}  // namespace rondo::cp

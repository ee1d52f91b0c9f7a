// The one validation of desired state, whatever its source: the config file, an API
// change, the state file. The dataplane runs the same rules (api::check_state) on what it
// is pushed; this adds what only the control plane has: vip names and health checks.
#pragma once

#include <vector>

#include "controlplane/state/model.h"
#include "dataplane/api/validate.h"

namespace rondo::cp {

/// Health-check periods, in milliseconds: at least 10 ms, at most an hour.
inline constexpr uint32_t kMinCheckMs = 10, kMaxCheckMs = 3'600'000;
/// Rise and fall counts.
inline constexpr uint32_t kMaxCheckCount = 100;

/// Every problem of `d`, with field paths as in api::check_state ("vips[0].name"; indices
/// are positions in the lists, which to_api keeps). Empty: `d` may be installed.
std::vector<api::Problem> validate(const DesiredState& d);

}  // namespace rondo::cp

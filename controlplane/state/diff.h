// Desired-state diffing: what `reload` (and every API change) does to the running state,
// as lines people read in logs and in `rondoctl reload`:
//   + vip web 203.0.113.10:80/tcp
//   + backend web 198.51.100.3:3004 weight 1
//   ~ backend web 198.51.100.3:3001 weight 1 -> 3
//   - backend web 198.51.100.4:3001
//   + interface clients port 0 vlan 100 mtu default addresses [192.0.2.1/24]
// Identity is by key: a vip by name, a backend by (vip name, address:port), an interface by
// name. Ids never appear in a diff; they follow the key.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "controlplane/state/model.h"

namespace rondo::cp {

/// Every difference from `from` to `to`, vips in `to`'s order then removed ones; the
/// backends of an added or removed vip are listed too. Health is not compared (it is the
/// health checker's, and logged there). Empty when equal up to order and health.
std::vector<std::string> diff_states(const DesiredState& from, const DesiredState& to);

/// Give `next` the identity `current` has: a vip with the name of a current vip gets its
/// id; a backend with the key of a current backend gets its id, drain flag and health (a
/// config file says nothing about drain and health, so a reload keeps them); an interface
/// with the name of a current one gets its id, and `next`'s routes and neighbours follow
/// their interface. Other entries get ids from `new_vip_id` / `new_backend_id` /
/// `new_interface_id`. Returns "" or, when an allocator runs out of ids, why.
std::string adopt_identity(const DesiredState& current, DesiredState* next,
                           const std::function<std::optional<uint32_t>()>& new_vip_id,
                           const std::function<std::optional<uint32_t>()>& new_backend_id,
                           const std::function<std::optional<uint32_t>()>& new_interface_id);

/// "203.0.113.10:80/tcp".
std::string format_vip_address(const VipSpec& v);
/// "tcp :8080" / "http /healthz" / "none", with the period: for diffs and tables.
std::string format_health_check(const HealthCheck& hc);

}  // namespace rondo::cp

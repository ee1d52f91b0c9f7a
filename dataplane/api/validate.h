// The rules every desired state obeys, whatever its source.
//
// One function holds them: the control plane runs check_state (through cp::validate,
// which adds names and health checks) on the config file, on every API change and on the
// state file; the dataplane runs it on every state it is pushed. A problem names the field
// it is about by its path in the state ("vips[1].backends[0].address", indices as in the
// lists), so each source can point at it in its own terms (a config file line, an API
// error, a state-file field), and every source reports the same message.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/api/ctl.h"

namespace rondo::api {

/// One broken rule.
struct Problem {
  std::string field;    // path of the offending value, e.g. "vips[0].port"; "" for the whole
  std::string message;  // what is wrong, e.g. "0 is not a port (1-65535)"
  std::string related;  // path of the entry it clashes with ("local_ips[0]"), or ""
  /// "field: message (see related)".
  std::string to_string() const;
  bool operator==(const Problem&) const = default;
};

/// Timeouts travel as u32 milliseconds and are set in whole seconds.
inline constexpr uint32_t kMaxTimeoutSeconds = UINT32_MAX / 1000;

/// An interface's name: 1-15 characters from a-z 0-9 . _ - (a metrics label, a Linux
/// interface name's length).
inline constexpr size_t kMaxInterfaceName = 15;
/// Why `name` cannot name an interface ("\"Eth0\" is not a valid interface name (...)"), or "".
std::string interface_name_problem(std::string_view name);

/// An interface's VLAN: 1-kMaxVlan tagged (4095 is reserved by 802.1Q), 0 untagged.
inline constexpr uint16_t kMaxVlan = 4094;
/// MTUs, the dataplane's --mtu's range and an interface's: IPv4's minimum datagram a host
/// must take (RFC 791), 9000-byte jumbo frames; IPv6 needs 1280 on every link (RFC 8200 5).
inline constexpr uint32_t kMinMtu = 576, kMaxMtu = 9000, kMinMtu6 = 1280;

/// Why a host-order IPv4 address cannot be a vip, backend, local address or next hop, or "".
std::string unusable_address_reason(uint32_t ip);
/// The same for either family. IPv6: the unspecified address, ::1 and ff00::/8. Link-local
/// (fe80::/10) is not refused here: a next hop or neighbour may be one, check_state refuses it
/// for vips, backends and local ips. Nothing in ::ffff:0:0/96 is IPv6 (see Addr).
std::string unusable_address_reason(const Addr& ip);

/// Every problem of `s`, in field order: addresses usable and not shared between roles (a
/// vip is not a local ip, a backend is neither), uniqueness (local ips, vips by address,
/// port and protocol, backends per vip, routes, neighbours), ids unique and in range, ports
/// non-zero, timeouts in range, routes without host bits, neighbour MACs unicast; direct
/// server return (api::is_dsr): no SYN cookies nor PROXY protocol, backends on the vip's
/// port, and for l2dsr backends on-link by the routes. Families: a vip's backends are of one
/// family; full-NAT needs a local ip of its backends' family; route prefix lengths per family
/// and next hops of the prefix's family; IPv6 vips and backends not yet with direct server
/// return, SYN cookies or the PROXY protocol. Interfaces: ids (0-255) and names (1-15 of
/// [a-z0-9._-]) unique, VLAN 0-4094, one interface per (port, VLAN), MTU 576-9000 (0: --mtu)
/// and at least 1280 with an IPv6 address or route, addresses usable host addresses of their
/// subnet on one interface only and neither a vip nor a local ip, one subnet per interface;
/// routes and neighbours name a declared interface (any, when none is declared); neighbours
/// unique per (interface, address); l2dsr's on-link rule counts the interfaces' subnets.
std::vector<Problem> check_state(const State& s);

/// What only the dataplane can check, knowing its port count and --mtu: interfaces on ports
/// it has (without declared interfaces, routes and neighbours name a port: its implicit
/// untagged interface), interface MTUs at most --mtu (the ports' MTU), and an interface
/// without an MTU of its own (--mtu) that carries IPv6 only when --mtu is at least 1280.
std::vector<Problem> check_dataplane(const State& s, uint32_t n_ports, uint32_t mtu);

/// The first problem of check_state as text, or "" if there is none.
std::string validate_state(const State& s);

}  // namespace rondo::api

// The control plane's desired-state model: what the operator wants, by name.
//
// api::State is what the dataplane needs (ids, addresses); this model adds what people and
// tools use: vip names, drain and health flags, health-check settings. VIPs are keyed by
// name (and, separately, by address:port/protocol), backends by (vip, address:port). Every
// vip and backend carries a stable id, allocated by key (never by position in a file) and
// kept for as long as the entry exists: the dataplane's flows and counters refer to it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/api/ctl.h"
#include "dataplane/api/validate.h"

namespace rondo::cp {

/// Health of a backend as the health checker last saw it. Runtime only: never in the
/// config file nor in the state file; every backend starts kUnknown.
enum class Health : uint8_t {
  kUnknown,  // not checked (yet, or no checks configured): new flows allowed
  kUp,
  kDown,     // new flows not allowed (api::Backend::down)
};

/// "unknown", "up", "down".
std::string_view health_name(Health h);

/// Per-vip health-check settings, from the config file (`health_check:` of a vip).
struct HealthCheck {
  enum class Type : uint8_t { kNone, kTcp, kHttp };
  Type type = Type::kNone;  // kNone: no checks, every backend stays kUnknown
  uint16_t port = 0;        // 0: the backend's own port
  std::string path = "/";   // kHttp: the request path
  uint16_t http_status = 200;  // kHttp: the status that counts as success
  uint32_t interval_ms = 2000;
  uint32_t timeout_ms = 1000;
  uint32_t rise = 2;  // consecutive successes to go up
  uint32_t fall = 3;  // consecutive failures to go down
  bool operator==(const HealthCheck&) const = default;
};

/// "none", "tcp", "http".
std::string_view health_check_type_name(HealthCheck::Type t);

struct BackendSpec {
  uint32_t id = 0;  // stable; <= api::kMaxBackendId
  api::Addr ip;
  uint16_t port = 0;
  uint16_t weight = 1;
  bool drained = false;  // operator's drain: no new flows, existing flows continue
  Health health = Health::kUnknown;
  bool operator==(const BackendSpec&) const = default;
};

struct VipSpec {
  std::string name;  // unique; 1-64 characters from A-Z a-z 0-9 _ - .
  uint32_t id = 0;   // stable; <= api::kMaxVipId
  api::Addr ip;
  uint16_t port = 0;
  api::Proto proto = api::Proto::kTcp;
  api::Mode mode = api::Mode::kFullNat;
  api::Sched sched = api::Sched::kRoundRobin;
  api::SynCookies syncookies = api::SynCookies::kOff;
  api::ProxyProtocol proxy_protocol = api::ProxyProtocol::kOff;
  api::OnAllDown on_all_down = api::OnAllDown::kDrop;
  HealthCheck health_check;
  std::vector<BackendSpec> backends;
  // rondoctl vip drain: the VIP's address is no longer announced by BGP for this VIP (the
  // dataplane still serves what reaches it). The control plane's alone, like health.
  bool drained = false;
  bool operator==(const VipSpec&) const = default;

  BackendSpec* find_backend(const api::Addr& ip, uint16_t port);
  const BackendSpec* find_backend(const api::Addr& ip, uint16_t port) const;
};

struct DesiredState {
  std::vector<VipSpec> vips;
  std::vector<api::Addr> local_ips;
  // Declared interfaces (a port plus an optional VLAN), each with a stable id given by name
  // like a vip's. Empty: the dataplane's implicit ones, one untagged interface per port whose
  // id is the port id. Routes and neighbours hold an interface id (api::Route::iface), kept
  // in step with these ids by assign_fresh_ids and adopt_identity.
  std::vector<api::Interface> interfaces;
  std::vector<api::Route> routes;
  std::vector<api::Neighbour> neighbours;
  api::Timeouts timeouts;
  bool operator==(const DesiredState&) const = default;

  const api::Interface* find_interface(std::string_view name) const;
  const api::Interface* find_interface(uint16_t id) const;
  /// What `port: N` means in a route or neighbour: the implicit interface N when none are
  /// declared, else the declared untagged interface on port N; nullopt when there is none.
  std::optional<uint16_t> interface_of_port(uint16_t port) const;
  /// The name of interface `id`: a declared one's, or the implicit "port<N>".
  std::string interface_name(uint16_t id) const;

  VipSpec* find_vip(std::string_view name);
  const VipSpec* find_vip(std::string_view name) const;
  /// The vip serving ip:port/proto, if any.
  const VipSpec* find_vip(const api::Addr& ip, uint16_t port, api::Proto proto) const;
  size_t backend_count() const;
};

/// What the dataplane is told: ids, addresses, weights; drained as is; down when the
/// health is kDown (kUnknown forwards, so a vip without checks works).
api::State to_api(const DesiredState& d);

/// Give ids in order of appearance (vips 0, 1, ...; backends 0, 1, ... over all vips;
/// interfaces 0, 1, ..., routes and neighbours following theirs), as a first start does.
/// Used for a state with no history.
void assign_fresh_ids(DesiredState* d);

/// Give the declared interfaces new ids: `ids[i]` for interfaces[i], the routes and
/// neighbours naming one following it. A no-op without declared interfaces (routes then
/// name ports).
void renumber_interfaces(DesiredState* d, const std::vector<uint16_t>& ids);

/// The implicit interface of port N: "port<N>" (the dataplane's name for it).
std::string implicit_interface_name(uint16_t port);
/// Why `name` cannot name an interface, or "" if it can: 1-15 characters from a-z 0-9 . _ -
/// (it becomes a metrics label and fits a Linux interface name).
std::string check_interface_name(std::string_view name);
/// "192.0.2.1/24", "2001:db8:200::1/64".
std::string format_prefix(const api::Prefix& p);
/// "ADDRESS/LEN" of either family, length up to the family's; host bits may be set (an
/// interface address). nullopt when it is not one.
std::optional<api::Prefix> parse_prefix(std::string_view s);

// ---- small shared helpers (config loader, API server and rondoctl agree on them) ----

/// "tcp" / "udp".
std::string_view proto_name(api::Proto p);
std::optional<api::Proto> parse_proto(std::string_view s);
/// "rr", "wrr", "maglev", "sh", "lc" (api::kSchedNames).
std::string_view sched_name(api::Sched s);
std::optional<api::Sched> parse_sched(std::string_view s);
/// The scheduler names for an error message: "rr, wrr, maglev, sh, lc".
std::string sched_choices();
/// "fullnat", "ipip", "gue", "l2dsr" (api::kModeNames).
std::string_view mode_name(api::Mode m);
std::optional<api::Mode> parse_mode(std::string_view s);
/// The mode names for an error message: "fullnat, ipip, gue, l2dsr".
std::string mode_choices();
/// "off" / "on" / "auto".
std::string_view syncookies_name(api::SynCookies c);
std::optional<api::SynCookies> parse_syncookies(std::string_view s);
/// "off" or "v2", as in the config file, the API and the state file.
std::string_view proxy_protocol_name(api::ProxyProtocol p);
std::optional<api::ProxyProtocol> parse_proxy_protocol(std::string_view s);
/// "drop" or "open": what a vip does with new connections when all its backends are down.
std::string_view on_all_down_name(api::OnAllDown o);
std::optional<api::OnAllDown> parse_on_all_down(std::string_view s);

/// Why `name` cannot name a vip, or "" if it can.
std::string check_name(std::string_view name);
/// Why an address (either family) cannot be a vip, backend or local address, or "".
/// Role rules (link-local, families of a vip) are validate()'s.
using api::unusable_address_reason;
/// Parse "a.b.c.d" or an IPv6 address (RFC 4291 text) into a usable host address; on
/// failure *why says what is wrong ("... is not an IP address").
std::optional<api::Addr> parse_host_address(std::string_view s, std::string* why);
/// Parse a decimal port 1-65535; on failure *why says what is wrong.
std::optional<uint16_t> parse_port(std::string_view s, std::string* why);
/// Parse "a.b.c.d:port" or "[v6]:port" (api::parse_endpoint; both parts checked as above).
std::optional<std::pair<api::Addr, uint16_t>> parse_endpoint(std::string_view s, std::string* why);
/// "a.b.c.d:port", "[v6]:port".
using api::format_endpoint;
using api::format_addr;
/// Whether `s` is IPv6 text for an address in ::ffff:0:0/96 (which api::parse_addr refuses:
/// such an address is written as IPv4), for a clearer error.
bool looks_v4_mapped(std::string_view s);

inline constexpr size_t kMaxNameLength = 64;
inline constexpr size_t kMaxInterfaceNameLength = 15;

}  // namespace rondo::cp

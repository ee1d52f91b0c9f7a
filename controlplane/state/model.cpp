#include "controlplane/state/model.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <map>

#include "dataplane/api/validate.h"

namespace rondo::cp {

std::string_view health_name(Health h) {
  switch (h) {
    case Health::kUnknown: return "unknown";
    case Health::kUp: return "up";
    case Health::kDown: return "down";
  }
  return "unknown";
}

std::string_view health_check_type_name(HealthCheck::Type t) {
  switch (t) {
    case HealthCheck::Type::kNone: return "none";
    case HealthCheck::Type::kTcp: return "tcp";
    case HealthCheck::Type::kHttp: return "http";
  }
  return "none";
}

BackendSpec* VipSpec::find_backend(const api::Addr& ip, uint16_t port) {
  auto it = std::find_if(backends.begin(), backends.end(),
                         [&](const BackendSpec& b) { return b.ip == ip && b.port == port; });
  return it == backends.end() ? nullptr : &*it;
}

const BackendSpec* VipSpec::find_backend(const api::Addr& ip, uint16_t port) const {
  return const_cast<VipSpec*>(this)->find_backend(ip, port);
}

VipSpec* DesiredState::find_vip(std::string_view name) {
  auto it = std::find_if(vips.begin(), vips.end(), [&](const VipSpec& v) { return v.name == name; });
  return it == vips.end() ? nullptr : &*it;
}

const VipSpec* DesiredState::find_vip(std::string_view name) const {
  return const_cast<DesiredState*>(this)->find_vip(name);
}

const VipSpec* DesiredState::find_vip(const api::Addr& ip, uint16_t port, api::Proto proto) const {
  auto it = std::find_if(vips.begin(), vips.end(), [&](const VipSpec& v) {
    return v.ip == ip && v.port == port && v.proto == proto;
  });
  return it == vips.end() ? nullptr : &*it;
}

const api::Interface* DesiredState::find_interface(std::string_view name) const {
  auto it = std::find_if(interfaces.begin(), interfaces.end(),
                         [&](const api::Interface& i) { return i.name == name; });
  return it == interfaces.end() ? nullptr : &*it;
}

const api::Interface* DesiredState::find_interface(uint16_t id) const {
  auto it = std::find_if(interfaces.begin(), interfaces.end(),
                         [&](const api::Interface& i) { return i.id == id; });
  return it == interfaces.end() ? nullptr : &*it;
}

std::optional<uint16_t> DesiredState::interface_of_port(uint16_t port) const {
  if (interfaces.empty()) return port;
  for (const auto& i : interfaces)
    if (i.port_id == port && i.vlan == 0) return i.id;
  return std::nullopt;
}

std::string DesiredState::interface_name(uint16_t id) const {
  if (interfaces.empty()) return implicit_interface_name(id);
  const api::Interface* i = find_interface(id);
  return i ? i->name : "(interface " + std::to_string(id) + ")";
}

size_t DesiredState::backend_count() const {
  size_t n = 0;
  for (const auto& v : vips) n += v.backends.size();
  return n;
}

api::State to_api(const DesiredState& d) {
  api::State s;
  s.local_ips = d.local_ips;
  s.interfaces = d.interfaces;
  s.routes = d.routes;
  s.neighbours = d.neighbours;
  s.timeouts = d.timeouts;
  s.vips.reserve(d.vips.size());
  for (const auto& v : d.vips) {
    api::Vip av{.id = v.id, .ip = v.ip, .port = v.port, .proto = v.proto, .mode = v.mode,
                .sched = v.sched, .syncookies = v.syncookies, .proxy_protocol = v.proxy_protocol,
                .on_all_down = v.on_all_down};
    av.backends.reserve(v.backends.size());
    for (const auto& b : v.backends)
      av.backends.push_back({.id = b.id, .ip = b.ip, .port = b.port, .weight = b.weight,
                             .drained = b.drained, .down = b.health == Health::kDown});
    s.vips.push_back(std::move(av));
  }
  return s;
}

void assign_fresh_ids(DesiredState* d) {
  uint32_t vip_id = 0, backend_id = 0;
  for (auto& v : d->vips) {
    v.id = vip_id++;
    for (auto& b : v.backends) b.id = backend_id++;
  }
  std::vector<uint16_t> ids(d->interfaces.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<uint16_t>(i);
  renumber_interfaces(d, ids);
}

void renumber_interfaces(DesiredState* d, const std::vector<uint16_t>& ids) {
  if (d->interfaces.empty()) return;
  // Old id -> new id, from the ids as they are before any is changed.
  std::map<uint16_t, uint16_t> to;
  for (size_t i = 0; i < d->interfaces.size() && i < ids.size(); ++i)
    to.emplace(d->interfaces[i].id, ids[i]);
  auto follow = [&](uint16_t* iface) {
    if (auto it = to.find(*iface); it != to.end()) *iface = it->second;
  };
  for (auto& r : d->routes) follow(&r.iface);
  for (auto& n : d->neighbours) follow(&n.iface);
  for (size_t i = 0; i < d->interfaces.size() && i < ids.size(); ++i) d->interfaces[i].id = ids[i];
}

std::string implicit_interface_name(uint16_t port) { return "port" + std::to_string(port); }

// The dataplane's rule and words (api/validate.h): one rule for every source.
std::string check_interface_name(std::string_view s) { return api::interface_name_problem(s); }

std::string format_prefix(const api::Prefix& p) {
  return api::format_addr(p.addr) + "/" + std::to_string(p.len);
}

std::optional<api::Prefix> parse_prefix(std::string_view s) {
  const auto slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto ip = api::parse_addr(s.substr(0, slash));
  if (!ip) return std::nullopt;
  const std::string_view len_text = s.substr(slash + 1);
  unsigned len = 0;
  auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
  if (len_text.empty() || ec != std::errc{} || end != len_text.data() + len_text.size() ||
      len > (ip->is_v4() ? 32u : 128u))
    return std::nullopt;
  return api::Prefix{.addr = *ip, .len = static_cast<uint8_t>(len)};
}

std::string_view proto_name(api::Proto p) { return p == api::Proto::kUdp ? "udp" : "tcp"; }

std::optional<api::Proto> parse_proto(std::string_view s) {
  if (s == "tcp") return api::Proto::kTcp;
  if (s == "udp") return api::Proto::kUdp;
  return std::nullopt;
}

namespace {

// The wire's name lists (api::kSchedNames, api::kModeNames), walked by value or by name.
template <class Row, size_t N, class E>
std::string_view name_in(const Row (&rows)[N], E Row::*value, E v) {
  for (const auto& r : rows)
    if (r.*value == v) return r.name;
  return "unknown";
}

template <class Row, size_t N, class E>
std::optional<E> value_in(const Row (&rows)[N], E Row::*value, std::string_view name) {
  for (const auto& r : rows)
    if (name == r.name) return r.*value;
  return std::nullopt;
}

template <class Row, size_t N>
std::string names_in(const Row (&rows)[N]) {
  std::string out;
  for (const auto& r : rows) out += (out.empty() ? "" : ", ") + std::string(r.name);
  return out;
}

}  // namespace

std::string_view sched_name(api::Sched s) {
  return name_in(api::kSchedNames, &api::SchedName::sched, s);
}

std::optional<api::Sched> parse_sched(std::string_view s) {
  return value_in(api::kSchedNames, &api::SchedName::sched, s);
}

std::string sched_choices() { return names_in(api::kSchedNames); }

std::string_view mode_name(api::Mode m) {
  return name_in(api::kModeNames, &api::ModeName::mode, m);
}

std::optional<api::Mode> parse_mode(std::string_view s) {
  return value_in(api::kModeNames, &api::ModeName::mode, s);
}

std::string mode_choices() { return names_in(api::kModeNames); }

std::string_view syncookies_name(api::SynCookies c) {
  switch (c) {
    case api::SynCookies::kOn: return "on";
    case api::SynCookies::kAuto: return "auto";
    case api::SynCookies::kOff: break;
  }
  return "off";
}

std::string_view proxy_protocol_name(api::ProxyProtocol p) {
  return p == api::ProxyProtocol::kV2 ? "v2" : "off";
}

std::optional<api::ProxyProtocol> parse_proxy_protocol(std::string_view s) {
  if (s == "off") return api::ProxyProtocol::kOff;
  if (s == "v2") return api::ProxyProtocol::kV2;
  return std::nullopt;
}

std::string_view on_all_down_name(api::OnAllDown o) {
  return o == api::OnAllDown::kOpen ? "open" : "drop";
}

std::optional<api::OnAllDown> parse_on_all_down(std::string_view s) {
  if (s == "drop") return api::OnAllDown::kDrop;
  if (s == "open") return api::OnAllDown::kOpen;
  return std::nullopt;
}

std::optional<api::SynCookies> parse_syncookies(std::string_view s) {
  if (s == "off") return api::SynCookies::kOff;
  if (s == "on") return api::SynCookies::kOn;
  if (s == "auto") return api::SynCookies::kAuto;
  return std::nullopt;
}

std::string check_name(std::string_view s) {
  const bool valid = !s.empty() && s.size() <= kMaxNameLength &&
                     std::all_of(s.begin(), s.end(), [](char c) {
                       return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
                     });
  if (valid) return {};
  std::string why = "\"";
  why.append(s).append("\" is not a valid name (1-").append(std::to_string(kMaxNameLength));
  why.append(" characters from A-Z a-z 0-9 _ - .)");
  return why;
}

std::optional<api::Addr> parse_host_address(std::string_view s, std::string* why) {
  auto ip = api::parse_addr(s);
  if (!ip) {
    *why = std::string(s) + (looks_v4_mapped(s) ? " is an IPv4-mapped IPv6 address: write it as IPv4"
                                                : " is not an IP address");
    return std::nullopt;
  }
  if (auto r = unusable_address_reason(*ip); !r.empty()) {
    *why = std::string(s) + " " + r;
    return std::nullopt;
  }
  return ip;
}

std::optional<uint16_t> parse_port(std::string_view s, std::string* why) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v < 1 || v > 65535) {
    *why = std::string(s) + " is not a port (1-65535)";
    return std::nullopt;
  }
  return static_cast<uint16_t>(v);
}

std::optional<std::pair<api::Addr, uint16_t>> parse_endpoint(std::string_view s, std::string* why) {
  // api::parse_endpoint says yes or no; the rest only finds the words for a no.
  if (auto ep = api::parse_endpoint(s)) {
    if (ep->port == 0) {
      *why = "0 is not a port (1-65535)";
      return std::nullopt;
    }
    if (auto r = unusable_address_reason(ep->ip); !r.empty()) {
      *why = format_addr(ep->ip) + " " + r;
      return std::nullopt;
    }
    return std::pair{ep->ip, ep->port};
  }
  const std::string shape = " is not ADDRESS:PORT (e.g. 198.51.100.3:3000 or [2001:db8::3]:3000)";
  const auto colon = s.rfind(':');
  const bool bracketed = !s.empty() && s.front() == '[';
  if (colon == std::string_view::npos || (bracketed && (colon == 0 || s[colon - 1] != ']'))) {
    // "2001:db8::3" alone (no brackets, no port) lands here too.
    *why = std::string(s) + shape;
    return std::nullopt;
  }
  std::string_view host = s.substr(0, colon);
  if (bracketed) host = host.substr(1, host.size() - 2);
  if (!bracketed && host.find(':') != std::string_view::npos) {
    // "2001:db8::1:80": the port cannot be told from the address.
    *why = std::string(s) + ": an IPv6 endpoint is written [ADDRESS]:PORT (e.g. [2001:db8::3]:3000)";
    return std::nullopt;
  }
  auto ip = parse_host_address(host, why);
  if (!ip) return std::nullopt;
  if (bracketed && ip->is_v4()) {
    *why = std::string(s) + ": brackets are for IPv6 addresses (write " + format_addr(*ip) + ":PORT)";
    return std::nullopt;
  }
  auto port = parse_port(s.substr(colon + 1), why);
  if (!port) return std::nullopt;
  *why = std::string(s) + shape;  // not expected: api::parse_endpoint refused what passes here
  return std::nullopt;
}

bool looks_v4_mapped(std::string_view s) {
  // What api::parse_addr refuses although inet_pton reads it: v6 text in ::ffff:0:0/96.
  if (s.find(':') == std::string_view::npos || s.size() >= 64) return false;
  std::array<uint8_t, 16> b{};
  if (inet_pton(AF_INET6, std::string(s).c_str(), b.data()) != 1) return false;
  return api::Addr(b).is_v4();
}

}  // namespace rondo::cp

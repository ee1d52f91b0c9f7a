#include "dataplane/api/validate.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <tuple>

namespace rondo::api {
namespace {

std::string at(std::string_view list, size_t i) {
  return std::string(list) + "[" + std::to_string(i) + "]";
}

std::string format_mac(const uint8_t mac[6]) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
  return buf;
}

std::string endpoint(const Addr& ip, uint16_t port) { return format_endpoint(ip, port); }

const char* family_name(const Addr& a) { return a.is_v4() ? "IPv4" : "IPv6"; }

// Longest prefix length of a's family: 32 or 128.
uint8_t max_prefix_len(const Addr& a) { return a.is_v4() ? 32 : 128; }

// `a` with every bit past the first `len` of its family cleared (len <= max_prefix_len(a)).
// A v4 prefix keeps its ::ffff: part: the family is in the first 96 bits.
Addr masked(const Addr& a, uint8_t len) {
  Addr m = a;
  const unsigned keep = (a.is_v4() ? 96u : 0u) + len;  // bits of the 128 kept
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned from = i * 8;
    if (keep >= from + 8) continue;
    m.b[i] = keep <= from ? 0 : static_cast<uint8_t>(m.b[i] & (0xff00u >> (keep - from)));
  }
  return m;
}

// fe80::/10: only meaningful on one link, so never a vip, backend or local ip (a next hop
// may be one: routers announce themselves from fe80::).
bool is_link_local(const Addr& a) { return !a.is_v4() && a.b[0] == 0xfe && (a.b[1] & 0xc0) == 0x80; }

std::string prefix_text(const Addr& a, uint8_t len) { return format_addr(a) + "/" + std::to_string(len); }

// What a vip of each mode uses a local ip for.
const char* local_ip_use(Mode m) {
  switch (m) {
    case Mode::kFullNat: return "full-NAT uses it as the source address";
    case Mode::kIpip: return "ipip uses it as the outer source address";
    case Mode::kGue: return "gue uses it as the outer source address";
    case Mode::kL2Dsr: return "l2dsr uses it as the sender of its ARP requests for the backends";
  }
  return "vips use it as their source address";
}

// Why a setting cannot be on with direct server return: the backend answers the client
// itself, so rondo sees the client's packets only (no handshake to answer, no stream to
// prefix).
constexpr const char* kOneDirection =
    " (with direct server return the backend answers the client itself: rondo sees one "
    "direction only)";

class Checker {
 public:
  explicit Checker(const State& s) : s_(s) {}

  std::vector<Problem> run() {
    local_ips();
    timeouts();
    interfaces();
    routes();
    neighbours();
    vips();
    return std::move(problems_);
  }

 private:
  void add(std::string field, std::string message, std::string related = {}) {
    problems_.push_back({std::move(field), std::move(message), std::move(related)});
  }

  // `what` names the role refused a link-local address ("a vip"), or nullptr if it may be one.
  bool usable(const std::string& field, const Addr& ip, const char* what = nullptr) {
    auto why = unusable_address_reason(ip);
    if (why.empty() && what && is_link_local(ip))
      why = std::string("is a link-local address (fe80::/10), which cannot be ") + what;
    if (!why.empty()) add(field, format_addr(ip) + " " + why);
    return why.empty();
  }

  // Whether `id` names an interface: a declared one, or with none declared any id (the
  // implicit interfaces are the ports, which only the dataplane knows: check_dataplane).
  bool iface_exists(const std::string& field, uint16_t id) {
    if (s_.interfaces.empty() || iface_field_.count(id)) return true;
    add(field, std::to_string(id) + " is not the id of an interface of the state");
    return false;
  }

  void local_ips() {
    for (size_t i = 0; i < s_.local_ips.size(); ++i) {
      const Addr& ip = s_.local_ips[i];
      const std::string f = at("local_ips", i);
      if (!usable(f, ip, "a local ip")) continue;
      if (auto [first, fresh] = local_.emplace(ip, f); !fresh)
        add(f, format_addr(ip) + " is listed twice", first->second);
      else if (ip.is_v4() ? local4_.empty() : local6_.empty())
        (ip.is_v4() ? local4_ : local6_) = f;
    }
    // Every mode sends from one; the first vip says what for.
    if (!s_.vips.empty() && s_.local_ips.empty()) {
      const Mode m = s_.vips[0].mode;
      add("local_ips", std::string("at least one local ip is needed: ") + local_ip_use(m),
          is_dsr(m) ? "vips[0].mode" : "");
    }
  }

  void timeouts() {
    const auto& t = s_.timeouts;
    for (const auto& field : kTimeoutFields) {
      const char* name = field.name;
      const uint32_t ms = t.*field.ms;
      const std::string range = " (1-" + std::to_string(kMaxTimeoutSeconds) + ")";
      if (ms % 1000 != 0)
        add(std::string("timeouts.") + name, std::to_string(ms) + " ms is not a whole number of seconds");
      else if (ms == 0)
        add(std::string("timeouts.") + name, "0 is not a timeout in seconds" + range);
    }
  }

  // An interface address names a host of its subnet: not the IPv4 network or broadcast
  // address (prefixes up to /30), not IPv6's subnet-router anycast address (up to /126).
  bool host_of_subnet(const std::string& field, const Prefix& a) {
    const uint8_t max = max_prefix_len(a.addr);
    if (a.len + 2 > max) return true;
    const std::string text = prefix_text(a.addr, a.len);
    if (a.addr == masked(a.addr, a.len)) {
      add(field, text + " is the " + (a.addr.is_v4() ? "network" : "subnet-router anycast") +
                     " address of its subnet, not a host's");
      return false;
    }
    if (a.addr.is_v4() && (a.addr.v4() | (~0u >> a.len)) == a.addr.v4()) {
      add(field, text + " is the broadcast address of its subnet, not a host's");
      return false;
    }
    return true;
  }

  // Interfaces (api::Interface): ids and names unique, one interface per (port, VLAN), MTUs
  // in range, and addresses that are the interface's own: usable host addresses of their
  // subnet, on one interface only, neither a vip nor a local ip (those are answered on
  // every interface already), and one subnet per interface (its connected route).
  void interfaces() {
    if (s_.interfaces.size() > kMaxInterfaces)
      add("interfaces", "too many interfaces (at most " + std::to_string(kMaxInterfaces) + ")");
    std::map<Addr, std::string> vip_at;
    for (size_t i = 0; i < s_.vips.size(); ++i) vip_at.emplace(s_.vips[i].ip, at("vips", i) + ".address");
    std::map<std::string, std::string> names;
    std::map<std::pair<uint16_t, uint16_t>, std::string> links;  // (port, vlan) -> field
    std::map<std::pair<Addr, uint8_t>, std::string> subnets;     // connected prefix -> field
    for (size_t i = 0; i < s_.interfaces.size(); ++i) {
      const Interface& itf = s_.interfaces[i];
      const std::string f = at("interfaces", i);
      if (itf.id >= kMaxInterfaces)
        add(f + ".id", std::to_string(itf.id) + " is not an interface id (0-" +
                           std::to_string(kMaxInterfaces - 1) + ")");
      else if (auto [first, fresh] = iface_field_.emplace(itf.id, f); !fresh)
        add(f + ".id", "interface id " + std::to_string(itf.id) + " is used twice", first->second + ".id");
      if (auto why = interface_name_problem(itf.name); !why.empty())
        add(f + ".name", why);
      else if (auto [first, fresh] = names.emplace(itf.name, f + ".name"); !fresh)
        add(f + ".name", itf.name + " is already the name of another interface", first->second);
      if (itf.vlan > kMaxVlan) {
        add(f + ".vlan", std::to_string(itf.vlan) + " is not a VLAN id (1-" + std::to_string(kMaxVlan) +
                             "; 0 or absent: untagged)");
      } else if (auto [first, fresh] = links.emplace(std::pair{itf.port_id, itf.vlan}, f + ".vlan"); !fresh) {
        add(f + ".vlan",
            "port " + std::to_string(itf.port_id) + " already has " +
                (itf.vlan ? "an interface on VLAN " + std::to_string(itf.vlan) : std::string("an untagged interface")) +
                ": a frame would belong to two interfaces",
            first->second);
      }
      const bool mtu_ok = itf.mtu == 0 || (itf.mtu >= kMinMtu && itf.mtu <= kMaxMtu);
      if (!mtu_ok)
        add(f + ".mtu", std::to_string(itf.mtu) + " is not an MTU (" + std::to_string(kMinMtu) + "-" +
                            std::to_string(kMaxMtu) + ")");
      std::string v6_use;  // the first field that makes the interface carry IPv6
      for (size_t j = 0; j < itf.addresses.size(); ++j) {
        const Prefix& a = itf.addresses[j];
        const std::string af = f + "." + at("addresses", j);
        if (!a.addr.is_v4() && v6_use.empty()) v6_use = af;
        const std::string text = prefix_text(a.addr, a.len);
        if (a.len == 0 || a.len > max_prefix_len(a.addr)) {
          add(af, text + ": prefix length must be 1-" + std::to_string(max_prefix_len(a.addr)));
          continue;
        }
        if (!usable(af, a.addr, "an interface address") || !host_of_subnet(af, a)) continue;
        if (auto v = vip_at.find(a.addr); v != vip_at.end()) {
          add(af, format_addr(a.addr) + " is also a vip: vips are answered on every interface already",
              v->second);
          continue;
        }
        if (auto l = local_.find(a.addr); l != local_.end()) {
          add(af, format_addr(a.addr) + " is also a local ip: local ips are answered on every "
                  "interface already", l->second);
          continue;
        }
        if (auto [first, fresh] = iface_addr_.emplace(a.addr, af); !fresh) {
          add(af, format_addr(a.addr) + " is already an address of " +
                      (first->second.rfind(f + ".", 0) == 0 ? std::string("this interface") : "another interface"),
              first->second);
          continue;
        }
        if (a.len == max_prefix_len(a.addr)) continue;  // a host route: no subnet
        const std::pair net{masked(a.addr, a.len), a.len};
        if (auto [first, fresh] = subnets.emplace(net, af); !fresh &&
            first->second.rfind(f + ".", 0) != 0)
          add(af, prefix_text(net.first, net.second) + " is also the subnet of another interface: one "
                  "subnet on two interfaces would be two connected routes for one prefix",
              first->second);
        connected_.push_back({net.first, net.second});
      }
      if (v6_use.empty() && itf.id < kMaxInterfaces)
        for (size_t r = 0; r < s_.routes.size() && v6_use.empty(); ++r)
          if (!s_.routes[r].prefix.is_v4() && s_.routes[r].iface == itf.id)
            v6_use = at("routes", r) + ".interface";
      if (mtu_ok && itf.mtu != 0 && itf.mtu < kMinMtu6 && !v6_use.empty())
        add(f + ".mtu", std::to_string(itf.mtu) + " is below IPv6's minimum MTU " + std::to_string(kMinMtu6) +
                            " and the interface carries IPv6", v6_use);
    }
  }

  void routes() {
    std::map<std::pair<Addr, uint8_t>, std::string> seen;
    for (size_t i = 0; i < s_.routes.size(); ++i) {
      const Route& r = s_.routes[i];
      const std::string f = at("routes", i);
      const std::string text = prefix_text(r.prefix, r.prefix_len);
      const uint8_t max_len = max_prefix_len(r.prefix);
      if (r.prefix_len > max_len) {
        add(f + ".prefix", text + ": prefix length must be 0-" + std::to_string(max_len));
        continue;
      }
      if (const Addr net = masked(r.prefix, r.prefix_len); net != r.prefix) {
        add(f + ".prefix", text + " has host bits set (did you mean " +
                               prefix_text(net, r.prefix_len) + "?)");
        continue;
      }
      if (!r.via.is_zero()) {
        if (r.via.is_v4() != r.prefix.is_v4())
          add(f + ".via", format_addr(r.via) + " is " + family_name(r.via) + " but the prefix " +
                              text + " is " + family_name(r.prefix) + ": a next hop has the route's family",
              f + ".prefix");
        else
          usable(f + ".via", r.via);
      }
      iface_exists(f + ".interface", r.iface);
      if (auto [first, fresh] = seen.emplace(std::pair{r.prefix, r.prefix_len}, f + ".prefix"); !fresh)
        add(f + ".prefix", text + " is a duplicate route", first->second);
    }
  }

  // Neighbours are keyed by (interface, address): fe80::1 may be a router on two links.
  void neighbours() {
    std::map<std::pair<uint16_t, Addr>, std::string> seen;
    for (size_t i = 0; i < s_.neighbours.size(); ++i) {
      const Neighbour& n = s_.neighbours[i];
      const std::string f = at("neighbours", i);
      const bool on_iface = iface_exists(f + ".interface", n.iface);
      if (usable(f + ".ip", n.ip) && on_iface) {
        if (auto [first, fresh] = seen.emplace(std::pair{n.iface, n.ip}, f + ".ip"); !fresh)
          add(f + ".ip", format_addr(n.ip) + " already has an entry", first->second);
      }
      if (n.mac[0] & 1)
        add(f + ".mac", format_mac(n.mac) + " is a multicast address, not a host's");
      else if (std::all_of(n.mac, n.mac + 6, [](uint8_t b) { return b == 0; }))
        add(f + ".mac", format_mac(n.mac) + " is the all-zero address");
    }
  }

  void vips() {
    if (s_.vips.size() > kMaxVipId + 1)
      add("vips", "too many vips (at most " + std::to_string(kMaxVipId + 1) + ")");
    std::set<Addr> vip_ips;
    for (const auto& v : s_.vips) vip_ips.insert(v.ip);
    std::map<uint32_t, std::string> vip_ids, backend_ids;
    std::map<std::tuple<Addr, uint16_t, Proto>, std::string> keys;
    size_t n_backends = 0;
    for (size_t i = 0; i < s_.vips.size(); ++i) {
      const Vip& v = s_.vips[i];
      const std::string f = at("vips", i);
      if (v.id > kMaxVipId)
        add(f + ".id", std::to_string(v.id) + " is not a vip id (0-" + std::to_string(kMaxVipId) + ")");
      else if (auto [first, fresh] = vip_ids.emplace(v.id, f + ".id"); !fresh)
        add(f + ".id", "vip id " + std::to_string(v.id) + " is used twice", first->second);
      bool addressed = usable(f + ".address", v.ip, "a vip");
      if (addressed && local_.count(v.ip)) {
        add(f + ".address",
            format_addr(v.ip) + " is also a local ip: return traffic and vip traffic would collide",
            local_.at(v.ip));
        addressed = false;
      }
      if (v.port == 0) {
        add(f + ".port", "0 is not a port (1-65535)");
        addressed = false;
      }
      if (addressed) {
        const std::string text = endpoint(v.ip, v.port) + (v.proto == Proto::kUdp ? "/udp" : "/tcp");
        if (auto [first, fresh] = keys.emplace(std::tuple{v.ip, v.port, v.proto}, f + ".address"); !fresh)
          add(f + ".address", text + " is already served by another vip", first->second);
      }
      const bool known = known_mode(static_cast<uint8_t>(v.mode));
      if (!known) add(f + ".mode", std::to_string(static_cast<int>(v.mode)) + " is not a mode");
      const bool dsr = known && is_dsr(v.mode);
      if (!known_sched(static_cast<uint8_t>(v.sched)))
        add(f + ".scheduler", std::to_string(static_cast<int>(v.sched)) + " is not a scheduler");
      // A SYN cookie answers a TCP handshake; UDP has none.
      if (v.proto == Proto::kUdp && v.syncookies != SynCookies::kOff)
        add(f + ".syncookies", "SYN cookies apply to tcp vips only");
      else if (dsr && v.syncookies != SynCookies::kOff)
        add(f + ".syncookies", std::string("SYN cookies apply to fullnat vips only") + kOneDirection,
            f + ".mode");
      // The header is the start of a TCP stream; a datagram has none.
      if (v.proto == Proto::kUdp && v.proxy_protocol != ProxyProtocol::kOff)
        add(f + ".proxy_protocol", "PROXY protocol applies to tcp vips only");
      else if (dsr && v.proxy_protocol != ProxyProtocol::kOff)
        add(f + ".proxy_protocol",
            std::string("PROXY protocol applies to fullnat vips only") + kOneDirection, f + ".mode");
      family_rules(v, f, known);
      std::map<std::pair<Addr, uint16_t>, std::string> seen;
      for (size_t j = 0; j < v.backends.size(); ++j) {
        const Backend& b = v.backends[j];
        const std::string bf = f + "." + at("backends", j);
        ++n_backends;
        if (b.id > kMaxBackendId)
          add(bf + ".id", std::to_string(b.id) + " is not a backend id (0-" +
                              std::to_string(kMaxBackendId) + ")");
        else if (auto [first, fresh] = backend_ids.emplace(b.id, bf + ".id"); !fresh)
          add(bf + ".id", "backend id " + std::to_string(b.id) + " is used twice", first->second);
        bool ok = usable(bf + ".address", b.ip, "a backend");
        if (ok && vip_ips.count(b.ip)) {
          add(bf + ".address", format_addr(b.ip) + " is a vip address: rondo would forward to itself");
          ok = false;
        } else if (ok && local_.count(b.ip)) {
          add(bf + ".address",
              format_addr(b.ip) + " is a local ip: rondo would forward to itself", local_.at(b.ip));
          ok = false;
        } else if (ok && iface_addr_.count(b.ip)) {
          add(bf + ".address",
              format_addr(b.ip) + " is an interface address: rondo would forward to itself",
              iface_addr_.at(b.ip));
          ok = false;
        }
        if (ok && v.mode == Mode::kL2Dsr) ok = on_link(b.ip, bf + ".address");
        if (b.port == 0) {
          add(bf + ".port", "0 is not a port (1-65535)");
          ok = false;
        } else if (dsr && v.port != 0 && b.port != v.port) {
          // Nothing rewrites the destination: the backend answers for the vip itself.
          add(bf + ".port",
              std::to_string(b.port) + " is not the vip's port " + std::to_string(v.port) +
                  ": with direct server return the backend receives the client's packet "
                  "addressed to " + endpoint(v.ip, v.port) +
                  " unchanged, so it must listen on that port",
              f + ".port");
          ok = false;
        }
        if (ok) {
          if (auto [first, fresh] = seen.emplace(std::pair{b.ip, b.port}, bf + ".address"); !fresh)
            add(bf + ".address", endpoint(b.ip, b.port) + " is already a backend of this vip",
                first->second);
        }
      }
    }
    if (n_backends > kMaxBackendId + 1)
      add("vips", "too many backends (at most " + std::to_string(kMaxBackendId + 1) +
                      " over all vips)");
  }

  // IPv6 (docs/modes.md): one family of backends per vip; full-NAT, ipip and gue to a family
  // need a local ip of it (the source, the outer source); direct server return carries a v6
  // vip's packets to v6 backends only, and l2dsr (nothing but the MAC rewritten) stays in the
  // vip's family; SYN cookies and the PROXY protocol are IPv4 only for now (their packet
  // writers are).
  void family_rules(const Vip& v, const std::string& f, bool known_mode) {
    std::optional<size_t> first_v6;  // the first IPv6 backend, if any
    for (size_t j = 0; j < v.backends.size(); ++j) {
      const Addr& ip = v.backends[j].ip;
      const std::string bf = f + "." + at("backends", j);
      if (j > 0 && ip.is_v4() != v.backends[0].ip.is_v4())
        add(bf + ".address",
            format_addr(ip) + " is " + family_name(ip) + " but the vip's first backend is " +
                family_name(v.backends[0].ip) + ": the backends of a vip are all of one family",
            f + ".backends[0].address");
      if (!ip.is_v4() && !first_v6) first_v6 = j;
    }
    const bool v6_vip = !v.ip.is_v4();
    // `what` says what, with its verb ("SYN cookies are").
    const auto refuse = [&](const std::string& field, const std::string& what) {
      // Name the address that makes it IPv6: the vip's, else its first IPv6 backend.
      const std::string addr_field = v6_vip ? f + ".address" : f + "." + at("backends", *first_v6) + ".address";
      add(field, what + " not supported for IPv6 yet", addr_field);
    };
    if (known_mode && is_dsr(v.mode) && !v.backends.empty()) {
      const Addr& be = v.backends[0].ip;
      const char* name = "this mode";
      for (const auto& m : kModeNames)
        if (m.mode == v.mode) name = m.name;
      if (v6_vip && be.is_v4())
        add(f + ".mode",
            std::string("mode ") + name + " cannot carry an IPv6 vip's packets to IPv4 backends: "
                "with direct server return the backend answers from the vip itself, so it needs "
                "the vip's family (use IPv6 backends, or fullnat for NAT64)",
            f + ".backends[0].address");
      else if (!v6_vip && !be.is_v4() && v.mode == Mode::kL2Dsr)
        add(f + ".mode",
            "mode l2dsr cannot send an IPv4 vip's packets to IPv6 backends: it rewrites only the "
            "destination MAC (use ipip or gue, which carry IPv4 in IPv6)",
            f + ".backends[0].address");
    }
    if (v6_vip || first_v6) {
      if (v.syncookies != SynCookies::kOff) refuse(f + ".syncookies", "SYN cookies are");
      if (v.proxy_protocol != ProxyProtocol::kOff) refuse(f + ".proxy_protocol", "the PROXY protocol is");
    }
    const bool sends_from_local = v.mode == Mode::kFullNat || v.mode == Mode::kIpip ||
                                  v.mode == Mode::kGue;
    if (sends_from_local && !v.backends.empty() && !s_.local_ips.empty()) {
      const Addr& be = v.backends[0].ip;
      if ((be.is_v4() ? local4_ : local6_).empty())
        add(f + ".backends[0].address",
            format_addr(be) + " is " + family_name(be) + " but no local ip is: " +
                (v.mode == Mode::kFullNat ? "full-NAT sends to a backend from a local ip of its "
                                            "family"
                                          : std::string(v.mode == Mode::kIpip ? "ipip" : "gue") +
                                                " sends to a backend from a local ip of its "
                                                "family (the outer source)"),
            "local_ips");
    }
  }

  // l2dsr rewrites only the destination MAC: the backend must be on a directly connected
  // network. With no explicit routes of its family everything is on-link (the implicit
  // default, with the interfaces' connected routes on top); otherwise the longest prefix of
  // its family holding the address decides, as in the dataplane: an explicit route without
  // via, or a connected one (an interface's subnet), is on-link.
  bool on_link(const Addr& ip, const std::string& field) {
    const bool any = std::any_of(s_.routes.begin(), s_.routes.end(),
                                 [&](const Route& r) { return r.prefix.is_v4() == ip.is_v4(); });
    if (!any) return true;
    std::optional<size_t> best;
    for (size_t i = 0; i < s_.routes.size(); ++i) {
      const Route& r = s_.routes[i];
      if (r.prefix.is_v4() != ip.is_v4() || r.prefix_len > max_prefix_len(r.prefix) ||
          masked(ip, r.prefix_len) != r.prefix)
        continue;
      if (!best || r.prefix_len > s_.routes[*best].prefix_len) best = i;
    }
    // An explicit route of the same prefix wins over the connected one (snapshot.cpp).
    for (const Connected& c : connected_)
      if (c.prefix.is_v4() == ip.is_v4() && masked(ip, c.len) == c.prefix &&
          (!best || c.len > s_.routes[*best].prefix_len))
        return true;
    const std::string why =
        ": l2dsr only rewrites the destination MAC, so a backend must be on a directly "
        "connected network (a route without via)";
    if (!best) {
      add(field, format_addr(ip) + " is not on-link (no route holds it)" + why);
      return false;
    }
    const Route& r = s_.routes[*best];
    if (r.via.is_zero()) return true;
    add(field,
        format_addr(ip) + " is not on-link (its route " + prefix_text(r.prefix, r.prefix_len) +
            " goes via " + format_addr(r.via) + ")" + why,
        at("routes", *best) + ".prefix");
    return false;
  }

  const State& s_;
  std::map<Addr, std::string> local_;  // local ip -> its field
  std::map<uint16_t, std::string> iface_field_;  // declared interface id -> its field
  std::map<Addr, std::string> iface_addr_;       // interface address -> its field
  // The connected routes the interfaces' addresses make (state/snapshot.cpp); one that an
  // explicit route's prefix overrides is still listed (on_link lets the explicit one decide).
  struct Connected {
    Addr prefix;
    uint8_t len;
  };
  std::vector<Connected> connected_;
  std::string local4_, local6_;        // the field of the first local ip of each family, or ""
  std::vector<Problem> problems_;
};

}  // namespace

std::string Problem::to_string() const {
  std::string out = field.empty() ? message : field + ": " + message;
  if (!related.empty()) out += " (see " + related + ")";
  return out;
}

std::string unusable_address_reason(const Addr& a) {
  if (a.is_v4()) return unusable_address_reason(a.v4());
  // The IPv4-mapped range ::ffff:0:0/96 needs no rule: an Addr there is IPv4 (ctl.h).
  if (a.is_zero()) return "is the unspecified address (::), not a host address";
  if (a == Addr{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}) return "is the loopback address";
  if (a.b[0] == 0xff) return "is a multicast address (ff00::/8)";
  return {};
}

std::string interface_name_problem(std::string_view name) {
  const bool valid = !name.empty() && name.size() <= kMaxInterfaceName &&
                     std::all_of(name.begin(), name.end(), [](char c) {
                       return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                              c == '_' || c == '-';
                     });
  if (valid) return {};
  // Quoted, at most 64 bytes of it, control bytes as '?'.
  std::string out = "\"";
  for (char c : name.substr(0, 64)) out += static_cast<unsigned char>(c) < ' ' || c == 0x7f ? '?' : c;
  out += name.size() > 64 ? "...\"" : "\"";
  return out + " is not a valid interface name (1-" + std::to_string(kMaxInterfaceName) +
         " characters from a-z 0-9 . _ -)";
}

std::string unusable_address_reason(uint32_t ip) {
  if ((ip >> 24) == 0) return "is in 0.0.0.0/8, not a host address";
  if ((ip >> 24) == 127) return "is a loopback address";
  if ((ip >> 28) == 0xe) return "is a multicast address";
  if ((ip >> 28) == 0xf) return ip == 0xffffffff ? "is the broadcast address" : "is in 240.0.0.0/4, not a host address";
  return {};
}

std::vector<Problem> check_state(const State& s) { return Checker(s).run(); }

std::vector<Problem> check_dataplane(const State& s, uint32_t n_ports, uint32_t mtu) {
  std::vector<Problem> out;
  const std::string ports = n_ports == 0   ? std::string("it has none")
                            : n_ports == 1 ? std::string("it has port 0")
                                           : "its ports are 0-" + std::to_string(n_ports - 1);
  for (size_t i = 0; i < s.interfaces.size(); ++i) {
    const Interface& itf = s.interfaces[i];
    const std::string f = at("interfaces", i);
    if (itf.port_id >= n_ports)
      out.push_back({f + ".port", std::to_string(itf.port_id) + " is not a port of the dataplane (" + ports + ")", ""});
    if (itf.mtu > mtu)
      out.push_back({f + ".mtu", std::to_string(itf.mtu) + " is above the dataplane's --mtu " + std::to_string(mtu), ""});
    if (itf.mtu != 0 || mtu >= kMinMtu6) continue;
    // The default MTU, --mtu, is below IPv6's minimum: refused where the interface carries IPv6.
    std::string v6_use;
    for (size_t j = 0; j < itf.addresses.size() && v6_use.empty(); ++j)
      if (!itf.addresses[j].addr.is_v4()) v6_use = f + "." + at("addresses", j);
    for (size_t r = 0; r < s.routes.size() && v6_use.empty(); ++r)
      if (!s.routes[r].prefix.is_v4() && s.routes[r].iface == itf.id) v6_use = at("routes", r) + ".interface";
    if (!v6_use.empty())
      out.push_back({f + ".mtu", "0 (the dataplane's --mtu " + std::to_string(mtu) + ") is below IPv6's minimum MTU " +
                                     std::to_string(kMinMtu6) + " and the interface carries IPv6", v6_use});
  }
  if (s.interfaces.empty()) {
    // The implicit interfaces: one per port, id = port id.
    const std::string why = " is not a port of the dataplane (" + ports +
                            "; without interfaces, the interface is the port's untagged one, id = port)";
    for (size_t i = 0; i < s.routes.size(); ++i)
      if (s.routes[i].iface >= n_ports)
        out.push_back({at("routes", i) + ".interface", std::to_string(s.routes[i].iface) + why, ""});
    for (size_t i = 0; i < s.neighbours.size(); ++i)
      if (s.neighbours[i].iface >= n_ports)
        out.push_back({at("neighbours", i) + ".interface", std::to_string(s.neighbours[i].iface) + why, ""});
  }
  return out;
}

std::string validate_state(const State& s) {
  auto problems = check_state(s);
  return problems.empty() ? std::string() : problems.front().to_string();
}

}  // namespace rondo::api

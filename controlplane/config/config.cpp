#include "controlplane/config/config.h"

#include "controlplane/state/validate.h"

#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string_view>
#include <tuple>

namespace rondo::cp {
namespace {

// What an entry that failed to parse holds in place (see parse()): 0.0.0.0, as when
// addresses were 32-bit, so that its family (v4) and the rules it meets stay as they were.
const api::Addr kUnparsed = api::Addr::from_v4(0);

using api::kMaxTimeoutSeconds;

// An interface's MTU: the range of the dataplane's --mtu (dataplane/runtime/options.cpp).
constexpr uint64_t kMinMtu = 576, kMaxMtu = 9000;

// A value in the document and where it is: its path for messages and its line.
struct Item {
  YAML::Node node;
  std::string path;
  int line = 0;
};

// The fields of a YAML map by key, each with its own line.
struct MapView {
  std::string path;
  int line = 0;
  std::map<std::string, Item, std::less<>> fields;

  const Item* get(std::string_view key) const {
    auto it = fields.find(key);
    return it == fields.end() ? nullptr : &it->second;
  }
};

std::string child_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

std::string index_path(const std::string& parent, size_t i) {
  return parent + "[" + std::to_string(i) + "]";
}

// yaml-cpp marks are 0-based and -1 when unknown (e.g. an empty document).
int line_of(const YAML::Node& n, int fallback) {
  const int line = n.Mark().line;
  return line >= 0 ? line + 1 : fallback;
}

std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Scalar: return "\"" + n.Scalar() + "\"";
    default: return "nothing";
  }
}

std::string join(std::span<const std::string_view> words) {
  std::string out;
  for (auto w : words) {
    if (!out.empty()) out += ", ";
    out += w;
  }
  return out;
}

bool parse_mac(const std::string& s, uint8_t mac[6]) {
  if (s.size() != 17) return false;
  for (size_t i = 0; i < 6; ++i) {
    if (i > 0 && s[i * 3 - 1] != ':') return false;
    const char* b = s.data() + i * 3;
    auto [end, ec] = std::from_chars(b, b + 2, mac[i], 16);
    if (ec != std::errc{} || end != b + 2) return false;
  }
  return true;
}

// A field path of api::check_state as the file spells it: a route's or neighbour's iface is
// its interface (or port) line, an interface's port_id its port.
std::string config_field(std::string path) {
  for (auto [name, key] : {std::pair<std::string_view, std::string_view>{".iface", ".interface"},
                           {".port_id", ".port"}}) {
    if (path.ends_with(name)) {
      path.resize(path.size() - name.size());
      path += key;
    }
  }
  return path;
}

class Parser {
 public:
  explicit Parser(std::string_view file) : file_(file) {}

  ModelResult parse(std::string_view text) {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
      error(e.mark.line >= 0 ? e.mark.line + 1 : 0, "", "YAML syntax error: " + e.msg);
      return errors_;
    }
    try {
      parse_root(root);
    } catch (const YAML::Exception& e) {
      // Not expected: every lookup above checks the node type first. Still a config error,
      // never a crash of the control plane.
      error(line_of_mark(e.mark), "", std::string("cannot read config: ") + e.what());
    }
    // The one validation every source goes through, with ids as a first start would give
    // them; each problem is pointed back at the line of its field. It runs even when some
    // fields could not be read (entries stay in place with defaults), so one run reports
    // as much as it can; problems about a field that already has an error are left out.
    DesiredState numbered = state_;
    assign_fresh_ids(&numbered);
    const std::set<std::string> unread = std::move(bad_);
    auto unread_at = [&](std::string path) {
      for (; !path.empty(); path.resize(std::min(path.size(), path.find_last_of(".[")))) {
        if (unread.count(path)) return true;
        if (path.find_last_of(".[") == std::string::npos) break;
      }
      return false;
    };
    for (const auto& p : validate(numbered)) {
      // Ids are given here, not written in the file; "too many" is reported while reading.
      if (p.field == "vips" || p.field == "interfaces" || p.field.ends_with(".id")) continue;
      const std::string field = config_field(p.field), related = config_field(p.related);
      if (unread_at(field) || unread_at(related)) continue;
      std::string message = p.message;
      if (!related.empty()) message += " (line " + std::to_string(line_of_field(related)) + ")";
      error(line_of_field(field), field, std::move(message));
    }
    if (!errors_.empty()) {
      std::stable_sort(errors_.begin(), errors_.end(),
                       [](const ConfigError& a, const ConfigError& b) { return a.line < b.line; });
      return errors_;
    }
    return state_;
  }

 private:
  static int line_of_mark(const YAML::Mark& m) { return m.line >= 0 ? m.line + 1 : 0; }

  // The line of a field path, or of its nearest parent that has one (a field left to its
  // default has no line of its own). Paths are those of api::Problem: vips[0].port.
  int line_of_field(std::string path) const {
    while (!path.empty()) {
      if (auto it = lines_.find(path); it != lines_.end()) return it->second;
      const auto cut = path.find_last_of(".[");
      path.resize(cut == std::string::npos ? 0 : cut);
    }
    return 0;
  }

  void error(int line, std::string field, std::string message) {
    if (!field.empty()) bad_.insert(field);
    // Messages repeat what the file says (values, keys, yaml-cpp's own text): one error
    // stays one line, bounded, whatever the file holds (no forged log lines).
    errors_.push_back({file_, line, one_line(field, 200), one_line(message, 400)});
  }

  // `s` with control bytes escaped (\n, \xHH) and cut at `max` bytes (marked "...").
  static std::string one_line(const std::string& s, size_t max) {
    std::string out;
    for (unsigned char c : s) {
      if (out.size() >= max) {
        out += "...";
        break;
      }
      if (c == '\n') {
        out += "\\n";
      } else if (c == '\r') {
        out += "\\r";
      } else if (c < 0x20 || c == 0x7f) {
        static constexpr char kHex[] = "0123456789abcdef";
        out += "\\x";
        out += kHex[c >> 4];
        out += kHex[c & 15];
      } else {
        out += static_cast<char>(c);
      }
    }
    return out;
  }
  void error(const Item& it, std::string message) { error(it.line, it.path, std::move(message)); }

  // A map whose keys are all in `allowed`, each at most once. A null value (a key with
  // nothing after it) is read as an empty map.
  std::optional<MapView> map(const Item& it, std::initializer_list<std::string_view> allowed) {
    return map(it, std::span<const std::string_view>(allowed.begin(), allowed.size()));
  }
  std::optional<MapView> map(const Item& it, std::span<const std::string_view> allowed) {
    MapView m{it.path, it.line, {}};
    if (it.node.IsNull()) return m;
    if (!it.node.IsMap()) {
      error(it, "expected a map, got " + describe(it.node));
      return std::nullopt;
    }
    for (auto kv = it.node.begin(); kv != it.node.end(); ++kv) {
      // Copies: the iterator's operator-> returns a temporary proxy.
      const YAML::Node key = kv->first;
      const YAML::Node value = kv->second;
      const int key_line = line_of(key, it.line);
      const std::string name = key.IsScalar() ? key.Scalar() : describe(key);
      const std::string path = child_path(it.path, name);
      if (!key.IsScalar() ||
          std::find(allowed.begin(), allowed.end(), std::string_view(name)) == allowed.end()) {
        error(key_line, path, "unknown field (expected one of: " + join(allowed) + ")");
        continue;
      }
      if (auto* first = m.get(name)) {
        error(key_line, path, "duplicate key (first at line " + std::to_string(first->line) + ")");
        continue;
      }
      // yaml-cpp places a null value at the start of the next token, often the next line:
      // the key's line is where the reader looks.
      const int value_line = value.IsNull() ? key_line : line_of(value, key_line);
      m.fields.emplace(name, Item{value, path, value_line});
      lines_[path] = value_line;
    }
    return m;
  }

  const Item* required(const MapView& m, std::string_view key) {
    if (auto* it = m.get(key)) return it;
    error(m.line, child_path(m.path, key), "required field is missing");
    return nullptr;
  }

  // A list; a null value is read as an empty list (every entry commented out).
  std::optional<std::vector<Item>> list(const Item& it) {
    std::vector<Item> out;
    if (it.node.IsNull()) return out;
    if (!it.node.IsSequence()) {
      error(it, "expected a list, got " + describe(it.node));
      return std::nullopt;
    }
    for (size_t i = 0; i < it.node.size(); ++i) {
      const YAML::Node e = it.node[i];
      out.push_back({e, index_path(it.path, i), e.IsNull() ? it.line : line_of(e, it.line)});
      lines_[out.back().path] = out.back().line;
    }
    return out;
  }

  std::optional<std::string> scalar(const Item& it, std::string_view what) {
    if (!it.node.IsScalar()) {
      error(it, "expected " + std::string(what) + ", got " + describe(it.node));
      return std::nullopt;
    }
    return it.node.Scalar();
  }

  // An unsigned decimal in [lo, hi]; `what` reads like "a port (1-65535)".
  std::optional<uint64_t> number(const Item& it, uint64_t lo, uint64_t hi, std::string_view what) {
    auto s = scalar(it, what);
    if (!s) return std::nullopt;
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
    if (ec != std::errc{} || end != s->data() + s->size() || s->empty() || v < lo || v > hi) {
      error(it, *s + " is not " + std::string(what));
      return std::nullopt;
    }
    return v;
  }

  // A host address of either family: "198.51.100.3", "2001:db8::3" (quoted or not: YAML
  // reads both as a string). Whether it suits its role is validate()'s.
  std::optional<api::Addr> address(const Item& it) {
    auto s = scalar(it, "an IP address");
    if (!s) return std::nullopt;
    auto ip = api::parse_addr(*s);
    if (!ip) {
      error(it, *s + (looks_v4_mapped(*s) ? " is an IPv4-mapped IPv6 address: write it as IPv4"
                                          : " is not an IP address"));
      return std::nullopt;
    }
    return ip;
  }

  template <typename T>
  std::optional<T> one_of(const Item& it, std::string_view what,
                          std::initializer_list<std::pair<std::string_view, T>> choices) {
    auto s = scalar(it, what);
    if (!s) return std::nullopt;
    std::string names;
    for (const auto& [name, value] : choices) {
      if (*s == name) return value;
      names += names.empty() ? "" : ", ";
      names += name;
    }
    error(it, *s + " is not a supported " + std::string(what) + " (" + names + ")");
    return std::nullopt;
  }

  // A name from one of the wire's lists (api::kSchedNames, api::kModeNames): `parse` walks
  // it, `choices` names every entry for the error.
  template <typename T>
  std::optional<T> named(const Item& it, std::string_view what,
                         std::optional<T> (*parse)(std::string_view), const std::string& choices) {
    auto s = scalar(it, what);
    auto p = s ? parse(*s) : std::nullopt;
    if (s && !p) error(it, *s + " is not a supported " + std::string(what) + " (" + choices + ")");
    return p;
  }

  void parse_root(const YAML::Node& root) {
    if (root.IsNull()) {
      error(0, "", "the file is empty (expected at least a vips: list)");
      return;
    }
    auto m = map(Item{root, "", line_of(root, 1)},
                 {"timeouts", "local_ips", "interfaces", "routes", "neighbours", "vips"});
    if (!m) return;
    if (auto* t = m->get("timeouts")) parse_timeouts(*t);
    if (auto* l = m->get("local_ips")) parse_local_ips(*l);
    // Before routes and neighbours, which name them.
    if (auto* i = m->get("interfaces")) parse_interfaces(*i);
    if (auto* r = m->get("routes")) parse_routes(*r);
    if (auto* n = m->get("neighbours")) parse_neighbours(*n);
    if (auto* v = required(*m, "vips")) parse_vips(*v);
  }

  void parse_timeouts(const Item& it) {
    std::vector<std::string_view> names;
    for (const auto& f : api::kTimeoutFields) names.emplace_back(f.name);
    auto m = map(it, names);
    if (!m) return;
    const std::string what = "a timeout in seconds (1-" + std::to_string(kMaxTimeoutSeconds) + ")";
    auto& t = state_.timeouts;
    for (const auto& field : api::kTimeoutFields) {
      uint32_t* ms = &(t.*field.ms);
      if (auto* f = m->get(field.name))
        if (auto s = number(*f, 0, kMaxTimeoutSeconds, what)) *ms = static_cast<uint32_t>(*s * 1000);
    }
  }

  void parse_local_ips(const Item& it) {
    auto items = list(it);
    if (!items) return;
    for (const auto& e : *items)
      state_.local_ips.push_back(address(e).value_or(kUnparsed));  // kept in place, see parse()
  }

  void parse_routes(const Item& it) {
    auto items = list(it);
    if (!items) return;
    for (const auto& e : *items) {
      auto m = map(e, {"prefix", "via", "interface", "port"});
      if (!m) {
        state_.routes.push_back(api::Route{.prefix = kUnparsed});
        continue;
      }
      api::Route r{.prefix = kUnparsed};
      bool ok = true;
      if (auto* p = required(*m, "prefix")) {
        auto pf = prefix(*p, "an IP prefix (e.g. 198.51.100.0/24 or 2001:db8:100::/64)");
        ok &= pf.has_value();
        if (pf) {
          r.prefix = pf->addr;
          r.prefix_len = pf->len;
        }
      } else {
        ok = false;
      }
      if (auto* v = m->get("via")) {
        auto ip = address(*v);
        // :: is how the state holds "no next hop": written here it would silently mean
        // on-link.
        if (ip && ip->is_zero()) {
          error(*v, ":: is the unspecified address, not a next hop (leave via out for on-link)");
          ip.reset();
        }
        ok &= ip.has_value();
        r.via = ip.value_or(api::Addr{});
      }
      ok &= resolve_interface(*m, &r.iface);
      state_.routes.push_back(r);
    }
  }

  // "198.51.100.0/24" or "2001:db8:100::/64": the length up to the family's (32, 128).
  // Host bits set are validate()'s (an interface address has them). `what` names the
  // expected form in the error: "an IP prefix (e.g. ...)".
  std::optional<api::Prefix> prefix(const Item& it, const std::string& what) {
    auto s = scalar(it, what);
    if (!s) return std::nullopt;
    const auto slash = s->find('/');
    const std::string_view net = std::string_view(*s).substr(0, slash);
    std::optional<api::Addr> ip;
    if (slash != std::string::npos) ip = api::parse_addr(net);
    if (!ip) {
      error(it, *s + (slash != std::string::npos && looks_v4_mapped(net)
                          ? " is an IPv4-mapped IPv6 prefix: write it as IPv4"
                          : " is not " + what));
      return std::nullopt;
    }
    const uint64_t max_len = ip->is_v4() ? 32 : 128;
    uint64_t len = 0;
    const char* b = s->data() + slash + 1;
    const char* e = s->data() + s->size();
    auto [end, ec] = std::from_chars(b, e, len);
    if (b == e || ec != std::errc{} || end != e || len > max_len) {
      error(it, *s + ": prefix length must be 0-" + std::to_string(max_len));
      return std::nullopt;
    }
    return api::Prefix{.addr = *ip, .len = static_cast<uint8_t>(len)};
  }

  // interfaces: each {name, port, vlan, mtu, addresses}; ids in file order (the store gives
  // the lasting ones by name, as for vips). Cross-field rules ((port, vlan) unique, addresses
  // owned once, mtu with IPv6) are validate()'s.
  void parse_interfaces(const Item& it) {
    auto items = list(it);
    if (!items) return;
    for (size_t k = 0; k < items->size(); ++k) {
      const Item& e = (*items)[k];
      if (k == api::kMaxInterfaces)
        error(e, "too many interfaces (at most " + std::to_string(api::kMaxInterfaces) + ")");
      api::Interface i{.id = static_cast<uint16_t>(k)};
      auto m = map(e, {"name", "port", "vlan", "mtu", "addresses"});
      if (!m) {
        ifaces_unread_ = true;
        state_.interfaces.push_back(std::move(i));
        continue;
      }
      bool ok = true;
      if (auto* f = required(*m, "name")) {
        auto name = scalar(*f, "an interface name");
        if (name) {
          if (auto why = check_interface_name(*name); !why.empty()) {
            error(*f, why);
            name.reset();
          } else if (auto [first, fresh] = iface_lines_.emplace(*name, f->line); !fresh) {
            error(*f, *name + " is already the name of another interface (line " +
                          std::to_string(first->second) + ")");
            name.reset();
          }
        }
        ok &= name.has_value();
        i.name = name.value_or("");
      } else {
        ok = false;
      }
      if (auto* f = required(*m, "port")) {
        auto port = number(*f, 0, UINT16_MAX, "a port id (0-65535)");
        ok &= port.has_value();
        i.port_id = static_cast<uint16_t>(port.value_or(0));
      } else {
        ok = false;
      }
      if (auto* f = m->get("vlan")) {
        auto vlan = number(*f, 0, 4094, "a VLAN id (1-4094; 0 or absent: untagged)");
        ok &= vlan.has_value();
        i.vlan = static_cast<uint16_t>(vlan.value_or(0));
      }
      if (auto* f = m->get("mtu")) {
        auto mtu = number(*f, kMinMtu, kMaxMtu,
                          "an MTU (" + std::to_string(kMinMtu) + "-" +
                              std::to_string(kMaxMtu) + ")");
        ok &= mtu.has_value();
        i.mtu = static_cast<uint32_t>(mtu.value_or(0));
      }
      if (auto* f = m->get("addresses")) {
        if (auto addrs = list(*f)) {
          for (const auto& a : *addrs) {
            auto p = prefix(a, "an interface address (ADDRESS/LENGTH, e.g. 192.0.2.1/24 or "
                               "2001:db8:200::1/64)");
            ok &= p.has_value();
            if (p) i.addresses.push_back(*p);
          }
        } else {
          ok = false;
        }
      }
      if (!ok) ifaces_unread_ = true;
      state_.interfaces.push_back(std::move(i));
    }
  }

  // The declared interfaces' names for an error: "clients, backends" (at most 8, then ...).
  std::string declared_interfaces() const {
    std::string out;
    size_t n = 0;
    for (const auto& i : state_.interfaces) {
      if (i.name.empty()) continue;
      if (n++ == 8) return out + ", ...";
      out += (out.empty() ? "" : ", ") + i.name;
    }
    return out;
  }

  // The interface of a route or neighbour entry: `interface: NAME`, or `port: N` (the
  // implicit interface N when none are declared, else the declared untagged one on port N),
  // or neither (port 0, as before interfaces). False when it names none (reported here,
  // unless an interface entry is itself unreadable: its own error says enough).
  bool resolve_interface(const MapView& m, uint16_t* iface) {
    const Item* name = m.get("interface");
    const Item* port = m.get("port");
    if (name && port) {
      error(*port, "give interface or port, not both");
      return false;
    }
    if (name) {
      auto n = scalar(*name, "an interface name");
      if (!n) return false;
      if (const api::Interface* i = state_.find_interface(*n); i && !n->empty()) {
        *iface = i->id;
        return true;
      }
      if (state_.interfaces.empty())
        error(*name, *n + " is not declared (no interfaces: list; or write port: N)");
      else if (!ifaces_unread_)
        error(*name, "no interface named " + *n + " (declared: " + declared_interfaces() + ")");
      return false;
    }
    uint16_t p = 0;
    if (port) {
      auto id = number(*port, 0, UINT16_MAX, "a port id (0-65535)");
      if (!id) return false;
      p = static_cast<uint16_t>(*id);
    }
    if (auto id = state_.interface_of_port(p)) {
      *iface = *id;
      return true;
    }
    if (ifaces_unread_) return false;
    const std::string why = "port " + std::to_string(p) +
                            " has no untagged interface (declared: " + declared_interfaces() +
                            "): name one with interface: NAME";
    if (port)
      error(*port, why);
    else
      error(m.line, child_path(m.path, "interface"), "required field is missing: " + why);
    return false;
  }

  void parse_neighbours(const Item& it) {
    auto items = list(it);
    if (!items) return;
    for (const auto& e : *items) {
      auto m = map(e, {"ip", "mac", "interface", "port"});
      if (!m) {
        state_.neighbours.push_back(api::Neighbour{.ip = kUnparsed});
        continue;
      }
      api::Neighbour n{.ip = kUnparsed};
      bool ok = true;
      const Item* ip_item = required(*m, "ip");
      if (ip_item) {
        auto ip = address(*ip_item);
        ok &= ip.has_value();
        n.ip = ip.value_or(kUnparsed);
      } else {
        ok = false;
      }
      if (auto* mac = required(*m, "mac")) {
        ok &= parse_neighbour_mac(*mac, n.mac);
      } else {
        ok = false;
      }
      ok &= resolve_interface(*m, &n.iface);
      state_.neighbours.push_back(n);
    }
  }

  bool parse_neighbour_mac(const Item& it, uint8_t mac[6]) {
    auto s = scalar(it, "a MAC address (xx:xx:xx:xx:xx:xx)");
    if (!s) return false;
    if (!parse_mac(*s, mac)) {
      error(it, *s + " is not a MAC address (xx:xx:xx:xx:xx:xx)");
      return false;
    }
    return true;
  }

  void parse_vips(const Item& it) {
    auto items = list(it);
    if (!items) return;
    bool reported_too_many = false;
    for (size_t i = 0; i < items->size(); ++i) {
      const Item& e = (*items)[i];
      if (i > api::kMaxVipId && !reported_too_many) {
        error(e, "too many vips (at most " + std::to_string(api::kMaxVipId + 1) + ")");
        reported_too_many = true;
      }
      auto m = map(e, {"name", "address", "port", "protocol", "mode", "scheduler",
                       "syncookies", "proxy_protocol", "on_all_down", "health_check",
                       "backends"});
      if (!m) {
        state_.vips.emplace_back().ip = kUnparsed;
        continue;
      }
      VipSpec v;
      v.ip = kUnparsed;
      bool ok = true;

      if (auto* f = required(*m, "name")) {
        auto name = scalar(*f, "a name");
        ok &= name.has_value();
        v.name = name.value_or("");
      } else {
        ok = false;
      }
      if (auto* addr = required(*m, "address")) {
        auto ip = address(*addr);
        ok &= ip.has_value();
        v.ip = ip.value_or(kUnparsed);
      } else {
        ok = false;
      }
      if (auto* f = required(*m, "port")) {
        auto port = number(*f, 0, UINT16_MAX, "a port (1-65535)");
        ok &= port.has_value();
        v.port = static_cast<uint16_t>(port.value_or(0));
      } else {
        ok = false;
      }
      if (auto* f = m->get("protocol")) {
        auto p = one_of<api::Proto>(*f, "protocol", {{"tcp", api::Proto::kTcp}, {"udp", api::Proto::kUdp}});
        ok &= p.has_value();
        v.proto = p.value_or(api::Proto::kTcp);
      }
      if (auto* f = m->get("mode")) {
        auto p = named(*f, "mode", parse_mode, mode_choices());
        ok &= p.has_value();
        v.mode = p.value_or(api::Mode::kFullNat);
      }
      if (auto* f = m->get("scheduler")) {
        auto p = named(*f, "scheduler", parse_sched, sched_choices());
        ok &= p.has_value();
        v.sched = p.value_or(api::Sched::kRoundRobin);
      }
      if (auto* f = m->get("syncookies")) {
        auto p = one_of<api::SynCookies>(*f, "syncookies",
                                         {{"off", api::SynCookies::kOff},
                                          {"on", api::SynCookies::kOn},
                                          {"auto", api::SynCookies::kAuto}});
        ok &= p.has_value();
        v.syncookies = p.value_or(api::SynCookies::kOff);
      }
      if (auto* f = m->get("proxy_protocol")) {
        auto p = one_of<api::ProxyProtocol>(
            *f, "proxy_protocol", {{"off", api::ProxyProtocol::kOff}, {"v2", api::ProxyProtocol::kV2}});
        ok &= p.has_value();
        v.proxy_protocol = p.value_or(api::ProxyProtocol::kOff);
      }
      if (auto* f = m->get("on_all_down")) {
        auto p = one_of<api::OnAllDown>(
            *f, "on_all_down", {{"drop", api::OnAllDown::kDrop}, {"open", api::OnAllDown::kOpen}});
        ok &= p.has_value();
        v.on_all_down = p.value_or(api::OnAllDown::kDrop);
      }
      if (auto* f = m->get("health_check")) ok &= parse_health_check(*f, &v.health_check);
      if (auto* f = required(*m, "backends")) {
        ok &= parse_backends(*f, &v);
      } else {
        ok = false;
      }
      state_.vips.push_back(std::move(v));
    }
  }

  bool parse_health_check(const Item& it, HealthCheck* hc) {
    auto m = map(it, {"type", "port", "path", "status", "interval_ms", "timeout_ms", "rise", "fall"});
    if (!m) return false;
    bool ok = true;
    if (auto* f = required(*m, "type")) {
      auto t = one_of<HealthCheck::Type>(*f, "health check type",
                                         {{"none", HealthCheck::Type::kNone},
                                          {"tcp", HealthCheck::Type::kTcp},
                                          {"http", HealthCheck::Type::kHttp}});
      ok &= t.has_value();
      hc->type = t.value_or(HealthCheck::Type::kNone);
    } else {
      ok = false;
    }
    if (auto* f = m->get("port")) {
      auto port = number(*f, 0, UINT16_MAX, "a port (1-65535)");
      ok &= port.has_value();
      hc->port = static_cast<uint16_t>(port.value_or(0));
    }
    if (auto* f = m->get("path")) {
      auto path = scalar(*f, "an HTTP path");
      if (path && hc->type != HealthCheck::Type::kHttp && ok) {
        error(*f, "path is only used by type: http");
        path.reset();
      }
      ok &= path.has_value();
      if (path) hc->path = *path;
    }
    if (auto* f = m->get("status")) {
      auto st = number(*f, 0, UINT16_MAX, "an HTTP status (100-599)");
      if (st && hc->type != HealthCheck::Type::kHttp && ok) {
        error(*f, "status is only used by type: http");
        st.reset();
      }
      ok &= st.has_value();
      if (st) hc->http_status = static_cast<uint16_t>(*st);
    }
    const std::string period = "a period in milliseconds (" + std::to_string(kMinCheckMs) + "-" +
                               std::to_string(kMaxCheckMs) + ")";
    // Ranges are validate()'s; here only what fits the field.
    for (auto [key, ms] : {std::pair{"interval_ms", &hc->interval_ms},
                           std::pair{"timeout_ms", &hc->timeout_ms}}) {
      if (auto* f = m->get(key)) {
        auto v = number(*f, 0, UINT32_MAX, period);
        ok &= v.has_value();
        if (v) *ms = static_cast<uint32_t>(*v);
      }
    }
    for (auto [key, n] : {std::pair{"rise", &hc->rise}, std::pair{"fall", &hc->fall}}) {
      if (auto* f = m->get(key)) {
        auto v = number(*f, 0, UINT32_MAX, "a count (1-" + std::to_string(kMaxCheckCount) + ")");
        ok &= v.has_value();
        if (v) *n = static_cast<uint32_t>(*v);
      }
    }
    return ok;
  }

  // Returns false if any backend is invalid; the valid ones are still checked for
  // duplicates so that one run reports as much as possible.
  bool parse_backends(const Item& it, VipSpec* v) {
    auto items = list(it);
    if (!items) return false;
    bool all_ok = true;
    for (const auto& e : *items) {
      // Counted over all backends, valid or not: ids are allocated later, by key, and
      // there is one id space for all vips.
      const uint32_t index = backend_count_++;
      if (index == api::kMaxBackendId + 1)
        error(e, "too many backends (at most " + std::to_string(api::kMaxBackendId + 1) +
                     " over all vips)");
      auto m = map(e, {"address", "port", "weight"});
      if (!m) {
        all_ok = false;
        v->backends.emplace_back().ip = kUnparsed;
        continue;
      }
      BackendSpec b;
      b.ip = kUnparsed;
      bool ok = index <= api::kMaxBackendId;
      if (auto* addr = required(*m, "address")) {
        auto ip = address(*addr);
        ok &= ip.has_value();
        b.ip = ip.value_or(kUnparsed);
      } else {
        ok = false;
      }
      if (auto* f = required(*m, "port")) {
        auto port = number(*f, 0, UINT16_MAX, "a port (1-65535)");
        ok &= port.has_value();
        b.port = static_cast<uint16_t>(port.value_or(0));
      } else {
        ok = false;
      }
      if (auto* f = m->get("weight")) {
        auto w = number(*f, 0, UINT16_MAX, "a weight (0-65535)");
        ok &= w.has_value();
        b.weight = static_cast<uint16_t>(w.value_or(1));
      }
      v->backends.push_back(b);
      all_ok &= ok;
    }
    return all_ok;
  }

  std::string file_;
  std::vector<ConfigError> errors_;
  DesiredState state_;
  std::map<std::string, int, std::less<>> lines_;  // field path -> its line
  std::set<std::string> bad_;  // field paths with an error of their own
  uint32_t backend_count_ = 0;
  std::map<std::string, int, std::less<>> iface_lines_;  // interface name -> its line
  bool ifaces_unread_ = false;  // an interface entry had an error of its own
};

}  // namespace

std::string ConfigError::to_string() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line);
  out += ": ";
  if (!field.empty()) out += field + ": ";
  out += message;
  return out;
}

ModelResult parse_config_model(std::string_view text, std::string_view name) {
  return Parser(name).parse(text);
}

ConfigResult parse_config(std::string_view text, std::string_view name) {
  auto r = parse_config_model(text, name);
  if (auto* errors = std::get_if<std::vector<ConfigError>>(&r)) return std::move(*errors);
  auto& d = std::get<DesiredState>(r);
  assign_fresh_ids(&d);
  return to_api(d);
}

std::optional<ConfigError> read_config_file(const std::string& path, std::string* text) {
  // POSIX I/O rather than ifstream: it reports why a read failed (EISDIR, EACCES, ...).
  auto failed = [&](const char* what) {
    return ConfigError{path, 0, "", std::string(what) + ": " + std::strerror(errno)};
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return failed("cannot open");
  text->clear();
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      auto e = failed("cannot read");
      ::close(fd);
      return e;
    }
    if (n == 0) break;
    text->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return std::nullopt;
}

ModelResult load_config_model(const std::string& path, std::string* digest) {
  std::string text;
  if (auto e = read_config_file(path, &text)) return std::vector<ConfigError>{*e};
  if (digest) *digest = config_digest(text);
  return parse_config_model(text, path);
}

ConfigResult load_config(const std::string& path) {
  std::string text;
  if (auto e = read_config_file(path, &text)) return std::vector<ConfigError>{*e};
  return parse_config(text, path);
}

std::string config_digest(std::string_view text) {
  // FNV-1a 64: stable across builds and machines, unlike std::hash; collisions only matter
  // as "a changed file looks unchanged", and only for accidental changes.
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "fnv1a64:%016llx", static_cast<unsigned long long>(h));
  return buf;
}

size_t count_backends(const api::State& s) {
  size_t n = 0;
  for (const auto& v : s.vips) n += v.backends.size();
  return n;
}

}  // namespace rondo::cp

#include "controlplane/state/state_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "controlplane/config/config.h"
#include "controlplane/json_input.h"
#include "controlplane/state/validate.h"

namespace rondo::cp {
namespace {

using json = nlohmann::json;

// Thrown by the readers below; caught in decode_state_file and returned as text.
struct Bad {
  std::string why;
};

std::string mac_text(const uint8_t mac[6]) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
  return buf;
}

json encode_ids(const IdAllocator& a) {
  json retired = json::array();
  for (const auto& [id, at] : a.retired()) retired.push_back({{"id", id}, {"retired_at", at}});
  return {{"next", a.next()}, {"retired", retired}};
}

// ---- typed readers: each names the field it could not use ----

const json& field(const json& o, const char* key, const std::string& where) {
  if (!o.is_object()) throw Bad{(where.empty() ? "document" : where) + ": expected an object"};
  auto it = o.find(key);
  if (it == o.end()) throw Bad{(where.empty() ? "" : where + ".") + key + ": missing"};
  return *it;
}

uint64_t uint_of(const json& v, const std::string& where, uint64_t max) {
  if (!v.is_number_unsigned() || v.get<uint64_t>() > max)
    throw Bad{where + ": expected an integer 0-" + std::to_string(max)};
  return v.get<uint64_t>();
}

int64_t int_of(const json& v, const std::string& where) {
  if (!v.is_number_integer()) throw Bad{where + ": expected an integer"};
  return v.get<int64_t>();
}

std::string string_of(const json& v, const std::string& where) {
  if (!v.is_string()) throw Bad{where + ": expected a string"};
  return v.get<std::string>();
}

bool bool_of(const json& v, const std::string& where) {
  if (!v.is_boolean()) throw Bad{where + ": expected true or false"};
  return v.get<bool>();
}

const json& array_of(const json& v, const std::string& where) {
  if (!v.is_array()) throw Bad{where + ": expected a list"};
  return v;
}

api::Addr ip_of(const json& v, const std::string& where) {
  std::optional<api::Addr> ip;
  if (v.is_string()) ip = api::parse_addr(v.get<std::string>());
  if (!ip) throw Bad{where + ": expected an IP address"};
  return *ip;
}

// A route's next hop: "0.0.0.0" or "::" when it has none (on-link).
api::Addr via_of(const json& v, const std::string& where) {
  const api::Addr ip = ip_of(v, where);
  return ip == api::Addr::from_v4(0) ? api::Addr{} : ip;
}
std::string via_text(const api::Route& r) {
  if (!r.via.is_zero()) return api::format_addr(r.via);
  return r.prefix.is_v4() ? "0.0.0.0" : "::";
}

uint64_t uint_field(const json& o, const char* key, const std::string& where, uint64_t max) {
  return uint_of(field(o, key, where), where + "." + key, max);
}

void read_ids(const json& o, const std::string& where, IdAllocator* a) {
  const uint32_t next = static_cast<uint32_t>(uint_field(o, "next", where, a->max_id() + 1ull));
  std::map<uint32_t, IdAllocator::Seconds> retired;
  const std::string rw = where + ".retired";
  for (const auto& r : array_of(field(o, "retired", where), rw)) {
    const auto id = static_cast<uint32_t>(uint_field(r, "id", rw, a->max_id()));
    retired[id] = int_of(field(r, "retired_at", rw), rw + ".retired_at");
  }
  a->restore(next, std::move(retired));
}

// A named setting that may be absent (then *out keeps its default); `choices` for the error.
template <class T>
void optional_setting(const json& o, const char* key, const std::string& w,
                      std::optional<T> (*parse)(std::string_view), const char* choices, T* out) {
  if (!o.is_object() || !o.contains(key)) return;
  const std::string where = w + "." + key;
  auto v = parse(string_of(o.at(key), where));
  if (!v) throw Bad{where + ": not " + choices};
  *out = *v;
}

HealthCheck read_health_check(const json& o, const std::string& w) {
  HealthCheck hc;
  const std::string type = string_of(field(o, "type", w), w + ".type");
  if (type == "none") hc.type = HealthCheck::Type::kNone;
  else if (type == "tcp") hc.type = HealthCheck::Type::kTcp;
  else if (type == "http") hc.type = HealthCheck::Type::kHttp;
  else throw Bad{w + ".type: " + type + " is not none, tcp or http"};
  hc.port = static_cast<uint16_t>(uint_field(o, "port", w, UINT16_MAX));
  hc.path = string_of(field(o, "path", w), w + ".path");
  hc.http_status = static_cast<uint16_t>(uint_field(o, "http_status", w, 599));
  hc.interval_ms = static_cast<uint32_t>(uint_field(o, "interval_ms", w, UINT32_MAX));
  hc.timeout_ms = static_cast<uint32_t>(uint_field(o, "timeout_ms", w, UINT32_MAX));
  hc.rise = static_cast<uint32_t>(uint_field(o, "rise", w, UINT32_MAX));
  hc.fall = static_cast<uint32_t>(uint_field(o, "fall", w, UINT32_MAX));
  return hc;
}

// The interface a route or neighbour names: "interface": NAME (a declared one), or, as
// files written before interfaces have it, "port": N (see DesiredState::interface_of_port).
uint16_t iface_of(const json& o, const std::string& w, const DesiredState& d) {
  if (o.is_object() && o.contains("interface")) {
    const std::string name = string_of(o.at("interface"), w + ".interface");
    const api::Interface* i = d.find_interface(name);
    if (!i) throw Bad{w + ".interface: no interface named " + name};
    return i->id;
  }
  const auto port = static_cast<uint16_t>(uint_field(o, "port", w, UINT16_MAX));
  auto id = d.interface_of_port(port);
  if (!id) throw Bad{w + ".port: port " + std::to_string(port) + " has no untagged interface"};
  return *id;
}

// What encode writes for a route's or neighbour's interface (see iface_of).
void put_iface(json* o, uint16_t iface, const DesiredState& d) {
  if (d.interfaces.empty())
    (*o)["port"] = iface;
  else
    (*o)["interface"] = d.interface_name(iface);
}

PersistedState decode(const json& root) {
  if (!root.is_object()) throw Bad{"expected a JSON object"};
  const std::string format = string_of(field(root, "format", ""), "format");
  if (format != kStateFormat) throw Bad{"format: " + format + " is not " + kStateFormat};

  PersistedState s;
  s.config_digest = string_of(field(root, "config_digest", ""), "config_digest");
  read_ids(field(root, "vip_ids", ""), "vip_ids", &s.vip_ids);
  read_ids(field(root, "backend_ids", ""), "backend_ids", &s.backend_ids);
  DesiredState& d = s.desired;

  const json& t = field(root, "timeouts", "");
  for (const auto& f : api::kTimeoutFields) {
    const std::string key = std::string(f.name) + "_ms";
    // A timeout added after the file was written keeps its default.
    if (t.is_object() && !t.contains(key)) continue;
    d.timeouts.*f.ms = static_cast<uint32_t>(uint_field(t, key.c_str(), "timeouts", UINT32_MAX));
  }

  for (const auto& ip : array_of(field(root, "local_ips", ""), "local_ips"))
    d.local_ips.push_back(ip_of(ip, "local_ips[]"));
  // Both absent in state files written before interfaces: none declared.
  if (root.contains("interface_ids")) read_ids(root.at("interface_ids"), "interface_ids", &s.interface_ids);
  if (root.contains("interfaces")) {
    std::set<uint16_t> ids;
    for (const auto& ji : array_of(root.at("interfaces"), "interfaces")) {
      const std::string w = "interfaces[" + std::to_string(d.interfaces.size()) + "]";
      api::Interface i;
      i.name = string_of(field(ji, "name", w), w + ".name");
      i.id = static_cast<uint16_t>(uint_field(ji, "id", w, api::kMaxInterfaces - 1));
      i.port_id = static_cast<uint16_t>(uint_field(ji, "port", w, UINT16_MAX));
      i.vlan = static_cast<uint16_t>(uint_field(ji, "vlan", w, 4094));
      i.mtu = static_cast<uint32_t>(uint_field(ji, "mtu", w, UINT32_MAX));  // 0: --mtu
      for (const auto& a : array_of(field(ji, "addresses", w), w + ".addresses")) {
        std::optional<api::Prefix> p;
        if (a.is_string()) p = parse_prefix(a.get<std::string>());
        if (!p) throw Bad{w + ".addresses[]: expected ADDRESS/LENGTH"};
        i.addresses.push_back(*p);
      }
      // Routes and neighbours are read by these names, and counters by these ids.
      if (d.find_interface(i.name)) throw Bad{w + ".name: " + i.name + " is declared twice"};
      if (!ids.insert(i.id).second) throw Bad{w + ".id: " + std::to_string(i.id) + " is used twice"};
      s.interface_ids.reserve(i.id);
      d.interfaces.push_back(std::move(i));
    }
  }
  for (const auto& r : array_of(field(root, "routes", ""), "routes")) {
    api::Route rt;
    rt.prefix = ip_of(field(r, "prefix", "routes[]"), "routes[].prefix");
    // 0-128 fits the field; the family's bound (32 for IPv4) is validate()'s.
    rt.prefix_len = static_cast<uint8_t>(uint_field(r, "prefix_len", "routes[]", 128));
    rt.via = via_of(field(r, "via", "routes[]"), "routes[].via");
    rt.iface = iface_of(r, "routes[]", d);
    d.routes.push_back(rt);
  }
  for (const auto& n : array_of(field(root, "neighbours", ""), "neighbours")) {
    api::Neighbour nb;
    nb.ip = ip_of(field(n, "ip", "neighbours[]"), "neighbours[].ip");
    const std::string mac = string_of(field(n, "mac", "neighbours[]"), "neighbours[].mac");
    unsigned m[6];
    char tail;
    if (std::sscanf(mac.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &m[0], &m[1], &m[2], &m[3], &m[4],
                    &m[5], &tail) != 6)
      throw Bad{"neighbours[].mac: " + mac + " is not a MAC address"};
    for (int i = 0; i < 6; ++i) nb.mac[i] = static_cast<uint8_t>(m[i]);
    nb.iface = iface_of(n, "neighbours[]", d);
    d.neighbours.push_back(nb);
  }

  std::set<uint32_t> backend_ids;
  for (const auto& jv : array_of(field(root, "vips", ""), "vips")) {
    VipSpec v;
    v.name = string_of(field(jv, "name", "vips[]"), "vips[].name");
    const std::string w = "vips[" + std::to_string(d.vips.size()) + "]";
    v.id = static_cast<uint32_t>(uint_field(jv, "id", w, api::kMaxVipId));
    v.ip = ip_of(field(jv, "address", w), w + ".address");
    v.port = static_cast<uint16_t>(uint_field(jv, "port", w, UINT16_MAX));
    auto proto = parse_proto(string_of(field(jv, "protocol", w), w + ".protocol"));
    auto mode = parse_mode(string_of(field(jv, "mode", w), w + ".mode"));
    auto sched = parse_sched(string_of(field(jv, "scheduler", w), w + ".scheduler"));
    if (!proto || !mode || !sched) throw Bad{w + ": unsupported protocol, mode or scheduler"};
    v.proto = *proto;
    v.mode = *mode;
    v.sched = *sched;
    // Settings added after the first format: absent in older state files, which ran with
    // the default (SYN cookies off, PROXY protocol off, on_all_down drop).
    optional_setting(jv, "syncookies", w, parse_syncookies, "off, on or auto", &v.syncookies);
    optional_setting(jv, "proxy_protocol", w, parse_proxy_protocol, "off or v2", &v.proxy_protocol);
    optional_setting(jv, "on_all_down", w, parse_on_all_down, "drop or open", &v.on_all_down);
    v.health_check = read_health_check(field(jv, "health_check", w), w + ".health_check");
    // Absent in state files written before `vip drain`: not drained.
    if (jv.is_object() && jv.contains("drained")) v.drained = bool_of(jv.at("drained"), w + ".drained");
    for (const auto& jb : array_of(field(jv, "backends", w), w + ".backends")) {
      BackendSpec b;
      const std::string bw = w + ".backends[" + std::to_string(v.backends.size()) + "]";
      b.id = static_cast<uint32_t>(uint_field(jb, "id", bw, api::kMaxBackendId));
      b.ip = ip_of(field(jb, "address", bw), bw + ".address");
      b.port = static_cast<uint16_t>(uint_field(jb, "port", bw, UINT16_MAX));
      b.weight = static_cast<uint16_t>(uint_field(jb, "weight", bw, UINT16_MAX));
      b.drained = bool_of(field(jb, "drained", bw), bw + ".drained");
      v.backends.push_back(b);
      s.backend_ids.reserve(b.id);
    }
    s.vip_ids.reserve(v.id);
    d.vips.push_back(std::move(v));
  }
  // The same rules as the config file and the API: a hand-edited state file is input too.
  if (auto problems = validate(d); !problems.empty()) throw Bad{problems.front().to_string()};
  return s;
}

bool write_all(int fd, const std::string& text) {
  const char* p = text.data();
  size_t n = text.size();
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

std::string encode_state_file(const PersistedState& s) {
  const DesiredState& d = s.desired;
  json root;
  root["format"] = kStateFormat;
  root["config_digest"] = s.config_digest;
  root["vip_ids"] = encode_ids(s.vip_ids);
  root["backend_ids"] = encode_ids(s.backend_ids);
  root["interface_ids"] = encode_ids(s.interface_ids);
  json timeouts = json::object();
  for (const auto& f : api::kTimeoutFields) timeouts[std::string(f.name) + "_ms"] = d.timeouts.*f.ms;
  root["timeouts"] = timeouts;
  json ips = json::array();
  for (const auto& ip : d.local_ips) ips.push_back(api::format_addr(ip));
  root["local_ips"] = ips;
  json interfaces = json::array();
  for (const auto& i : d.interfaces) {
    json addresses = json::array();
    for (const auto& a : i.addresses) addresses.push_back(format_prefix(a));
    interfaces.push_back({{"name", i.name},
                          {"id", i.id},
                          {"port", i.port_id},
                          {"vlan", i.vlan},
                          {"mtu", i.mtu},
                          {"addresses", addresses}});
  }
  root["interfaces"] = interfaces;
  json routes = json::array();
  for (const auto& r : d.routes) {
    json jr = {{"prefix", api::format_addr(r.prefix)}, {"prefix_len", r.prefix_len}, {"via", via_text(r)}};
    put_iface(&jr, r.iface, d);
    routes.push_back(std::move(jr));
  }
  root["routes"] = routes;
  json neigh = json::array();
  for (const auto& n : d.neighbours) {
    json jn = {{"ip", api::format_addr(n.ip)}, {"mac", mac_text(n.mac)}};
    put_iface(&jn, n.iface, d);
    neigh.push_back(std::move(jn));
  }
  root["neighbours"] = neigh;
  json vips = json::array();
  for (const auto& v : d.vips) {
    json backends = json::array();
    for (const auto& b : v.backends)
      backends.push_back({{"id", b.id},
                          {"address", api::format_addr(b.ip)},
                          {"port", b.port},
                          {"weight", b.weight},
                          {"drained", b.drained}});
    const auto& hc = v.health_check;
    vips.push_back({{"name", v.name},
                    {"id", v.id},
                    {"address", api::format_addr(v.ip)},
                    {"port", v.port},
                    {"protocol", proto_name(v.proto)},
                    {"mode", mode_name(v.mode)},
                    {"scheduler", sched_name(v.sched)},
                    {"syncookies", syncookies_name(v.syncookies)},
                    {"proxy_protocol", proxy_protocol_name(v.proxy_protocol)},
                    {"on_all_down", on_all_down_name(v.on_all_down)},
                    {"drained", v.drained},
                    {"health_check",
                     {{"type", health_check_type_name(hc.type)},
                      {"port", hc.port},
                      {"path", hc.path},
                      {"http_status", hc.http_status},
                      {"interval_ms", hc.interval_ms},
                      {"timeout_ms", hc.timeout_ms},
                      {"rise", hc.rise},
                      {"fall", hc.fall}}},
                    {"backends", backends}});
  }
  root["vips"] = vips;
  return root.dump(2) + "\n";
}

std::variant<PersistedState, std::string> decode_state_file(std::string_view text) {
  if (auto why = check_json_depth(text); !why.empty()) return "not a state file: " + why;
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    return std::string("not JSON: ") + e.what();
  }
  try {
    return decode(root);
  } catch (const Bad& b) {
    return b.why;
  } catch (const json::exception& e) {
    return std::string("cannot read: ") + e.what();
  }
}

std::string write_state_file(const std::string& path, const PersistedState& s) {
  const std::string text = encode_state_file(s);
  const std::string tmp = path + ".tmp";
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  auto failed = [&](const std::string& what) {
    return what + ": " + std::strerror(errno);
  };
  // 0640: the state names every backend; nobody outside root and the group needs it.
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return failed("cannot create " + tmp);
  if (!write_all(fd, text) || ::fsync(fd) != 0) {
    auto e = failed("cannot write " + tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return e;
  }
  if (::close(fd) != 0) {
    auto e = failed("cannot write " + tmp);
    ::unlink(tmp.c_str());
    return e;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    auto e = failed("cannot rename " + tmp + " to " + path);
    ::unlink(tmp.c_str());
    return e;
  }
  // The rename is durable only once the directory entry is.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

bool read_state_file(const std::string& path, std::optional<PersistedState>* result,
                     std::string* error) {
  result->reset();
  if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) return true;
  std::string text;
  if (auto e = read_config_file(path, &text)) {
    *error = e->to_string();
    return false;
  }
  auto decoded = decode_state_file(text);
  if (auto* why = std::get_if<std::string>(&decoded)) {
    *error = path + ": " + *why;
    return false;
  }
  *result = std::move(std::get<PersistedState>(decoded));
  return true;
}

}  // namespace rondo::cp

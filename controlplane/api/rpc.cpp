#include "controlplane/api/rpc.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <tuple>
#include <nlohmann/json.hpp>
#include <set>

#include "controlplane/json_input.h"
#include "controlplane/log.h"
#include "controlplane/state/diff.h"

namespace rondo::cp {
namespace {

using json = nlohmann::json;

// A request that cannot be served as asked; becomes {"ok": false, ...}.
struct Refused {
  Status status;
  std::string error;
};

double unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

json optional_time(const std::optional<std::chrono::system_clock::time_point>& t) {
  return t ? json(unix_seconds(*t)) : json(nullptr);
}

// The fields of one request, each taken at most once and typed; leftovers are errors.
class Args {
 public:
  Args(const json& req, std::string cmd) : req_(req), cmd_(std::move(cmd)) {}

  std::string str(const char* key) {
    const json& v = need(key);
    if (!v.is_string()) throw Refused{Status::kInvalid, field(key) + " must be a string"};
    return v.get<std::string>();
  }
  uint64_t uint(const char* key, uint64_t lo, uint64_t hi, const char* what) {
    return uint_of(need(key), key, lo, hi, what);
  }
  uint64_t uint_or(const char* key, uint64_t lo, uint64_t hi, const char* what, uint64_t dflt) {
    const json* v = get(key);
    return v ? uint_of(*v, key, lo, hi, what) : dflt;
  }
  bool flag(const char* key) {
    const json* v = get(key);
    if (!v) return false;
    if (!v->is_boolean()) throw Refused{Status::kInvalid, field(key) + " must be true or false"};
    return v->get<bool>();
  }
  std::optional<std::string> str_opt(const char* key) {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_string()) throw Refused{Status::kInvalid, field(key) + " must be a string"};
    return v->get<std::string>();
  }
  /// An optional named setting: absent leaves *out as it is; a name `parse` does not know is
  /// refused as "NAME is not a supported WHAT (CHOICES)".
  template <class T>
  void setting(const char* key, std::optional<T> (*parse)(std::string_view), const char* what,
               const std::string& choices, T* out) {
    auto s = str_opt(key);
    if (!s) return;
    auto v = parse(*s);
    if (!v) throw Refused{Status::kInvalid, *s + " is not a supported " + what + " (" + choices + ")"};
    *out = *v;
  }
  api::Addr address(const char* key) {
    std::string why;
    auto ip = parse_host_address(str(key), &why);
    if (!ip) throw Refused{Status::kInvalid, why};
    return *ip;
  }
  /// Throws if the request has fields no one asked for.
  void done() const {
    for (const auto& [key, value] : req_.items()) {
      if (key != "cmd" && !used_.count(key))
        throw Refused{Status::kInvalid, "unknown field \"" + key + "\" for " + cmd_};
    }
  }

 private:
  std::string field(const char* key) const { return cmd_ + ": field \"" + key + "\""; }
  const json* get(const char* key) {
    used_.insert(key);
    auto it = req_.find(key);
    return it == req_.end() ? nullptr : &*it;
  }
  const json& need(const char* key) {
    const json* v = get(key);
    if (!v) throw Refused{Status::kInvalid, field(key) + " is missing"};
    return *v;
  }
  uint64_t uint_of(const json& v, const char* key, uint64_t lo, uint64_t hi, const char* what) {
    if (v.is_number_unsigned() && v.get<uint64_t>() >= lo && v.get<uint64_t>() <= hi)
      return v.get<uint64_t>();
    // Never dump() the value: it is the client's, of any size and depth.
    throw Refused{Status::kInvalid, describe_json(v) + " is not " + what + " (" + field(key) + ")"};
  }

  const json& req_;
  std::string cmd_;
  std::set<std::string> used_;
};

json result_json(const OpResult& r) {
  if (!r.ok()) {
    json out = {{"ok", false}, {"code", status_name(r.status)}, {"error", r.error}};
    if (!r.details.empty()) out["details"] = r.details;
    return out;
  }
  json out = {{"ok", true},
              {"changes", r.changes},
              {"generation", r.generation},
              {"applied", r.applied}};
  if (!r.note.empty()) out["note"] = r.note;
  return out;
}

// api::DataplaneInfo::start_kind as the API names it (decode_info refuses unknown values).
const char* start_kind_name(uint8_t kind) {
  return kind < std::size(api::kStartKindNames) ? api::kStartKindNames[kind] : "fresh";
}

json dataplane_json(const api::DataplaneInfo& d, const ControlPlaneView& v) {
  return {{"pid", d.pid},
          {"instance", d.instance},
          {"workers", d.n_workers},
          {"ports", d.n_ports},
          {"generation", d.generation},
          {"since", optional_time(v.dataplane_since)},
          {"start_kind", start_kind_name(d.start_kind)},
          {"adopted_flows", d.adopted_flows},
          {"discarded_flows", d.discarded_flows},
          {"gap_ms", d.gap_ms},
          {"mtu", d.mtu}};
}

json status_json(const ControlPlaneView& v, const ControlPlane& cp) {
  json dp = v.dataplane ? dataplane_json(*v.dataplane, v) : json(nullptr);
  json restarts = json::object();
  for (uint8_t k = 0; k < v.dataplane_restarts.size(); ++k)
    restarts[start_kind_name(k)] = v.dataplane_restarts[k];
  return {{"generation", v.generation},
          {"dataplane_connected", v.dataplane_connected},
          {"in_sync", v.in_sync},
          {"dataplane", dp},
          {"dataplane_restarts", restarts},
          {"restart_expected", v.restart_expected},
          {"last_push", optional_time(v.last_push)},
          {"stats_time", optional_time(v.stats_time)},
          {"pushes", v.pushes},
          {"push_failures", v.push_failures},
          {"reloads", v.reloads},
          {"reload_failures", v.reload_failures},
          {"dsr_checks", cp.options().dsr_checks_tunnel ? "tunnel" : "own_address"},
          {"config", cp.options().config_path},
          {"state_file", cp.options().state_path},
          {"vips", v.desired.vips.size()},
          {"backends", v.desired.backend_count()},
          {"interfaces", v.desired.interfaces.size()}};
}

// The interfaces (declared, else the implicit ones) with their counters: null while the
// dataplane's are not known.
json interfaces_json(const ControlPlaneView& v) {
  json out = json::array();
  for (const auto& r : interface_rows(v)) {
    const api::IfaceStats& i = r.iface;
    json addresses = json::array();
    for (const auto& a : r.addresses) addresses.push_back(format_prefix(a));
    auto counter = [&](uint64_t n) { return r.counted ? json(n) : json(nullptr); };
    out.push_back({{"name", i.name},
                   {"id", i.id},
                   {"port", i.port_id},
                   {"device", r.device.empty() ? json(nullptr) : json(r.device)},
                   {"vlan", i.vlan},
                   {"mtu", i.mtu ? json(i.mtu) : json(nullptr)},
                   {"addresses", addresses},
                   {"implicit", r.implicit},
                   {"rx_packets", counter(i.rx_packets)},
                   {"rx_bytes", counter(i.rx_bytes)},
                   {"tx_packets", counter(i.tx_packets)},
                   {"tx_bytes", counter(i.tx_bytes)}});
  }
  return out;
}

json vip_json(const VipSpec& v) {
  return {{"name", v.name},
          {"id", v.id},
          {"address", api::format_addr(v.ip)},
          {"port", v.port},
          {"protocol", proto_name(v.proto)},
          {"mode", mode_name(v.mode)},
          {"scheduler", sched_name(v.sched)},
          {"proxy_protocol", proxy_protocol_name(v.proxy_protocol)},
          {"on_all_down", on_all_down_name(v.on_all_down)},
          {"health_check", format_health_check(v.health_check)},
          {"drained", v.drained},
          {"backends", v.backends.size()}};
}

const api::BackendStats* find_stats(const ControlPlaneView& v, uint32_t id) {
  if (!v.stats || !v.dataplane_connected) return nullptr;
  for (const auto& b : v.stats->backends)
    if (b.id == id) return &b;
  return nullptr;
}

// One backend row of `show`: desired state, health, and the dataplane's view of it.
json backend_json(const ControlPlaneView& v, const std::map<uint32_t, Rates>& rates,
                  const VipSpec& vip, const BackendSpec& b) {
  json row = {{"vip", vip.name},
              {"id", b.id},
              {"address", api::format_addr(b.ip)},
              {"port", b.port},
              {"weight", b.weight},
              {"health", health_name(b.health)},
              {"drained", b.drained}};
  // Counters are known only while connected to a dataplane that answered a poll; absent
  // from its reply means nothing was counted yet.
  const bool known = v.stats && v.dataplane_connected;
  const api::BackendStats zero{.id = b.id};
  const api::BackendStats* s = known ? find_stats(v, b.id) : nullptr;
  if (known && !s) s = &zero;
  row["active_flows"] = s ? json(s->active_flows) : json(nullptr);
  row["quarantined"] = s ? json(s->quarantined) : json(nullptr);
  // Local ports it can still get (docs/security.md, "Local ports"): known once the backend
  // has had a connection (the dataplane reports capacity with its counters).
  if (s && s->port_capacity) {
    const uint64_t used = s->active_flows + s->quarantined;
    row["local_ports_free"] = used < s->port_capacity ? s->port_capacity - used : 0;
    row["local_ports"] = s->port_capacity;
  } else {
    row["local_ports_free"] = nullptr;
    row["local_ports"] = nullptr;
  }
  // maglev and sh: the entries of the VIP's lookup table the backend owns, as the dataplane
  // counted them when it built the table (with its --maglev-seed); null without a table.
  const bool table = s && s->table_size;
  row["table_entries"] = table ? json(s->table_entries) : json(nullptr);
  row["table_size"] = table ? json(s->table_size) : json(nullptr);
  row["connections"] = s ? json(s->connections) : json(nullptr);
  row["packets"] = s ? json(s->packets) : json(nullptr);
  row["bytes"] = s ? json(s->bytes) : json(nullptr);
  auto r = rates.find(b.id);
  const bool rated = known && !rates.empty();
  const Rates none{};
  const Rates& rr = r == rates.end() ? none : r->second;
  row["connections_per_s"] = rated ? json(rr.connections) : json(nullptr);
  row["packets_per_s"] = rated ? json(rr.packets) : json(nullptr);
  row["bytes_per_s"] = rated ? json(rr.bytes) : json(nullptr);
  return row;
}

struct BackendRef {
  std::string vip;
  api::Addr ip;
  uint16_t port;
};

BackendRef backend_ref(Args& a) {
  BackendRef r;
  r.vip = a.str("vip");
  r.ip = a.address("address");
  r.port = static_cast<uint16_t>(a.uint("port", 1, 65535, "a port (1-65535)"));
  return r;
}

json cmd_vip_add(ControlPlane& cp, Args& a, const std::string& origin) {
  VipSpec v;
  v.name = a.str("name");
  if (auto why = check_name(v.name); !why.empty()) throw Refused{Status::kInvalid, why};
  v.ip = a.address("address");
  v.port = static_cast<uint16_t>(a.uint("port", 1, 65535, "a port (1-65535)"));
  a.setting("protocol", parse_proto, "protocol", "tcp, udp", &v.proto);
  a.setting("scheduler", parse_sched, "scheduler", sched_choices(), &v.sched);
  a.setting("proxy_protocol", parse_proxy_protocol, "PROXY protocol setting", "off, v2",
            &v.proxy_protocol);
  a.setting("mode", parse_mode, "mode", mode_choices(), &v.mode);
  a.setting("on_all_down", parse_on_all_down, "on_all_down", "drop, open", &v.on_all_down);
  a.done();
  return result_json(cp.add_vip(std::move(v), origin));
}

json cmd_vip_remove(ControlPlane& cp, Args& a, const std::string& origin) {
  const auto name = a.str("name");
  const bool force = a.flag("force");
  a.done();
  return result_json(cp.remove_vip(name, force, origin));
}

json cmd_vip_drain(ControlPlane& cp, Args& a, const std::string& origin) {
  const auto name = a.str("name");
  a.done();
  return result_json(cp.set_vip_drained(name, true, origin));
}

json cmd_vip_undrain(ControlPlane& cp, Args& a, const std::string& origin) {
  const auto name = a.str("name");
  a.done();
  return result_json(cp.set_vip_drained(name, false, origin));
}

json cmd_vip_list(ControlPlane& cp, Args& a, const std::string& /*origin*/) {
  a.done();
  const auto v = cp.view();
  json vips = json::array();
  for (const auto& vip : v.desired.vips) vips.push_back(vip_json(vip));
  return {{"ok", true}, {"vips", vips}};
}

json cmd_backend_add(ControlPlane& cp, Args& a, const std::string& origin) {
  auto b = backend_ref(a);
  const auto weight = static_cast<uint16_t>(a.uint_or("weight", 0, 65535, "a weight (0-65535)", 1));
  a.done();
  return result_json(cp.add_backend(b.vip, b.ip, b.port, weight, origin));
}

json cmd_backend_remove(ControlPlane& cp, Args& a, const std::string& origin) {
  auto b = backend_ref(a);
  const bool force = a.flag("force");
  a.done();
  return result_json(cp.remove_backend(b.vip, b.ip, b.port, force, origin));
}

json cmd_backend_drain(ControlPlane& cp, Args& a, const std::string& origin) {
  auto b = backend_ref(a);
  a.done();
  return result_json(cp.set_drained(b.vip, b.ip, b.port, true, origin));
}

json cmd_backend_undrain(ControlPlane& cp, Args& a, const std::string& origin) {
  auto b = backend_ref(a);
  a.done();
  return result_json(cp.set_drained(b.vip, b.ip, b.port, false, origin));
}

json cmd_backend_weight(ControlPlane& cp, Args& a, const std::string& origin) {
  auto b = backend_ref(a);
  const auto weight = static_cast<uint16_t>(a.uint("weight", 0, 65535, "a weight (0-65535)"));
  a.done();
  return result_json(cp.set_weight(b.vip, b.ip, b.port, weight, origin));
}

json cmd_backend_get(ControlPlane& cp, Args& a, const std::string& /*origin*/) {
  auto ref = backend_ref(a);
  a.done();
  const auto v = cp.view();
  const VipSpec* vip = v.desired.find_vip(ref.vip);
  if (!vip) throw Refused{Status::kNotFound, "no vip named " + ref.vip};
  const BackendSpec* b = vip->find_backend(ref.ip, ref.port);
  if (!b)
    throw Refused{Status::kNotFound,
                  "vip " + ref.vip + " has no backend " + format_endpoint(ref.ip, ref.port)};
  return {{"ok", true}, {"backend", backend_json(v, cp.rates(), *vip, *b)}};
}

json cmd_show(ControlPlane& cp, Args& a, const std::string& /*origin*/) {
  const auto only = a.str_opt("vip");
  a.done();
  const auto v = cp.view();
  const auto rates = cp.rates();
  if (only && !v.desired.find_vip(*only)) throw Refused{Status::kNotFound, "no vip named " + *only};
  json vips = json::array();
  for (const auto& vip : v.desired.vips) {
    if (only && vip.name != *only) continue;
    json row = vip_json(vip);
    json backends = json::array();
    for (const auto& b : vip.backends) backends.push_back(backend_json(v, rates, vip, b));
    row["backends"] = backends;
    vips.push_back(row);
  }
  return {{"ok", true},
          {"status", status_json(v, cp)},
          {"interfaces", interfaces_json(v)},
          {"vips", vips}};
}

json cmd_status(ControlPlane& cp, Args& a, const std::string& /*origin*/) {
  a.done();
  return {{"ok", true}, {"status", status_json(cp.view(), cp)}};
}

json cmd_stats(ControlPlane& cp, Args& a, const std::string& /*origin*/) {
  a.done();
  const auto v = cp.view();
  if (!v.stats || !v.dataplane_connected)
    throw Refused{Status::kUnavailable,
                  "no dataplane counters: the dataplane is not connected"};
  const api::Stats& s = *v.stats;
  auto drop_name = [&](size_t i) {
    return i < s.drop_names.size() ? s.drop_names[i] : "reason_" + std::to_string(i);
  };
  json lcores = json::array();
  json counter_names = json::array();  // the lcore counters' names, in the dataplane's order
  for (const auto& c : s.counters) counter_names.push_back(c.name);
  std::map<std::string, uint64_t> drop_totals;
  for (size_t i = 0; i < s.drop_names.size(); ++i) drop_totals[s.drop_names[i]] = 0;
  for (const auto& l : s.lcores) {
    json drops = json::object();
    for (size_t i = 0; i < l.drops.size(); ++i) {
      drops[drop_name(i)] = l.drops[i];
      drop_totals[drop_name(i)] += l.drops[i];
    }
    json row = {{"lcore_id", l.lcore_id}};
    for (size_t i = 0; i < s.counters.size() && i < l.counters.size(); ++i)
      row[s.counters[i].name] = l.counters[i];
    row["drops"] = drops;
    lcores.push_back(std::move(row));
  }
  // Backend counters with the names people use; ids the state no longer has (removed
  // backends whose flows live on) are listed by id.
  std::map<uint32_t, std::pair<const VipSpec*, const BackendSpec*>> by_id;
  for (const auto& vip : v.desired.vips)
    for (const auto& b : vip.backends) by_id[b.id] = {&vip, &b};
  json backends = json::array();
  for (const auto& b : s.backends) {
    json row = {{"id", b.id},
                {"packets", b.packets},
                {"bytes", b.bytes},
                {"connections", b.connections},
                {"active_flows", b.active_flows},
                {"quarantined", b.quarantined},
                {"port_capacity", b.port_capacity}};
    if (auto it = by_id.find(b.id); it != by_id.end()) {
      row["vip"] = it->second.first->name;
      row["backend"] = format_endpoint(it->second.second->ip, it->second.second->port);
    } else {
      row["vip"] = nullptr;
      row["backend"] = nullptr;
    }
    backends.push_back(row);
  }
  json ports = json::array();
  for (const auto& p : s.ports)
    ports.push_back({{"port_id", p.port_id},
                     {"name", p.name},
                     {"ipackets", p.ipackets},
                     {"opackets", p.opackets},
                     {"ibytes", p.ibytes},
                     {"obytes", p.obytes},
                     {"imissed", p.imissed},
                     {"ierrors", p.ierrors},
                     {"oerrors", p.oerrors},
                     {"rx_nombuf", p.rx_nombuf}});
  return {{"ok", true},
          {"status", status_json(v, cp)},
          {"dataplane_generation", s.generation},
          {"counters", counter_names},
          {"drops", drop_totals},
          {"lcores", lcores},
          {"backends", backends},
          {"ports", ports},
          {"interfaces", interfaces_json(v)}};
}

// ---- Inspection: flows, trace, drop samples (the dataplane's InspectRequest).

// "ADDRESS" or "ADDRESS:PORT", either family ("2001:db8::3", "[2001:db8::3]:3000"; port 0:
// any).
std::pair<api::Addr, uint16_t> ip_or_endpoint(const std::string& s) {
  std::string why;
  // A bare IPv6 address has colons too: an endpoint has a port after the last one, and
  // either no other colon (IPv4) or brackets (IPv6).
  const bool endpoint = !s.empty() && (s.front() == '[' || std::count(s.begin(), s.end(), ':') == 1);
  if (!endpoint) {
    auto ip = parse_host_address(s, &why);
    if (!ip) throw Refused{Status::kInvalid, why};
    return {*ip, 0};
  }
  auto ep = parse_endpoint(s, &why);
  if (!ep) throw Refused{Status::kInvalid, why};
  return *ep;
}

// The flow filter of a request: client, vip (an address[:port] or a vip's name), backend,
// local (address[:port]) and protocol, each optional.
api::FlowFilter flow_filter(const ControlPlaneView& v, Args& a) {
  api::FlowFilter f;
  if (auto c = a.str_opt("client")) std::tie(f.client_ip, f.client_port) = ip_or_endpoint(*c);
  if (auto b = a.str_opt("backend")) std::tie(f.backend_ip, f.backend_port) = ip_or_endpoint(*b);
  if (auto l = a.str_opt("local")) std::tie(f.local_ip, f.local_port) = ip_or_endpoint(*l);
  if (auto p = a.str_opt("protocol")) {
    auto proto = parse_proto(*p);
    if (!proto) throw Refused{Status::kInvalid, *p + " is not a supported protocol (tcp, udp)"};
    f.proto = static_cast<uint8_t>(*proto);
  }
  if (auto vip = a.str_opt("vip")) {
    if (const VipSpec* named = v.desired.find_vip(*vip)) {
      f.vip_ip = named->ip;
      f.vip_port = named->port;
      if (f.proto != 0 && f.proto != static_cast<uint8_t>(named->proto))
        throw Refused{Status::kInvalid, "vip " + *vip + " is " + std::string(proto_name(named->proto))};
      f.proto = static_cast<uint8_t>(named->proto);
    } else if (std::isdigit(static_cast<unsigned char>(vip->empty() ? 'x' : (*vip)[0])) ||
               vip->find_first_of(":[") != std::string::npos) {
      // An address (a name has neither ':' nor '['; an IPv6 address may start with a letter).
      std::tie(f.vip_ip, f.vip_port) = ip_or_endpoint(*vip);
    } else {
      throw Refused{Status::kNotFound, "no vip named " + *vip};
    }
  }
  return f;
}

api::InspectReply inspect(const ControlPlane& cp, const api::InspectRequest& req) {
  std::string err;
  auto out = cp.inspect(req, &err);
  if (!out) throw Refused{Status::kUnavailable, err};
  return std::move(*out);
}

json flow_json(const ControlPlaneView& v, const api::FlowInfo& f) {
  std::string vip_name;
  std::string backend_vip;
  for (const auto& vip : v.desired.vips)
    if (vip.id == f.vip_id) vip_name = vip.name;
  const auto proto = f.proto == 6 ? "tcp" : f.proto == 17 ? "udp" : "other";
  json row = {{"lcore", f.lcore},
              {"protocol", proto},
              {"client", format_endpoint(f.client_ip, f.client_port)},
              {"vip", format_endpoint(f.vip_ip, f.vip_port)},
              {"vip_name", vip_name.empty() ? json(nullptr) : json(vip_name)},
              {"backend", format_endpoint(f.backend_ip, f.backend_port)},
              {"backend_id", f.backend_id},
              {"local", format_endpoint(f.local_ip, f.local_port)},
              {"state", f.state},
              {"expires_in_s", f.expires_ms / 1000.0},
              {"metered", f.metered}};
  if (f.metered) {
    row["age_s"] = f.age_ms / 1000.0;
    row["packets_in"] = f.packets_in;
    row["bytes_in"] = f.bytes_in;
    row["packets_out"] = f.packets_out;
    row["bytes_out"] = f.bytes_out;
  } else {
    for (const char* k : {"age_s", "packets_in", "bytes_in", "packets_out", "bytes_out"}) row[k] = nullptr;
  }
  return row;
}

json flows_answer(const ControlPlaneView& v, const api::InspectReply& r) {
  json flows = json::array();
  for (const auto& f : r.flows) flows.push_back(flow_json(v, f));
  return {{"ok", true},
          {"flows", flows},
          {"next_cursor", r.next_cursor ? json(r.next_cursor) : json(nullptr)},
          {"scanned", r.scanned}};
}

json cmd_flow_list(ControlPlane& cp, Args& a, const std::string& /*origin*/) {
  const auto v = cp.view();
  api::InspectRequest req;
  req.op = api::InspectOp::kFlows;
  req.filter = flow_filter(v, a);
  req.limit = static_cast<uint32_t>(a.uint_or("limit", 1, api::kMaxFlowPage, "a page size (1-1000)", 100));
  req.cursor = a.uint_or("cursor", 0, UINT64_MAX, "a cursor", 0);
  a.done();
  return flows_answer(v, inspect(cp, req));
}

json cmd_flow_delete(ControlPlane& cp, Args& a, const std::string& origin) {
  const auto v = cp.view();
  api::InspectRequest req;
  req.op = api::InspectOp::kFlowDelete;
  req.filter = flow_filter(v, a);
  req.limit = static_cast<uint32_t>(a.uint_or("limit", 1, api::kMaxFlowPage, "a page size (1-1000)", 1000));
  req.cursor = a.uint_or("cursor", 0, UINT64_MAX, "a cursor", 0);
  a.done();
  if (req.filter == api::FlowFilter{})
    throw Refused{Status::kInvalid, "flow.delete: name the flows (client, vip, backend, local or protocol)"};
  const api::InspectReply r = inspect(cp, req);
  json out = flows_answer(v, r);
  out["deleted"] = r.deleted;
  if (r.deleted)
    log_info("api: " + origin + ": deleted " + std::to_string(r.deleted) + " flows");
  return out;
}

json trace_answer(const api::InspectReply& r) {
  json records = json::array();
  for (const auto& t : r.trace)
    records.push_back({{"lcore", t.lcore},
                       {"at_us", t.at_us},
                       {"in_port", t.in_port},
                       {"steered", t.steered},
                       {"packet", t.packet},
                       {"kind", t.kind},
                       {"flow", t.flow.empty() ? json(nullptr) : json(t.flow)},
                       {"backend", t.backend.empty() ? json(nullptr) : json(t.backend)},
                       {"state", t.state.empty() ? json(nullptr) : json(t.state)},
                       {"verdict", t.verdict},
                       {"reason", t.reason.empty() ? json(nullptr) : json(t.reason)},
                       {"out", t.out.empty() ? json(nullptr) : json(t.out)},
                       {"out_port", t.verdict == "tx" || t.verdict == "steer" ? json(t.out_port) : json(nullptr)}});
  return {{"ok", true}, {"armed", r.armed}, {"packets", records}};
}

json cmd_trace_start(ControlPlane& cp, Args& a, const std::string& origin) {
  const auto v = cp.view();
  api::InspectRequest req;
  req.op = api::InspectOp::kTraceStart;
  req.filter = flow_filter(v, a);
  req.limit = static_cast<uint32_t>(a.uint_or("count", 1, api::kMaxTracePackets, "a packet count (1-10000)", 10));
  req.seconds = static_cast<uint32_t>(a.uint_or("seconds", 1, api::kMaxTraceSeconds, "a duration (1-3600 s)", 10));
  a.done();
  const api::InspectReply r = inspect(cp, req);
  log_info("api: " + origin + ": trace armed for " + std::to_string(req.limit) + " packets, " +
           std::to_string(req.seconds) + " s");
  return {{"ok", true}, {"armed", r.armed}, {"count", req.limit}, {"seconds", req.seconds}};
}

json cmd_trace_read(ControlPlane& cp, Args& a, const std::string& /*origin*/) {
  a.done();
  api::InspectRequest req;
  req.op = api::InspectOp::kTraceRead;
  return trace_answer(inspect(cp, req));
}

json cmd_trace_stop(ControlPlane& cp, Args& a, const std::string& /*origin*/) {
  a.done();
  api::InspectRequest req;
  req.op = api::InspectOp::kTraceStop;
  return trace_answer(inspect(cp, req));
}

json cmd_drops(ControlPlane& cp, Args& a, const std::string& /*origin*/) {
  const auto reason = a.str_opt("reason");
  a.done();
  api::InspectRequest req;
  req.op = api::InspectOp::kDrops;
  if (reason) {
    const auto v = cp.view();
    if (!v.stats || !v.dataplane_connected)
      throw Refused{Status::kUnavailable, "no dataplane counters yet: the dataplane is not connected"};
    const auto& names = v.stats->drop_names;
    auto it = std::find(names.begin(), names.end(), *reason);
    if (it == names.end()) {
      std::string all;
      for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
      throw Refused{Status::kInvalid, "\"" + *reason + "\" is not a drop reason (" + all + ")"};
    }
    req.reason = static_cast<uint32_t>(it - names.begin());
  }
  const api::InspectReply r = inspect(cp, req);
  json samples = json::array();
  for (const auto& d : r.drops)
    samples.push_back({{"lcore", d.lcore},
                       {"reason", d.reason},
                       {"ago_s", d.ago_ms / 1000.0},
                       {"in_port", d.in_port},
                       {"len", d.len},
                       {"packet", d.packet},
                       {"hex", d.hex}});
  return {{"ok", true}, {"drops", samples}};
}

json cmd_reload(ControlPlane& cp, Args& a, const std::string& origin) {
  a.done();
  return result_json(cp.reload(origin));
}

// How long dataplane.restart waits for the dataplane's answer: the controller thread may be
// in the middle of a step (each call bounded by the client's 3 s timeout) before it asks.
constexpr std::chrono::milliseconds kRestartAnswerTimeout{10'000};

json cmd_dataplane_restart(ControlPlane& cp, Args& a, const std::string& origin) {
  a.done();
  const RestartResult r = cp.restart_dataplane(origin, kRestartAnswerTimeout);
  if (!r.ok()) {
    const bool refused = r.status == Status::kFailed && r.before;
    throw Refused{r.status, refused ? "the dataplane refused to restart: " + r.error : r.error};
  }
  json before = nullptr;
  if (r.before) before = {{"pid", r.before->pid}, {"instance", r.before->instance}};
  return {{"ok", true}, {"message", r.message}, {"before", before}};
}

// The API's commands: name -> handler. A handler reads its fields through Args (typed,
// each at most once, leftovers refused by a.done()) and returns the reply object.
using Handler = json (*)(ControlPlane& cp, Args& a, const std::string& origin);
struct Command {
  std::string_view name;
  Handler run;
};
constexpr Command kCommands[] = {
    {"vip.add", cmd_vip_add},
    {"vip.remove", cmd_vip_remove},
    {"vip.list", cmd_vip_list},
    {"vip.drain", cmd_vip_drain},
    {"vip.undrain", cmd_vip_undrain},
    {"backend.add", cmd_backend_add},
    {"backend.remove", cmd_backend_remove},
    {"backend.drain", cmd_backend_drain},
    {"backend.undrain", cmd_backend_undrain},
    {"backend.weight", cmd_backend_weight},
    {"backend.get", cmd_backend_get},
    {"show", cmd_show},
    {"status", cmd_status},
    {"stats", cmd_stats},
    {"reload", cmd_reload},
    {"dataplane.restart", cmd_dataplane_restart},
    {"flow.list", cmd_flow_list},
    {"flow.delete", cmd_flow_delete},
    {"trace.start", cmd_trace_start},
    {"trace.read", cmd_trace_read},
    {"trace.stop", cmd_trace_stop},
    {"drops", cmd_drops},
};

const Command* find_command(std::string_view name) {
  for (const auto& c : kCommands)
    if (c.name == name) return &c;
  return nullptr;
}

}  // namespace

std::string handle_request(ControlPlane& cp, std::string_view line, const std::string& origin) {
  json out;
  try {
    if (auto why = check_json_depth(line); !why.empty())
      throw Refused{Status::kInvalid, "malformed request: " + why};
    json req;
    try {
      req = json::parse(line);
    } catch (const json::parse_error& e) {
      throw Refused{Status::kInvalid, std::string("malformed request (not JSON): ") + e.what()};
    }
    if (!req.is_object()) throw Refused{Status::kInvalid, "malformed request: expected a JSON object"};
    auto cmd = req.find("cmd");
    if (cmd == req.end() || !cmd->is_string())
      throw Refused{Status::kInvalid, "malformed request: \"cmd\" (a string) is missing"};
    const auto name = cmd->get<std::string>();
    const Command* command = find_command(name);
    if (!command) throw Refused{Status::kInvalid, "unknown command \"" + name + "\""};
    Args args(req, name);
    out = command->run(cp, args, origin);
  } catch (const Refused& r) {
    out = {{"ok", false}, {"code", status_name(r.status)}, {"error", r.error}};
  } catch (const json::exception& e) {
    // Not expected (every access above is typed first); still an answer, never a crash.
    out = {{"ok", false}, {"code", status_name(Status::kFailed)}, {"error", e.what()}};
  }
  // Invalid UTF-8 in a name we echo must not make dump() throw.
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace rondo::cp

#include "controlplane/state/diff.h"

#include <cstdio>

namespace rondo::cp {
namespace {

std::string join_ips(const std::vector<api::Addr>& ips) {
  std::string out = "[";
  for (size_t i = 0; i < ips.size(); ++i) out += (i ? ", " : "") + api::format_addr(ips[i]);
  return out + "]";
}

// " port N" with implicit interfaces (as before interfaces existed), " interface NAME" else.
std::string where(const DesiredState& d, uint16_t iface) {
  return d.interfaces.empty() ? " port " + std::to_string(iface) : " interface " + d.interface_name(iface);
}

std::string format_route(const DesiredState& d, const api::Route& r) {
  std::string out = api::format_addr(r.prefix) + "/" + std::to_string(r.prefix_len);
  out += !r.via.is_zero() ? " via " + api::format_addr(r.via) : " on-link";
  return out + where(d, r.iface);
}

std::string format_neighbour(const DesiredState& d, const api::Neighbour& n) {
  char mac[18];
  std::snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", n.mac[0], n.mac[1], n.mac[2],
                n.mac[3], n.mac[4], n.mac[5]);
  return api::format_addr(n.ip) + " " + mac + where(d, n.iface);
}

// The fields of an interface as a diff line shows them; `what` picks one.
std::string vlan_text(const api::Interface& i) { return i.vlan ? std::to_string(i.vlan) : "untagged"; }
std::string mtu_text(const api::Interface& i) { return i.mtu ? std::to_string(i.mtu) : "default"; }
std::string addresses_text(const api::Interface& i) {
  std::string out = "[";
  for (size_t k = 0; k < i.addresses.size(); ++k) out += (k ? ", " : "") + format_prefix(i.addresses[k]);
  return out + "]";
}

void diff_interfaces(const DesiredState& from, const DesiredState& to, std::vector<std::string>* out) {
  for (const auto& i : to.interfaces) {
    const api::Interface* old = from.find_interface(std::string_view(i.name));
    if (!old) {
      out->push_back("+ interface " + i.name + " port " + std::to_string(i.port_id) + " vlan " +
                     vlan_text(i) + " mtu " + mtu_text(i) + " addresses " + addresses_text(i));
      continue;
    }
    const std::string head = "~ interface " + i.name + " ";
    if (old->port_id != i.port_id)
      out->push_back(head + "port " + std::to_string(old->port_id) + " -> " + std::to_string(i.port_id));
    if (old->vlan != i.vlan) out->push_back(head + "vlan " + vlan_text(*old) + " -> " + vlan_text(i));
    if (old->mtu != i.mtu) out->push_back(head + "mtu " + mtu_text(*old) + " -> " + mtu_text(i));
    if (old->addresses != i.addresses)
      out->push_back(head + "addresses " + addresses_text(*old) + " -> " + addresses_text(i));
  }
  for (const auto& i : from.interfaces)
    if (!to.find_interface(std::string_view(i.name)))
      out->push_back("- interface " + i.name + " port " + std::to_string(i.port_id) + " vlan " +
                     vlan_text(i));
}

template <typename T, typename F>
std::string join(const std::vector<T>& items, F format) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + format(items[i]);
  return out + "]";
}

std::string backend_line(char op, const VipSpec& v, const BackendSpec& b) {
  std::string line = std::string(1, op) + " backend " + v.name + " " + format_endpoint(b.ip, b.port);
  if (op == '+') {
    line += " weight " + std::to_string(b.weight);
    if (b.drained) line += " drained";
  }
  return line;
}

void diff_vip(const VipSpec& a, const VipSpec& b, std::vector<std::string>* out) {
  const std::string head = "~ vip " + b.name + " ";
  if (a.ip != b.ip || a.port != b.port || a.proto != b.proto)
    out->push_back(head + "address " + format_vip_address(a) + " -> " + format_vip_address(b));
  // A named setting: "~ vip web mode fullnat -> ipip".
  auto setting = [&](const char* key, auto name, auto VipSpec::*member) {
    if (a.*member != b.*member)
      out->push_back(head + key + " " + std::string(name(a.*member)) + " -> " +
                     std::string(name(b.*member)));
  };
  setting("mode", mode_name, &VipSpec::mode);
  setting("scheduler", sched_name, &VipSpec::sched);
  setting("proxy_protocol", proxy_protocol_name, &VipSpec::proxy_protocol);
  setting("on_all_down", on_all_down_name, &VipSpec::on_all_down);
  setting("syncookies", syncookies_name, &VipSpec::syncookies);
  if (a.drained != b.drained) out->push_back(head + (b.drained ? "drained" : "undrained"));
  if (a.health_check != b.health_check)
    out->push_back(head + "health_check " + format_health_check(a.health_check) + " -> " +
                   format_health_check(b.health_check));
  for (const auto& nb : b.backends) {
    const BackendSpec* ob = a.find_backend(nb.ip, nb.port);
    if (!ob) {
      out->push_back(backend_line('+', b, nb));
      continue;
    }
    const std::string bhead = "~ backend " + b.name + " " + format_endpoint(nb.ip, nb.port) + " ";
    if (ob->weight != nb.weight)
      out->push_back(bhead + "weight " + std::to_string(ob->weight) + " -> " +
                     std::to_string(nb.weight));
    if (ob->drained != nb.drained) out->push_back(bhead + (nb.drained ? "drained" : "undrained"));
  }
  for (const auto& ob : a.backends)
    if (!b.find_backend(ob.ip, ob.port)) out->push_back(backend_line('-', a, ob));
}

}  // namespace

std::string format_vip_address(const VipSpec& v) {
  return format_endpoint(v.ip, v.port) + "/" + std::string(proto_name(v.proto));
}

std::string format_health_check(const HealthCheck& hc) {
  if (hc.type == HealthCheck::Type::kNone) return "none";
  std::string out(health_check_type_name(hc.type));
  if (hc.port) out += " port " + std::to_string(hc.port);
  if (hc.type == HealthCheck::Type::kHttp)
    out += " " + hc.path + " expect " + std::to_string(hc.http_status);
  out += " every " + std::to_string(hc.interval_ms) + " ms timeout " +
         std::to_string(hc.timeout_ms) + " ms rise " + std::to_string(hc.rise) + " fall " +
         std::to_string(hc.fall);
  return out;
}

std::vector<std::string> diff_states(const DesiredState& from, const DesiredState& to) {
  std::vector<std::string> out;
  for (const auto& v : to.vips) {
    const VipSpec* old = from.find_vip(v.name);
    if (!old) {
      out.push_back("+ vip " + v.name + " " + format_vip_address(v));
      for (const auto& b : v.backends) out.push_back(backend_line('+', v, b));
      continue;
    }
    diff_vip(*old, v, &out);
  }
  for (const auto& v : from.vips) {
    if (to.find_vip(v.name)) continue;
    out.push_back("- vip " + v.name + " " + format_vip_address(v));
    for (const auto& b : v.backends) out.push_back(backend_line('-', v, b));
  }
  diff_interfaces(from, to, &out);
  if (from.local_ips != to.local_ips)
    out.push_back("~ local_ips " + join_ips(from.local_ips) + " -> " + join_ips(to.local_ips));
  // Routes and neighbours hold interface ids; compared by what they name, so that only a
  // renamed or moved interface's own line shows a change of interface.
  auto routes_of = [](const DesiredState& d) {
    return join(d.routes, [&](const api::Route& r) { return format_route(d, r); });
  };
  auto neighbours_of = [](const DesiredState& d) {
    return join(d.neighbours, [&](const api::Neighbour& n) { return format_neighbour(d, n); });
  };
  if (const auto a = routes_of(from), b = routes_of(to); a != b)
    out.push_back("~ routes " + a + " -> " + b);
  if (const auto a = neighbours_of(from), b = neighbours_of(to); a != b)
    out.push_back("~ neighbours " + a + " -> " + b);
  const auto& ta = from.timeouts;
  const auto& tb = to.timeouts;
  for (const auto& f : api::kTimeoutFields) {
    const char* name = f.name;
    const uint32_t a = ta.*f.ms, b = tb.*f.ms;
    if (a != b)
      out.push_back(std::string("~ timeouts ") + name + " " + std::to_string(a / 1000) + " s -> " +
                    std::to_string(b / 1000) + " s");
  }
  return out;
}

std::string adopt_identity(const DesiredState& current, DesiredState* next,
                           const std::function<std::optional<uint32_t>()>& new_vip_id,
                           const std::function<std::optional<uint32_t>()>& new_backend_id,
                           const std::function<std::optional<uint32_t>()>& new_interface_id) {
  // Interfaces by name; routes and neighbours follow their interface's id.
  std::vector<uint16_t> iface_ids(next->interfaces.size());
  for (size_t k = 0; k < iface_ids.size(); ++k) {
    const api::Interface* old = current.find_interface(std::string_view(next->interfaces[k].name));
    if (old) iface_ids[k] = old->id;
  }
  for (size_t k = 0; k < iface_ids.size(); ++k) {
    if (current.find_interface(std::string_view(next->interfaces[k].name))) continue;
    auto id = new_interface_id();
    if (!id)
      return "no free interface id (at most " + std::to_string(api::kMaxInterfaces) + " interfaces)";
    iface_ids[k] = static_cast<uint16_t>(*id);
  }
  renumber_interfaces(next, iface_ids);
  // Kept ids first, so that the allocators know every id the result uses before handing
  // out new ones (the callers' in-use sets are built from `current`).
  for (auto& v : next->vips) {
    const VipSpec* old = current.find_vip(v.name);
    if (old) {
      v.id = old->id;
      v.drained = old->drained;
    }
    for (auto& b : v.backends) {
      const BackendSpec* ob = old ? old->find_backend(b.ip, b.port) : nullptr;
      if (!ob) continue;
      b.id = ob->id;
      b.drained = ob->drained;
      b.health = ob->health;
    }
  }
  for (auto& v : next->vips) {
    const VipSpec* old = current.find_vip(v.name);
    if (!old) {
      auto id = new_vip_id();
      if (!id) return "no free vip id (at most " + std::to_string(api::kMaxVipId + 1) + " vips)";
      v.id = *id;
    }
    for (auto& b : v.backends) {
      if (old && old->find_backend(b.ip, b.port)) continue;
      auto id = new_backend_id();
      if (!id)
        return "no free backend id (at most " + std::to_string(api::kMaxBackendId + 1) +
               " backends, and retired ids are reused only once their flows are gone)";
      b.id = *id;
    }
  }
  return {};
}

}  // namespace rondo::cp

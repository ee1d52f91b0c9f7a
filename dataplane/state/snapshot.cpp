#include "dataplane/state/snapshot.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace rondo::dp {
namespace {

// FNV-1a over the eligible backends' ids and weights.
uint64_t pool_signature(const Snapshot& s, uint32_t first, uint32_t count) {
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](uint64_t x) {
    for (int i = 0; i < 8; ++i, x >>= 8) h = (h ^ (x & 0xff)) * 0x100000001b3ull;
  };
  mix(count);
  for (uint32_t i = first; i < first + count; ++i) {
    const BackendConf& b = s.backends[s.eligible[i]];
    mix(uint64_t{b.id} << 16 | b.weight);
  }
  return h ? h : 1;
}

inline uint32_t vip_slot(uint32_t ip, uint16_t port, uint8_t proto, uint32_t mask) {
  uint32_t h = ip * 0x9e3779b1u ^ (static_cast<uint32_t>(port) << 8 | proto) * 0x85ebca6bu;
  return (h ^ (h >> 15)) & mask;
}

// The 16 bytes folded to 32 bits: the v6 index's slot, and an IPv6 backend's stand-in where
// a 32-bit address is hashed (its Maglev permutation, its counters' identity).
inline uint32_t fold6(const Ip6& a) {
  uint32_t w[4];
  std::memcpy(w, a.b, 16);
  return w[0] ^ w[1] ^ w[2] ^ w[3];
}

inline bool addr_v4(const api::Addr& a) { return a.is_v4(); }
inline uint32_t net4(const api::Addr& a) { return htonl(a.v4()); }
inline Ip6 ip6_of(const api::Addr& a) { return Ip6::from(a.b.data()); }

// The families of a VIP: its own, and its backends' (validation allows one family per VIP's
// backends; a VIP without backends takes its own).
Families families_of(const api::Vip& v) {
  const bool vip4 = addr_v4(v.ip);
  const bool be4 = v.backends.empty() ? vip4 : addr_v4(v.backends.front().ip);
  if (vip4) return be4 ? Families::k44 : Families::k46;
  return be4 ? Families::k64 : Families::k66;
}

// Prefix bytes of a v6 address beyond `len` bits cleared.
Ip6 mask6(Ip6 a, uint8_t len) {
  for (uint32_t i = 0; i < 16; ++i) {
    const uint32_t bits = len > i * 8 ? len - i * 8 : 0;
    if (bits < 8) a.b[i] &= static_cast<uint8_t>(0xff00u >> bits);
  }
  return a;
}

// Entries of a port's by_vid table: every 12-bit VID.
constexpr size_t kVids = 4096;

// The interfaces (decisions 1 and 4 of the VLAN plan): the declared ones by id, or without
// any one untagged interface per port (id = port id, --mtu, no addresses: routing as before
// interfaces existed); each port's classify table; the smallest MTU.
void build_interfaces(const api::State& s, const SnapshotParams& p, Snapshot* snap) {
  snap->ifaces.clear();
  snap->port_ifaces.clear();
  if (s.interfaces.empty()) {
    snap->ifaces.resize(p.n_ports);
    snap->port_ifaces.resize(p.n_ports);
    for (uint16_t port = 0; port < p.n_ports; ++port) {
      snap->ifaces[port].port = port;
      snap->ifaces[port].in_use = true;
      snap->ifaces[port].mtu = p.default_mtu;
      snap->port_ifaces[port].untagged = port;
    }
    snap->first_iface = 0;
    snap->min_mtu = p.default_mtu;
    return;
  }
  // Validated (api::check_state, check_dataplane): ids below kMaxInterfaces and unique, one
  // interface per (port, VID), ports the dataplane has. A port above them still gets a
  // table, so that nothing here indexes past the end for a state the agent never applies.
  uint16_t max_id = 0, max_port = 0;
  for (const auto& i : s.interfaces) {
    max_id = std::max(max_id, i.id);
    max_port = std::max(max_port, i.port_id);
  }
  snap->ifaces.resize(max_id + 1u);
  snap->port_ifaces.resize(std::max<size_t>(p.n_ports, max_port + 1u));
  snap->min_mtu = UINT32_MAX;
  for (const auto& i : s.interfaces) {
    IfaceConf& c = snap->ifaces[i.id];
    c.port = i.port_id;
    c.tagged = i.vlan != 0;
    c.tci = htons(i.vlan & 0xfff);
    c.in_use = true;
    c.mtu = i.mtu ? i.mtu : p.default_mtu;
    snap->min_mtu = std::min(snap->min_mtu, c.mtu);
    for (const auto& a : i.addresses) {
      if (addr_v4(a.addr)) {
        c.addrs.push_back(net4(a.addr));
        c.addr_lens.push_back(a.len);
      } else {
        c.addrs6.push_back(ip6_of(a.addr));
        c.addr_lens6.push_back(a.len);
      }
    }
    PortIfaces& port = snap->port_ifaces[i.port_id];
    if (!c.tagged) {
      port.untagged = i.id;
      continue;
    }
    if (!port.by_vid) {
      port.by_vid = std::make_unique<uint16_t[]>(kVids);
      std::fill_n(port.by_vid.get(), kVids, kNoIface);
    }
    port.by_vid[i.vlan & 0xfff] = i.id;
  }
  snap->first_iface = s.interfaces.front().id;
}

// Decision 2 of the VLAN plan, per family: each interface address shorter than /32 (/128)
// puts its subnet on-link on its interface (a connected route), unless an explicit route
// has that prefix (explicit wins); while no explicit route of the family exists, everything
// else is on-link on the first interface, as before interfaces had addresses (an implicit
// default, needed in the table only once connected routes are in it).
void add_connected_routes(const api::State& s, uint16_t first_iface, std::vector<RouteConf>* routes,
                          std::vector<RouteConf6>* routes6) {
  const bool explicit4 = !routes->empty(), explicit6 = !routes6->empty();
  for (const auto& i : s.interfaces) {
    for (const auto& a : i.addresses) {
      if (addr_v4(a.addr)) {
        if (a.len == 0 || a.len >= 32) continue;
        RouteConf rc;
        rc.len = a.len;
        rc.mask = htonl(~0u << (32 - a.len));
        rc.prefix = net4(a.addr) & rc.mask;
        rc.iface = i.id;
        if (std::none_of(routes->begin(), routes->end(), [&](const RouteConf& r) {
              return r.len == rc.len && r.prefix == rc.prefix;
            }))
          routes->push_back(rc);
      } else {
        if (a.len == 0 || a.len >= 128) continue;
        RouteConf6 rc;
        rc.len = a.len;
        rc.prefix = mask6(ip6_of(a.addr), a.len);
        rc.iface = i.id;
        if (std::none_of(routes6->begin(), routes6->end(), [&](const RouteConf6& r) {
              return r.len == rc.len && r.prefix == rc.prefix;
            }))
          routes6->push_back(rc);
      }
    }
  }
  if (!explicit4 && !routes->empty()) {
    RouteConf dflt;
    dflt.iface = first_iface;
    routes->push_back(dflt);
  }
  if (!explicit6 && !routes6->empty()) {
    RouteConf6 dflt;
    dflt.iface = first_iface;
    routes6->push_back(dflt);
  }
}

}  // namespace

const VipConf* Snapshot::find_vip(uint32_t ip, uint16_t port, uint8_t proto) const {
  if (vip_index.empty()) return nullptr;
  const uint32_t mask = static_cast<uint32_t>(vip_index.size() - 1);
  for (uint32_t i = vip_slot(ip, port, proto, mask);; i = (i + 1) & mask) {
    const int32_t v = vip_index[i];
    if (v < 0) return nullptr;
    const VipConf& c = vips[static_cast<uint32_t>(v)];
    if (c.ip == ip && c.port == port && c.proto == proto) return &c;
  }
}

bool Snapshot::is_vip_ip(uint32_t ip) const {
  return std::binary_search(vip_ips.begin(), vip_ips.end(), ip);
}

bool Snapshot::is_local_ip(uint32_t ip) const {
  return std::find(local_ips.begin(), local_ips.end(), ip) != local_ips.end();
}

const VipConf* Snapshot::find_vip6(const Ip6& ip, uint16_t port, uint8_t proto) const {
  if (vip_index6.empty()) return nullptr;
  const uint32_t mask = static_cast<uint32_t>(vip_index6.size() - 1);
  for (uint32_t i = vip_slot(fold6(ip), port, proto, mask);; i = (i + 1) & mask) {
    const int32_t v = vip_index6[i];
    if (v < 0) return nullptr;
    const VipConf& c = vips[static_cast<uint32_t>(v)];
    if (c.ip6 == ip && c.port == port && c.proto == proto) return &c;
  }
}

bool Snapshot::is_vip_ip6(const Ip6& ip) const {
  return std::binary_search(vip_ips6.begin(), vip_ips6.end(), ip);
}

bool Snapshot::is_local_ip6(const Ip6& ip) const {
  return std::find(local_ips6.begin(), local_ips6.end(), ip) != local_ips6.end();
}

std::unique_ptr<Snapshot> build_snapshot(const api::State& s, const SnapshotParams& p) {
  auto snap = std::make_unique<Snapshot>();
  snap->maglev_size = p.maglev_size;
  snap->sched_key = maglev_key(p.maglev_seed);
  std::vector<MaglevBackend> pool;
  snap->generation = s.generation;
  snap->timeouts = s.timeouts;
  build_interfaces(s, p, snap.get());
  for (const auto& v : s.vips) {
    VipConf vc;
    vc.id = v.id;
    vc.families = families_of(v);
    if (addr_v4(v.ip))
      vc.ip = net4(v.ip);
    else
      vc.ip6 = ip6_of(v.ip);
    vc.handler = client_handler(v.mode, vc.families);
    // nat46: a v4 vip's flows to v6 backends are in flows6_, NAT46's and (IPv4 in IPv6) its
    // DSR modes'; nat64 is full-NAT's only (DSR from a v6 vip to v4 backends is refused).
    snap->nat46 |= vc.families == Families::k46;
    snap->nat64 |= vc.families == Families::k64 && v.mode == api::Mode::kFullNat;
    vc.port = htons(v.port);
    vc.proto = static_cast<uint8_t>(v.proto);
    vc.mode = v.mode;
    vc.sched = v.sched;
    vc.syncookies = v.syncookies;
    vc.proxy_protocol = v.proxy_protocol;
    vc.eligible_first = static_cast<uint32_t>(snap->eligible.size());
    const size_t first_backend = snap->backends.size();
    for (const auto& b : v.backends) {
      BackendConf bc{b.id, 0, htons(b.port), b.weight, b.drained, b.down};
      if (addr_v4(b.ip))
        bc.ip = net4(b.ip);
      else
        bc.ip6 = ip6_of(b.ip);
      if (b.weight > 0 && !b.drained && !b.down)
        snap->eligible.push_back(static_cast<uint32_t>(snap->backends.size()));
      snap->backends.push_back(bc);
    }
    vc.eligible_count = static_cast<uint32_t>(snap->eligible.size()) - vc.eligible_first;
    if (vc.eligible_count == 0 && v.on_all_down == api::OnAllDown::kOpen) {
      // Fail open: health checks say every backend is down, the operator said to try them
      // anyway (a checker that fails is likelier than a whole pool that does).
      for (size_t i = first_backend; i < snap->backends.size(); ++i)
        if (snap->backends[i].weight > 0 && !snap->backends[i].drained)
          snap->eligible.push_back(static_cast<uint32_t>(i));
      vc.eligible_count = static_cast<uint32_t>(snap->eligible.size()) - vc.eligible_first;
      vc.failing_open = vc.eligible_count > 0;
    }
    vc.pool_sig = pool_signature(*snap, vc.eligible_first, vc.eligible_count);
    if ((v.sched == api::Sched::kMaglev || v.sched == api::Sched::kSourceHash) &&
        vc.eligible_count > 0) {
      pool.clear();
      for (uint32_t i = 0; i < vc.eligible_count; ++i) {
        const BackendConf& b = snap->eligible_backend(vc, i);
        pool.push_back({b.ip ? b.ip : fold6(b.ip6), b.port, b.weight});
      }
      vc.table_first = static_cast<uint32_t>(snap->maglev.size());
      snap->maglev.resize(snap->maglev.size() + p.maglev_size);
      maglev_build(pool, snap->sched_key, p.maglev_size, snap->maglev.data() + vc.table_first);
      // Counted here, once per build, so that the stats can say who owns how much.
      snap->table_shares.resize(snap->backends.size());
      for (size_t i = first_backend; i < snap->backends.size(); ++i) snap->table_shares[i].size = p.maglev_size;
      for (uint32_t j = 0; j < p.maglev_size; ++j)
        ++snap->table_shares[snap->eligible[vc.eligible_first + snap->maglev[vc.table_first + j]]].entries;
    }
    snap->vips.push_back(vc);
    if (addr_v4(v.ip))
      snap->vip_ips.push_back(vc.ip);
    else
      snap->vip_ips6.push_back(vc.ip6);
  }
  snap->table_shares.resize(snap->backends.size());
  std::sort(snap->vip_ips.begin(), snap->vip_ips.end());
  snap->vip_ips.erase(std::unique(snap->vip_ips.begin(), snap->vip_ips.end()), snap->vip_ips.end());
  std::sort(snap->vip_ips6.begin(), snap->vip_ips6.end());
  snap->vip_ips6.erase(std::unique(snap->vip_ips6.begin(), snap->vip_ips6.end()),
                       snap->vip_ips6.end());

  // One index per family, each sized for its own VIPs.
  size_t n6 = 0;
  for (const auto& v : s.vips) n6 += !addr_v4(v.ip);
  auto index = [&](std::vector<int32_t>* idx, size_t n, bool v6) {
    size_t size = 8;
    while (size < n * 2) size <<= 1;
    idx->assign(size, -1);
    const uint32_t mask = static_cast<uint32_t>(size - 1);
    for (size_t i = 0; i < snap->vips.size(); ++i) {
      const auto& v = snap->vips[i];
      if (addr_v4(s.vips[i].ip) == v6) continue;
      uint32_t slot = vip_slot(v6 ? fold6(v.ip6) : v.ip, v.port, v.proto, mask);
      while ((*idx)[slot] >= 0) slot = (slot + 1) & mask;
      (*idx)[slot] = static_cast<int32_t>(i);
    }
  };
  index(&snap->vip_index, s.vips.size() - n6, false);
  index(&snap->vip_index6, n6, true);

  for (const auto& ip : s.local_ips) {
    if (addr_v4(ip))
      snap->local_ips.push_back(net4(ip));
    else
      snap->local_ips6.push_back(ip6_of(ip));
  }
  std::vector<RouteConf> routes;
  std::vector<RouteConf6> routes6;
  for (const auto& r : s.routes) {
    if (!addr_v4(r.prefix)) {
      RouteConf6 rc;
      rc.len = r.prefix_len;
      rc.prefix = mask6(ip6_of(r.prefix), r.prefix_len);
      rc.iface = r.iface;
      rc.via = ip6_of(r.via);  // zero (unset): on-link
      routes6.push_back(rc);
      continue;
    }
    RouteConf rc;
    rc.len = r.prefix_len;
    rc.mask = r.prefix_len ? htonl(~0u << (32 - r.prefix_len)) : 0;
    rc.prefix = net4(r.prefix) & rc.mask;
    rc.iface = r.iface;
    rc.via = net4(r.via);  // the unset Addr gives 0: on-link
    routes.push_back(rc);
  }
  add_connected_routes(s, snap->first_iface, &routes, &routes6);
  snap->routes.build(std::move(routes), p.route_lpm);
  snap->routes6.build(std::move(routes6), p.route_lpm);
  for (const auto& n : s.neighbours) {
    if (!addr_v4(n.ip)) {
      NeighConf6 nc;
      nc.ip = ip6_of(n.ip);
      std::memcpy(nc.mac, n.mac, 6);
      nc.iface = n.iface;
      snap->neighbours6.push_back(nc);
      continue;
    }
    NeighConf nc;
    nc.ip = net4(n.ip);
    std::memcpy(nc.mac, n.mac, 6);
    nc.iface = n.iface;
    snap->neighbours.push_back(nc);
  }
  return snap;
}

}  // namespace rondo::dp

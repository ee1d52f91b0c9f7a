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

bool Snapshot::route(uint32_t dst, uint16_t* port_id, uint32_t* nexthop) const {
  if (routes.empty()) {  // no routes configured: everything is on-link on port 0
    *port_id = 0;
    *nexthop = dst;
    return true;
  }
  // A tail call: the on-link case above stays free of the lookup's register saves.
  return routes.next_hop(dst, port_id, nexthop);
}

std::unique_ptr<Snapshot> build_snapshot(const api::State& s, const SnapshotParams& p) {
  auto snap = std::make_unique<Snapshot>();
  snap->maglev_size = p.maglev_size;
  snap->sched_key = maglev_key(p.maglev_seed);
  std::vector<MaglevBackend> pool;
  snap->generation = s.generation;
  snap->timeouts = s.timeouts;
  // IPv4 only here: a vip with an IPv6 address or backends is left out until the v6 side of
  // the snapshot is built (as are IPv6 local ips, routes and neighbours below).
  const auto all_v4 = [](const api::Vip& v) {
    return v.ip.is_v4() &&
           std::all_of(v.backends.begin(), v.backends.end(), [](const api::Backend& b) { return b.ip.is_v4(); });
  };
  for (const auto& v : s.vips) {
    if (!all_v4(v)) continue;
    VipConf vc;
    vc.id = v.id;
    vc.ip = htonl(v.ip.v4());
    vc.port = htons(v.port);
    vc.proto = static_cast<uint8_t>(v.proto);
    vc.mode = v.mode;
    vc.sched = v.sched;
    vc.syncookies = v.syncookies;
    vc.proxy_protocol = v.proxy_protocol;
    vc.eligible_first = static_cast<uint32_t>(snap->eligible.size());
    const size_t first_backend = snap->backends.size();
    for (const auto& b : v.backends) {
      BackendConf bc{b.id, htonl(b.ip.v4()), htons(b.port), b.weight, b.drained, b.down};
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
        pool.push_back({b.ip, b.port, b.weight});
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
    snap->vip_ips.push_back(vc.ip);
  }
  snap->table_shares.resize(snap->backends.size());
  std::sort(snap->vip_ips.begin(), snap->vip_ips.end());
  snap->vip_ips.erase(std::unique(snap->vip_ips.begin(), snap->vip_ips.end()), snap->vip_ips.end());

  size_t size = 8;
  while (size < snap->vips.size() * 2) size <<= 1;
  snap->vip_index.assign(size, -1);
  const uint32_t mask = static_cast<uint32_t>(size - 1);
  for (size_t i = 0; i < snap->vips.size(); ++i) {
    const auto& v = snap->vips[i];
    uint32_t slot = vip_slot(v.ip, v.port, v.proto, mask);
    while (snap->vip_index[slot] >= 0) slot = (slot + 1) & mask;
    snap->vip_index[slot] = static_cast<int32_t>(i);
  }

  for (const auto& ip : s.local_ips)
    if (ip.is_v4()) snap->local_ips.push_back(htonl(ip.v4()));
  std::vector<RouteConf> routes;
  for (const auto& r : s.routes) {
    if (!r.prefix.is_v4()) continue;
    RouteConf rc;
    rc.len = r.prefix_len;
    rc.mask = r.prefix_len ? htonl(~0u << (32 - r.prefix_len)) : 0;
    rc.prefix = htonl(r.prefix.v4()) & rc.mask;
    rc.port_id = r.port_id;
    rc.via = htonl(r.via.v4());  // 0 when unset
    routes.push_back(rc);
  }
  snap->routes.build(std::move(routes), p.route_lpm);
  for (const auto& n : s.neighbours) {
    if (!n.ip.is_v4()) continue;
    NeighConf nc;
    nc.ip = htonl(n.ip.v4());
    std::memcpy(nc.mac, n.mac, 6);
    nc.port_id = n.port_id;
    snap->neighbours.push_back(nc);
  }
  return snap;
}

}  // namespace rondo::dp

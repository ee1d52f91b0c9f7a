#include "dataplane/neigh/service.h"

#include <rte_errno.h>
#include <rte_lcore.h>

namespace rondo::dp {

NeighService::NeighService(const std::string& name, uint32_t n_workers, rte_mempool* pool,
                           rte_rcu_qsbr* qsbr, const NeighManagerParams& params)
    : mgr_(params), pool_(pool), slot_(qsbr), slot6_(qsbr) {
  // esize 0: a ring of pointers (mbufs); else of esize-byte elements.
  auto make = [&](const std::string& n, unsigned size, unsigned esize = 0) -> rte_ring* {
    const int socket = static_cast<int>(rte_socket_id());
    const unsigned flags = RING_F_SP_ENQ | RING_F_SC_DEQ;
    rte_ring* r = esize ? rte_ring_create_elem(n.c_str(), esize, size, socket, flags)
                        : rte_ring_create(n.c_str(), size, socket, flags);
    if (!r && error_.empty()) error_ = "cannot create ring " + n + ": " + rte_strerror(rte_errno);
    return r;
  };
  for (uint32_t w = 0; w < n_workers; ++w) {
    arp_.push_back(make(name + "_arp_" + std::to_string(w), kArpRingSize));
    ask_.push_back(make(name + "_ask_" + std::to_string(w), kAskRingSize, sizeof(NeighAsk)));
  }
  tx_ = make(name + "_arp_tx", kTxRingSize);
  // Workers start with an empty map rather than none.
  slot_.publish(mgr_.next_hops_if_changed());
  slot6_.publish(mgr_.next_hops6_if_changed());
}

NeighService::~NeighService() {
  auto drain = [](rte_ring* r) {
    if (!r) return;
    void* m;
    while (rte_ring_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    rte_ring_free(r);
  };
  for (rte_ring* r : arp_) drain(r);
  for (rte_ring* r : ask_) rte_ring_free(r);  // NeighAsks, not mbufs
  drain(tx_);
}

bool NeighService::ok(std::string* err) const {
  if (error_.empty()) return true;
  *err = error_;
  return false;
}

void NeighService::hand_to_worker(rte_mbuf* m, uint16_t port) {
  m->port = port;  // the port to send it out of
  if (rte_ring_sp_enqueue(tx_, m) != 0) {
    mgr_.handover_failed();
    rte_pktmbuf_free(m);
  }
}

void NeighService::announce(const Snapshot* s, uint16_t port) {
  if (!s) return;
  // Each interface of the port is a link of its own (a VLAN): the announcements go out on
  // every one, tagged as it is, for the addresses answered there (VIPs, local ips, its own).
  // One bond failover sends them all at once: kAnnounceTotalMax in all, whatever the number
  // of interfaces, so that it cannot drain the mbuf pool or the tx ring.
  size_t total = 0;
  auto room = [&](size_t& n) {
    if (n < kAnnounceMax && total < kAnnounceTotalMax) {
      ++n;
      ++total;
      return true;
    }
    ++announce_cut_;
    return false;
  };
  for (uint16_t id = 0; id < s->ifaces.size(); ++id) {
    const IfaceConf& ifc = s->ifaces[id];
    if (!ifc.in_use || ifc.port != port) continue;
    size_t n = 0;
    for (const auto* ips : {&s->vip_ips, &s->local_ips, &ifc.addrs})
      for (uint32_t ip : *ips)
        // Sender and target both ours: a gratuitous request, which every host and switch
        // on the segment takes in (RFC 5227 section 3: "ARP Announcement").
        if (room(n)) mgr_.requests().push_back(ArpRequest{id, ip, ip});
    // IPv6: an unsolicited advertisement per address (RFC 4861 7.2.6), with the override
    // flag so that neighbours' caches take the new port's MAC at once.
    n = 0;
    for (const auto* ips : {&s->vip_ips6, &s->local_ips6, &ifc.addrs6})
      for (const Ip6& ip : *ips)
        if (room(n)) mgr_.adverts().push_back(NsRequest{id, ip});
  }
}

void NeighService::poll(const Snapshot* s, uint64_t now) {
  // The first snapshot seen is taken in whatever its epoch (0 when nobody published it:
  // tests); then every new one.
  if (s && (s->epoch != applied_epoch_ || !applied_any_)) {
    applied_any_ = true;
    mgr_.on_snapshot(*s, now);
    mgr_.on_conf6(ndp_conf(*s), now);
    applied_epoch_ = s->epoch;
  }
  rte_mbuf* pkts[kBurst];
  for (rte_ring* r : arp_) {
    const unsigned n = rte_ring_sc_dequeue_burst(r, reinterpret_cast<void**>(pkts), kBurst, nullptr);
    for (unsigned i = 0; i < n; ++i) {
      rte_mbuf* m = pkts[i];
      const uint32_t len = rte_pktmbuf_data_len(m);
      const auto v = mgr_.handle_frame(s, rte_pktmbuf_mtod(m, uint8_t*), len,
                                       len + rte_pktmbuf_tailroom(m), m->port, now);
      if (v.kind == NeighManager::Verdict::Kind::kReply) {
        if (v.len) m->data_len = m->pkt_len = v.len;  // within the tailroom (cap above)
        hand_to_worker(m, v.port);
      } else
        rte_pktmbuf_free(m);
    }
  }
  NeighAsk asks[kBurst];
  for (rte_ring* r : ask_) {
    const unsigned n = rte_ring_sc_dequeue_burst_elem(r, asks, sizeof(NeighAsk), kBurst, nullptr);
    for (unsigned i = 0; i < n; ++i) {
      if (asks[i].family == 6)
        mgr_.want6(asks[i].ip6, asks[i].iface, now);
      else
        mgr_.want(s, asks[i].ip, asks[i].iface, now);
    }
  }
  mgr_.tick(s, now);
  // What the manager built, each in an mbuf of its own, out of its interface's port. A
  // request whose interface left the configuration builds nothing (length 0).
  auto send = [&](uint16_t iface, uint32_t room, auto build) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool_);
    if (!m) return false;  // asked again within a second; an announcement is best effort
    auto* data = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(room)));
    const uint32_t len = data ? build(data) : 0;
    if (len == 0) {
      rte_pktmbuf_free(m);
      return true;
    }
    m->data_len = static_cast<uint16_t>(len);
    m->pkt_len = len;
    hand_to_worker(m, mgr_.port_of(iface));
    return true;
  };
  for (const ArpRequest& req : mgr_.requests())
    if (!send(req.iface, NeighManager::kArpFrameMax, [&](uint8_t* d) { return mgr_.build_request(req, d); }))
      break;
  mgr_.requests().clear();
  for (const NsRequest& req : mgr_.ns_requests())
    if (!send(req.iface, NeighManager::kNdpFrameMax, [&](uint8_t* d) { return mgr_.build_ns(req, d); }))
      break;
  mgr_.ns_requests().clear();
  for (const NsRequest& a : mgr_.adverts())
    if (!send(a.iface, NeighManager::kNdpFrameMax,
              [&](uint8_t* d) { return mgr_.build_unsolicited_na(a, d); }))
      break;
  mgr_.adverts().clear();
  if (auto map = mgr_.next_hops_if_changed()) slot_.publish(std::move(map));
  if (auto map = mgr_.next_hops6_if_changed()) slot6_.publish(std::move(map));
}

}  // namespace rondo::dp

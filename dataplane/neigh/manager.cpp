#include "dataplane/neigh/manager.h"

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_ether.h>

#include <cstring>

#include "dataplane/pkt/parse.h"

namespace rondo::dp {
namespace {

constexpr uint32_t kRequestsMax = 64;      // ARP requests per turn at most
constexpr uint64_t kRefreshS = 60;         // re-request a configured next hop after this long
constexpr uint64_t kIncompleteS = 3;       // an unanswered request may be evicted after this
constexpr uint32_t kArpFrameLen = 60;      // minimum Ethernet frame, zero padded

// A sender that cannot be a host's (group or zero MAC), or that claims a MAC other than
// the one it sends from, is neither learned nor answered.
bool arp_sender_ok(const uint8_t* f, const Parsed& p) {
  const auto* arp = reinterpret_cast<const rte_arp_hdr*>(f + p.l3_off);
  const uint8_t* sha = arp->arp_data.arp_sha.addr_bytes;
  static constexpr uint8_t kZero[6] = {};
  return !(sha[0] & 1) && std::memcmp(sha, kZero, 6) != 0 && std::memcmp(sha, f + 6, 6) == 0;
}

}  // namespace

NeighManager::NeighManager(const NeighManagerParams& p)
    : params_(p),
      key_(derive_hash_key(p.hash_key, HashUse::kNeighbours)),
      table_(p.capacity, kIncompleteS * p.hz, 2 * kRefreshS * p.hz, key_),
      replies_(p.reply_rate, p.reply_burst, p.hz) {
  requests_.reserve(kRequestsMax);
  counters_.neigh_capacity = table_.capacity();
}

NeighManager::Verdict NeighManager::drop(DropReason r) {
  counters_.drop(r);
  return Verdict{Verdict::Kind::kDrop, r, 0};
}

void NeighManager::on_snapshot(const Snapshot& s, uint64_t now) {
  std::vector<std::pair<uint32_t, Neigh>> statics;
  for (const auto& n : s.neighbours) {
    Neigh e;
    std::memcpy(e.mac, n.mac, 6);
    e.port_id = n.port_id;
    statics.emplace_back(n.ip, e);
  }
  table_.set_static(statics);
  resolve_configured(s, now);
}

void NeighManager::request(const Snapshot& s, uint32_t ip, uint16_t port, uint64_t now) {
  if (s.local_ips.empty() || requests_.size() >= kRequestsMax) return;
  if (table_.want_request(ip, port, now, params_.hz))
    requests_.push_back(ArpRequest{port, ip, s.local_ips.front()});
}

// What forwarding needs and nothing else: the routes' gateways and the backends' next hops.
void NeighManager::resolve_configured(const Snapshot& s, uint64_t now) {
  auto maybe = [&](uint32_t nh, uint16_t port) {
    const Neigh* n = table_.find(nh);
    const bool stale = n && n->state == Neigh::State::kReachable &&
                       now - n->updated > kRefreshS * params_.hz;
    if (!(n && n->has_mac() && !stale)) request(s, nh, port, now);
  };
  for (const auto& r : s.routes)
    if (r.via) maybe(r.via, r.port_id);
  for (const auto& b : s.backends) {
    uint16_t port;
    uint32_t nh;
    if (s.route(b.ip, &port, &nh)) maybe(nh, port);
  }
}

void NeighManager::want(const Snapshot* s, uint32_t ip, uint16_t port, uint64_t now) {
  if (!s || ip == 0) return;
  // Only an address a route puts on that port's link: rondo never ARPs for an address it
  // would not forward to, whatever a worker asks.
  uint16_t rport;
  uint32_t nh;
  if (!s->route(ip, &rport, &nh) || nh != ip || rport != port) return;
  const Neigh* n = table_.find(ip);
  if (n && n->has_mac()) return;  // resolved meanwhile: the worker sees it once published
  request(*s, ip, port, now);
}

void NeighManager::tick(const Snapshot* s, uint64_t now) {
  if (s && now >= next_resolve_) {
    next_resolve_ = now + params_.hz;
    resolve_configured(*s, now);
  }
  counters_.neigh_entries = table_.size();
  counters_.neigh_evictions = table_.evictions();
}

NeighManager::Verdict NeighManager::handle_arp(const Snapshot* s, uint8_t* f, uint32_t len,
                                               uint16_t in_port, uint64_t now) {
  ++counters_.steered_in;
  Parsed p;
  DropReason why;
  // Parsed again here: the manager trusts no frame, whoever handed it over.
  if (!parse_frame(f, len, &p, &why)) return drop(why);
  if (p.kind != PktKind::kArp) return drop(DropReason::kMalformedArp);
  if (!s) return drop(DropReason::kNoState);
  if (in_port >= params_.port_macs.size()) return drop(DropReason::kNoRoute);
  if (!arp_sender_ok(f, p)) return drop(DropReason::kArpBadSender);
  auto* arp = reinterpret_cast<rte_arp_hdr*>(f + p.l3_off);
  const uint32_t sip = arp->arp_data.arp_sip;
  const uint32_t tip = arp->arp_data.arp_tip;
  if (!s->is_vip_ip(tip) && !s->is_local_ip(tip)) return drop(DropReason::kArpNotForUs);
  // Only entries rondo asked for are filled, and an unsolicited frame never changes a
  // known MAC (neigh.h); a request for our address answered here creates nothing.
  if (sip) table_.learn(sip, arp->arp_data.arp_sha.addr_bytes, in_port, now);
  if (arp->arp_opcode != RTE_BE16(RTE_ARP_OP_REQUEST)) {
    ++counters_.consumed;
    return Verdict{Verdict::Kind::kConsumed, DropReason::kCount, 0};
  }
  if (!replies_.take(now)) return drop(DropReason::kRateLimited);

  const auto& mine = params_.port_macs[in_port];
  const uint8_t* smac = arp->arp_data.arp_sha.addr_bytes;
  auto* eth = reinterpret_cast<rte_ether_hdr*>(f);
  std::memcpy(eth->dst_addr.addr_bytes, eth->src_addr.addr_bytes, 6);
  std::memcpy(eth->src_addr.addr_bytes, mine.data(), 6);
  arp->arp_opcode = RTE_BE16(RTE_ARP_OP_REPLY);
  std::memcpy(arp->arp_data.arp_tha.addr_bytes, smac, 6);  // before sha is overwritten
  std::memcpy(arp->arp_data.arp_sha.addr_bytes, mine.data(), 6);
  arp->arp_data.arp_tip = sip;
  arp->arp_data.arp_sip = tip;
  ++counters_.arp_replies;
  ++counters_.steered_out;
  return Verdict{Verdict::Kind::kReply, DropReason::kCount, in_port};
}

uint32_t NeighManager::build_request(const ArpRequest& r, uint8_t* buf) {
  std::memset(buf, 0, kArpFrameLen);
  auto* eth = reinterpret_cast<rte_ether_hdr*>(buf);
  const auto& mine = params_.port_macs.at(r.port_id);
  std::memset(eth->dst_addr.addr_bytes, 0xff, 6);
  std::memcpy(eth->src_addr.addr_bytes, mine.data(), 6);
  eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_ARP);
  auto* arp = reinterpret_cast<rte_arp_hdr*>(eth + 1);
  arp->arp_hardware = RTE_BE16(RTE_ARP_HRD_ETHER);
  arp->arp_protocol = RTE_BE16(RTE_ETHER_TYPE_IPV4);
  arp->arp_hlen = RTE_ETHER_ADDR_LEN;
  arp->arp_plen = 4;
  arp->arp_opcode = RTE_BE16(RTE_ARP_OP_REQUEST);
  std::memcpy(arp->arp_data.arp_sha.addr_bytes, mine.data(), 6);
  arp->arp_data.arp_sip = r.sender_ip;
  arp->arp_data.arp_tip = r.target_ip;
  ++counters_.originated;
  ++counters_.arp_requests;
  ++counters_.steered_out;
  return kArpFrameLen;
}

void NeighManager::handover_failed() {
  --counters_.steered_out;
  counters_.drop(DropReason::kArpQueueFull);
}

std::unique_ptr<NextHopMap> NeighManager::next_hops_if_changed() {
  if (published_once_ && table_.version() == published_) return nullptr;
  published_once_ = true;
  published_ = table_.version();
  return std::make_unique<NextHopMap>(table_, key_);
}

}  // namespace rondo::dp

// rte_ip_frag_table_del_expired_entries and rte_ipv4_fragment_copy_nonseg_packet are
// experimental in DPDK 22.11.
#define ALLOW_EXPERIMENTAL_API 1

#include "dataplane/frag/reassembly.h"

#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_random.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>

namespace rondo::dp {
namespace {

constexpr uint32_t kEth = sizeof(rte_ether_hdr);
constexpr uint32_t kIp6 = sizeof(rte_ipv6_hdr);
constexpr uint32_t kFragHdr = sizeof(rte_ipv6_fragment_ext);
static_assert(RTE_MBUF_DEFAULT_BUF_SIZE != Reassembly::kBufLen,
              "reassembled() tells reassembly buffers from the packet pool's by their size");
// Buckets of 4 entries (rte_ip_frag looks a key up in two buckets): half full when
// max_datagrams are in progress, so a new datagram rarely finds both of its buckets full.
constexpr uint32_t kBucketEntries = 4;

// The Ethernet header's length: 18 with one 802.1Q tag (the parser lets no other through,
// and tags are always in the bytes: docs/architecture.md, "Interfaces"), else 14. A tagged
// fragment's datagram keeps its first fragment's tag, and so does every fragment it is cut
// into again: it leaves on the interface the pipeline's output wrote there.
uint32_t l2_len(const uint8_t* frame) { return frame[12] == 0x81 && frame[13] == 0x00 ? kEth + 4 : kEth; }
// Whether the frame (its Ethernet header l2 bytes) carries IPv6.
bool is_v6(const uint8_t* frame, uint32_t l2) { return frame[l2 - 2] == 0x86 && frame[l2 - 1] == 0xdd; }
// The VLAN id of a frame whose Ethernet header is l2 bytes: 0 when untagged, as for a
// priority tag (VID 0 is the untagged interface's: docs/architecture.md, "Interfaces").
uint16_t vid_of(const uint8_t* frame, uint32_t l2) {
  return l2 == kEth ? 0 : static_cast<uint16_t>((frame[14] << 8 | frame[15]) & 0x0fff);
}

// Whether every fragment of the reassembled datagram d came in on the interface of its head
// (the offset-0 fragment, whose Ethernet header the datagram keeps and by which it is
// classified again): the same port and VLAN id. rte_ip_frag keys a datagram by addresses and
// identification alone, so fragments from two VLANs with the same key would make one. Each
// later segment still holds its own Ethernet header in front of its data: rte_ip_frag only
// moved its start past l2_len + l3_len (the values add() set).
bool one_interface(const rte_mbuf* d) {
  const uint16_t vid = vid_of(rte_pktmbuf_mtod(d, const uint8_t*), d->l2_len);
  for (const rte_mbuf* s = d->next; s; s = s->next) {
    const uint8_t* frame = rte_pktmbuf_mtod(s, const uint8_t*) - s->l2_len - s->l3_len;
    if (s->port != d->port || vid_of(frame, s->l2_len) != vid) return false;
  }
  return true;
}

}  // namespace

Reassembly::Reassembly(const ReassemblyParams& p, LcoreCounters* counters)
    : seen_(new Seen[kSeen]()), seen_key_{rte_rand(), rte_rand()}, c_(counters) {
  static std::atomic<uint32_t> made{0};
  const uint32_t n = made.fetch_add(1, std::memory_order_relaxed);
  const std::string name = "rondo_frag" + std::to_string(n);
  const uint32_t buckets = rte_align32pow2(std::max<uint32_t>(p.max_datagrams * 2 / kBucketEntries, 1));
  // max_cycles: rte_ip_frag compares it with the `now` values we pass (TSC ticks).
  ttl_ = p.hz / 1000 * p.timeout_ms;
  tbl_ = rte_ip_frag_table_create(buckets, kBucketEntries, p.max_datagrams, ttl_, p.socket);
  pool_ = rte_pktmbuf_pool_create(name.c_str(), p.buffers, 0, 0,
                                  kBufLen, p.socket);
  if (!ok())
    RTE_LOG(ERR, USER1, "reassembly: cannot make the table (%u datagrams) or %u buffers: %s\n",
            p.max_datagrams, p.buffers, rte_strerror(rte_errno));
}

Reassembly::~Reassembly() {
  if (tbl_) {
    // rte_ip_frag_table_destroy frees the fragments still held.
    rte_ip_frag_table_destroy(tbl_);
  }
  rte_ip_frag_free_death_row(&dr_, 0);
  if (pool_) rte_mempool_free(pool_);
}

uint32_t Reassembly::buffers_in_use() const {
  return pool_ ? rte_mempool_in_use_count(pool_) : 0;
}

bool Reassembly::on_death_row(uint32_t before, const rte_mbuf* m, uint64_t* others) const {
  bool refused = false;
  for (uint32_t i = before; i < dr_.cnt; ++i) refused |= dr_.row[i] == m;
  *others = dr_.cnt - before - (refused ? 1 : 0);
  return refused;
}

bool Reassembly::duplicate(const uint8_t* ip, bool v6, uint64_t now) {
  // What tells one fragment from another: addresses, protocol (IPv4) or next header (IPv6),
  // identification, offset and M, and the length.
  uint8_t k[16 + 16 + 1 + 4 + 2 + 2];
  size_t n;
  if (v6) {
    std::memcpy(k, ip + 8, 32);             // source, destination
    k[32] = ip[kIp6];                       // the fragment header's next header
    std::memcpy(k + 33, ip + kIp6 + 4, 4);  // identification
    std::memcpy(k + 37, ip + kIp6 + 2, 2);  // offset, M
    std::memcpy(k + 39, ip + 4, 2);         // payload length
    n = 41;
  } else {
    std::memcpy(k, ip + 12, 8);             // source, destination
    k[8] = ip[9];
    std::memcpy(k + 9, ip + 4, 4);          // identification, flags and offset
    std::memcpy(k + 13, ip + 2, 2);         // total length
    n = 15;
  }
  const uint64_t sig = siphash<1, 3>(seen_key_, k, n) | 1;  // never the empty slot's 0
  Seen& s = seen_[sig % kSeen];
  if (s.sig == sig && now - s.at <= ttl_) return true;
  s.sig = sig;
  s.at = now;
  return false;
}

rte_mbuf* Reassembly::add(rte_mbuf* m, uint64_t now, DropReason* why, DropSampler* drops) {
  auto refuse = [&](DropReason r, const rte_mbuf* x) {
    *why = r;
    if (drops)
      drops->offer(r, rte_pktmbuf_mtod(x, const uint8_t*), rte_pktmbuf_data_len(x), x->port, now);
  };
  *why = DropReason::kCount;
  if (!ok()) {
    refuse(DropReason::kNoMbuf, m);
    rte_pktmbuf_free(m);
    return nullptr;
  }
  uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
  const uint32_t l2 = l2_len(f);
  const bool v6 = is_v6(f, l2);
  uint8_t* ip = f + l2;
  // Ethernet padding after a short fragment would be chained into the datagram: cut the
  // frame to its IP length first (the parser checked that the frame holds it).
  const uint32_t ip_len = v6 ? kIp6 + (uint32_t{ip[4]} << 8 | ip[5]) : (uint32_t{ip[2]} << 8 | ip[3]);
  if (rte_pktmbuf_data_len(m) > l2 + ip_len) rte_pktmbuf_trim(m, rte_pktmbuf_data_len(m) - l2 - ip_len);
  if (duplicate(ip, v6, now)) {
    refuse(DropReason::kFragDuplicate, m);
    rte_pktmbuf_free(m);
    return nullptr;
  }
  m->l2_len = l2;
  const uint32_t before = dr_.cnt;
  rte_mbuf* d;
  if (v6) {
    m->l3_len = kIp6 + kFragHdr;
    d = rte_ipv6_frag_reassemble_packet(tbl_, &dr_, m, now, reinterpret_cast<rte_ipv6_hdr*>(ip),
                                        reinterpret_cast<rte_ipv6_fragment_ext*>(ip + kIp6));
  } else {
    m->l3_len = (ip[0] & 0x0f) * 4u;
    d = rte_ipv4_frag_reassemble_packet(tbl_, &dr_, m, now, reinterpret_cast<rte_ipv4_hdr*>(ip));
  }
  uint64_t others;
  const bool refused = on_death_row(before, m, &others);
  if (refused) {
    // Alone on the row: no entry could be had for a new datagram (table full). With others:
    // the datagram broke (overlap, a ninth fragment) and went with it.
    if (others == 0) {
      refuse(DropReason::kFragTableFull, m);
    } else {
      refuse(DropReason::kFragInvalid, m);
      c_->frag_discarded += others;
    }
  }
  // Freed at once: a call may put up to 2 * (kMaxFragments + 1) mbufs on the row (a stale
  // datagram reclaimed and a broken one), and rte_ip_frag does not check the row's room.
  rte_ip_frag_free_death_row(&dr_, 0);
  if (refused) return nullptr;
  // Otherwise what went to the row was a stale datagram whose entry was taken over.
  c_->frag_timeouts += others;
  if (d && !one_interface(d)) {
    // Fragments of two interfaces: the datagram is broken, as by an overlap (m refused, the
    // others discarded; each fragment is one segment: the worker takes no chained mbuf).
    refuse(DropReason::kFragInvalid, d);
    c_->frag_discarded += d->nb_segs - 1u;
    rte_pktmbuf_free(d);
    return nullptr;
  }
  ++c_->frag_received;  // taken in (a refused one is its drop reason only)
  if (!d) return nullptr;  // held

  ++c_->frag_reassembled;
  // One contiguous frame for the pipeline: the chain copied into a reassembly buffer.
  const uint32_t len = rte_pktmbuf_pkt_len(d);
  rte_mbuf* out = len <= kMaxFrame ? rte_pktmbuf_alloc(pool_) : nullptr;
  if (!out) {
    *why = len <= kMaxFrame ? DropReason::kNoMbuf : DropReason::kFragTooBig;
    rte_pktmbuf_free(d);
    return nullptr;
  }
  uint8_t* dst = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(out, static_cast<uint16_t>(len)));
  for (const rte_mbuf* s = d; s; s = s->next) {
    std::memcpy(dst, rte_pktmbuf_mtod(s, const uint8_t*), s->data_len);
    dst += s->data_len;
  }
  out->port = d->port;
  // The datagram's Ethernet header is its head's (the offset-0 fragment), which need not be
  // m: a priority-tagged fragment (18 bytes) and untagged ones (14) are of one interface.
  const uint32_t head_l2 = d->l2_len;
  rte_pktmbuf_free(d);
  if (!v6) {
    // rte_ip_frag set the total length and cleared MF and the offset (and the checksum to 0);
    // the checksum is ours.
    auto* h = rte_pktmbuf_mtod_offset(out, rte_ipv4_hdr*, head_l2);
    h->hdr_checksum = 0;
    h->hdr_checksum = rte_ipv4_cksum(h);
  }
  return out;
}

void Reassembly::expire(uint64_t now) {
  if (!tbl_) return;
  const uint32_t before = dr_.cnt;
  rte_ip_frag_table_del_expired_entries(tbl_, &dr_, now);
  c_->frag_timeouts += dr_.cnt - before;
  rte_ip_frag_free_death_row(&dr_, 0);
}

uint32_t Reassembly::fragment(rte_mbuf* m, uint32_t mtu, rte_mempool* pool, rte_mbuf** out,
                              uint32_t room) {
  uint8_t eth[kEth + 4];
  const uint32_t l2 = l2_len(rte_pktmbuf_mtod(m, const uint8_t*));
  std::memcpy(eth, rte_pktmbuf_mtod(m, const uint8_t*), l2);
  const bool v6 = is_v6(eth, l2);
  rte_pktmbuf_adj(m, static_cast<uint16_t>(l2));
  int32_t n;
  if (v6) {
    n = rte_ipv6_fragment_packet(m, out, static_cast<uint16_t>(room), static_cast<uint16_t>(mtu),
                                 pool, pool);
  } else {
    // rte_ip_frag refuses DF; a datagram that came in fragments had no use for it (the
    // first fragment's flags are what reassembly kept).
    auto* h = rte_pktmbuf_mtod(m, rte_ipv4_hdr*);
    h->fragment_offset &= rte_cpu_to_be_16(static_cast<uint16_t>(~RTE_IPV4_HDR_DF_FLAG));
    n = rte_ipv4_fragment_copy_nonseg_packet(m, out, static_cast<uint16_t>(room),
                                             static_cast<uint16_t>(mtu), pool);
  }
  rte_pktmbuf_prepend(m, static_cast<uint16_t>(l2));  // as it was (the caller frees it)
  if (n <= 0) return 0;
  const uint32_t id = v6 ? rte_cpu_to_be_32(++v6_id_) : 0;
  for (int32_t i = 0; i < n; ++i) {
    rte_mbuf* o = out[i];
    // IPv6: a header mbuf and an indirect one on the datagram's data; made one segment
    // (every TX path takes those) with the data copied after the header.
    if (o->nb_segs > 1 && rte_pktmbuf_linearize(o) != 0) {
      for (int32_t j = 0; j < n; ++j) rte_pktmbuf_free(out[j]);
      return 0;
    }
    uint8_t* ip = rte_pktmbuf_mtod(o, uint8_t*);
    if (v6) {
      std::memcpy(ip + kIp6 + 4, &id, 4);  // every fragment of the datagram the same
    } else {
      auto* h = reinterpret_cast<rte_ipv4_hdr*>(ip);
      h->hdr_checksum = 0;
      h->hdr_checksum = rte_ipv4_cksum(h);
    }
    std::memcpy(rte_pktmbuf_prepend(o, static_cast<uint16_t>(l2)), eth, l2);
    o->port = m->port;
  }
  return static_cast<uint32_t>(n);
}

}  // namespace rondo::dp

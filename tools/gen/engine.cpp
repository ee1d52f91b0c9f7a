#include "tools/gen/engine.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_prefetch.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace rondo::gen {
namespace {

constexpr uint32_t kRxBurst = 64;
constexpr uint32_t kRxBurstsPerPoll = 4;
constexpr uint32_t kMaxBurst = 64;
constexpr uint32_t kTxCapacity = 4096;
constexpr uint32_t kTxHighWater = 256;  // no new traffic while this much waits for the ring
constexpr uint32_t kTimeoutScan = 32;   // slots checked for SYN timeouts per loop
constexpr uint32_t kDataProbe = 64;     // slots passed over at most looking for an open one
constexpr double kResetAfterS = 0.25;   // flow packets in flight, nothing back for this long: lost
constexpr double kDrainMaxS = 2;
constexpr double kUnmeasuredWarmupS = 1;
constexpr uint64_t kStampMask = (1ull << (8 * kStampLen)) - 1;

constexpr const char* kCtrNames[] = {
    "tx_packets",       "tx_bytes",         "rx_packets",      "rx_bytes",
    "syn_tx",           "ack_tx",           "data_tx",         "fin_tx",
    "flood_tx",         "synack_tx",        "echo_tx",         "backend_syn_rx",
    "backend_data_rx",  "backend_ack_rx",   "backend_fin_rx",  "backend_flood_rx",
    "client_synack_rx", "client_echo_rx",   "client_stale_rx", "flood_synack_rx",
    "arp_rx",           "arp_tx",           "unknown_rx",      "handshakes",
    "syn_timeouts",     "conns_closed",     "tx_dropped",      "window_resets",
    "busy_cycles",      "idle_cycles",      "loops",           "blocked_loops",
    "backend_fin_tx",   "client_fin_rx",
};
static_assert(std::size(kCtrNames) == kCtrCount);

inline uint32_t load_be32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return rte_be_to_cpu_32(v);
}

// Age of a timestamp written by emit(): both are TSC values, compared modulo 2^48.
inline uint64_t stamp_age(const uint8_t* payload, uint64_t now) {
  uint64_t stamp = 0;
  std::memcpy(&stamp, payload, kStampLen);
  return (now - stamp) & kStampMask;
}

// xorshift64*: flood sources only need to look random to the middle box's hash.
inline uint64_t next_random(uint64_t* s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545f4914f6cdd1dull;
}

}  // namespace

const char* ctr_name(Ctr c) { return kCtrNames[static_cast<size_t>(c)]; }

void Engine::FloodWindow::advance(uint64_t now) {
  const uint64_t e = now / epoch_ticks;
  if (e <= epoch) return;
  if (e - epoch >= kEpochs) {  // a long pause: everything is stale
    out.fill(0);
    in_flight = 0;
    epoch = e;
    return;
  }
  while (epoch < e) {
    ++epoch;
    uint32_t& stale = out[(epoch - kExpire) & (kEpochs - 1)];
    in_flight -= stale;
    stale = 0;
  }
}

void Engine::Pacer::start(double rate, uint64_t now, uint64_t hz, uint32_t max_backlog) {
  ticks_per_pkt_ = rate > 0 ? static_cast<double>(hz) / rate : 0;
  start_ = now;
  sent_ = 0;
  max_backlog_ = max_backlog;
}

uint32_t Engine::Pacer::allowance(uint64_t now, uint32_t want) {
  if (ticks_per_pkt_ == 0) return want;
  const double due = static_cast<double>(now - start_) / ticks_per_pkt_;
  // A sender that fell behind does not get to burst the whole debt out at once.
  if (due - sent_ > max_backlog_) sent_ = due - max_backlog_;
  if (due <= sent_) return 0;
  return static_cast<uint32_t>(std::min<double>(want, due - sent_));
}

Engine::Engine(const Options& o, rte_mempool* pool, const Mac& own_mac, uint64_t hz)
    : opts_(o),
      pool_(pool),
      own_mac_(own_mac),
      peer_mac_(o.dst_mac),
      hz_(hz),
      open_flows_((o.mode == Mode::kTcp || o.mode == Mode::kMixed) && o.data_per_conn < 0),
      connections_((o.mode == Mode::kTcp || o.mode == Mode::kMixed) && o.data_per_conn >= 0),
      flows_(o),
      to_open_(o.flows),
      syn_timeout_ticks_(static_cast<uint64_t>(o.syn_timeout_ms * static_cast<double>(hz) / 1000)),
      rng_(o.seed * 0x9e3779b97f4a7c15ull + 1),
      tx_(kTxCapacity),
      tty_(isatty(STDERR_FILENO) != 0) {
  TemplateSpec s;
  s.src_mac = own_mac_;
  s.dst_mac = peer_mac_;
  s.dst_ip = o.vip_ip;
  s.dst_port = o.vip_port;
  s.proto = IPPROTO_TCP;
  s.tcp_flags = kTcpSyn;
  syn_ = make_template(s);
  s.ip_id = kFloodMark;
  flood_syn_ = make_template(s);

  s.proto = o.mode == Mode::kUdp ? IPPROTO_UDP : IPPROTO_TCP;
  s.tcp_flags = kTcpAck | kTcpPsh;
  s.ip_id = kStampMark;
  s.frame_len = static_cast<uint16_t>(o.size - RTE_ETHER_CRC_LEN);
  data_ = make_template(s);
  s.tcp_flags |= kTcpFin;
  data_fin_ = make_template(s);

  win_.size = o.window;
  win_.reset_ticks = static_cast<uint64_t>(kResetAfterS * static_cast<double>(hz));
  flood_.epoch_ticks = std::max<uint64_t>(1, hz / 1000);
  // Both classes share the rings on the way: together they stay within --window.
  if (o.mode == Mode::kMixed) {
    flood_.size = o.window / 2;
    win_.size = o.window - flood_.size;
  } else {
    flood_.size = o.window;
  }
  if (open_flows_ || connections_)
    for (uint32_t i = 0; i < flows_.n_slots(); ++i) to_open_.push(i);
}

Engine::~Engine() {
  if (tx_len_) rte_pktmbuf_free_bulk(tx_.data(), tx_len_);
  flush_free();
}

// ---- receive side: play the backend or the client for what the middle box sends ----

uint32_t Engine::receive() {
  rte_mbuf* pkts[kRxBurst];
  uint32_t total = 0;
  for (uint32_t b = 0; b < kRxBurstsPerPoll; ++b) {
    const uint16_t n = rte_eth_rx_burst(opts_.port, 0, pkts, kRxBurst);
    if (n == 0) break;
    const uint64_t now = rte_rdtsc();
    for (uint16_t i = 0; i < n; ++i) {
      if (i + 1 < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void*));
      handle(pkts[i], now);
    }
    total += n;
    if (n < kRxBurst) break;
  }
  return total;
}

bool Engine::ours(uint32_t ip) const {
  return opts_.client_net.contains(ip) || opts_.backend_net.contains(ip) ||
         opts_.flood_net.contains(ip) || (opts_.gateway_ip && ip == opts_.gateway_ip);
}

void Engine::handle(rte_mbuf* m, uint64_t now) {
  ++c_[Ctr::kRxPackets];
  c_[Ctr::kRxBytes] += rte_pktmbuf_pkt_len(m);
  Rx rx;
  const RxKind kind = parse(m, &rx);
  if (kind == RxKind::kArp) {
    ++c_[Ctr::kArpRx];
    uint32_t target = 0;
    if (arp_request_target(m, &target) && ours(target)) {
      arp_answer(m, own_mac_);
      ++c_[Ctr::kArpTx];
      queue_tx(m, Track::kNone);
    } else {
      free_later(m);
    }
    return;
  }
  if (kind != RxKind::kIpv4) {
    ++c_[Ctr::kUnknownRx];
    free_later(m);
    return;
  }
  // DSR with IPIP or GUE: the backend takes the inner packet (client -> VIP) out.
  const bool encapsulated = opts_.backend_net.contains(rx.dst) &&
                            (rx.proto == IPPROTO_IPIP || (rx.proto == IPPROTO_UDP && rx.l4 &&
                                                          rx.dport == opts_.gue_port));
  if (encapsulated && !decapsulate(m, &rx, opts_.gue_port)) {
    ++c_[Ctr::kUnknownRx];
    free_later(m);
    return;
  }
  if (rx.ip_id != kFloodMark) win_.back(now);  // flood packets: see on_backend, on_client
  if (!rx.l4) {
    ++c_[Ctr::kUnknownRx];
    free_later(m);
  } else if (opts_.backend_net.contains(rx.dst) || (rx.dst == opts_.vip_ip && rx.dport == opts_.vip_port)) {
    // Full-NAT: to a backend address. Reflected (io forwarding) or L2 DSR: still to the VIP.
    on_backend(m, rx, now);
  } else if (opts_.client_net.contains(rx.dst) || opts_.flood_net.contains(rx.dst)) {
    on_client(m, rx, now);
  } else {
    ++c_[Ctr::kUnknownRx];
    free_later(m);
  }
}

void Engine::respond(rte_mbuf* m, Rx& rx, uint64_t now) {
  if (opts_.dsr) {
    on_client(m, rx, now);  // the backend answers the client directly, off this link
  } else {
    queue_tx(m, rx.ip_id == kFloodMark ? Track::kNone : Track::kFlows);
  }
}

void Engine::on_backend(rte_mbuf* m, Rx& rx, uint64_t now) {
  const bool stamped = rx.ip_id == kStampMark && rx.payload_len >= kStampLen;
  if (rx.proto == IPPROTO_UDP) {
    if (!stamped) {
      ++c_[Ctr::kUnknownRx];
      free_later(m);
      return;
    }
    ++c_[Ctr::kBackendDataRx];
    hist_.one_way.add(stamp_age(rx.payload, now));
    if (!opts_.echo) {
      free_later(m);
      return;
    }
    udp_reply(&rx, own_mac_, peer_mac_);
    ++c_[Ctr::kEchoTx];
    respond(m, rx, now);
    return;
  }
  const uint8_t flags = rx.tcp_flags;
  const uint32_t seq = load_be32(rx.l4 + offsetof(rte_tcp_hdr, sent_seq));
  if ((flags & (kTcpSyn | kTcpAck | kTcpRst)) == kTcpSyn) {
    const bool flood = rx.ip_id == kFloodMark;
    const uint32_t tag = seq & (FloodWindow::kEpochs - 1);
    if (flood) flood_.back(tag);
    ++c_[flood ? Ctr::kBackendFloodRx : Ctr::kBackendSynRx];
    tcp_reply(m, &rx, own_mac_, peer_mac_, rte_cpu_to_be_32(seq ^ kBackendIsnXor),
              rte_cpu_to_be_32(seq + 1), kTcpSyn | kTcpAck, false);
    ++c_[Ctr::kSynAckTx];
    if (flood) flood_.sent(tag);  // its SYN-ACK is on the way back (or, DSR, delivered now)
    respond(m, rx, now);
    return;
  }
  if (stamped) {
    ++c_[Ctr::kBackendDataRx];
    hist_.one_way.add(stamp_age(rx.payload, now));
    if ((flags & (kTcpFin | kTcpRst)) == kTcpFin) {
      ++c_[Ctr::kBackendFinRx];
      close_backend_side(m, rx, now);
      return;
    }
    if (opts_.echo && !(flags & (kTcpFin | kTcpRst))) {
      const uint32_t ack = load_be32(rx.l4 + offsetof(rte_tcp_hdr, recv_ack));
      tcp_reply(m, &rx, own_mac_, peer_mac_, rte_cpu_to_be_32(ack),
                rte_cpu_to_be_32(seq + rx.payload_len), kTcpAck | kTcpPsh, true);
      ++c_[Ctr::kEchoTx];
      respond(m, rx, now);
      return;
    }
    free_later(m);
    return;
  }
  ++c_[flags & (kTcpFin | kTcpRst) ? Ctr::kBackendFinRx : Ctr::kBackendAckRx];
  if ((flags & (kTcpFin | kTcpRst)) == kTcpFin) {
    close_backend_side(m, rx, now);
    return;
  }
  free_later(m);
}

// A server closes its side when the client closes: FIN+ACK for the client's FIN, as a real
// backend does. Without it the middle box would hold every connection half-closed (alive,
// on the established timeout) and run out of local ports. The answer is outside the
// measured window: the client only counts it.
void Engine::close_backend_side(rte_mbuf* m, Rx& rx, uint64_t now) {
  const uint32_t seq = load_be32(rx.l4 + offsetof(rte_tcp_hdr, sent_seq));
  const uint32_t ack = load_be32(rx.l4 + offsetof(rte_tcp_hdr, recv_ack));
  tcp_reply(m, &rx, own_mac_, peer_mac_, rte_cpu_to_be_32(ack),
            rte_cpu_to_be_32(seq + rx.payload_len + 1), kTcpFin | kTcpAck, false);
  ++c_[Ctr::kBackendFinTx];
  if (opts_.dsr) on_client(m, rx, now);
  else queue_tx(m, Track::kNone);
}

void Engine::on_client(rte_mbuf* m, Rx& rx, uint64_t now) {
  if (rx.ip_id == kFloodMark || opts_.flood_net.contains(rx.dst)) {
    if (rx.proto == IPPROTO_TCP)
      flood_.back((load_be32(rx.l4 + offsetof(rte_tcp_hdr, recv_ack)) - 1) & (FloodWindow::kEpochs - 1));
    ++c_[Ctr::kFloodSynAckRx];  // spoofed sources never answer
    free_later(m);
    return;
  }
  if (rx.ip_id == kStampMark && rx.payload_len >= kStampLen) {
    ++c_[Ctr::kClientEchoRx];
    hist_.rtt.add(stamp_age(rx.payload, now));
    free_later(m);
    return;
  }
  if (rx.proto == IPPROTO_TCP && (rx.tcp_flags & (kTcpFin | kTcpSyn)) == kTcpFin) {
    ++c_[Ctr::kClientFinRx];
    free_later(m);
    return;
  }
  if (rx.proto != IPPROTO_TCP || (rx.tcp_flags & (kTcpSyn | kTcpAck)) != (kTcpSyn | kTcpAck)) {
    ++c_[Ctr::kClientStaleRx];
    free_later(m);
    return;
  }
  ++c_[Ctr::kClientSynAckRx];
  const uint32_t ack = load_be32(rx.l4 + offsetof(rte_tcp_hdr, recv_ack));
  uint32_t idx = 0;
  if (!flows_.slot_of_isn(ack - 1, &idx) || flows_.slot(idx).state != SlotState::kSynSent) {
    ++c_[Ctr::kClientStaleRx];  // answer to a SYN given up on, or a duplicate
    free_later(m);
    return;
  }
  Slot& s = flows_.slot(idx);
  hist_.connect.add(now - s.syn_tsc);
  ++c_[Ctr::kHandshakes];
  --syn_sent_;
  const uint32_t their_seq = load_be32(rx.l4 + offsetof(rte_tcp_hdr, sent_seq));
  const uint32_t ack_be = rte_cpu_to_be_32(their_seq + 1);
  const bool fin_now = connections_ && opts_.data_per_conn == 0;
  tcp_reply(m, &rx, own_mac_, peer_mac_, rte_cpu_to_be_32(ack), ack_be,
            kTcpAck | (fin_now ? kTcpFin : 0), false);
  ++c_[Ctr::kAckTx];
  queue_tx(m, Track::kFlows);
  if (!connections_) {
    s.state = SlotState::kEstablished;
    ++established_;
    return;
  }
  if (fin_now) {
    ++c_[Ctr::kFinTx];
  } else {
    send_conn_data(idx, ack_be, now);
  }
  close_conn(idx);
}

// ---- send side ----

void Engine::send_conn_data(uint32_t idx, uint32_t ack_be, uint64_t now) {
  const Slot& s = flows_.slot(idx);
  const uint32_t seq_be = rte_cpu_to_be_32(flows_.isn(idx) + 1);
  rte_mbuf* ms[kMaxBurst];
  auto left = static_cast<uint32_t>(opts_.data_per_conn);
  while (left) {
    const uint32_t n = alloc(ms, std::min(left, kMaxBurst));
    if (n == 0) {
      ++c_[Ctr::kTxDropped];
      return;
    }
    for (uint32_t i = 0; i < n; ++i) {
      const bool last = left - i == 1;
      emit(ms[i], last ? data_fin_ : data_, s.ip_be, s.port_be, seq_be, ack_be, now);
      queue_tx(ms[i], Track::kFlows);
    }
    c_[Ctr::kDataTx] += n;
    left -= n;
  }
  ++c_[Ctr::kFinTx];
}

void Engine::close_conn(uint32_t idx) {
  ++c_[Ctr::kConnsClosed];
  flows_.assign(idx);  // the next connection of this slot, with the next address:port
  to_open_.push(idx);
}

uint32_t Engine::alloc(rte_mbuf** out, uint32_t n) {
  if (n == 0) return 0;
  if (rte_pktmbuf_alloc_bulk(pool_, out, n) == 0) return n;
  return 0;
}

uint32_t Engine::send_syns(uint64_t now, uint32_t max) {
  const uint32_t want = std::min({max, to_open_.size(), kMaxBurst});
  rte_mbuf* ms[kMaxBurst];
  const uint32_t n = alloc(ms, want);
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t idx = to_open_.front();
    to_open_.pop();
    Slot& s = flows_.slot(idx);
    emit(ms[i], syn_, s.ip_be, s.port_be, rte_cpu_to_be_32(flows_.isn(idx)), 0, 0);
    s.state = SlotState::kSynSent;
    s.syn_tsc = now;
    queue_tx(ms[i], Track::kFlows);
  }
  syn_sent_ += n;
  c_[Ctr::kSynTx] += n;
  return n;
}

uint32_t Engine::send_data(uint64_t now, uint32_t max, bool prime) {
  const uint32_t n_slots = flows_.n_slots();
  if (prime) max = std::min(max, n_slots - prime_sent_);
  rte_mbuf* ms[kMaxBurst];
  const uint32_t n = alloc(ms, std::min(max, kMaxBurst));
  const bool tcp = opts_.mode != Mode::kUdp;
  uint32_t made = 0;
  while (made < n) {
    uint32_t idx = data_cursor_;
    if (tcp) {
      uint32_t probes = 0;
      while (flows_.slot(idx).state != SlotState::kEstablished && probes < kDataProbe) {
        idx = idx + 1 == n_slots ? 0 : idx + 1;
        ++probes;
      }
      if (probes == kDataProbe) {
        data_cursor_ = idx;
        break;  // few flows are open yet
      }
    }
    data_cursor_ = idx + 1 == n_slots ? 0 : idx + 1;
    const Slot& s = flows_.slot(idx);
    const uint32_t isn = flows_.isn(idx);
    emit(ms[made], data_, s.ip_be, s.port_be, rte_cpu_to_be_32(isn + 1),
         rte_cpu_to_be_32((isn ^ kBackendIsnXor) + 1), now);
    queue_tx(ms[made], Track::kFlows);
    ++made;
  }
  if (made < n) rte_pktmbuf_free_bulk(ms + made, n - made);
  if (prime) prime_sent_ += made;
  c_[Ctr::kDataTx] += made;
  return made;
}

uint32_t Engine::send_flood(uint64_t, uint32_t max) {
  rte_mbuf* ms[kMaxBurst];
  const uint32_t n = alloc(ms, std::min(max, kMaxBurst));
  const uint32_t hosts = opts_.flood_net.size() - 2;
  for (uint32_t i = 0; i < n; ++i) {
    const uint64_t r = next_random(&rng_);
    const uint32_t ip = opts_.flood_net.base + 1 + static_cast<uint32_t>((r & 0xffffffff) % hosts);
    const auto port = static_cast<uint16_t>(1024 + (r >> 32) % 64512);
    // Random sequence number, but for the epoch tag in its low bits (see FloodWindow).
    const uint32_t seq = (static_cast<uint32_t>(r >> 13) & ~(FloodWindow::kEpochs - 1)) | flood_.tag();
    emit(ms[i], flood_syn_, rte_cpu_to_be_32(ip), rte_cpu_to_be_16(port), rte_cpu_to_be_32(seq), 0, 0);
    queue_tx(ms[i], Track::kNone);
    flood_.sent(flood_.tag());
  }
  c_[Ctr::kFloodTx] += n;
  return n;
}

uint32_t Engine::send(uint64_t now, Traffic t) {
  if (tx_len_ >= kTxHighWater) {
    ++c_[Ctr::kBlockedLoops];
    return 0;
  }
  const uint32_t burst = opts_.burst;
  uint32_t sent = 0;
  switch (t) {
    case Traffic::kNone:
      return 0;
    case Traffic::kOpen:
      sent = send_syns(now, std::min(burst, win_.room()));
      break;
    case Traffic::kPrime:
      sent = send_data(now, std::min(burst, win_.room()), true);
      break;
    case Traffic::kFull:
      if (opts_.mode == Mode::kSynFlood) {
        const uint32_t n = send_flood(now, primary_pace_.allowance(now, std::min(burst, flood_.room())));
        primary_pace_.consumed(n);
        sent = n;
        break;
      }
      if (connections_) {
        const uint32_t n = send_syns(now, primary_pace_.allowance(now, std::min(burst, win_.room())));
        primary_pace_.consumed(n);
        sent = n;
      } else {
        // Open flows not established yet (no --warmup, or a SYN retried) go first.
        if (open_flows_) sent = send_syns(now, std::min(burst, win_.room()));
        const uint32_t want = std::min(burst - sent, win_.room());
        const uint32_t n = send_data(now, primary_pace_.allowance(now, want), false);
        primary_pace_.consumed(n);
        sent += n;
      }
      if (opts_.mode == Mode::kMixed) {
        const uint32_t n = send_flood(now, flood_pace_.allowance(now, std::min(burst, flood_.room())));
        flood_pace_.consumed(n);
        sent += n;
      }
      break;
  }
  if (sent == 0 && (win_.room() == 0 || flood_.room() == 0)) ++c_[Ctr::kBlockedLoops];
  return sent;
}

void Engine::check_syn_timeouts(uint64_t now) {
  if (syn_sent_ == 0) return;
  const uint32_t n_slots = flows_.n_slots();
  const uint32_t scan = std::min(kTimeoutScan, n_slots);
  for (uint32_t k = 0; k < scan; ++k) {
    const uint32_t idx = timeout_hand_;
    timeout_hand_ = idx + 1 == n_slots ? 0 : idx + 1;
    const Slot& s = flows_.slot(idx);
    if (s.state != SlotState::kSynSent || now - s.syn_tsc <= syn_timeout_ticks_) continue;
    ++c_[Ctr::kSynTimeouts];
    --syn_sent_;
    if (win_.in_flight) --win_.in_flight;  // that SYN (or its SYN-ACK) is not coming back
    flows_.assign(idx);  // open flows retry with the same address:port, connections move on
    to_open_.push(idx);
  }
}

void Engine::queue_tx(rte_mbuf* m, Track track) {
  if (tx_len_ == tx_.size()) {
    ++c_[Ctr::kTxDropped];
    free_later(m);
    return;
  }
  tx_[tx_len_++] = m;
  if (track == Track::kFlows) win_.sent(now_);
}

void Engine::flush_tx() {
  uint32_t done = 0;
  while (done < tx_len_) {
    const auto n = static_cast<uint16_t>(std::min(tx_len_ - done, kMaxBurst));
    uint32_t lens[kMaxBurst];
    for (uint16_t i = 0; i < n; ++i) lens[i] = rte_pktmbuf_pkt_len(tx_[done + i]);
    const uint16_t sent = rte_eth_tx_burst(opts_.port, 0, &tx_[done], n);
    c_[Ctr::kTxPackets] += sent;
    for (uint16_t i = 0; i < sent; ++i) c_[Ctr::kTxBytes] += lens[i];
    done += sent;
    if (sent < n) break;  // ring full: the rest waits for the next loop
  }
  if (done == 0) return;
  std::copy(tx_.begin() + done, tx_.begin() + tx_len_, tx_.begin());
  tx_len_ -= done;
}

void Engine::free_later(rte_mbuf* m) {
  free_[free_len_++] = m;
  if (free_len_ == free_.size()) flush_free();
}

void Engine::flush_free() {
  if (free_len_) rte_pktmbuf_free_bulk(free_.data(), free_len_);
  free_len_ = 0;
}

// ---- the loop and its phases ----

void Engine::poll(Traffic t) {
  const uint64_t start = rte_rdtsc();
  now_ = start;
  uint32_t work = receive();
  if (open_flows_ || connections_) check_syn_timeouts(start);
  if (win_.in_flight && win_.quiet(start)) {
    win_.in_flight = 0;
    ++c_[Ctr::kWindowResets];
  }
  flood_.advance(start);
  work += send(start, t);
  const uint32_t pending = tx_len_;
  flush_tx();
  flush_free();
  if (pending) work += 1;
  const uint64_t end = rte_rdtsc();
  ++c_[Ctr::kLoops];
  c_[work ? Ctr::kBusyCycles : Ctr::kIdleCycles] += end - start;
}

bool Engine::all_established(uint64_t) const { return established_ == flows_.n_slots(); }

bool Engine::primed(uint64_t now) const { return prime_sent_ >= flows_.n_slots() && drained(now); }

bool Engine::drained(uint64_t now) const {
  return tx_len_ == 0 && (win_.in_flight == 0 || win_.quiet(now)) && flood_.in_flight == 0;
}

void Engine::run_until(Traffic t, const std::atomic<bool>& stop, uint64_t deadline, const char* phase,
                       bool (Engine::*done)(uint64_t) const) {
  phase_start_ = rte_rdtsc();
  progress_base_ = c_;
  progress_tsc_ = phase_start_;
  progress_next_ = phase_start_ + hz_;
  for (;;) {
    poll(t);
    const uint64_t now = rte_rdtsc();
    if (now >= deadline || (this->*done)(now) || stop.load(std::memory_order_relaxed)) break;
    if (opts_.progress && now >= progress_next_) {
      progress(now, phase);
      progress_next_ += hz_;
    }
    if (slices_ != nullptr && now >= slice_next_) slice(now);
  }
}

void Engine::slice(uint64_t now) {
  const uint64_t rx = c_[Ctr::kRxPackets];
  slices_->push_back(static_cast<double>(rx - slice_base_rx_) * static_cast<double>(hz_) /
                     static_cast<double>(now - slice_tsc_));
  slice_base_rx_ = rx;
  slice_tsc_ = now;
  slice_next_ = now + hz_ / 2;
}

void Engine::progress(uint64_t now, const char* phase) {
  const Counters d = c_ - progress_base_;
  const double s = static_cast<double>(now - progress_tsc_) / static_cast<double>(hz_);
  if (s <= 0) return;
  const double busy = static_cast<double>(d[Ctr::kBusyCycles]);
  const double all = busy + static_cast<double>(d[Ctr::kIdleCycles]);
  std::fprintf(stderr,
               "%s[rondo-gen] %-7s %5.1fs  tx %6.3f Mpps  rx %6.3f Mpps  fwd %6.3f Mpps  conn/s %9.0f  "
               "open %u  inflight %u  busy %3.0f%%%s",
               tty_ ? "\r" : "", phase, static_cast<double>(now - phase_start_) / static_cast<double>(hz_),
               static_cast<double>(d[Ctr::kTxPackets]) / s / 1e6,
               static_cast<double>(d[Ctr::kRxPackets]) / s / 1e6,
               static_cast<double>(d[Ctr::kBackendDataRx]) / s / 1e6,
               static_cast<double>(d[Ctr::kHandshakes]) / s, established_, win_.in_flight,
               all > 0 ? 100.0 * busy / all : 0.0, tty_ ? "\033[K" : "\n");
  std::fflush(stderr);
  progress_base_ = c_;
  progress_tsc_ = now;
}

void Engine::run_hook(const std::string& cmd, const char* what, RunResult* r) {
  if (cmd.empty()) return;
  std::fflush(stdout);
  std::fflush(stderr);
  const int rc = std::system(cmd.c_str());
  if (rc != 0) r->warnings.push_back(std::string(what) + " exited with status " + std::to_string(rc));
}

RunResult Engine::run(const std::atomic<bool>& stop) {
  RunResult r;
  r.hz = hz_;
  const std::atomic<bool> never_stop{false};
  const auto ticks = [this](double s) { return static_cast<uint64_t>(s * static_cast<double>(hz_)); };

  const uint64_t t0 = rte_rdtsc();
  primary_pace_.start(opts_.rate, t0, hz_, opts_.window);
  flood_pace_.start(opts_.flood_rate, t0, hz_, opts_.window);
  if (opts_.warmup) {
    if (open_flows_) {
      run_until(Traffic::kOpen, stop, t0 + ticks(opts_.warmup_timeout_s), "warmup", &Engine::all_established);
      if (established_ < flows_.n_slots()) {
        r.warmup_complete = false;
        r.warnings.push_back("warmup: " + std::to_string(established_) + " of " +
                             std::to_string(flows_.n_slots()) + " flows established");
      }
    } else if (opts_.mode == Mode::kUdp) {
      run_until(Traffic::kPrime, stop, t0 + ticks(opts_.warmup_timeout_s), "warmup", &Engine::primed);
    } else {
      run_until(Traffic::kFull, stop, t0 + ticks(kUnmeasuredWarmupS), "warmup", &Engine::never);
    }
    r.warmup_s = static_cast<double>(rte_rdtsc() - t0) / static_cast<double>(hz_);
    if (opts_.progress) progress(rte_rdtsc(), "warmup");
  }
  // Nothing in flight while the hook reads the middle box's counters.
  run_until(Traffic::kNone, never_stop, rte_rdtsc() + ticks(kDrainMaxS), "pause", &Engine::drained);
  run_hook(opts_.exec_before, "--exec-before", &r);

  r.established = established_;
  const Counters base = c_;
  hist_ = Histograms();
  const uint64_t m0 = rte_rdtsc();
  primary_pace_.start(opts_.rate, m0, hz_, opts_.window);
  flood_pace_.start(opts_.flood_rate, m0, hz_, opts_.window);
  slices_ = &r.slices_rx_pps;
  slice_tsc_ = m0;
  slice_next_ = m0 + hz_ / 2;
  slice_base_rx_ = c_[Ctr::kRxPackets];
  if (!stop.load(std::memory_order_relaxed))
    run_until(Traffic::kFull, stop, m0 + ticks(opts_.duration_s), "measure", &Engine::never);
  slices_ = nullptr;
  const uint64_t m1 = rte_rdtsc();
  if (opts_.progress) progress(m1, "measure");
  const Counters at_end = c_;
  // Let what is in flight come back (and be answered): it was sent inside the window.
  run_until(Traffic::kNone, never_stop, m1 + ticks(kDrainMaxS), "drain", &Engine::drained);
  run_hook(opts_.exec_after, "--exec-after", &r);
  if (opts_.progress && tty_) std::fputc('\n', stderr);

  r.window = c_ - base;
  for (Ctr k : {Ctr::kBusyCycles, Ctr::kIdleCycles, Ctr::kLoops, Ctr::kBlockedLoops})
    r.window[k] = at_end[k] - base[k];
  r.window_s = static_cast<double>(m1 - m0) / static_cast<double>(hz_);
  r.hist = hist_;
  r.interrupted = stop.load(std::memory_order_relaxed);
  if (r.window[Ctr::kWindowResets])
    r.warnings.push_back(std::to_string(r.window[Ctr::kWindowResets]) +
                         " times nothing came back for " + std::to_string(int(kResetAfterS * 1000)) +
                         " ms: flow packets in flight were written off as lost");
  return r;
}

}  // namespace rondo::gen

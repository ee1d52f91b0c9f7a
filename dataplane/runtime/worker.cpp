#include "dataplane/runtime/worker.h"

#include <algorithm>
#include <cstring>
#include <iterator>

#include "dataplane/inspect/query.h"
#include "dataplane/neigh/service.h"

#include <rte_cycles.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_log.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>

namespace rondo::dp {
namespace {

constexpr uint64_t kDrainUs = 100;      // TX buffers never wait longer than this
constexpr uint32_t kIdleBeforeSleep = 16;  // empty polls before the idle backoff kicks in

void flush_port(Worker* w, uint16_t port) {
  const uint16_t n = w->tx_len[port];
  auto& buf = w->tx[port];
  if (n == 0) {
    if (w->setup.empty_burst_ports[port])
      rte_eth_tx_burst(port, static_cast<uint16_t>(w->setup.index), buf.data(), 0);
    return;
  }
  uint32_t bytes[kBurst];
  for (uint16_t i = 0; i < n; ++i) bytes[i] = rte_pktmbuf_pkt_len(buf[i]);
  const uint16_t sent = rte_eth_tx_burst(port, static_cast<uint16_t>(w->setup.index), buf.data(), n);
  for (uint16_t i = 0; i < sent; ++i) w->pipeline.count_tx(bytes[i]);
  for (uint16_t i = sent; i < n; ++i) {
    w->pipeline.count_drop(DropReason::kTxFull);
    rte_pktmbuf_free(buf[i]);
  }
  w->tx_len[port] = 0;
}

inline void enqueue_tx(Worker* w, uint16_t port, rte_mbuf* m) {
  w->tx[port][w->tx_len[port]++] = m;
  if (w->tx_len[port] == kBurst) flush_port(w, port);
}

// Next hops the pipeline found unresolved, to the main lcore. A question that finds the
// ring full is lost; the pipeline asks again after a second if the next hop is still needed.
void send_asks(Worker* w) {
  auto& asks = w->pipeline.neigh_asks();
  if (w->setup.ask_to_main)
    for (const NeighAsk& a : asks)
      if (!send_ask(w->setup.ask_to_main, a)) break;
  asks.clear();
}

// An ARP frame for one of our addresses, to the neighbour manager (counted steered_out by
// the pipeline).
void to_main(Worker* w, rte_mbuf* m, uint16_t in_port) {
  m->port = in_port;  // not every PMD fills it in; the manager needs it
  if (!w->setup.arp_to_main || rte_ring_sp_enqueue(w->setup.arp_to_main, m) != 0) {
    --w->pipeline.counters().steered_out;
    w->pipeline.count_drop(DropReason::kArpQueueFull);
    rte_pktmbuf_free(m);
  }
}

void flush_steer(Worker* w) {
  for (size_t t = 0; t < w->steer_len.size(); ++t) {
    const uint16_t n = w->steer_len[t];
    if (n == 0) continue;
    const unsigned done =
        rte_ring_sp_enqueue_burst(w->setup.steer_out[t], reinterpret_cast<void**>(w->steer[t].data()), n, nullptr);
    for (unsigned i = done; i < n; ++i) {
      // Counted as steered_out, and is a drop instead.
      --w->pipeline.counters().steered_out;
      w->pipeline.count_drop(DropReason::kSteerFull);
      rte_pktmbuf_free(w->steer[t][i]);
    }
    w->steer_len[t] = 0;
  }
}

inline void enqueue_steer(Worker* w, uint32_t target, rte_mbuf* m) {
  w->steer[target][w->steer_len[target]++] = m;
  if (w->steer_len[target] == kBurst) flush_steer(w);
}

static_assert(RTE_MBUF_DEFAULT_DATAROOM >= SynProxy::kMaxHandshakeFrame);
static_assert(RTE_MBUF_DEFAULT_DATAROOM >= ProxyV2::kFrameLen);

// A datagram this worker reassembled that may be longer than the MTU of the interface it
// leaves on (a.iface) once the pipeline is done with it: sent as fragments (rte_ip_frag) of
// that MTU, each with the interface's tag, the extra frames counted as originated.
[[gnu::noinline]] void send_fragmented(Worker* w, rte_mbuf* m, const Action& a) {
  const uint16_t port = a.port;
  const IfaceConf& ifc = w->snapshot->ifaces[a.iface];
  if (m->pkt_len <= ifc.mtu + (ifc.tagged ? 18u : 14u)) {
    enqueue_tx(w, port, m);
    return;
  }
  rte_mbuf* out[Reassembly::kMaxFrame / 512];
  const uint32_t n =
      w->setup.pool ? w->frag.fragment(m, ifc.mtu, w->setup.pool, out, std::size(out)) : 0;
  rte_pktmbuf_free(m);
  if (n == 0) {
    w->pipeline.count_drop(DropReason::kNoMbuf);
    return;
  }
  ++w->pipeline.counters().frag_refragmented;
  w->pipeline.counters().originated += n - 1;
  for (uint32_t i = 0; i < n; ++i) enqueue_tx(w, port, out[i]);
}

// A fragment for this worker's reassembly (counted consumed by the pipeline). A datagram it
// completes is run through the pipeline after the burst (run_burst).
[[gnu::noinline]] void reassemble(Worker* w, rte_mbuf* m, uint16_t in_port, uint64_t now) {
  m->port = in_port;
  DropReason why;
  rte_mbuf* d = w->frag.add(m, now, &why, &w->drops);
  if (why != DropReason::kCount) {  // refused (offered to the drop sampler), and freed
    --w->pipeline.counters().consumed;
    w->pipeline.count_drop(why);
    return;
  }
  if (!d) return;
  if (w->whole_len == w->whole.size()) {  // cannot happen: a burst's fragments make fewer
    --w->pipeline.counters().consumed;
    w->pipeline.count_drop(DropReason::kNoMbuf);
    rte_pktmbuf_free(d);
    return;
  }
  w->whole[w->whole_len++] = d;
}

void dispatch(Worker* w, rte_mbuf* m, const Action& a, uint16_t in_port, uint64_t now) {
  if (a.kind == Action::Kind::kTx && a.port < w->setup.n_ports) {
    // A SYN cookie handshake rewrote the frame into another segment (Action::len); the
    // pool's buffers (RTE_MBUF_DEFAULT_BUF_SIZE) always have room for one. An encapsulation
    // wrote its headers in front of it (Action::prepend, within the headroom run_burst checked);
    // NAT64 made its start later (Action::trim, with the new length in Action::len).
    const uint32_t len = out_len(a, rte_pktmbuf_data_len(m));
    m->data_off = static_cast<uint16_t>(m->data_off - a.prepend + a.trim);
    m->data_len = static_cast<uint16_t>(len);
    m->pkt_len = len;
    // A reassembled datagram longer than its interface's MTU leaves in fragments (the
    // pipeline lets only those through over the MTU: Pipeline::set_reassembled). (A kTx
    // action comes with a snapshot: the pipeline routed it.)
    if (__builtin_expect(m->pkt_len > w->snapshot->min_mtu + sizeof(rte_ether_hdr), 0) &&
        Reassembly::reassembled(m)) {
      send_fragmented(w, m, a);
      return;
    }
    enqueue_tx(w, a.port, m);
  } else if (a.kind == Action::Kind::kSteer && a.port < w->setup.steer_out.size() &&
             w->setup.steer_out[a.port]) {
    m->port = in_port;  // not every PMD fills it in; the owner needs it (ARP, MAC checks)
    enqueue_steer(w, a.port, m);
  } else if (a.kind == Action::Kind::kToMain) {
    to_main(w, m, in_port);
  } else if (a.kind == Action::Kind::kFragment) {
    reassemble(w, m, in_port, now);
  } else {
    if (a.kind == Action::Kind::kDrop)
      w->drops.offer(a.reason, rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m), in_port, now);
    rte_pktmbuf_free(m);
  }
}

// Frames the pipeline made (Pipeline::outbox, counted there as originated): into mbufs, to TX.
void drain_outbox(Worker* w) {
  Pipeline& pl = w->pipeline;
  const uint32_t n = pl.outbox_size();
  if (n == 0) return;
  const OutFrame* o = pl.outbox();
  for (uint32_t i = 0; i < n; ++i) {
    rte_mbuf* m = w->setup.pool ? rte_pktmbuf_alloc(w->setup.pool) : nullptr;
    if (!m || o[i].port >= w->setup.n_ports) {
      if (m) rte_pktmbuf_free(m);
      pl.count_drop(m ? DropReason::kNoRoute : DropReason::kNoMbuf);
      continue;
    }
    std::memcpy(rte_pktmbuf_append(m, o[i].len), o[i].frame(), o[i].len);
    enqueue_tx(w, o[i].port, m);
  }
  pl.clear_outbox();
}

void run_burst(Worker* w, rte_mbuf** pkts, uint16_t n, uint16_t in_port, uint64_t now, bool steered);

// Reassembled datagrams (this worker's, or handed over by the worker that reassembled them)
// in a burst of their own: the pipeline lets them be longer than the egress MTU, dispatch
// sends those in fragments.
void run_reassembled(Worker* w, rte_mbuf** pkts, uint16_t n, uint16_t in_port, uint64_t now,
                     bool steered) {
  w->reassembled_run = true;
  w->pipeline.set_reassembled(true);
  run_burst(w, pkts, n, in_port, now, steered);
  w->pipeline.set_reassembled(false);
  w->reassembled_run = false;
}

// Tags are in the bytes (docs/architecture.md, "Interfaces"): rondo never asks a device to
// strip them, but a PMD may anyway (net_af_packet strips when its own re-insertion is off; a
// NIC with VLAN stripping on by default). The tag goes back in front of the ethertype from
// vlan_tci, using 4 bytes of headroom. A frame that had two tags stripped (QinQ) is refused as
// the parser refuses QinQ. Returns kCount when the frame is fine, else why it is dropped.
// Byte by byte rather than rte_vlan_insert: DPDK's inline one writes through an rte_ether_hdr*
// and a frame may start at an odd address (UBSan: misaligned member access).
DropReason put_tag_back(Worker* w, rte_mbuf* m) {
  constexpr uint16_t kTagLen = 4;  // TPID 0x8100, then the TCI
  if (m->ol_flags & RTE_MBUF_F_RX_QINQ_STRIPPED) return DropReason::kUnsupportedL3;
  if (rte_pktmbuf_data_len(m) < 2 * RTE_ETHER_ADDR_LEN) return DropReason::kMalformedL2;
  if (!RTE_MBUF_DIRECT(m) || rte_mbuf_refcnt_read(m) > 1) return DropReason::kNoHeadroom;
  const uint8_t* old = rte_pktmbuf_mtod(m, const uint8_t*);
  auto* f = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, kTagLen));
  if (f == nullptr) return DropReason::kNoHeadroom;
  std::memmove(f, old, 2 * RTE_ETHER_ADDR_LEN);
  const uint8_t tag[kTagLen] = {0x81, 0x00, static_cast<uint8_t>(m->vlan_tci >> 8),
                                    static_cast<uint8_t>(m->vlan_tci)};
  std::memcpy(f + 2 * RTE_ETHER_ADDR_LEN, tag, sizeof tag);
  m->ol_flags &= ~RTE_MBUF_F_RX_VLAN_STRIPPED;
  ++w->pipeline.counters().vlan_reinserted;
  return DropReason::kCount;
}

// Run a burst through the pipeline and send each frame where its action says.
void run_burst(Worker* w, rte_mbuf** pkts, uint16_t n, uint16_t in_port, uint64_t now, bool steered) {
  uint8_t* frames[kBurst];
  uint32_t lens[kBurst];
  Action actions[kBurst];
  rte_mbuf* ok[kBurst];
  rte_mbuf* aside[kBurst];
  uint16_t k = 0, n_aside = 0;
  const bool steering = !w->setup.steer_out.empty();
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    DropReason why = DropReason::kCount;
    if (__builtin_expect((m->ol_flags & (RTE_MBUF_F_RX_VLAN_STRIPPED | RTE_MBUF_F_RX_QINQ_STRIPPED)) != 0, 0))
      why = put_tag_back(w, m);
    // The pipeline may write Pipeline::kHeadroom bytes in front of a frame (encapsulation):
    // DPDK's pools leave 128 (124 after a tag put back), so only a PMD with a pool of its own
    // can fail this.
    if (why == DropReason::kCount && (m->nb_segs != 1 || rte_pktmbuf_headroom(m) < Pipeline::kHeadroom))
      why = m->nb_segs != 1 ? DropReason::kMultiSegment : DropReason::kNoHeadroom;
    if (__builtin_expect(why != DropReason::kCount, 0)) {
      if (!steered) w->pipeline.counters().rx_packets++;
      w->pipeline.count_drop(why);
      w->drops.offer(why, rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m), in_port,
                     now);
      rte_pktmbuf_free(m);
      continue;
    }
    // A reassembled datagram another worker handed over: in a burst of its own, after.
    if (__builtin_expect(Reassembly::reassembled(m), 0) && !w->reassembled_run) {
      aside[n_aside++] = m;
      continue;
    }
    frames[k] = rte_pktmbuf_mtod(m, uint8_t*);
    lens[k] = rte_pktmbuf_data_len(m);
    ok[k++] = m;
  }
  // Tracing (inspect/trace.h): while off, this one branch per burst is all it costs.
  const bool tracing = w->tracer.armed();
  if (__builtin_expect(tracing, 0))
    w->tracer.before(w->pipeline, w->snapshot, frames, lens, k, in_port, steered, now);
  w->pipeline.process_burst(w->snapshot, frames, lens, k, in_port, now, steered, actions);
  if (__builtin_expect(tracing, 0)) w->tracer.after(w->pipeline, frames, lens, actions, k);
  for (uint16_t i = 0; i < k; ++i) dispatch(w, ok[i], actions[i], in_port, now);
  if (__builtin_expect(w->whole_len != 0, 0)) {
    // Reassembled datagrams, classified like received packets (they may be handed to their
    // flow's owner), counted as made here rather than received: their fragments were.
    rte_mbuf* whole[kBurst];
    const uint16_t nw = w->whole_len;
    std::copy_n(w->whole.begin(), nw, whole);
    w->whole_len = 0;
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < nw; ++i) bytes += rte_pktmbuf_data_len(whole[i]);
    run_reassembled(w, whole, nw, in_port, now, false);
    LcoreCounters& c = w->pipeline.counters();
    c.rx_packets -= nw;
    c.rx_bytes -= bytes;
    c.originated += nw;
  }
  if (__builtin_expect(n_aside != 0, 0)) run_reassembled(w, aside, n_aside, in_port, now, steered);
  drain_outbox(w);
  if (steering) flush_steer(w);
}

uint32_t drain_steered(Worker* w, uint64_t now) {
  uint32_t total = 0;
  rte_mbuf* pkts[kBurst];
  for (rte_ring* r : w->setup.steer_in) {
    if (!r) continue;
    const unsigned n = rte_ring_sc_dequeue_burst(r, reinterpret_cast<void**>(pkts), kBurst, nullptr);
    total += n;
    // Run as bursts, grouped by the port they came in on.
    rte_mbuf* work[kBurst];
    uint16_t k = 0;
    for (unsigned i = 0; i < n; ++i) {
      rte_mbuf* m = pkts[i];
      if (k > 0 && work[0]->port != m->port) {
        run_burst(w, work, k, work[0]->port, now, true);
        k = 0;
      }
      work[k++] = m;
    }
    if (k > 0) run_burst(w, work, k, work[0]->port, now, true);
  }
  return total;
}

// Frames the main lcore made (ARP replies and requests): this worker owns a TX queue on
// every port, so it sends them, counted as taken over (steered_in) and then sent.
void drain_from_main(Worker* w) {
  rte_mbuf* pkts[kBurst];
  const unsigned n = rte_ring_sc_dequeue_burst(w->setup.from_main, reinterpret_cast<void**>(pkts),
                                               kBurst, nullptr);
  for (unsigned i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    ++w->pipeline.counters().steered_in;
    if (m->port < w->setup.n_ports) {
      enqueue_tx(w, m->port, m);
    } else {
      w->pipeline.count_drop(DropReason::kNoRoute);
      rte_pktmbuf_free(m);
    }
  }
}

// Operators' questions, between bursts (inspect/query.h). At most one is in flight.
void serve_queries(Worker* w, uint64_t now) {
  void* q;
  if (rte_ring_sc_dequeue(w->setup.query_in, &q) != 0) return;
  serve_query(Inspected{&w->pipeline, &w->tracer, &w->drops, w->setup.lcore, w->setup.pipeline.hz},
              static_cast<WorkerQuery*>(q), now);
  // The ring has room for every query the main lcore may have out (it waits for each).
  (void)rte_ring_sp_enqueue(w->setup.query_out, q);
}

// --test-stall-worker: stop advancing the loop (no polls, no quiescent reports: a publish
// waits for this worker, as it would for a really stuck one) until asked to stop, sleeping
// rather than spinning so that a test on a shared machine does not lose a CPU to it.
void test_stall(Worker* w) {
  RTE_LOG(WARNING, USER1, "worker %u (lcore %u): --test-stall-worker: stuck on purpose (tests only)\n",
          w->setup.index, w->setup.lcore);
  while (!w->stop->load(std::memory_order_relaxed)) rte_delay_us_sleep(1000);
}

}  // namespace

namespace {
ReassemblyParams frag_params(const WorkerSetup& s) {
  ReassemblyParams p = s.frag;
  p.hz = s.pipeline.hz;
  return p;
}
}  // namespace

Worker::Worker(const WorkerSetup& s)
    : setup(s), pipeline(s.pipeline), drops(s.pipeline.hz),
      frag(frag_params(s), &pipeline.counters()) {
  steer.resize(s.steer_out.size());
  steer_len.assign(s.steer_out.size(), 0);
  drain_tsc = (rte_get_tsc_hz() + 999'999) / 1'000'000 * kDrainUs;
}

void worker_online(Worker* w) {
  rte_rcu_qsbr* qs = w->setup.publisher->qsbr();
  rte_rcu_qsbr_thread_register(qs, w->setup.index);
  rte_rcu_qsbr_thread_online(qs, w->setup.index);
}

void worker_offline(Worker* w) {
  rte_rcu_qsbr* qs = w->setup.publisher->qsbr();
  rte_rcu_qsbr_thread_offline(qs, w->setup.index);
  rte_rcu_qsbr_thread_unregister(qs, w->setup.index);
}

void worker_flush(Worker* w) {
  for (uint16_t p = 0; p < w->setup.n_ports; ++p) flush_port(w, p);
}

uint32_t worker_poll(Worker* w) {
  const uint64_t start = rte_rdtsc();
  w->snapshot = w->setup.publisher->current();
  // Read once per loop, like the snapshot; no longer used after the quiescent report.
  if (w->setup.next_hops) w->pipeline.set_next_hops(w->setup.next_hops->current());
  if (w->setup.next_hops6) w->pipeline.set_next_hops6(w->setup.next_hops6->current());
  if (w->setup.backend_load) w->pipeline.set_backend_load(w->setup.backend_load->current());
  if (w->snapshot && w->snapshot->epoch != w->applied_epoch) {
    w->pipeline.on_snapshot(*w->snapshot, start);
    w->applied_epoch = w->snapshot->epoch;
  }

  uint32_t received = 0;
  rte_mbuf* pkts[kBurst];
  for (const RxQueue& q : w->setup.rx) {
    const uint16_t n = rte_eth_rx_burst(q.port, q.queue, pkts, kBurst);
    if (n == 0) continue;
    received += n;
    run_burst(w, pkts, n, q.port, start, false);
  }
  if (!w->setup.steer_in.empty()) received += drain_steered(w, start);
  if (w->setup.from_main) drain_from_main(w);
  w->pipeline.tick(w->snapshot, start);
  w->frag.expire(start);
  drain_outbox(w);
  if (!w->pipeline.neigh_asks().empty()) send_asks(w);

  const uint64_t end = rte_rdtsc();
  if (end - w->last_drain >= w->drain_tsc) {
    worker_flush(w);
    w->last_drain = end;
    if (w->setup.query_in) serve_queries(w, end);
  }
  // The snapshot pointer is not used past this point in this iteration.
  w->snapshot = nullptr;
  w->pipeline.set_next_hops(nullptr);
  w->pipeline.set_next_hops6(nullptr);
  w->pipeline.set_backend_load(nullptr);
  rte_rcu_qsbr_quiescent(w->setup.publisher->qsbr(), w->setup.index);

  LcoreCounters& c = w->pipeline.counters();
  if (received) {
    c.busy_cycles += end - start;
    w->idle_polls = 0;
  } else {
    c.idle_cycles += end - start;
    ++w->idle_polls;
  }
  return received;
}

int worker_main(void* arg) {
  auto* w = static_cast<Worker*>(arg);
  worker_online(w);
  rte_rcu_qsbr* qs = w->setup.publisher->qsbr();
  const uint64_t stall_at = w->setup.test_stall_after_tsc ? rte_rdtsc() + w->setup.test_stall_after_tsc : 0;
  while (!w->stop->load(std::memory_order_relaxed)) {
    worker_poll(w);
    // Once per loop, a plain relaxed store (this worker is the only writer, so no atomic
    // read-modify-write): the watchdog's relaxed load only needs to see the count move.
    __atomic_store_n(&w->loops, w->loops + 1, __ATOMIC_RELAXED);
    if (__builtin_expect(stall_at != 0, 0) && rte_rdtsc() >= stall_at) test_stall(w);
    if (w->setup.idle_sleep_us && w->idle_polls > kIdleBeforeSleep) {
      // Offline while asleep, so a config publish does not wait for us to wake up.
      const uint64_t t0 = rte_rdtsc();
      worker_flush(w);
      rte_rcu_qsbr_thread_offline(qs, w->setup.index);
      rte_delay_us_sleep(w->setup.idle_sleep_us);
      rte_rcu_qsbr_thread_online(qs, w->setup.index);
      w->pipeline.counters().idle_cycles += rte_rdtsc() - t0;
    }
  }
  worker_flush(w);
  worker_offline(w);
  return 0;
}

}  // namespace rondo::dp
